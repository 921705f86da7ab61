//! Fetches the recorded prompts branding profiles name (see
//! `confero::bridge::branding`): every few seconds the configuration's
//! `resourceLocation`s are read, and a new one, or one last fetched a
//! minute ago, is fetched again — each prompt file by its CMS name, over
//! HTTP(S) — into the [`Branding`] the bridge reads. A file that is missing
//! or not a WAV CMS takes is left out (its tones stay) and said in the log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use confero::bridge::branding::Branding;
use confero_media::engine::wav::{read_wav, MAX_WAV};
use confero_store::Store;

/// How often the configuration is read for new locations.
const RESCAN: Duration = Duration::from_secs(2);
/// How often a location is fetched again, to follow changed files.
const REFRESH: Duration = Duration::from_secs(60);
/// How long one file may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps `branding` filled from the locations in `store` until `shutdown`.
pub async fn run(store: Arc<dyn Store>, branding: Arc<Branding>, shutdown: impl std::future::Future<Output = ()>) {
    let http = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("branding: no HTTP client ({e}); prompts stay tones");
            return;
        }
    };
    let mut fetched: HashMap<String, Instant> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        let reading = store.clone();
        let locations = tokio::task::spawn_blocking(move || Branding::locations(&*reading)).await.unwrap_or_default();
        for (location, names) in locations {
            if fetched.get(&location).is_some_and(|at| at.elapsed() < REFRESH) {
                continue;
            }
            fetched.insert(location.clone(), Instant::now());
            let mut prompts = HashMap::new();
            for name in names.iter().copied() {
                let url = format!("{}/{name}", location.trim_end_matches('/'));
                match fetch(&http, &url).await {
                    Ok(Some(pcm)) => {
                        prompts.insert(name, pcm);
                    }
                    Ok(None) => {}
                    Err(why) => tracing::warn!("branding: {url}: {why}; its tones stay"),
                }
            }
            tracing::info!("branding: {location}: {} of {} prompts recorded", prompts.len(), names.len());
            branding.set(&location, prompts);
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(RESCAN) => {}
        }
    }
}

/// One file: its samples, `None` when the server has none (404), or why not.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Option<Arc<[i16]>>, String> {
    let mut response = http.get(url).send().await.map_err(|e| e.to_string())?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_WAV {
            return Err(format!("over {MAX_WAV} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    let pcm = read_wav(&body).map_err(|e| e.to_string())?;
    Ok(Some(pcm.into()))
}
