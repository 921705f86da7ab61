//! From the 32-bit mix to 16-bit PCM without wrapping or hard clipping.
//!
//! Two stages. A frame gain: when a frame's peak would pass the ceiling
//! (-1 dBFS), the gain drops to fit it, ramping over the first millisecond so
//! the drop itself makes no click; it recovers over a few hundred
//! milliseconds so loud passages are not pumped. Behind it a soft clipper
//! bends whatever still exceeds the knee (during that first millisecond)
//! towards full scale along a tanh curve, which can never reach it. Below the
//! knee and at unity gain the mix passes bit-exactly, which is the common case.

/// Samples above this magnitude are bent by the soft clipper.
const KNEE: i32 = 24_576;
/// The frame gain keeps peaks at or below this (-1 dBFS).
const CEILING: f32 = 29_204.0;
/// Samples over which a falling gain ramps (1 ms at 48 kHz).
const ATTACK_SAMPLES: usize = 48;
/// Per frame, the gain closes this share of its distance back to 1
/// (a time constant of about 200 ms at 20 ms frames).
const RELEASE: f32 = 0.1;

/// One output stream's limiter; its gain carries over from frame to frame.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limiter {
    gain: f32,
}

impl Default for Limiter {
    fn default() -> Self {
        Self { gain: 1.0 }
    }
}

fn soft_clip(y: f32) -> i16 {
    let knee = KNEE as f32;
    let magnitude = y.abs();
    if magnitude <= knee {
        return y as i16;
    }
    let room = f32::from(i16::MAX) - knee;
    let bent = knee + room * ((magnitude - knee) / room).tanh();
    // tanh < 1, but in f32 it rounds to 1 far out: keep one step below full
    // scale so even a sustained overload never sits at the rail.
    (bent.min(f32::from(i16::MAX - 1)) as i16) * if y < 0.0 { -1 } else { 1 }
}

impl Limiter {
    /// Converts one frame of `mix` into `out` (same length).
    pub fn process(&mut self, mix: &[i32], out: &mut [i16]) {
        let peak = mix.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        let target = if peak as f32 > CEILING { CEILING / peak as f32 } else { 1.0 };
        let next = if target < self.gain { target } else { (self.gain + (1.0 - self.gain) * RELEASE).min(target) };
        if self.gain >= 1.0 && next >= 1.0 && peak <= KNEE as u32 {
            for (o, &s) in out.iter_mut().zip(mix) {
                *o = s as i16;
            }
            self.gain = 1.0;
            return;
        }
        let ramp = if next < self.gain { ATTACK_SAMPLES } else { mix.len() };
        let step = (next - self.gain) / ramp as f32;
        for (n, (o, &s)) in out.iter_mut().zip(mix).enumerate() {
            let g = if n < ramp { self.gain + step * (n + 1) as f32 } else { next };
            *o = soft_clip(s as f32 * g);
        }
        self.gain = if next > 0.999 { 1.0 } else { next };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quiet_mixes_pass_bit_exactly() {
        let mix: Vec<i32> = (0..960).map(|n| (n * 37 % 40_000) - 20_000).collect();
        let mut out = vec![0; 960];
        Limiter::default().process(&mix, &mut out);
        assert!(out.iter().zip(&mix).all(|(&o, &m)| i32::from(o) == m));
    }

    #[test]
    fn a_loud_sum_is_brought_under_the_ceiling_and_released() {
        let mut limiter = Limiter::default();
        let loud: Vec<i32> = (0..960).map(|n| if n % 2 == 0 { 90_000 } else { -90_000 }).collect();
        let mut out = vec![0; 960];
        limiter.process(&loud, &mut out);
        assert!(out.iter().all(|&s| s.unsigned_abs() < i16::MAX as u16));
        assert!(out[ATTACK_SAMPLES..].iter().all(|&s| f32::from(s.unsigned_abs()) <= CEILING + 1.0));
        // Signs survive: nothing wrapped.
        assert!(out.iter().zip(&loud).all(|(&o, &m)| (o > 0) == (m > 0)));
        let quiet = vec![1000; 960];
        let mut gains = Vec::new();
        for _ in 0..80 {
            limiter.process(&quiet, &mut out);
            gains.push(out[959]);
        }
        assert!(gains.windows(2).all(|w| w[0] <= w[1]), "the gain only rises");
        assert_eq!(gains.last(), Some(&1000));
    }

    proptest! {
        #[test]
        fn never_wraps_or_clips_hard(frames in prop::collection::vec(prop::collection::vec(-98_304i32..=98_304, 960), 1..4)) {
            let mut limiter = Limiter::default();
            let mut out = vec![0; 960];
            for mix in &frames {
                limiter.process(mix, &mut out);
                for (&o, &m) in out.iter().zip(mix) {
                    prop_assert!(o.unsigned_abs() < i16::MAX as u16);
                    prop_assert!(o == 0 || (o > 0) == (m > 0));
                    prop_assert!(i32::from(o).abs() <= m.abs());
                }
            }
        }
    }
}
