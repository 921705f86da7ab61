//! Far-end camera control's stream: H.224 over RTP (RFC 4573), offered as
//! `m=application <port> RTP/AVP <pt>` with `a=rtpmap:<pt> H224/4800`.
//!
//! It is answered like the other streams of a call — the offerer's payload
//! type, rtcp-mux when offered, SDES keys under the same
//! `sipMediaEncryption` — and a section we cannot take is refused with port
//! 0 while the call goes on. [`crate::answer`] still refuses it: the bridge
//! opts in with [`answer_fecc`] (CMS's `compatibilityProfiles` `sipH224`).

use std::net::SocketAddr;

use rand::RngCore;

use super::crypto::CryptoAttribute;
use super::negotiate::{
    answered_stream, choose_crypto, combine, offer_crypto, payload_types, remote_addresses, rtpmap, srtp_params,
    Direction, MediaEncryption, NegotiationError,
};
use super::{MediaDescription, SessionDescription, SrtpParams};

/// The RTP clock of H.224 (RFC 4573 §4).
pub const H224_CLOCK_RATE: u32 = 4800;

/// The payload type we offer H.224 with (the one Cisco and Polycom
/// endpoints use).
pub const H224_OFFER_PT: u8 = 107;

/// What the bridge hands the media runtime for one H.224 stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedFecc {
    /// The H.224 payload type, the offerer's number, both ways.
    pub payload_type: u8,
    /// Where to send RTP.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP.
    pub remote_rtcp: SocketAddr,
    /// RTP and RTCP share one port.
    pub rtcp_mux: bool,
    /// The direction from our side.
    pub direction: Direction,
    /// SRTP, when the stream is encrypted.
    pub srtp: Option<SrtpParams>,
}

/// The first H.224 payload type of a section.
fn h224_payload_type(media: &MediaDescription) -> Option<u8> {
    payload_types(media).find(|&pt| {
        rtpmap(media, pt).is_some_and(|(name, rate, _)| name.eq_ignore_ascii_case("H224") && rate == H224_CLOCK_RATE)
    })
}

/// True for an offered section that is H.224 over RTP.
pub fn is_h224(media: &MediaDescription) -> bool {
    media.port != 0
        && media.kind.eq_ignore_ascii_case("application")
        && media.proto.to_ascii_uppercase().starts_with("RTP/")
        && h224_payload_type(media).is_some()
}

/// Answers the first offered H.224 section of `offer` into `answer` (made by
/// [`crate::answer`] or [`crate::answer_with_video`], which refused it),
/// our RTP port `port`. `None`, and the section left refused, when there is
/// none or it cannot be taken (keys against the policy, no address).
pub fn answer_fecc(
    answer: &mut SessionDescription,
    offer: &SessionDescription,
    port: u16,
    policy: MediaEncryption,
    rng: &mut dyn RngCore,
) -> Option<NegotiatedFecc> {
    let index = offer.media.iter().position(is_h224)?;
    let offered = offer.media.get(index)?;
    let payload_type = h224_payload_type(offered)?;
    let crypto = choose_crypto(offered, policy).ok()?;
    let rtcp_mux = offered.has_attribute("rtcp-mux");
    let (remote_rtp, remote_rtcp, held) = remote_addresses(offered, offer, rtcp_mux).ok()?;
    let offered_direction = Direction::of(offered, offer);
    let offered_direction = if held { combine(offered_direction, Direction::SendOnly) } else { offered_direction };
    let direction = combine(offered_direction.reversed(), Direction::SendRecv);
    let our_crypto = crypto.as_ref().map(|c| CryptoAttribute::generate(c.tag, c.suite, rng));

    let mut media = MediaDescription {
        kind: "application".into(),
        port,
        port_count: None,
        proto: offered.proto.clone(),
        formats: vec![payload_type.to_string()],
        lines: Vec::new(),
    };
    media.push_attribute(format!("rtpmap:{payload_type} H224/{H224_CLOCK_RATE}"));
    if rtcp_mux {
        media.push_attribute("rtcp-mux");
    }
    if let Some(line) = &our_crypto {
        media.push_attribute(format!("crypto:{}", line.to_value()));
    }
    media.push_attribute(direction.attribute());
    *answer.media.get_mut(index)? = media;
    Some(NegotiatedFecc {
        payload_type,
        remote_rtp,
        remote_rtcp,
        rtcp_mux,
        direction,
        srtp: srtp_params(crypto, our_crypto.as_ref()),
    })
}

/// Our H.224 offer for a call we make, and what the answer agreed.
#[derive(Debug, Clone)]
pub struct FeccOffer {
    policy: MediaEncryption,
    crypto: Vec<CryptoAttribute>,
}

impl FeccOffer {
    /// Appends our H.224 section to `offer` (whose first section's transport
    /// profile it copies): payload type [`H224_OFFER_PT`], rtcp-mux, and
    /// under `policy` SDES crypto lines of its own.
    pub fn add_to(offer: &mut SessionDescription, port: u16, policy: MediaEncryption, rng: &mut dyn RngCore) -> Self {
        let crypto = offer_crypto(policy, rng);
        let proto = offer.media.first().map_or_else(|| "RTP/AVP".to_string(), |m| m.proto.clone());
        let pt = H224_OFFER_PT;
        let mut media = MediaDescription {
            kind: "application".into(),
            port,
            port_count: None,
            proto,
            formats: vec![pt.to_string()],
            lines: Vec::new(),
        };
        media.push_attribute(format!("rtpmap:{pt} H224/{H224_CLOCK_RATE}"));
        media.push_attribute("rtcp-mux");
        for line in &crypto {
            media.push_attribute(format!("crypto:{}", line.to_value()));
        }
        media.push_attribute(Direction::SendRecv.attribute());
        offer.media.push(media);
        FeccOffer { policy, crypto }
    }

    /// Reads the answer's H.224 section: `None` when it was refused (port 0,
    /// no section, another format, keys we cannot use).
    pub fn accept(&self, answer: &SessionDescription) -> Option<NegotiatedFecc> {
        let media = answer.media.iter().find(|m| is_h224(m))?;
        let payload_type = h224_payload_type(media)?;
        let stream = answered_stream(media, answer, self.policy, &self.crypto, Direction::SendRecv)?;
        Some(NegotiatedFecc {
            payload_type,
            remote_rtp: stream.remote_rtp,
            remote_rtcp: stream.remote_rtcp,
            rtcp_mux: stream.rtcp_mux,
            direction: stream.direction,
            srtp: stream.srtp,
        })
    }
}

/// Why an H.224 section was not taken, for logs.
pub fn refusal(offer: &SessionDescription, policy: MediaEncryption) -> Option<NegotiationError> {
    let offered = offer.media.iter().find(|m| is_h224(m))?;
    choose_crypto(offered, policy).err()
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::tests::local;
    use crate::{answer_with_video, LocalVideo};

    fn offer(application: &str) -> SessionDescription {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n\
             m=audio 5000 RTP/SAVP 0\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\
             m=video 5002 RTP/SAVP 97\r\na=rtpmap:97 H264/90000\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\
             {application}"
        );
        SessionDescription::parse(text.as_bytes()).unwrap()
    }

    /// A Cisco endpoint's H.224 section: SRTP, RTCP on the next port.
    const CISCO: &str = "m=application 5004 RTP/SAVP 107\r\n\
        a=rtpmap:107 H224/4800\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\
        a=sendrecv\r\n";

    #[test]
    fn an_offered_h224_section_is_answered_in_place_with_its_payload_type_and_keys() {
        let offer = offer(CISCO);
        let mut rng = StdRng::seed_from_u64(1);
        let (mut answer, _, video) =
            answer_with_video(&offer, &local(), &LocalVideo::hd720(40002), MediaEncryption::Optional, &mut rng)
                .unwrap();
        assert!(video.is_some());
        assert_eq!(answer.media[2].port, 0, "answer() refuses H.224 by itself");
        let fecc = answer_fecc(&mut answer, &offer, 40004, MediaEncryption::Optional, &mut rng).unwrap();
        assert_eq!(fecc.payload_type, 107);
        assert_eq!(fecc.remote_rtp, "192.0.2.7:5004".parse().unwrap());
        assert_eq!(fecc.remote_rtcp, "192.0.2.7:5005".parse().unwrap());
        assert!(!fecc.rtcp_mux);
        assert_eq!(fecc.direction, Direction::SendRecv);
        let srtp = fecc.srtp.expect("keys");
        let text = answer.to_text();
        assert!(text.contains("m=application 40004 RTP/SAVP 107\r\na=rtpmap:107 H224/4800\r\na=crypto:1 "), "{text}");
        let ours = answer.media[2].attribute_values("crypto").find_map(CryptoAttribute::parse).unwrap();
        assert_eq!((ours.key, ours.salt), (srtp.local_key, srtp.local_salt));
        // Three sections in the offer's order.
        assert_eq!(answer.media.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>(), ["audio", "video", "application"]);
    }

    #[test]
    fn what_is_not_h224_or_breaks_the_policy_stays_refused() {
        let mut rng = StdRng::seed_from_u64(2);
        for other in [
            // BFCP and a non-RTP application stream are not ours.
            "m=application 5004 TCP/BFCP *\r\na=floorctrl:c-s\r\n",
            "m=application 5004 RTP/AVP 107\r\na=rtpmap:107 H224/8000\r\n",
            "m=application 0 RTP/AVP 107\r\na=rtpmap:107 H224/4800\r\n",
        ] {
            let offer = offer(other);
            let (mut answer, _) = crate::answer(&offer, &local(), MediaEncryption::Optional, &mut rng).unwrap();
            assert!(answer_fecc(&mut answer, &offer, 40004, MediaEncryption::Optional, &mut rng).is_none(), "{other}");
            assert_eq!(answer.media[2].port, 0);
        }
        // Keys offered where encryption is prohibited.
        let offer = offer(CISCO);
        let refused = refusal(&offer, MediaEncryption::Prohibited);
        assert_eq!(refused, Some(NegotiationError::EncryptionProhibited));
    }

    #[test]
    fn our_offer_is_answered_by_our_own_answer_and_read_back() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut ours = crate::AudioOffer::new(&local(), MediaEncryption::Optional, &mut rng);
        let offered = FeccOffer::add_to(&mut ours.sdp, 40004, MediaEncryption::Optional, &mut rng);
        let text = ours.sdp.to_text();
        assert!(text.contains("m=application 40004 RTP/AVP 107\r\na=rtpmap:107 H224/4800\r\na=rtcp-mux\r\n"), "{text}");
        let (mut answer, _) = crate::answer(&ours.sdp, &local(), MediaEncryption::Optional, &mut rng).unwrap();
        assert!(offered.accept(&answer).is_none(), "refused with port 0");
        let theirs = answer_fecc(&mut answer, &ours.sdp, 6000, MediaEncryption::Optional, &mut rng).unwrap();
        let read = offered.accept(&answer).unwrap();
        assert_eq!(read.payload_type, 107);
        assert_eq!(read.remote_rtp.port(), 6000);
        assert!(read.rtcp_mux);
        // Each side's sending key is the other's receiving key.
        let (ours, theirs) = (read.srtp.unwrap(), theirs.srtp.unwrap());
        assert_eq!(ours.local_key, theirs.remote_key);
        assert_eq!(ours.remote_key, theirs.local_key);
    }
}
