//! H.264's SDP parameters (RFC 6184 §8.1) and RTCP feedback (RFC 4585, RFC 5104).
//!
//! `profile-level-id` says which profile and level a receiver decodes;
//! `max-fs` and `max-mbps` raise the frame size and macroblock rate above the
//! level's, which is how an endpoint says "level 3.1 but 1080p at a low frame
//! rate". The bridge sends each receiver at most what these allow.

use std::fmt::Write as _;

use super::MediaDescription;

/// An H.264 level (Table A-1 of the H.264 standard), in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum H264Level {
    /// 1
    L1,
    /// 1b
    L1b,
    /// 1.1
    L1_1,
    /// 1.2
    L1_2,
    /// 1.3
    L1_3,
    /// 2
    L2,
    /// 2.1
    L2_1,
    /// 2.2
    L2_2,
    /// 3
    L3,
    /// 3.1: 720p30, what the bridge encodes and decodes by default.
    L3_1,
    /// 3.2
    L3_2,
    /// 4
    L4,
    /// 4.1
    L4_1,
    /// 4.2
    L4_2,
    /// 5
    L5,
    /// 5.1
    L5_1,
    /// 5.2
    L5_2,
    /// 6
    L6,
    /// 6.1
    L6_1,
    /// 6.2
    L6_2,
}

/// Every level but 1b with its level_idc, MaxMBPS and MaxFS (in macroblocks).
const LEVELS: [(H264Level, u8, u32, u32); 19] = [
    (H264Level::L1, 10, 1_485, 99),
    (H264Level::L1_1, 11, 3_000, 396),
    (H264Level::L1_2, 12, 6_000, 396),
    (H264Level::L1_3, 13, 11_880, 396),
    (H264Level::L2, 20, 11_880, 396),
    (H264Level::L2_1, 21, 19_800, 792),
    (H264Level::L2_2, 22, 20_250, 1_620),
    (H264Level::L3, 30, 40_500, 1_620),
    (H264Level::L3_1, 31, 108_000, 3_600),
    (H264Level::L3_2, 32, 216_000, 5_120),
    (H264Level::L4, 40, 245_760, 8_192),
    (H264Level::L4_1, 41, 245_760, 8_192),
    (H264Level::L4_2, 42, 522_240, 8_704),
    (H264Level::L5, 50, 589_824, 22_080),
    (H264Level::L5_1, 51, 983_040, 36_864),
    (H264Level::L5_2, 52, 2_073_600, 36_864),
    (H264Level::L6, 60, 4_177_920, 139_264),
    (H264Level::L6_1, 61, 8_355_840, 139_264),
    (H264Level::L6_2, 62, 16_711_680, 139_264),
];

impl H264Level {
    /// The level of a level_idc; an unknown value counts as the highest known
    /// level below it (so a future level is at least 6.2), 1 when none is.
    /// 1b needs the profile too: see [`ProfileLevelId::level`].
    pub fn from_level_idc(level_idc: u8) -> H264Level {
        LEVELS.iter().rev().find(|(_, idc, _, _)| *idc <= level_idc).map_or(H264Level::L1, |(level, _, _, _)| *level)
    }

    /// The level_idc (11 for 1b, which also needs constraint_set3 in the
    /// Baseline, Main and Extended profiles).
    pub fn level_idc(self) -> u8 {
        match self {
            H264Level::L1b => 11,
            level => LEVELS.iter().find(|(l, _, _, _)| *l == level).map_or(10, |(_, idc, _, _)| *idc),
        }
    }

    /// MaxFS: the largest frame, in 16×16 macroblocks.
    pub fn max_fs(self) -> u32 {
        self.limits().1
    }

    /// MaxMBPS: macroblocks per second.
    pub fn max_mbps(self) -> u32 {
        self.limits().0
    }

    fn limits(self) -> (u32, u32) {
        let level = if self == H264Level::L1b { H264Level::L1 } else { self };
        LEVELS.iter().find(|(l, _, _, _)| *l == level).map_or((1_485, 99), |(_, _, mbps, fs)| (*mbps, *fs))
    }
}

/// `profile-level-id`: profile_idc, the constraint flags byte (profile-iop)
/// and level_idc, as six hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileLevelId {
    /// profile_idc: 66 Baseline, 77 Main, 100 High, ...
    pub profile_idc: u8,
    /// constraint_set0..5 flags, most significant bit first.
    pub constraints: u8,
    /// level_idc.
    pub level_idc: u8,
}

/// constraint_set1_flag: with Baseline, Constrained Baseline.
const CONSTRAINT_SET1: u8 = 0x40;
/// constraint_set3_flag: with level_idc 11 in Baseline/Main/Extended, level 1b.
const CONSTRAINT_SET3: u8 = 0x10;

impl ProfileLevelId {
    /// What an fmtp without `profile-level-id` means: Baseline, level 1 (RFC 6184 §8.1).
    pub const DEFAULT: ProfileLevelId = ProfileLevelId { profile_idc: 66, constraints: 0, level_idc: 10 };

    /// Constrained Baseline 3.1 (`42e01f`), what our encoder sends.
    pub const CONSTRAINED_BASELINE_3_1: ProfileLevelId =
        ProfileLevelId { profile_idc: 66, constraints: 0xe0, level_idc: 31 };

    /// Parses six hex digits.
    pub fn parse(value: &str) -> Option<ProfileLevelId> {
        let value = value.trim();
        if value.len() != 6 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| value.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
        Some(ProfileLevelId { profile_idc: byte(0)?, constraints: byte(2)?, level_idc: byte(4)? })
    }

    /// Six lower-case hex digits.
    pub fn to_hex(self) -> String {
        format!("{:02x}{:02x}{:02x}", self.profile_idc, self.constraints, self.level_idc)
    }

    /// Baseline, Main and Extended spell level 1b with constraint_set3.
    fn spells_1b_with_constraint_set3(self) -> bool {
        matches!(self.profile_idc, 66 | 77 | 88)
    }

    /// The level, 1b included.
    pub fn level(self) -> H264Level {
        let is_1b = if self.spells_1b_with_constraint_set3() {
            self.level_idc == 11 && self.constraints & CONSTRAINT_SET3 != 0
        } else {
            self.level_idc == 9
        };
        if is_1b {
            H264Level::L1b
        } else {
            H264Level::from_level_idc(self.level_idc)
        }
    }

    /// The same profile at another level.
    pub fn with_level(self, level: H264Level) -> ProfileLevelId {
        let mut out = self;
        if self.spells_1b_with_constraint_set3() {
            out.constraints &= !CONSTRAINT_SET3;
            if level == H264Level::L1b {
                out.constraints |= CONSTRAINT_SET3;
            }
            out.level_idc = level.level_idc();
        } else {
            out.level_idc = if level == H264Level::L1b { 9 } else { level.level_idc() };
        }
        out
    }

    /// Profiles whose streams OpenH264 decodes and which accept what it
    /// encodes (Constrained Baseline is a subset of each): Baseline (any
    /// constraints), Main, High.
    pub fn is_supported(self) -> bool {
        matches!(self.profile_idc, 66 | 77 | 100)
    }

    /// Constrained Baseline: Baseline with constraint_set1, or Main with set0 and set1 (RFC 6184 table 5).
    pub fn is_constrained_baseline(self) -> bool {
        (self.profile_idc == 66 && self.constraints & CONSTRAINT_SET1 != 0)
            || (self.profile_idc == 77 && self.constraints & 0xc0 == 0xc0)
    }
}

/// The fmtp parameters of one H.264 payload type that matter to us; the rest
/// (sprop-parameter-sets, max-cpb, ...) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Fmtp {
    /// Profile and level; [`ProfileLevelId::DEFAULT`] when absent.
    pub profile_level_id: ProfileLevelId,
    /// 0 (single NAL unit), 1 (non-interleaved) or 2 (interleaved); 0 when absent.
    pub packetization_mode: u8,
    /// Each side may send at its own level (RFC 6184 §8.2.2).
    pub level_asymmetry_allowed: bool,
    /// Largest frame the receiver takes, in macroblocks, above its level's.
    pub max_fs: Option<u32>,
    /// Macroblocks per second the receiver takes, above its level's.
    pub max_mbps: Option<u32>,
    /// Bit rate the receiver takes, in units of 1000 (VCL) bit/s.
    pub max_br: Option<u32>,
}

impl Default for H264Fmtp {
    fn default() -> Self {
        H264Fmtp {
            profile_level_id: ProfileLevelId::DEFAULT,
            packetization_mode: 0,
            level_asymmetry_allowed: false,
            max_fs: None,
            max_mbps: None,
            max_br: None,
        }
    }
}

impl H264Fmtp {
    /// Parses the parameters after `a=fmtp:<pt> `. A known parameter with a
    /// value we cannot read makes the whole payload type unusable (`None`):
    /// guessing a profile or a limit would send a stream the peer cannot decode.
    pub fn parse(params: &str) -> Option<H264Fmtp> {
        let mut fmtp = H264Fmtp::default();
        for param in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            let value = value.trim();
            let number = || value.parse::<u32>().ok();
            match name.trim().to_ascii_lowercase().as_str() {
                "profile-level-id" => fmtp.profile_level_id = ProfileLevelId::parse(value)?,
                "packetization-mode" => fmtp.packetization_mode = value.parse().ok().filter(|m| *m <= 2)?,
                "level-asymmetry-allowed" => fmtp.level_asymmetry_allowed = value == "1",
                "max-fs" => fmtp.max_fs = Some(number()?),
                "max-mbps" => fmtp.max_mbps = Some(number()?),
                "max-br" => fmtp.max_br = Some(number()?),
                _ => {}
            }
        }
        Some(fmtp)
    }

    /// The parameters as written after `a=fmtp:<pt> `.
    pub fn to_value(&self) -> String {
        let mut out = format!(
            "profile-level-id={};packetization-mode={}",
            self.profile_level_id.to_hex(),
            self.packetization_mode
        );
        if self.level_asymmetry_allowed {
            out.push_str(";level-asymmetry-allowed=1");
        }
        for (name, value) in [("max-fs", self.max_fs), ("max-mbps", self.max_mbps), ("max-br", self.max_br)] {
            if let Some(value) = value {
                let _ = write!(out, ";{name}={value}");
            }
        }
        out
    }

    /// The largest frame the receiver decodes, in macroblocks.
    pub fn frame_size_limit(&self) -> u32 {
        self.profile_level_id.level().max_fs().max(self.max_fs.unwrap_or(0))
    }

    /// The macroblock rate the receiver decodes.
    pub fn macroblock_rate_limit(&self) -> u32 {
        self.profile_level_id.level().max_mbps().max(self.max_mbps.unwrap_or(0))
    }
}

/// The RTCP feedback an endpoint accepts for a payload type (`a=rtcp-fb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtcpFeedback {
    /// `nack`: generic NACK, retransmission requests.
    pub nack: bool,
    /// `nack pli`: picture loss indication.
    pub pli: bool,
    /// `ccm fir`: full intra request; such endpoints get FIR instead of PLI.
    pub fir: bool,
    /// `goog-remb`: receiver estimated maximum bitrate.
    pub remb: bool,
    /// `ccm tmmbr`: RFC 5104 temporary maximum media bitrate requests (we
    /// honour them for what we send, and send them to a participant shown
    /// only small).
    pub tmmbr: bool,
}

impl RtcpFeedback {
    /// The feedback a media section declares for `payload_type` (or for `*`).
    pub fn of(media: &MediaDescription, payload_type: u8) -> RtcpFeedback {
        let mut feedback = RtcpFeedback::default();
        for value in media.attribute_values("rtcp-fb") {
            let Some((target, kind)) = value.trim().split_once(' ') else { continue };
            if target != "*" && target.parse::<u8>().ok() != Some(payload_type) {
                continue;
            }
            let words: Vec<String> = kind.split_whitespace().map(str::to_ascii_lowercase).collect();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            match words.as_slice() {
                ["nack"] => feedback.nack = true,
                ["nack", "pli"] => feedback.pli = true,
                ["ccm", "fir"] => feedback.fir = true,
                ["goog-remb"] => feedback.remb = true,
                ["ccm", "tmmbr"] => feedback.tmmbr = true,
                _ => {}
            }
        }
        feedback
    }

    /// What both sides have.
    pub fn intersect(self, other: RtcpFeedback) -> RtcpFeedback {
        RtcpFeedback {
            nack: self.nack && other.nack,
            pli: self.pli && other.pli,
            fir: self.fir && other.fir,
            remb: self.remb && other.remb,
            tmmbr: self.tmmbr && other.tmmbr,
        }
    }

    /// The `a=rtcp-fb` values for a payload type.
    pub fn attribute_values(self, payload_type: u8) -> Vec<String> {
        [
            (self.nack, "nack"),
            (self.pli, "nack pli"),
            (self.fir, "ccm fir"),
            (self.tmmbr, "ccm tmmbr"),
            (self.remb, "goog-remb"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, kind)| format!("rtcp-fb:{payload_type} {kind}"))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_level_id_reads_and_writes_six_hex_digits() {
        let id = ProfileLevelId::parse("42E01f").unwrap();
        assert_eq!(id, ProfileLevelId::CONSTRAINED_BASELINE_3_1);
        assert_eq!(id.to_hex(), "42e01f");
        assert_eq!(id.level(), H264Level::L3_1);
        assert!(id.is_constrained_baseline());
        assert_eq!(ProfileLevelId::parse("42e01"), None);
        assert_eq!(ProfileLevelId::parse("42e0zz"), None);
        assert_eq!(ProfileLevelId::parse("+42e01f"), None);
        assert_eq!(ProfileLevelId::parse("640028").unwrap().level(), H264Level::L4);
    }

    #[test]
    fn level_1b_and_unknown_levels() {
        let baseline_1b = ProfileLevelId::parse("42100b").unwrap();
        assert_eq!(baseline_1b.level(), H264Level::L1b);
        assert_eq!(ProfileLevelId::parse("42000b").unwrap().level(), H264Level::L1_1);
        assert_eq!(ProfileLevelId::parse("640009").unwrap().level(), H264Level::L1b);
        assert!(H264Level::L1b > H264Level::L1 && H264Level::L1b < H264Level::L1_1);
        assert_eq!(H264Level::from_level_idc(63), H264Level::L6_2);
        assert_eq!(H264Level::from_level_idc(35), H264Level::L3_2);
        assert_eq!(H264Level::from_level_idc(0), H264Level::L1);
        assert_eq!(baseline_1b.with_level(H264Level::L3_1).to_hex(), "42001f");
        assert_eq!(ProfileLevelId::parse("42001f").unwrap().with_level(H264Level::L1b).to_hex(), "42100b");
        assert_eq!(ProfileLevelId::parse("64001f").unwrap().with_level(H264Level::L1b).to_hex(), "640009");
        assert_eq!(H264Level::L3_1.max_fs(), 3600);
        assert_eq!(H264Level::L3_1.max_mbps(), 108_000);
        assert_eq!(H264Level::L1b.max_fs(), 99);
    }

    #[test]
    fn fmtp_parses_what_matters_and_ignores_the_rest() {
        let fmtp = H264Fmtp::parse(
            "profile-level-id=42e01f; packetization-mode=1;level-asymmetry-allowed=1;max-fs=8160;max-mbps=244800;\
             max-br=5000;sprop-parameter-sets=Z0LAH9oBQBbsBEAAAAMAQAAADyPGDKg=,aM48gA==",
        )
        .unwrap();
        assert_eq!(fmtp.profile_level_id, ProfileLevelId::CONSTRAINED_BASELINE_3_1);
        assert_eq!(fmtp.packetization_mode, 1);
        assert!(fmtp.level_asymmetry_allowed);
        assert_eq!((fmtp.max_fs, fmtp.max_mbps, fmtp.max_br), (Some(8160), Some(244_800), Some(5000)));
        assert_eq!(fmtp.frame_size_limit(), 8160);
        assert_eq!(
            fmtp.to_value(),
            "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1;max-fs=8160;max-mbps=244800;\
             max-br=5000"
        );
        assert_eq!(H264Fmtp::parse(&fmtp.to_value()), Some(fmtp));
        assert_eq!(H264Fmtp::parse("").unwrap(), H264Fmtp::default());
        assert_eq!(H264Fmtp::parse("profile-level-id=xyz"), None);
        assert_eq!(H264Fmtp::parse("packetization-mode=3"), None);
        assert_eq!(H264Fmtp::parse("max-fs=-1"), None);
    }

    #[test]
    fn rtcp_feedback_for_a_payload_type_or_all() {
        let sdp = crate::SessionDescription::parse(
            b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 97 98\r\n\
              a=rtcp-fb:97 nack\r\na=rtcp-fb:97 nack pli\r\na=rtcp-fb:* ccm fir\r\na=rtcp-fb:98 goog-remb\r\na=rtcp-fb:98 ccm tmmbr\r\n\
              a=rtcp-fb:97 trr-int 100\r\n",
        )
        .unwrap();
        let media = &sdp.media[0];
        let feedback = RtcpFeedback::of(media, 97);
        assert_eq!(feedback, RtcpFeedback { nack: true, pli: true, fir: true, remb: false, tmmbr: false });
        assert_eq!(
            RtcpFeedback::of(media, 98),
            RtcpFeedback { nack: false, pli: false, fir: true, remb: true, tmmbr: true }
        );
        let ours = RtcpFeedback { nack: false, pli: true, fir: true, remb: true, tmmbr: true };
        assert_eq!(feedback.intersect(ours).attribute_values(97), vec!["rtcp-fb:97 nack pli", "rtcp-fb:97 ccm fir"]);
    }
}
