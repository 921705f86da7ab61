//! C2W frames: any bytes give a message or an error, never a panic; a
//! message read back from its own encoding is the same message.
#![no_main]
use confero_webbridge::c2w::frame::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((id, message)) = decode(data) {
        let again = encode(id, &message);
        assert_eq!(decode(again.as_bytes()), Ok((id, message)));
    }
});
