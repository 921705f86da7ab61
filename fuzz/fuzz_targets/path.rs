//! The router: any path resolves to a target or an error, never a panic.
#![no_main]
use confero_api::route::route;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data) {
        let _ = route(path);
    }
});
