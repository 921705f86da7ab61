//! One media worker thread: its sockets, its conferences, its loop.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{
    lock, BatchSocket, Command, ConferenceId, EndpointSpec, EventSink, MediaEvent, Published, RecvBatch, RuntimeConfig,
    RuntimeStats, SendBatch,
};
use crate::engine::{Conference, EndpointId, Flow, Outgoing};
use crate::mixer::MixerEvent;

const TICK: Duration = Duration::from_millis(20);
/// How often statistics are published and media timeouts checked.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// Where one endpoint's datagrams go.
struct Peer {
    conference: ConferenceId,
    rtp: SocketAddr,
    /// `None`: RTCP is multiplexed on `rtp`.
    rtcp: Option<SocketAddr>,
    /// Whether a datagram has come from `rtp`; until then a datagram from
    /// the same host on another port (NAT) may take its place.
    latched: bool,
    /// Where its signalling came from: media may come from there instead.
    signalling_ip: Option<IpAddr>,
    attached_at: Instant,
    timed_out: bool,
}

struct Room {
    conference: Conference,
    next_tick: Instant,
    out: Vec<Outgoing>,
}

pub(super) struct Worker {
    index: usize,
    rtp: BatchSocket,
    rtcp: BatchSocket,
    wake: UdpSocket,
    commands: Receiver<Command>,
    config: RuntimeConfig,
    events: EventSink,
    published: Arc<Mutex<Published>>,
    rooms: HashMap<ConferenceId, Room>,
    peers: HashMap<EndpointId, Peer>,
    /// Source address → endpoint, for both RTP and RTCP addresses.
    routes: HashMap<SocketAddr, EndpointId>,
    stats: RuntimeStats,
    /// A received datagram, handed to the engine (which unprotects in place).
    scratch: Vec<u8>,
    recv: RecvBatch,
    send: SendBatch,
    next_housekeeping: Instant,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        index: usize,
        rtp: BatchSocket,
        rtcp: BatchSocket,
        wake: UdpSocket,
        commands: Receiver<Command>,
        config: RuntimeConfig,
        events: EventSink,
        published: Arc<Mutex<Published>>,
    ) -> Self {
        Self {
            index,
            rtp,
            rtcp,
            wake,
            commands,
            config,
            events,
            published,
            rooms: HashMap::new(),
            peers: HashMap::new(),
            routes: HashMap::new(),
            stats: RuntimeStats::default(),
            scratch: Vec::with_capacity(super::MAX_DATAGRAM),
            recv: RecvBatch::default(),
            send: SendBatch::default(),
            next_housekeeping: Instant::now() + HOUSEKEEPING,
        }
    }

    pub(super) fn run(mut self) {
        loop {
            if !self.take_commands() {
                return;
            }
            let now = Instant::now();
            let deadline = self.rooms.values().filter(|r| !r.conference.is_empty()).map(|r| r.next_tick).min();
            let deadline = deadline.map_or(self.next_housekeeping, |d| d.min(self.next_housekeeping));
            self.wait(deadline.saturating_duration_since(now));
            self.receive_all(false);
            self.receive_all(true);
            self.tick_due();
            if Instant::now() >= self.next_housekeeping {
                self.housekeeping();
            }
        }
    }

    /// Sleeps until a socket is readable or `timeout` passes.
    fn wait(&self, timeout: Duration) {
        let mut fds = [self.rtp.inner(), self.rtcp.inner(), &self.wake].map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        let spec = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos().into() };
        // SAFETY: `fds` is a valid array of pollfd for the call's duration;
        // an error (EINTR) just means we look again.
        unsafe {
            libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &spec, std::ptr::null());
        }
        let mut drain = [0u8; 64];
        while self.wake.recv(&mut drain).is_ok() {}
    }

    /// Applies queued commands; `false` when told to stop.
    fn take_commands(&mut self) -> bool {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Stop => return false,
                Command::Create(id) => {
                    let mut conference = Conference::new(self.config.mixer);
                    let now = Instant::now();
                    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                    conference.set_wallclock(now, wall);
                    self.rooms.insert(id, Room { conference, next_tick: now + TICK, out: Vec::new() });
                }
                Command::End(id) => {
                    if self.rooms.remove(&id).is_some() {
                        let gone: Vec<_> =
                            self.peers.iter().filter(|(_, p)| p.conference == id).map(|(e, _)| *e).collect();
                        for e in gone {
                            self.forget(e);
                        }
                    }
                }
                Command::Attach { conference, id, spec, reply } => {
                    let result = self.attach(conference, id, *spec);
                    let _ = reply.send(result);
                }
                Command::Detach(conference, id) => {
                    if let Some(room) = self.rooms.get_mut(&conference) {
                        let _ = room.conference.detach(id);
                    }
                    self.forget(id);
                }
                Command::SetRemote { id, rtp, rtcp } => {
                    if let Some(p) = self.peers.get_mut(&id) {
                        self.routes.retain(|_, e| *e != id);
                        p.rtp = rtp;
                        p.rtcp = rtcp;
                        p.latched = false;
                        self.routes.insert(rtp, id);
                        if let Some(r) = rtcp {
                            self.routes.insert(r, id);
                        }
                    }
                }
                Command::RxMute(c, id, on) => {
                    if let Some(r) = self.rooms.get_mut(&c) {
                        let _ = r.conference.set_rx_muted(id, on);
                    }
                }
                Command::TxMute(c, id, on) => {
                    if let Some(r) = self.rooms.get_mut(&c) {
                        let _ = r.conference.set_tx_muted(id, on);
                    }
                }
                Command::Prompt(c, id, prompt) => {
                    if let Some(r) = self.rooms.get_mut(&c) {
                        let _ = r.conference.set_prompt(id, prompt);
                    }
                }
                Command::Importance(c, id, value) => {
                    if let Some(r) = self.rooms.get_mut(&c) {
                        let _ = r.conference.set_importance(id, value);
                    }
                }
            }
        }
        true
    }

    fn attach(
        &mut self,
        conference: ConferenceId,
        id: EndpointId,
        spec: EndpointSpec,
    ) -> Result<(), crate::engine::EngineError> {
        let Some(room) = self.rooms.get_mut(&conference) else {
            // Ended meanwhile; the handle reports it.
            return Ok(());
        };
        let was_idle = room.conference.is_empty();
        room.conference.attach(id, spec.config)?;
        let now = Instant::now();
        if was_idle {
            room.next_tick = now + TICK;
        }
        self.routes.insert(spec.remote_rtp, id);
        if let Some(r) = spec.remote_rtcp {
            self.routes.insert(r, id);
        }
        self.peers.insert(
            id,
            Peer {
                conference,
                rtp: spec.remote_rtp,
                rtcp: spec.remote_rtcp,
                latched: false,
                signalling_ip: spec.signalling_ip,
                attached_at: now,
                timed_out: false,
            },
        );
        Ok(())
    }

    fn forget(&mut self, id: EndpointId) {
        self.peers.remove(&id);
        self.routes.retain(|_, e| *e != id);
        lock(&self.published).endpoints.remove(&id);
    }

    /// Drains one socket, handing each datagram to its endpoint's conference.
    fn receive_all(&mut self, rtcp_socket: bool) {
        loop {
            let socket = if rtcp_socket { &self.rtcp } else { &self.rtp };
            let n = match socket.recv_batch(&mut self.recv) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let now = Instant::now();
            for i in 0..n {
                self.stats.datagrams_in += 1;
                let Some((bytes, from)) = self.recv.get(i) else { continue };
                let Some(id) = route(&mut self.routes, &mut self.peers, from, rtcp_socket) else {
                    self.stats.unknown_source += 1;
                    continue;
                };
                let Some(peer) = self.peers.get(&id) else { continue };
                let Some(room) = self.rooms.get_mut(&peer.conference) else { continue };
                self.scratch.clear();
                self.scratch.extend_from_slice(bytes);
                if room.conference.receive(now, id, &mut self.scratch).is_err() {
                    self.stats.refused += 1;
                }
                for (endpoint, digit) in room.conference.take_dtmf() {
                    (self.events)(MediaEvent::Dtmf { conference: peer.conference, endpoint, digit });
                }
            }
            if n < super::BATCH {
                return;
            }
        }
    }

    /// Ticks every conference whose tick is due and sends what they made, in
    /// one batch per socket.
    fn tick_due(&mut self) {
        let now = Instant::now();
        let mut rtp_out: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut rtcp_out: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut events = Vec::new();
        let mut ticked = Vec::new();
        for (&cid, room) in &mut self.rooms {
            if room.conference.is_empty() || room.next_tick > now {
                continue;
            }
            self.stats.ticks += 1;
            // More than a tick behind: an overloaded worker. Catching up
            // would only bunch packets; skip to now and count it.
            if now - room.next_tick > TICK {
                self.stats.late_ticks += 1;
                room.next_tick = now;
            }
            room.next_tick += TICK;
            match room.conference.tick(now, &mut room.out) {
                Ok(summary) => {
                    ticked.push(cid);
                    self.stats.decodes += summary.decodes as u64;
                    self.stats.encodes += summary.encodes as u64;
                    for e in summary.events {
                        let MixerEvent::ActiveSpeakerChanged(endpoint) = e;
                        events.push(MediaEvent::ActiveSpeaker { conference: cid, endpoint });
                    }
                }
                Err(_) => {
                    room.out.clear();
                    continue;
                }
            }
        }
        for room in ticked.iter().filter_map(|c| self.rooms.get(c)) {
            for o in &room.out {
                let Some(peer) = self.peers.get(&o.endpoint) else { continue };
                if peer.rtp.ip().is_unspecified() || peer.rtp.port() == 0 {
                    continue; // on hold with c=0.0.0.0, or no port yet
                }
                match (o.flow, peer.rtcp) {
                    (Flow::Rtp, _) | (Flow::Rtcp, None) => rtp_out.push((peer.rtp, &o.bytes)),
                    (Flow::Rtcp, Some(rtcp)) => rtcp_out.push((rtcp, &o.bytes)),
                }
            }
        }
        if !rtp_out.is_empty() {
            self.stats.datagrams_out += self.rtp.send_batch(&mut self.send, &rtp_out) as u64;
        }
        if !rtcp_out.is_empty() {
            self.stats.datagrams_out += self.rtcp.send_batch(&mut self.send, &rtcp_out) as u64;
        }
        // What was sent stays in each room's `out` until its next tick
        // reuses the buffers.
        for e in events {
            (self.events)(e);
        }
    }

    /// Publishes statistics and reports endpoints silent for the timeout.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        self.next_housekeeping = now + HOUSEKEEPING;
        let mut timeouts = Vec::new();
        let mut published = lock(&self.published);
        for (&id, peer) in &mut self.peers {
            let Some(room) = self.rooms.get(&peer.conference) else { continue };
            let Ok(stats) = room.conference.stats(id) else { continue };
            published.endpoints.insert(id, stats);
            let last = stats.last_received.unwrap_or(peer.attached_at);
            if !peer.timed_out && now.saturating_duration_since(last) >= self.config.media_timeout {
                peer.timed_out = true;
                timeouts.push(MediaEvent::MediaTimeout { conference: peer.conference, endpoint: id });
            } else if peer.timed_out
                && stats.last_received.is_some_and(|t| now.saturating_duration_since(t) < HOUSEKEEPING * 2)
            {
                peer.timed_out = false;
            }
        }
        if let Some(w) = published.workers.get_mut(self.index) {
            *w = self.stats;
        }
        drop(published);
        for e in timeouts {
            (self.events)(e);
        }
    }
}

/// The endpoint a datagram from `from` belongs to. A source nobody was
/// signalled with is latched to an endpoint that has not yet sent from its
/// signalled address and whose signalled or signalling host is the
/// source's host; with several, the one attached first.
fn route(
    routes: &mut HashMap<SocketAddr, EndpointId>,
    peers: &mut HashMap<EndpointId, Peer>,
    from: SocketAddr,
    rtcp_socket: bool,
) -> Option<EndpointId> {
    if let Some(&id) = routes.get(&from) {
        if let Some(p) = peers.get_mut(&id) {
            if p.rtp == from {
                p.latched = true;
            }
        }
        return Some(id);
    }
    if rtcp_socket {
        return None;
    }
    let ip: IpAddr = from.ip();
    let (&id, _) = peers
        .iter()
        .filter(|(_, p)| !p.latched && (p.rtp.ip() == ip || p.signalling_ip == Some(ip)))
        .min_by_key(|(id, p)| (p.attached_at, **id))?;
    let p = peers.get_mut(&id)?;
    routes.remove(&p.rtp);
    p.rtp = from;
    p.latched = true;
    routes.insert(from, id);
    Some(id)
}
