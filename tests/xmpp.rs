//! XMPP: the call bridge attached to an XMPP server as an XEP-0114
//! component. Against Prosody 0.12 (its plain component port, and a
//! TLS-wrapped one): the configuration PUT, the handshake, the status and
//! alarms, a wrong secret, a restarted server, a certificate without the
//! domain. Against our own server (`confero xmpp ...`): the secret
//! `callbridge add` prints attaches the call bridge; found through an SRV
//! record served by dnsmasq on loopback, the certificate checked for the
//! target's name too. Every wait is bounded (`eventually`: 20 s).

mod common;
#[path = "peers/prosody.rs"]
mod prosody;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{binary, element, eventually, free_port, Confero};
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

/// `confero xmpp ...` on `data`; its standard output.
fn xmpp_cli(data: &Path, words: &[&str]) -> String {
    let out = Command::new(binary())
        .arg("xmpp")
        .args(words)
        .env("CONFERO_DATA_DIR", data)
        .stdin(Stdio::null())
        .output()
        .expect("confero xmpp");
    assert!(out.status.success(), "xmpp {words:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn line_value(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim_start().strip_prefix(':')))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Two free ports in a row (the client port and the component port).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let p = free_port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two free ports in a row");
}

/// Our server: the secret `xmpp callbridge add cb1` prints, put in the
/// call bridge's configuration, attaches it (our self-signed certificate is
/// trusted from the data directory); a wrong one is refused; `callbridge
/// list` never shows a secret.
#[test]
fn our_server_takes_the_call_bridge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("confero");
    std::fs::create_dir_all(&data).expect("data dir");
    xmpp_cli(&data, &["domain", "example.test"]);
    let added = xmpp_cli(&data, &["callbridge", "add", "cb1"]);
    assert_eq!(line_value(&added, "Domain"), "example.test");
    let secret = line_value(&added, "Secret");
    assert!(secret.len() >= 16, "{added}");
    let listed = xmpp_cli(&data, &["callbridge", "list"]);
    assert!(listed.contains("cb1") && !listed.contains(&secret), "{listed}");
    assert!(xmpp_cli(&data, &["status"]).contains("Enabled : true"));

    let port = free_port_pair();
    let listen = format!("127.0.0.1:{port}");
    let c = start_confero(&data, &[("CONFERO_XMPP_LISTEN", &listen)]);
    let component = format!("127.0.0.1:{}", port + 1);
    configure(
        &c,
        &format!("uniqueName=cb1&domain=example.test&sharedSecret={secret}&serverAddressOverride={component}"),
    );
    assert!(eventually(|| xmpp_status(&c) == "connected"), "status {}; log:\n{}", xmpp_status(&c), c.log_text());
    assert!(c.log_text().contains("call bridge cb1.example.test attached"), "{}", c.log_text());
    assert!(!c.log_text().contains(&secret), "the secret reached the log");

    configure(&c, "sharedSecret=not-the-secret");
    assert!(eventually(|| xmpp_status(&c) == "authenticationFailure"), "status {}", xmpp_status(&c));
    assert!(alarms(&c).contains("<type>xmppAuthenticationFailure</type>"), "{}", alarms(&c));
}

/// dnsmasq on loopback, answering for `example.test` only, killed by PID.
struct Dnsmasq {
    child: Child,
    port: u16,
}

impl Dnsmasq {
    fn start(records: &[String]) -> Dnsmasq {
        let port = free_port();
        let mut cmd = Command::new("dnsmasq");
        cmd.args(["-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces"])
            .args(["--listen-address=127.0.0.1", "--user=root", "--pid-file=", "--log-queries", "--log-facility=-"])
            .arg(format!("--port={port}"))
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start dnsmasq (apt install dnsmasq-base)");
        let d = Dnsmasq { child, port };
        // Ready once it answers a query over UDP.
        let deadline = Instant::now() + Duration::from_secs(10);
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let query = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1];
        while Instant::now() < deadline {
            let _ = socket.send_to(&query, ("127.0.0.1", port));
            let mut buf = [0u8; 512];
            if socket.recv_from(&mut buf).is_ok() {
                return d;
            }
        }
        panic!("dnsmasq did not answer on {port}");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// No override: the SRV record `_xmpp-component._tcp.example.test` names
/// `xmpp.example.test` and our server's component port, and the bridge
/// connects there. The server's certificate must name that host as well as
/// the domain: with one naming only the domain it is refused
/// (`certificateFailure`); with one naming both, connected.
#[test]
fn srv_record_names_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("confero");
    std::fs::create_dir_all(&data).expect("data dir");
    xmpp_cli(&data, &["domain", "example.test"]);
    let secret = line_value(&xmpp_cli(&data, &["callbridge", "add", "cb1"]), "Secret");
    let port = free_port_pair();
    let dns = Dnsmasq::start(&[
        format!("--srv-host=_xmpp-component._tcp.example.test,xmpp.example.test,{},0,0", port + 1),
        "--address=/xmpp.example.test/127.0.0.1".to_string(),
    ]);
    let listen = format!("127.0.0.1:{port}");
    let dns_server = format!("127.0.0.1:{}", dns.port);
    let env = [("CONFERO_XMPP_LISTEN", listen.as_str()), ("CONFERO_DNS_SERVER", dns_server.as_str())];

    let mut c = start_confero(&data, &env);
    configure(&c, &format!("uniqueName=cb1&domain=example.test&sharedSecret={secret}"));
    assert!(
        eventually(|| xmpp_status(&c) == "certificateFailure"),
        "status {}; log:\n{}",
        xmpp_status(&c),
        c.log_text()
    );
    assert!(alarms(&c).contains("<type>xmppConnectionFailure</type>"), "{}", alarms(&c));
    c.terminate();

    let (cert, key) = certificate(dir.path(), "both", &["example.test", "xmpp.example.test"]);
    xmpp_cli(&data, &["certs", &key.display().to_string(), &cert.display().to_string()]);
    let trust = cert.display().to_string();
    let mut env = env.to_vec();
    env.push(("CONFERO_XMPP_TRUST", &trust));
    let c = start_confero(&data, &env);
    assert!(eventually(|| xmpp_status(&c) == "connected"), "status {}; log:\n{}", xmpp_status(&c), c.log_text());
    assert!(c.log_text().contains(&format!("connected to xmpp.example.test:{}", port + 1)), "{}", c.log_text());
}

/// Our server with the call bridge attached: a web user (`user` role)
/// logs in with slixmpp over STARTTLS, by SCRAM-SHA-1 (its credential from
/// the call bridge) and by PLAIN (the call bridge checking the password);
/// its roster and the call bridge's disco#items list its spaces
/// (and no one else's); a join IQ to a space answers its call ID, URI and
/// web link. A wrong password is refused. Credentials sent before TLS are
/// refused with `encryption-required` and the stream is closed.
#[test]
fn web_user_logs_in_through_xmpp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("confero");
    std::fs::create_dir_all(&data).expect("data dir");
    xmpp_cli(&data, &["domain", "example.test"]);
    let secret = line_value(&xmpp_cli(&data, &["callbridge", "add", "cb1"]), "Secret");
    let mut add = Command::new(binary())
        .args(["user", "add", "alice", "user"])
        .env("CONFERO_DATA_DIR", &data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("user add");
    {
        use std::io::Write;
        add.stdin.take().expect("stdin").write_all(b"alice-password\n").expect("password");
    }
    assert!(add.wait().expect("user add").success());

    let port = free_port_pair();
    let listen = format!("127.0.0.1:{port}");
    let c = start_confero(&data, &[("CONFERO_XMPP_LISTEN", &listen)]);
    c.create("/api/v1/coSpaces", "name=Team&uri=team&callId=4321&ownerJid=alice@example.test");
    c.create("/api/v1/coSpaces", "name=Other&uri=other&callId=9876&ownerJid=bob@example.test");
    let component = format!("127.0.0.1:{}", port + 1);
    configure(
        &c,
        &format!("uniqueName=cb1&domain=example.test&sharedSecret={secret}&serverAddressOverride={component}"),
    );
    assert!(eventually(|| xmpp_status(&c) == "connected"), "status {}; log:\n{}", xmpp_status(&c), c.log_text());

    let client = |password: &str, mechanism: &str| {
        // Debian's Python, which python3-slixmpp installs into.
        let out = Command::new("/usr/bin/python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/xmpp_client.py"))
            .args(["127.0.0.1", &port.to_string(), "alice@example.test", password, "cb1.example.test", mechanism])
            .stdin(Stdio::null())
            .output()
            .expect("python3 with slixmpp (apt install python3-slixmpp)");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let out = client("alice-password", "SCRAM-SHA-1");
    assert!(out.contains("MECH SCRAM-SHA-1"), "{out}\n{}", c.log_text());
    assert!(out.contains("ROSTER 4321@cb1.example.test Team"), "{out}\n{}", c.log_text());
    assert!(out.contains("ITEM 4321@cb1.example.test Team"), "{out}");
    assert!(out.contains("JOIN 4321 team https://"), "{out}");
    assert!(!out.contains("9876"), "another user's space listed: {out}");
    assert!(!c.log_text().contains("alice-password"), "the password reached the log");

    let out = client("alice-password", "PLAIN");
    assert!(out.contains("MECH PLAIN") && out.contains("ITEM 4321@cb1.example.test Team"), "{out}");
    for mechanism in ["SCRAM-SHA-1", "PLAIN"] {
        let out = client("wrong-password", mechanism);
        assert!(out.contains("AUTH FAILED"), "{mechanism}: {out}");
        assert!(!out.contains("ROSTER"), "{mechanism}: {out}");
    }

    // Plain text: PLAIN credentials before STARTTLS.
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    tcp.write_all(
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>\
          <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAGFsaWNlLXBhc3N3b3Jk</auth>",
    )
    .expect("write");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.contains("<starttls") && answer.contains("<required/>"), "{answer}");
    assert!(answer.contains("encryption-required") && answer.ends_with("</stream:stream>"), "{answer}");
    assert!(!answer.contains("<success"), "{answer}");
}
