//! 48 kHz ↔ 8 kHz for the narrowband codecs (G.711).
//!
//! One low-pass FIR serves both directions: 192 taps, a windowed sinc cut at
//! 3.7 kHz with a Kaiser window (β = 7, about 70 dB stop-band), so the band
//! G.711 carries (300–3400 Hz) passes flat and what lies above 4.25 kHz —
//! which would fold back into the band at 8 kHz — is gone. Both run as
//! polyphase filters: the decimator evaluates the FIR only at the samples it
//! keeps (every sixth), the interpolator only at the non-zero inputs of the
//! zero-stuffed signal (32 taps per output phase). The group delay is the
//! filter's half length, just under 2 ms each way.
//!
//! Both keep their history across frames, so consecutive frames join without
//! a click; make one per stream.

use super::FRAME_SAMPLES;

const RATIO: usize = 6;
const TAPS: usize = 192;
const PHASE_TAPS: usize = TAPS / RATIO;
/// Samples per 20 ms frame at 8 kHz.
const NARROW_FRAME: usize = FRAME_SAMPLES / RATIO;
const CUTOFF_HZ: f64 = 3_700.0;
const KAISER_BETA: f64 = 7.0;

/// The zeroth-order modified Bessel function, by its power series.
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-12 * sum {
        term *= (x / (2.0 * k)).powi(2);
        sum += term;
        k += 1.0;
    }
    sum
}

/// The low-pass taps, normalised to unity gain at DC.
fn lowpass() -> [f32; TAPS] {
    let fc = CUTOFF_HZ / 48_000.0;
    let mid = (TAPS - 1) as f64 / 2.0;
    let mut h = [0f64; TAPS];
    for (n, tap) in h.iter_mut().enumerate() {
        let t = n as f64 - mid;
        let sinc =
            if t == 0.0 { 2.0 * fc } else { (2.0 * std::f64::consts::PI * fc * t).sin() / (std::f64::consts::PI * t) };
        let r = t / mid;
        let window = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(KAISER_BETA);
        *tap = sinc * window;
    }
    let dc: f64 = h.iter().sum();
    h.map(|t| (t / dc) as f32)
}

fn to_i16(x: f32) -> i16 {
    x.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// Low-pass then keep every sixth sample: 960 samples at 48 kHz in, 160 at
/// 8 kHz out.
#[derive(Clone)]
pub struct Decimator48To8 {
    taps: [f32; TAPS],
    /// The previous TAPS - 1 input samples, then the current frame.
    window: Vec<f32>,
}

impl Default for Decimator48To8 {
    fn default() -> Self {
        Self { taps: lowpass(), window: vec![0.0; TAPS - 1 + FRAME_SAMPLES] }
    }
}

impl Decimator48To8 {
    /// A decimator with silent history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resamples one frame: `input` is 960 samples, `output` 160.
    pub fn process(&mut self, input: &[i16; FRAME_SAMPLES], output: &mut [i16; NARROW_FRAME]) {
        self.window.copy_within(FRAME_SAMPLES.., 0);
        for (w, &s) in self.window[TAPS - 1..].iter_mut().zip(input) {
            *w = f32::from(s);
        }
        for (m, out) in output.iter_mut().enumerate() {
            // The output at input index RATIO*m + RATIO - 1 sees the TAPS
            // samples ending there; taps are symmetric, so no reversal.
            let end = RATIO * m + RATIO - 1 + TAPS;
            let acc: f32 = self.window[end - TAPS..end].iter().zip(&self.taps).map(|(x, h)| x * h).sum();
            *out = to_i16(acc);
        }
    }
}

/// Insert five zeros after each sample and low-pass: 160 samples at 8 kHz
/// in, 960 at 48 kHz out.
#[derive(Clone)]
pub struct Interpolator8To48 {
    /// `phases[p][j]` = RATIO * taps[p + RATIO * j]: the gain of 6 makes up
    /// for the energy the stuffed zeros carry.
    phases: [[f32; PHASE_TAPS]; RATIO],
    /// The previous PHASE_TAPS - 1 input samples, then the current frame.
    window: Vec<f32>,
}

impl Default for Interpolator8To48 {
    fn default() -> Self {
        let taps = lowpass();
        let mut phases = [[0f32; PHASE_TAPS]; RATIO];
        for (p, phase) in phases.iter_mut().enumerate() {
            for (j, t) in phase.iter_mut().enumerate() {
                *t = RATIO as f32 * taps[p + RATIO * j];
            }
        }
        Self { phases, window: vec![0.0; PHASE_TAPS - 1 + NARROW_FRAME] }
    }
}

impl Interpolator8To48 {
    /// An interpolator with silent history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resamples one frame: `input` is 160 samples, `output` 960.
    pub fn process(&mut self, input: &[i16; NARROW_FRAME], output: &mut [i16; FRAME_SAMPLES]) {
        self.window.copy_within(NARROW_FRAME.., 0);
        for (w, &s) in self.window[PHASE_TAPS - 1..].iter_mut().zip(input) {
            *w = f32::from(s);
        }
        for (m, outs) in output.chunks_exact_mut(RATIO).enumerate() {
            // Newest input sample is window[m + PHASE_TAPS - 1]; phase p's
            // tap j multiplies the input j samples back.
            let recent = &self.window[m..m + PHASE_TAPS];
            for (out, phase) in outs.iter_mut().zip(&self.phases) {
                let acc: f32 = recent.iter().rev().zip(phase).map(|(x, h)| x * h).sum();
                *out = to_i16(acc);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tone::{goertzel_amplitude, sine};

    fn decimate(freq: f64, amp: f64) -> Vec<i16> {
        let mut d = Decimator48To8::new();
        let mut out = Vec::new();
        for f in 0..10 {
            let frame: [i16; FRAME_SAMPLES] =
                sine(freq, amp, 48_000, f * FRAME_SAMPLES, FRAME_SAMPLES).try_into().unwrap();
            let mut o = [0i16; NARROW_FRAME];
            d.process(&frame, &mut o);
            out.extend_from_slice(&o);
        }
        out.split_off(NARROW_FRAME * 2)
    }

    #[test]
    fn decimation_keeps_the_voice_band_and_removes_what_would_alias() {
        for freq in [300.0, 1000.0, 3000.0] {
            let a = goertzel_amplitude(&decimate(freq, 10_000.0), freq, 8_000);
            assert!((20.0 * (a / 10_000.0).log10()).abs() < 0.3, "{freq} Hz: {a}");
        }
        // 6 kHz would fold to 2 kHz, 4.5 kHz to 3.5 kHz.
        for (freq, alias) in [(6000.0, 2000.0), (4500.0, 3500.0)] {
            let a = goertzel_amplitude(&decimate(freq, 10_000.0), alias, 8_000);
            assert!(20.0 * (a / 10_000.0).log10() < -55.0, "{freq} Hz leaks {a}");
        }
    }

    #[test]
    fn interpolation_keeps_the_tone_and_removes_images() {
        let mut i = Interpolator8To48::new();
        let mut out = Vec::new();
        for f in 0..10 {
            let frame: [i16; NARROW_FRAME] =
                sine(1000.0, 10_000.0, 8_000, f * NARROW_FRAME, NARROW_FRAME).try_into().unwrap();
            let mut o = [0i16; FRAME_SAMPLES];
            i.process(&frame, &mut o);
            out.extend_from_slice(&o);
        }
        let out = out.split_off(FRAME_SAMPLES * 2);
        let a = goertzel_amplitude(&out, 1000.0, 48_000);
        assert!((20.0 * (a / 10_000.0).log10()).abs() < 0.3, "{a}");
        // Zero-stuffing mirrors 1 kHz to 7, 9, 15, 17 kHz.
        for image in [7000.0, 9000.0, 15000.0] {
            let a = goertzel_amplitude(&out, image, 48_000);
            assert!(20.0 * (a / 10_000.0).log10() < -55.0, "image at {image} Hz: {a}");
        }
    }
}
