//! The scheduler (CMS 3.3's): meetings with recurrence in IANA time zones,
//! their JSON API on a listener of their own, temporary spaces made through
//! the call bridge's API, email invitations with iCalendar, and the daily
//! clean-up of temporary spaces.
//!
//! The core is pure and unit-tested: [`recurrence`] (expansion in local
//! time), [`meeting`] (the JSON model, refusals naming the field), [`ical`]
//! (iTIP requests and cancellations). The shells around it move bytes.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod c2w;
pub mod callbridge;
pub mod cleanup;
pub mod clock;
pub mod http;
pub mod ical;
pub mod invitation;
pub mod mail;
pub mod meeting;
pub mod recurrence;
pub mod service;
pub mod timed_logging;
