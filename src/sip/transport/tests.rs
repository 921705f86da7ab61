use super::*;
use confero_sip::message::Method;
use confero_sip::sdp::{answer, Direction, LocalMedia, MediaEncryption, SessionDescription};
use std::time::Duration;

async fn service() -> (SipHandle, mpsc::Receiver<UaEvent>, SipBound) {
    let listen = SipListen { addr: "127.0.0.1:0".parse().unwrap(), tls: None };
    start(listen, UaConfig::default()).await.unwrap()
}

fn options(branch: &str, via_transport: &str, from: SocketAddr) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via_transport} {from};branch={branch};rport\r\n\
         From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn udp_options_are_answered() {
    let (_handle, _events, bound) = service().await;
    let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let text = options("z9hG4bKu1", "UDP", probe.local_addr().unwrap());
    probe.send_to(text.as_bytes(), bound.udp).await.unwrap();
    let mut buffer = vec![0; 4096];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), probe.recv_from(&mut buffer)).await.unwrap().unwrap();
    let response = Message::parse(&buffer[..len], &Limits::default()).unwrap();
    assert_eq!(response.code(), Some(200));
    // Garbage gets nothing back and does not stop the service.
    probe.send_to(b"\xff\xfe garbage", bound.udp).await.unwrap();
    probe.send_to(options("z9hG4bKu2", "UDP", probe.local_addr().unwrap()).as_bytes(), bound.udp).await.unwrap();
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), probe.recv_from(&mut buffer)).await.unwrap().unwrap();
    assert_eq!(Message::parse(&buffer[..len], &Limits::default()).unwrap().code(), Some(200));
}

async fn read_message(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Message {
    loop {
        match Message::parse_stream(buffer, &Limits::default()).unwrap() {
            Framed::Message(message, used) => {
                buffer.drain(..used);
                return *message;
            }
            Framed::KeepAlive(used) => {
                buffer.drain(..used);
                continue;
            }
            Framed::Incomplete => {}
        }
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_buf(buffer)).await.unwrap().unwrap();
        assert!(read > 0, "connection closed");
    }
}

#[tokio::test]
async fn tcp_invite_in_pieces_is_framed_and_answered_on_the_connection() {
    let (handle, mut events, bound) = service().await;
    let mut stream = TcpStream::connect(bound.tcp).await.unwrap();
    let local = stream.local_addr().unwrap();
    let sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 10000 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:room@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKt1\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:room@127.0.0.1>\r\nCall-ID: tcp-1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{local};transport=tcp>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let (first, second) = invite.as_bytes().split_at(invite.len() - 10);
    stream.write_all(b"\r\n\r\n").await.unwrap();
    stream.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(second).await.unwrap();
    let mut buffer = Vec::new();
    assert_eq!(read_message(&mut stream, &mut buffer).await.code(), Some(100));
    let UaEvent::IncomingCall(incoming) = events.recv().await.unwrap() else { panic!("not a call") };
    assert_eq!(incoming.source.transport, Transport::Tcp);
    handle.accept(incoming.call, b"v=0\r\n".to_vec()).await.unwrap();
    let ok = read_message(&mut stream, &mut buffer).await;
    assert_eq!(ok.code(), Some(200));
    assert!(ok.contact().unwrap().uri.ends_with(";transport=tcp"));
}

/// Stands in for the bridge: answers every call with our SDP answer and
/// counts calls that end, until `calls` have.
async fn answering_bridge(handle: SipHandle, mut events: mpsc::Receiver<UaEvent>, calls: usize) -> usize {
    let local = LocalMedia {
        address: [127, 0, 0, 1].into(),
        audio_port: 40000,
        session_id: 7,
        session_version: 1,
        direction: Direction::SendRecv,
    };
    let mut rng = StdRng::seed_from_u64(3);
    let mut ended = 0;
    while let Some(event) = events.recv().await {
        match event {
            UaEvent::IncomingCall(call) => {
                let offer = SessionDescription::parse(call.offer.as_deref().unwrap_or_default()).ok();
                let answered = offer.and_then(|o| answer(&o, &local, MediaEncryption::Optional, &mut rng).ok());
                let _ = match answered {
                    Some((sdp, _)) => handle.accept(call.call, sdp.to_text().into_bytes()).await,
                    None => handle.reject(call.call, 488).await,
                };
            }
            UaEvent::Ended { .. } => {
                ended += 1;
                if ended == calls {
                    break;
                }
            }
            _ => {}
        }
    }
    ended
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn sipp(args: &[&str], target: SocketAddr) -> std::process::ExitStatus {
    sipp_with(args, None, target, Duration::from_secs(30)).await
}

async fn sipp_with(
    args: &[&str],
    last_arg: Option<&str>,
    target: SocketAddr,
    patience: Duration,
) -> std::process::ExitStatus {
    let port = free_udp_port().to_string();
    let mut child = tokio::process::Command::new("sipp")
        .args(args)
        .args(last_arg)
        .args(["-i", "127.0.0.1", "-p", &port, "-nostdin", "-timeout", "50s", "-timeout_error"])
        .arg(target.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(patience, child.wait()).await.unwrap().unwrap()
}

const SIPP_OPTIONS: &str = r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="options">
  <send>
    <![CDATA[
      OPTIONS sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" />
</scenario>
"#;

/// sipp (PEERS.md), when installed: OPTIONS, then three INVITE/ACK/BYE calls
/// with its built-in UAC scenario. Skipped with a note when sipp is missing.
#[tokio::test]
async fn sipp_options_and_calls() {
    if std::process::Command::new("sipp").arg("-v").output().is_err() {
        eprintln!("sipp is not installed (apt-get install sip-tester): skipped");
        return;
    }
    let (handle, events, bound) = service().await;
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("options.xml");
    std::fs::write(&scenario, SIPP_OPTIONS).unwrap();
    let status = sipp(&["-sf", scenario.to_str().unwrap(), "-m", "1"], bound.udp).await;
    assert!(status.success(), "sipp OPTIONS: {status}");
    let bridge = tokio::spawn(answering_bridge(handle, events, 3));
    let status = sipp(&["-sn", "uac", "-m", "3", "-r", "10", "-l", "3"], bound.udp).await;
    assert!(status.success(), "sipp uac: {status}");
    let ended = tokio::time::timeout(Duration::from_secs(5), bridge).await.unwrap().unwrap();
    assert_eq!(ended, 3);
}

/// TLS with the API's self-signed certificate: a client that trusts it gets
/// OPTIONS answered on the TLS connection.
#[tokio::test]
async fn tls_options_are_answered() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let api = confero_control::tls::server_config(None, None, dir.path()).unwrap();
    let listen = SipListen {
        addr: "127.0.0.1:0".parse().unwrap(),
        tls: Some(("127.0.0.1:0".parse().unwrap(), sip_tls_config(&api))),
    };
    let (_handle, _events, bound) = start(listen, UaConfig::default()).await.unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.path().join("api-cert.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(bound.tls.unwrap()).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let mut stream = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    stream.write_all(options("z9hG4bKtls1", "TLS", local).as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    let response = loop {
        if let Framed::Message(message, _) = Message::parse_stream(&buffer, &Limits::default()).unwrap() {
            break message;
        }
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_buf(&mut buffer)).await.unwrap().unwrap();
        assert!(read > 0, "connection closed");
    };
    assert_eq!(response.code(), Some(200));
}

fn baresip_installed() -> bool {
    let installed = std::process::Command::new("baresip").arg("-h").output().is_ok();
    if !installed {
        eprintln!("baresip is not installed: skipped");
    }
    installed
}

/// A baresip configuration directory (PEERS.md): a 440 Hz tone out, what it
/// hears to a file, the account `alice` with `params`. Returns its SIP port.
fn baresip_config(dir: &std::path::Path, params: &str) -> u16 {
    let port = free_udp_port();
    let config = format!(
        "sip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\naudio_player aufile,{out}\naudio_source ausine,440\n\
         audio_alert aufile,{out}\nrtp_ports 30200-30260\nmodule_path /usr/lib/baresip/modules\nmodule menu.so\n\
         module opus.so\nmodule g711.so\nmodule srtp.so\nmodule ausine.so\nmodule aufile.so\nmodule account.so\n",
        out = dir.join("heard.wav").display()
    );
    std::fs::write(dir.join("config"), config).unwrap();
    let account = format!("<sip:alice@127.0.0.1:{port}>;regint=0;{params};audio_codecs=opus/48000/2,PCMU/8000\n");
    std::fs::write(dir.join("accounts"), account).unwrap();
    port
}

/// baresip (PEERS.md), when installed, calls us with mandatory SDES-SRTP and
/// Opus: we answer with our SDP answer (Required policy), it ACKs, and hangs up
/// when its timer ends. Skipped with a note when baresip is missing.
#[tokio::test]
async fn baresip_calls_with_srtp() {
    if !baresip_installed() {
        return;
    }
    let (handle, mut events, bound) = service().await;
    let dir = tempfile::tempdir().unwrap();
    baresip_config(dir.path(), "mediaenc=srtp-mand");
    let child = tokio::process::Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-t", "3", "-e", &format!("/dial sip:room@{}", bound.udp)])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let local = LocalMedia {
        address: [127, 0, 0, 1].into(),
        audio_port: 40100,
        session_id: 9,
        session_version: 1,
        direction: Direction::SendRecv,
    };
    let mut rng = StdRng::seed_from_u64(4);
    let mut seen = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_secs(15));
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            event = events.recv() => event.unwrap(),
            _ = &mut deadline => break,
        };
        match &event {
            UaEvent::IncomingCall(call) => {
                let offer = SessionDescription::parse(call.offer.as_deref().unwrap_or_default()).unwrap();
                let (sdp, negotiated) = answer(&offer, &local, MediaEncryption::Required, &mut rng).unwrap();
                seen.push(format!("{:?} {:?}", negotiated.codec.codec, negotiated.srtp.map(|s| s.suite)));
                handle.accept(call.call, sdp.to_text().into_bytes()).await.unwrap();
            }
            UaEvent::Confirmed { .. } => seen.push("confirmed".into()),
            UaEvent::Ended { reason, .. } => {
                seen.push(format!("ended {reason:?}"));
                break;
            }
            _ => {}
        }
    }
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.unwrap().unwrap();
    assert_eq!(
        seen,
        ["Opus Some(AesCm128HmacSha1_80)", "confirmed", "ended RemoteHangup"],
        "baresip said:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// We dial baresip (auto-answer, optional SRTP): our offer (RTP/AVP with
/// best-effort crypto) is answered with SRTP and Opus, we ACK, then hang up.
#[tokio::test]
async fn we_dial_baresip() {
    use confero_sip::sdp::AudioOffer;
    use confero_sip::ua::Dial;
    if !baresip_installed() {
        return;
    }
    let (handle, mut events, bound) = service().await;
    let dir = tempfile::tempdir().unwrap();
    let port = baresip_config(dir.path(), "mediaenc=srtp;answermode=auto");
    let child = tokio::process::Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-t", "6"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await; // baresip binds its port
    let local = LocalMedia {
        address: [127, 0, 0, 1].into(),
        audio_port: 40200,
        session_id: 11,
        session_version: 1,
        direction: Direction::SendRecv,
    };
    let offer = AudioOffer::new(&local, MediaEncryption::Optional, &mut StdRng::seed_from_u64(5));
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let call = handle
        .dial(Dial {
            target: format!("sip:alice@{target}"),
            from: format!("sip:space@{}", bound.udp),
            display_name: Some("Confero".into()),
            offer: offer.sdp.to_text().into_bytes(),
            destination: Peer { transport: Transport::Udp, addr: target },
            route: None,
        })
        .await
        .unwrap();
    let mut answered = None;
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    while answered.is_none() {
        let event = tokio::select! {
            event = events.recv() => event.unwrap(),
            _ = &mut deadline => break,
        };
        if let UaEvent::Answered { call: answered_call, sdp } = event {
            assert_eq!(answered_call, call);
            answered = sdp;
        }
    }
    handle.hangup(call).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.unwrap().unwrap();
    let said = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let answer = SessionDescription::parse(&answered.unwrap_or_else(|| panic!("no answer; baresip said:\n{said}")));
    let negotiated = offer.accept(&answer.unwrap()).unwrap();
    assert_eq!(negotiated.codec.codec, confero_sip::sdp::AudioCodec::Opus);
    assert!(negotiated.srtp.is_some(), "baresip takes best-effort SRTP");
    assert!(said.contains("SRTP is Enabled"), "{said}");
    // baresip reports a BYE it receives as the session closing with ECONNRESET.
    assert!(said.contains("Call established") && said.contains("session closed"), "{said}");
}

/// linphonec (PEERS.md), a second independent SIP stack, calls us: its offer
/// is answered, it ACKs, and its `terminate` ends the call with BYE.
#[tokio::test]
async fn linphonec_calls_us() {
    if std::process::Command::new("linphonec").arg("--version").output().is_err() {
        eprintln!("linphonec is not installed: skipped");
        return;
    }
    let (handle, mut events, bound) = service().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".local/share/linphone")).unwrap();
    let port = free_udp_port();
    let rc = home.path().join("linphonerc");
    std::fs::write(
        &rc,
        format!(
            "[sip]\nsip_port={port}\nsip_tcp_port=0\nuse_ipv6=0\nipv6_migration_done=1\n\n\
             [net]\nnat_address=127.0.0.1\nfirewall_policy=1\n\n[rtp]\naudio_rtp_port=30300\n"
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new("linphonec")
        .arg("-c")
        .arg(&rc)
        .env("HOME", home.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stdin.write_all(b"soundcard use files\n").await.unwrap();
    stdin.write_all(format!("call sip:room@{}\n", bound.udp).as_bytes()).await.unwrap();
    let local = LocalMedia {
        address: [127, 0, 0, 1].into(),
        audio_port: 40300,
        session_id: 13,
        session_version: 1,
        direction: Direction::SendRecv,
    };
    let mut rng = StdRng::seed_from_u64(6);
    let mut seen = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_secs(15));
    tokio::pin!(deadline);
    loop {
        let event = tokio::select! {
            event = events.recv() => event.unwrap(),
            _ = &mut deadline => break,
        };
        match &event {
            UaEvent::IncomingCall(call) => {
                let offer = SessionDescription::parse(call.offer.as_deref().unwrap_or_default()).unwrap();
                let (sdp, negotiated) = answer(&offer, &local, MediaEncryption::Optional, &mut rng).unwrap();
                seen.push(format!("{:?}", negotiated.codec.codec));
                handle.accept(call.call, sdp.to_text().into_bytes()).await.unwrap();
            }
            UaEvent::Confirmed { .. } => {
                seen.push("confirmed".into());
                tokio::time::sleep(Duration::from_millis(500)).await;
                stdin.write_all(b"terminate\n").await.unwrap();
            }
            UaEvent::Ended { reason, .. } => {
                seen.push(format!("ended {reason:?}"));
                break;
            }
            _ => {}
        }
    }
    let _ = stdin.write_all(b"quit\n").await;
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.unwrap().unwrap();
    assert_eq!(
        seen.iter().skip(1).cloned().collect::<Vec<_>>(),
        ["confirmed", "ended RemoteHangup"],
        "seen {seen:?}; linphonec said:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A stream that starts a message and never finishes it is closed after
/// PARTIAL_MESSAGE (slow-loris guard). The clock is paused: tokio skips ahead.
#[tokio::test(start_paused = true)]
async fn a_partial_message_does_not_hold_a_connection() {
    let (_handle, _events, bound) = service().await;
    let mut stream = TcpStream::connect(bound.tcp).await.unwrap();
    stream.write_all(b"OPTIONS sip:bridge@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP").await.unwrap();
    let started = Instant::now();
    let mut buffer = Vec::new();
    let read = stream.read_buf(&mut buffer).await.unwrap_or(0);
    assert_eq!(read, 0, "closed without an answer");
    assert!(started.elapsed() >= PARTIAL_MESSAGE);
}

/// Dial-out over TCP opens a connection to the callee and keeps using it for
/// the ACK and the BYE.
#[tokio::test]
async fn dial_out_over_tcp_opens_a_connection() {
    let (handle, mut events, _bound) = service().await;
    let callee = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = callee.local_addr().unwrap();
    let call = handle
        .dial(Dial {
            target: format!("sip:bob@{target};transport=tcp"),
            from: "sip:space@127.0.0.1".into(),
            display_name: None,
            offer: b"v=0\r\n".to_vec(),
            destination: Peer { transport: Transport::Tcp, addr: target },
            route: None,
        })
        .await
        .unwrap();
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(5), callee.accept()).await.unwrap().unwrap();
    let mut buffer = Vec::new();
    let invite = read_message(&mut stream, &mut buffer).await;
    assert_eq!(invite.method(), Some(Method::Invite));
    assert_eq!(invite.via().unwrap().transport, "TCP");
    let mut ok = invite.response(200, Some("bob"));
    ok.push("Contact", format!("<sip:bob@{target};transport=tcp>"));
    stream.write_all(&ok.to_bytes()).await.unwrap();
    assert_eq!(events.recv().await, Some(UaEvent::Answered { call, sdp: None }));
    assert_eq!(read_message(&mut stream, &mut buffer).await.method(), Some(Method::Ack));
    handle.hangup(call).await.unwrap();
    assert_eq!(read_message(&mut stream, &mut buffer).await.method(), Some(Method::Bye));
}

/// The issue's signalling goal, by hand: `cargo test -p confero --bin confero
/// sipp_load -- --ignored --nocapture`. 2,000 calls at 200 per second, each
/// held 5 s (about 1,000 at once), into the user agent with a bridge that
/// answers every call. Not run by default: it takes about 15 s of two cores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn sipp_load() {
    let (handle, events, bound) = service().await;
    let bridge = tokio::spawn(answering_bridge(handle, events, 2000));
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.csv");
    let started = std::time::Instant::now();
    let status = sipp_with(
        &["-sn", "uac", "-r", "200", "-l", "1100", "-m", "2000", "-d", "5000", "-trace_stat", "-stf"],
        Some(stats.to_str().unwrap()),
        bound.udp,
        Duration::from_secs(60),
    )
    .await;
    let elapsed = started.elapsed();
    let ended = tokio::time::timeout(Duration::from_secs(10), bridge).await.unwrap().unwrap();
    eprintln!("sipp: {status}; {ended} calls ended in {elapsed:?}");
    eprintln!("{}", std::fs::read_to_string(&stats).unwrap_or_default().lines().last().unwrap_or_default());
    assert!(status.success());
    assert_eq!(ended, 2000);
}
