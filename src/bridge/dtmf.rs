//! In-call DTMF commands (`dtmfProfiles`): the keys a participant presses,
//! once past any passcode, are matched against the sequences of the DTMF
//! profile that applies to its leg; a match is an action the bridge carries
//! out if the leg's call leg profiles allow it. Sans-IO: keys in with their
//! time, actions out.
//!
//! A sequence matches when the keys pressed end with it; the longest match
//! wins and the keys are then forgotten, as are keys older than
//! [`KEY_GAP`]. So `*6` and `**6` can both be set, and a stray key before a
//! sequence does not stop it.

use std::time::{Duration, Instant};

use confero_api::{CALL_FIELDS, LEG_FIELDS};
use confero_media::video::layout::Layout;
use confero_store::schema::{Change, Field};
use confero_store::Object;
use uuid::Uuid;

use super::leg::Leg;
use super::Bridge;

/// Keys further apart than this start a new sequence.
pub const KEY_GAP: Duration = Duration::from_secs(3);
/// The longest sequence kept (CMS sequences are a few keys).
const MAX_KEYS: usize = 16;

/// What a DTMF sequence can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfAction {
    /// Stop the presser's audio reaching the others (`rxAudioMute`).
    MuteSelfAudio,
    /// Let it through again.
    UnmuteSelfAudio,
    /// Whichever of the two it is not.
    ToggleMuteSelfAudio,
    /// Mute every other leg of the call.
    MuteAllExceptSelfAudio,
    /// Unmute every other leg of the call.
    UnmuteAllExceptSelfAudio,
    /// New legs join muted (the call's `joinAudioMuteOverride=true`).
    MuteAllNewAudio,
    /// New legs join unmuted (`joinAudioMuteOverride=false`).
    UnmuteAllNewAudio,
    /// New legs join as their profiles say (`joinAudioMuteOverride` unset).
    DefaultMuteAllNewAudio,
    /// Both of mute-all-new and mute-all-except-self.
    MuteAllNewAndAllExceptSelfAudio,
    /// Both of unmute-all-new and unmute-all-except-self.
    UnmuteAllNewAndAllExceptSelfAudio,
    /// The presser's next layout in CMS's list.
    NextLayout,
    /// The previous one.
    PreviousLayout,
    /// End the call for everyone.
    EndCall,
    /// Keep new guests waiting even while an activator is in (`locked`).
    LockCall,
    /// Let the waiting guests in.
    UnlockCall,
}

/// The `dtmfProfiles` fields with an action here, in the reference's order.
/// The profile's other fields (recording, streaming, presentation
/// permissions, the participant count prompt) are stored and shown; pressing
/// them does nothing, as Confero has no recorder, streamer or spoken
/// prompts.
pub const ACTIONS: &[(&str, DtmfAction)] = &[
    ("muteSelfAudio", DtmfAction::MuteSelfAudio),
    ("unmuteSelfAudio", DtmfAction::UnmuteSelfAudio),
    ("toggleMuteSelfAudio", DtmfAction::ToggleMuteSelfAudio),
    ("muteAllExceptSelfAudio", DtmfAction::MuteAllExceptSelfAudio),
    ("unmuteAllExceptSelfAudio", DtmfAction::UnmuteAllExceptSelfAudio),
    ("muteAllNewAudio", DtmfAction::MuteAllNewAudio),
    ("unmuteAllNewAudio", DtmfAction::UnmuteAllNewAudio),
    ("defaultMuteAllNewAudio", DtmfAction::DefaultMuteAllNewAudio),
    ("muteAllNewAndAllExceptSelfAudio", DtmfAction::MuteAllNewAndAllExceptSelfAudio),
    ("unmuteAllNewAndAllExceptSelfAudio", DtmfAction::UnmuteAllNewAndAllExceptSelfAudio),
    ("nextLayout", DtmfAction::NextLayout),
    ("previousLayout", DtmfAction::PreviousLayout),
    ("endCall", DtmfAction::EndCall),
    ("lockCall", DtmfAction::LockCall),
    ("unlockCall", DtmfAction::UnlockCall),
];

/// The sequences of one DTMF profile that do something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DtmfCommands {
    sequences: Vec<(String, DtmfAction)>,
}

impl DtmfCommands {
    /// The sequences a `dtmfProfiles` object sets (empty values ignored).
    pub fn of(profile: &Object) -> DtmfCommands {
        let sequences = ACTIONS
            .iter()
            .filter_map(|(field, action)| {
                let keys = profile.get(field)?.trim();
                (!keys.is_empty()).then(|| (keys.to_ascii_uppercase(), *action))
            })
            .collect();
        DtmfCommands { sequences }
    }

    /// True when no sequence is set.
    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }
}

/// The keys one leg has pressed lately.
#[derive(Debug, Clone, Default)]
pub struct KeyBuffer {
    keys: String,
    last: Option<Instant>,
}

impl KeyBuffer {
    /// Takes one key pressed at `now`; a completed sequence is its action.
    pub fn press(&mut self, now: Instant, key: char, commands: &DtmfCommands) -> Option<DtmfAction> {
        if self.last.is_some_and(|t| now.saturating_duration_since(t) > KEY_GAP) {
            self.keys.clear();
        }
        self.last = Some(now);
        if self.keys.len() >= MAX_KEYS {
            self.keys.remove(0);
        }
        self.keys.push(key.to_ascii_uppercase());
        let (_, action) = commands
            .sequences
            .iter()
            .filter(|(seq, _)| self.keys.ends_with(seq.as_str()))
            .max_by_key(|(seq, _)| seq.len())?;
        self.keys.clear();
        Some(*action)
    }
}

/// A permission the leg's own settings or its call leg profiles give. Set
/// nowhere, CMS's defaults: a participant may mute itself and change its
/// layout, but not mute others, end the meeting for everyone or change how
/// others join.
fn allowed(leg: &Leg, permission: &str) -> bool {
    let default = matches!(permission, "muteSelfAllowed" | "changeLayoutAllowed");
    match leg.live.config.get(permission).map(String::as_str).or_else(|| leg.profiles.field(permission)) {
        Some(v) => v != "false",
        None => default,
    }
}

/// A change of the field `name` of `fields`.
fn change(fields: &'static [Field], name: &str, value: Option<&str>) -> Option<Change> {
    let field = fields.iter().find(|f| f.name == name)?;
    Some(Change { field, value: value.map(str::to_string) })
}

impl Bridge {
    /// A key pressed in a call (past any passcode): an action once it
    /// completes one of the leg's DTMF profile's sequences, carried out if
    /// the leg may, as the API would (so `GET /callLegs` shows it).
    pub(super) fn key_pressed(&mut self, now: Instant, id: Uuid, key: char) {
        let Some(leg) = self.leg_mut(id) else { return };
        if leg.profiles.dtmf.is_empty() {
            return;
        }
        let commands = leg.profiles.dtmf.clone();
        let Some(action) = leg.keys.press(now, key, &commands) else { return };
        let Some(leg) = self.leg(id) else { return };
        let permission = match action {
            DtmfAction::MuteSelfAudio | DtmfAction::UnmuteSelfAudio | DtmfAction::ToggleMuteSelfAudio => {
                "muteSelfAllowed"
            }
            DtmfAction::NextLayout | DtmfAction::PreviousLayout => "changeLayoutAllowed",
            DtmfAction::EndCall => "endCallAllowed",
            DtmfAction::LockCall | DtmfAction::UnlockCall => "callLockAllowed",
            DtmfAction::MuteAllNewAudio | DtmfAction::UnmuteAllNewAudio | DtmfAction::DefaultMuteAllNewAudio => {
                "changeJoinAudioMuteOverrideAllowed"
            }
            _ => "muteOthersAllowed",
        };
        if !allowed(leg, permission) {
            tracing::info!("call leg {id}: DTMF {action:?} refused ({permission} is false)");
            return;
        }
        tracing::info!("call leg {id}: DTMF {action:?}");
        let call = leg.live.call;
        let muted = leg.settings.rx_audio_mute;
        let layout = leg.settings.layout;
        let set_self = |me: &mut Bridge, field: &str, value: &str| {
            if let Some(c) = change(LEG_FIELDS, field, Some(value)) {
                let _ = me.update_call_leg(now, id, &[c]);
            }
        };
        let others = |me: &Bridge| -> Vec<Uuid> {
            me.legs.iter().filter(|l| l.live.call == call && l.live.id != id).map(|l| l.live.id).collect()
        };
        let mute_others = |me: &mut Bridge, mute: bool| {
            for other in others(me) {
                if let Some(c) = change(LEG_FIELDS, "rxAudioMute", Some(if mute { "true" } else { "false" })) {
                    let _ = me.update_call_leg(now, other, &[c]);
                }
            }
        };
        let join_muted = |me: &mut Bridge, value: Option<&str>| {
            if let Some(c) = change(CALL_FIELDS, "joinAudioMuteOverride", value) {
                let _ = me.update_call(now, call, &[c]);
            }
        };
        match action {
            DtmfAction::MuteSelfAudio => set_self(self, "rxAudioMute", "true"),
            DtmfAction::UnmuteSelfAudio => set_self(self, "rxAudioMute", "false"),
            DtmfAction::ToggleMuteSelfAudio => set_self(self, "rxAudioMute", if muted { "false" } else { "true" }),
            DtmfAction::MuteAllExceptSelfAudio => mute_others(self, true),
            DtmfAction::UnmuteAllExceptSelfAudio => mute_others(self, false),
            DtmfAction::MuteAllNewAudio => join_muted(self, Some("true")),
            DtmfAction::UnmuteAllNewAudio => join_muted(self, Some("false")),
            DtmfAction::DefaultMuteAllNewAudio => join_muted(self, None),
            DtmfAction::MuteAllNewAndAllExceptSelfAudio => {
                join_muted(self, Some("true"));
                mute_others(self, true);
            }
            DtmfAction::UnmuteAllNewAndAllExceptSelfAudio => {
                join_muted(self, Some("false"));
                mute_others(self, false);
            }
            DtmfAction::NextLayout | DtmfAction::PreviousLayout => {
                let n = Layout::ALL.len();
                let at = Layout::ALL.iter().position(|l| *l == layout).unwrap_or(0);
                let next = if action == DtmfAction::NextLayout { (at + 1) % n } else { (at + n - 1) % n };
                set_self(self, "chosenLayout", Layout::ALL[next].api_name());
            }
            DtmfAction::EndCall => {
                let _ = self.end_call(now, call);
            }
            DtmfAction::LockCall | DtmfAction::UnlockCall => {
                let locked = if action == DtmfAction::LockCall { "true" } else { "false" };
                if let Some(c) = change(CALL_FIELDS, "locked", Some(locked)) {
                    let _ = self.update_call(now, call, &[c]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{create, store};
    use confero_store::schema::Kind;

    #[test]
    fn sequences_match_at_the_end_of_recent_keys_and_the_longest_wins() {
        let (_d, s) = store();
        let profile = create(
            &*s,
            Kind::DtmfProfile,
            None,
            &[
                ("toggleMuteSelfAudio", "*6"),
                ("muteAllExceptSelfAudio", "**6"),
                ("endCall", "*0"),
                ("startRecording", "*9"),
            ],
        );
        let commands = DtmfCommands::of(&profile);
        let t0 = Instant::now();
        let mut keys = KeyBuffer::default();
        let press = |keys: &mut KeyBuffer, at: u64, text: &str| -> Vec<DtmfAction> {
            text.chars().filter_map(|k| keys.press(t0 + Duration::from_millis(at), k, &commands)).collect()
        };
        assert_eq!(press(&mut keys, 0, "5*6"), [DtmfAction::ToggleMuteSelfAudio], "a stray key first");
        assert_eq!(press(&mut keys, 100, "**6"), [DtmfAction::MuteAllExceptSelfAudio], "the longer sequence");
        assert_eq!(press(&mut keys, 200, "*9"), [], "stored, but no action");
        // Keys more than 3 s apart do not make a sequence.
        assert_eq!(press(&mut keys, 300, "*"), []);
        assert_eq!(press(&mut keys, 3_400, "0"), []);
        assert_eq!(press(&mut keys, 3_500, "*0"), [DtmfAction::EndCall]);
        assert!(DtmfCommands::of(&create(&*s, Kind::DtmfProfile, None, &[])).is_empty());
    }
}
