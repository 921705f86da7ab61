//! 48 kHz ↔ 8 kHz for the narrowband codecs (G.711) and 48 kHz ↔ 16 kHz for
//! the wideband one (G.722).
//!
//! Each rate pair has one low-pass FIR that serves both directions: 192 taps,
//! a windowed sinc with a Kaiser window (β = 7, about 70 dB stop-band and a
//! transition about 1.1 kHz wide). For 8 kHz it is cut at 3.7 kHz, so the
//! band G.711 carries (300–3400 Hz) passes flat and what lies above 4.25 kHz
//! — which would fold back into the band at 8 kHz — is gone. For 16 kHz it
//! is cut at 7.4 kHz: flat to about 6.9 kHz, near the 7 kHz G.722 carries,
//! and gone by 8 kHz. All run as polyphase filters: a decimator evaluates the
//! FIR only at the samples it keeps, an interpolator only at the non-zero
//! inputs of the zero-stuffed signal. The group delay is the filter's half
//! length, just under 2 ms each way.
//!
//! All keep their history across frames, so consecutive frames join without
//! a click; make one per stream.

use super::FRAME_SAMPLES;

const TAPS: usize = 192;
/// Samples per 20 ms frame at 8 kHz.
const NARROW_FRAME: usize = FRAME_SAMPLES / 6;
/// Samples per 20 ms frame at 16 kHz.
const WIDE_FRAME: usize = FRAME_SAMPLES / 3;
const NARROW_CUTOFF_HZ: f64 = 3_700.0;
const WIDE_CUTOFF_HZ: f64 = 7_400.0;
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

/// The low-pass taps for `cutoff_hz` at 48 kHz, normalised to unity gain at
/// DC.
fn lowpass(cutoff_hz: f64) -> [f32; TAPS] {
    let fc = cutoff_hz / 48_000.0;
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

/// Low-pass then keep every `ratio`-th sample of a 48 kHz frame.
#[derive(Clone)]
struct FirDecimator {
    ratio: usize,
    taps: [f32; TAPS],
    /// The previous TAPS - 1 input samples, then the current frame.
    window: Vec<f32>,
}

impl FirDecimator {
    /// `ratio` must divide both [`FRAME_SAMPLES`] and `TAPS`.
    fn new(ratio: usize, cutoff_hz: f64) -> Self {
        Self { ratio, taps: lowpass(cutoff_hz), window: vec![0.0; TAPS - 1 + FRAME_SAMPLES] }
    }

    /// `output` holds `FRAME_SAMPLES / ratio` samples.
    fn process(&mut self, input: &[i16; FRAME_SAMPLES], output: &mut [i16]) {
        self.window.copy_within(FRAME_SAMPLES.., 0);
        for (w, &s) in self.window[TAPS - 1..].iter_mut().zip(input) {
            *w = f32::from(s);
        }
        for (m, out) in output.iter_mut().enumerate() {
            // The output at input index ratio*m + ratio - 1 sees the TAPS
            // samples ending there; taps are symmetric, so no reversal.
            let end = self.ratio * m + self.ratio - 1 + TAPS;
            let acc: f32 = self.window[end - TAPS..end].iter().zip(&self.taps).map(|(x, h)| x * h).sum();
            *out = to_i16(acc);
        }
    }
}

/// Insert `ratio - 1` zeros after each sample and low-pass, up to 48 kHz.
#[derive(Clone)]
struct FirInterpolator {
    ratio: usize,
    /// Phase after phase, `TAPS / ratio` taps each: phase p's tap j is
    /// ratio * taps[p + ratio * j], the gain making up for the energy the
    /// stuffed zeros carry.
    phases: [f32; TAPS],
    /// The previous TAPS / ratio - 1 input samples, then the current frame.
    window: Vec<f32>,
}

impl FirInterpolator {
    /// `ratio` must divide both [`FRAME_SAMPLES`] and `TAPS`.
    fn new(ratio: usize, cutoff_hz: f64) -> Self {
        let taps = lowpass(cutoff_hz);
        let phase_taps = TAPS / ratio;
        let mut phases = [0f32; TAPS];
        for (p, phase) in phases.chunks_exact_mut(phase_taps).enumerate() {
            for (j, t) in phase.iter_mut().enumerate() {
                *t = ratio as f32 * taps[p + ratio * j];
            }
        }
        Self { ratio, phases, window: vec![0.0; phase_taps - 1 + FRAME_SAMPLES / ratio] }
    }

    /// `input` holds `FRAME_SAMPLES / ratio` samples.
    fn process(&mut self, input: &[i16], output: &mut [i16; FRAME_SAMPLES]) {
        let phase_taps = TAPS / self.ratio;
        self.window.copy_within(input.len().., 0);
        for (w, &s) in self.window[phase_taps - 1..].iter_mut().zip(input) {
            *w = f32::from(s);
        }
        for (m, outs) in output.chunks_exact_mut(self.ratio).enumerate() {
            // Newest input sample is window[m + phase_taps - 1]; a phase's
            // tap j multiplies the input j samples back.
            let recent = &self.window[m..m + phase_taps];
            for (out, phase) in outs.iter_mut().zip(self.phases.chunks_exact(phase_taps)) {
                let acc: f32 = recent.iter().rev().zip(phase).map(|(x, h)| x * h).sum();
                *out = to_i16(acc);
            }
        }
    }
}

/// Low-pass then keep every sixth sample: 960 samples at 48 kHz in, 160 at
/// 8 kHz out.
#[derive(Clone)]
pub struct Decimator48To8(FirDecimator);

impl Default for Decimator48To8 {
    fn default() -> Self {
        Self(FirDecimator::new(6, NARROW_CUTOFF_HZ))
    }
}

impl Decimator48To8 {
    /// A decimator with silent history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resamples one frame: `input` is 960 samples, `output` 160.
    pub fn process(&mut self, input: &[i16; FRAME_SAMPLES], output: &mut [i16; NARROW_FRAME]) {
        self.0.process(input, output);
    }
}

/// Insert five zeros after each sample and low-pass: 160 samples at 8 kHz
/// in, 960 at 48 kHz out.
#[derive(Clone)]
pub struct Interpolator8To48(FirInterpolator);

impl Default for Interpolator8To48 {
    fn default() -> Self {
        Self(FirInterpolator::new(6, NARROW_CUTOFF_HZ))
    }
}

impl Interpolator8To48 {
    /// An interpolator with silent history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resamples one frame: `input` is 160 samples, `output` 960.
    pub fn process(&mut self, input: &[i16; NARROW_FRAME], output: &mut [i16; FRAME_SAMPLES]) {
        self.0.process(input, output);
    }
}

/// Low-pass then keep every third sample: 960 samples at 48 kHz in, 320 at
/// 16 kHz out.
#[derive(Clone)]
pub struct Decimator48To16(FirDecimator);

impl Default for Decimator48To16 {
    fn default() -> Self {
        Self(FirDecimator::new(3, WIDE_CUTOFF_HZ))
    }
}

impl Decimator48To16 {
    /// A decimator with silent history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resamples one frame: `input` is 960 samples, `output` 320.
    pub fn process(&mut self, input: &[i16; FRAME_SAMPLES], output: &mut [i16; WIDE_FRAME]) {
        self.0.process(input, output);
    }
}

/// Insert two zeros after each sample and low-pass: 320 samples at 16 kHz
/// in, 960 at 48 kHz out.
#[derive(Clone)]
pub struct Interpolator16To48(FirInterpolator);

impl Default for Interpolator16To48 {
    fn default() -> Self {
        Self(FirInterpolator::new(3, WIDE_CUTOFF_HZ))
    }
}

impl Interpolator16To48 {
    /// An interpolator with silent history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resamples one frame: `input` is 320 samples, `output` 960.
    pub fn process(&mut self, input: &[i16; WIDE_FRAME], output: &mut [i16; FRAME_SAMPLES]) {
        self.0.process(input, output);
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

    fn decimate_wide(freq: f64, amp: f64) -> Vec<i16> {
        let mut d = Decimator48To16::new();
        let mut out = Vec::new();
        for f in 0..10 {
            let frame: [i16; FRAME_SAMPLES] =
                sine(freq, amp, 48_000, f * FRAME_SAMPLES, FRAME_SAMPLES).try_into().unwrap();
            let mut o = [0i16; WIDE_FRAME];
            d.process(&frame, &mut o);
            out.extend_from_slice(&o);
        }
        out.split_off(WIDE_FRAME * 2)
    }

    #[test]
    fn wideband_decimation_keeps_up_to_7_khz_and_removes_what_would_alias() {
        for freq in [300.0, 1000.0, 3000.0, 6000.0, 6500.0] {
            let a = goertzel_amplitude(&decimate_wide(freq, 10_000.0), freq, 16_000);
            assert!((20.0 * (a / 10_000.0).log10()).abs() < 0.3, "{freq} Hz: {a}");
        }
        // 10 kHz would fold to 6 kHz, 9 kHz to 7 kHz.
        for (freq, alias) in [(10_000.0, 6000.0), (9000.0, 7000.0)] {
            let a = goertzel_amplitude(&decimate_wide(freq, 10_000.0), alias, 16_000);
            assert!(20.0 * (a / 10_000.0).log10() < -55.0, "{freq} Hz leaks {a}");
        }
    }

    #[test]
    fn wideband_interpolation_keeps_the_tone_and_removes_images() {
        for (freq, images) in [(1000.0, [15_000.0, 17_000.0]), (6000.0, [10_000.0, 22_000.0])] {
            let mut i = Interpolator16To48::new();
            let mut out = Vec::new();
            for f in 0..10 {
                let frame: [i16; WIDE_FRAME] =
                    sine(freq, 10_000.0, 16_000, f * WIDE_FRAME, WIDE_FRAME).try_into().unwrap();
                let mut o = [0i16; FRAME_SAMPLES];
                i.process(&frame, &mut o);
                out.extend_from_slice(&o);
            }
            let out = out.split_off(FRAME_SAMPLES * 2);
            let a = goertzel_amplitude(&out, freq, 48_000);
            assert!((20.0 * (a / 10_000.0).log10()).abs() < 0.3, "{freq} Hz: {a}");
            for image in images {
                let a = goertzel_amplitude(&out, image, 48_000);
                assert!(20.0 * (a / 10_000.0).log10() < -55.0, "{freq} Hz: image at {image} Hz: {a}");
            }
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
