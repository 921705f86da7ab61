//! The per-suite transforms: AES-CM with HMAC-SHA1 (RFC 3711 §4.1.1, §4.2.1)
//! and AES-GCM (RFC 7714), each built once from derived session keys.

use aes::Aes128Enc;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce, Tag};
use ctr::cipher::{InnerIvInit, StreamCipher};
use ctr::flavors::Ctr128BE;
use ctr::CtrCore;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::kdf::{derive, Label};
use super::{SrtpError, SrtpProfile};

type Aes128EncCtr = ctr::Ctr128BE<Aes128Enc>;
type GcmNonce = Nonce<U12>;

/// AES-CM encryption and HMAC-SHA1 authentication for one of RTP or RTCP.
pub(super) struct AesCmHmac {
    /// The expanded encryption key (CTR mode never decrypts a block): cloning
    /// it per packet is a 176-byte copy, not a key schedule.
    aes: Aes128Enc,
    salt: [u8; 14],
    /// HMAC with the inner and outer pads already absorbed, cloned per packet.
    mac: Hmac<Sha1>,
}

impl AesCmHmac {
    fn new(enc_key: &[u8; 16], auth_key: &[u8; 20], salt: [u8; 14]) -> Self {
        Self {
            aes: <Aes128Enc as KeyInit>::new(enc_key.into()),
            salt,
            mac: <Hmac<Sha1> as Mac>::new_from_slice(auth_key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    /// XORs the keystream for (`ssrc`, `index`) into `data`; the same call
    /// encrypts and decrypts. IV = (salt << 16) ^ (ssrc << 64) ^ (index << 16).
    pub(super) fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, i) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= i;
        }
        let core = CtrCore::<Aes128Enc, Ctr128BE>::inner_iv_init(self.aes.clone(), &iv.into());
        Aes128EncCtr::from_core(core).apply_keystream(data);
    }

    /// The full 20-byte HMAC of `data` followed by `trailer` (the ROC for
    /// RTP; nothing for RTCP, whose index is already in `data`).
    pub(super) fn tag(&self, data: &[u8], trailer: &[u8]) -> [u8; 20] {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.update(trailer);
        mac.finalize().into_bytes().into()
    }

    /// Checks a received tag in constant time.
    pub(super) fn verify(&self, data: &[u8], trailer: &[u8], tag: &[u8]) -> Result<(), SrtpError> {
        let expected = self.tag(data, trailer);
        let Some(expected) = expected.get(..tag.len()) else {
            return Err(SrtpError::AuthenticationFailed);
        };
        if bool::from(expected.ct_eq(tag)) {
            Ok(())
        } else {
            Err(SrtpError::AuthenticationFailed)
        }
    }
}

/// AES-GCM with a 128- or 256-bit key (the 256-bit key schedule is twice
/// the size: boxed, so a 128-bit context stays as small as before).
#[allow(clippy::large_enum_variant)]
enum GcmCipher {
    Aes128(Aes128Gcm),
    Aes256(Box<Aes256Gcm>),
}

/// AES-GCM for one of RTP or RTCP.
pub(super) struct AesGcm {
    aead: GcmCipher,
    salt: [u8; 12],
}

impl AesGcm {
    pub(super) fn new(key: &[u8; 16], salt: [u8; 12]) -> Self {
        Self { aead: GcmCipher::Aes128(Aes128Gcm::new(key.into())), salt }
    }

    pub(super) fn new_256(key: &[u8; 32], salt: [u8; 12]) -> Self {
        Self { aead: GcmCipher::Aes256(Box::new(Aes256Gcm::new(key.into()))), salt }
    }

    /// The RTP IV of RFC 7714 §8.1: (00 00 || SSRC || ROC || SEQ) XOR salt.
    pub(super) fn rtp_nonce(&self, ssrc: u32, roc: u32, seq: u16) -> GcmNonce {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[6..10].copy_from_slice(&roc.to_be_bytes());
        iv[10..12].copy_from_slice(&seq.to_be_bytes());
        self.salted(iv)
    }

    /// The RTCP IV of RFC 7714 §9.1: (00 00 || SSRC || 00 00 || index) XOR
    /// salt, the index without its E bit.
    pub(super) fn rtcp_nonce(&self, ssrc: u32, index: u32) -> GcmNonce {
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
        iv[8..12].copy_from_slice(&index.to_be_bytes());
        self.salted(iv)
    }

    fn salted(&self, mut iv: [u8; 12]) -> GcmNonce {
        for (b, s) in iv.iter_mut().zip(self.salt) {
            *b ^= s;
        }
        iv.into()
    }

    /// Encrypts `data` in place and returns the 16-byte tag.
    pub(super) fn seal(&self, nonce: &GcmNonce, aad: &[u8], data: &mut [u8]) -> Result<Tag, SrtpError> {
        match &self.aead {
            GcmCipher::Aes128(a) => a.encrypt_in_place_detached(nonce, aad, data),
            GcmCipher::Aes256(a) => a.encrypt_in_place_detached(nonce, aad, data),
        }
        .map_err(|_| SrtpError::Malformed)
    }

    /// Verifies the tag and decrypts `data` in place.
    pub(super) fn open(&self, nonce: &GcmNonce, aad: &[u8], data: &mut [u8], tag: &[u8]) -> Result<(), SrtpError> {
        let tag = Tag::from_slice(tag);
        match &self.aead {
            GcmCipher::Aes128(a) => a.decrypt_in_place_detached(nonce, aad, data, tag),
            GcmCipher::Aes256(a) => a.decrypt_in_place_detached(nonce, aad, data, tag),
        }
        .map_err(|_| SrtpError::AuthenticationFailed)
    }
}

/// The transform of one direction-half (RTP or RTCP) of a context.
pub(super) enum Transform {
    AesCm(AesCmHmac),
    Gcm(AesGcm),
}

impl Transform {
    /// Derives session keys from the master key and salt and builds the
    /// transform for RTP (`rtcp == false`) or RTCP.
    pub(super) fn derive(profile: SrtpProfile, master_key: &[u8], master_salt: &[u8], rtcp: bool) -> Self {
        let (enc_label, auth_label, salt_label) = if rtcp {
            (Label::RtcpEncryption, Label::RtcpAuthentication, Label::RtcpSalt)
        } else {
            (Label::RtpEncryption, Label::RtpAuthentication, Label::RtpSalt)
        };
        let mut enc = [0u8; 16];
        derive(master_key, master_salt, enc_label, &mut enc);
        match profile {
            SrtpProfile::AeadAes256Gcm => {
                let mut enc = [0u8; 32];
                let mut salt = [0u8; 12];
                derive(master_key, master_salt, enc_label, &mut enc);
                derive(master_key, master_salt, salt_label, &mut salt);
                Transform::Gcm(AesGcm::new_256(&enc, salt))
            }
            SrtpProfile::AeadAes128Gcm => {
                let mut salt = [0u8; 12];
                derive(master_key, master_salt, salt_label, &mut salt);
                Transform::Gcm(AesGcm::new(&enc, salt))
            }
            SrtpProfile::AesCm128HmacSha1_80 | SrtpProfile::AesCm128HmacSha1_32 => {
                let mut auth = [0u8; 20];
                let mut salt = [0u8; 14];
                derive(master_key, master_salt, auth_label, &mut auth);
                derive(master_key, master_salt, salt_label, &mut salt);
                Transform::AesCm(AesCmHmac::new(&enc, &auth, salt))
            }
        }
    }
}
