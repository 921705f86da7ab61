//! Who is in the mix: top-K by level, with an activation delay and a
//! hangover so the set does not flicker.
//!
//! A participant becomes a candidate after `activation_ticks` consecutive
//! loud ticks (a cough or a click is one or two); a speaker stays in the mix
//! until it has been quiet for more than `hangover_ticks` (the pauses between
//! words and sentences are shorter). When all `max_speakers` slots are taken,
//! a candidate takes the slot of a speaker that is already in its hangover,
//! or of one with lower importance; never of an equally important speaker who
//! is still talking. Candidates compete by importance, then by level.

use super::MixerConfig;

/// One participant's recent speech activity, as the selector tracks it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Activity {
    /// This tick's level in -dBov (0 loud .. 127 silent).
    pub level: u8,
    /// May this participant be mixed at all (not rx-muted)?
    pub eligible: bool,
    /// Higher wins ties and may displace lower.
    pub importance: i32,
    /// Consecutive ticks at or above the speech level.
    pub loud_run: u32,
    /// Consecutive ticks below the speech level.
    pub quiet_run: u32,
    /// In the mix.
    pub speaking: bool,
}

impl Activity {
    /// Takes this tick's level.
    pub fn observe(&mut self, level: u8, config: &MixerConfig) {
        self.level = level;
        if !self.eligible {
            *self = Self { level, importance: self.importance, ..Self::default() };
        } else if level <= config.speech_level {
            self.loud_run = self.loud_run.saturating_add(1);
            self.quiet_run = 0;
        } else {
            self.loud_run = 0;
            self.quiet_run = self.quiet_run.saturating_add(1);
        }
    }

    /// Above the speech level now, but not (yet) in the mix.
    pub fn is_candidate(&self) -> bool {
        self.eligible && !self.speaking && self.loud_run > 0
    }
}

/// Updates `speaking` on every entry after [`Activity::observe`].
pub(super) fn select(activity: &mut [Activity], config: &MixerConfig) {
    for a in activity.iter_mut() {
        if a.speaking && a.quiet_run > config.hangover_ticks {
            a.speaking = false;
        }
    }
    let mut speaking = activity.iter().filter(|a| a.speaking).count();
    let mut candidates: Vec<usize> = (0..activity.len())
        .filter(|&i| {
            let a = &activity[i];
            a.is_candidate() && a.loud_run >= config.activation_ticks
        })
        .collect();
    if candidates.is_empty() {
        return;
    }
    candidates.sort_by_key(|&i| (std::cmp::Reverse(activity[i].importance), activity[i].level, i));
    for c in candidates {
        if speaking < config.max_speakers {
            activity[c].speaking = true;
            speaking += 1;
            continue;
        }
        let importance = activity[c].importance;
        // The speaker who can best give up its slot: least important, then
        // quiet the longest.
        let victim = (0..activity.len())
            .filter(|&i| {
                let s = &activity[i];
                s.speaking && (s.importance < importance || (s.importance == importance && s.quiet_run > 0))
            })
            .min_by_key(|&i| (activity[i].importance, std::cmp::Reverse(activity[i].quiet_run), i));
        if let Some(v) = victim {
            activity[v].speaking = false;
            activity[c].speaking = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: u8 = 20;
    const QUIET: u8 = 90;

    fn config() -> MixerConfig {
        MixerConfig { max_speakers: 2, activation_ticks: 2, hangover_ticks: 5, ..MixerConfig::default() }
    }

    fn run(activity: &mut [Activity], levels: &[u8]) -> Vec<bool> {
        let config = config();
        for (a, &l) in activity.iter_mut().zip(levels) {
            a.observe(l, &config);
        }
        select(activity, &config);
        activity.iter().map(|a| a.speaking).collect()
    }

    fn people(n: usize) -> Vec<Activity> {
        vec![Activity { eligible: true, level: 127, ..Activity::default() }; n]
    }

    #[test]
    fn activation_needs_consecutive_loud_ticks() {
        let mut a = people(1);
        assert_eq!(run(&mut a, &[LOUD]), [false]);
        assert_eq!(run(&mut a, &[QUIET]), [false]);
        assert_eq!(run(&mut a, &[LOUD]), [false]);
        assert_eq!(run(&mut a, &[LOUD]), [true]);
    }

    #[test]
    fn hangover_bridges_pauses_then_releases() {
        let mut a = people(1);
        run(&mut a, &[LOUD]);
        run(&mut a, &[LOUD]);
        for _ in 0..5 {
            assert_eq!(run(&mut a, &[QUIET]), [true]);
        }
        assert_eq!(run(&mut a, &[QUIET]), [false]);
    }

    #[test]
    fn levels_alternating_around_the_threshold_do_not_flicker() {
        let threshold = config().speech_level;
        let mut a = people(2);
        // Participant 0 is talking; participant 1 hovers around the threshold.
        run(&mut a, &[LOUD, threshold + 1]);
        run(&mut a, &[LOUD, threshold]);
        for t in 0..100 {
            let hover = if t % 2 == 0 { threshold + 1 } else { threshold };
            let zero = if t % 2 == 0 { threshold } else { threshold + 1 };
            // 0 stays selected through its own alternation; 1 never gets in.
            assert_eq!(run(&mut a, &[zero, hover]), [true, false], "tick {t}");
        }
    }

    #[test]
    fn top_k_and_displacement() {
        let mut a = people(3);
        run(&mut a, &[LOUD, LOUD, LOUD]);
        // Three loud candidates, two slots: the louder ones win, then index.
        let mut levels = [LOUD + 5, LOUD, LOUD + 1];
        assert_eq!(run(&mut a, &levels), [false, true, true]);
        // A talking speaker of equal importance is never displaced...
        for _ in 0..10 {
            assert_eq!(run(&mut a, &levels), [false, true, true]);
        }
        // ...but one in its hangover is.
        levels[2] = QUIET;
        assert_eq!(run(&mut a, &levels), [true, true, false]);
        // Importance displaces even a talking speaker.
        a[2].importance = 1;
        run(&mut a, &[LOUD, LOUD, LOUD]);
        assert_eq!(run(&mut a, &[LOUD, LOUD, LOUD]), [false, true, true]);
    }

    #[test]
    fn ineligible_participants_are_never_selected() {
        let mut a = people(1);
        run(&mut a, &[LOUD]);
        run(&mut a, &[LOUD]);
        a[0].eligible = false;
        for _ in 0..5 {
            assert_eq!(run(&mut a, &[LOUD]), [false]);
        }
    }
}
