//! The Confero call bridge as a library: live calls and legs (`bridge`),
//! the dial plan over the configuration store (`dialplan`) and SIP
//! signalling (`sip`). This is the one place that knows control and media
//! together; the `confero` binary only reads settings and wires these to
//! the API, the store and the media runtime.

pub mod bridge;
pub mod dialplan;
pub mod sip;
#[cfg(test)]
mod testing;
