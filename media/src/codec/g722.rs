//! G.722 at 64 kbit/s (ITU-T G.722, sub-band ADPCM), pure Rust.
//!
//! The codec runs at 16 kHz: a 24-tap quadrature mirror filter splits each
//! pair of samples into a lower (0–4 kHz) and a higher (4–8 kHz) sub-band
//! sample at 8 kHz; the lower one is coded with 6-bit ADPCM, the higher with
//! 2-bit ADPCM, and the two codes share one octet (higher band in the top two
//! bits), so 20 ms is 160 octets. Each band has a backward-adaptive scale
//! factor and a pole-zero predictor (two poles, six zeros) that the decoder
//! rebuilds from the codes alone. The decoder reconstructs the lower band from
//! all six bits but adapts on the top four, exactly as the encoder does, which
//! keeps the two in step and is what makes the 56 and 48 kbit/s modes possible
//! (not offered here: SDP `G722/8000` means 64 kbit/s).
//!
//! The arithmetic follows the Recommendation's fixed-point description block
//! by block (the names in comments are its block names: QUANTL, LOGSCL,
//! UPPOL2, ...), with saturation exactly where it limits a value. The
//! engine's 16-bit samples enter the QMF one bit lower than the ITU's 14-bit
//! reference scaling would put them (its sub-band signals are limited to
//! ±16384), and leave it one bit higher, as common deployed implementations
//! do, so a full-scale input does not clip inside the codec.
//!
//! Conformance: ITU-T publishes digital test sequences for G.722 (Appendix
//! II) that check the ADPCM encoder and decoder bit-exactly with the QMF
//! bypassed. We do not have those files, so correctness rests on the tone
//! tests below — level, frequency, SNR and absence of QMF aliases for tones
//! from 300 Hz to 6 kHz through encoder and decoder. While writing this we
//! also compared codes and 16 kHz output, octet by octet, with the CMU/spandsp
//! fixed-point code (retyped into a throwaway harness, not kept) over 24,000
//! octets of tones, noise, full-scale square waves and silence: identical.
//! The one deliberate difference is that the receive QMF saturates its output
//! where that code lets it wrap.
//!
//! The RTP clock rate is 8000 although the audio is sampled at 16 kHz (an
//! RFC 3551 §4.5.2 historical error kept for compatibility); the
//! [resamplers](super::resample) bring the engine's 48 kHz frames down to
//! 16 kHz and back up.

use super::resample::{Decimator48To16, Interpolator16To48};
use super::{check_len, mono_frame, mono_frame_mut, AudioDecoder, AudioEncoder, CodecError, FRAME_SAMPLES};

/// Samples per 20 ms at 16 kHz.
const WIDE_FRAME: usize = FRAME_SAMPLES / 3;
/// Octets per 20 ms: one per pair of 16 kHz samples.
const G722_FRAME_BYTES: usize = WIDE_FRAME / 2;

/// The QMF's coefficients h(0), h(2), ..., h(22) scaled by 2^13; the filter
/// is symmetric, so h(2i + 1) = h(22 - 2i).
const QMF_EVEN: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];

/// QUANTL's decision levels (magnitudes, scaled by 2^12 relative to the
/// scale factor), one per magnitude interval 1..=29.
const Q6: [i32; 30] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940, 1023, 1121, 1219, 1339,
    1458, 1612, 1765, 1980, 2195, 2557, 2919,
];

/// The 6-bit lower-band code of magnitude interval `m` (1..=30), for a
/// negative and for a non-negative difference.
const ILN: [u8; 31] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4,
];
const ILP: [u8; 31] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34,
    33, 32,
];

/// Lower-band inverse quantiser on the top four code bits (INVQAL), scaled
/// by 2^15 relative to the scale factor: what both ends adapt on.
const QM4: [i32; 16] =
    [0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584, 1200, 0];

/// Lower-band inverse quantiser on all six bits (INVQBL): what the decoder
/// outputs at 64 kbit/s.
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232, -9360, -8576,
    -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776, -2400, -2032, -1688, -1360, -1040,
    -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456,
    4944, 4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];

/// The magnitude class (0..=7) of each 4-bit lower-band code, for LOGSCL.
const RL42: [usize; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// LOGSCL's log scale-factor multipliers per magnitude class.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];

/// Higher-band inverse quantiser (INVQAH) per 2-bit code.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// The magnitude class of each 2-bit higher-band code, for LOGSCH.
const RH2: [usize; 4] = [2, 1, 2, 1];
/// LOGSCH's log scale-factor multipliers per magnitude class.
const WH: [i32; 3] = [0, -214, 798];
/// QUANTH's one decision level, scaled by 2^12 relative to the scale factor.
const Q2: i32 = 564;

/// SCALEL/SCALEH's antilog table: 2^(i/32) scaled by 2^11.
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834, 2896, 2960, 3025,
    3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];

/// The limits of the sub-band reconstructed signal (LIMIT).
const RECONSTRUCTED_MIN: i32 = -16384;
const RECONSTRUCTED_MAX: i32 = 16383;

fn saturate(x: i32) -> i32 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// The sign test the Recommendation makes with `x >> 15` on 16-bit values:
/// zero counts as positive.
fn negative(x: i32) -> bool {
    x < 0
}

/// Which sub-band, for the constants that differ between them.
#[derive(Clone, Copy)]
enum SubBand {
    Lower,
    Higher,
}

impl SubBand {
    /// The largest log scale factor (LOGSCL / LOGSCH limit).
    fn nabla_max(self) -> i32 {
        match self {
            Self::Lower => 18_432,
            Self::Higher => 22_528,
        }
    }

    /// SCALEL / SCALEH's shift bias: the higher band's scale factor is two
    /// octaves smaller for the same log value.
    fn scale_shift(self) -> i32 {
        match self {
            Self::Lower => 8,
            Self::Higher => 10,
        }
    }
}

/// One sub-band's adaptive state: scale factor and pole-zero predictor.
/// Encoder and decoder hold identical copies while no octet is lost.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Band {
    /// Log scale factor (∇), 0..=[`SubBand::nabla_max`].
    nabla: i32,
    /// Scale factor (Δ), derived from `nabla`.
    delta: i32,
    /// Signal estimate: pole part plus zero part (PREDIC).
    estimate: i32,
    /// Zero-predictor output (FILTEZ).
    zero_part: i32,
    /// Quantised difference signal, newest first; `diff[0]` is the current.
    diff: [i32; 7],
    /// Zero-predictor coefficients b1..b6 (`zeros[0]` unused).
    zeros: [i32; 7],
    /// Reconstructed signal, newest first.
    recon: [i32; 3],
    /// Partially reconstructed signal (zero part plus difference), newest first.
    partial: [i32; 3],
    /// Pole-predictor coefficients a1, a2 (`poles[0]` unused).
    poles: [i32; 3],
}

impl Band {
    fn new(band: SubBand) -> Self {
        let mut b = Self {
            nabla: 0,
            delta: 0,
            estimate: 0,
            zero_part: 0,
            diff: [0; 7],
            zeros: [0; 7],
            recon: [0; 3],
            partial: [0; 3],
            poles: [0; 3],
        };
        b.delta = Self::scale(band, 0);
        b
    }

    /// SCALEL / SCALEH: the scale factor for a log scale factor.
    fn scale(band: SubBand, nabla: i32) -> i32 {
        // nabla is at most 22528, so the index is 0..=31 and the exponent
        // 0..=11: the shift never overflows.
        let mantissa = ILB[((nabla >> 6) & 31) as usize];
        let exponent = nabla >> 11;
        let shift = band.scale_shift();
        let wd = if exponent > shift { mantissa << (exponent - shift) } else { mantissa >> (shift - exponent) };
        wd << 2
    }

    /// LOGSCL / LOGSCH then SCALEL / SCALEH: leak the log scale factor
    /// towards zero and step it by the code's weight.
    fn adapt_scale(&mut self, band: SubBand, weight: i32) {
        self.nabla = (((self.nabla * 127) >> 7) + weight).clamp(0, band.nabla_max());
        self.delta = Self::scale(band, self.nabla);
    }

    /// Block 4: reconstruct, adapt the predictor on the quantised difference
    /// `d` and predict the next sample.
    fn adapt_predictor(&mut self, d: i32) {
        // RECONS, PARREC.
        self.diff[0] = d;
        self.recon[0] = saturate(self.estimate + d);
        self.partial[0] = saturate(self.zero_part + d);

        let p = self.partial;
        // UPPOL2: a2 follows the sign agreement of p with p one and two back.
        let wd1 = saturate(self.poles[1] << 2);
        let wd2 = (if negative(p[0]) == negative(p[1]) { -wd1 } else { wd1 }).min(32_767);
        let wd3 = if negative(p[0]) == negative(p[2]) { 128 } else { -128 };
        let a2 = ((wd2 >> 7) + wd3 + ((self.poles[2] * 32_512) >> 15)).clamp(-12_288, 12_288);

        // UPPOL1: a1 is kept inside the stability triangle set by a2.
        let wd1 = if negative(p[0]) == negative(p[1]) { 192 } else { -192 };
        let limit = saturate(15_360 - a2);
        let a1 = saturate(wd1 + ((self.poles[1] * 32_640) >> 15)).clamp(-limit, limit);

        // UPZERO: each b leaks and steps towards the sign agreement of d with
        // the difference it multiplies; no step when d is zero.
        let step = if d == 0 { 0 } else { 128 };
        for i in 1..7 {
            let wd = if negative(self.diff[i]) == negative(d) { step } else { -step };
            self.zeros[i] = saturate(wd + ((self.zeros[i] * 32_640) >> 15));
        }

        // DELAYA.
        self.diff.copy_within(0..6, 1);
        self.recon.copy_within(0..2, 1);
        self.partial.copy_within(0..2, 1);
        self.poles = [0, a1, a2];

        // FILTEP, FILTEZ, PREDIC.
        let pole_part = saturate(
            ((self.poles[1] * saturate(self.recon[1] * 2)) >> 15)
                + ((self.poles[2] * saturate(self.recon[2] * 2)) >> 15),
        );
        let zero_part: i32 = (1..7).map(|i| (self.zeros[i] * saturate(self.diff[i] * 2)) >> 15).sum();
        self.zero_part = saturate(zero_part);
        self.estimate = saturate(pole_part + self.zero_part);
    }

    /// The lower band's adaptation on its 4-bit code (INVQAL, LOGSCL,
    /// SCALEL, block 4): the same at both ends.
    fn adapt_lower(&mut self, code4: usize) {
        let d = (self.delta * QM4[code4]) >> 15;
        self.adapt_scale(SubBand::Lower, WL[RL42[code4]]);
        self.adapt_predictor(d);
    }

    /// The higher band's adaptation on its 2-bit code (INVQAH, LOGSCH,
    /// SCALEH, block 4); returns the quantised difference.
    fn adapt_higher(&mut self, code: usize) -> i32 {
        let d = (self.delta * QM2[code]) >> 15;
        self.adapt_scale(SubBand::Higher, WH[RH2[code]]);
        self.adapt_predictor(d);
        d
    }
}

/// The 16 kHz core of the encoder: transmit QMF and both ADPCM coders.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SbAdpcmEncoder {
    /// The last 24 input samples, oldest first.
    qmf: [i32; 24],
    lower: Band,
    higher: Band,
}

impl SbAdpcmEncoder {
    fn new() -> Self {
        Self { qmf: [0; 24], lower: Band::new(SubBand::Lower), higher: Band::new(SubBand::Higher) }
    }

    /// Codes two 16 kHz samples into one octet.
    fn encode(&mut self, first: i16, second: i16) -> u8 {
        self.qmf.copy_within(2.., 0);
        self.qmf[22] = i32::from(first);
        self.qmf[23] = i32::from(second);
        // x_A takes the samples an even number back from the newest (h(0),
        // h(2), ...), x_B the odd ones (h(1) = h(22), ...). Both fit an i32
        // with room: Σ|h| · 2^15 < 2^29.
        let (mut even, mut odd) = (0i32, 0i32);
        for (i, &h) in QMF_EVEN.iter().enumerate() {
            even += self.qmf[23 - 2 * i] * h;
            odd += self.qmf[22 - 2 * i] * QMF_EVEN[11 - i];
        }
        let x_lower = (even + odd) >> 14;
        let x_higher = (even - odd) >> 14;

        // SUBTRA, QUANTL: find the magnitude interval of the difference.
        let el = saturate(x_lower - self.lower.estimate);
        let magnitude = if el >= 0 { el } else { -(el + 1) };
        let interval = 1 + Q6[1..].iter().take_while(|&&q| magnitude >= (q * self.lower.delta) >> 12).count();
        let low = if el < 0 { ILN[interval] } else { ILP[interval] };
        self.lower.adapt_lower(usize::from(low >> 2));

        // SUBTRA, QUANTH.
        let eh = saturate(x_higher - self.higher.estimate);
        let magnitude = if eh >= 0 { eh } else { -(eh + 1) };
        let outer = magnitude >= (Q2 * self.higher.delta) >> 12;
        let high: u8 = match (eh < 0, outer) {
            (true, false) => 1,
            (true, true) => 0,
            (false, false) => 3,
            (false, true) => 2,
        };
        self.higher.adapt_higher(usize::from(high));

        (high << 6) | low
    }
}

/// The 16 kHz core of the decoder: both ADPCM decoders and the receive QMF.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SbAdpcmDecoder {
    /// The last 12 sums r_L + r_H, oldest first.
    sums: [i32; 12],
    /// The last 12 differences r_L - r_H, oldest first.
    diffs: [i32; 12],
    lower: Band,
    higher: Band,
}

impl SbAdpcmDecoder {
    fn new() -> Self {
        Self { sums: [0; 12], diffs: [0; 12], lower: Band::new(SubBand::Lower), higher: Band::new(SubBand::Higher) }
    }

    /// Decodes one octet into two 16 kHz samples.
    fn decode(&mut self, code: u8) -> [i16; 2] {
        let low = usize::from(code & 0x3F);
        let high = usize::from(code >> 6);

        // INVQBL, RECONS, LIMIT on all six bits; adapt on the top four.
        let dl = (self.lower.delta * QM6[low]) >> 15;
        let r_lower = (self.lower.estimate + dl).clamp(RECONSTRUCTED_MIN, RECONSTRUCTED_MAX);
        self.lower.adapt_lower(low >> 2);

        let estimate = self.higher.estimate;
        let dh = self.higher.adapt_higher(high);
        let r_higher = (estimate + dh).clamp(RECONSTRUCTED_MIN, RECONSTRUCTED_MAX);

        // Receive QMF: the first output weighs the differences with h(0),
        // h(2), ..., the second the sums with h(1), h(3), ...; the gain of 2
        // the Recommendation applies and the bit the encoder dropped make the
        // shift 11 rather than 13.
        self.sums.copy_within(1.., 0);
        self.diffs.copy_within(1.., 0);
        self.sums[11] = r_lower + r_higher;
        self.diffs[11] = r_lower - r_higher;
        let (mut first, mut second) = (0i32, 0i32);
        for (i, &h) in QMF_EVEN.iter().enumerate() {
            first += self.diffs[11 - i] * h;
            second += self.sums[11 - i] * QMF_EVEN[11 - i];
        }
        [saturate(first >> 11) as i16, saturate(second >> 11) as i16]
    }
}

/// G.722 encoder: 48 kHz mono in, 160 octets (20 ms at 16 kHz) out.
#[derive(Clone)]
pub struct G722Encoder {
    decimator: Decimator48To16,
    core: SbAdpcmEncoder,
}

impl Default for G722Encoder {
    fn default() -> Self {
        Self { decimator: Decimator48To16::new(), core: SbAdpcmEncoder::new() }
    }
}

impl G722Encoder {
    /// An encoder in the Recommendation's reset state.
    pub fn new() -> Self {
        Self::default()
    }
}

impl AudioEncoder for G722Encoder {
    fn channels(&self) -> u8 {
        1
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let frame = mono_frame(pcm)?;
        let mut wide = [0i16; WIDE_FRAME];
        self.decimator.process(frame, &mut wide);
        out.clear();
        out.extend(wide.chunks_exact(2).map(|pair| self.core.encode(pair[0], pair[1])));
        Ok(())
    }

    fn fork(&self) -> Box<dyn AudioEncoder> {
        Box::new(self.clone())
    }
}

/// G.722 decoder: 160 octets in, 48 kHz mono out. A lost frame is concealed
/// by repeating the last pitch period at 16 kHz, fading out over 60 ms (see
/// [`plc`](super::plc)), while the ADPCM state stands still (Appendix III's
/// re-synchronisation of the sub-band predictors is not done; the next frame
/// is cross-faded in instead).
pub struct G722Decoder {
    core: SbAdpcmDecoder,
    interpolator: Interpolator16To48,
    plc: super::plc::Concealer,
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self {
            core: SbAdpcmDecoder::new(),
            interpolator: Interpolator16To48::new(),
            plc: super::plc::Concealer::new(16_000),
        }
    }
}

impl G722Decoder {
    /// A decoder in the Recommendation's reset state.
    pub fn new() -> Self {
        Self::default()
    }
}

impl AudioDecoder for G722Decoder {
    fn channels(&self) -> u8 {
        1
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        check_len(G722_FRAME_BYTES, payload.len())?;
        let out = mono_frame_mut(out)?;
        let mut wide = [0i16; WIDE_FRAME];
        for (pair, &code) in wide.chunks_exact_mut(2).zip(payload) {
            pair.copy_from_slice(&self.core.decode(code));
        }
        self.plc.good(&mut wide);
        self.interpolator.process(&wide, out);
        Ok(())
    }

    fn conceal(&mut self, out: &mut [i16]) -> Result<(), CodecError> {
        let out = mono_frame_mut(out)?;
        let mut wide = [0i16; WIDE_FRAME];
        self.plc.conceal(&mut wide);
        self.interpolator.process(&wide, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tone::{goertzel_amplitude, sine};
    use proptest::prelude::*;

    /// Input sample n comes out of encoder and decoder at n + CODEC_DELAY:
    /// the decimator's and the interpolator's half lengths (95.5 samples
    /// each at 48 kHz) plus the QMF pair's 22 samples at 16 kHz (measured:
    /// the delay with the best SNR for every tone below).
    const CODEC_DELAY: usize = 255;

    /// Encodes and decodes `frames` frames of a tone; returns input and output.
    fn call(freq: f64, amp: f64, frames: usize) -> (Vec<i16>, Vec<i16>) {
        let (mut enc, mut dec) = (G722Encoder::new(), G722Decoder::new());
        let input = sine(freq, amp, 48_000, 0, frames * FRAME_SAMPLES);
        let (mut payload, mut pcm, mut output) = (Vec::new(), [0i16; FRAME_SAMPLES], Vec::new());
        for frame in input.chunks_exact(FRAME_SAMPLES) {
            enc.encode(frame, &mut payload).unwrap();
            assert_eq!(payload.len(), G722_FRAME_BYTES);
            dec.decode(&payload, &mut pcm).unwrap();
            output.extend_from_slice(&pcm);
        }
        (input, output)
    }

    /// Signal-to-noise ratio in dB of `output` against `input` delayed by
    /// [`CODEC_DELAY`], over the frames after the first five.
    fn snr_db(input: &[i16], output: &[i16]) -> f64 {
        let start = 5 * FRAME_SAMPLES;
        let (mut signal, mut noise) = (0.0f64, 0.0f64);
        for n in start..output.len() {
            let x = f64::from(input[n - CODEC_DELAY]);
            signal += x * x;
            noise += (f64::from(output[n]) - x).powi(2);
        }
        10.0 * (signal / noise).log10()
    }

    #[test]
    fn digital_silence_decodes_to_near_silence() {
        let (mut enc, mut dec) = (G722Encoder::new(), G722Decoder::new());
        let (mut payload, mut pcm) = (Vec::new(), [0i16; FRAME_SAMPLES]);
        for f in 0..10 {
            enc.encode(&[0; FRAME_SAMPLES], &mut payload).unwrap();
            if f == 0 {
                // From the reset state zero falls in the fourth positive
                // interval of the lower band and the inner positive one of the
                // higher: 0b11_111010. The predictor then drifts on the small
                // non-zero difference those codes stand for.
                assert_eq!(payload[0], 0xFA);
            }
            dec.decode(&payload, &mut pcm).unwrap();
            assert!(pcm.iter().all(|s| s.abs() <= 8), "frame {f}: {:?}", &pcm[..16]);
        }
    }

    #[test]
    fn silence_after_a_loud_tone_returns_to_near_silence() {
        let (mut enc, mut dec) = (G722Encoder::new(), G722Decoder::new());
        let (mut payload, mut pcm) = (Vec::new(), [0i16; FRAME_SAMPLES]);
        for f in 0..10 {
            enc.encode(&sine(1000.0, 30_000.0, 48_000, f * FRAME_SAMPLES, FRAME_SAMPLES), &mut payload).unwrap();
            dec.decode(&payload, &mut pcm).unwrap();
        }
        for _ in 0..10 {
            enc.encode(&[0; FRAME_SAMPLES], &mut payload).unwrap();
            dec.decode(&payload, &mut pcm).unwrap();
        }
        assert!(pcm.iter().all(|s| s.abs() <= 8), "{:?}", &pcm[..16]);
    }

    #[test]
    fn tones_cross_a_g722_call_at_their_level_and_frequency() {
        for freq in [300.0, 1000.0, 3000.0, 6000.0] {
            let (input, output) = call(freq, 8000.0, 25);
            let tail = &output[5 * FRAME_SAMPLES..];
            let level = 20.0 * (goertzel_amplitude(tail, freq, 48_000) / 8000.0).log10();
            assert!(level.abs() < 1.0, "{freq} Hz comes back at {level:.2} dB");
            // Nothing else: no harmonics, and no QMF alias at 8 kHz - f (a
            // sub-band swapped or a tap misplaced leaves one there).
            for other in [8000.0 - freq, freq * 0.5, freq * 2.0] {
                let a = goertzel_amplitude(tail, other, 48_000);
                assert!(20.0 * (a / 8000.0).log10() < -30.0, "{freq} Hz leaks {a:.0} at {other} Hz");
            }
            let snr = snr_db(&input, &output);
            assert!(snr > 25.0, "{freq} Hz: SNR {snr:.1} dB");
        }
    }

    #[test]
    fn encoding_is_deterministic_and_forks_exactly() {
        let input = sine(440.0, 12_000.0, 48_000, 0, 12 * FRAME_SAMPLES);
        let (mut a, mut b) = (G722Encoder::new(), G722Encoder::new());
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        let mut forked: Option<Box<dyn AudioEncoder>> = None;
        let mut stream = Vec::new();
        for (f, frame) in input.chunks_exact(FRAME_SAMPLES).enumerate() {
            a.encode(frame, &mut pa).unwrap();
            b.encode(frame, &mut pb).unwrap();
            assert_eq!(pa, pb);
            stream.extend_from_slice(&pa);
            if let Some(fork) = forked.as_mut() {
                fork.encode(frame, &mut pb).unwrap();
                assert_eq!(pa, pb, "frame {f}");
            }
            if f == 5 {
                forked = Some(a.fork());
            }
        }
        // FNV-1a of the stream: pins these exact octets against regressions.
        let hash =
            stream.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        assert_eq!(hash, PINNED_HASH, "{hash:#x}");
    }

    const PINNED_HASH: u64 = 0xd4d0_80ea_3de8_5302;

    /// The adaptive state stays inside the Recommendation's limits.
    fn assert_bounded(band: &Band, sub: SubBand) {
        assert!((0..=sub.nabla_max()).contains(&band.nabla), "nabla {}", band.nabla);
        assert!(band.delta > 0 && band.delta <= 32_064, "delta {}", band.delta);
        assert!(band.poles[2].abs() <= 12_288, "a2 {}", band.poles[2]);
        assert!(band.poles[1].abs() <= 15_360 - band.poles[2], "a1 {}", band.poles[1]);
    }

    #[test]
    fn full_scale_square_waves_keep_the_state_bounded() {
        // Straight into the 16 kHz core, past the resamplers' smoothing.
        for half_period in [1, 2, 3, 5, 16, 160] {
            let (mut enc, mut dec) = (SbAdpcmEncoder::new(), SbAdpcmDecoder::new());
            let square = |n: usize| if (n / half_period).is_multiple_of(2) { i16::MAX } else { i16::MIN };
            for n in (0..32_000).step_by(2) {
                let code = enc.encode(square(n), square(n + 1));
                dec.decode(code);
                for (band, sub) in [(&enc.lower, SubBand::Lower), (&enc.higher, SubBand::Higher)] {
                    assert_bounded(band, sub);
                }
            }
            assert_eq!(enc.lower, dec.lower, "half period {half_period}");
            assert_eq!(enc.higher, dec.higher, "half period {half_period}");
        }
        // And through the whole codec.
        let (mut enc, mut dec) = (G722Encoder::new(), G722Decoder::new());
        let (mut payload, mut pcm) = (Vec::new(), [0i16; FRAME_SAMPLES]);
        let square: Vec<i16> =
            (0..FRAME_SAMPLES).map(|n| if (n / 24).is_multiple_of(2) { i16::MAX } else { i16::MIN }).collect();
        for _ in 0..20 {
            enc.encode(&square, &mut payload).unwrap();
            dec.decode(&payload, &mut pcm).unwrap();
        }
    }

    #[test]
    fn the_g722_format_builds_a_g722_encoder() {
        let opus = crate::codec::OpusConfig::default();
        let mut enc = crate::codec::AudioFormat::G722.new_encoder(&opus).unwrap();
        let mut payload = Vec::new();
        enc.encode(&[0; FRAME_SAMPLES], &mut payload).unwrap();
        assert_eq!(payload.len(), G722_FRAME_BYTES);
        let stereo = crate::codec::AudioFormat { channels: 2, ..crate::codec::AudioFormat::G722 };
        assert!(matches!(stereo.new_encoder(&opus), Err(CodecError::Channels(2))));
        let wrong_clock = crate::codec::AudioFormat { clock_rate: 16_000, ..crate::codec::AudioFormat::G722 };
        assert!(wrong_clock.new_encoder(&opus).is_err());
    }

    #[test]
    fn wrong_lengths_are_errors() {
        let (mut enc, mut dec) = (G722Encoder::new(), G722Decoder::new());
        let (mut payload, mut pcm) = (Vec::new(), [0i16; FRAME_SAMPLES]);
        assert!(enc.encode(&[0; 480], &mut payload).is_err());
        assert!(dec.decode(&[0xFA; 80], &mut pcm).is_err());
        assert!(dec.decode(&[0xFA; G722_FRAME_BYTES], &mut pcm[..480]).is_err());
        dec.conceal(&mut pcm).unwrap();
    }

    /// Through the codec and the resampler, every tenth frame lost: the
    /// concealed tone has no click or hole, though the ADPCM state stood
    /// still over each gap (-24.5 dB residual when this was written).
    #[test]
    fn a_tone_with_ten_percent_loss_is_concealed_not_silenced() {
        use crate::codec::tone::{residual_db, through_lossy_call};
        let (mut enc, mut dec) = (G722Encoder::new(), G722Decoder::new());
        let got = through_lossy_call(&mut enc, &mut dec, 440.0, 100, |f| f % 10 == 5);
        let residual = residual_db(&got[FRAME_SAMPLES..], 440.0, 48_000);
        assert!(residual < -20.0, "residual {residual:.1} dB");
    }

    proptest! {
        #[test]
        fn any_octets_decode_without_panic(payloads in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), G722_FRAME_BYTES - 2..G722_FRAME_BYTES + 2), 1..12)) {
            let mut dec = G722Decoder::new();
            let mut pcm = [0i16; FRAME_SAMPLES];
            for payload in &payloads {
                prop_assert_eq!(dec.decode(payload, &mut pcm).is_ok(), payload.len() == G722_FRAME_BYTES);
                assert_bounded(&dec.core.lower, SubBand::Lower);
                assert_bounded(&dec.core.higher, SubBand::Higher);
            }
        }
    }

    #[test]
    #[ignore = "timing, run with --release --ignored --nocapture"]
    fn cost_per_frame() {
        let input = sine(1000.0, 8000.0, 48_000, 0, FRAME_SAMPLES);
        let (mut enc, mut dec) = (G722Encoder::new(), G722Decoder::new());
        let (mut payload, mut pcm) = (Vec::new(), [0i16; FRAME_SAMPLES]);
        let n = 5000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            enc.encode(std::hint::black_box(&input), &mut payload).unwrap();
        }
        let e = t.elapsed() / n;
        let t = std::time::Instant::now();
        for _ in 0..n {
            dec.decode(std::hint::black_box(&payload), &mut pcm).unwrap();
        }
        let d = t.elapsed() / n;
        let mut core = SbAdpcmEncoder::new();
        let t = std::time::Instant::now();
        for _ in 0..n {
            for p in input[..320].chunks_exact(2) {
                std::hint::black_box(core.encode(p[0], p[1]));
            }
        }
        println!("encode {e:?}, decode {d:?} per 20 ms frame; core encode alone {:?}", t.elapsed() / n);
    }
}
