//! What the bridge does with bad or too much SIP, and with calls whose media
//! stops: raw SIP over UDP against the real binary.

mod common;
mod peers;

use std::time::Duration;

use common::{element, total, Confero};
use peers::{free_pair, header, RawPhone};

fn bridge(extra: &[(&str, &str)]) -> (Confero, u16) {
    let (c, sip, _) = bridge_in(extra);
    (c, sip)
}

fn bridge_in(extra: &[(&str, &str)]) -> (Confero, u16, std::path::PathBuf) {
    let sip = free_pair();
    let listen = format!("127.0.0.1:{sip}");
    let mut env = vec![("CONFERO_SIP_LISTEN", listen.as_str())];
    env.extend_from_slice(extra);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let mut c = Confero::start_in(dir.path(), &env);
    c.keep_dir(dir);
    (c, sip, path)
}

fn options(transport: &str, port: u16) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{transport}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=9\r\nTo: <sip:127.0.0.1>\r\nCall-ID: o-{transport}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Reads one response head off a stream.
fn read_head(stream: &mut impl std::io::Read) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") && got.len() < 65_536 {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        got.push(byte[0]);
    }
    String::from_utf8_lossy(&got).to_string()
}

#[test]
fn sip_answers_over_tcp_and_over_tls_with_the_bridge_certificate() {
    use std::io::Write;
    let (_c, sip, dir) = bridge_in(&[]);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", sip)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = tcp.local_addr().unwrap().port();
    tcp.write_all(options("TCP", port).as_bytes()).unwrap();
    let head = read_head(&mut tcp);
    assert!(head.starts_with("SIP/2.0 200"), "{head}");

    // TLS on the next port, trusting only the bridge's own certificate.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(dir.join("api-cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let sock = std::net::TcpStream::connect(("127.0.0.1", sip + 1)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(options("TLS", port).as_bytes()).unwrap();
    let head = read_head(&mut tls);
    assert!(head.starts_with("SIP/2.0 200"), "{head}");
    assert!(head.contains("Call-ID: o-TLS"), "{head}");
}

#[test]
fn malformed_sip_gets_400_and_the_bridge_keeps_answering() {
    let (c, sip) = bridge(&[]);
    let phone = RawPhone::new(sip);
    let port = phone.port();
    // A request whose head can be read but whose Content-Length lies.
    phone.send(&format!(
        "INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKbad1\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: bad1\r\nCSeq: 1 INVITE\r\nContent-Length: 9999\r\n\r\nv=0\r\n"
    ));
    assert!(phone.expect("400", Duration::from_secs(3)).is_some(), "no 400\n{}", c.log_text());
    // Noise: nothing to answer, and nothing breaks.
    phone.send("\u{0}\u{1}garbage\r\n\r\n");
    phone.send(&"X".repeat(70_000)[..60_000]);
    phone.send(&format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKopt\r\nMax-Forwards: 70\r\n\
         From: <sip:a@b>;tag=2\r\nTo: <sip:127.0.0.1>\r\nCall-ID: opt1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ));
    let ok = phone.expect("200", Duration::from_secs(3)).expect("OPTIONS answered");
    assert!(header(&ok, "Allow").contains("INVITE"), "{ok}");
    assert_eq!(c.get("/api/v1/system/status").status, 200);
}

#[test]
fn invites_over_capacity_get_503_not_a_slower_bridge() {
    let (c, sip) = bridge(&[("CONFERO_MAX_CALLS", "2")]);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let phones: Vec<RawPhone> = (0..3).map(|_| RawPhone::new(sip)).collect();
    for (i, p) in phones.iter().enumerate().take(2) {
        p.invite(&format!("cap{i}"), "room");
        let ok = p.expect("200", Duration::from_secs(3)).expect("the first two are answered");
        p.ack(&ok, &format!("cap{i}"), "room");
    }
    phones[2].invite("cap2", "room");
    let busy = phones[2].expect("503", Duration::from_secs(3)).expect("the third gets 503");
    assert_eq!(header(&busy, "Retry-After"), "5", "{busy}");
    assert_eq!(total(&c.get("/api/v1/callLegs").body), 2);
}

#[test]
fn a_leg_with_no_media_is_dropped_after_the_media_timeout() {
    let (c, sip) = bridge(&[("CONFERO_MEDIA_TIMEOUT", "2")]);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let phone = RawPhone::new(sip);
    phone.invite("quiet1", "room");
    let ok = phone.expect("200", Duration::from_secs(3)).expect("answered");
    phone.ack(&ok, "quiet1", "room");
    assert_eq!(total(&c.get("/api/v1/callLegs").body), 1);
    // It sends no RTP: within the timeout plus a housekeeping second, a BYE.
    let bye = phone.expect("BYE", Duration::from_secs(6)).expect("the bridge hangs up");
    assert!(bye.contains("Call-ID: quiet1"), "{bye}");
    assert!(common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 0));
}

/// DTMF by SIP INFO (`application/dtmf-relay`) is the fallback for
/// endpoints without RFC 4733: three wrong passcodes hang up.
#[test]
fn passcode_digits_by_sip_info_count_and_three_wrong_hang_up() {
    let (c, sip) = bridge(&[]);
    c.create("/api/v1/coSpaces", "name=Locked&uri=locked&passcode=4321");
    let phone = RawPhone::new(sip);
    phone.invite("info1", "locked");
    let ok = phone.expect("200", Duration::from_secs(3)).expect("answered into the lobby");
    phone.ack(&ok, "info1", "locked");
    let to = header(&ok, "To");
    let port = phone.port();
    for (cseq, digit) in (2..).zip(["1", "#", "2", "#", "3", "#"]) {
        let body = format!("Signal={digit}\r\nDuration=160\r\n");
        phone.send(&format!(
            "INFO sip:locked@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKinfo{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:raw@127.0.0.1:{port}>;tag=tinfo1\r\nTo: {to}\r\nCall-ID: info1\r\n\
             CSeq: {cseq} INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        assert!(phone.expect("200", Duration::from_secs(2)).is_some(), "INFO {digit} not answered");
    }
    let bye = phone.expect("BYE", Duration::from_secs(3)).expect("hung up after three wrong passcodes");
    assert!(bye.contains("Call-ID: info1"), "{bye}");
    assert!(common::eventually(|| total(&c.get("/api/v1/callLegs").body) == 0));
}

/// Reads a stream until it closes (or `limit` passes): what came, and
/// whether it closed.
fn read_until_closed(stream: &mut std::net::TcpStream, limit: Duration) -> (String, bool) {
    use std::io::Read;
    let deadline = std::time::Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    while std::time::Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).to_string(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&got).to_string(), true),
        }
    }
    (String::from_utf8_lossy(&got).to_string(), false)
}

/// The first lines of the SIP messages in `text`.
fn status_lines(text: &str) -> Vec<&str> {
    text.split("\r\n\r\n")
        .filter_map(|m| m.lines().find(|l| !l.is_empty()))
        .filter(|l| l.starts_with("SIP/2.0"))
        .collect()
}

/// Garbage after a request in the same TCP segment: the request is answered
/// first, then the connection closes; a request whose head is readable but
/// malformed gets 400, one with more than 128 headers 513, each with the
/// reason, before the close (issue #13, item 12).
#[test]
fn sip_over_tcp_answers_what_it_understood_before_closing_on_garbage() {
    use std::io::Write;
    let (c, sip) = bridge(&[]);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let connect = || {
        let tcp = std::net::TcpStream::connect(("127.0.0.1", sip)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        (tcp, port)
    };

    // An INVITE and garbage in one write.
    let (mut tcp, port) = connect();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n\
               a=rtpmap:0 PCMU/8000\r\n";
    let invite = format!(
        "INVITE sip:room@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bKtcpinv\r\n\
         Max-Forwards: 70\r\nFrom: <sip:raw@127.0.0.1>;tag=tg\r\nTo: <sip:room@127.0.0.1>\r\nCall-ID: tcp-garbage\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:raw@127.0.0.1:{port};transport=tcp>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    tcp.write_all(format!("{invite}\u{0}\u{1}garbage that is no SIP").as_bytes()).unwrap();
    let started = std::time::Instant::now();
    let (got, closed) = read_until_closed(&mut tcp, Duration::from_secs(15));
    let lines = status_lines(&got);
    assert!(lines.iter().any(|l| l.starts_with("SIP/2.0 200")), "the INVITE's answer was lost: {got}");
    assert!(closed, "the connection stays open after garbage");
    eprintln!("INVITE + garbage: {lines:?}, closed after {:?}", started.elapsed());

    // OPTIONS, then a request whose head parses but holds a bad header line.
    let (mut tcp, port) = connect();
    let bad = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bKbadline\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: badline\r\nCSeq: 2 OPTIONS\r\n\
         this line has no colon\r\nContent-Length: 0\r\n\r\n"
    );
    tcp.write_all(format!("{}{bad}", options("TCP", port)).as_bytes()).unwrap();
    let (got, closed) = read_until_closed(&mut tcp, Duration::from_secs(15));
    let lines = status_lines(&got);
    assert!(closed, "still open");
    assert_eq!(lines, ["SIP/2.0 200 OK", "SIP/2.0 400 bad header line"], "{got}");

    // More than 128 headers.
    let (mut tcp, port) = connect();
    let padding: String = (0..200).map(|i| format!("X-Padding-{i}: {i}\r\n")).collect();
    let many = options("TCP", port).replace("Content-Length: 0\r\n", &format!("{padding}Content-Length: 0\r\n"));
    tcp.write_all(many.as_bytes()).unwrap();
    let (got, closed) = read_until_closed(&mut tcp, Duration::from_secs(15));
    assert!(closed, "still open");
    assert_eq!(status_lines(&got), ["SIP/2.0 513 more than 128 headers"], "{got}");
    assert!(got.contains("Call-ID: o-TCP"), "{got}");
    assert_eq!(c.get("/api/v1/system/status").status, 200);
}

/// A TCP connection no call uses is closed once quiet for the idle timeout;
/// one that carries a call is kept however quiet.
#[test]
fn idle_sip_connections_close_unless_a_call_uses_them() {
    use std::io::Write;
    let (c, sip) = bridge(&[("CONFERO_SIP_IDLE_TIMEOUT", "1")]);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let mut unused = std::net::TcpStream::connect(("127.0.0.1", sip)).unwrap();
    let mut in_call = std::net::TcpStream::connect(("127.0.0.1", sip)).unwrap();
    let port = in_call.local_addr().unwrap().port();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:room@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bKidle\r\n\
         Max-Forwards: 70\r\nFrom: <sip:raw@127.0.0.1>;tag=ti\r\nTo: <sip:room@127.0.0.1>\r\nCall-ID: tcp-idle\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:raw@127.0.0.1:{port};transport=tcp>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    in_call.write_all(invite.as_bytes()).unwrap();
    in_call.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = read_head(&mut in_call);
    while head.starts_with("SIP/2.0 1") {
        head = read_head(&mut in_call);
    }
    assert!(head.starts_with("SIP/2.0 200"), "{head}");
    let to = peers::header(&head, "To");
    in_call
        .write_all(
            format!(
                "ACK sip:room@127.0.0.1:{sip} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bKidleack\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:raw@127.0.0.1>;tag=ti\r\nTo: {to}\r\nCall-ID: tcp-idle\r\n\
                 CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let started = std::time::Instant::now();
    let (_, closed) = read_until_closed(&mut unused, Duration::from_secs(10));
    assert!(closed, "an unused connection is kept");
    eprintln!("an unused SIP connection closed after {:?} (idle timeout 1 s)", started.elapsed());
    // The call's connection outlives several idle timeouts and still answers.
    std::thread::sleep(Duration::from_secs(3));
    in_call.write_all(options("TCP", port).as_bytes()).unwrap();
    // Past the 200's SDP, to the OPTIONS' answer.
    let mut got = String::new();
    while !got.contains("Call-ID: o-TCP") {
        let head = read_head(&mut in_call);
        assert!(!head.is_empty(), "the call's connection was closed: {got:?}");
        got.push_str(&head);
    }
    assert!(got.contains("SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP"), "{got}");
}

/// An RTP packet: PCMU-sized payload of `len` bytes.
fn rtp_packet(payload_type: u8, seq: u16, timestamp: u32, ssrc: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x80, payload_type];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(12 + len, 0xff);
    p
}

/// Hostile media from the signalled address on a live leg (issue #13, item
/// 9): between the leg's own 20 ms packets come garbage, packets with a new
/// SSRC each time, bursts of another SSRC in sequence and a payload type
/// never negotiated. All are refused and counted — in the leg's status and
/// in `system/status` — and the leg's `rxAudio` jitter and loss stay those
/// of its own stream.
#[test]
fn hostile_rtp_on_a_live_leg_is_refused_counted_and_keeps_its_statistics_sane() {
    let (c, sip) = bridge(&[]);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let phone = RawPhone::new(sip);
    // The offer's RTP address (RawPhone offers its port + 2).
    let rtp = std::net::UdpSocket::bind(("127.0.0.1", phone.port() + 2)).expect("the offer's RTP port");
    phone.invite("junk1", "room");
    let ok = phone.expect("200", Duration::from_secs(3)).expect("answered");
    phone.ack(&ok, "junk1", "room");
    let port: u16 = ok
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("m=audio in the answer");
    let media = std::net::SocketAddr::from(([127, 0, 0, 1], port));

    let mut lcg = 0x2545_f491_u32;
    let mut random = move || {
        lcg = lcg.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        lcg
    };
    let started = std::time::Instant::now();
    let (mut flips, mut bursts, mut wrong_pt, mut garbage) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..150u32 {
        let due = started + Duration::from_millis(20) * i;
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        rtp.send_to(&rtp_packet(0, 1000 + i as u16, 160 * i, 0x1111_1111, 160), media).unwrap();
        if i < 25 {
            continue; // a clean second first: the leg's own source is established
        }
        // A new SSRC, sequence and timestamp each time.
        rtp.send_to(&rtp_packet(0, random() as u16, random(), random(), 160), media).unwrap();
        flips += 1;
        // A burst of another SSRC in sequence, faster than the leg's own.
        for k in 0..4u32 {
            let n = (i - 25) * 4 + k;
            rtp.send_to(&rtp_packet(0, n as u16, 160 * n, 0x2222_2222, 160), media).unwrap();
            bursts += 1;
        }
        // The leg's own SSRC with a payload type never negotiated.
        rtp.send_to(&rtp_packet(8, random() as u16, random(), 0x1111_1111, 160), media).unwrap();
        wrong_pt += 1;
        // Not RTP at all (version 0).
        let junk: Vec<u8> = (0..40 + random() % 160).map(|_| (random() >> 24) as u8 & 0x3f).collect();
        rtp.send_to(&junk, media).unwrap();
        garbage += 1;
    }
    let count = |xml: &str, name: &str| element(xml, name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let legs = c.get("/api/v1/callLegs").body;
    let id = common::ids(&legs).into_iter().next().expect("the leg");
    let mut leg = String::new();
    // Statistics are published about once a second.
    let published = common::eventually(|| {
        leg = c.get(&format!("/api/v1/callLegs/{id}")).body;
        count(&leg, "ssrcRefused") >= flips + bursts && count(&leg, "wrongPayloadType") >= wrong_pt
    });
    assert!(published, "refusals not counted: {leg}");
    let refusals = element(&leg, "mediaRefusals").expect("mediaRefusals").to_string();
    let rx = element(&leg, "rxAudio").expect("rxAudio").to_string();
    eprintln!("sent {flips} SSRC flips, {bursts} burst packets, {wrong_pt} wrong payload types, {garbage} garbage");
    eprintln!("leg status: <mediaRefusals>{refusals}</mediaRefusals> <rxAudio>{rx}</rxAudio>");
    assert_eq!(count(&leg, "ssrcRefused"), flips + bursts, "{refusals}");
    assert_eq!(count(&leg, "wrongPayloadType"), wrong_pt, "{refusals}");
    assert_eq!(count(&leg, "malformed"), garbage, "{refusals}");
    let jitter: u64 = element(&rx, "jitter").and_then(|v| v.parse().ok()).expect("jitter");
    let loss: f64 = element(&rx, "packetLossPercentage").and_then(|v| v.parse().ok()).expect("loss");
    assert!(jitter < 40, "rxAudio jitter {jitter} ms");
    assert!(loss < 5.0, "rxAudio loss {loss} %");
    let status = c.get("/api/v1/system/status").body;
    let totals = element(&status, "mediaRefusals").expect("totals in system/status").to_string();
    eprintln!("system/status: <mediaRefusals>{totals}</mediaRefusals>");
    assert!(count(&totals, "ssrcRefused") >= flips + bursts, "{totals}");
    assert!(count(&totals, "wrongPayloadType") >= wrong_pt, "{totals}");
    assert!(count(&totals, "malformed") >= garbage, "{totals}");
}
