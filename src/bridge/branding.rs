//! Recorded prompts from branding profiles, as CMS's call customization
//! takes them: a `callBrandingProfiles` or `ivrBrandingProfiles` object's
//! `resourceLocation` is a web directory holding WAV files of fixed names
//! (`passcode_entry.wav`, `ivr_id_entry.wav`, ...). A file that is there
//! replaces that prompt's tones; one that is missing or not a WAV CMS takes
//! leaves the tones. The files are fetched outside the bridge
//! (`src/branding.rs`) into [`Branding`], which the bridge only reads.
//!
//! Which profile: a call's is its space's own `callBrandingProfile`, else
//! its tenant's, else `system/profiles`'; an IVR's is its own `ivrBrandingProfile`, else
//! its tenant's, else `system/profiles'`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use confero_media::engine::Prompt;
use confero_store::schema::Kind;
use confero_store::{Object, Store};
use uuid::Uuid;

use super::Bridge;

/// The prompts a call branding location may hold.
pub const CALL_PROMPTS: [&str; 5] = [
    "passcode_entry.wav",
    "passcode_incorrect_try_again.wav",
    "passcode_incorrect_final_attempt.wav",
    super::activation::WAITING_PROMPT,
    "passcode_incorrect_goodbye.wav",
];
/// The prompts an IVR branding location may hold.
pub const IVR_PROMPTS: [&str; 3] =
    ["ivr_id_entry.wav", "ivr_id_incorrect_try_again.wav", "ivr_id_incorrect_final_attempt.wav"];

/// How long a caller has to type after an entry prompt, as with the tones.
const WAIT_MS: usize = 3000;

/// One location's recordings by file name (48 kHz samples).
pub type Recordings = HashMap<&'static str, Arc<[i16]>>;

/// The recordings fetched, by location.
#[derive(Debug, Default)]
pub struct Branding {
    by_location: RwLock<HashMap<String, Recordings>>,
}

impl Branding {
    /// What `location` holds now (replacing what it held).
    pub fn set(&self, location: &str, prompts: Recordings) {
        self.by_location.write().unwrap_or_else(|p| p.into_inner()).insert(location.to_string(), prompts);
    }

    /// The recording `name` at `location`, if fetched.
    pub fn recording(&self, location: &str, name: &str) -> Option<Arc<[i16]>> {
        self.by_location.read().unwrap_or_else(|p| p.into_inner()).get(location)?.get(name).cloned()
    }

    /// Every branding location the configuration names, with the prompts
    /// each kind may hold.
    pub fn locations(store: &dyn Store) -> Vec<(String, &'static [&'static str])> {
        let mut out: Vec<(String, &'static [&'static str])> = Vec::new();
        for (kind, names) in
            [(Kind::CallBrandingProfile, &CALL_PROMPTS[..]), (Kind::IvrBrandingProfile, &IVR_PROMPTS[..])]
        {
            for profile in store.all(kind, None) {
                if let Some(location) = profile.get("resourceLocation").filter(|l| !l.trim().is_empty()) {
                    out.push((location.trim().to_string(), names));
                }
            }
        }
        out
    }
}

/// The `resourceLocation` of the `field` profile of the first holder that
/// names one.
fn location(store: &dyn Store, kind: Kind, field: &str, holders: &[Option<&Object>]) -> Option<String> {
    let id = holders.iter().flatten().find_map(|h| h.get(field).and_then(|p| Uuid::parse_str(p).ok()))?;
    Some(store.get(kind, id)?.get("resourceLocation")?.trim().to_string())
}

/// `recording` then silence to type in, repeated; `wrong` once before it.
fn spoken(recording: Arc<[i16]>, wrong: Option<Arc<[i16]>>) -> Prompt {
    let mut pcm: Vec<i16> = Vec::new();
    if let Some(w) = &wrong {
        pcm.extend_from_slice(w);
        pcm.extend(std::iter::repeat_n(0, 48 * 300));
    }
    let again = pcm.len();
    pcm.extend_from_slice(&recording);
    pcm.extend(std::iter::repeat_n(0, 48 * WAIT_MS));
    Prompt { pcm: pcm.into(), loop_from: Some(again) }
}

impl Bridge {
    fn tenant_of(&self, holder: Option<&Object>) -> Option<Object> {
        let id = Uuid::parse_str(holder?.get("tenant")?).ok()?;
        self.store.get(Kind::Tenant, id)
    }

    /// The call branding location for a call of `space`.
    fn call_branding(&self, space: Option<Uuid>) -> Option<String> {
        let space = space.and_then(|s| self.store.get(Kind::CoSpace, s));
        let tenant = self.tenant_of(space.as_ref());
        let system = self.store.singleton(Kind::SystemProfiles);
        let holders = [space.as_ref(), tenant.as_ref(), Some(&system)];
        location(&*self.store, Kind::CallBrandingProfile, "callBrandingProfile", &holders)
    }

    /// The IVR branding location of `ivr`.
    fn ivr_branding(&self, ivr: &Object) -> Option<String> {
        let tenant = self.tenant_of(Some(ivr));
        let system = self.store.singleton(Kind::SystemProfiles);
        let holders = [Some(ivr), tenant.as_ref(), Some(&system)];
        location(&*self.store, Kind::IvrBrandingProfile, "ivrBrandingProfile", &holders)
    }

    /// A prompt from `location`'s recordings when it has `entry`, with
    /// `wrong` before it when given and held; else `tones`.
    fn branded(&self, location: Option<String>, entry: &str, wrong: Option<&str>, tones: Prompt) -> Prompt {
        let Some(location) = location else { return tones };
        let branding = &self.config.branding;
        match branding.recording(&location, entry) {
            Some(recording) => spoken(recording, wrong.and_then(|w| branding.recording(&location, w))),
            None => tones,
        }
    }

    /// A call prompt that is heard over and over as it is (`waiting_for_host.wav`,
    /// which CMS says to record with its own pause at the end), else `tones`.
    pub(super) fn branded_call_prompt(&self, space: Option<Uuid>, name: &str, tones: Prompt) -> Prompt {
        let Some(location) = self.call_branding(space) else { return tones };
        match self.config.branding.recording(&location, name) {
            Some(recording) => Prompt { pcm: recording, loop_from: Some(0) },
            None => tones,
        }
    }

    /// "That passcode is not correct; goodbye", once, after the last wrong
    /// passcode.
    pub(super) fn goodbye_prompt(&self, space: Option<Uuid>) -> Prompt {
        let Some(location) = self.call_branding(space) else { return Prompt::goodbye() };
        match self.config.branding.recording(&location, CALL_PROMPTS[4]) {
            Some(recording) => Prompt { pcm: recording, loop_from: None },
            None => Prompt::goodbye(),
        }
    }

    /// "Enter the passcode" for a leg of a call in `space`.
    pub(super) fn passcode_prompt(&self, space: Option<Uuid>) -> Prompt {
        self.branded(self.call_branding(space), CALL_PROMPTS[0], None, Prompt::enter_passcode())
    }

    /// "Wrong passcode" after `failures` wrong ones.
    pub(super) fn wrong_passcode_prompt(&self, space: Option<Uuid>, failures: usize) -> Prompt {
        let wrong = if failures >= 2 { CALL_PROMPTS[2] } else { CALL_PROMPTS[1] };
        self.branded(self.call_branding(space), CALL_PROMPTS[0], Some(wrong), Prompt::wrong_passcode())
    }

    /// "Enter the meeting ID" at `ivr`.
    pub(super) fn meeting_id_prompt(&self, ivr: &Object) -> Prompt {
        self.branded(self.ivr_branding(ivr), IVR_PROMPTS[0], None, Prompt::enter_meeting_id())
    }

    /// "No such meeting" at `ivr` after `failures` wrong IDs.
    pub(super) fn wrong_meeting_id_prompt(&self, ivr: &Object, failures: usize) -> Prompt {
        let wrong = if failures >= 2 { IVR_PROMPTS[2] } else { IVR_PROMPTS[1] };
        self.branded(self.ivr_branding(ivr), IVR_PROMPTS[0], Some(wrong), Prompt::wrong_meeting_id())
    }
}
