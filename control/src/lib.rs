//! Confero's control plane: the CMS REST API, the configuration store, API
//! users, CDRs. It knows nothing of RTP; it reaches live conferences only
//! through the [`bridge::BridgeHandle`] trait, which the binary implements.

pub mod alarms;
pub mod api;
pub mod bridge;
pub mod cdr;
pub mod schema;
pub mod store;
pub mod tls;
pub mod users;
