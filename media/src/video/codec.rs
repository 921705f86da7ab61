//! The video codecs, one type per role whatever the codec: a view's
//! [`VideoEncoder`] and [`VideoPacketizer`], a sender's [`VideoDepacketizer`]
//! and [`VideoDecoder`]. The engine holds these and never names H.264 or
//! VP8 beyond choosing one when a stream is attached.
//!
//! Why VP8 at all: CMS's `compatibilityProfiles` `chromeWebRtcVideoCodec=
//! avoidH264` has browsers use VP8, and some browser builds offer no H.264.
//! SIP endpoints get H.264 unless they offer VP8 alone.

use std::time::Instant;

use super::frame::I420Frame;
use super::h264::{AccessUnit, H264Decoder, H264Encoder, H264EncoderConfig, VideoCodecError};
use super::h264_rtp::{
    self, DepacketizerConfig, DepacketizerStats, H264Depacketizer, H264Packetizer, PacketizationMode, RtpPayloads,
};
use super::vp8::{Vp8Decoder, Vp8Encoder, Vp8EncoderConfig};
use super::vp8_rtp::{Vp8Assembled, Vp8Depacketizer, Vp8Frame, Vp8Packetizer};

/// A video codec Confero encodes and decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum VideoCodec {
    /// H.264 Constrained Baseline (OpenH264).
    #[default]
    H264,
    /// VP8 (libvpx).
    Vp8,
}

impl VideoCodec {
    /// Its name in a CMS call leg's `rxVideo`/`txVideo` `codec`.
    pub fn cms_name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::Vp8 => "vp8",
        }
    }
}

/// What a view's encoder is built for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderSettings {
    /// The codec.
    pub codec: VideoCodec,
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// H.264: the largest NAL unit, for receivers in packetization mode 0
    /// (see [`H264EncoderConfig::max_nal_size`]). VP8 has no such limit.
    pub max_nal_size: Option<u32>,
}

/// The frame rate views are encoded for.
const MAX_FPS: f32 = 30.0;

/// One view's encoder.
#[derive(Debug)]
pub enum VideoEncoder {
    /// OpenH264 (boxed: its encoder is some 7 kB inline).
    H264(Box<H264Encoder>),
    /// libvpx.
    Vp8(Vp8Encoder),
}

impl VideoEncoder {
    /// An encoder with these settings.
    pub fn new(settings: EncoderSettings) -> Result<(Self, EncoderSettings), VideoCodecError> {
        let EncoderSettings { codec, width, height, bitrate, max_nal_size } = settings;
        let encoder = match codec {
            VideoCodec::H264 => VideoEncoder::H264(Box::new(H264Encoder::new(H264EncoderConfig {
                width,
                height,
                bitrate,
                max_fps: MAX_FPS,
                max_nal_size,
            })?)),
            VideoCodec::Vp8 => {
                VideoEncoder::Vp8(Vp8Encoder::new(Vp8EncoderConfig { width, height, bitrate, max_fps: MAX_FPS })?)
            }
        };
        let settings = EncoderSettings { max_nal_size: max_nal_size.filter(|_| codec == VideoCodec::H264), ..settings };
        Ok((encoder, settings))
    }

    /// A receiver asked for a keyframe; coalesced and rate-limited as
    /// [`H264Encoder::request_keyframe`] says.
    pub fn request_keyframe(&mut self) {
        match self {
            VideoEncoder::H264(e) => e.request_keyframe(),
            VideoEncoder::Vp8(e) => e.request_keyframe(),
        }
    }

    /// Encodes `frame`, captured at `now`: Annex-B for H.264, one VP8 frame.
    pub fn encode(&mut self, now: Instant, frame: &I420Frame) -> Result<AccessUnit<'_>, VideoCodecError> {
        match self {
            VideoEncoder::H264(e) => e.encode(now, frame),
            VideoEncoder::Vp8(e) => e.encode(now, frame),
        }
    }
}

/// One sender's decoder.
#[derive(Debug)]
pub enum VideoDecoder {
    /// OpenH264.
    H264(H264Decoder),
    /// libvpx.
    Vp8(Vp8Decoder),
}

impl VideoDecoder {
    /// A decoder waiting for a keyframe.
    pub fn new(codec: VideoCodec) -> Result<Self, VideoCodecError> {
        Ok(match codec {
            VideoCodec::H264 => VideoDecoder::H264(H264Decoder::new()?),
            VideoCodec::Vp8 => VideoDecoder::Vp8(Vp8Decoder::new()?),
        })
    }

    /// Decodes one frame; whether a picture came out (then it is in `out`).
    pub fn decode(&mut self, frame: &ReceivedFrame, out: &mut I420Frame) -> Result<bool, VideoCodecError> {
        match (self, frame) {
            (VideoDecoder::H264(d), ReceivedFrame::H264(unit)) => d.decode(unit.annex_b(), out),
            (VideoDecoder::Vp8(d), ReceivedFrame::Vp8(frame)) => d.decode(frame.data(), out),
            _ => Err(VideoCodecError::Config("a frame of another codec than the decoder's")),
        }
    }
}

/// A complete frame from a sender.
#[derive(Debug)]
pub enum ReceivedFrame {
    /// An H.264 access unit.
    H264(h264_rtp::AccessUnit),
    /// A VP8 frame.
    Vp8(Vp8Frame),
}

impl ReceivedFrame {
    /// A decoder can start (or recover) here.
    pub fn is_keyframe(&self) -> bool {
        match self {
            ReceivedFrame::H264(unit) => unit.is_keyframe(),
            ReceivedFrame::Vp8(frame) => frame.is_keyframe(),
        }
    }
}

/// What a depacketizer hands out.
#[derive(Debug)]
pub enum Received {
    /// A complete frame, safe to decode.
    Frame(ReceivedFrame),
    /// A frame was lost: ask the sender for a keyframe.
    KeyframeNeeded,
}

/// One sender's RTP payloads back into frames, with reordering and loss
/// handling (each codec's depacketizer has the same rules).
#[derive(Debug)]
pub enum VideoDepacketizer {
    /// RFC 6184.
    H264(H264Depacketizer),
    /// RFC 7741.
    Vp8(Vp8Depacketizer),
}

impl VideoDepacketizer {
    /// An empty one with the default limits.
    pub fn new(codec: VideoCodec) -> Self {
        match codec {
            VideoCodec::H264 => VideoDepacketizer::H264(H264Depacketizer::new(DepacketizerConfig::default())),
            VideoCodec::Vp8 => VideoDepacketizer::Vp8(Vp8Depacketizer::new(DepacketizerConfig::default())),
        }
    }

    /// Takes one RTP packet's payload; a malformed one is refused (it then
    /// counts as lost).
    pub fn push(&mut self, sequence: u16, timestamp: u32, marker: bool, payload: &[u8]) -> Result<(), String> {
        match self {
            VideoDepacketizer::H264(d) => d.push(sequence, timestamp, marker, payload).map_err(|e| e.to_string()),
            VideoDepacketizer::Vp8(d) => d.push(sequence, timestamp, marker, payload).map_err(|e| e.to_string()),
        }
    }

    /// The next complete frame or keyframe request.
    pub fn poll(&mut self) -> Option<Received> {
        match self {
            VideoDepacketizer::H264(d) => d.poll().map(|a| match a {
                h264_rtp::Assembled::Frame(unit) => Received::Frame(ReceivedFrame::H264(unit)),
                h264_rtp::Assembled::KeyframeNeeded => Received::KeyframeNeeded,
            }),
            VideoDepacketizer::Vp8(d) => d.poll().map(|a| match a {
                Vp8Assembled::Frame(frame) => Received::Frame(ReceivedFrame::Vp8(frame)),
                Vp8Assembled::KeyframeNeeded => Received::KeyframeNeeded,
            }),
        }
    }

    /// Gives a frame's buffers back for reuse.
    pub fn recycle(&mut self, frame: ReceivedFrame) {
        match (self, frame) {
            (VideoDepacketizer::H264(d), ReceivedFrame::H264(unit)) => d.recycle(unit),
            (VideoDepacketizer::Vp8(d), ReceivedFrame::Vp8(frame)) => d.recycle(frame),
            // A frame from before a codec change: nothing to give back to.
            _ => {}
        }
    }

    /// Its counters.
    pub fn stats(&self) -> DepacketizerStats {
        match self {
            VideoDepacketizer::H264(d) => d.stats(),
            VideoDepacketizer::Vp8(d) => d.stats(),
        }
    }
}

/// One view's encoded frames into RTP payloads.
#[derive(Debug)]
pub enum VideoPacketizer {
    /// RFC 6184, mode 1 (and mode 0 on the side, for receivers that need it).
    H264 {
        /// Mode 1: STAP-A and FU-A.
        mode_1: H264Packetizer,
        /// Mode 0: one NAL unit a packet.
        mode_0: H264Packetizer,
    },
    /// RFC 7741, with a picture ID that counts this view's frames.
    Vp8(Vp8Packetizer),
}

impl VideoPacketizer {
    /// Payloads of at most `max_payload` bytes.
    pub fn new(codec: VideoCodec, max_payload: usize) -> Result<Self, String> {
        Ok(match codec {
            VideoCodec::H264 => VideoPacketizer::H264 {
                mode_1: H264Packetizer::new(max_payload, PacketizationMode::NonInterleaved)
                    .map_err(|e| e.to_string())?,
                mode_0: H264Packetizer::new(max_payload, PacketizationMode::SingleNalUnit)
                    .map_err(|e| e.to_string())?,
            },
            VideoCodec::Vp8 => VideoPacketizer::Vp8(Vp8Packetizer::new(max_payload).map_err(|e| e.to_string())?),
        })
    }

    /// The main payloads of one encoded frame (H.264 mode 1, VP8).
    pub fn packetize(&mut self, frame: &[u8], out: &mut RtpPayloads) -> Result<(), String> {
        match self {
            VideoPacketizer::H264 { mode_1, .. } => mode_1.packetize_annex_b(frame, out).map_err(|e| e.to_string()),
            VideoPacketizer::Vp8(p) => {
                p.packetize(frame, out);
                Ok(())
            }
        }
    }

    /// H.264 packetization mode 0's payloads; `None` for VP8, or when a NAL
    /// unit is over the payload size.
    pub fn packetize_single_nal(&self, frame: &[u8]) -> Option<RtpPayloads> {
        let VideoPacketizer::H264 { mode_0, .. } = self else { return None };
        let mut payloads = RtpPayloads::new();
        mode_0.packetize_annex_b(frame, &mut payloads).ok().map(|()| payloads)
    }
}
