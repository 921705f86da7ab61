//! C2W: call bridge ↔ web bridge links (see `docs/c2w.md`). A WebSocket over
//! TLS where both ends present a certificate and check the other's against a
//! trust bundle; the call bridge connects, the web bridge greets with its
//! guid, then the web bridge asks and the call bridge answers.

pub mod client;
pub mod frame;
pub mod server;
