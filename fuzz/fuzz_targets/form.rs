//! Form bodies and query strings: any bytes give a form or an error, never a panic.
#![no_main]
use confero_store::form::Form;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = Form::parse(data) {
        for (name, _) in form.pairs() {
            assert!(!name.is_empty());
            let _ = form.get(name);
        }
    }
});
