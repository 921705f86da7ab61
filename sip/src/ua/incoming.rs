//! Calls in (UAS): a new INVITE becomes a call after the checks that can
//! refuse it (overload, Require, body type, session interval); then the
//! bridge rings, accepts or rejects; a CANCEL ends it before the answer.

use std::time::Instant;

use super::dialog::{Call, CallState, Retransmit, Role, Session};
use super::{random_token, CallHandle, EndReason, IncomingCall, UaError, UaEvent, UserAgent, ALLOW, SUPPORTED};
use crate::message::{Message, Refresher, SessionExpires, SipUri};
use crate::transaction::{Peer, TransactionKey};

impl UserAgent {
    pub(super) fn on_invite(&mut self, now: Instant, key: TransactionKey, request: Message, source: Peer) {
        let tag = random_token(&mut *self.rng, 4);
        if let Some(retry_after) = self.overload_retry_after.or_else(|| {
            // At capacity: ask the caller to come back in a few seconds.
            (self.calls.len() >= self.config.max_calls).then_some(5)
        }) {
            let mut response = request.response(503, Some(&tag));
            response.push("Retry-After", retry_after.to_string());
            self.respond(now, &key, response);
            return;
        }
        let unsupported: Vec<&str> = request
            .list("Require")
            .filter(|t| !["100rel", "timer"].iter().any(|s| t.eq_ignore_ascii_case(s)))
            .collect();
        if !unsupported.is_empty() {
            let mut response = request.response(420, Some(&tag));
            response.push("Unsupported", unsupported.join(", "));
            self.respond(now, &key, response);
            return;
        }
        if !request.body.is_empty() && request.content_type().as_deref() != Some("application/sdp") {
            let mut response = request.response(415, Some(&tag));
            response.push("Accept", "application/sdp");
            self.respond(now, &key, response);
            return;
        }
        let session_timer = match self.grant_session_interval(&request) {
            Ok(timer) => timer,
            Err(min_se) => {
                let mut response = request.response(422, Some(&tag));
                response.push("Min-SE", min_se.to_string());
                self.respond(now, &key, response);
                return;
            }
        };
        let (Some(from), Some(to), Some(call_id)) = (request.from(), request.to(), request.call_id()) else { return };
        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let uri = request.request_uri().unwrap_or_default().to_string();
        let user = SipUri::parse(&uri).and_then(|u| u.user);
        let call = Call {
            local_contact: None,
            role: Role::Uas,
            state: CallState::Incoming,
            // Symmetric signalling: in-dialog requests and 2xx retransmissions go where responses go.
            peer: crate::transaction::response_peer(&request, source),
            call_id: call_id.to_string(),
            local_tag: tag.clone(),
            remote_tag: from.tag().map(str::to_string),
            local_header: to.raw.clone(),
            remote_header: from.raw.clone(),
            local_cseq: self.rng.next_u32() % 10_000 + 1,
            remote_cseq: request.cseq().map(|c| c.seq),
            remote_target: request.contact().map_or_else(|| from.uri.clone(), |c| c.uri),
            route_set: request.list("Record-Route").map(str::to_string).collect(),
            invite: Some(request.clone()),
            invite_key: Some(key.clone()),
            reliable_provisional: request.requires("100rel"),
            rseq: 0,
            answer_in_prack: false,
            retransmit: None,
            session: session_timer
                .map(|se| Session { interval: se.delta, we_refresh: se.refresher == Some(Refresher::Uas) }),
            session_timer: None,
            peer_allows_update: request.list("Allow").any(|m| m.eq_ignore_ascii_case("UPDATE")),
            pending: None,
            local_sdp: None,
            cancelled: false,
            cancel_deadline: None,
            ack: None,
            dtmf_out: Default::default(),
        };
        self.dialogs.insert((call.call_id.clone(), tag), handle);
        self.invites.insert(key, handle);
        self.calls.insert(handle, call);
        let offer = (!request.body.is_empty()).then(|| request.body.clone());
        let incoming = IncomingCall { call: handle, user, request_uri: uri, from, to, offer, source };
        self.events.push_back(UaEvent::IncomingCall(Box::new(incoming)));
    }

    /// The session interval for an incoming INVITE (RFC 4028 §9): `Err(min)`
    /// when the asked interval is below our Min-SE (answer 422); `None` when
    /// the caller knows nothing of session timers.
    pub(super) fn grant_session_interval(&self, request: &Message) -> Result<Option<SessionExpires>, u32> {
        let asked = request.session_expires();
        let min_se = self.config.min_se.max(request.min_se().unwrap_or(0));
        if let Some(asked) = asked {
            if asked.delta < self.config.min_se {
                return Err(self.config.min_se);
            }
        }
        let supports = request.supports("timer");
        let delta = asked.map_or(self.config.session_expires, |a| a.delta.min(self.config.session_expires)).max(min_se);
        let refresher = match asked.and_then(|a| a.refresher) {
            Some(r) => r,
            None if supports => Refresher::Uac,
            None => Refresher::Uas,
        };
        if asked.is_none() && !supports {
            return Ok(None);
        }
        Ok(Some(SessionExpires { delta, refresher: Some(refresher) }))
    }

    pub(super) fn on_cancel(&mut self, now: Instant, key: TransactionKey, cancel: Message) {
        let invite_key = TransactionKey::invite_cancelled_by(&cancel);
        let handle = invite_key.as_ref().and_then(|k| self.invites.get(k).copied());
        let Some(handle) = handle else {
            // Already answered (the transaction lives on): 200, and the CANCEL has no effect (RFC 3261 §9.2).
            let answered = invite_key.is_some_and(|k| self.transactions.contains(&k));
            self.respond_code(now, &key, &cancel, if answered { 200 } else { 481 });
            return;
        };
        let tag = self.calls.get(&handle).map(|c| c.local_tag.clone());
        let ok = cancel.response(200, tag.as_deref());
        self.respond(now, &key, ok);
        let Some(call) = self.calls.get(&handle) else { return };
        if !matches!(call.state, CallState::Incoming | CallState::Early) {
            return; // already answered: the CANCEL has no effect (RFC 3261 §9.2)
        }
        if let (Some(invite), Some(invite_key)) = (call.invite.clone(), call.invite_key.clone()) {
            let response = invite.response(487, Some(&call.local_tag));
            self.respond(now, &invite_key, response);
        }
        self.remove_call(handle);
        self.events.push_back(UaEvent::Ended { call: handle, reason: EndReason::Cancelled });
    }

    /// Sends 180 Ringing: reliably (RFC 3262) only when the caller requires it.
    pub fn ring(&mut self, now: Instant, call: CallHandle) -> Result<(), UaError> {
        let contact = self.contact(self.calls.get(&call).ok_or(UaError::NoCall)?.peer.transport);
        let t1 = self.config.timers.t1;
        let c = self.calls.get_mut(&call).ok_or(UaError::NoCall)?;
        if !matches!(c.state, CallState::Incoming | CallState::Early) {
            return Err(UaError::WrongState);
        }
        let (Some(invite), Some(key)) = (c.invite.clone(), c.invite_key.clone()) else {
            return Err(UaError::WrongState);
        };
        let mut ringing = invite.response(180, Some(&c.local_tag));
        ringing.push("Contact", contact);
        if c.reliable_provisional {
            c.rseq += 1;
            ringing.push("Require", "100rel");
            ringing.push("RSeq", c.rseq.to_string());
            let bytes = {
                let mut r = ringing.clone();
                r.push("Server", self.config.product.clone());
                r.to_bytes()
            };
            c.retransmit = Some(Retransmit::new(now, t1, bytes, invite.cseq().map_or(0, |s| s.seq), Some(c.rseq)));
        }
        c.state = CallState::Early;
        self.respond(now, &key, ringing);
        Ok(())
    }

    /// Answers an incoming call with 200 and our SDP; retransmitted until ACK.
    /// A late offer (an INVITE without SDP) from a caller that supports
    /// 100rel gets our offer in a reliable 183 instead; the answer comes in
    /// its PRACK, and the 200 (without SDP) follows it (RFC 3262 §5).
    pub fn accept(&mut self, now: Instant, call: CallHandle, sdp: Vec<u8>) -> Result<(), UaError> {
        let contact = self.contact(self.calls.get(&call).ok_or(UaError::NoCall)?.peer.transport);
        let t1 = self.config.timers.t1;
        let product = self.config.product.clone();
        let c = self.calls.get_mut(&call).ok_or(UaError::NoCall)?;
        if !matches!(c.state, CallState::Incoming | CallState::Early) || c.role != Role::Uas || c.answer_in_prack {
            return Err(UaError::WrongState);
        }
        let (Some(invite), Some(key)) = (c.invite.clone(), c.invite_key.clone()) else {
            return Err(UaError::WrongState);
        };
        let reliable = c.reliable_provisional || invite.supports("100rel");
        if invite.body.is_empty() && reliable && c.retransmit.is_none() {
            c.rseq += 1;
            let mut progress = invite.response(183, Some(&c.local_tag));
            progress.push("Contact", contact);
            progress.push("Allow", ALLOW);
            progress.push("Require", "100rel");
            progress.push("RSeq", c.rseq.to_string());
            progress.push("Content-Type", "application/sdp");
            progress.body = sdp.clone();
            let bytes = {
                let mut r = progress.clone();
                r.push("Server", product);
                r.to_bytes()
            };
            c.retransmit = Some(Retransmit::new(now, t1, bytes, invite.cseq().map_or(0, |s| s.seq), Some(c.rseq)));
            c.local_sdp = Some(sdp);
            c.answer_in_prack = true;
            c.state = CallState::Early;
            self.respond(now, &key, progress);
            return Ok(());
        }
        self.send_ok(now, call, Some(sdp))
    }

    /// The 200 to the INVITE (with our SDP unless offer and answer are
    /// done already), retransmitted until the ACK.
    pub(super) fn send_ok(&mut self, now: Instant, call: CallHandle, sdp: Option<Vec<u8>>) -> Result<(), UaError> {
        let contact = self.contact(self.calls.get(&call).ok_or(UaError::NoCall)?.peer.transport);
        let t1 = self.config.timers.t1;
        let product = self.config.product.clone();
        let c = self.calls.get_mut(&call).ok_or(UaError::NoCall)?;
        let (Some(invite), Some(key)) = (c.invite.clone(), c.invite_key.clone()) else {
            return Err(UaError::WrongState);
        };
        let mut ok = invite.response(200, Some(&c.local_tag));
        ok.push("Contact", contact);
        ok.push("Allow", ALLOW);
        ok.push("Supported", SUPPORTED);
        c.add_session_headers(&mut ok, invite.supports("timer"));
        if let Some(sdp) = sdp {
            ok.push("Content-Type", "application/sdp");
            ok.body = sdp.clone();
            c.local_sdp = Some(sdp);
        }
        ok.push("Server", product);
        c.retransmit = Some(Retransmit::new(now, t1, ok.to_bytes(), invite.cseq().map_or(0, |s| s.seq), None));
        c.state = CallState::WaitingAck;
        c.restart_session_timer(now);
        self.transactions.send_response(now, &key, &ok);
        self.invites.remove(&key);
        self.collect();
        Ok(())
    }

    /// Refuses an incoming call (486, 404, 488, 603, ...).
    pub fn reject(&mut self, now: Instant, call: CallHandle, code: u16) -> Result<(), UaError> {
        let c = self.calls.get(&call).ok_or(UaError::NoCall)?;
        if !matches!(c.state, CallState::Incoming | CallState::Early) || c.role != Role::Uas || code < 300 {
            return Err(UaError::WrongState);
        }
        let (Some(invite), Some(key)) = (c.invite.clone(), c.invite_key.clone()) else {
            return Err(UaError::WrongState);
        };
        let response = invite.response(code, Some(&c.local_tag));
        self.respond(now, &key, response);
        self.remove_call(call);
        self.collect();
        Ok(())
    }
}
