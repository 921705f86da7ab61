//! Automatic gain control of one participant's speech, before mixing, so a
//! quiet microphone is heard about as well as a loud one.
//!
//! The gain follows the RMS level of speech frames only (a frame the
//! caller marks as speech), so pauses and background noise are never
//! pumped up. It rises slowly (2.5 dB/s: a talker's own dynamics survive)
//! and falls fast (25 dB/s: a sudden shout is tamed within a few frames),
//! stays within -6..+12 dB, and moves smoothly across each frame so a gain
//! change makes no click. The mixer's limiter still guards the sum.

/// Target speech level: RMS at -20 dBFS.
const TARGET_DB: f32 = -20.0;
const MAX_GAIN_DB: f32 = 12.0;
const MIN_GAIN_DB: f32 = -6.0;
/// Per 20 ms frame.
const RISE_DB: f32 = 0.05;
const FALL_DB: f32 = 0.5;

/// One participant's gain state.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Agc {
    gain_db: f32,
}

impl Agc {
    /// The current gain in dB.
    #[cfg(test)]
    pub(super) fn gain_db(&self) -> f32 {
        self.gain_db
    }

    /// Applies the gain to one frame in place, first adapting it if the
    /// frame is speech.
    pub(super) fn process(&mut self, pcm: &mut [i16], speech: bool) {
        let before = db_to_linear(self.gain_db);
        if speech && !pcm.is_empty() {
            let energy: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
            let rms = (energy / pcm.len() as f64).sqrt().max(1.0);
            let level_db = 20.0 * (rms / 32768.0).log10() as f32;
            let wanted = (TARGET_DB - level_db).clamp(MIN_GAIN_DB, MAX_GAIN_DB);
            let step = (wanted - self.gain_db).clamp(-FALL_DB, RISE_DB);
            self.gain_db += step;
        }
        let after = db_to_linear(self.gain_db);
        if before == 1.0 && after == 1.0 {
            return;
        }
        let n = pcm.len() as f32;
        for (i, s) in pcm.iter_mut().enumerate() {
            let g = before + (after - before) * (i as f32 + 1.0) / n;
            *s = (f32::from(*s) * g).round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}

fn db_to_linear(db: f32) -> f32 {
    if db == 0.0 {
        1.0
    } else {
        10f32.powf(db / 20.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tone::sine;

    fn rms_db(pcm: &[i16]) -> f32 {
        let e: f64 = pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len() as f64;
        20.0 * (e.sqrt() / 32768.0).log10() as f32
    }

    /// Runs `seconds` of a sine at `amp` through the AGC; returns the last
    /// frame's output level.
    fn run(agc: &mut Agc, amp: f64, seconds: usize, speech: bool) -> f32 {
        let mut last = 0.0;
        for k in 0..seconds * 50 {
            let mut frame = sine(300.0, amp, 48_000, k * 960, 960);
            agc.process(&mut frame, speech);
            last = rms_db(&frame);
        }
        last
    }

    #[test]
    fn a_quiet_talker_is_raised_towards_the_target_within_bounds() {
        let mut agc = Agc::default();
        // -33 dBFS RMS (sine at amplitude 1000): wants +13 dB, gets at most +12.
        let out = run(&mut agc, 1000.0, 10, true);
        assert!((agc.gain_db() - MAX_GAIN_DB).abs() < 0.01, "{}", agc.gain_db());
        assert!((out - (-33.3 + 12.0)).abs() < 0.3, "{out}");
    }

    #[test]
    fn a_loud_talker_is_lowered_quickly_and_silence_changes_nothing() {
        let mut agc = Agc::default();
        // -6 dBFS RMS: 14 dB too loud; -6 dB is the floor, reached in 12 frames.
        run(&mut agc, 16_000.0, 1, true);
        assert!((agc.gain_db() - MIN_GAIN_DB).abs() < 0.01);
        let mut fresh = Agc::default();
        let out = run(&mut fresh, 100.0, 10, false);
        assert_eq!(fresh.gain_db(), 0.0);
        assert!((out - rms_db(&sine(300.0, 100.0, 48_000, 0, 960))).abs() < 0.1);
    }

    #[test]
    fn the_gain_rises_at_most_2_5_db_a_second() {
        let mut agc = Agc::default();
        run(&mut agc, 1000.0, 2, true);
        assert!((agc.gain_db() - 5.0).abs() < 0.01, "{}", agc.gain_db());
    }
}
