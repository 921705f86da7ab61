//! Recorded prompts: WAV files as CMS takes them for its branding
//! (RIFF/WAVE, PCM, 16 bits, one channel, at 8, 16, 22.05, 32, 44.1 or
//! 48 kHz), read into 48 kHz samples for [`super::Prompt`]. The bytes come
//! from a web server an administrator names, so anything else is an error,
//! never a panic (`fuzz/fuzz_targets/wav.rs`).

use thiserror::Error;

/// The rates CMS accepts.
const RATES: [u32; 6] = [8_000, 16_000, 22_050, 32_000, 44_100, 48_000];
/// The longest file taken: CMS's limit for prompts that do not repeat.
pub const MAX_WAV: usize = 2_000_000;

/// Why a file is not a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WavError {
    /// Over [`MAX_WAV`] bytes.
    #[error("over {MAX_WAV} bytes")]
    TooLarge,
    /// Not RIFF/WAVE, or a chunk runs past the end.
    #[error("not a WAV file")]
    NotWav,
    /// Not 16-bit mono PCM at one of CMS's rates.
    #[error("not 16-bit mono PCM at 8-48 kHz (format {format}, {channels} channels, {bits} bits, {rate} Hz)")]
    Format {
        /// The format tag (1 is PCM).
        format: u16,
        /// Channels.
        channels: u16,
        /// Bits per sample.
        bits: u16,
        /// Samples per second.
        rate: u32,
    },
    /// No samples.
    #[error("no audio")]
    Empty,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The samples of a WAV file, at 48 kHz.
pub fn read_wav(bytes: &[u8]) -> Result<Vec<i16>, WavError> {
    if bytes.len() > MAX_WAV {
        return Err(WavError::TooLarge);
    }
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::NotWav);
    }
    let mut at = 12;
    let mut format = None;
    let mut data = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32_at(bytes, at + 4).ok_or(WavError::NotWav)? as usize;
        let body = at + 8;
        // A data chunk cut short (a writer that never filled in the
        // length) is read as far as it goes.
        let end = body.checked_add(len).ok_or(WavError::NotWav)?.min(bytes.len());
        match id {
            b"fmt " => {
                let f = &bytes[body..end];
                let parsed = (u16_at(f, 0), u16_at(f, 2), u32_at(f, 4), u16_at(f, 14));
                let (Some(tag), Some(channels), Some(rate), Some(bits)) = parsed else { return Err(WavError::NotWav) };
                format = Some((tag, channels, rate, bits));
            }
            b"data" => data = Some(&bytes[body..end]),
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body.saturating_add(len).saturating_add(len & 1);
    }
    let (tag, channels, rate, bits) = format.ok_or(WavError::NotWav)?;
    // 0xFFFE is WAVE_FORMAT_EXTENSIBLE, which plain PCM writers also use.
    if !(tag == 1 || tag == 0xFFFE) || channels != 1 || bits != 16 || !RATES.contains(&rate) {
        return Err(WavError::Format { format: tag, channels, bits, rate });
    }
    let data = data.ok_or(WavError::NotWav)?;
    let samples: Vec<i16> = data.chunks_exact(2).map(|s| i16::from_le_bytes([s[0], s[1]])).collect();
    if samples.is_empty() {
        return Err(WavError::Empty);
    }
    Ok(resample(&samples, rate))
}

/// `samples` at `rate` as 48 kHz, by linear interpolation: enough for
/// speech prompts, and no filter state to carry.
fn resample(samples: &[i16], rate: u32) -> Vec<i16> {
    if rate == 48_000 {
        return samples.to_vec();
    }
    let n = (samples.len() as u64 * 48_000 / u64::from(rate)) as usize;
    let step = f64::from(rate) / 48_000.0;
    (0..n)
        .map(|i| {
            let x = i as f64 * step;
            let k = x as usize;
            let a = f64::from(samples[k.min(samples.len() - 1)]);
            let b = f64::from(samples[(k + 1).min(samples.len() - 1)]);
            (a + (b - a) * (x - k as f64)).round() as i16
        })
        .collect()
}

/// A WAV file of `samples` at `rate` (for tests and tools).
pub fn write_wav(samples: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_16_khz_file_reads_as_48_khz() {
        let samples: Vec<i16> = (0..1600).map(|i| (i * 10) as i16).collect();
        let read = read_wav(&write_wav(&samples, 16_000)).unwrap();
        assert_eq!(read.len(), 4800);
        assert_eq!((read[0], read[3], read[6]), (0, 10, 20));
        assert_eq!(read_wav(&write_wav(&samples, 48_000)).unwrap(), samples);
    }

    #[test]
    fn other_formats_and_junk_are_refused() {
        let mut stereo = write_wav(&[1, 2, 3, 4], 48_000);
        stereo[22] = 2;
        assert!(matches!(read_wav(&stereo), Err(WavError::Format { channels: 2, .. })));
        let odd_rate = write_wav(&[1, 2], 12_345);
        assert!(matches!(read_wav(&odd_rate), Err(WavError::Format { rate: 12_345, .. })));
        assert_eq!(read_wav(b"RIFF\0\0\0\0WAVE"), Err(WavError::NotWav));
        assert_eq!(read_wav(&write_wav(&[], 8_000)), Err(WavError::Empty));
        assert_eq!(read_wav(b"<html>not found</html>"), Err(WavError::NotWav));
        let whole = write_wav(&[5; 100], 8_000);
        for cut in 0..whole.len() {
            let _ = read_wav(&whole[..cut]);
        }
    }
}
