//! What the call bridge answers on its component link: service discovery
//! of the component itself; any other request is refused
//! `service-unavailable`, as RFC 6120 §8.4 asks of an entity that does not
//! understand it.

use crate::element::Element;
use crate::link::{error_reply, ComponentConfig, StanzaHandler};
use crate::NS_COMPONENT;

/// XEP-0030 service discovery: what an entity is.
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// The call bridge's answers.
#[derive(Debug, Default)]
pub struct CallBridgeService;

impl StanzaHandler for CallBridgeService {
    fn handle(&self, _config: &ComponentConfig, stanza: &Element) -> Vec<Element> {
        if stanza.name != "iq" {
            return Vec::new();
        }
        if stanza.get_attr("type") == Some("get") && stanza.find("query", NS_DISCO_INFO).is_some() {
            let query = Element::new("query", NS_DISCO_INFO)
                .child(
                    Element::new("identity", NS_DISCO_INFO)
                        .attr("category", "conference")
                        .attr("type", "text")
                        .attr("name", "Confero call bridge"),
                )
                .child(Element::new("feature", NS_DISCO_INFO).attr("var", NS_DISCO_INFO));
            return vec![result(stanza).child(query)];
        }
        error_reply(stanza, "cancel", "service-unavailable").into_iter().collect()
    }
}

/// The `result` IQ answering `iq`.
pub fn result(iq: &Element) -> Element {
    let mut reply = Element::new("iq", NS_COMPONENT).attr("type", "result");
    for (ours, theirs) in [("id", "id"), ("to", "from"), ("from", "to")] {
        if let Some(v) = iq.get_attr(theirs) {
            reply.set_attr(ours, v);
        }
    }
    reply
}
