//! XMPP: the call bridge attached to an XMPP server as an XEP-0114
//! component. Against Prosody 0.12 (its plain component port, and a
//! TLS-wrapped one): the configuration PUT, the handshake, the status and
//! alarms, a wrong secret, a restarted server, a certificate without the
//! domain. Every wait is bounded (`eventually`: 20 s).

mod common;
#[path = "peers/prosody.rs"]
mod prosody;

use common::{element, eventually, Confero};
use prosody::{certificate, Prosody, ProsodySetup};

fn xmpp_status(c: &Confero) -> String {
    element(&c.get("/api/v1/system/status").body, "xmppStatus").unwrap_or_default().to_string()
}

fn alarms(c: &Confero) -> String {
    c.get("/api/v1/system/alarms").body
}

fn start_confero(dir: &std::path::Path, env: &[(&str, &str)]) -> Confero {
    std::fs::create_dir_all(dir).expect("data dir");
    let mut env = env.to_vec();
    env.push(("CONFERO_XMPP_LINK", "on"));
    Confero::start_in(dir, &env)
}

fn configure(c: &Confero, body: &str) {
    let a = c.put("/api/v1/system/configuration/xmpp", body);
    assert_eq!(a.status, 200, "{}", a.body);
}

/// Plain component port: connected, never shows the secret; a wrong
/// secret is an authentication failure with its alarm; the right one
/// again connects at once; a restarted Prosody is rejoined by itself.
#[test]
fn prosody_component_plain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = ProsodySetup { domain: "localhost", component: "conf.localhost", secret: "s3cret", tls: None };
    let mut prosody = Prosody::start(dir.path(), &setup);
    let c = start_confero(&dir.path().join("confero"), &[("CONFERO_XMPP_COMPONENT_TLS", "off")]);
    assert_eq!(xmpp_status(&c), "notConfigured");

    let address = format!("127.0.0.1:{}", prosody.component_port);
    configure(&c, &format!("uniqueName=conf&domain=localhost&sharedSecret=s3cret&serverAddressOverride={address}"));
    assert!(eventually(|| xmpp_status(&c) == "connected"), "status {}; log:\n{}", xmpp_status(&c), c.log_text());
    assert!(prosody.log().contains("External component successfully authenticated"), "{}", prosody.log());
    let shown = c.get("/api/v1/system/configuration/xmpp").body;
    assert!(!shown.contains("s3cret") && !shown.contains("sharedSecret"), "{shown}");
    assert!(shown.contains("<uniqueName>conf</uniqueName>"), "{shown}");
    assert!(!alarms(&c).contains("xmpp"), "{}", alarms(&c));

    configure(&c, "sharedSecret=wrong");
    assert!(eventually(|| xmpp_status(&c) == "authenticationFailure"), "status {}", xmpp_status(&c));
    assert!(eventually(|| alarms(&c).contains("<type>xmppAuthenticationFailure</type>")), "{}", alarms(&c));
    assert!(!c.log_text().contains("wrong"), "the secret reached the log");

    configure(&c, "sharedSecret=s3cret");
    assert!(eventually(|| xmpp_status(&c) == "connected"), "status {}", xmpp_status(&c));
    assert!(eventually(|| !alarms(&c).contains("xmpp")), "{}", alarms(&c));

    prosody.stop();
    assert!(eventually(|| xmpp_status(&c) != "connected"), "status {}", xmpp_status(&c));
    prosody.restart();
    assert!(eventually(|| xmpp_status(&c) == "connected"), "status {}; log:\n{}", xmpp_status(&c), c.log_text());
    assert!(!alarms(&c).contains("xmpp"), "{}", alarms(&c));
}

/// TLS-wrapped component port: the certificate naming the domain is
/// accepted; served one that does not name it, the link is refused with
/// `certificateFailure` and the connection alarm.
#[test]
fn prosody_component_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (good, good_key) = certificate(dir.path(), "good", &["localhost", "conf.localhost"]);
    let (other, other_key) = certificate(dir.path(), "other", &["elsewhere.test"]);
    let bundle = dir.path().join("trust.pem");
    let pem = std::fs::read_to_string(&good).expect("read") + &std::fs::read_to_string(&other).expect("read");
    std::fs::write(&bundle, pem).expect("bundle");

    let setup = ProsodySetup {
        domain: "localhost",
        component: "conf.localhost",
        secret: "s3cret",
        tls: Some((&good, &good_key)),
    };
    let prosody = Prosody::start(&dir.path().join("good"), &setup);
    let bundle_path = bundle.display().to_string();
    let c = start_confero(&dir.path().join("confero"), &[("CONFERO_XMPP_TRUST", &bundle_path)]);
    let port = prosody.tls_port.expect("tls port");
    configure(
        &c,
        &format!("uniqueName=conf&domain=localhost&sharedSecret=s3cret&serverAddressOverride=127.0.0.1:{port}"),
    );
    assert!(eventually(|| xmpp_status(&c) == "connected"), "status {}; log:\n{}", xmpp_status(&c), c.log_text());
    assert!(prosody.log().contains("External component successfully authenticated"), "{}", prosody.log());

    let setup = ProsodySetup { tls: Some((&other, &other_key)), ..setup };
    let wrong = Prosody::start(&dir.path().join("wrong"), &setup);
    let port = wrong.tls_port.expect("tls port");
    configure(&c, &format!("serverAddressOverride=127.0.0.1:{port}"));
    assert!(eventually(|| xmpp_status(&c) == "certificateFailure"), "status {}", xmpp_status(&c));
    assert!(alarms(&c).contains("<type>xmppConnectionFailure</type>"), "{}", alarms(&c));
    assert!(!wrong.log().contains("successfully authenticated"), "{}", wrong.log());
}
