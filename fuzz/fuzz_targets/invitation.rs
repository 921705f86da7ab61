//! An invitation template (`callBrandingProfiles` `invitationTemplate`,
//! fetched over HTTP): any text is refused with a line or read into a
//! template that renders without a panic; with no values, what it renders
//! is some of its own literal text, so never longer than it, and an empty
//! value is the same as none.
#![no_main]
use confero_scheduler::invitation::{Template, VALUES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Template::parse(text) {
        Ok(t) => {
            let empty = t.render(&|_| None);
            assert!(empty.len() <= text.len(), "{empty:?} from {text:?}");
            assert_eq!(t.render(&|_| Some(String::new())), empty);
            let _ = t.render(&|name| VALUES.contains(&name).then(|| format!("{{{{ {name} }}}}")));
        }
        Err(e) => assert!(e.line >= 1 && e.line <= text.split_inclusive('\n').count().max(1), "{e}"),
    }
});
