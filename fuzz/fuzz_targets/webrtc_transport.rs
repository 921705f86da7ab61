//! What a browser's bundled 5-tuple brings, told apart as the media worker
//! does (RFC 7983): STUN checks parsed, verified and answered by an ICE-lite
//! agent, DTLS records fed to a server session. Any bytes give an answer,
//! a refusal or nothing, never a panic of ours; every STUN answer we write
//! parses as STUN again.
//!
//! dimpl 0.7.6 asserts on some crafted records (this target found one:
//! `fuzz/seeds/webrtc_transport/dimpl-duplicate-epoch`); `DtlsSession`
//! catches that and fails the session. libFuzzer's panic hook aborts on any
//! panic before it can be caught, so this target's hook lets panics raised
//! inside dimpl unwind to that catch and aborts on every other.
#![no_main]
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use confero_media::transport::dtls::{DtlsIdentity, DtlsSession};
use confero_media::transport::ice::{IceCredentials, IceLite};
use confero_media::transport::{demux, stun, Demuxed};
use libfuzzer_sys::fuzz_target;

fn identity() -> &'static DtlsIdentity {
    static IDENTITY: OnceLock<DtlsIdentity> = OnceLock::new();
    IDENTITY.get_or_init(|| DtlsIdentity::generate().expect("a DTLS certificate"))
}

fn hook() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            let in_dimpl = info.location().is_some_and(|l| l.file().contains("/dimpl-"));
            if !in_dimpl {
                eprintln!("{info}");
                std::process::abort();
            }
        }))
    });
}

fuzz_target!(|data: &[u8]| {
    hook();
    let now = Instant::now();
    let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let local = IceCredentials { ufrag: "evtj".into(), pwd: "VOkJxbRl1RmTxUk/WvJxBt".into() };
    let mut ice = IceLite::new(local, "h6vY".into(), now);
    let mut dtls = DtlsSession::new(identity(), identity().fingerprint().clone(), false, now);
    let mut out = Vec::new();
    // Several datagrams in one input, each prefixed by a length byte.
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (datagram, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        match demux(datagram) {
            Demuxed::Stun => {
                if let Ok(request) = stun::parse_binding_request(datagram) {
                    let _ = ice.handle_check(now, from, &request, datagram, &mut out);
                    assert!(stun::is_stun(&out), "our answer is STUN");
                }
            }
            Demuxed::Dtls => {
                let _ = dtls.handle_packet(now, datagram, &mut |_| {});
            }
            Demuxed::Rtp | Demuxed::Other => {}
        }
    }
});
