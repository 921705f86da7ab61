//! The media runtime alone, driven over stdin: what `scripts/bench-audio`
//! runs side by side with Janus AudioBridge until SIP sets calls up
//! (issue #4). Plain RTP, Opus 48 kHz mono, 20 ms.
//!
//! ```text
//! media_server [--workers N] [--video-threads N] [--bind IP] [--complexity C] [--bitrate BPS] [--fec on|off] [--dtx on|off]
//! ```
//!
//! It prints `ready`, then answers each stdin line with one stdout line:
//! - `join ROOM REMOTE_IP:PORT PT [LEVEL_EXT_ID] [video=REMOTE_IP:PORT/PT/LAYOUT[/tmmbr|/remb]]`
//!   → `joined ROOM ENDPOINT LOCAL_IP:PORT [LOCAL_VIDEO_IP:PORT]`
//!   (rooms are made on first join; ROOM is any token; with `video=` the
//!   endpoint also sends and receives H.264 at 720p, seeing LAYOUT, a CMS
//!   layout name, for `scripts/bench-video`; `/tmmbr` or `/remb`: it is
//!   asked to send less while shown small)
//! - `join-web ROOM PT REMOTE_UFRAG REMOTE_FINGERPRINT [LEVEL_EXT_ID] [video=PT/LAYOUT[/tmmbr|/remb]]`
//!   → `joined ROOM ENDPOINT LOCAL_IP:PORT LOCAL_UFRAG LOCAL_PWD FINGERPRINT`: a browser-like endpoint
//!   (ICE-lite, DTLS-SRTP, audio and video on one port), for `scripts/bench-web`; fingerprints are
//!   SHA-256 digests as colon-separated hex (SDP's form without `sha-256 `)
//! - `leave ENDPOINT` → `left ENDPOINT`
//! - `stats` → `stats {json}` (runtime counters, as published about once a second)
//! - `quit` → exits
//!
//! and `error TEXT` for anything it cannot do.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use confero_media::codec::AudioFormat;
use confero_media::engine::{EndpointConfig, EndpointId, VideoConfig};
use confero_media::runtime::{
    ConferenceId, EndpointSpec, IceTransport, MediaRuntime, MediaTransport, RtpAddresses, RtpTransport, RuntimeConfig,
};
use confero_media::transport::dtls::Fingerprint;
use confero_media::transport::ice::IceCredentials;
use confero_media::video::layout::Layout;
use confero_media::video::source_rate::BitrateRequestMethod;

fn main() {
    if let Err(e) = run() {
        eprintln!("media_server: {e}");
        std::process::exit(2);
    }
}

fn on_off(v: &str) -> Result<bool, String> {
    match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("expected on|off, got {v}")),
    }
}

fn run() -> Result<(), String> {
    let mut config = RuntimeConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--workers" => config.workers = value.parse().map_err(|e| bad(&e))?,
            "--video-threads" => config.video_threads = value.parse().map_err(|e| bad(&e))?,
            "--bind" => config.bind = value.parse::<IpAddr>().map_err(|e| bad(&e))?,
            "--complexity" => config.mixer.opus.complexity = value.parse().map_err(|e| bad(&e))?,
            "--bitrate" => config.mixer.opus.bitrate = value.parse().map_err(|e| bad(&e))?,
            "--fec" => config.mixer.opus.inband_fec = on_off(&value)?,
            "--dtx" => config.mixer.opus.dtx = on_off(&value)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let runtime = MediaRuntime::start(config, Arc::new(|_| {})).map_err(|e| e.to_string())?;
    let mut rooms: HashMap<String, ConferenceId> = HashMap::new();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ready").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            [] => continue,
            ["quit"] => break,
            ["join", room, remote, pt, rest @ ..] => {
                let video = rest.iter().find_map(|w| w.strip_prefix("video="));
                let level = rest.iter().copied().find(|w| !w.starts_with("video="));
                join(&runtime, &mut rooms, room, remote, pt, level, video)
            }
            ["join-web", room, pt, ufrag, fingerprint, rest @ ..] => {
                let video = rest.iter().find_map(|w| w.strip_prefix("video="));
                let level = rest.iter().copied().find(|w| !w.starts_with("video="));
                join_web(&runtime, &mut rooms, room, pt, (ufrag, fingerprint), level, video)
            }
            ["leave", id] => id
                .parse()
                .map_err(|e| format!("endpoint {id}: {e}"))
                .and_then(|id| runtime.detach(EndpointId(id)).map_err(|e| e.to_string()))
                .map(|()| format!("left {id}")),
            ["stats"] => {
                let s = runtime.stats();
                Ok(format!(
                    "stats {{\"workers\":{},\"datagrams_in\":{},\"datagrams_out\":{},\"unknown_source\":{},\"refused\":{},\"ticks\":{},\"late_ticks\":{},\"decodes\":{},\"encodes\":{},\"video_ticks\":{},\"video_decodes\":{},\"video_encodes\":{},\"video_frames_dropped\":{}}}",
                    runtime.workers(),
                    s.datagrams_in,
                    s.datagrams_out,
                    s.unknown_source,
                    s.refused,
                    s.ticks,
                    s.late_ticks,
                    s.decodes,
                    s.encodes,
                    s.video_ticks,
                    s.video_decodes,
                    s.video_encodes,
                    s.video_frames_dropped
                ))
            }
            _ => Err(format!("unknown command: {line}")),
        };
        let text = answer.unwrap_or_else(|e| format!("error {e}"));
        writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn join(
    runtime: &MediaRuntime,
    rooms: &mut HashMap<String, ConferenceId>,
    room: &str,
    remote: &str,
    pt: &str,
    level_id: Option<&str>,
    video: Option<&str>,
) -> Result<String, String> {
    let remote: SocketAddr = remote.parse().map_err(|e| format!("address {remote}: {e}"))?;
    let pt: u8 = pt.parse().ok().filter(|p| *p < 128).ok_or_else(|| format!("payload type {pt}"))?;
    let (conference, config) = room_and_audio(runtime, rooms, room, pt, level_id)?;
    let mut transport = RtpTransport::new(remote);
    let video = match video.map(video_spec).transpose()? {
        Some((video, remote)) => {
            transport.video = Some(RtpAddresses { rtp: remote, rtcp: None });
            Some(video)
        }
        None => None,
    };
    let has_video = video.is_some();
    let spec = EndpointSpec { config, video, transport: MediaTransport::Rtp(transport) };
    let a = runtime.attach(conference, spec).map_err(|e| e.to_string())?;
    if has_video {
        Ok(format!("joined {room} {} {} {}", a.id.0, a.local_rtp, a.local_video_rtp))
    } else {
        Ok(format!("joined {room} {} {}", a.id.0, a.local_rtp))
    }
}

fn join_web(
    runtime: &MediaRuntime,
    rooms: &mut HashMap<String, ConferenceId>,
    room: &str,
    pt: &str,
    (ufrag, fingerprint): (&str, &str),
    level_id: Option<&str>,
    video: Option<&str>,
) -> Result<String, String> {
    let pt: u8 = pt.parse().ok().filter(|p| *p < 128).ok_or_else(|| format!("payload type {pt}"))?;
    let remote_fingerprint =
        Fingerprint::parse(&format!("sha-256 {fingerprint}")).ok_or_else(|| format!("fingerprint {fingerprint}"))?;
    let (conference, config) = room_and_audio(runtime, rooms, room, pt, level_id)?;
    // The same stream text as `join`'s, without an address: ICE finds it.
    let video = video.map(|v| video_spec(&format!("0.0.0.0:9/{v}"))).transpose()?.map(|(v, _)| v);
    let local = IceCredentials::random(&mut rand::thread_rng());
    let transport = IceTransport {
        local: local.clone(),
        remote_ufrag: ufrag.to_string(),
        remote_fingerprint,
        dtls_active: false,
        video_payload_types: video.iter().map(|v| v.payload_type).collect(),
        audio_ssrcs: Vec::new(),
        video_ssrcs: Vec::new(),
    };
    let spec = EndpointSpec { config, video, transport: MediaTransport::Ice(transport) };
    let a = runtime.attach(conference, spec).map_err(|e| e.to_string())?;
    let ours = runtime.dtls_fingerprint().to_sdp();
    let ours = ours.strip_prefix("sha-256 ").unwrap_or(&ours);
    Ok(format!("joined {room} {} {} {} {} {ours}", a.id.0, a.local_rtp, local.ufrag, local.pwd))
}

/// The room's conference (made on its first join) and the Opus audio an
/// endpoint joins it with (`level_id`: its RFC 6464 extension id).
fn room_and_audio(
    runtime: &MediaRuntime,
    rooms: &mut HashMap<String, ConferenceId>,
    room: &str,
    pt: u8,
    level_id: Option<&str>,
) -> Result<(ConferenceId, EndpointConfig), String> {
    let level_id = match level_id {
        Some(x) => {
            Some(x.parse::<u8>().ok().filter(|i| (1..=14).contains(i)).ok_or_else(|| format!("extension id {x}"))?)
        }
        None => None,
    };
    let conference = match rooms.get(room) {
        Some(c) => *c,
        None => {
            let c = runtime.create_conference().map_err(|e| e.to_string())?;
            rooms.insert(room.to_string(), c);
            c
        }
    };
    let mut config = EndpointConfig::new(AudioFormat::OPUS_MONO, pt);
    config.audio_level_id = level_id;
    Ok((conference, config))
}

/// `REMOTE_IP:PORT/PT/LAYOUT[/tmmbr|/remb]` → a 720p H.264 stream both
/// ways; the endpoint is asked to send less while shown small by TMMBR or
/// REMB when one is named (as if its SDP offered `ccm tmmbr` or `goog-remb`).
fn video_spec(text: &str) -> Result<(VideoConfig, SocketAddr), String> {
    let mut parts = text.split('/');
    let (Some(remote), Some(pt), Some(layout)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("video={text}: expected REMOTE_IP:PORT/PT/LAYOUT[/tmmbr|/remb]"));
    };
    let bitrate_request = match (parts.next(), parts.next()) {
        (None, None) => BitrateRequestMethod::None,
        (Some("tmmbr"), None) => BitrateRequestMethod::Tmmbr,
        (Some("remb"), None) => BitrateRequestMethod::Remb,
        _ => return Err(format!("video={text}: expected REMOTE_IP:PORT/PT/LAYOUT[/tmmbr|/remb]")),
    };
    let remote: SocketAddr = remote.parse().map_err(|e| format!("video address {remote}: {e}"))?;
    let pt: u8 = pt.parse().ok().filter(|p| *p < 128).ok_or_else(|| format!("video payload type {pt}"))?;
    let layout = Layout::from_api(layout).ok_or_else(|| format!("layout {layout}"))?;
    let mut config = VideoConfig::new(pt);
    config.layout = layout.into();
    config.bitrate_request = bitrate_request;
    Ok((config, remote))
}
