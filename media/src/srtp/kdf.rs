//! The AES-CM key derivation function (RFC 3711 §4.3), which turns one
//! master key and salt into the six session keys of a context.

use aes::{Aes128, Aes256};
use ctr::cipher::{KeyIvInit, StreamCipher};

type Aes128Ctr = ctr::Ctr128BE<Aes128>;
type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// What a session key is for; the value is the RFC 3711 §4.3.1 label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    RtpEncryption = 0,
    RtpAuthentication = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuthentication = 4,
    RtcpSalt = 5,
}

/// Fills `out` with the session key for `label`, with a key derivation rate
/// of zero (so the packet index plays no part).
///
/// The master salt is 14 bytes for AES-CM and 12 for GCM; the shorter one is
/// padded with zeros on the right, as RFC 7714 §11 and libsrtp do.
/// A 32-byte master key (AEAD_AES_256_GCM) runs the PRF with AES-256
/// (RFC 6188 §7); the IV is built the same way.
pub(super) fn derive(master_key: &[u8], master_salt: &[u8], label: Label, out: &mut [u8]) {
    // IV = (master_salt XOR (label << 48)) << 16, with the salt as a 112-bit
    // number: the label lands in byte 7.
    let mut iv = [0u8; 16];
    let n = master_salt.len().min(14);
    iv[..n].copy_from_slice(&master_salt[..n]);
    iv[7] ^= label as u8;
    out.fill(0);
    if let Ok(key) = <&[u8; 32]>::try_from(master_key) {
        Aes256Ctr::new(key.into(), &iv.into()).apply_keystream(out);
    } else if let Ok(key) = <&[u8; 16]>::try_from(master_key) {
        Aes128Ctr::new(key.into(), &iv.into()).apply_keystream(out);
    }
}

#[cfg(test)]
pub(super) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3711 appendix B.3.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let key: [u8; 16] = hex("E1F97A0D3E018BE0D64FA32C06DE4139").try_into().unwrap();
        let salt = hex("0EC675AD498AFEEBB6960B3AABE6");

        let mut enc = [0u8; 16];
        derive(&key, &salt, Label::RtpEncryption, &mut enc);
        assert_eq!(enc.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));

        let mut session_salt = [0u8; 14];
        derive(&key, &salt, Label::RtpSalt, &mut session_salt);
        assert_eq!(session_salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));

        // The appendix lists 94 bytes of authentication keystream; HMAC-SHA1
        // uses the first 20.
        let mut auth = [0u8; 94];
        derive(&key, &salt, Label::RtpAuthentication, &mut auth);
        assert_eq!(
            auth.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
                 E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
                 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2")
        );
    }

    /// RFC 3711 appendix B.2: the AES-CM keystream for a given session key
    /// and IV, which is the same construction the KDF runs.
    #[test]
    fn rfc3711_b2_keystream() {
        let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
        let mut ks = [0u8; 48];
        Aes128Ctr::new(&key.into(), &iv.into()).apply_keystream(&mut ks);
        assert_eq!(
            ks.to_vec(),
            hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB
                 41E95B3BB0A2E8DD477901E4FCA894C0")
        );
    }
}
