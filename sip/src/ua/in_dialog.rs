//! Requests inside an established dialog: BYE, re-INVITE and UPDATE offers
//! (hold, resume, session refresh), INFO, PRACK, OPTIONS, and the ACK of a
//! 2xx; and our own re-INVITE and session refresh.

use std::time::{Duration, Instant};

use super::dialog::{CallState, Pending, Purpose, Retransmit, Session};
use super::{dtmf, CallHandle, EndReason, UaError, UaEvent, UserAgent, ALLOW, SUPPORTED};
use crate::message::{Message, Method, Refresher};
use crate::transaction::TransactionKey;

impl UserAgent {
    pub(super) fn on_in_dialog(&mut self, now: Instant, handle: CallHandle, key: TransactionKey, request: Message) {
        let method = request.method().unwrap_or(Method::Ack);
        let seq = request.cseq().map_or(0, |c| c.seq);
        let Some(call) = self.calls.get_mut(&handle) else { return };
        // CSeq must grow within a dialog (RFC 3261 §12.2.2): an older request is out of order.
        if call.remote_cseq.is_some_and(|last| seq < last) {
            let mut response = request.response(500, None);
            response.push("Retry-After", "1");
            self.respond(now, &key, response);
            return;
        }
        call.remote_cseq = Some(seq);
        match method {
            Method::Bye => {
                self.respond_code(now, &key, &request, 200);
                self.remove_call(handle);
                self.events.push_back(UaEvent::Ended { call: handle, reason: EndReason::RemoteHangup });
            }
            Method::Invite | Method::Update => self.on_reoffer(now, handle, key, request),
            Method::Info => {
                self.respond_code(now, &key, &request, 200);
                if let Some((digit, duration_ms)) = dtmf::parse_info(&request) {
                    self.events.push_back(UaEvent::Dtmf { call: handle, digit, duration_ms });
                }
            }
            Method::Prack => {
                let acked = request.rack().is_some_and(|rack| {
                    self.calls.get_mut(&handle).is_some_and(|call| {
                        let matches = call.rseq == rack.rseq;
                        if matches && call.retransmit.as_ref().is_some_and(|r| r.rseq.is_some()) {
                            call.retransmit = None;
                        }
                        matches
                    })
                });
                self.respond_code(now, &key, &request, if acked { 200 } else { 481 });
                let waiting = self.calls.get_mut(&handle).filter(|c| acked && c.answer_in_prack);
                if let Some(call) = waiting {
                    // The answer to the offer in our reliable 183; now the 200.
                    call.answer_in_prack = false;
                    let answer = (!request.body.is_empty()).then(|| request.body.clone());
                    if self.send_ok(now, handle, None).is_ok() {
                        self.events.push_back(UaEvent::Confirmed { call: handle, answer });
                    }
                }
            }
            Method::Options => {
                let mut response = request.response(200, None);
                response.push("Allow", ALLOW);
                response.push("Accept", "application/sdp");
                response.push("Supported", SUPPORTED);
                self.respond(now, &key, response);
            }
            _ => {
                let mut response = request.response(405, None);
                response.push("Allow", ALLOW);
                self.respond(now, &key, response);
            }
        }
    }

    pub(super) fn on_reoffer(&mut self, now: Instant, handle: CallHandle, key: TransactionKey, request: Message) {
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let is_invite = request.method() == Some(Method::Invite);
        if call.pending.is_some() || (is_invite && call.state != CallState::Confirmed) {
            // One offer at a time (RFC 3261 §14.2): glare.
            let response = request.response(491, None);
            self.respond(now, &key, response);
            return;
        }
        if let Some(contact) = request.contact() {
            call.remote_target = contact.uri;
        }
        // A refresh from the peer restarts the session timer (RFC 4028 §10).
        if let Some(asked) = request.session_expires() {
            // Here the peer is the UAC of the refreshing transaction.
            call.session = Some(Session {
                interval: asked.delta.max(self.config.min_se),
                we_refresh: asked.refresher == Some(Refresher::Uas),
            });
        }
        if request.body.is_empty() && !is_invite {
            // An UPDATE without SDP is a pure session refresh.
            let mut response = request.response(200, None);
            call.add_session_headers(&mut response, request.supports("timer"));
            call.restart_session_timer(now);
            self.respond(now, &key, response);
            return;
        }
        let offer = (!request.body.is_empty()).then(|| request.body.clone());
        call.pending = Some(Pending::Incoming { key, request });
        self.events.push_back(UaEvent::Reoffer { call: handle, offer });
    }

    pub(super) fn on_ack(&mut self, _now: Instant, ack: &Message) {
        let Some(tag) = ack.to().and_then(|t| t.tag().map(str::to_string)) else { return };
        let Some(handle) = self.dialogs.get(&(ack.call_id().unwrap_or_default().to_string(), tag)).copied() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let acked_seq = ack.cseq().map(|c| c.seq);
        let waiting = call.retransmit.as_ref().is_some_and(|r| r.rseq.is_none() && Some(r.cseq) == acked_seq);
        if waiting {
            call.retransmit = None;
        }
        let answer = (!ack.body.is_empty()).then(|| ack.body.clone());
        if call.state == CallState::WaitingAck {
            call.state = CallState::Confirmed;
            self.events.push_back(UaEvent::Confirmed { call: handle, answer });
        } else if waiting && answer.is_some() {
            // The answer to the offer we put in a 200 to an offerless re-INVITE.
            self.events.push_back(UaEvent::Confirmed { call: handle, answer });
        }
    }

    /// Answers the peer's re-INVITE or UPDATE offer: `Ok(sdp)` → 200 with our
    /// answer, `Err(code)` → refused (488), the old session stays.
    pub fn answer_reoffer(
        &mut self,
        now: Instant,
        call: CallHandle,
        answer: Result<Vec<u8>, u16>,
    ) -> Result<(), UaError> {
        let contact = self.call_contact(call, self.calls.get(&call).ok_or(UaError::NoCall)?.peer.transport);
        let t1 = self.config.timers.t1;
        let product = self.config.product.clone();
        let c = self.calls.get_mut(&call).ok_or(UaError::NoCall)?;
        let Some(Pending::Incoming { key, request }) = c.pending.take() else { return Err(UaError::WrongState) };
        let response = match answer {
            Ok(sdp) => {
                let mut ok = request.response(200, None);
                ok.push("Contact", contact);
                ok.push("Allow", ALLOW);
                ok.push("Supported", SUPPORTED);
                c.add_session_headers(&mut ok, request.supports("timer"));
                ok.push("Content-Type", "application/sdp");
                ok.body = sdp.clone();
                c.local_sdp = Some(sdp);
                c.restart_session_timer(now);
                if request.method() == Some(Method::Invite) {
                    let mut bytes = ok.clone();
                    bytes.push("Server", product.clone());
                    let seq = request.cseq().map_or(0, |s| s.seq);
                    c.retransmit = Some(Retransmit::new(now, t1, bytes.to_bytes(), seq, None));
                }
                ok
            }
            Err(code) => request.response(code.max(300), None),
        };
        self.respond(now, &key, response);
        self.collect();
        Ok(())
    }

    /// Sends a re-INVITE with a new offer (hold: sendonly; resume: sendrecv).
    /// The answer comes as [`UaEvent::ReofferAnswered`].
    pub fn reinvite(&mut self, now: Instant, call: CallHandle, offer: Vec<u8>) -> Result<(), UaError> {
        let c = self.calls.get(&call).ok_or(UaError::NoCall)?;
        if c.state != CallState::Confirmed || c.pending.is_some() {
            return Err(UaError::WrongState);
        }
        self.send_reinvite(now, call, offer, false);
        self.collect();
        Ok(())
    }

    pub(super) fn send_reinvite(&mut self, now: Instant, handle: CallHandle, offer: Vec<u8>, refresh: bool) {
        let Some(mut request) = self.in_dialog_request(handle, Method::Invite) else { return };
        let session_expires = self.config.session_expires;
        let Some(c) = self.calls.get_mut(&handle) else { return };
        request.push("Allow", ALLOW);
        request.push("Supported", SUPPORTED);
        // We are the UAC of this transaction: "uac" means us.
        let interval = c.session.as_ref().map_or(session_expires, |s| s.interval);
        let refresher = if c.session.as_ref().is_some_and(|s| s.we_refresh) { "uac" } else { "uas" };
        if c.session.is_some() {
            request.push("Session-Expires", format!("{interval};refresher={refresher}"));
        }
        request.push("Content-Type", "application/sdp");
        request.body = offer.clone();
        c.local_sdp = Some(offer);
        c.pending = Some(if refresh { Pending::Refresh } else { Pending::Outgoing });
        let peer = c.peer;
        if let Some(key) = self.transactions.send_request(now, request, peer) {
            self.requests.insert(key, (handle, Purpose::Reinvite));
        }
    }

    /// Refreshes the session: UPDATE when the peer allows it (no SDP needed),
    /// else a re-INVITE with our current SDP unchanged.
    pub(super) fn refresh_session(&mut self, now: Instant, handle: CallHandle) {
        let Some(c) = self.calls.get_mut(&handle) else { return };
        if let (Some(timer), Some(session)) = (c.session_timer.as_mut(), c.session.as_ref()) {
            // Until the refresh completes, the session expires at the end of the interval.
            timer.refresh = false;
            timer.at = now + Duration::from_secs(u64::from(session.interval / 2));
        }
        if c.pending.is_some() {
            return;
        }
        if c.peer_allows_update {
            let Some(mut update) = self.in_dialog_request(handle, Method::Update) else { return };
            let Some(c) = self.calls.get_mut(&handle) else { return };
            let interval = c.session.as_ref().map_or(self.config.session_expires, |s| s.interval);
            update.push("Session-Expires", format!("{interval};refresher=uac"));
            update.push("Supported", SUPPORTED);
            c.pending = Some(Pending::Refresh);
            let peer = c.peer;
            if let Some(key) = self.transactions.send_request(now, update, peer) {
                self.requests.insert(key, (handle, Purpose::Update));
            }
        } else {
            let sdp = c.local_sdp.clone().unwrap_or_default();
            self.send_reinvite(now, handle, sdp, true);
        }
    }
}
