//! ICE-lite (RFC 8445 §2.5): the bridge has one host candidate per media
//! worker and never checks anyone; the browser (a full, controlling agent)
//! checks us, and we answer. A check that verifies with our password
//! makes its source a valid address; the nominated one (USE-CANDIDATE)
//! is where media goes. Later checks keep consent (RFC 7675): when they
//! stop for [`CONSENT_TIMEOUT`], the browser has gone.
//!
//! Sans-IO: [`IceLite::handle_check`] takes a parsed request, the time and
//! the source, and writes the response into a buffer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng;

use super::stun::{self, BindingRequest, StunError};

/// Without a verified check for this long, consent has expired (RFC 7675
/// §5.1) and media to the browser must stop.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Valid source addresses remembered per endpoint: a browser checks each
/// of its candidates once or twice; more are dropped oldest first.
const MAX_VALID: usize = 8;

/// One side's ICE username fragment and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// `a=ice-ufrag`: 4 or more ice-chars.
    pub ufrag: String,
    /// `a=ice-pwd`: 22 or more ice-chars (128 bits or more).
    pub pwd: String,
}

impl IceCredentials {
    /// Fresh random credentials: an 8-character fragment and a
    /// 24-character password (144 bits), from the ice-char set.
    pub fn random(rng: &mut (impl Rng + ?Sized)) -> Self {
        const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut pick =
            |n: usize| -> String { (0..n).map(|_| char::from(ICE_CHARS[rng.gen_range(0..ICE_CHARS.len())])).collect() };
        let ufrag = pick(8);
        let pwd = pick(24);
        Self { ufrag, pwd }
    }
}

/// What a verified check changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Answered; nothing changed about where media goes.
    Answered,
    /// Answered, and media now goes to this address (the first nomination,
    /// or a new one after the browser moved).
    Selected(SocketAddr),
}

/// The lite agent of one endpoint.
#[derive(Debug)]
pub struct IceLite {
    local: IceCredentials,
    remote_ufrag: String,
    valid: Vec<SocketAddr>,
    selected: Option<SocketAddr>,
    last_check: Option<Instant>,
    started: Instant,
}

impl IceLite {
    /// An agent with our credentials and the browser's fragment (from its
    /// offer).
    pub fn new(local: IceCredentials, remote_ufrag: String, now: Instant) -> Self {
        Self { local, remote_ufrag, valid: Vec::new(), selected: None, last_check: None, started: now }
    }

    /// Our credentials.
    pub fn local(&self) -> &IceCredentials {
        &self.local
    }

    /// Where media goes, once nominated.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected
    }

    /// Whether `from` has passed a check: DTLS and media from anywhere else
    /// are dropped.
    pub fn is_valid(&self, from: SocketAddr) -> bool {
        self.valid.contains(&from)
    }

    /// Verifies a check from `from` and writes the answer into `out` (a
    /// success, or a 401 for a wrong password or username).
    pub fn handle_check(
        &mut self,
        now: Instant,
        from: SocketAddr,
        request: &BindingRequest<'_>,
        message: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<CheckOutcome, StunError> {
        let expected_remote = request.username.split_once(':').map(|(_, r)| r);
        let verified = request.local_ufrag() == self.local.ufrag
            && expected_remote == Some(self.remote_ufrag.as_str())
            && request.verify(message, &self.local.pwd).is_ok();
        if !verified {
            stun::binding_error(&request.transaction, 401, "Unauthorized", out);
            return Err(StunError::BadIntegrity);
        }
        stun::binding_success(&request.transaction, from, &self.local.pwd, out);
        self.last_check = Some(now);
        if !self.valid.contains(&from) {
            if self.valid.len() == MAX_VALID {
                let oldest = self.valid.iter().position(|a| Some(*a) != self.selected).unwrap_or(0);
                self.valid.remove(oldest);
            }
            self.valid.push(from);
        }
        // A browser facing a lite agent nominates (RFC 8445 §8.1.1); one
        // that has not yet gets its first valid pair, so media can start.
        if (request.use_candidate || self.selected.is_none()) && self.selected != Some(from) {
            self.selected = Some(from);
            return Ok(CheckOutcome::Selected(from));
        }
        Ok(CheckOutcome::Answered)
    }

    /// Whether consent has lapsed: no verified check for
    /// [`CONSENT_TIMEOUT`] (counting from the start before the first).
    pub fn consent_expired(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_check.unwrap_or(self.started)) >= CONSENT_TIMEOUT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn agent(now: Instant) -> (IceLite, IceCredentials) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let ours = IceCredentials::random(&mut rng);
        let theirs = IceCredentials::random(&mut rng);
        (IceLite::new(ours, theirs.ufrag.clone(), now), theirs)
    }

    fn check(agent: &IceLite, theirs: &IceCredentials, nominate: bool, password: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let username = format!("{}:{}", agent.local().ufrag, theirs.ufrag);
        stun::binding_request(&[3; 12], &username, password, nominate, &mut out);
        out
    }

    #[test]
    fn a_verified_check_selects_and_keeps_consent() {
        let t0 = Instant::now();
        let (mut ice, theirs) = agent(t0);
        let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let pwd = ice.local().pwd.clone();
        let request = check(&ice, &theirs, false, &pwd);
        let parsed = stun::parse_binding_request(&request).unwrap();
        let mut out = Vec::new();
        assert_eq!(ice.handle_check(t0, from, &parsed, &request, &mut out), Ok(CheckOutcome::Selected(from)));
        assert!(stun::is_success_for(&out, &[3; 12]));
        assert!(ice.is_valid(from));
        // A nomination from another valid address moves media there.
        let other: SocketAddr = "127.0.0.1:50002".parse().unwrap();
        let request = check(&ice, &theirs, true, &pwd);
        let parsed = stun::parse_binding_request(&request).unwrap();
        assert_eq!(ice.handle_check(t0, other, &parsed, &request, &mut out), Ok(CheckOutcome::Selected(other)));
        assert!(!ice.consent_expired(t0 + Duration::from_secs(29)));
        assert!(ice.consent_expired(t0 + CONSENT_TIMEOUT));
    }

    #[test]
    fn a_wrong_password_gets_401_and_no_address() {
        let t0 = Instant::now();
        let (mut ice, theirs) = agent(t0);
        let from: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let request = check(&ice, &theirs, true, "not-the-password-at-all");
        let parsed = stun::parse_binding_request(&request).unwrap();
        let mut out = Vec::new();
        assert!(ice.handle_check(t0, from, &parsed, &request, &mut out).is_err());
        assert!(stun::is_stun(&out) && !stun::is_success_for(&out, &[3; 12]));
        assert!(!ice.is_valid(from) && ice.selected().is_none());
    }
}
