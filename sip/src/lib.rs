//! Confero's SIP core, sans-IO: bytes and the time go in, bytes to send,
//! events and the next timeout come out. Nothing here opens a socket or reads
//! a clock, so every parser is a fuzz target and every state machine is tested
//! in virtual time. The tokio shells live in the `confero` binary (`src/sip/`).
//!
//! - [`message`]: SIP messages (RFC 3261 §7, §20), parse with limits, write.
//! - [`transaction`]: RFC 3261 §17 transactions with the RFC 6026 fixes.
//! - [`ua`]: the user agent the call bridge drives: calls in and out.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod message;
pub mod resolve;
pub mod transaction;
pub mod ua;
