//! RTP (RFC 3550): packet views and writers, header extensions (RFC 8285),
//! the audio level extension (RFC 6464) and per-stream receive statistics.
//!
//! Parsing borrows: [`RtpPacket`] is a checked view over the bytes that came
//! off the wire, so the hot receive path copies nothing until the jitter
//! buffer decides to keep a packet.

mod audio_level;
mod extension;
mod packet;
mod receive_stats;

pub use audio_level::AudioLevel;
pub use extension::{ExtensionForm, HeaderExtension, HeaderExtensions};
pub use packet::{RtpHeader, RtpPacket, RTP_FIXED_HEADER_LEN, RTP_VERSION};
pub use receive_stats::{PacketVerdict, ReceiveStats};

/// Why bytes are not an RTP packet, or why a packet cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// The buffer ends before the header, its CSRCs or its extension do.
    #[error("RTP packet truncated: {len} bytes, the header needs {needed}")]
    Truncated {
        /// Bytes available.
        len: usize,
        /// Bytes the header declares.
        needed: usize,
    },
    /// The version field is not 2; RTP has had no other version since 1996.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The padding count is zero or eats into the header.
    #[error("RTP padding of {0} bytes does not fit the packet")]
    BadPadding(u8),
    /// More than 15 CSRCs were given; the CC field has four bits.
    #[error("{0} CSRCs, at most 15 fit an RTP header")]
    TooManyCsrcs(usize),
    /// A header extension element has an ID or length its form cannot carry.
    #[error("header extension element id {id} with {len} bytes cannot be encoded")]
    BadExtensionElement {
        /// The element's ID.
        id: u8,
        /// The element's data length.
        len: usize,
    },
    /// The extension block would exceed the 16-bit length field.
    #[error("header extension block too long")]
    ExtensionTooLong,
    /// An audio level element must carry at least one byte.
    #[error("audio level extension element is empty")]
    EmptyAudioLevel,
}
