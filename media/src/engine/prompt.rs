//! Audio the bridge plays to one endpoint instead of the conference: the
//! lobby of a space with a passcode, a guest waiting for its host, and an
//! IVR asking for a meeting ID. Tone prompts are generated here (no
//! recordings to ship); a spoken prompt is just another clip of PCM.

use std::sync::Arc;

use crate::codec::FRAME_SAMPLES;

/// A clip of 48 kHz mono PCM, played from the start, then looping from a
/// point or falling silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The samples; a whole number of 20 ms frames is not required.
    pub pcm: Arc<[i16]>,
    /// At the end, go on from this sample; `None`: fall silent.
    pub loop_from: Option<usize>,
}

const RATE: f64 = 48_000.0;

/// `ms` of a sine (with 5 ms fades, so no clicks) or of silence (`hz` 0).
fn tone(out: &mut Vec<i16>, hz: f64, ms: usize, amplitude: f64) {
    let n = ms * 48;
    let fade = 240.0;
    for i in 0..n {
        let envelope = (i as f64 / fade).min((n - i) as f64 / fade).min(1.0);
        let v = if hz == 0.0 {
            0.0
        } else {
            amplitude * envelope * (2.0 * std::f64::consts::PI * hz * i as f64 / RATE).sin()
        };
        out.push(v as i16);
    }
}

impl Prompt {
    /// "Enter the passcode": three rising tones (C5 E5 G5), then 2.5 s for
    /// the caller to type, repeated.
    pub fn enter_passcode() -> Self {
        Self::tones_then_wait(&[523.25, 659.25, 783.99], 150, 2500)
    }

    /// "Wrong passcode, try again": two falling low tones once, then the
    /// passcode prompt, repeated.
    pub fn wrong_passcode() -> Self {
        Self::wrong_then(Self::enter_passcode())
    }

    /// "Enter the meeting ID" (an IVR): two rising fifths (C5 G5, twice),
    /// then 3 s for the caller to type, repeated.
    pub fn enter_meeting_id() -> Self {
        Self::tones_then_wait(&[523.25, 783.99, 523.25, 783.99], 120, 3000)
    }

    /// "That passcode is not correct; goodbye": the wrong-entry tones and a
    /// low one, once, before the call is hung up.
    pub fn goodbye() -> Self {
        let mut pcm = Vec::new();
        for (hz, ms) in [(329.63, 250), (261.63, 250), (196.0, 600)] {
            tone(&mut pcm, hz, ms, 8000.0);
            tone(&mut pcm, 0.0, 50, 0.0);
        }
        Self { pcm: pcm.into(), loop_from: None }
    }

    /// How long it plays once through.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.pcm.len() as u64 / 48)
    }

    /// "Waiting for the host": a soft falling pair (G4 E4) every 5 s, while
    /// a guest waits for an activator (CMS's `needsActivation`).
    pub fn waiting_for_host() -> Self {
        let mut pcm = Vec::new();
        for hz in [392.0, 329.63] {
            tone(&mut pcm, hz, 300, 4000.0);
            tone(&mut pcm, 0.0, 100, 0.0);
        }
        tone(&mut pcm, 0.0, 4200, 0.0);
        Self { pcm: pcm.into(), loop_from: Some(0) }
    }

    /// Tones of `ms` each, 30 ms apart, then `wait_ms` for the caller to
    /// type; repeated.
    fn tones_then_wait(tones: &[f64], ms: usize, wait_ms: usize) -> Self {
        let mut pcm = Vec::new();
        for &hz in tones {
            tone(&mut pcm, hz, ms, 8000.0);
            tone(&mut pcm, 0.0, 30, 0.0);
        }
        tone(&mut pcm, 0.0, wait_ms, 0.0);
        Self { pcm: pcm.into(), loop_from: Some(0) }
    }

    /// "No such meeting, try again": the wrong-entry tones, then the meeting
    /// ID prompt, repeated.
    pub fn wrong_meeting_id() -> Self {
        Self::wrong_then(Self::enter_meeting_id())
    }

    /// Two falling low tones once, then `prompt` repeated.
    fn wrong_then(prompt: Prompt) -> Self {
        let mut pcm = Vec::new();
        for hz in [329.63, 261.63] {
            tone(&mut pcm, hz, 250, 8000.0);
            tone(&mut pcm, 0.0, 50, 0.0);
        }
        tone(&mut pcm, 0.0, 500, 0.0);
        let again = pcm.len();
        pcm.extend_from_slice(&prompt.pcm);
        Self { pcm: pcm.into(), loop_from: Some(again) }
    }
}

/// A prompt being played.
#[derive(Debug, Clone)]
pub(super) struct Playing {
    prompt: Prompt,
    position: usize,
}

impl Playing {
    pub(super) fn new(prompt: Prompt) -> Self {
        Self { prompt, position: 0 }
    }

    /// The next 20 ms into `frame`; `false` once a one-shot clip has ended
    /// (then `frame` is silence).
    pub(super) fn next_frame(&mut self, frame: &mut [i16]) -> bool {
        let pcm = &self.prompt.pcm;
        frame.fill(0);
        if pcm.is_empty() {
            return false;
        }
        let mut filled = 0;
        while filled < FRAME_SAMPLES.min(frame.len()) {
            if self.position >= pcm.len() {
                match self.prompt.loop_from.filter(|&from| from < pcm.len()) {
                    Some(from) => self.position = from,
                    None => return filled > 0,
                }
            }
            let n = (pcm.len() - self.position).min(frame.len() - filled);
            frame[filled..filled + n].copy_from_slice(&pcm[self.position..self.position + n]);
            self.position += n;
            filled += n;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_looping_prompt_wraps_and_a_one_shot_ends() {
        let mut p = Playing::new(Prompt { pcm: vec![1i16; 1500].into(), loop_from: Some(0) });
        let mut frame = vec![0i16; FRAME_SAMPLES];
        for _ in 0..5 {
            assert!(p.next_frame(&mut frame));
            assert!(frame.iter().all(|&s| s == 1));
        }
        let mut once = Playing::new(Prompt { pcm: vec![1i16; 1500].into(), loop_from: None });
        assert!(once.next_frame(&mut frame));
        assert!(once.next_frame(&mut frame));
        assert_eq!(frame.iter().filter(|&&s| s == 1).count(), 1500 - FRAME_SAMPLES);
        assert!(!once.next_frame(&mut frame));
        assert!(frame.iter().all(|&s| s == 0));
    }

    #[test]
    fn tone_prompts_are_audible_and_bounded() {
        for p in [Prompt::enter_passcode(), Prompt::wrong_passcode()] {
            let peak = p.pcm.iter().map(|s| s.unsigned_abs()).max().unwrap();
            assert!((7000..=8000).contains(&peak), "{peak}");
        }
        assert_eq!(Prompt::enter_passcode().loop_from, Some(0));
        let wrong = Prompt::wrong_passcode();
        assert_eq!(wrong.pcm.len() - wrong.loop_from.unwrap(), Prompt::enter_passcode().pcm.len());
    }
}
