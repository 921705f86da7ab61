//! The bridge's shell: [`CallBridge`] holds the sans-IO [`Bridge`] under a
//! mutex, serves the API's [`BridgeHandle`] from it, and runs the bridge's
//! own event loop ([`CallBridge::run`]): SIP events from the SIP task, media
//! events from the media workers, and the answers of DNS lookups.
//!
//! After every input the bridge's outputs are dispatched while the lock is
//! still held, so they leave in the order they were made; each dispatch is a
//! channel send or a queue push. Nothing slow runs under the lock: DNS runs
//! in its own task and comes back as an input, and the media engine's calls
//! do not wait on its workers.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use confero_api::bridge::{
    BridgeCounters, BridgeError, BridgeHandle, LiveCall, LiveCallLeg, LiveParticipant, NewCall, WebJoin, WebJoinError,
    WebJoined, WebMeeting,
};
use confero_api::cdr::CdrSender;
use confero_media::runtime::MediaEvent;
use confero_store::schema::Change;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use uuid::Uuid;

use super::{Bridge, Lookup, Output};
use crate::sip::locate::Locator;
use crate::sip::{SipCommand, SipEvent};
use confero_sip::transaction::Peer;

/// The live bridge, shared by the API, the SIP task and the media workers.
pub struct CallBridge {
    core: Mutex<Bridge>,
    cdr: Arc<CdrSender>,
    sip: UnboundedSender<SipCommand>,
    lookups: UnboundedSender<Lookup>,
    /// Taken by [`CallBridge::run`].
    lookup_queue: Mutex<Option<UnboundedReceiver<Lookup>>>,
}

impl CallBridge {
    /// Wraps `core`; its SIP commands go to `sip`, its CDRs to `cdr`.
    pub fn new(core: Bridge, cdr: Arc<CdrSender>, sip: UnboundedSender<SipCommand>) -> Arc<CallBridge> {
        let (lookups, lookup_queue) = unbounded_channel();
        Arc::new(CallBridge { core: Mutex::new(core), cdr, sip, lookups, lookup_queue: Mutex::new(Some(lookup_queue)) })
    }

    fn lock(&self) -> MutexGuard<'_, Bridge> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the bridge at the current time, then dispatches what it
    /// asked for.
    fn with<T>(&self, f: impl FnOnce(&mut Bridge, Instant) -> T) -> T {
        let mut core = self.lock();
        let out = f(&mut core, Instant::now());
        while let Some(output) = core.poll_output() {
            match output {
                Output::Sip(command) => {
                    if self.sip.send(command).is_err() {
                        tracing::debug!("SIP is not running: a command was dropped");
                    }
                }
                Output::Cdr(record) => self.cdr.emit(record.record_type(), &record.to_xml()),
                Output::Lookup(lookup) => {
                    let _ = self.lookups.send(lookup);
                }
            }
        }
        out
    }

    /// The bridge's event loop: until every input channel closes.
    /// Dial-outs' next hops are found by `locator`, each in a task of its own.
    pub async fn run(
        self: Arc<Self>,
        mut sip_events: UnboundedReceiver<SipEvent>,
        mut media_events: UnboundedReceiver<MediaEvent>,
        locator: Locator,
    ) {
        let Some(mut lookups) = self.lookup_queue.lock().unwrap_or_else(|p| p.into_inner()).take() else { return };
        let (answers_tx, mut answers) = unbounded_channel::<(Lookup, Vec<Peer>)>();
        let locator = Arc::new(locator);
        loop {
            // The bridge's own timer (guests' deactivationModeTime).
            let deadline = self.with(|b, _| b.next_timeout());
            let timer = tokio::time::sleep_until(tokio::time::Instant::from_std(
                deadline.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600)),
            ));
            tokio::select! {
                () = timer, if deadline.is_some() => self.with(|b, now| b.handle_timeout(now)),
                Some(event) = sip_events.recv() => self.with(|b, now| b.handle_sip(now, event)),
                Some(event) = media_events.recv() => self.with(|b, now| b.handle_media(now, event)),
                Some(lookup) = lookups.recv() => {
                    let (answers, locator) = (answers_tx.clone(), locator.clone());
                    tokio::spawn(async move {
                        let servers = locator.locate(&lookup.hop).await;
                        let _ = answers.send((lookup, servers));
                    });
                }
                Some((lookup, servers)) = answers.recv() => self.with(|b, now| b.handle_lookup(now, &lookup, servers)),
                else => return,
            }
        }
    }

    /// Ends every leg and call (each signalling asked to hang up, every CDR
    /// queued) and refuses new ones: the first step of a graceful shutdown.
    pub fn shutdown(&self) {
        let legs = self.with(|b, now| {
            let legs = b.leg_count();
            b.shutdown(now);
            legs
        });
        tracing::info!("shutdown: {legs} call legs ended");
    }
}

impl BridgeHandle for CallBridge {
    fn create_call(&self, new: NewCall) -> Result<LiveCall, BridgeError> {
        self.with(|b, now| b.create_call(now, new))
    }

    fn update_call(&self, id: Uuid, changes: &[Change]) -> Result<(), BridgeError> {
        self.with(|b, now| b.update_call(now, id, changes))
    }

    fn end_call(&self, id: Uuid) -> Result<(), BridgeError> {
        self.with(|b, now| b.end_call(now, id))
    }

    fn calls(&self) -> Vec<LiveCall> {
        self.with(|b, now| b.calls(now))
    }

    fn dial(&self, call: Uuid, remote_party: &str, config: &[Change]) -> Result<LiveCallLeg, BridgeError> {
        self.with(|b, now| b.dial(now, call, remote_party, config))
    }

    fn update_call_leg(&self, id: Uuid, changes: &[Change]) -> Result<(), BridgeError> {
        self.with(|b, now| b.update_call_leg(now, id, changes))
    }

    fn generate_keyframe(&self, id: Uuid) -> Result<(), BridgeError> {
        self.with(|b, _| b.generate_keyframe(id))
    }

    fn camera_control(&self, id: Uuid, moves: &[confero_api::bridge::CameraMove]) -> Result<(), BridgeError> {
        self.with(|b, _| b.camera_control(id, moves))
    }

    fn call_leg_profile_trace(&self, id: Uuid) -> Result<Vec<confero_api::bridge::ProfileLayer>, BridgeError> {
        self.with(|b, _| b.call_leg_profile_trace(id))
    }

    fn end_call_leg(&self, id: Uuid) -> Result<(), BridgeError> {
        self.with(|b, now| b.end_call_leg(now, id))
    }

    fn call_legs(&self) -> Vec<LiveCallLeg> {
        self.with(|b, now| b.call_legs(now))
    }

    fn participants(&self) -> Vec<LiveParticipant> {
        self.with(|b, _| b.participants())
    }

    fn counters(&self) -> BridgeCounters {
        self.with(|b, now| b.counters(now))
    }

    fn web_meeting(&self, call_id: &str, secret: Option<&str>) -> Result<WebMeeting, WebJoinError> {
        self.with(|b, _| b.web_meeting(call_id, secret))
    }

    fn join_web(&self, join: WebJoin) -> Result<WebJoined, WebJoinError> {
        self.with(|b, now| b.join_web(now, join))
    }
}
