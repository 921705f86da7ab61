//! The FECC thread: the shell of every endpoint's [`FeccSession`].
//!
//! One thread and one RTP/RTCP socket pair for the whole runtime, apart
//! from the media workers: H.224 is a few datagrams a second at most, and
//! keeping it off the workers keeps their loops and their `ppoll` as they
//! are. Datagrams are told apart by source address, with the workers'
//! latching rule (a NAT, or an endpoint advertising an address it cannot be
//! reached at: a source on the signalled or signalling host takes the place
//! of an endpoint that has not yet sent from its signalled address).

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::{ConferenceId, EventSink, FeccStream, MediaEvent};
use crate::engine::EndpointId;
use crate::fecc::{FeccInput, FeccSession, Moves, H281};

/// The longest sleep: nothing is due, but a lost wake-up costs at most this.
const IDLE: Duration = Duration::from_secs(1);

pub(crate) enum FeccCommand {
    Attach { conference: ConferenceId, id: EndpointId, stream: Box<FeccStream>, signalling_ip: Option<IpAddr> },
    Detach(EndpointId),
    Nudge(EndpointId, Moves),
    Relay(EndpointId, H281),
    Stop,
}

struct Endpoint {
    conference: ConferenceId,
    session: FeccSession,
    rtp: SocketAddr,
    rtcp: Option<SocketAddr>,
    /// A datagram came from `rtp`: no other source may take its place.
    latched: bool,
    signalling_ip: Option<IpAddr>,
}

pub(super) struct FeccThread {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub wake: UdpSocket,
    pub commands: Receiver<FeccCommand>,
    pub events: EventSink,
    endpoints: HashMap<EndpointId, Endpoint>,
    /// Source address → endpoint.
    routes: HashMap<SocketAddr, EndpointId>,
}

impl FeccThread {
    pub(super) fn new(
        rtp: UdpSocket,
        rtcp: UdpSocket,
        wake: UdpSocket,
        commands: Receiver<FeccCommand>,
        events: EventSink,
    ) -> FeccThread {
        FeccThread { rtp, rtcp, wake, commands, events, endpoints: HashMap::new(), routes: HashMap::new() }
    }

    pub(super) fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        loop {
            if !self.take_commands() {
                return;
            }
            self.flush();
            let now = Instant::now();
            let due = self.endpoints.values().filter_map(|e| e.session.next_timeout()).min();
            let timeout = due.map_or(IDLE, |d| d.saturating_duration_since(now).min(IDLE));
            self.wait(timeout);
            if !self.take_commands() {
                return;
            }
            self.receive(&mut buf);
            let now = Instant::now();
            for e in self.endpoints.values_mut() {
                if e.session.next_timeout().is_some_and(|at| at <= now) {
                    e.session.handle_timeout(now);
                }
            }
            self.flush();
        }
    }

    fn wait(&self, timeout: Duration) {
        super::udp::wait_readable(&[&self.rtp, &self.rtcp, &self.wake], timeout);
        let mut drain = [0u8; 64];
        while self.wake.recv(&mut drain).is_ok() {}
    }

    /// Applies queued commands; `false` when told to stop.
    fn take_commands(&mut self) -> bool {
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(std::sync::mpsc::TryRecvError::Empty) => return true,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
            };
            let now = Instant::now();
            match command {
                FeccCommand::Stop => return false,
                FeccCommand::Attach { conference, id, stream, signalling_ip } => {
                    let FeccStream { addresses, config } = *stream;
                    // Keys the handle checked: a refusal cannot happen, and
                    // would only mean no camera control.
                    if let Ok(session) = FeccSession::new(config, now) {
                        self.forget(id);
                        self.routes.insert(addresses.rtp, id);
                        if let Some(r) = addresses.rtcp {
                            self.routes.insert(r, id);
                        }
                        let endpoint = Endpoint {
                            conference,
                            session,
                            rtp: addresses.rtp,
                            rtcp: addresses.rtcp,
                            latched: false,
                            signalling_ip,
                        };
                        self.endpoints.insert(id, endpoint);
                    }
                }
                FeccCommand::Detach(id) => self.forget(id),
                FeccCommand::Nudge(id, moves) => {
                    if let Some(e) = self.endpoints.get_mut(&id) {
                        e.session.nudge(now, moves);
                    }
                }
                FeccCommand::Relay(id, message) => {
                    if let Some(e) = self.endpoints.get_mut(&id) {
                        e.session.relay(now, message);
                    }
                }
            }
        }
    }

    fn forget(&mut self, id: EndpointId) {
        if self.endpoints.remove(&id).is_some() {
            self.routes.retain(|_, e| *e != id);
        }
    }

    /// The endpoint a datagram from `from` belongs to, latching a new source
    /// as the module docs say.
    fn route(&mut self, from: SocketAddr) -> Option<EndpointId> {
        if let Some(&id) = self.routes.get(&from) {
            if let Some(e) = self.endpoints.get_mut(&id) {
                e.latched |= e.rtp == from;
            }
            return Some(id);
        }
        let (&id, endpoint) = self
            .endpoints
            .iter_mut()
            .filter(|(_, e)| !e.latched && (e.rtp.ip() == from.ip() || e.signalling_ip == Some(from.ip())))
            .min_by_key(|(id, _)| **id)?;
        endpoint.rtp = from;
        endpoint.rtcp = None;
        endpoint.latched = true;
        self.routes.retain(|_, e| *e != id);
        self.routes.insert(from, id);
        Some(id)
    }

    fn receive(&mut self, buf: &mut [u8]) {
        loop {
            let (n, from) = match self.rtp.recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let datagram = &buf[..n];
            // RTCP multiplexed on the RTP port (RFC 5761): packet types 192..=223.
            if datagram.get(1).is_some_and(|pt| (192..=223).contains(pt)) {
                continue;
            }
            let Some(id) = self.route(from) else { continue };
            let Some(endpoint) = self.endpoints.get_mut(&id) else { continue };
            let mut datagram = datagram.to_vec();
            // Refused datagrams (SRTP, another payload type, not H.224) are
            // dropped, as the workers drop theirs.
            if let Ok(Some(input)) = endpoint.session.handle_datagram(Instant::now(), &mut datagram) {
                let (conference, endpoint) = (endpoint.conference, id);
                (self.events)(match input {
                    FeccInput::CameraControlAvailable => MediaEvent::CameraControlAvailable { conference, endpoint },
                    FeccInput::Camera(message) => MediaEvent::CameraControl { conference, endpoint, message },
                });
            }
        }
        // RTCP on its own port says nothing we use.
        while self.rtcp.recv_from(buf).is_ok() {}
    }

    fn flush(&mut self) {
        for e in self.endpoints.values_mut() {
            while let Some(datagram) = e.session.poll_transmit() {
                let _ = self.rtp.send_to(&datagram, e.rtp);
            }
        }
    }
}
