//! Connection floods against the real binary (issue #13, items 4 and 5): idle
//! SIP connections under a 1,024 open-file limit, and slowloris TLS
//! handshakes from one source, starve neither the API nor SIP. A normal
//! client must get every answer within 2 s.

mod common;
mod peers;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use peers::{free_pair, RawPhone};

/// What a normal client must get within, each time.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// The test opens more connections than the usual soft limit allows.
fn raise_own_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write one rlimit through valid pointers.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(limit.rlim_cur >= 4096, "the test needs 4,096 open files, the hard limit is {}", limit.rlim_cur);
}

/// A client whose connections come from `source` (any 127.x address is
/// loopback on Linux), a fresh TLS connection for every request.
fn fresh_client_from(source: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .local_address(source.parse::<IpAddr>().expect("address"))
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// `n` requests of `system/status`, one a connection; the slowest wait.
fn normal_client_waits(c: &Confero, source: &str, n: usize) -> Duration {
    let client = fresh_client_from(source);
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let asked = Instant::now();
        let status = client
            .get(c.url("/api/v1/system/status"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or_else(|e| panic!("request {i} failed: {e}"));
        let waited = asked.elapsed();
        assert_eq!(status, 200, "request {i}");
        assert!(waited < ANSWER_WITHIN, "request {i} waited {waited:?}");
        slowest = slowest.max(waited);
        std::thread::sleep(Duration::from_millis(100));
    }
    slowest
}

/// 1,100 idle SIP TCP connections (20 from each of 55 sources, so the
/// per-source cap does not hide the global one) against a bridge held to
/// 1,024 open files: SIP takes what its cap allows, the rest wait in the
/// kernel's queue, and the API and a SIP call work as ever.
#[test]
fn eleven_hundred_idle_sip_connections_under_1024_open_files_starve_neither_api_nor_sip() {
    raise_own_open_file_limit();
    let sip = free_pair();
    let listen = format!("127.0.0.1:{sip}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Confero::start_with_open_files(dir.path(), &[("CONFERO_SIP_LISTEN", &listen)], 1024);
    c.keep_dir(dir);
    c.create("/api/v1/coSpaces", "name=Room&uri=room");
    let log = c.log_text();
    let line = log.lines().find(|l| l.contains("open files:")).expect("the limit is logged").to_string();
    assert!(line.contains("open files: 1024; SIP TCP/TLS connections: at most 384"), "{line}");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server: SocketAddr = listen.parse().expect("address");
    let idle = runtime.block_on(async {
        let mut opening = Vec::new();
        for i in 0..1100u32 {
            let source: IpAddr = [127, 0, 3, (i / 20 + 1) as u8].into();
            opening.push(tokio::spawn(async move {
                let socket = tokio::net::TcpSocket::new_v4().ok()?;
                socket.bind(SocketAddr::new(source, 0)).ok()?;
                tokio::time::timeout(Duration::from_secs(5), socket.connect(server)).await.ok()?.ok()
            }));
        }
        let mut open = Vec::new();
        for o in opening {
            if let Ok(Some(stream)) = o.await {
                open.push(stream);
            }
        }
        open
    });
    eprintln!("{} idle SIP TCP connections open", idle.len());
    assert_eq!(idle.len(), 1100, "the kernel queues what the bridge does not take");

    let slowest = normal_client_waits(&c, "127.0.0.2", 20);
    eprintln!("with 1,100 idle SIP connections, the slowest of 20 API answers took {slowest:?}");

    // A call still works (over UDP: the TCP slots are the flood's).
    let phone = RawPhone::new(sip);
    phone.invite("after-flood", "room");
    let ok = phone.expect("200", Duration::from_secs(5)).expect("the INVITE is answered");
    phone.ack(&ok, "after-flood", "room");
    assert!(eventually(|| total(&c.get("/api/v1/callLegs").body) == 1));
    let log = c.log_text();
    assert!(!log.contains("Too many open files"), "descriptors ran out");
    drop(idle);
    drop(runtime);
}

/// 600 slowloris connections from 127.0.0.1 — a TLS handshake begun and
/// never finished, each re-opened as the bridge closes it — while a normal
/// client on 127.0.0.2 opens a new connection for each of its requests.
#[test]
fn six_hundred_slowloris_handshakes_from_one_source_do_not_starve_another() {
    let c = Confero::start();
    let api: SocketAddr = format!("127.0.0.1:{}", c.port).parse().expect("address");
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicUsize::new(0));
    let attacker = {
        let (stop, opened) = (stop.clone(), opened.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(async move {
                let tasks: Vec<_> = (0..600)
                    .map(|_| {
                        let (stop, opened) = (stop.clone(), opened.clone());
                        tokio::spawn(async move { slowloris(api, &stop, &opened).await })
                    })
                    .collect();
                for t in tasks {
                    let _ = t.await;
                }
            });
        })
    };
    // Let the flood fill what it can.
    std::thread::sleep(Duration::from_secs(2));
    let slowest = normal_client_waits(&c, "127.0.0.2", 30);
    stop.store(true, Ordering::Relaxed);
    attacker.join().expect("attacker");
    let opened = opened.load(Ordering::Relaxed);
    eprintln!("{opened} slowloris connections opened; the slowest of 30 answers to another source took {slowest:?}");
    assert!(opened >= 600, "the flood opened only {opened}");
}

/// One slowloris connection after another until `stop`: a ClientHello's
/// first bytes, then nothing; when the bridge closes it, a new one.
async fn slowloris(api: SocketAddr, stop: &AtomicBool, opened: &AtomicUsize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A TLS record header announcing 512 bytes of handshake, and 4 of them.
    const PARTIAL_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = tokio::net::TcpStream::connect(api).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(PARTIAL_HELLO).await;
        let mut byte = [0u8; 1];
        // Held until the bridge closes it (or the test ends).
        while !stop.load(Ordering::Relaxed) {
            let read = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await;
            if let Ok(Ok(0) | Err(_)) = read {
                break;
            }
        }
        // Re-opened, but not in a tight loop: the loopback's ports are few.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
