//! H.264 over RTP (RFC 6184), packetization modes 0 and 1.
//!
//! [`H264Packetizer`] turns one access unit into RTP payloads: a NAL unit that
//! fits goes alone (single NAL unit packet), small neighbours such as SPS and
//! PPS share a STAP-A, and a large slice is cut into FU-A fragments (mode 1
//! only; mode 0 allows single NAL unit packets alone, so an oversized NAL unit
//! is the caller's error). [`H264Depacketizer`] does the reverse: RTP payloads
//! in any order within a small window, complete Annex-B access units out, and a
//! frame that lost a packet is dropped and answered with
//! [`Assembled::KeyframeNeeded`] rather than handed to a decoder as garbage.
//!
//! Interleaved mode (2: STAP-B, MTAP, FU-B) is refused: no SIP endpoint we
//! meet offers it, and it needs a decoding-order buffer we do not want.

mod assembler;

pub use super::reorder::{DepacketizerConfig, DepacketizerStats};
pub use assembler::{AccessUnit, Assembled, H264Depacketizer};

/// NAL unit type of a coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// NAL unit type of a coded slice of an IDR picture: a decoder can start here.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// RTP payload type of a single-time aggregation packet (RFC 6184 §5.7.1).
pub const STAP_A: u8 = 24;
/// RTP payload type of a fragmentation unit without DON (RFC 6184 §5.8).
pub const FU_A: u8 = 28;

/// The 4-byte Annex-B start code we write before every NAL unit.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// FU-A indicator and header bytes in front of every fragment.
const FU_A_OVERHEAD: usize = 2;
/// The STAP-A NAL header in front of the aggregated units.
const STAP_A_HEADER: usize = 1;
/// The 16-bit size in front of each unit inside a STAP-A.
const STAP_A_SIZE_FIELD: usize = 2;

/// The type field of a NAL unit header (its low five bits).
pub fn nal_type(header: u8) -> u8 {
    header & 0x1f
}

/// Why a NAL unit cannot be packetized, or an RTP payload is not H.264 we take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum H264Error {
    /// An RTP payload, or a NAL unit handed to the packetizer, had no bytes.
    #[error("empty H.264 payload or NAL unit")]
    Empty,
    /// The forbidden_zero_bit is set: RFC 6184 §5.3 says the unit is corrupt.
    #[error("H.264 NAL header has the forbidden bit set")]
    ForbiddenBit,
    /// A payload or NAL unit type we cannot take: 0, the interleaved-mode
    /// packets (STAP-B, MTAP16, MTAP24, FU-B), 30 and 31, or an aggregation
    /// or fragment type given to the packetizer as a NAL unit.
    #[error("unsupported H.264 NAL or RTP payload type {0}")]
    UnsupportedType(u8),
    /// A STAP-A's unit sizes do not match its length, or a unit is empty.
    #[error("malformed STAP-A")]
    MalformedStapA,
    /// A FU-A is shorter than its two header bytes plus one byte, or has both
    /// its start and end bits set.
    #[error("malformed FU-A")]
    MalformedFuA,
    /// Packetization mode 0 allows single NAL unit packets only.
    #[error("NAL unit of {len} bytes exceeds the {max}-byte RTP payload in packetization mode 0")]
    NalTooLarge {
        /// The NAL unit's length.
        len: usize,
        /// The largest payload allowed.
        max: usize,
    },
    /// The payload size is too small to carry a FU-A fragment.
    #[error("maximum RTP payload of {0} bytes is too small for H.264")]
    PayloadSizeTooSmall(usize),
    /// The access unit holds no NAL unit (no Annex-B start code).
    #[error("access unit without NAL units")]
    NoNalUnits,
}

/// Which RFC 6184 packetization mode a stream uses (SDP `packetization-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PacketizationMode {
    /// Mode 0: single NAL unit packets only; the default when SDP says nothing.
    #[default]
    SingleNalUnit,
    /// Mode 1: single NAL units, STAP-A and FU-A, in decoding order.
    NonInterleaved,
}

/// The NAL units of an Annex-B byte stream, without their start codes.
///
/// Both 3- and 4-byte start codes are accepted; the zero bytes that precede a
/// start code (trailing_zero_8bits) are not part of the unit before it. Bytes
/// before the first start code are skipped, and empty units are left out.
pub fn annex_b_nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = find_start_code(stream).map_or(&[][..], |(_, after)| &stream[after..]);
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (unit, next) = match find_start_code(rest) {
            Some((at, after)) => (&rest[..at], &rest[after..]),
            None => (rest, &[][..]),
        };
        rest = next;
        let end = unit.iter().rposition(|b| *b != 0).map_or(0, |last| last + 1);
        if end > 0 {
            return Some(&unit[..end]);
        }
    })
}

/// Where the next `00 00 01` starts and where the unit after it begins.
fn find_start_code(bytes: &[u8]) -> Option<(usize, usize)> {
    bytes.windows(3).position(|w| w == [0, 0, 1]).map(|at| (at, at + 3))
}

/// RTP payloads for one access unit (or VP8 frame), in one reused buffer.
///
/// The marker bit belongs on the last one (RFC 6184 §5.1, RFC 7741 §4.1):
/// [`Self::iter`] says so, so the caller never has to count.
#[derive(Debug, Default, Clone)]
pub struct RtpPayloads {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl RtpPayloads {
    /// An empty batch; its buffers grow to the largest access unit seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many payloads (RTP packets) the access unit needs.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True before the first packetization, or after an error.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Forgets the payloads and keeps the memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Each payload with its marker bit (set on the last one only).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], bool)> {
        let count = self.ends.len();
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .enumerate()
            .map(move |(i, (start, end))| (self.bytes.get(start..end).unwrap_or_default(), i + 1 == count))
    }

    fn finish_payload(&mut self) {
        self.ends.push(self.bytes.len());
    }

    /// Adds one payload made of a header and a body (another codec's
    /// packetizer: VP8's descriptor and a piece of the frame).
    pub(crate) fn push_payload(&mut self, header: &[u8], body: &[u8]) {
        self.bytes.extend_from_slice(header);
        self.bytes.extend_from_slice(body);
        self.finish_payload();
    }
}

/// Cuts access units into RTP payloads of at most `max_payload` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Packetizer {
    max_payload: usize,
    mode: PacketizationMode,
}

impl H264Packetizer {
    /// `max_payload` is the MTU less IP, UDP, RTP and SRTP overheads (about
    /// 1200 keeps clear of tunnels and VPNs).
    pub fn new(max_payload: usize, mode: PacketizationMode) -> Result<Self, H264Error> {
        // A FU-A needs its two header bytes and one byte of the unit.
        if max_payload <= FU_A_OVERHEAD {
            return Err(H264Error::PayloadSizeTooSmall(max_payload));
        }
        Ok(Self { max_payload, mode })
    }

    /// The packetization mode.
    pub fn mode(&self) -> PacketizationMode {
        self.mode
    }

    /// Packetizes one Annex-B access unit (what an encoder emits) into `out`.
    pub fn packetize_annex_b(&self, access_unit: &[u8], out: &mut RtpPayloads) -> Result<(), H264Error> {
        self.packetize(annex_b_nal_units(access_unit), out)
    }

    /// Packetizes the NAL units of one access unit (without start codes), in
    /// decoding order, into `out`. On error `out` is left empty.
    pub fn packetize<'a>(
        &self,
        nal_units: impl IntoIterator<Item = &'a [u8]>,
        out: &mut RtpPayloads,
    ) -> Result<(), H264Error> {
        out.clear();
        let result = self.packetize_into(nal_units, out);
        match result {
            Ok(()) if out.is_empty() => Err(H264Error::NoNalUnits),
            Ok(()) => Ok(()),
            Err(e) => {
                out.clear();
                Err(e)
            }
        }
    }

    fn packetize_into<'a>(
        &self,
        nal_units: impl IntoIterator<Item = &'a [u8]>,
        out: &mut RtpPayloads,
    ) -> Result<(), H264Error> {
        let mut units = nal_units.into_iter().peekable();
        while let Some(unit) = units.next() {
            let header = check_nal_unit(unit)?;
            if unit.len() > self.max_payload {
                if self.mode == PacketizationMode::SingleNalUnit {
                    return Err(H264Error::NalTooLarge { len: unit.len(), max: self.max_payload });
                }
                self.fragment(header, unit, out);
                continue;
            }
            let stap_fits = |used: usize, next: &[u8]| used + STAP_A_SIZE_FIELD + next.len() <= self.max_payload;
            let first_size = STAP_A_HEADER + STAP_A_SIZE_FIELD + unit.len();
            let aggregate = self.mode == PacketizationMode::NonInterleaved
                && units.peek().is_some_and(|next| !next.is_empty() && stap_fits(first_size, next));
            if !aggregate {
                out.bytes.extend_from_slice(unit);
                out.finish_payload();
                continue;
            }
            // STAP-A: F is the OR and NRI the maximum of the units' (RFC 6184 §5.7).
            let header_at = out.bytes.len();
            out.bytes.push(STAP_A);
            let mut aggregate_header = header & 0xe0;
            push_stap_unit(unit, out);
            let mut used = first_size;
            while let Some(next) = units.next_if(|next| !next.is_empty() && stap_fits(used, next)) {
                let next_header = check_nal_unit(next)?;
                aggregate_header = (aggregate_header & 0x80)
                    | (next_header & 0x80)
                    | (aggregate_header & 0x60).max(next_header & 0x60);
                push_stap_unit(next, out);
                used += STAP_A_SIZE_FIELD + next.len();
            }
            if let Some(first) = out.bytes.get_mut(header_at) {
                *first = aggregate_header | STAP_A;
            }
            out.finish_payload();
        }
        Ok(())
    }

    /// FU-A fragments of one NAL unit; its header travels split between the
    /// FU indicator (F, NRI) and the FU header (type).
    fn fragment(&self, header: u8, unit: &[u8], out: &mut RtpPayloads) {
        let body = unit.get(1..).unwrap_or_default();
        let chunk = self.max_payload - FU_A_OVERHEAD;
        let count = body.len().div_ceil(chunk);
        for (i, piece) in body.chunks(chunk).enumerate() {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i + 1 == count { 0x40 } else { 0 };
            out.bytes.push((header & 0xe0) | FU_A);
            out.bytes.push(start | end | nal_type(header));
            out.bytes.extend_from_slice(piece);
            out.finish_payload();
        }
    }
}

fn push_stap_unit(unit: &[u8], out: &mut RtpPayloads) {
    // The caller checked the unit fits a payload, itself far below 64 KiB.
    out.bytes.extend_from_slice(&u16::try_from(unit.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.bytes.extend_from_slice(unit);
}

/// The header of a NAL unit we can send: not empty, forbidden bit clear, a
/// type of H.264 itself (1–23), not one of RTP's packet types.
fn check_nal_unit(unit: &[u8]) -> Result<u8, H264Error> {
    let header = *unit.first().ok_or(H264Error::Empty)?;
    check_nal_header(header)?;
    Ok(header)
}

/// Checks a NAL unit header as H.264 proper (types 1–23, forbidden bit clear).
fn check_nal_header(header: u8) -> Result<(), H264Error> {
    if header & 0x80 != 0 {
        return Err(H264Error::ForbiddenBit);
    }
    match nal_type(header) {
        1..=23 => Ok(()),
        other => Err(H264Error::UnsupportedType(other)),
    }
}

#[cfg(test)]
mod tests;
