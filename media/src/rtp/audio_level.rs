//! The client-to-mixer audio level extension (RFC 6464).
//!
//! The mixer picks its speakers from these levels, so that it need not decode
//! every participant's audio just to learn who is loud.

use super::RtpError;

/// The level of one packet's audio, as the sender measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLevel {
    /// The sender's voice activity flag (the V bit), when it negotiated `vad=on`.
    pub voice_activity: bool,
    /// The level in -dBov, 0..=127: 0 is a full-scale signal, 127 is silence.
    pub level: u8,
}

impl AudioLevel {
    /// The quietest level the extension can express.
    pub const SILENCE: u8 = 127;

    /// A level, clamped to the 7 bits the extension carries.
    pub fn new(voice_activity: bool, level: u8) -> Self {
        Self { voice_activity, level: level.min(Self::SILENCE) }
    }

    /// Reads the extension element's data. RFC 6464 sends one byte; some
    /// senders pad the two-byte form, so only the first byte is read.
    pub fn parse(data: &[u8]) -> Result<Self, RtpError> {
        let b = *data.first().ok_or(RtpError::EmptyAudioLevel)?;
        Ok(Self { voice_activity: b & 0x80 != 0, level: b & 0x7f })
    }

    /// The element's one data byte.
    pub fn to_byte(self) -> u8 {
        u8::from(self.voice_activity) << 7 | (self.level & 0x7f)
    }

    /// Measures 16-bit PCM as RFC 6464 §3 describes: the RMS level relative to
    /// full scale, rounded to the nearest decibel.
    pub fn from_samples(samples: &[i16], voice_activity: bool) -> Self {
        if samples.is_empty() {
            return Self::new(voice_activity, Self::SILENCE);
        }
        let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        let rms = (sum / samples.len() as f64).sqrt() / 32768.0;
        let dbov = if rms <= 0.0 {
            f64::from(Self::SILENCE)
        } else {
            (-20.0 * rms.log10()).clamp(0.0, f64::from(Self::SILENCE))
        };
        Self::new(voice_activity, dbov.round() as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(AudioLevel::parse(&[b]).unwrap().to_byte(), b);
        }
        assert_eq!(AudioLevel::parse(&[]), Err(RtpError::EmptyAudioLevel));
        assert_eq!(AudioLevel::new(false, 200).level, 127);
    }

    #[test]
    fn measures_levels() {
        assert_eq!(AudioLevel::from_samples(&[0; 160], false).level, 127);
        assert_eq!(AudioLevel::from_samples(&[], true).level, 127);
        let full: Vec<i16> = (0..160).map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN }).collect();
        assert_eq!(AudioLevel::from_samples(&full, true).level, 0);
        // A square wave at a tenth of full scale is 20 dB down.
        let tenth: Vec<i16> = (0..160).map(|i| if i % 2 == 0 { 3277 } else { -3277 }).collect();
        assert_eq!(AudioLevel::from_samples(&tenth, true).level, 20);
    }
}
