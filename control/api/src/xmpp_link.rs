//! The state of this call bridge's XEP-0114 link to its XMPP server, as
//! `system/status` shows it in `<xmppStatus>`. The component client (in
//! `confero-xmpp`) writes it; the API only reads. Kept here so that the API
//! does not depend on the XMPP crate.

use std::sync::Mutex;
use std::time::Instant;

/// The alarm raised while the link is configured but not up (subject
/// [`XMPP_ALARM_SUBJECT`]).
pub const XMPP_CONNECTION_FAILURE: &str = "xmppConnectionFailure";
/// The alarm raised instead while the server refuses our name or secret.
pub const XMPP_AUTHENTICATION_FAILURE: &str = "xmppAuthenticationFailure";
/// The subject both alarms are raised for: there is one link.
pub const XMPP_ALARM_SUBJECT: &str = "xmpp";

/// Where the link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmppStatus {
    /// `system/configuration/xmpp` lacks a unique name, domain or secret.
    NotConfigured,
    /// Connecting, or waiting to retry after the link went down.
    Connecting,
    /// The server accepted the handshake.
    Connected,
    /// The server refused the name or the secret.
    AuthenticationFailure,
    /// The server's certificate is not trusted or does not name the domain
    /// (or the server's host name).
    CertificateFailure,
    /// No server could be reached (DNS, TCP, TLS or a timeout).
    Unreachable,
}

impl XmppStatus {
    /// The value of `<xmppStatus>`.
    pub fn as_str(self) -> &'static str {
        match self {
            XmppStatus::NotConfigured => "notConfigured",
            XmppStatus::Connecting => "connecting",
            XmppStatus::Connected => "connected",
            XmppStatus::AuthenticationFailure => "authenticationFailure",
            XmppStatus::CertificateFailure => "certificateFailure",
            XmppStatus::Unreachable => "unreachable",
        }
    }
}

/// The link's status and since when.
#[derive(Debug)]
pub struct XmppLink {
    state: Mutex<(XmppStatus, Instant)>,
}

impl Default for XmppLink {
    fn default() -> XmppLink {
        XmppLink { state: Mutex::new((XmppStatus::NotConfigured, Instant::now())) }
    }
}

impl XmppLink {
    /// Records `status` (a change resets the time).
    pub fn set(&self, status: XmppStatus) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 != status {
            *state = (status, Instant::now());
        }
    }

    /// The current status.
    pub fn get(&self) -> XmppStatus {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).0
    }
}
