//! Test signals and their measurement: sine tones in, the Goertzel filter
//! out. Shared by the codec and mixer tests.

/// `len` samples of a sine at `freq` Hz and peak `amp`, starting at sample
/// `start` of an endless tone (so consecutive calls join without a seam).
pub(crate) fn sine(freq: f64, amp: f64, rate: u32, start: usize, len: usize) -> Vec<i16> {
    (start..start + len)
        .map(|n| (amp * (2.0 * std::f64::consts::PI * freq * n as f64 / f64::from(rate)).sin()).round() as i16)
        .collect()
}

/// The peak amplitude of the `freq` component of `samples` (Goertzel). Exact
/// when `samples` holds a whole number of the tone's cycles.
pub(crate) fn goertzel_amplitude(samples: &[i16], freq: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / samples.len() as f64
}

/// The power of everything in `samples` but the `freq` tone (the residual
/// after the best-fitting sine at that frequency), in dB relative to the
/// tone's power: what clicks, holes and distortion add to a tone.
pub(crate) fn residual_db(samples: &[i16], freq: f64, rate: u32) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let (mut c, mut s) = (0.0, 0.0);
    for (i, x) in samples.iter().enumerate() {
        c += f64::from(*x) * (w * i as f64).cos();
        s += f64::from(*x) * (w * i as f64).sin();
    }
    let n = samples.len() as f64;
    let (a, b) = (2.0 * c / n, 2.0 * s / n);
    let residual: f64 = samples
        .iter()
        .enumerate()
        .map(|(i, x)| (f64::from(*x) - a * (w * i as f64).cos() - b * (w * i as f64).sin()).powi(2))
        .sum();
    10.0 * (residual / (n * (a * a + b * b) / 2.0)).log10()
}

/// `frames` 20 ms frames of a `freq` tone through an encoder and a decoder,
/// the frames `lost` says concealed instead of decoded: what a listener
/// hears of a lossy call.
pub(crate) fn through_lossy_call(
    enc: &mut dyn super::AudioEncoder,
    dec: &mut dyn super::AudioDecoder,
    freq: f64,
    frames: usize,
    lost: impl Fn(usize) -> bool,
) -> Vec<i16> {
    let (mut payload, mut pcm, mut heard) = (Vec::new(), [0i16; super::FRAME_SAMPLES], Vec::new());
    for f in 0..frames {
        let frame = sine(freq, 8000.0, 48_000, f * super::FRAME_SAMPLES, super::FRAME_SAMPLES);
        enc.encode(&frame, &mut payload).expect("a 20 ms frame encodes");
        if lost(f) {
            dec.conceal(&mut pcm).expect("concealment");
        } else {
            dec.decode(&payload, &mut pcm).expect("our own payload decodes");
        }
        heard.extend_from_slice(&pcm);
    }
    heard
}
