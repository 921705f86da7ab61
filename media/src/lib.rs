//! Confero's media core. It knows nothing of SIP, HTTP, XML or the database
//! (see ARCHITECTURE.md); the call bridge in `src/` drives it.
