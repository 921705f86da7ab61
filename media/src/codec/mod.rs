//! Audio codecs behind one small interface: Opus (libopus through
//! `opusic-sys`), G.711 µ-law and A-law and G.722 (both pure Rust).
//!
//! Everything inside the media engine is 48 kHz signed 16-bit PCM in 20 ms
//! frames ([`FRAME_SAMPLES`] samples per channel, interleaved when stereo).
//! A codec that runs at another clock rate (G.711 at 8 kHz, G.722 at 16 kHz) resamples at its
//! edge, so the mixer never sees any other rate.
//!
//! Encoders can be [forked](AudioEncoder::fork): the copy continues exactly
//! where the original stands. The mixer relies on that to hand a listener who
//! starts to speak an encoder of its own without a seam in its stream.

mod g711;
mod g722;
mod opus;
mod plc;
mod resample;
#[cfg(test)]
pub(crate) mod tone;

pub use g711::{G711Decoder, G711Encoder, G711Law};
pub use g722::{G722Decoder, G722Encoder};
pub use opus::{OpusApplication, OpusConfig, OpusDecoder, OpusEncoder};
pub use resample::{Decimator48To16, Decimator48To8, Interpolator16To48, Interpolator8To48};

/// The sample rate of all PCM inside the media engine.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per channel in one 20 ms frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 960;
/// The packet time of one frame, in milliseconds.
pub const FRAME_MS: u8 = 20;
/// The largest Opus packet one frame can produce (RFC 6716 §3.4 R2).
pub const MAX_OPUS_PACKET: usize = 1275;

/// Why a codec could not encode or decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// libopus returned an error code; the text is libopus's own.
    #[error("libopus: {0}")]
    Opus(OpusErrorCode),
    /// A PCM buffer does not hold exactly one frame.
    #[error("PCM frame of {got} samples, expected {expected}")]
    FrameLength {
        /// Samples expected (per frame, all channels).
        expected: usize,
        /// Samples given.
        got: usize,
    },
    /// The codec does not support this channel count.
    #[error("{0} channels are not supported by this codec")]
    Channels(u8),
    /// The codec does not support this clock rate or packet time.
    #[error("clock rate {clock_rate} Hz with {ptime_ms} ms packets is not supported")]
    Format {
        /// The requested RTP clock rate.
        clock_rate: u32,
        /// The requested packet time.
        ptime_ms: u8,
    },
}

/// A libopus error code (`OPUS_BAD_ARG`, `OPUS_INVALID_PACKET`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusErrorCode(pub i32);

impl std::fmt::Display for OpusErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(opus::error_text(self.0))
    }
}

/// The codecs the mixer can encode a stream with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CodecKind {
    /// Opus (RFC 6716, RTP clock 48 kHz).
    Opus,
    /// G.711 µ-law (PCMU, 8 kHz).
    Pcmu,
    /// G.711 A-law (PCMA, 8 kHz).
    Pcma,
    /// G.722 at 64 kbit/s (16 kHz audio, RTP clock 8000).
    G722,
}

/// What a receiver's audio is encoded as. Receivers with the same format
/// can share one encoded stream: this is the mixer's encoder group key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AudioFormat {
    /// The codec.
    pub codec: CodecKind,
    /// The RTP clock rate the SDP negotiated (48000 for Opus, 8000 for G.711
    /// and for G.722, whose 16 kHz audio RFC 3551 clocks at 8000).
    pub clock_rate: u32,
    /// Channels sent: 1, or 2 for stereo Opus.
    pub channels: u8,
    /// Packet time in milliseconds; the mixer ticks at 20.
    pub ptime_ms: u8,
    /// Opus bitrate this receiver asked for (SDP `maxaveragebitrate`, or the
    /// call leg's setting) in bits per second; 0: the mixer's default.
    /// Part of the group key: receivers at different rates cannot share an
    /// encode. Ignored by the fixed-rate codecs.
    pub bitrate: u32,
}

impl AudioFormat {
    /// Mono Opus, 20 ms: what WebRTC browsers and most SIP endpoints use.
    pub const OPUS_MONO: Self =
        Self { codec: CodecKind::Opus, clock_rate: 48_000, channels: 1, ptime_ms: FRAME_MS, bitrate: 0 };
    /// Stereo Opus, 20 ms.
    pub const OPUS_STEREO: Self = Self { channels: 2, ..Self::OPUS_MONO };
    /// G.711 µ-law, 20 ms.
    pub const PCMU: Self =
        Self { codec: CodecKind::Pcmu, clock_rate: 8_000, channels: 1, ptime_ms: FRAME_MS, bitrate: 0 };
    /// G.711 A-law, 20 ms.
    pub const PCMA: Self = Self { codec: CodecKind::Pcma, ..Self::PCMU };
    /// G.722, 20 ms (SDP `G722/8000`).
    pub const G722: Self = Self { codec: CodecKind::G722, ..Self::PCMU };

    /// PCM samples (all channels) in one 48 kHz frame of this format.
    pub fn frame_len(&self) -> usize {
        FRAME_SAMPLES * usize::from(self.channels)
    }

    /// Builds a fresh encoder for this format. `opus` sets the Opus encoder's
    /// knobs and is ignored for the other codecs.
    pub fn new_encoder(&self, opus: &OpusConfig) -> Result<Box<dyn AudioEncoder>, CodecError> {
        if self.ptime_ms != FRAME_MS {
            return Err(CodecError::Format { clock_rate: self.clock_rate, ptime_ms: self.ptime_ms });
        }
        match self.codec {
            CodecKind::Opus if self.clock_rate == SAMPLE_RATE => {
                let bitrate = if self.bitrate > 0 { self.bitrate.clamp(6_000, 510_000) as i32 } else { opus.bitrate };
                Ok(Box::new(OpusEncoder::new(&OpusConfig { channels: self.channels, bitrate, ..*opus })?))
            }
            CodecKind::Pcmu | CodecKind::Pcma if self.clock_rate == 8_000 => {
                if self.channels != 1 {
                    return Err(CodecError::Channels(self.channels));
                }
                let law = if self.codec == CodecKind::Pcmu { G711Law::MuLaw } else { G711Law::ALaw };
                Ok(Box::new(G711Encoder::new(law)))
            }
            CodecKind::G722 if self.clock_rate == 8_000 => {
                if self.channels != 1 {
                    return Err(CodecError::Channels(self.channels));
                }
                Ok(Box::new(G722Encoder::new()))
            }
            _ => Err(CodecError::Format { clock_rate: self.clock_rate, ptime_ms: self.ptime_ms }),
        }
    }

    /// Builds a fresh decoder for what an endpoint sends in this format.
    pub fn new_decoder(&self) -> Result<Box<dyn AudioDecoder>, CodecError> {
        if self.ptime_ms != FRAME_MS {
            return Err(CodecError::Format { clock_rate: self.clock_rate, ptime_ms: self.ptime_ms });
        }
        match self.codec {
            CodecKind::Opus if self.clock_rate == SAMPLE_RATE => Ok(Box::new(OpusDecoder::new(self.channels)?)),
            _ if self.channels != 1 => Err(CodecError::Channels(self.channels)),
            CodecKind::Pcmu if self.clock_rate == 8_000 => Ok(Box::new(G711Decoder::new(G711Law::MuLaw))),
            CodecKind::Pcma if self.clock_rate == 8_000 => Ok(Box::new(G711Decoder::new(G711Law::ALaw))),
            CodecKind::G722 if self.clock_rate == 8_000 => Ok(Box::new(G722Decoder::new())),
            _ => Err(CodecError::Format { clock_rate: self.clock_rate, ptime_ms: self.ptime_ms }),
        }
    }
}

/// `pcm` as exactly one mono 48 kHz frame, or the length error the codecs report.
pub(crate) fn mono_frame(pcm: &[i16]) -> Result<&[i16; FRAME_SAMPLES], CodecError> {
    pcm.try_into().map_err(|_| CodecError::FrameLength { expected: FRAME_SAMPLES, got: pcm.len() })
}

/// `out` as exactly one mono 48 kHz frame to fill, or the length error.
pub(crate) fn mono_frame_mut(out: &mut [i16]) -> Result<&mut [i16; FRAME_SAMPLES], CodecError> {
    let got = out.len();
    out.try_into().map_err(|_| CodecError::FrameLength { expected: FRAME_SAMPLES, got })
}

/// Turns 20 ms of 48 kHz PCM into one RTP payload.
pub trait AudioEncoder: Send {
    /// Channels the encoder takes (PCM is interleaved when 2).
    fn channels(&self) -> u8;

    /// Encodes one frame (`FRAME_SAMPLES * channels` samples), replacing the
    /// contents of `out` with the payload.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// An independent encoder in exactly this one's state: fed the same PCM,
    /// both produce the same bytes from here on.
    fn fork(&self) -> Box<dyn AudioEncoder>;
}

/// Turns RTP payloads back into 20 ms of 48 kHz PCM.
pub trait AudioDecoder: Send {
    /// Channels the decoder produces (interleaved when 2).
    fn channels(&self) -> u8;

    /// Decodes one payload into `out` (`FRAME_SAMPLES * channels` samples).
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<(), CodecError>;

    /// Fills `out` for a frame that never arrived (packet loss concealment).
    fn conceal(&mut self, out: &mut [i16]) -> Result<(), CodecError>;

    /// Recovers a lost frame from the packet that follows it, where the codec
    /// carries redundancy (Opus in-band FEC); otherwise conceals.
    fn decode_fec(&mut self, _next_payload: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        self.conceal(out)
    }
}

fn check_len(expected: usize, got: usize) -> Result<(), CodecError> {
    if expected == got {
        Ok(())
    } else {
        Err(CodecError::FrameLength { expected, got })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_has_an_encoder_and_a_decoder_that_agree() {
        for format in
            [AudioFormat::OPUS_MONO, AudioFormat::OPUS_STEREO, AudioFormat::PCMU, AudioFormat::PCMA, AudioFormat::G722]
        {
            let mut encoder = format.new_encoder(&OpusConfig::default()).expect("encoder");
            let mut decoder = format.new_decoder().expect("decoder");
            let pcm = vec![0i16; format.frame_len()];
            let mut payload = Vec::new();
            encoder.encode(&pcm, &mut payload).expect("encode");
            let mut out = vec![1i16; format.frame_len()];
            decoder.decode(&payload, &mut out).expect("decode");
            assert!(out.iter().all(|s| s.abs() < 64), "{format:?}: silence stays near silence");
        }
        let odd = AudioFormat { ptime_ms: 30, ..AudioFormat::PCMU };
        assert!(odd.new_decoder().is_err());
        let stereo_g711 = AudioFormat { channels: 2, ..AudioFormat::PCMU };
        assert!(matches!(stereo_g711.new_decoder(), Err(CodecError::Channels(2))));
    }
}
