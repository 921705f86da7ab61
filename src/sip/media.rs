//! What SDP negotiated, as the media engine's types. `confero-sip` knows
//! nothing of `confero-media` (and the reverse), so the conversion lives here,
//! in the one crate that knows both.

use confero_media::codec::{AudioFormat, CodecKind};
use confero_media::engine::{EndpointConfig, SrtpKeys};
use confero_media::srtp::SrtpProfile;
use confero_sip::sdp::{AudioCodec, CryptoSuite, NegotiatedAudio, SrtpParams};

/// The packet time we send: the mixer ticks every 20 ms, and our SDP says `a=ptime:20`.
const PTIME_MS: u8 = 20;

/// The codec as the media engine names it.
pub fn codec_kind(codec: AudioCodec) -> CodecKind {
    match codec {
        AudioCodec::Opus => CodecKind::Opus,
        AudioCodec::G722 => CodecKind::G722,
        AudioCodec::Pcmu => CodecKind::Pcmu,
        AudioCodec::Pcma => CodecKind::Pcma,
    }
}

/// The SRTP profile of an SDES suite.
pub fn srtp_profile(suite: CryptoSuite) -> SrtpProfile {
    match suite {
        CryptoSuite::AesCm128HmacSha1_80 => SrtpProfile::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => SrtpProfile::AesCm128HmacSha1_32,
        CryptoSuite::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
    }
}

/// Keys for what the peer sends us (`in`) and what we send it (`out`).
pub fn srtp_keys(srtp: &SrtpParams) -> (SrtpKeys, SrtpKeys) {
    let profile = srtp_profile(srtp.suite);
    let inbound = SrtpKeys { profile, key: srtp.remote_key.clone(), salt: srtp.remote_salt.clone() };
    let outbound = SrtpKeys { profile, key: srtp.local_key.clone(), salt: srtp.local_salt.clone() };
    (inbound, outbound)
}

/// The encoder group key for this endpoint.
pub fn audio_format(negotiated: &NegotiatedAudio) -> AudioFormat {
    AudioFormat {
        codec: codec_kind(negotiated.codec.codec),
        clock_rate: negotiated.codec.clock_rate,
        channels: negotiated.codec.channels,
        ptime_ms: PTIME_MS,
    }
}

/// An endpoint configuration for the conference engine: codec, payload type
/// and SRTP keys both ways; everything else at the engine's defaults.
pub fn endpoint_config(negotiated: &NegotiatedAudio) -> EndpointConfig {
    let mut config = EndpointConfig::new(audio_format(negotiated), negotiated.codec.payload_type);
    if let Some(srtp) = &negotiated.srtp {
        let (inbound, outbound) = srtp_keys(srtp);
        config.srtp_in = Some(inbound);
        config.srtp_out = Some(outbound);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use confero_sip::sdp::{answer, Direction, LocalMedia, MediaEncryption, SessionDescription};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn a_negotiated_opus_srtp_stream_becomes_an_endpoint() {
        let offer = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 10000 RTP/SAVP 96 101\r\na=rtpmap:96 opus/48000/2\r\n\
                     a=rtpmap:101 telephone-event/48000\r\n\
                     a=crypto:1 AEAD_AES_128_GCM inline:9sZ4MnvzGtlnkqoAAAAAAAAAAAAAAAAAAAAAAA==\r\n";
        let offer = SessionDescription::parse(offer.as_bytes()).unwrap();
        let local = LocalMedia {
            address: [127, 0, 0, 1].into(),
            audio_port: 40000,
            session_id: 1,
            session_version: 1,
            direction: Direction::SendRecv,
        };
        let mut rng = StdRng::seed_from_u64(1);
        let (_, negotiated) = answer(&offer, &local, MediaEncryption::Required, &mut rng).unwrap();
        let config = endpoint_config(&negotiated);
        assert_eq!(config.format, AudioFormat::OPUS_MONO);
        assert_eq!(config.payload_type, 96);
        let (inbound, outbound) = (config.srtp_in.unwrap(), config.srtp_out.unwrap());
        assert_eq!(inbound.profile, SrtpProfile::AeadAes128Gcm);
        assert_eq!(inbound.salt.len(), inbound.profile.master_salt_len());
        assert_eq!(outbound.key.len(), outbound.profile.master_key_len());
        assert_ne!(inbound.key, outbound.key);
    }
}
