//! The process's open-file limit (`RLIMIT_NOFILE`), raised at start.
//!
//! Why: the usual soft limit is 1,024, while every API and SIP connection,
//! media socket and database handle is a descriptor; with 1,100 idle SIP
//! connections the API could accept nothing ("Too many open files"). The
//! soft limit may be raised to the hard limit without privileges, so it is;
//! the caps of the listeners are then derived from what the process got.

/// Raises the soft open-file limit to the hard limit and returns the soft
/// limit in force afterwards (the old one if raising failed).
pub fn raise_to_hard_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads one rlimit through a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(raised.rlim_cur);
        }
        tracing::warn!("could not raise the open-file limit: {}", std::io::Error::last_os_error());
    }
    Ok(limit.rlim_cur)
}
