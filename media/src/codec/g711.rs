//! G.711 µ-law (PCMU) and A-law (PCMA), table driven.
//!
//! The companding follows ITU-T G.711 as the classic Sun reference code does
//! it (µ-law on 14-bit, A-law on 13-bit linear samples). All four tables are
//! built at compile time: encoding is one shift and one lookup, decoding one
//! lookup. The codecs run at 8 kHz; the [resamplers](super::resample) bring
//! the engine's 48 kHz frames down and back up.

use super::resample::{Decimator48To8, Interpolator8To48};
use super::{check_len, mono_frame, mono_frame_mut, AudioDecoder, AudioEncoder, CodecError, FRAME_SAMPLES};

/// Samples, and so payload bytes, in 20 ms at 8 kHz.
const NARROW_FRAME: usize = FRAME_SAMPLES / 6;

/// Which G.711 companding law.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711Law {
    /// µ-law, RTP payload type 0 (PCMU): North America and Japan.
    MuLaw,
    /// A-law, RTP payload type 8 (PCMA): everywhere else.
    ALaw,
}

const fn ulaw_encode_14(mut v: i32) -> u8 {
    const CLIP: i32 = 8159;
    let mask: u8 = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    if v > CLIP {
        v = CLIP;
    }
    v += 0x84 >> 2;
    // The segment: the first whose end (0x3F, 0x7F, ..., 0x1FFF) holds v.
    let mut seg = 0;
    while seg < 8 && v > (0x40 << seg) - 1 {
        seg += 1;
    }
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    ((seg << 4) as u8 | ((v >> (seg + 1)) & 0xF) as u8) ^ mask
}

const fn alaw_encode_13(mut v: i32) -> u8 {
    let mask: u8 = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    // Segment ends: 0x1F, 0x3F, ..., 0xFFF.
    let mut seg = 0;
    while seg < 8 && v > (0x20 << seg) - 1 {
        seg += 1;
    }
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mantissa = if seg < 2 { (v >> 1) & 0xF } else { (v >> seg) & 0xF };
    ((seg << 4) as u8 | mantissa as u8) ^ mask
}

const fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let t = ((((u & 0x0F) as i32) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

const fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        _ => (t + 0x108) << (seg - 1),
    };
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// µ-law code for every 14-bit sample, indexed by `(s >> 2) + 8192`.
static ULAW_ENCODE: [u8; 1 << 14] = {
    let mut t = [0u8; 1 << 14];
    let mut i = 0;
    while i < t.len() {
        t[i] = ulaw_encode_14(i as i32 - (1 << 13));
        i += 1;
    }
    t
};

/// A-law code for every 13-bit sample, indexed by `(s >> 3) + 4096`.
static ALAW_ENCODE: [u8; 1 << 13] = {
    let mut t = [0u8; 1 << 13];
    let mut i = 0;
    while i < t.len() {
        t[i] = alaw_encode_13(i as i32 - (1 << 12));
        i += 1;
    }
    t
};

static ULAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_decode(i as u8);
        i += 1;
    }
    t
};

static ALAW_DECODE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_decode(i as u8);
        i += 1;
    }
    t
};

impl G711Law {
    /// Compands one 16-bit sample.
    pub fn encode_sample(self, s: i16) -> u8 {
        match self {
            Self::MuLaw => ULAW_ENCODE[((i32::from(s) >> 2) + (1 << 13)) as usize],
            Self::ALaw => ALAW_ENCODE[((i32::from(s) >> 3) + (1 << 12)) as usize],
        }
    }

    /// Expands one code to a 16-bit sample.
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Self::MuLaw => ULAW_DECODE[usize::from(code)],
            Self::ALaw => ALAW_DECODE[usize::from(code)],
        }
    }
}

/// G.711 encoder: 48 kHz mono in, 160 bytes (20 ms at 8 kHz) out.
#[derive(Clone)]
pub struct G711Encoder {
    law: G711Law,
    decimator: Decimator48To8,
}

impl G711Encoder {
    /// An encoder for `law`.
    pub fn new(law: G711Law) -> Self {
        Self { law, decimator: Decimator48To8::new() }
    }
}

impl AudioEncoder for G711Encoder {
    fn channels(&self) -> u8 {
        1
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let frame = mono_frame(pcm)?;
        let mut narrow = [0i16; NARROW_FRAME];
        self.decimator.process(frame, &mut narrow);
        out.clear();
        out.extend(narrow.iter().map(|&s| self.law.encode_sample(s)));
        Ok(())
    }

    fn fork(&self) -> Box<dyn AudioEncoder> {
        Box::new(self.clone())
    }
}

/// G.711 decoder: 160 bytes in, 48 kHz mono out. A lost frame is concealed
/// by repeating the last pitch period, fading out over 60 ms (see
/// [`plc`](super::plc), after G.711 Appendix I).
pub struct G711Decoder {
    law: G711Law,
    interpolator: Interpolator8To48,
    plc: super::plc::Concealer,
}

impl G711Decoder {
    /// A decoder for `law`.
    pub fn new(law: G711Law) -> Self {
        Self { law, interpolator: Interpolator8To48::new(), plc: super::plc::Concealer::new(8_000) }
    }
}

impl AudioDecoder for G711Decoder {
    fn channels(&self) -> u8 {
        1
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        check_len(NARROW_FRAME, payload.len())?;
        let out = mono_frame_mut(out)?;
        let mut narrow = [0i16; NARROW_FRAME];
        for (s, &code) in narrow.iter_mut().zip(payload) {
            *s = self.law.decode_sample(code);
        }
        self.plc.good(&mut narrow);
        self.interpolator.process(&narrow, out);
        Ok(())
    }

    fn conceal(&mut self, out: &mut [i16]) -> Result<(), CodecError> {
        let out = mono_frame_mut(out)?;
        let mut narrow = [0i16; NARROW_FRAME];
        self.plc.conceal(&mut narrow);
        self.interpolator.process(&narrow, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tone::{goertzel_amplitude, sine};

    #[test]
    fn known_codes() {
        assert_eq!(G711Law::MuLaw.encode_sample(0), 0xFF);
        assert_eq!(G711Law::ALaw.encode_sample(0), 0xD5);
        assert_eq!(G711Law::MuLaw.decode_sample(0x00), -32124);
        assert_eq!(G711Law::MuLaw.decode_sample(0x80), 32124);
        assert_eq!(G711Law::ALaw.decode_sample(0xAA), 32256);
        assert_eq!(G711Law::ALaw.decode_sample(0x2A), -32256);
        assert_eq!(G711Law::MuLaw.encode_sample(i16::MAX), 0x80);
        assert_eq!(G711Law::MuLaw.encode_sample(i16::MIN), 0x00);
    }

    #[test]
    fn every_code_survives_a_round_trip() {
        for law in [G711Law::MuLaw, G711Law::ALaw] {
            for code in 0..=255u8 {
                let back = law.encode_sample(law.decode_sample(code));
                // µ-law has two zeros; 0x7F ("-0") comes back as 0xFF.
                let expected = if law == G711Law::MuLaw && code == 0x7F { 0xFF } else { code };
                assert_eq!(back, expected, "{law:?} {code:#x}");
            }
        }
    }

    #[test]
    fn quantisation_error_is_logarithmic() {
        for law in [G711Law::MuLaw, G711Law::ALaw] {
            for s in (i16::MIN..=i16::MAX).step_by(7) {
                let err = (i32::from(law.decode_sample(law.encode_sample(s))) - i32::from(s)).abs();
                // The step grows with the segment: within 1/32 of the value, plus the finest step.
                assert!(
                    err <= i32::from(s).abs() / 32 + 16 + if s.unsigned_abs() > 32_000 { 700 } else { 0 },
                    "{law:?} {s}: {err}"
                );
            }
        }
    }

    #[test]
    fn a_tone_crosses_a_g711_call() {
        for law in [G711Law::MuLaw, G711Law::ALaw] {
            let (mut enc, mut dec) = (G711Encoder::new(law), G711Decoder::new(law));
            let (mut payload, mut pcm, mut got) = (Vec::new(), [0i16; FRAME_SAMPLES], Vec::new());
            for f in 0..10 {
                enc.encode(&sine(1000.0, 8000.0, 48_000, f * FRAME_SAMPLES, FRAME_SAMPLES), &mut payload).unwrap();
                assert_eq!(payload.len(), 160);
                dec.decode(&payload, &mut pcm).unwrap();
                got.extend_from_slice(&pcm);
            }
            let a = goertzel_amplitude(&got[FRAME_SAMPLES * 2..], 1000.0, 48_000);
            assert!((20.0 * (a / 8000.0).log10()).abs() < 0.5, "{law:?}: {a}");
            assert!(dec.decode(&payload[..100], &mut pcm).is_err());
            dec.conceal(&mut pcm).unwrap();
        }
    }

    /// Through the codec and the resampler, every tenth frame lost: the
    /// concealed tone has no click or hole (its residual was -9.5 dB with
    /// silence in the gaps at 8 kHz, -29.5 dB concealed here, when this was written).
    #[test]
    fn a_tone_with_ten_percent_loss_is_concealed_not_silenced() {
        use crate::codec::tone::{residual_db, through_lossy_call};
        let (mut enc, mut dec) = (G711Encoder::new(G711Law::MuLaw), G711Decoder::new(G711Law::MuLaw));
        let got = through_lossy_call(&mut enc, &mut dec, 440.0, 100, |f| f % 10 == 5);
        let residual = residual_db(&got[FRAME_SAMPLES..], 440.0, 48_000);
        assert!(residual < -25.0, "residual {residual:.1} dB");
    }
}
