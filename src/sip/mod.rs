//! SIP for the call bridge: the sans-IO core is the `confero-sip` crate; this
//! module holds what needs tokio or the media engine's types — the transport
//! shell that owns the user agent (`transport`) and the conversion of
//! negotiated SDP into the media engine's endpoint settings (`media`).

pub mod media;
pub mod transport;
