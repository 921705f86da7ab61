//! Packet loss concealment for the waveform codecs (G.711, G.722), in the
//! spirit of ITU-T G.711 Appendix I: a lost frame is filled by repeating the
//! last pitch period of what was heard (found by autocorrelation), joined to
//! it by a quarter-period overlap-add; a loss that goes on fades out — full
//! level for the first 10 ms, then 20 % less each 10 ms, silence after 60 ms
//! — and the first frame after a loss is cross-faded in from the concealed
//! continuation. Silence in a lost frame's place is a click at each edge and
//! a hole; this is neither.
//!
//! It works at the codec's own rate (8 kHz for G.711, 16 kHz for G.722), on
//! what the decoder produced, before the resampler to 48 kHz.

/// Pitch lags searched, at 8 kHz: 5 to 15 ms (66 to 200 Hz), scaled for
/// other rates.
const MIN_LAG_8K: usize = 40;
const MAX_LAG_8K: usize = 120;
/// How much of the past is kept at 8 kHz: the search window and the longest
/// lag, and some margin (48.75 ms, as Appendix I keeps).
const HISTORY_8K: usize = 390;
/// The correlation window at 8 kHz (20 ms).
const WINDOW_8K: usize = 160;

/// One stream's concealer at `rate` (a multiple of 8 kHz).
#[derive(Debug, Clone)]
pub(super) struct Concealer {
    scale: usize,
    history: Vec<i16>,
    /// While concealing: the pitch lag, where in the period we are, and how
    /// many samples of this loss have been made.
    lag: usize,
    phase: usize,
    lost_samples: usize,
    /// The period being repeated (a copy: the history moves on).
    period: Vec<i16>,
}

impl Concealer {
    /// A concealer for audio at `rate` Hz.
    pub(super) fn new(rate: u32) -> Self {
        let scale = (rate / 8_000).max(1) as usize;
        Self { scale, history: vec![0; HISTORY_8K * scale], lag: 0, phase: 0, lost_samples: 0, period: Vec::new() }
    }

    /// A frame that arrived: remembered, and cross-faded in after a loss.
    pub(super) fn good(&mut self, frame: &mut [i16]) {
        if self.lost_samples > 0 {
            // The concealed continuation, fading into the real signal over a
            // quarter period (at least 1 ms), so the join makes no click.
            let fade = (self.lag / 4).max(8 * self.scale).min(frame.len());
            let gain = self.gain();
            for (i, s) in frame.iter_mut().take(fade).enumerate() {
                let concealed = f32::from(self.next_repeat()) * gain;
                let w = (i + 1) as f32 / (fade + 1) as f32;
                *s = (concealed * (1.0 - w) + f32::from(*s) * w) as i16;
            }
            self.lost_samples = 0;
        }
        self.remember(frame);
    }

    /// Fills a lost frame.
    pub(super) fn conceal(&mut self, frame: &mut [i16]) {
        if self.lost_samples == 0 {
            self.lag = self.pitch_lag();
            let start = self.history.len() - self.lag;
            self.period = self.history[start..].to_vec();
            self.phase = 0;
            // Overlap-add a quarter period: the repeat starts one period
            // back, so its first samples are blended with the history's
            // last ones to hide the seam.
            let overlap = (self.lag / 4).max(1);
            let end = self.history.len();
            for i in 0..overlap {
                let w = (i + 1) as f32 / (overlap + 1) as f32;
                let old = f32::from(self.history[end - overlap + i]);
                let new = f32::from(self.period[self.lag - overlap + i]);
                self.period[self.lag - overlap + i] = (old * (1.0 - w) + new * w) as i16;
            }
        }
        for s in frame.iter_mut() {
            let gain = self.gain();
            *s = (f32::from(self.next_repeat()) * gain) as i16;
            self.lost_samples += 1;
        }
        // What was played is the past the next loss (or join) builds on.
        let played = frame.to_vec();
        self.remember(&played);
    }

    /// The next sample of the repeated period.
    fn next_repeat(&mut self) -> i16 {
        let s = self.period.get(self.phase).copied().unwrap_or(0);
        self.phase = (self.phase + 1) % self.period.len().max(1);
        s
    }

    /// Full level for 10 ms, then 20 % less per 10 ms: silent after 60 ms.
    fn gain(&self) -> f32 {
        let per_10ms = 80 * self.scale;
        let steps = self.lost_samples.saturating_sub(per_10ms) as f32 / per_10ms as f32;
        (1.0 - 0.2 * steps).max(0.0)
    }

    fn remember(&mut self, frame: &[i16]) {
        let n = frame.len().min(self.history.len());
        self.history.copy_within(n.., 0);
        let keep = self.history.len() - n;
        self.history[keep..].copy_from_slice(&frame[frame.len() - n..]);
    }

    /// The lag (in samples) whose shifted past best matches the last 20 ms,
    /// by normalised cross-correlation.
    fn pitch_lag(&self) -> usize {
        let (min, max, window) = (MIN_LAG_8K * self.scale, MAX_LAG_8K * self.scale, WINDOW_8K * self.scale);
        let h = &self.history;
        let recent = &h[h.len() - window..];
        let mut best = (min, f64::MIN);
        for lag in min..=max {
            let past = &h[h.len() - window - lag..h.len() - lag];
            let (mut dot, mut energy) = (0f64, 0f64);
            for (a, b) in recent.iter().zip(past) {
                dot += f64::from(*a) * f64::from(*b);
                energy += f64::from(*b) * f64::from(*b);
            }
            let score = if energy > 0.0 { dot / energy.sqrt() } else { 0.0 };
            if score > best.1 {
                best = (lag, score);
            }
        }
        best.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tone::residual_db;

    fn tone(freq: f64, rate: u32, from: usize, n: usize) -> Vec<i16> {
        (from..from + n)
            .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as i16)
            .collect()
    }

    /// A tone with every tenth 20 ms frame lost: concealed, it stays a
    /// tone (the residual at least 25 dB below it); silence in the holes
    /// would leave it about 10 dB below.
    #[test]
    fn a_tone_with_ten_percent_loss_stays_a_tone() {
        for rate in [8_000u32, 16_000] {
            let frame = (rate / 50) as usize;
            let mut plc = Concealer::new(rate);
            let (mut out, mut holes) = (Vec::new(), Vec::new());
            for f in 0..100 {
                let mut pcm = tone(440.0, rate, f * frame, frame);
                if f % 10 == 5 {
                    holes.extend(std::iter::repeat_n(0, frame));
                    plc.conceal(&mut pcm);
                } else {
                    holes.extend_from_slice(&pcm);
                    plc.good(&mut pcm);
                }
                out.extend_from_slice(&pcm);
            }
            let concealed = residual_db(&out, 440.0, rate);
            let silent = residual_db(&holes, 440.0, rate);
            assert!(concealed < -25.0, "{rate} Hz: concealed residual {concealed:.1} dB (silence: {silent:.1} dB)");
            assert!(silent > -15.0, "the silence reference: {silent:.1} dB");
        }
    }

    #[test]
    fn a_long_loss_fades_to_silence() {
        let mut plc = Concealer::new(8_000);
        let mut pcm = tone(300.0, 8_000, 0, 160);
        plc.good(&mut pcm);
        let mut last = vec![0i16; 160];
        for _ in 0..4 {
            plc.conceal(&mut last);
        }
        assert!(last.iter().all(|s| *s == 0), "silent after 60 ms");
        let mut first = vec![0i16; 160];
        let mut plc = Concealer::new(8_000);
        plc.good(&mut pcm.clone());
        plc.conceal(&mut first);
        assert!(first.iter().map(|s| s.unsigned_abs()).max().unwrap() > 4000, "the first 10 ms at full level");
    }
}
