//! What an API client sends for LDAP: an `ldapMappings` template and an
//! `ldapSources` filter. Any text is refused with a reason or parsed; a
//! parsed template expands against any attribute values without panicking,
//! makes nothing when an attribute it names is missing, and keeps text with
//! no `$` as it is.
#![no_main]
use confero_ldap::directory::filter_is_valid;
use confero_ldap::Template;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The part after a NUL, if any, is the attribute value it is expanded with.
    let (template, value) = text.split_once('\0').unwrap_or((text, "Ana Lopez <ana@example.test>"));
    let _ = filter_is_valid(template);
    let Ok(parsed) = Template::parse(template) else { return };
    let expanded = parsed.expand(|_| Some(value));
    assert!(expanded.is_some());
    if parsed.attributes().next().is_some() {
        assert_eq!(parsed.expand(|_| None), None);
    } else if !template.contains('$') {
        assert_eq!(expanded.as_deref(), Some(template));
    }
});
