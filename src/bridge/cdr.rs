//! Call detail records as typed events. The bridge says what happened
//! ([`CdrRecord`]); the shell turns each into the CMS XML its receivers
//! expect ([`CdrRecord::to_xml`]) and queues it for delivery. Tests read the
//! typed events.

use std::time::Duration;

use confero_api::bridge::{Direction, LegState};
use confero_api::xml::XmlWriter;
use uuid::Uuid;

/// What kind of leg a record is about, in CMS words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegKind {
    /// A SIP call.
    Sip,
    /// A browser through the web bridge (CMS writes `acano` for its own
    /// clients, the web app among them).
    Web,
}

impl LegKind {
    fn as_str(self) -> &'static str {
        match self {
            LegKind::Sip => "sip",
            LegKind::Web => "acano",
        }
    }
}

/// One call detail record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdrRecord {
    /// A call began.
    CallStart {
        /// The call.
        call: Uuid,
        /// Its name.
        name: String,
        /// Its space's `meetingScheduler`.
        owner_name: Option<String>,
        /// Its space, if any.
        co_space: Option<Uuid>,
        /// Correlates the records of one conference.
        call_correlator: Uuid,
        /// Its space's `cdrTag`.
        cdr_tag: Option<String>,
    },
    /// A call ended.
    CallEnd {
        /// The call.
        call: Uuid,
        /// Legs it had that have ended.
        call_legs_completed: usize,
        /// Most legs it had at once.
        call_legs_max_active: usize,
        /// How long it ran.
        duration: Duration,
    },
    /// A leg joined a call (or began to).
    CallLegStart {
        /// The leg.
        leg: Uuid,
        /// Its call.
        call: Uuid,
        /// The remote party's display name.
        display_name: String,
        /// The remote party's address.
        remote_party: String,
        /// Which way it was set up.
        direction: Direction,
        /// What carries it.
        kind: LegKind,
    },
    /// A leg's state changed.
    CallLegUpdate {
        /// The leg.
        leg: Uuid,
        /// Its new state.
        state: LegState,
        /// Whether its media is encrypted (told once it is connected).
        encrypted_media: bool,
    },
    /// A leg ended.
    CallLegEnd {
        /// The leg.
        leg: Uuid,
        /// Why, in CMS words (`remoteTeardown`, `localTeardown`, `timeout`, ...).
        reason: &'static str,
        /// How long it lasted.
        duration: Duration,
    },
}

impl CdrRecord {
    /// The record's `type` attribute.
    pub fn record_type(&self) -> &'static str {
        match self {
            CdrRecord::CallStart { .. } => "callStart",
            CdrRecord::CallEnd { .. } => "callEnd",
            CdrRecord::CallLegStart { .. } => "callLegStart",
            CdrRecord::CallLegUpdate { .. } => "callLegUpdate",
            CdrRecord::CallLegEnd { .. } => "callLegEnd",
        }
    }

    /// The record's content, as CMS writes it inside `<record>`.
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new();
        match self {
            CdrRecord::CallStart { call, name, owner_name, co_space, call_correlator, cdr_tag } => {
                w.open("call", &[("id", &call.to_string())]).text("name", name);
                if let Some(o) = owner_name {
                    w.text("ownerName", o);
                }
                w.text("callType", if co_space.is_some() { "coSpace" } else { "adHoc" });
                if let Some(s) = co_space {
                    w.text("coSpace", &s.to_string());
                }
                w.text("callCorrelator", &call_correlator.to_string());
                if let Some(t) = cdr_tag {
                    w.text("cdrTag", t);
                }
                w.close("call");
            }
            CdrRecord::CallEnd { call, call_legs_completed, call_legs_max_active, duration } => {
                w.open("call", &[("id", &call.to_string())])
                    .text("callLegsCompleted", &call_legs_completed.to_string())
                    .text("callLegsMaxActive", &call_legs_max_active.to_string())
                    .text("durationSeconds", &duration.as_secs().to_string())
                    .close("call");
            }
            CdrRecord::CallLegStart { leg, call, display_name, remote_party, direction, kind } => {
                w.open("callLeg", &[("id", &leg.to_string())])
                    .text("displayName", display_name)
                    .text("remoteParty", remote_party)
                    .text("type", kind.as_str())
                    .text("direction", direction.as_str())
                    .text("call", &call.to_string())
                    .close("callLeg");
            }
            CdrRecord::CallLegUpdate { leg, state, encrypted_media } => {
                w.open("callLeg", &[("id", &leg.to_string())]).text("state", state.as_str());
                if *state == LegState::Connected {
                    w.text("encryptedMedia", if *encrypted_media { "true" } else { "false" });
                }
                w.close("callLeg");
            }
            CdrRecord::CallLegEnd { leg, reason, duration } => {
                w.open("callLeg", &[("id", &leg.to_string())])
                    .text("reason", reason)
                    .text("durationSeconds", &duration.as_secs().to_string())
                    .close("callLeg");
            }
        }
        let xml = w.finish();
        // Records are elements inside `<records>`, without a declaration.
        xml.strip_prefix("<?xml version=\"1.0\"?>").map(str::to_string).unwrap_or(xml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_the_cms_elements_without_a_declaration() {
        let leg = Uuid::from_u128(1);
        let update = CdrRecord::CallLegUpdate { leg, state: LegState::Connected, encrypted_media: true };
        assert_eq!(update.record_type(), "callLegUpdate");
        assert_eq!(
            update.to_xml(),
            format!("<callLeg id=\"{leg}\"><state>connected</state><encryptedMedia>true</encryptedMedia></callLeg>")
        );
        let end = CdrRecord::CallLegEnd { leg, reason: "timeout", duration: Duration::from_millis(2500) };
        assert_eq!(
            end.to_xml(),
            format!("<callLeg id=\"{leg}\"><reason>timeout</reason><durationSeconds>2</durationSeconds></callLeg>")
        );
    }
}
