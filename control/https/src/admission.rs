//! Per-source connection counting, shared by every listener that takes
//! connections (the HTTPS scaffold, SIP over TCP and TLS).
//!
//! Why: a global cap alone lets one address hold every slot — 600 TLS
//! handshakes that never finish, re-opened as they are closed, starved
//! everyone else. With at most a bounded share per source, the slots one
//! address can hold are few, and its excess connections are closed as soon
//! as they are accepted, which keeps the accept queue moving for others.
//!
//! A source is an IPv4 address, or an IPv6 /64 (one host or one site
//! usually owns a whole /64, so counting single IPv6 addresses would be no
//! limit at all). IPv4-mapped IPv6 addresses count as their IPv4 address.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admits a listener's connections: a global cap (the excess waits in the
/// kernel's accept queue) and a per-source one (a source's excess is closed
/// at once).
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    sources: Arc<PerSource>,
}

/// An admitted connection's two slots, given back when dropped.
#[derive(Debug)]
pub struct Admitted {
    _slot: OwnedSemaphorePermit,
    _source: SourceSlot,
}

impl Admission {
    /// At most `max` connections at once, `per_source` of them from one source.
    pub fn new(max: usize, per_source: usize) -> Admission {
        Admission { slots: Arc::new(Semaphore::new(max)), sources: PerSource::new(per_source) }
    }

    /// The next admitted connection, or `None` once `shutdown` resolves (or
    /// the cap is closed). `name` says which listener in the log.
    pub async fn next(
        &self,
        name: &str,
        listener: &TcpListener,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Option<(TcpStream, SocketAddr, Admitted)> {
        loop {
            let slot = self.slots.clone().acquire_owned().await.ok()?;
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!("{name}: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => return None,
            };
            // Closed at once (dropped with its global slot): waiting would let
            // the source's excess fill the accept queue ahead of everyone else.
            let Some(source) = self.sources.admit(peer.ip()) else {
                tracing::debug!("{name}: {peer} holds {} connections already; closed", self.sources.limit());
                continue;
            };
            return Some((tcp, peer, Admitted { _slot: slot, _source: source }));
        }
    }
}

/// Connections each source holds, against a limit.
#[derive(Debug)]
pub struct PerSource {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection: its source's count goes down when dropped.
#[derive(Debug)]
pub struct SourceSlot {
    table: Arc<PerSource>,
    source: IpAddr,
}

impl PerSource {
    /// A table admitting at most `limit` connections per source (at least 1).
    pub fn new(limit: usize) -> Arc<PerSource> {
        Arc::new(PerSource { limit: limit.max(1), held: Mutex::new(HashMap::new()) })
    }

    /// The limit per source.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot for a connection from `address`, or `None` if its source
    /// already holds the limit (close the connection at once).
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Option<SourceSlot> {
        let source = source_of(address);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(source).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(SourceSlot { table: self.clone(), source })
    }

    /// Connections `address`'s source holds now.
    pub fn held_by(&self, address: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&source_of(address)).copied().unwrap_or(0)
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut held = self.table.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            // Sources come and go: keep no entry for one that holds nothing.
            if *count == 0 {
                held.remove(&self.source);
            }
        }
    }
}

/// The source an address counts against: itself for IPv4, its /64 for IPv6.
fn source_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_holds_at_most_the_limit_and_others_are_not_affected() {
        let table = PerSource::new(2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = table.admit(a).expect("first");
        let _second = table.admit(a).expect("second");
        assert!(table.admit(a).is_none(), "a third from one source");
        let _other = table.admit(b).expect("another source is not limited by the first");
        drop(first);
        assert_eq!(table.held_by(a), 1);
        assert!(table.admit(a).is_some(), "a slot freed is admitted again");
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let table = PerSource::new(1);
        let _one = table.admit("2001:db8:1:2::1".parse().unwrap()).expect("first");
        assert!(table.admit("2001:db8:1:2::ffff".parse().unwrap()).is_none(), "same /64");
        assert!(table.admit("2001:db8:1:3::1".parse().unwrap()).is_some(), "another /64");
        let _v4 = table.admit("10.0.0.1".parse().unwrap()).expect("v4");
        assert!(table.admit("::ffff:10.0.0.1".parse().unwrap()).is_none(), "mapped is the same source");
    }

    #[test]
    fn sources_holding_nothing_leave_no_entry() {
        let table = PerSource::new(3);
        for i in 0..100u8 {
            drop(table.admit(IpAddr::from([10, 0, 0, i])));
        }
        assert!(table.held.lock().unwrap().is_empty());
    }
}
