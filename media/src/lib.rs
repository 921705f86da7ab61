//! Confero's media core. It knows nothing of SIP, HTTP, XML or the database
//! (see ARCHITECTURE.md); the call bridge in `src/` drives it.
//!
//! Everything here but [`runtime`] is sans-IO: parsers take bytes, state
//! machines take the current time as an argument, and nothing opens a socket
//! or reads a clock. That keeps the tests deterministic and makes every
//! parser a fuzz target. `runtime` is the thin shell that does: worker
//! threads, UDP sockets and the clock.

#![warn(missing_docs)]

pub mod codec;
pub mod engine;
pub mod fecc;
pub mod jitter;
pub mod mixer;
pub mod rtcp;
pub mod rtp;
pub mod runtime;
pub mod srtp;
pub mod transport;
pub mod video;
