//! Opus through libopus (`opusic-sys`, built from its bundled source).
//!
//! The states live in memory this module allocates (`opus_*_get_size` then
//! `opus_*_init`) rather than libopus's own `malloc`: libopus documents both
//! states as position independent, so a shallow copy is a complete copy, and
//! that is what makes [`AudioEncoder::fork`] exact. Freeing is the `Vec`'s
//! drop; nothing holds a pointer into the block between calls.
//!
//! Every FFI return code is checked and mapped to [`CodecError::Opus`].

use std::ffi::c_int;

use opusic_sys as ffi;

use super::{check_len, AudioDecoder, AudioEncoder, CodecError, OpusErrorCode, FRAME_SAMPLES, MAX_OPUS_PACKET};

/// The libopus application mode, which tunes the encoder's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpusApplication {
    /// Speech first (SILK at low rates, speech-tuned high-pass): conferencing.
    Voip,
    /// Music and mixed content.
    Audio,
    /// Lowest delay: CELT only, no SILK.
    RestrictedLowDelay,
}

impl OpusApplication {
    fn to_ffi(self) -> c_int {
        match self {
            Self::Voip => ffi::OPUS_APPLICATION_VOIP,
            Self::Audio => ffi::OPUS_APPLICATION_AUDIO,
            Self::RestrictedLowDelay => ffi::OPUS_APPLICATION_RESTRICTED_LOWDELAY,
        }
    }
}

/// An Opus encoder's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// 1 (mono) or 2 (interleaved stereo).
    pub channels: u8,
    /// Application mode.
    pub application: OpusApplication,
    /// Target bitrate in bits per second (500..=512000).
    pub bitrate: i32,
    /// 0 (cheapest) ..= 10 (best). A mixer runs many encoders, so the default
    /// is 5: most of the quality of 10 at about half the cost.
    pub complexity: u8,
    /// In-band FEC (LBRR): each packet carries a coarse copy of the one before.
    /// libopus only spends bits on it when `packet_loss_percent` is above 0.
    pub inband_fec: bool,
    /// Discontinuous transmission: in silence, payloads of 2 bytes or fewer
    /// that the sender need not transmit.
    pub dtx: bool,
    /// The loss the receiver reports (RTCP), 0..=100; steers FEC.
    pub packet_loss_percent: u8,
}

impl Default for OpusConfig {
    fn default() -> Self {
        Self {
            channels: 1,
            application: OpusApplication::Voip,
            bitrate: 32_000,
            complexity: 5,
            inband_fec: true,
            dtx: false,
            packet_loss_percent: 5,
        }
    }
}

/// libopus's state blocks hold ints, floats and pointers-sized fields; 16-byte
/// alignment is what `malloc` would have given them.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Block([u8; 16]);

fn state_block(size: c_int) -> Result<Vec<Block>, CodecError> {
    let size = usize::try_from(size).map_err(|_| CodecError::Opus(OpusErrorCode(ffi::OPUS_BAD_ARG)))?;
    Ok(vec![Block([0; 16]); size.div_ceil(16)])
}

fn check(code: c_int) -> Result<c_int, CodecError> {
    if code < 0 {
        Err(CodecError::Opus(OpusErrorCode(code)))
    } else {
        Ok(code)
    }
}

fn channels_ffi(channels: u8) -> Result<c_int, CodecError> {
    match channels {
        1 | 2 => Ok(c_int::from(channels)),
        n => Err(CodecError::Channels(n)),
    }
}

/// libopus's error strings, without a round trip through C strings.
pub(super) fn error_text(code: i32) -> &'static str {
    match code {
        ffi::OPUS_BAD_ARG => "invalid argument",
        ffi::OPUS_BUFFER_TOO_SMALL => "buffer too small",
        ffi::OPUS_INTERNAL_ERROR => "internal error",
        ffi::OPUS_INVALID_PACKET => "corrupted stream",
        ffi::OPUS_UNIMPLEMENTED => "request not implemented",
        ffi::OPUS_INVALID_STATE => "invalid state",
        ffi::OPUS_ALLOC_FAIL => "memory allocation failed",
        _ => "unknown error",
    }
}

/// An Opus encoder at 48 kHz, 20 ms frames.
pub struct OpusEncoder {
    state: Vec<Block>,
    channels: u8,
}

impl OpusEncoder {
    /// Creates an encoder with `config`'s settings.
    pub fn new(config: &OpusConfig) -> Result<Self, CodecError> {
        let channels = channels_ffi(config.channels)?;
        // SAFETY: a pure function of its argument.
        let mut state = state_block(unsafe { ffi::opus_encoder_get_size(channels) })?;
        // SAFETY: `state` is at least opus_encoder_get_size(channels) bytes,
        // suitably aligned, and exclusively borrowed for the call.
        check(unsafe {
            ffi::opus_encoder_init(state.as_mut_ptr().cast(), 48_000, channels, config.application.to_ffi())
        })?;
        let mut encoder = Self { state, channels: config.channels };
        encoder.set_bitrate(config.bitrate)?;
        encoder.set_complexity(config.complexity)?;
        encoder.set_inband_fec(config.inband_fec)?;
        encoder.set_dtx(config.dtx)?;
        encoder.set_packet_loss_percent(config.packet_loss_percent)?;
        Ok(encoder)
    }

    fn ctl(&mut self, request: c_int, value: c_int) -> Result<(), CodecError> {
        // SAFETY: the state was initialised by opus_encoder_init; every SET
        // request used here takes exactly one opus_int32 argument.
        check(unsafe { ffi::opus_encoder_ctl(self.state.as_mut_ptr().cast(), request, value) }).map(drop)
    }

    /// Sets the target bitrate in bits per second.
    pub fn set_bitrate(&mut self, bps: i32) -> Result<(), CodecError> {
        self.ctl(ffi::OPUS_SET_BITRATE_REQUEST, bps)
    }

    /// Sets the complexity, 0..=10.
    pub fn set_complexity(&mut self, complexity: u8) -> Result<(), CodecError> {
        self.ctl(ffi::OPUS_SET_COMPLEXITY_REQUEST, c_int::from(complexity))
    }

    /// Turns in-band FEC on or off.
    pub fn set_inband_fec(&mut self, on: bool) -> Result<(), CodecError> {
        self.ctl(ffi::OPUS_SET_INBAND_FEC_REQUEST, c_int::from(on))
    }

    /// Turns DTX on or off.
    pub fn set_dtx(&mut self, on: bool) -> Result<(), CodecError> {
        self.ctl(ffi::OPUS_SET_DTX_REQUEST, c_int::from(on))
    }

    /// Tells the encoder how much loss to expect (0..=100 percent).
    pub fn set_packet_loss_percent(&mut self, percent: u8) -> Result<(), CodecError> {
        self.ctl(ffi::OPUS_SET_PACKET_LOSS_PERC_REQUEST, c_int::from(percent))
    }
}

impl AudioEncoder for OpusEncoder {
    fn channels(&self) -> u8 {
        self.channels
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        check_len(FRAME_SAMPLES * usize::from(self.channels), pcm.len())?;
        out.resize(MAX_OPUS_PACKET, 0);
        // SAFETY: the state is initialised; `pcm` holds frame_size * channels
        // samples (checked above); `out` has MAX_OPUS_PACKET writable bytes.
        let written = check(unsafe {
            ffi::opus_encode(
                self.state.as_mut_ptr().cast(),
                pcm.as_ptr(),
                FRAME_SAMPLES as c_int,
                out.as_mut_ptr(),
                MAX_OPUS_PACKET as i32,
            )
        });
        match written {
            Ok(n) => {
                out.truncate(n as usize);
                Ok(())
            }
            Err(e) => {
                out.clear();
                Err(e)
            }
        }
    }

    fn fork(&self) -> Box<dyn AudioEncoder> {
        // libopus: "the encoder state is always continuous in memory and only
        // a shallow copy is sufficient to copy it".
        Box::new(Self { state: self.state.clone(), channels: self.channels })
    }
}

/// An Opus decoder producing 48 kHz PCM, 20 ms per call.
pub struct OpusDecoder {
    state: Vec<Block>,
    channels: u8,
}

impl OpusDecoder {
    /// Creates a decoder producing `channels` channels (1 or 2); libopus
    /// up- or down-mixes whatever the sender encoded.
    pub fn new(channels: u8) -> Result<Self, CodecError> {
        let ch = channels_ffi(channels)?;
        // SAFETY: a pure function of its argument.
        let mut state = state_block(unsafe { ffi::opus_decoder_get_size(ch) })?;
        // SAFETY: `state` is at least opus_decoder_get_size(ch) bytes, aligned.
        check(unsafe { ffi::opus_decoder_init(state.as_mut_ptr().cast(), 48_000, ch) })?;
        Ok(Self { state, channels })
    }

    /// One call into opus_decode. `data` empty means "lost": libopus conceals,
    /// or with `fec` recovers the frame from the packet that followed it.
    fn run(&mut self, data: &[u8], out: &mut [i16], fec: bool) -> Result<(), CodecError> {
        check_len(FRAME_SAMPLES * usize::from(self.channels), out.len())?;
        let len = i32::try_from(data.len()).map_err(|_| CodecError::Opus(OpusErrorCode(ffi::OPUS_INVALID_PACKET)))?;
        let ptr = if data.is_empty() { std::ptr::null() } else { data.as_ptr() };
        // SAFETY: the state is initialised; `ptr`/`len` describe `data` (or are
        // null/0 for concealment); `out` holds frame_size * channels samples.
        let n = check(unsafe {
            ffi::opus_decode(
                self.state.as_mut_ptr().cast(),
                ptr,
                len,
                out.as_mut_ptr(),
                FRAME_SAMPLES as c_int,
                c_int::from(fec),
            )
        })?;
        check_len(FRAME_SAMPLES, n as usize)
    }
}

impl AudioDecoder for OpusDecoder {
    fn channels(&self) -> u8 {
        self.channels
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        if payload.is_empty() {
            return Err(CodecError::Opus(OpusErrorCode(ffi::OPUS_INVALID_PACKET)));
        }
        self.run(payload, out, false)
    }

    fn conceal(&mut self, out: &mut [i16]) -> Result<(), CodecError> {
        self.run(&[], out, false)
    }

    fn decode_fec(&mut self, next_payload: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        if next_payload.is_empty() {
            return self.conceal(out);
        }
        self.run(next_payload, out, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, amp: f64, start: usize) -> Vec<i16> {
        (start..start + FRAME_SAMPLES)
            .map(|n| (amp * (2.0 * std::f64::consts::PI * freq * n as f64 / 48_000.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn round_trip_keeps_a_tone() {
        let mut enc = OpusEncoder::new(&OpusConfig::default()).unwrap();
        let mut dec = OpusDecoder::new(1).unwrap();
        let (mut payload, mut pcm) = (Vec::new(), vec![0i16; FRAME_SAMPLES]);
        let mut energy = 0.0;
        for i in 0..10 {
            enc.encode(&tone(440.0, 8000.0, i * FRAME_SAMPLES), &mut payload).unwrap();
            assert!(!payload.is_empty() && payload.len() <= MAX_OPUS_PACKET);
            dec.decode(&payload, &mut pcm).unwrap();
            energy = pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / FRAME_SAMPLES as f64;
        }
        let rms = energy.sqrt();
        let expected = 8000.0 / 2f64.sqrt();
        assert!((rms / expected - 1.0).abs() < 0.12, "rms {rms}, expected {expected}");
    }

    #[test]
    fn fork_continues_bit_exactly_after_the_original_is_gone() {
        let mut a = OpusEncoder::new(&OpusConfig::default()).unwrap();
        let mut reference = OpusEncoder::new(&OpusConfig::default()).unwrap();
        let (mut pa, mut pr) = (Vec::new(), Vec::new());
        for i in 0..5 {
            let f = tone(300.0 + 50.0 * i as f64, 6000.0, i * FRAME_SAMPLES);
            a.encode(&f, &mut pa).unwrap();
            reference.encode(&f, &mut pr).unwrap();
        }
        let mut forked = a.fork();
        drop(a);
        for i in 5..15 {
            let f = tone(700.0, 6000.0, i * FRAME_SAMPLES);
            forked.encode(&f, &mut pa).unwrap();
            reference.encode(&f, &mut pr).unwrap();
            assert_eq!(pa, pr, "frame {i}");
        }
    }

    #[test]
    fn loss_is_concealed_or_recovered() {
        let config = OpusConfig { packet_loss_percent: 20, bitrate: 24_000, ..OpusConfig::default() };
        let mut enc = OpusEncoder::new(&config).unwrap();
        let mut dec = OpusDecoder::new(1).unwrap();
        let mut pcm = vec![0i16; FRAME_SAMPLES];
        let mut packets = Vec::new();
        for i in 0..6 {
            let mut p = Vec::new();
            enc.encode(&tone(440.0, 8000.0, i * FRAME_SAMPLES), &mut p).unwrap();
            packets.push(p);
        }
        for p in &packets[..3] {
            dec.decode(p, &mut pcm).unwrap();
        }
        // Packet 3 is lost: recover it from packet 4's FEC, then play 4.
        dec.decode_fec(&packets[4], &mut pcm).unwrap();
        assert!(pcm.iter().any(|&s| s.unsigned_abs() > 1000));
        dec.decode(&packets[4], &mut pcm).unwrap();
        dec.conceal(&mut pcm).unwrap();
        assert!(dec.decode(&[], &mut pcm).is_err());
    }

    #[test]
    fn errors_are_mapped_not_panicked() {
        assert_eq!(
            OpusEncoder::new(&OpusConfig { channels: 3, ..OpusConfig::default() }).err(),
            Some(CodecError::Channels(3))
        );
        let bad = OpusEncoder::new(&OpusConfig { complexity: 11, ..OpusConfig::default() });
        assert!(matches!(bad, Err(CodecError::Opus(OpusErrorCode(ffi::OPUS_BAD_ARG)))));
        let mut enc = OpusEncoder::new(&OpusConfig::default()).unwrap();
        let mut out = Vec::new();
        assert!(matches!(enc.encode(&[0; 100], &mut out), Err(CodecError::FrameLength { .. })));
        let mut dec = OpusDecoder::new(1).unwrap();
        let mut pcm = vec![0i16; FRAME_SAMPLES];
        // A TOC byte announcing a 60 ms frame does not fit a 20 ms buffer.
        assert!(dec.decode(&[0x18 | 0x03, 0x03, 0, 0], &mut pcm).is_err());
        assert_eq!(CodecError::Opus(OpusErrorCode(-4)).to_string(), "libopus: corrupted stream");
    }
}
