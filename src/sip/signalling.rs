//! SIP as one kind of leg signalling: the user agent, with its calls named
//! by the bridge's leg ids.
//!
//! The bridge knows legs, not SIP dialogs: it sends [`SipCommand`]s that
//! name a leg and receives [`SipEvent`]s that name one. [`SipSignalling`]
//! owns the [`UserAgent`] and keeps the map between legs and the user
//! agent's call handles, so a dial's handle (known only once the user agent
//! has taken it) never has to travel back to the bridge. Sans-IO like the
//! user agent: the tokio shell (`super`) and the bridge's virtual-time tests
//! drive it the same way.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use confero_sip::message::{Message, ParseError};
use confero_sip::transaction::{Peer, Transmit};
use confero_sip::ua::{CallHandle, Dial, EndReason, IncomingCall, UaEvent, UserAgent};
use rand::RngCore;
use uuid::Uuid;

/// What the bridge asks of a SIP leg.
#[derive(Debug, Clone)]
pub enum SipCommand {
    /// Answer an incoming call with this SDP.
    Accept {
        /// The leg.
        leg: Uuid,
        /// Our SDP answer.
        answer: Vec<u8>,
    },
    /// Refuse an incoming call with this status.
    Reject {
        /// The leg.
        leg: Uuid,
        /// 404, 403, 488, 503, ...
        code: u16,
    },
    /// Answer the peer's new offer (`Err`: refuse it with this status).
    AnswerReoffer {
        /// The leg.
        leg: Uuid,
        /// Our answer, or the refusal's status.
        answer: Result<Vec<u8>, u16>,
    },
    /// Call out: the leg's INVITE for one route.
    Dial {
        /// The leg.
        leg: Uuid,
        /// Where and what to send.
        dial: Box<Dial>,
        /// Over TLS, the name the server's certificate must carry (the
        /// shell checks it when it connects).
        server_name: Option<String>,
    },
    /// End the leg's call (BYE, CANCEL or a refusal, as its state needs).
    Hangup {
        /// The leg.
        leg: Uuid,
    },
    /// Send DTMF by SIP INFO (the leg negotiated no telephone-event).
    DtmfInfo {
        /// The leg.
        leg: Uuid,
        /// Keys and `,` pauses (checked by the API).
        sequence: String,
    },
    /// Send the peer a new offer in a re-INVITE (the leg moves to another
    /// conference, as from an IVR into its meeting); the answer comes as
    /// [`SipEvent::ReinviteAnswered`].
    Reinvite {
        /// The leg.
        leg: Uuid,
        /// Our new offer.
        offer: Vec<u8>,
    },
}

/// What a SIP peer (or a SIP timer) did to a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipEvent {
    /// A new call, named by a new leg id; answer with
    /// [`SipCommand::Accept`] or [`SipCommand::Reject`].
    Incoming {
        /// The leg id it was given.
        leg: Uuid,
        /// The INVITE's parties, offer and source.
        call: Box<IncomingCall>,
    },
    /// The called party is alerting.
    Ringing {
        /// The leg.
        leg: Uuid,
    },
    /// The called party answered.
    Answered {
        /// The leg.
        leg: Uuid,
        /// Its SDP answer.
        sdp: Option<Vec<u8>>,
    },
    /// Our INVITE failed (a final non-2xx, a timeout, or it could not be
    /// sent: `code` 0).
    Failed {
        /// The leg.
        leg: Uuid,
        /// The status code.
        code: u16,
        /// The reason phrase.
        reason: String,
    },
    /// The peer sent a new offer (hold, resume, new keys); answer with
    /// [`SipCommand::AnswerReoffer`].
    Reoffer {
        /// The leg.
        leg: Uuid,
        /// The offer (`None`: an offerless re-INVITE).
        offer: Option<Vec<u8>>,
    },
    /// The peer's ACK carried its answer to the offer we put in our 200
    /// (its INVITE or re-INVITE had none: a late offer).
    AckAnswer {
        /// The leg.
        leg: Uuid,
        /// Its SDP answer.
        sdp: Vec<u8>,
    },
    /// The answer to our re-INVITE ([`SipCommand::Reinvite`]).
    ReinviteAnswered {
        /// The leg.
        leg: Uuid,
        /// Its SDP answer.
        sdp: Option<Vec<u8>>,
    },
    /// Our re-INVITE was refused (or could not be sent: `code` 0); the old
    /// session stays.
    ReinviteFailed {
        /// The leg.
        leg: Uuid,
        /// The status code.
        code: u16,
    },
    /// A DTMF digit by SIP INFO.
    Dtmf {
        /// The leg.
        leg: Uuid,
        /// 0-9, *, #, A-D.
        digit: char,
    },
    /// The call is over without the bridge asking.
    Ended {
        /// The leg.
        leg: Uuid,
        /// Why.
        reason: EndReason,
    },
}

/// The user agent, speaking in legs.
pub struct SipSignalling {
    ua: UserAgent,
    /// Makes the ids of incoming legs (seeded in tests).
    rng: Box<dyn RngCore + Send>,
    handles: HashMap<Uuid, CallHandle>,
    legs: HashMap<CallHandle, Uuid>,
    events: VecDeque<SipEvent>,
}

impl std::fmt::Debug for SipSignalling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipSignalling").field("legs", &self.legs.len()).finish_non_exhaustive()
    }
}

impl SipSignalling {
    /// Wraps a user agent; `rng` makes the ids of incoming legs.
    pub fn new(ua: UserAgent, rng: Box<dyn RngCore + Send>) -> SipSignalling {
        SipSignalling { ua, rng, handles: HashMap::new(), legs: HashMap::new(), events: VecDeque::new() }
    }

    /// A datagram from `source`.
    pub fn handle_datagram(&mut self, now: Instant, source: Peer, bytes: &[u8]) {
        self.ua.handle_datagram(now, source, bytes);
        self.collect();
    }

    /// A message framed off a TCP or TLS connection.
    pub fn handle_message(&mut self, now: Instant, source: Peer, message: Message) {
        self.ua.handle_message(now, source, message);
        self.collect();
    }

    /// Fires the timers due by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.ua.handle_timeout(now);
        self.collect();
    }

    /// When [`SipSignalling::handle_timeout`] must next run.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.ua.next_timeout()
    }

    /// Bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.ua.poll_transmit()
    }

    /// What happened, for the bridge.
    pub fn poll_event(&mut self) -> Option<SipEvent> {
        self.events.pop_front()
    }

    /// SIP calls alive (dialogs and calls being set up or torn down).
    pub fn call_count(&self) -> usize {
        self.ua.call_count()
    }

    /// Whether a call signals through `peer` (a TCP or TLS connection to
    /// keep open however long it is quiet).
    pub fn has_call_with(&self, peer: Peer) -> bool {
        self.ua.has_call_with(peer)
    }

    /// Bytes off a stream that could not be framed: a request that can be
    /// read enough is answered 400 or 513 on that connection.
    pub fn handle_unframed(&mut self, source: Peer, bytes: &[u8], error: &ParseError) {
        self.ua.handle_unframed(source, bytes, error);
        self.collect();
    }

    /// The shell could not connect to `peer`: our INVITEs waiting on it
    /// fail at once (503), so the bridge tries the next server.
    pub fn transport_failed(&mut self, peer: Peer) {
        self.ua.transport_failed(peer);
        self.collect();
    }

    /// Carries out a bridge command. A command for a leg whose call has
    /// already ended is dropped: the bridge learns of the end by its event.
    pub fn handle_command(&mut self, now: Instant, command: SipCommand) {
        match command {
            SipCommand::Dial { leg, dial, .. } => match self.ua.dial(now, *dial) {
                Ok(handle) => {
                    self.handles.insert(leg, handle);
                    self.legs.insert(handle, leg);
                }
                Err(e) => {
                    self.events.push_back(SipEvent::Failed { leg, code: 0, reason: e.to_string() });
                }
            },
            SipCommand::Accept { leg, answer } => {
                if let Some(&h) = self.handles.get(&leg) {
                    if self.ua.accept(now, h, answer).is_err() {
                        // Cancelled before we answered: its Ended event follows.
                        tracing::debug!("SIP leg {leg}: accept came too late");
                    }
                }
            }
            SipCommand::Reject { leg, code } => {
                if let Some(h) = self.forget(leg) {
                    let _ = self.ua.reject(now, h, code);
                }
            }
            SipCommand::AnswerReoffer { leg, answer } => {
                if let Some(&h) = self.handles.get(&leg) {
                    let _ = self.ua.answer_reoffer(now, h, answer);
                }
            }
            SipCommand::Hangup { leg } => {
                if let Some(h) = self.forget(leg) {
                    let _ = self.ua.hangup(now, h);
                }
            }
            SipCommand::DtmfInfo { leg, sequence } => {
                if let Some(&h) = self.handles.get(&leg) {
                    if let Err(e) = self.ua.send_dtmf_info(now, h, &sequence) {
                        tracing::info!("call leg {leg}: DTMF by INFO not sent: {e}");
                    }
                }
            }
            SipCommand::Reinvite { leg, offer } => {
                if let Some(&h) = self.handles.get(&leg) {
                    if let Err(e) = self.ua.reinvite(now, h, offer) {
                        tracing::info!("call leg {leg}: re-INVITE not sent: {e}");
                        self.events.push_back(SipEvent::ReinviteFailed { leg, code: 0 });
                    }
                }
            }
        }
        self.collect();
    }

    fn forget(&mut self, leg: Uuid) -> Option<CallHandle> {
        let h = self.handles.remove(&leg)?;
        self.legs.remove(&h);
        Some(h)
    }

    /// Turns the user agent's events into the bridge's.
    fn collect(&mut self) {
        while let Some(event) = self.ua.poll_event() {
            let leg_of = |legs: &HashMap<CallHandle, Uuid>, h: CallHandle| legs.get(&h).copied();
            let event = match event {
                UaEvent::IncomingCall(call) => {
                    let mut bytes = [0u8; 16];
                    self.rng.fill_bytes(&mut bytes);
                    let leg = uuid::Builder::from_random_bytes(bytes).into_uuid();
                    self.handles.insert(leg, call.call);
                    self.legs.insert(call.call, leg);
                    Some(SipEvent::Incoming { leg, call })
                }
                UaEvent::Ringing { call, .. } => leg_of(&self.legs, call).map(|leg| SipEvent::Ringing { leg }),
                UaEvent::Answered { call, sdp } => leg_of(&self.legs, call).map(|leg| SipEvent::Answered { leg, sdp }),
                UaEvent::Failed { call, code, reason } => {
                    let leg = leg_of(&self.legs, call);
                    if let Some(leg) = leg {
                        self.forget(leg);
                    }
                    leg.map(|leg| SipEvent::Failed { leg, code, reason })
                }
                UaEvent::Reoffer { call, offer } => {
                    leg_of(&self.legs, call).map(|leg| SipEvent::Reoffer { leg, offer })
                }
                UaEvent::Dtmf { call, digit, .. } => leg_of(&self.legs, call).map(|leg| SipEvent::Dtmf { leg, digit }),
                UaEvent::Ended { call, reason } => {
                    let leg = leg_of(&self.legs, call);
                    if let Some(leg) = leg {
                        self.forget(leg);
                    }
                    leg.map(|leg| SipEvent::Ended { leg, reason })
                }
                // What the bridge needs of these is already in hand: the ACK
                // confirms what it answered; our own re-INVITEs are not sent
                // yet.
                UaEvent::Confirmed { call, answer: Some(sdp) } => {
                    leg_of(&self.legs, call).map(|leg| SipEvent::AckAnswer { leg, sdp })
                }
                UaEvent::ReofferAnswered { call, answer } => {
                    leg_of(&self.legs, call).map(|leg| SipEvent::ReinviteAnswered { leg, sdp: answer })
                }
                UaEvent::ReofferFailed { call, code } => {
                    leg_of(&self.legs, call).map(|leg| SipEvent::ReinviteFailed { leg, code })
                }
                UaEvent::Confirmed { .. } => None,
            };
            if let Some(e) = event {
                self.events.push_back(e);
            }
        }
    }
}
