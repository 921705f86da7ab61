//! Joining as a browser does, for the load generators: what `media_server`'s
//! `join-web` answers, and the ICE check and DTLS handshake of every
//! participant at once, each keyed with what its handshake exported.

use std::time::{Duration, Instant};

use confero_media::srtp::SrtpContext;
use confero_media::transport::dtls::{DtlsEvent, DtlsIdentity, DtlsSession, Fingerprint};
use confero_media::transport::stun;
use mio::net::UdpSocket;
use mio::{Events, Poll};

use super::shared::Res;

/// What `media_server` answered a browser-like join with.
pub struct WebJoined {
    pub ufrag: String,
    pub pwd: String,
    pub fingerprint: Fingerprint,
}

impl WebJoined {
    /// From the fields of `joined ROOM ENDPOINT ADDR UFRAG PWD FINGERPRINT`.
    pub fn parse(fields: &[&str]) -> Res<WebJoined> {
        let (Some(ufrag), Some(pwd), Some(fp)) = (fields.get(4), fields.get(5), fields.get(6)) else {
            return Err(format!("media_server: {}", fields.join(" ")).into());
        };
        let fingerprint = Fingerprint::parse(&format!("sha-256 {fp}")).ok_or("media_server's fingerprint")?;
        Ok(WebJoined { ufrag: ufrag.to_string(), pwd: pwd.to_string(), fingerprint })
    }
}

/// The fingerprint as `join-web` takes it (SDP's form without `sha-256 `).
pub fn digest(identity: &DtlsIdentity) -> String {
    let sdp = identity.fingerprint().to_sdp();
    sdp.strip_prefix("sha-256 ").unwrap_or(&sdp).to_string()
}

/// One participant's SRTP once connected: what it unprotects with, what it
/// protects with.
pub struct Keyed {
    /// The audio generator never looks inside what it receives.
    #[allow(dead_code)]
    pub inbound: SrtpContext,
    pub outbound: SrtpContext,
}

/// Connects every socket (connected to its server address; its poll token
/// maps to its index through `index_of`) as a browser does: a nominating
/// check with the participant's name `lg<i>`, then the DTLS client
/// handshake. Returns each one's keys and how long it all took.
pub fn connect(
    poll: &mut Poll,
    socks: &[&UdpSocket],
    index_of: impl Fn(usize) -> Option<usize>,
    joined: &[WebJoined],
    identity: &DtlsIdentity,
) -> Res<(Vec<Keyed>, Duration)> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let mut sessions: Vec<Option<DtlsSession>> = (0..socks.len()).map(|_| None).collect();
    let mut keys: Vec<Option<Keyed>> = (0..socks.len()).map(|_| None).collect();
    let mut keyed = 0;
    let mut buf = [0u8; 1500];
    let mut check = Vec::new();
    for (i, (sock, j)) in socks.iter().zip(joined).enumerate() {
        let tid = [(i % 251) as u8, (i / 251) as u8, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7];
        stun::binding_request(&tid, &format!("{}:lg{i}", j.ufrag), &j.pwd, true, &mut check);
        sock.send(&check)?;
    }
    let mut events = Events::with_capacity(1024);
    while keyed < socks.len() {
        if Instant::now() > deadline {
            return Err(format!("only {keyed} of {} DTLS handshakes finished in 60 s", socks.len()).into());
        }
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        let now = Instant::now();
        for ev in events.iter() {
            let Some(i) = index_of(ev.token().0) else { continue };
            let sock = socks[i];
            while let Ok(len) = sock.recv(&mut buf) {
                let datagram = &buf[..len];
                let mut send = |d: &[u8]| drop(sock.send(d));
                let event = match (&mut sessions[i], datagram.first()) {
                    (None, Some(0..=3)) if stun::is_stun(datagram) => {
                        let mut session = DtlsSession::new(identity, joined[i].fingerprint.clone(), true, now);
                        let event = session.handle_timeout(now, &mut send);
                        sessions[i] = Some(session);
                        event
                    }
                    (Some(session), Some(20..=63)) => session.handle_packet(now, datagram, &mut send),
                    _ => None,
                };
                match event {
                    Some(DtlsEvent::Keys { inbound, outbound }) => {
                        keys[i] = Some(Keyed {
                            inbound: SrtpContext::new(inbound.profile, &inbound.key, &inbound.salt)?,
                            outbound: SrtpContext::new(outbound.profile, &outbound.key, &outbound.salt)?,
                        });
                        keyed += 1;
                    }
                    Some(DtlsEvent::Failed(e)) => return Err(format!("participant {i}: {e}").into()),
                    None => {}
                }
            }
        }
        // Retransmissions of flights lost in a full socket buffer.
        for (i, session) in sessions.iter_mut().enumerate() {
            let Some(session) = session else { continue };
            if session.is_connected() || session.next_timeout().is_none_or(|t| t > now) {
                continue;
            }
            let sock = socks[i];
            if let Some(DtlsEvent::Failed(e)) = session.handle_timeout(now, &mut |d| drop(sock.send(d))) {
                return Err(format!("participant {i}: {e}").into());
            }
        }
    }
    Ok((keys.into_iter().map(|k| k.expect("every participant keyed")).collect(), start.elapsed()))
}
