//! One conference's audio, one 20 ms tick at a time (sans-IO).
//!
//! Per tick the caller hands in, for each participant, either a decoded frame
//! or a "silent" marker (nothing was decoded: the jitter buffer had nothing,
//! the sender is in DTX, or its RFC 6464 level said it is quiet and
//! [`Mixer::needs_decode`] said the mixer does not need it), then calls
//! [`Mixer::tick`] and gets back encoded payloads per receiver and events.
//!
//! The work per tick is bounded by speakers, not participants:
//! 1. speakers are chosen from levels alone (`speakers.rs`): top-K with an
//!    activation delay and a hangover;
//! 2. the speakers are summed into a 32-bit accumulator: the common mix;
//! 3. each speaker gets the mix minus itself, through its own limiter and
//!    encoder; every other receiver shares ONE encode of the common mix per
//!    [`AudioFormat`] (codec, clock rate, channels, packet time): the same
//!    `Arc<[u8]>` goes to all of them;
//! 4. silent non-speakers are never decoded; the tick reports whose decodes
//!    it will want next ([`TickOutput::decode_next`]).
//!
//! # Switching a receiver between its own stream and the shared one
//!
//! A receiver's packets keep one SSRC, sequence and timestamp line whichever
//! encoder produced them (the packetizer is per receiver), so what must stay
//! continuous is the codec state its decoder follows.
//! - Listener → speaker: the speaker's own encoder is a [fork] of its group's
//!   shared encoder, taken before the group encodes this tick. Its decoder
//!   has been following exactly that state, so the switch is seamless; the
//!   limiter's gain is carried over the same way.
//! - Speaker → listener: this happens only after the hangover (the speaker
//!   has been quiet for `hangover_ticks`), on displacement, or on mute. By
//!   then the two streams carry the same sound (the common mix minus a
//!   silent self), and an Opus decoder keeps its own state and needs nothing
//!   from the encoder's: what differs is only the encoder's inter-frame
//!   prediction (CELT band energies, SILK gains), which re-converges within a
//!   few frames at that level (the test `switching_between_own_and_shared_
//!   stream_keeps_the_sound` measures +1.2 dB for one frame, -0.4 dB for the
//!   next, then within 0.3 dB). We accept that small transient at a silence
//!   boundary rather than keep per-receiver encoders warm for everyone, which
//!   would cost one encode per participant — the cost this mixer exists to
//!   avoid. G.711 is stateless apart from the resampler history, which carries
//!   the same signal on both streams.
//!
//! [fork]: crate::codec::AudioEncoder::fork

mod agc;
mod limiter;
mod speakers;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use crate::codec::{AudioEncoder, AudioFormat, CodecError, OpusConfig, FRAME_SAMPLES};
use crate::rtp::AudioLevel;
use limiter::Limiter;
use speakers::Activity;

/// Identifies a participant within one conference (the caller's leg id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

/// Why the mixer refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MixerError {
    /// No participant with this id is in the conference.
    #[error("no participant {0:?} in this conference")]
    UnknownParticipant(ParticipantId),
    /// A participant with this id is already in the conference.
    #[error("participant {0:?} is already in this conference")]
    DuplicateParticipant(ParticipantId),
    /// A decoded frame is not 20 ms of 48 kHz mono.
    #[error("input frame of {0} samples, expected {FRAME_SAMPLES} (20 ms, 48 kHz, mono)")]
    FrameLength(usize),
    /// An encoder could not be built or failed.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// A conference's mixing policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixerConfig {
    /// At most this many participants are mixed at once (K of top-K).
    pub max_speakers: usize,
    /// A level at or above this (at most this many dB below full scale,
    /// RFC 6464 -dBov) counts as speech.
    pub speech_level: u8,
    /// Consecutive speech ticks before a participant joins the mix.
    pub activation_ticks: u32,
    /// Quiet ticks a speaker stays in the mix (pauses between words).
    pub hangover_ticks: u32,
    /// Ticks another speaker must be the loudest before it becomes the
    /// active speaker.
    pub dominant_ticks: u32,
    /// Settings of every Opus encoder the mixer makes.
    pub opus: OpusConfig,
    /// Automatic gain control of each participant's speech before mixing
    /// (towards -20 dBFS, within -6..+12 dB). Off by default: it changes
    /// what people sound like, so it is a conference's choice.
    pub agc: bool,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            max_speakers: 3,
            speech_level: 50,
            activation_ticks: 2,
            hangover_ticks: 25,
            dominant_ticks: 10,
            opus: OpusConfig::default(),
            agc: false,
        }
    }
}

/// How a participant takes part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParticipantSettings {
    /// What its audio is encoded as; participants with the same format
    /// share the common mix's encode.
    pub format: AudioFormat,
    /// The conference does not hear this participant (never selected).
    pub rx_muted: bool,
    /// This participant hears nothing: no payload is produced for it.
    pub tx_muted: bool,
    /// Priority among candidates; a more important one may displace a less
    /// important speaker.
    pub importance: i32,
}

impl ParticipantSettings {
    /// Unmuted, importance 0, receiving `format`.
    pub fn new(format: AudioFormat) -> Self {
        Self { format, rx_muted: false, tx_muted: false, importance: 0 }
    }
}

/// One participant's audio for one tick.
#[derive(Debug, Clone, Copy)]
pub enum FrameInput<'a> {
    /// A decoded frame: 960 samples, 48 kHz mono. `level` is the RFC 6464
    /// level the sender reported; without it the mixer measures the frame.
    Decoded {
        /// The PCM.
        pcm: &'a [i16],
        /// The sender's level, if it sends the extension.
        level: Option<AudioLevel>,
    },
    /// Nothing was decoded. `level` is the sender's RFC 6464 level if a
    /// packet carried one; `None` means silence (lost, DTX, or no packet).
    Silent {
        /// The sender's level, if a packet arrived with one.
        level: Option<AudioLevel>,
    },
}

/// Which stream a payload belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// The receiver is a speaker: the mix without itself, encoded for it alone.
    MixMinus,
    /// The common mix, encoded once for every listener with this format.
    Shared(AudioFormat),
}

/// One payload for one receiver.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Who gets it.
    pub receiver: ParticipantId,
    /// The encoded 20 ms; shared payloads are the same allocation for all.
    pub payload: Arc<[u8]>,
    /// Where it came from.
    pub kind: StreamKind,
}

/// Something the conference should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixerEvent {
    /// The dominant speaker changed (`None`: nobody speaks).
    ActiveSpeakerChanged(Option<ParticipantId>),
}

/// Work counters for one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickStats {
    /// Inputs that arrived decoded.
    pub decoded_inputs: usize,
    /// Frames summed into the mix.
    pub mixed: usize,
    /// Mix-minus encodes (one per speaker that hears).
    pub own_encodes: usize,
    /// Common-mix encodes (one per format with a listener).
    pub shared_encodes: usize,
    /// Speakers alone in the mix, sent the cached silence frame instead of
    /// an encode of their (all-zero) mix-minus.
    pub silent_mix_minus: usize,
}

impl TickStats {
    /// All encodes this tick.
    pub fn encodes(&self) -> usize {
        self.own_encodes + self.shared_encodes
    }
}

/// What one tick produced. Reused from tick to tick.
#[derive(Debug, Default)]
pub struct TickOutput {
    /// Payloads to packetize and send, per receiver.
    pub deliveries: Vec<Delivery>,
    /// Events since the previous tick, in order.
    pub events: Vec<MixerEvent>,
    /// Participants whose frames the mixer wants decoded next tick whatever
    /// their level says: speakers, and candidates above the speech level.
    /// Anyone else needs a decode only if [`Mixer::needs_decode`] says so.
    pub decode_next: Vec<ParticipantId>,
    /// Work done.
    pub stats: TickStats,
}

/// A speaker's own stream: its encoder and limiter.
struct OwnStream {
    encoder: Box<dyn AudioEncoder>,
    limiter: Limiter,
}

struct Participant {
    id: ParticipantId,
    settings: ParticipantSettings,
    group: usize,
    pcm: Box<[i16]>,
    has_pcm: bool,
    own: Option<OwnStream>,
    agc: agc::Agc,
}

/// The shared encoder of one format.
struct Group {
    format: AudioFormat,
    encoder: Box<dyn AudioEncoder>,
    members: usize,
    /// One frame of digital silence in this format, encoded once: what a
    /// speaker who is the only one in the mix hears (its mix-minus is
    /// exactly zero), so that common case costs no encode.
    silence: Arc<[u8]>,
}

/// One conference's audio mixer. See the [module docs](self).
pub struct Mixer {
    config: MixerConfig,
    participants: Vec<Participant>,
    /// Parallel to `participants`.
    activity: Vec<Activity>,
    index: HashMap<ParticipantId, usize>,
    groups: Vec<Group>,
    common_limiter: Limiter,
    dominant: Option<ParticipantId>,
    challenger: Option<(ParticipantId, u32)>,
    /// Events from calls between ticks, reported with the next tick.
    pending_events: Vec<MixerEvent>,
    acc: Vec<i32>,
    minus: Vec<i32>,
    common: Vec<i16>,
    scratch: Vec<i16>,
    stereo: Vec<i16>,
    payload: Vec<u8>,
    output: TickOutput,
}

impl Mixer {
    /// An empty conference.
    pub fn new(config: MixerConfig) -> Self {
        Self {
            config,
            participants: Vec::new(),
            activity: Vec::new(),
            index: HashMap::new(),
            groups: Vec::new(),
            common_limiter: Limiter::default(),
            dominant: None,
            challenger: None,
            pending_events: Vec::new(),
            acc: vec![0; FRAME_SAMPLES],
            minus: vec![0; FRAME_SAMPLES],
            common: vec![0; FRAME_SAMPLES],
            scratch: vec![0; FRAME_SAMPLES],
            stereo: vec![0; FRAME_SAMPLES * 2],
            payload: Vec::with_capacity(crate::codec::MAX_OPUS_PACKET),
            output: TickOutput::default(),
        }
    }

    /// Adds a participant; its format's shared encoder is made if new.
    pub fn add_participant(&mut self, id: ParticipantId, settings: ParticipantSettings) -> Result<(), MixerError> {
        if self.index.contains_key(&id) {
            return Err(MixerError::DuplicateParticipant(id));
        }
        let group = match self.groups.iter().position(|g| g.format == settings.format) {
            Some(g) => g,
            None => {
                let encoder = settings.format.new_encoder(&self.config.opus)?;
                let mut quiet = settings.format.new_encoder(&self.config.opus)?;
                let mut payload = Vec::new();
                let mut stereo = vec![0; 2 * FRAME_SAMPLES];
                encode(quiet.as_mut(), &[0; FRAME_SAMPLES], &mut stereo, &mut payload)?;
                let silence = Arc::from(payload.as_slice());
                self.groups.push(Group { format: settings.format, encoder, members: 0, silence });
                self.groups.len() - 1
            }
        };
        self.groups[group].members += 1;
        self.index.insert(id, self.participants.len());
        self.participants.push(Participant {
            id,
            settings,
            group,
            pcm: vec![0; FRAME_SAMPLES].into_boxed_slice(),
            has_pcm: false,
            agc: agc::Agc::default(),
            own: None,
        });
        self.activity.push(Activity {
            level: AudioLevel::SILENCE,
            eligible: !settings.rx_muted,
            importance: settings.importance,
            ..Activity::default()
        });
        Ok(())
    }

    /// Removes a participant; a format nobody uses any more loses its encoder.
    pub fn remove_participant(&mut self, id: ParticipantId) -> Result<(), MixerError> {
        let i = self.index.remove(&id).ok_or(MixerError::UnknownParticipant(id))?;
        let gone = self.participants.swap_remove(i);
        self.activity.swap_remove(i);
        if let Some(moved) = self.participants.get(i) {
            self.index.insert(moved.id, i);
        }
        let g = gone.group;
        self.groups[g].members -= 1;
        if self.groups[g].members == 0 {
            self.groups.swap_remove(g);
            let moved = self.groups.len();
            for p in self.participants.iter_mut().filter(|p| p.group == moved) {
                p.group = g;
            }
        }
        if self.dominant == Some(id) {
            self.dominant = None;
            self.pending_events.push(MixerEvent::ActiveSpeakerChanged(None));
        }
        Ok(())
    }

    fn slot(&self, id: ParticipantId) -> Result<usize, MixerError> {
        self.index.get(&id).copied().ok_or(MixerError::UnknownParticipant(id))
    }

    /// Stops (or resumes) mixing this participant's audio into the conference.
    pub fn set_rx_muted(&mut self, id: ParticipantId, muted: bool) -> Result<(), MixerError> {
        let i = self.slot(id)?;
        self.participants[i].settings.rx_muted = muted;
        self.activity[i].eligible = !muted;
        Ok(())
    }

    /// Stops (or resumes) sending this participant any audio.
    pub fn set_tx_muted(&mut self, id: ParticipantId, muted: bool) -> Result<(), MixerError> {
        let i = self.slot(id)?;
        self.participants[i].settings.tx_muted = muted;
        Ok(())
    }

    /// Sets this participant's importance for speaker selection.
    pub fn set_importance(&mut self, id: ParticipantId, importance: i32) -> Result<(), MixerError> {
        let i = self.slot(id)?;
        self.participants[i].settings.importance = importance;
        self.activity[i].importance = importance;
        Ok(())
    }

    /// The level at or above which (RFC 6464 -dBov) a frame is speech.
    pub fn speech_level(&self) -> u8 {
        self.config.speech_level
    }

    /// Whether the caller should decode this participant's next frame, given
    /// the RFC 6464 level its packet carries (`None`: it sends no levels).
    /// Yes for speakers, for rx-unmuted senders whose level is speech, and for
    /// senders without levels (the mixer must measure them). Otherwise pass
    /// [`FrameInput::Silent`] and skip the decode.
    pub fn needs_decode(&self, id: ParticipantId, level: Option<AudioLevel>) -> bool {
        let Some(&i) = self.index.get(&id) else { return false };
        let a = &self.activity[i];
        a.eligible && (a.speaking || level.is_none_or(|l| l.level <= self.config.speech_level))
    }

    /// Hands in this tick's audio of one participant (the last call wins).
    /// Participants without input this tick count as silent.
    pub fn set_input(&mut self, id: ParticipantId, input: FrameInput<'_>) -> Result<(), MixerError> {
        let i = self.slot(id)?;
        let (level, pcm) = match input {
            FrameInput::Decoded { pcm, level } => {
                if pcm.len() != FRAME_SAMPLES {
                    return Err(MixerError::FrameLength(pcm.len()));
                }
                (level.unwrap_or_else(|| AudioLevel::from_samples(pcm, true)).level, Some(pcm))
            }
            FrameInput::Silent { level } => (level.map_or(AudioLevel::SILENCE, |l| l.level), None),
        };
        let p = &mut self.participants[i];
        p.has_pcm = pcm.is_some();
        if let Some(pcm) = pcm {
            p.pcm.copy_from_slice(pcm);
            if self.config.agc {
                p.agc.process(&mut p.pcm, level <= self.config.speech_level);
            }
        }
        self.activity[i].level = level;
        Ok(())
    }

    /// The participants in the mix, in no particular order.
    pub fn speakers(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.participants.iter().zip(&self.activity).filter(|(_, a)| a.speaking).map(|(p, _)| p.id)
    }

    /// The dominant speaker, if anyone speaks.
    pub fn active_speaker(&self) -> Option<ParticipantId> {
        self.dominant
    }

    /// Participants in the conference.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// Whether the conference is empty.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// Mixes and encodes one 20 ms tick from the inputs handed in since the
    /// last one. An encoder failure aborts the tick; the inputs are cleared
    /// either way.
    pub fn tick(&mut self) -> Result<&TickOutput, MixerError> {
        let result = self.run_tick();
        for (p, a) in self.participants.iter_mut().zip(&mut self.activity) {
            p.has_pcm = false;
            a.level = AudioLevel::SILENCE;
        }
        result.map(|()| &self.output)
    }

    fn run_tick(&mut self) -> Result<(), MixerError> {
        let out = &mut self.output;
        out.deliveries.clear();
        out.decode_next.clear();
        out.stats = TickStats::default();
        out.events.clear();
        out.events.append(&mut self.pending_events);

        for a in &mut self.activity {
            let level = a.level;
            a.observe(level, &self.config);
        }
        speakers::select(&mut self.activity, &self.config);

        // Streams follow the speaker set; a new speaker forks its group's
        // encoder before the group encodes this tick (see the module docs).
        for (p, a) in self.participants.iter_mut().zip(&self.activity) {
            let wants_own = a.speaking && !p.settings.tx_muted;
            if wants_own && p.own.is_none() {
                let encoder = self.groups[p.group].encoder.fork();
                p.own = Some(OwnStream { encoder, limiter: self.common_limiter });
            } else if !wants_own {
                p.own = None;
            }
        }

        // The common mix.
        self.acc.fill(0);
        for (p, a) in self.participants.iter().zip(&self.activity) {
            out.stats.decoded_inputs += usize::from(p.has_pcm);
            if a.speaking && p.has_pcm {
                out.stats.mixed += 1;
                for (acc, &s) in self.acc.iter_mut().zip(p.pcm.iter()) {
                    *acc += i32::from(s);
                }
            }
        }
        self.common_limiter.process(&self.acc, &mut self.common);

        // One shared encode per format that has a listener.
        let mut shared: Vec<Option<Arc<[u8]>>> = vec![None; self.groups.len()];
        for p in &self.participants {
            if p.own.is_some() || p.settings.tx_muted || shared[p.group].is_some() {
                continue;
            }
            let group = &mut self.groups[p.group];
            encode(group.encoder.as_mut(), &self.common, &mut self.stereo, &mut self.payload)?;
            out.stats.shared_encodes += 1;
            shared[p.group] = Some(Arc::from(self.payload.as_slice()));
        }

        let mixed = out.stats.mixed;
        for p in &mut self.participants {
            let (payload, kind) = match &mut p.own {
                // Nobody else is in the mix: the mix-minus is exactly zero.
                Some(_) if mixed - usize::from(p.has_pcm && self.activity[self.index[&p.id]].speaking) == 0 => {
                    out.stats.silent_mix_minus += 1;
                    (Arc::clone(&self.groups[p.group].silence), StreamKind::MixMinus)
                }
                Some(own) => {
                    for ((m, &acc), &s) in self.minus.iter_mut().zip(&self.acc).zip(p.pcm.iter()) {
                        *m = acc - if p.has_pcm { i32::from(s) } else { 0 };
                    }
                    own.limiter.process(&self.minus, &mut self.scratch);
                    encode(own.encoder.as_mut(), &self.scratch, &mut self.stereo, &mut self.payload)?;
                    out.stats.own_encodes += 1;
                    (Arc::from(self.payload.as_slice()), StreamKind::MixMinus)
                }
                None if p.settings.tx_muted => continue,
                None => match &shared[p.group] {
                    Some(payload) => (Arc::clone(payload), StreamKind::Shared(self.groups[p.group].format)),
                    None => continue,
                },
            };
            out.deliveries.push(Delivery { receiver: p.id, payload, kind });
        }

        for (p, a) in self.participants.iter().zip(&self.activity) {
            if a.speaking || a.is_candidate() {
                out.decode_next.push(p.id);
            }
        }
        self.update_dominant();
        Ok(())
    }

    /// The dominant speaker changes when another speaker has been the loudest
    /// for `dominant_ticks` in a row, or when it leaves the mix.
    fn update_dominant(&mut self) {
        let speaking = || self.participants.iter().zip(&self.activity).filter(|(_, a)| a.speaking);
        let loudest = speaking()
            .filter(|(_, a)| a.level <= self.config.speech_level)
            .min_by_key(|(p, a)| (a.level, std::cmp::Reverse(a.importance), p.id))
            .map(|(p, _)| p.id);
        let still_speaking = self.dominant.is_some_and(|d| speaking().any(|(p, _)| p.id == d));
        let next = if !still_speaking {
            self.challenger = None;
            loudest.or_else(|| speaking().min_by_key(|(p, a)| (a.level, p.id)).map(|(p, _)| p.id))
        } else {
            match loudest {
                Some(l) if Some(l) != self.dominant => {
                    let run = match self.challenger {
                        Some((c, run)) if c == l => run + 1,
                        _ => 1,
                    };
                    self.challenger = Some((l, run));
                    if run >= self.config.dominant_ticks {
                        self.challenger = None;
                        Some(l)
                    } else {
                        self.dominant
                    }
                }
                _ => {
                    self.challenger = None;
                    self.dominant
                }
            }
        };
        if next != self.dominant {
            self.dominant = next;
            self.output.events.push(MixerEvent::ActiveSpeakerChanged(next));
        }
    }
}

/// Encodes mono `pcm`, duplicated into both channels for a stereo encoder.
fn encode(
    encoder: &mut dyn AudioEncoder,
    pcm: &[i16],
    stereo: &mut [i16],
    payload: &mut Vec<u8>,
) -> Result<(), CodecError> {
    if encoder.channels() == 2 {
        for (pair, &s) in stereo.chunks_exact_mut(2).zip(pcm) {
            pair[0] = s;
            pair[1] = s;
        }
        encoder.encode(stereo, payload)
    } else {
        encoder.encode(pcm, payload)
    }
}
