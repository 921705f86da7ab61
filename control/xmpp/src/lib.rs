//! XMPP for Confero: the sans-IO XML stream core ([`stream`], [`element`]),
//! the call bridge's side of XEP-0114 ([`component`], sans-IO, and
//! [`link`], its tokio shell), as CMS attaches its call bridge to an XMPP
//! server, and our XMPP server ([`server`]: components, and clients whose
//! logins the call bridge decides).
//!
//! The cores take bytes and return events and bytes to send; they read no
//! clock and open no socket, which is what makes the stream parser a fuzz
//! target and lets the handshake be tested without a server.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod component;
pub mod element;
pub mod link;
pub mod server;
pub mod service;
pub mod stream;

/// The namespace of the stream elements (`stream:stream`, `stream:error`).
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
/// The default namespace of a component's stream (XEP-0114).
pub const NS_COMPONENT: &str = "jabber:component:accept";
/// The namespace of stream error conditions.
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
