//! Calls out (UAC): the INVITE, its provisional and final responses, the
//! ACK of a 2xx (re-sent when the 2xx repeats), PRACK for a reliable 18x, and
//! CANCEL once the callee has said anything.

use std::time::Instant;

use super::dialog::{Call, CallState, Purpose, Role};
use super::{random_token, CallHandle, Dial, UaError, UaEvent, UserAgent, ALLOW, SUPPORTED};
use crate::message::{Message, Method, SipUri};
use crate::transaction::{TransactionKey, Transport};

impl UserAgent {
    pub(super) fn on_invite_response(
        &mut self,
        now: Instant,
        handle: CallHandle,
        key: TransactionKey,
        response: Message,
    ) {
        let code = response.code().unwrap_or(500);
        let min_se = self.config.min_se;
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let sdp = (!response.body.is_empty()).then(|| response.body.clone());
        match code {
            100 => {
                call.state = CallState::Early;
                if call.cancelled {
                    self.send_cancel(now, handle);
                }
            }
            101..=199 => {
                if let Some(tag) = response.to().and_then(|t| t.tag().map(str::to_string)) {
                    call.remote_tag.get_or_insert(tag);
                }
                call.state = CallState::Early;
                if call.cancelled {
                    self.send_cancel(now, handle);
                    return;
                }
                if response.requires("100rel") {
                    if let Some(rseq) = response.rseq() {
                        self.send_prack(now, handle, &response, rseq);
                    }
                }
                self.events.push_back(UaEvent::Ringing { call: handle, code, sdp });
            }
            200..=299 => {
                if call.state == CallState::Confirmed {
                    // A retransmission (or a fork): ACK it again.
                    self.send_ack_for_2xx(handle, &response);
                    return;
                }
                call.remote_tag = response.to().and_then(|t| t.tag().map(str::to_string));
                if let Some(contact) = response.contact() {
                    call.remote_target = contact.uri;
                }
                call.route_set = response.list("Record-Route").map(str::to_string).collect::<Vec<_>>();
                call.route_set.reverse();
                call.state = CallState::Confirmed;
                call.peer_allows_update |= response.list("Allow").any(|m| m.eq_ignore_ascii_case("UPDATE"));
                call.adopt_session_from_response(&response, min_se);
                call.restart_session_timer(now);
                let cancelled = call.cancelled;
                self.send_ack_for_2xx(handle, &response);
                if cancelled {
                    // The 2xx crossed our CANCEL: the call is up, so end it (RFC 3261 §15).
                    self.send_bye(now, handle);
                    return;
                }
                self.events.push_back(UaEvent::Answered { call: handle, sdp });
            }
            422 if !call.cancelled && call.state == CallState::Incoming => {
                // Our session interval is below the callee's Min-SE: ask again with its minimum (RFC 4028 §7.4).
                let min_se = response.min_se().filter(|m| *m > 0);
                let retried = min_se.is_some_and(|min_se| self.retry_invite(now, handle, &key, min_se));
                if !retried {
                    self.requests.remove(&key);
                    self.remove_call(handle);
                    let reason = "Session Interval Too Small".to_string();
                    self.events.push_back(UaEvent::Failed { call: handle, code, reason });
                }
            }
            _ => {
                self.requests.remove(&key);
                let cancelled = call.cancelled;
                let reason = match &response.start {
                    crate::message::StartLine::Response { reason, .. } => reason.clone(),
                    _ => String::new(),
                };
                self.remove_call(handle);
                if !cancelled {
                    self.events.push_back(UaEvent::Failed { call: handle, code, reason });
                }
            }
        }
    }

    /// Sends the INVITE again with a larger session interval, once: a new
    /// branch and the next CSeq in the same dialog-to-be.
    fn retry_invite(&mut self, now: Instant, handle: CallHandle, old_key: &TransactionKey, min_se: u32) -> bool {
        let Some(call) = self.calls.get(&handle) else { return false };
        let Some(mut invite) = call.invite.clone() else { return false };
        if invite.get("Session-Expires").is_some_and(|se| se.trim() == min_se.to_string()) {
            return false; // already asked with that interval
        }
        let transport = call.peer.transport;
        let peer = call.peer;
        let seq = call.local_cseq + 1;
        let via = self.via(transport);
        invite.set("Via", via);
        invite.set("CSeq", format!("{seq} INVITE"));
        invite.set("Session-Expires", min_se.to_string());
        invite.set("Min-SE", min_se.to_string());
        self.requests.remove(old_key);
        let Some(key) = self.transactions.send_request(now, invite.clone(), peer) else { return false };
        self.requests.insert(key.clone(), (handle, Purpose::Invite));
        if let Some(call) = self.calls.get_mut(&handle) {
            call.local_cseq = seq;
            call.invite = Some(invite);
            call.invite_key = Some(key);
        }
        true
    }

    /// A 2xx retransmission after the INVITE transaction ended: its ACK was lost.
    pub(super) fn on_stray_response(&mut self, response: &Message) {
        if response.method() != Some(Method::Invite) || !response.code().is_some_and(|c| (200..300).contains(&c)) {
            return;
        }
        let Some(tag) = response.from().and_then(|f| f.tag().map(str::to_string)) else { return };
        let dialog = (response.call_id().unwrap_or_default().to_string(), tag);
        if let Some(handle) = self.dialogs.get(&dialog).copied() {
            self.send_ack_for_2xx(handle, response);
        }
    }

    /// Starts an outgoing call.
    pub fn dial(&mut self, now: Instant, dial: Dial) -> Result<CallHandle, UaError> {
        let target = SipUri::parse(&dial.target).ok_or(UaError::BadTarget)?;
        let _ = target;
        let transport = dial.destination.transport;
        let handle = CallHandle(self.next_handle);
        self.next_handle += 1;
        let tag = random_token(&mut *self.rng, 4);
        let call_id = format!("{}@confero", random_token(&mut *self.rng, 12));
        let from = match &dial.display_name {
            Some(name) => format!("\"{}\" <{}>", name.replace(['"', '\\'], ""), dial.from),
            None => format!("<{}>", dial.from),
        };
        let to = format!("<{}>", dial.target);
        let mut invite = Message::request(Method::Invite, dial.target.clone());
        invite.push("Via", self.via(transport));
        invite.push("Max-Forwards", "70");
        invite.push("From", format!("{from};tag={tag}"));
        invite.push("To", to.clone());
        invite.push("Call-ID", call_id.clone());
        invite.push("CSeq", "1 INVITE");
        if let Some(route) = &dial.route {
            invite.push("Route", route.clone());
        }
        let local_contact = dial.contact_domain.as_ref().map(|domain| {
            let scheme = if transport == Transport::Tls { "sips" } else { "sip" };
            format!("<{scheme}:{}@{domain}>", self.config.contact_user)
        });
        invite.push("Contact", local_contact.clone().unwrap_or_else(|| self.contact(transport)));
        invite.push("Allow", ALLOW);
        invite.push("Supported", SUPPORTED);
        invite.push("Session-Expires", self.config.session_expires.to_string());
        invite.push("Min-SE", self.config.min_se.to_string());
        invite.push("User-Agent", self.config.product.clone());
        invite.push("Content-Type", "application/sdp");
        invite.body = dial.offer.clone();
        let call = Call {
            local_contact: local_contact.clone(),
            role: Role::Uac,
            state: CallState::Incoming,
            peer: dial.destination,
            call_id: call_id.clone(),
            local_tag: tag.clone(),
            remote_tag: None,
            local_header: from,
            remote_header: to,
            local_cseq: 1,
            remote_cseq: None,
            remote_target: dial.target.clone(),
            route_set: dial.route.into_iter().collect(),
            invite: Some(invite.clone()),
            invite_key: None,
            reliable_provisional: false,
            answer_in_prack: false,
            rseq: 0,
            retransmit: None,
            session: None,
            session_timer: None,
            peer_allows_update: false,
            pending: None,
            local_sdp: Some(dial.offer),
            cancelled: false,
            cancel_deadline: None,
            ack: None,
            dtmf_out: Default::default(),
        };
        self.calls.insert(handle, call);
        self.dialogs.insert((call_id, tag), handle);
        if let Some(key) = self.transactions.send_request(now, invite, dial.destination) {
            if let Some(c) = self.calls.get_mut(&handle) {
                c.invite_key = Some(key.clone());
            }
            self.requests.insert(key, (handle, Purpose::Invite));
        }
        self.collect();
        Ok(handle)
    }

    pub(super) fn send_ack_for_2xx(&mut self, handle: CallHandle, response: &Message) {
        let seq = response.cseq().map_or(1, |c| c.seq);
        let Some(call) = self.calls.get(&handle) else { return };
        if let Some((acked, ack)) = call.ack.as_ref() {
            if *acked == seq {
                let (ack, peer) = (ack.clone(), call.peer);
                self.transactions.send_stateless(&ack, peer);
                return;
            }
        }
        let Some(mut ack) = self.in_dialog_request(handle, Method::Ack) else { return };
        ack.set("CSeq", format!("{seq} ACK"));
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let peer = call.peer;
        self.transactions.send_stateless(&ack, peer);
        call.ack = Some((seq, ack));
    }

    pub(super) fn send_prack(&mut self, now: Instant, handle: CallHandle, response: &Message, rseq: u32) {
        let Some(cseq) = response.cseq() else { return };
        let Some(mut prack) = self.in_dialog_request(handle, Method::Prack) else { return };
        prack.push("RAck", format!("{rseq} {} {}", cseq.seq, cseq.method.as_str()));
        let Some(peer) = self.calls.get(&handle).map(|c| c.peer) else { return };
        if let Some(key) = self.transactions.send_request(now, prack, peer) {
            self.requests.insert(key, (handle, Purpose::Prack));
        }
    }

    pub(super) fn send_cancel(&mut self, now: Instant, handle: CallHandle) {
        let give_up = now + self.config.timers.t1 * 64;
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let Some(invite) = call.invite.clone() else { return };
        call.cancel_deadline = Some(give_up);
        let peer = call.peer;
        let mut cancel = Message::request(Method::Cancel, invite.request_uri().unwrap_or_default());
        for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
            if let Some(value) = invite.list(name).next().filter(|_| name == "Via").or(invite.get(name)) {
                cancel.push(name, value);
            }
        }
        for route in invite.all("Route") {
            cancel.push("Route", route);
        }
        cancel.push("CSeq", format!("{} CANCEL", invite.cseq().map_or(1, |c| c.seq)));
        if let Some(key) = self.transactions.send_request(now, cancel, peer) {
            self.requests.insert(key, (handle, Purpose::Cancel));
        }
    }
}
