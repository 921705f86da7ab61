//! H.224 frames as RFC 4573 carries them in RTP, and the two clients we
//! speak: the client management entity (CME, client 0) and H.281 far-end
//! camera control (client 1). Sans-IO; parsing never panics.
//!
//! On IP the H.224 octets are sent as they are: no HDLC flags, no bit
//! stuffing, no frame check sequence and no bit reversal (those belong to
//! H.323's HDLC tunnelling only). One RTP payload is one frame:
//!
//! ```text
//! 00 71 | 03 | DTA DTA | STA STA | client | ES BS C1 C0 segment | client data
//! Q.922 address (DLCI 7, high priority) | UI | terminal addresses, 0 = broadcast
//! ```
//!
//! Every message we send or take fits in one frame (both BS and ES set,
//! `0xC0`); segmented frames are refused. The byte layouts follow the public
//! implementations (OPAL's `h224.cxx`/`h281.cxx`, h323plus, Wireshark's
//! `packet-h224.c`); see `docs/fecc.md`.

/// The Q.922 address octets of high-priority data (DLCI 7), which every
/// CME and H.281 frame uses; `0x61` (DLCI 6, low priority) is accepted.
const ADDRESS_HIGH: [u8; 2] = [0x00, 0x71];
const ADDRESS_LOW_PRIORITY: u8 = 0x61;
/// Q.922's UI (unnumbered information) control octet.
const CONTROL_UI: u8 = 0x03;
/// Beginning and ending segment: the whole message in this frame.
const SINGLE_SEGMENT: u8 = 0xC0;
/// The Q.922 header, the addresses, the client id and the segment octet.
const HEADER_LEN: usize = 9;
/// Q.922 frames carry at most 260 octets of information (OPAL refuses more).
pub const MAX_FRAME: usize = 3 + 260;

/// The client id of the client management entity.
const CLIENT_CME: u8 = 0x00;
/// The client id of H.281 far-end camera control.
const CLIENT_H281: u8 = 0x01;
/// Extended (one more octet) and non-standard (five more) client ids.
const CLIENT_EXTENDED: u8 = 0x7E;
const CLIENT_NON_STANDARD: u8 = 0x7F;

/// CME message codes (first octet) and kinds (second octet).
const CME_CLIENT_LIST: u8 = 0x01;
const CME_EXTRA_CAPABILITIES: u8 = 0x02;
const CME_MESSAGE: u8 = 0x00;
const CME_COMMAND: u8 = 0xFF;
/// In a client list, a client whose extra capabilities follow separately.
const HAS_EXTRA_CAPABILITIES: u8 = 0x80;

/// Why a datagram's payload is not an H.224 frame we take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum H224Error {
    /// Shorter than its headers, or longer than a Q.922 frame.
    #[error("H.224 frame of a bad length")]
    Length,
    /// Not a Q.922 UI frame on DLCI 6 or 7.
    #[error("not a Q.922 UI frame of H.224")]
    Header,
    /// A segment of a longer message (no CME or H.281 message needs one).
    #[error("segmented H.224 frame")]
    Segmented,
    /// A client message too short for its code.
    #[error("truncated {0} message")]
    Truncated(&'static str),
}

/// One direction of one of the four things H.281 moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Move {
    /// Pan left.
    PanLeft,
    /// Pan right.
    PanRight,
    /// Tilt up.
    TiltUp,
    /// Tilt down.
    TiltDown,
    /// Zoom in.
    ZoomIn,
    /// Zoom out.
    ZoomOut,
    /// Focus in (nearer).
    FocusIn,
    /// Focus out (further).
    FocusOut,
}

impl Move {
    /// Its function's enable and direction bits.
    fn function_mask(self) -> u8 {
        let enable = self.bits() & 0xAA;
        enable | enable >> 1
    }

    /// The action octet bits: an enable bit and a direction bit per
    /// function, pan in the top two bits, then tilt, zoom, focus.
    fn bits(self) -> u8 {
        match self {
            Move::PanLeft => 0x80,
            Move::PanRight => 0xC0,
            Move::TiltDown => 0x20,
            Move::TiltUp => 0x30,
            Move::ZoomOut => 0x08,
            Move::ZoomIn => 0x0C,
            Move::FocusOut => 0x02,
            Move::FocusIn => 0x03,
        }
    }
}

/// The moves of one H.281 action: at most one direction per function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Moves(u8);

impl Moves {
    /// Nothing moves.
    pub const NONE: Moves = Moves(0);

    /// These moves, a later one replacing an earlier one of the same function.
    pub fn of(moves: &[Move]) -> Moves {
        moves.iter().fold(Moves::NONE, |m, &one| m.with(one))
    }

    /// These moves and `one` (replacing its function's direction).
    pub fn with(self, one: Move) -> Moves {
        Moves(self.0 & !one.function_mask() | one.bits())
    }

    /// The action octet as sent.
    pub fn octet(self) -> u8 {
        self.0
    }

    /// An action octet as received: a direction bit without its enable bit
    /// is dropped.
    pub fn from_octet(octet: u8) -> Moves {
        let enabled = octet & 0xAA;
        Moves(octet & (enabled | enabled >> 1))
    }

    /// True when nothing moves.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// An H.281 message (client 1's data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H281 {
    /// Start moving; the far end stops by itself after `timeout` (in 50 ms
    /// units, 0 meaning 800 ms — what every implementation sends) unless a
    /// CONTINUE comes.
    Start {
        /// What moves.
        moves: Moves,
        /// The timeout code, 0..=15.
        timeout: u8,
    },
    /// Keep moving (sent every 400 ms while a control is held).
    Continue(Moves),
    /// Stop moving.
    Stop(Moves),
    /// Switch to a video source (bits 7..4) in a mode (bits 1..0).
    SelectVideoSource(u8),
    /// The sender switched its video source.
    VideoSourceSwitched(u8),
    /// Store the camera position as preset `n` (0..=15).
    StoreAsPreset(u8),
    /// Move the camera to preset `n`.
    ActivatePreset(u8),
}

impl H281 {
    /// The message's octets.
    pub fn encode(self) -> Vec<u8> {
        match self {
            H281::Start { moves, timeout } => vec![0x01, moves.octet(), timeout & 0x0F],
            H281::Continue(m) => vec![0x02, m.octet()],
            H281::Stop(m) => vec![0x03, m.octet()],
            H281::SelectVideoSource(v) => vec![0x04, v],
            H281::VideoSourceSwitched(v) => vec![0x05, v],
            H281::StoreAsPreset(n) => vec![0x06, (n & 0x0F) << 4],
            H281::ActivatePreset(n) => vec![0x07, (n & 0x0F) << 4],
        }
    }

    /// Reads a message; `None` for an unknown code (ignored, as H.281 says
    /// of codes it does not define). h323plus's old 0x08 is ACTIVATE PRESET.
    pub fn parse(data: &[u8]) -> Result<Option<H281>, H224Error> {
        let (&code, rest) = data.split_first().ok_or(H224Error::Truncated("H.281"))?;
        let octet = |i: usize| rest.get(i).copied().ok_or(H224Error::Truncated("H.281"));
        Ok(Some(match code {
            0x01 => H281::Start { moves: Moves::from_octet(octet(0)?), timeout: octet(1)? & 0x0F },
            0x02 => H281::Continue(Moves::from_octet(octet(0)?)),
            0x03 => H281::Stop(Moves::from_octet(octet(0)?)),
            0x04 => H281::SelectVideoSource(octet(0)?),
            0x05 => H281::VideoSourceSwitched(octet(0)?),
            0x06 => H281::StoreAsPreset(octet(0)? >> 4),
            0x07 | 0x08 => H281::ActivatePreset(octet(0)? >> 4),
            _ => return Ok(None),
        }))
    }
}

/// A client management entity message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cme {
    /// The sender's clients (ids; extended and non-standard ones by their
    /// first octet only).
    ClientList(Vec<u8>),
    /// Asks for our client list.
    ClientListCommand,
    /// A client's extra capabilities: its id and its octets.
    ExtraCapabilities(u8, Vec<u8>),
    /// Asks for a client's extra capabilities.
    ExtraCapabilitiesCommand(u8),
}

impl Cme {
    fn encode(&self) -> Vec<u8> {
        match self {
            Cme::ClientList(clients) => {
                let mut out = vec![CME_CLIENT_LIST, CME_MESSAGE, clients.len() as u8];
                out.extend(clients.iter().map(|c| HAS_EXTRA_CAPABILITIES | c & 0x7F));
                out
            }
            Cme::ClientListCommand => vec![CME_CLIENT_LIST, CME_COMMAND],
            Cme::ExtraCapabilities(client, octets) => {
                let mut out = vec![CME_EXTRA_CAPABILITIES, CME_MESSAGE, HAS_EXTRA_CAPABILITIES | client & 0x7F];
                out.extend_from_slice(octets);
                out
            }
            Cme::ExtraCapabilitiesCommand(client) => {
                vec![CME_EXTRA_CAPABILITIES, CME_COMMAND, HAS_EXTRA_CAPABILITIES | client & 0x7F]
            }
        }
    }

    fn parse(data: &[u8]) -> Result<Option<Cme>, H224Error> {
        let truncated = H224Error::Truncated("CME");
        let (code, kind) = match data {
            [code, kind, ..] => (*code, *kind),
            _ => return Err(truncated),
        };
        let rest = &data[2..];
        Ok(Some(match (code, kind) {
            (CME_CLIENT_LIST, CME_COMMAND) => Cme::ClientListCommand,
            (CME_CLIENT_LIST, CME_MESSAGE) => {
                let (&count, mut entries) = rest.split_first().ok_or(truncated)?;
                let mut clients = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    let (&first, after) = entries.split_first().ok_or(truncated)?;
                    let id = first & 0x7F;
                    let skip = match id {
                        CLIENT_EXTENDED => 1,
                        CLIENT_NON_STANDARD => 5,
                        _ => 0,
                    };
                    entries = after.get(skip..).ok_or(truncated)?;
                    clients.push(id);
                }
                Cme::ClientList(clients)
            }
            (CME_EXTRA_CAPABILITIES, CME_MESSAGE) => {
                let (&client, octets) = rest.split_first().ok_or(truncated)?;
                Cme::ExtraCapabilities(client & 0x7F, octets.to_vec())
            }
            (CME_EXTRA_CAPABILITIES, CME_COMMAND) => {
                Cme::ExtraCapabilitiesCommand(rest.first().ok_or(truncated)? & 0x7F)
            }
            _ => return Ok(None),
        }))
    }
}

/// What one frame carries, for the clients we speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A CME message.
    Cme(Cme),
    /// An H.281 message.
    H281(H281),
}

impl Frame {
    /// The frame's octets: the RTP payload.
    pub fn encode(&self) -> Vec<u8> {
        let (client, data) = match self {
            Frame::Cme(m) => (CLIENT_CME, m.encode()),
            Frame::H281(m) => (CLIENT_H281, m.encode()),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + data.len());
        out.extend_from_slice(&ADDRESS_HIGH);
        out.push(CONTROL_UI);
        // Destination and source: broadcast (OPAL and h323plus drop any
        // frame addressed otherwise).
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.push(client);
        out.push(SINGLE_SEGMENT);
        out.extend_from_slice(&data);
        out
    }

    /// Reads an RTP payload. `Ok(None)`: a valid frame for a client or a
    /// message we do not speak, ignored.
    pub fn parse(payload: &[u8]) -> Result<Option<Frame>, H224Error> {
        if payload.len() > MAX_FRAME || payload.len() < 3 {
            return Err(H224Error::Length);
        }
        if payload[0] != ADDRESS_HIGH[0]
            || !(payload[1] == ADDRESS_HIGH[1] || payload[1] == ADDRESS_LOW_PRIORITY)
            || payload[2] != CONTROL_UI
        {
            return Err(H224Error::Header);
        }
        let client = *payload.get(7).ok_or(H224Error::Length)?;
        let extra = match client & 0x7F {
            CLIENT_EXTENDED => 1,
            CLIENT_NON_STANDARD => 5,
            _ => 0,
        };
        let segment = *payload.get(8 + extra).ok_or(H224Error::Length)?;
        if segment & SINGLE_SEGMENT != SINGLE_SEGMENT {
            return Err(H224Error::Segmented);
        }
        let data = &payload[HEADER_LEN + extra..];
        match client & 0x7F {
            CLIENT_CME => Ok(Cme::parse(data)?.map(Frame::Cme)),
            CLIENT_H281 => Ok(H281::parse(data)?.map(Frame::H281)),
            _ => Ok(None),
        }
    }
}

/// H.281's extra capabilities as Confero states them: no presets, one
/// source (1, the main camera) with motion video, and pan, tilt, zoom and
/// focus — what an endpoint's camera control needs to see before it offers
/// its user the controls (OPAL will not send an action without a source).
pub const H281_CAPABILITIES: [u8; 3] = [0x00, 0x14, 0xF0];

/// The client id of H.281, for client lists.
pub const H281_CLIENT: u8 = CLIENT_H281;

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
    }

    /// The payloads of the public implementations' code paths (OPAL,
    /// h323plus; `docs/fecc.md`), byte for byte.
    #[test]
    fn frames_are_the_octets_opal_and_h323plus_send() {
        let cases = [
            (Frame::Cme(Cme::ClientList(vec![1])), "00 71 03 00 00 00 00 00 C0 01 00 01 81"),
            (Frame::Cme(Cme::ClientListCommand), "00 71 03 00 00 00 00 00 C0 01 FF"),
            (
                Frame::Cme(Cme::ExtraCapabilities(1, H281_CAPABILITIES.to_vec())),
                "00 71 03 00 00 00 00 00 C0 02 00 81 00 14 F0",
            ),
            (Frame::Cme(Cme::ExtraCapabilitiesCommand(1)), "00 71 03 00 00 00 00 00 C0 02 FF 81"),
            (
                Frame::H281(H281::Start { moves: Moves::of(&[Move::PanLeft]), timeout: 0 }),
                "00 71 03 00 00 00 00 01 C0 01 80 00",
            ),
            (
                Frame::H281(H281::Start { moves: Moves::of(&[Move::PanRight]), timeout: 0 }),
                "00 71 03 00 00 00 00 01 C0 01 C0 00",
            ),
            (
                Frame::H281(H281::Start { moves: Moves::of(&[Move::TiltUp]), timeout: 0 }),
                "00 71 03 00 00 00 00 01 C0 01 30 00",
            ),
            (
                Frame::H281(H281::Start { moves: Moves::of(&[Move::ZoomIn]), timeout: 0 }),
                "00 71 03 00 00 00 00 01 C0 01 0C 00",
            ),
            (Frame::H281(H281::Continue(Moves::of(&[Move::PanLeft]))), "00 71 03 00 00 00 00 01 C0 02 80"),
            (Frame::H281(H281::Stop(Moves::of(&[Move::PanLeft]))), "00 71 03 00 00 00 00 01 C0 03 80"),
            (Frame::H281(H281::SelectVideoSource(0x10)), "00 71 03 00 00 00 00 01 C0 04 10"),
            (Frame::H281(H281::StoreAsPreset(3)), "00 71 03 00 00 00 00 01 C0 06 30"),
            (Frame::H281(H281::ActivatePreset(3)), "00 71 03 00 00 00 00 01 C0 07 30"),
        ];
        for (frame, bytes) in cases {
            assert_eq!(frame.encode(), hex(bytes), "{frame:?}");
            assert_eq!(Frame::parse(&hex(bytes)), Ok(Some(frame)), "{bytes}");
        }
    }

    #[test]
    fn moves_keep_one_direction_per_function() {
        let m = Moves::of(&[Move::PanLeft, Move::TiltUp, Move::PanRight, Move::FocusOut]);
        assert_eq!(m.octet(), 0xC0 | 0x30 | 0x02);
        // A direction bit without its enable bit means nothing.
        assert_eq!(Moves::from_octet(0x40 | 0x10 | 0x0C), Moves::of(&[Move::ZoomIn]));
        assert!(Moves::from_octet(0x55).is_empty());
    }

    #[test]
    fn what_we_do_not_take_is_an_error_or_ignored() {
        // A low-priority frame, a non-standard client, an unknown CME code.
        assert_eq!(
            Frame::parse(&hex("00 61 03 00 00 00 00 01 C0 03 00")),
            Ok(Some(Frame::H281(H281::Stop(Moves::NONE))))
        );
        assert_eq!(Frame::parse(&hex("00 71 03 00 00 00 00 7F B5 00 00 01 07 C0 01")), Ok(None));
        assert_eq!(Frame::parse(&hex("00 71 03 00 00 00 00 00 C0 09 00")), Ok(None));
        assert_eq!(Frame::parse(&hex("00 71 03 00 00 00 00 02 C0 41")), Ok(None), "T.140 is not ours");
        // A client list naming extended and non-standard clients.
        let list = hex("00 71 03 00 00 00 00 00 C0 01 00 03 FE 05 FF B5 00 00 01 07 81");
        assert_eq!(Frame::parse(&list), Ok(Some(Frame::Cme(Cme::ClientList(vec![0x7E, 0x7F, 1])))));
        for (bytes, error) in [
            ("00 71", H224Error::Length),
            ("00 71 03 00 00 00 00", H224Error::Length),
            ("7E 71 03 00 00 00 00 01 C0 01 80 00", H224Error::Header),
            ("00 71 13 00 00 00 00 01 C0 01 80 00", H224Error::Header),
            ("00 71 03 00 00 00 00 01 80 01 80 00", H224Error::Segmented),
            ("00 71 03 00 00 00 00 01 C0 01 80", H224Error::Truncated("H.281")),
            ("00 71 03 00 00 00 00 01 C0", H224Error::Truncated("H.281")),
            ("00 71 03 00 00 00 00 00 C0 01 00 02 81", H224Error::Truncated("CME")),
            ("00 71 03 00 00 00 00 00 C0 01 00 01 FF B5", H224Error::Truncated("CME")),
        ] {
            assert_eq!(Frame::parse(&hex(bytes)), Err(error), "{bytes}");
        }
        assert_eq!(Frame::parse(&vec![0; MAX_FRAME + 1]), Err(H224Error::Length));
    }
}
