//! A web customization archive (`resourceArchive`, retrieved from any web
//! server the administrator names): any bytes are refused or read into
//! checked files, and what is read back through the C2W push's
//! `from_files` is the same customization.
#![no_main]
use confero_webbridge::customization::zip;
use confero_webbridge::customization::Customization;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The reader itself, past what `Customization` would use.
    if let Ok(entries) = zip::entries(data) {
        assert!(entries.len() <= zip::MAX_ENTRIES);
        for e in entries.iter().take(8) {
            if let Ok(bytes) = e.read(data, 1 << 20) {
                assert_eq!(bytes.len(), e.size);
            }
        }
    }
    if let Ok(custom) = Customization::from_archive(data) {
        let again = Customization::from_files(custom.files().to_vec()).expect("what was kept is kept again");
        assert_eq!(again, custom);
    }
});
