//! Hostile input against the real binary (issue #13): what the API stores and
//! logs stays safe whatever a client sends.

mod common;
use common::*;

/// XML 1.0 cannot carry U+FFFE, U+FFFF or most control characters: a value
/// holding one is refused, so no list ever becomes unreadable.
#[test]
fn values_xml_cannot_carry_are_refused_and_lists_stay_well_formed() {
    let c = Confero::start();
    c.create("/api/v1/coSpaces", "name=Fine&uri=fine");
    for bad in ["a%EF%BF%BEb", "a%EF%BF%BFb", "a%01b", "a%1Bb"] {
        let answer = c.post("/api/v1/coSpaces", &format!("name={bad}&uri=u{}", bad.len()));
        assert_eq!(answer.status, 400, "name={bad}: {}", answer.body);
        assert!(answer.body.contains("parameter=\"name\" error=\"invalidValue\""), "{}", answer.body);
    }
    let id = c.create("/api/v1/coSpaces", "name=Other&uri=other");
    assert_eq!(c.put(&format!("/api/v1/coSpaces/{id}"), "name=x%EF%BF%BEy").status, 400);
    let list = c.get("/api/v1/coSpaces").body;
    assert_eq!(total(&list), 2, "{list}");
    assert!(!list.chars().any(|ch| ch == '\u{FFFE}' || ch == '\u{FFFF}' || ch == '\u{1}'), "{list}");
    // Tabs and line breaks are text XML allows.
    c.create("/api/v1/coSpaces", "name=two%0Alines%09tab&uri=lines");
}

/// A passcode or call ID of spaces alone is no value: it is unset, not an
/// empty value that looks set or blocks another space.
#[test]
fn whitespace_only_values_are_unset() {
    let c = Confero::start();
    let a = c.create("/api/v1/coSpaces", "name=A&uri=a&passcode=%20%20&callId=+");
    let b = c.create("/api/v1/coSpaces", "name=B&uri=b&callId=%20");
    for id in [&a, &b] {
        let space = c.get(&format!("/api/v1/coSpaces/{id}")).body;
        assert!(element(&space, "passcode").is_none() && element(&space, "callId").is_none(), "{space}");
    }
    // Required fields made only of spaces are missing.
    let answer = c.post("/api/v1/inboundDialPlanRules", "domain=%20%20");
    assert!(answer.status == 400 && answer.body.contains("error=\"missing\""), "{}", answer.body);
}

/// A passcode never reaches the log, whatever spelling its name is sent in
/// (the API decodes `pass%63ode` to `passcode` and applies it).
#[test]
fn passcodes_stay_out_of_the_log_however_their_name_is_encoded() {
    let c = Confero::start();
    let id = c.create("/api/v1/coSpaces", "name=Room&uri=room&pass%63ode=918273");
    let space = c.get(&format!("/api/v1/coSpaces/{id}")).body;
    assert_eq!(element(&space, "passcode"), Some("918273"), "the encoded name was applied: {space}");
    c.put(&format!("/api/v1/coSpaces/{id}"), "%70asscode=564738");
    c.get("/api/v1/coSpaces?PASS%43ODE=192837&filter=room");
    let log = c.log_text();
    for secret in ["918273", "564738", "192837"] {
        assert!(!log.contains(secret), "{secret} was logged:\n{log}");
    }
}
