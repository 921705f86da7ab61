//! Packet index estimation (RFC 3711 §3.3.1) and the replay window (§3.3.2).

use super::SrtpError;

/// Packets behind the highest index still accepted once. RFC 3711 asks for
/// at least 64; 128 tolerates the reordering of a busy Wi-Fi link.
pub const REPLAY_WINDOW: u64 = 128;

/// Guesses a packet's rollover counter and 48-bit index from the highest
/// sequence number seen so far (`s_l`) and its rollover counter, choosing
/// whichever of ROC-1, ROC, ROC+1 puts the packet nearest to `s_l`.
///
/// `None` when the guess falls before the stream's start or past the end of
/// the index space: such a packet cannot be processed without a new key.
pub(super) fn estimate_index(roc: u32, s_l: u16, seq: u16) -> Option<(u32, u64)> {
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc.checked_sub(1)?
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc.checked_add(1)?
    } else {
        roc
    };
    Some((v, u64::from(v) << 16 | u64::from(seq)))
}

/// Which indexes at or below the highest were already accepted.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ReplayWindow {
    highest: Option<u64>,
    /// Bit n set: index `highest - n` was accepted.
    seen: u128,
}

impl ReplayWindow {
    /// Whether `index` may be accepted. Checked before authentication;
    /// [`ReplayWindow::accept`] is called only once the tag verified, so a
    /// forged packet cannot move the window.
    pub(super) fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if index > highest {
            return Ok(());
        }
        let behind = highest - index;
        if behind >= REPLAY_WINDOW {
            return Err(SrtpError::TooOld(index));
        }
        if self.seen & (1 << behind) != 0 {
            return Err(SrtpError::Replayed(index));
        }
        Ok(())
    }

    /// Marks `index` as accepted.
    pub(super) fn accept(&mut self, index: u64) {
        match self.highest {
            Some(highest) if index <= highest => {
                let behind = highest - index;
                if behind < REPLAY_WINDOW {
                    self.seen |= 1 << behind;
                }
            }
            Some(highest) => {
                let ahead = index - highest;
                self.seen = if ahead >= REPLAY_WINDOW { 0 } else { self.seen << ahead };
                self.seen |= 1;
                self.highest = Some(index);
            }
            None => {
                self.seen = 1;
                self.highest = Some(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_roc_around_wraps() {
        assert_eq!(estimate_index(0, 100, 101), Some((0, 101)));
        // Just after a wrap: s_l high, seq low.
        assert_eq!(estimate_index(0, 65530, 3), Some((1, 65536 + 3)));
        // A late packet from before the wrap.
        assert_eq!(estimate_index(1, 3, 65530), Some((0, 65530)));
        // Before the start of the stream.
        assert_eq!(estimate_index(0, 3, 65530), None);
        assert_eq!(estimate_index(u32::MAX, 65530, 3), None);
        assert_eq!(estimate_index(5, 40000, 40001), Some((5, 5 << 16 | 40001)));
    }

    #[test]
    fn window_accepts_once_and_forgets_old() {
        let mut w = ReplayWindow::default();
        assert!(w.check(1000).is_ok());
        w.accept(1000);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed(1000)));
        assert!(w.check(999).is_ok());
        w.accept(999);
        assert_eq!(w.check(999), Err(SrtpError::Replayed(999)));
        assert!(w.check(1000 - 127).is_ok());
        assert_eq!(w.check(1000 - 128), Err(SrtpError::TooOld(1000 - 128)));
        w.accept(1100);
        assert_eq!(w.check(1000), Err(SrtpError::Replayed(1000)));
        assert!(w.check(1001).is_ok());
        w.accept(5000);
        assert_eq!(w.check(1100), Err(SrtpError::TooOld(1100)));
        assert!(w.check(4999).is_ok());
        assert_eq!(w.highest, Some(5000));
    }
}
