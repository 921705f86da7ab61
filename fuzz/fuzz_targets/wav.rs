//! Branding prompts from an administrator's web server: any bytes give
//! samples or an error, never a panic; what reads is never longer than the
//! longest file at the lowest rate allows.
#![no_main]
use confero_media::engine::wav::{read_wav, MAX_WAV};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(samples) = read_wav(data) {
        assert!(!samples.is_empty());
        assert!(samples.len() <= MAX_WAV / 2 * 6 + 6, "8 kHz is six times fewer samples than 48 kHz");
    }
});
