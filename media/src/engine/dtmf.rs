//! Sending DTMF to an endpoint as RFC 4733 telephone-events, sans-IO.
//!
//! Why: the CMS API's `dtmfSequence` on a call leg (`POST` with a dial-out,
//! or `PUT` live) is how TMS and admin scripts get through a far end's
//! voice menu — a PIN for an audio bridge Confero dialled. The digits go
//! in band of RTP as telephone-events in place of the endpoint's audio, one
//! packet a 20 ms tick, on its own SSRC and sequence: a tone of
//! [`TONE_TICKS`] ticks (the first packet marked), its end sent three times
//! (RFC 4733 2.5.1.4), then [`GAP_TICKS`] of the conference's audio before
//! the next digit. A comma is a pause of one second, as in dial strings.

use std::collections::VecDeque;

/// Ticks (20 ms) a tone lasts: 100 ms, what phones send for a key press
/// and well above the 40 ms receivers need.
pub const TONE_TICKS: u32 = 5;
/// Ticks of audio between two tones.
pub const GAP_TICKS: u32 = 3;
/// Ticks a `,` pauses.
pub const PAUSE_TICKS: u32 = 50;
/// How many times a tone's end packet goes out.
pub const END_REPEATS: u32 = 3;
/// The most digits queued at once: a sequence longer than this is refused.
pub const MAX_QUEUED: usize = 128;
/// The volume field: -10 dBm0, a usual key press.
const VOLUME: u8 = 10;

/// A sequence that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// A character that is neither a DTMF key (0-9 * # A-D) nor `,`.
    #[error("{0:?} is not a DTMF key or a pause")]
    BadKey(char),
    /// More than [`MAX_QUEUED`] keys and pauses waiting.
    #[error("more than {MAX_QUEUED} keys waiting")]
    TooLong,
    /// The endpoint's SDP has no telephone-event at its codec's rate.
    #[error("no telephone-event was negotiated")]
    NotNegotiated,
}

/// What a tick sends in place of the endpoint's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// The RFC 4733 payload: event, E bit and volume, duration.
    pub payload: [u8; 4],
    /// The event's RTP timestamp: where its tone began.
    pub timestamp: u32,
    /// The first packet of an event.
    pub marker: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Key(u8),
    Pause(u32),
}

#[derive(Debug, Clone, Copy)]
struct Tone {
    event: u8,
    start: u32,
    /// Ticks sent, ends included.
    sent: u32,
}

/// One endpoint's queued keys and the tone in progress.
#[derive(Debug, Default)]
pub struct DtmfSender {
    queue: VecDeque<Step>,
    tone: Option<Tone>,
    /// Ticks of audio still owed before the next step.
    rest: u32,
}

/// The RFC 4733 event code of a key.
fn event_code(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(key as u8 - b'A' + 12),
        'a'..='d' => Some(key as u8 - b'a' + 12),
        _ => None,
    }
}

/// Whether `sequence` can be sent (keys, `,` and spaces, which are ignored).
pub fn check_sequence(sequence: &str) -> Result<(), DtmfError> {
    let mut n = 0;
    for c in sequence.chars().filter(|c| !c.is_whitespace()) {
        if c != ',' && event_code(c).is_none() {
            return Err(DtmfError::BadKey(c));
        }
        n += 1;
    }
    if n > MAX_QUEUED {
        return Err(DtmfError::TooLong);
    }
    Ok(())
}

impl DtmfSender {
    /// Nothing queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `sequence` after whatever is still waiting; nothing is queued
    /// if any of it is bad.
    pub fn push(&mut self, sequence: &str) -> Result<(), DtmfError> {
        check_sequence(sequence)?;
        let steps: Vec<Step> = sequence
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| event_code(c).map_or(Step::Pause(PAUSE_TICKS), Step::Key))
            .collect();
        if self.queue.len() + steps.len() > MAX_QUEUED {
            return Err(DtmfError::TooLong);
        }
        self.queue.extend(steps);
        Ok(())
    }

    /// This tick's event packet, or `None` for the endpoint's usual audio.
    /// `timestamp` is the RTP timestamp this tick's audio would carry and
    /// `step` the timestamp units of a tick (the event clock is the audio
    /// codec's).
    pub fn tick(&mut self, timestamp: u32, step: u32) -> Option<EventPacket> {
        if self.tone.is_none() {
            if self.rest > 0 {
                self.rest -= 1;
                return None;
            }
            match self.queue.pop_front()? {
                Step::Pause(ticks) => {
                    self.rest = ticks.saturating_sub(1);
                    return None;
                }
                Step::Key(event) => self.tone = Some(Tone { event, start: timestamp, sent: 0 }),
            }
        }
        let tone = self.tone.as_mut()?;
        tone.sent += 1;
        let end = tone.sent > TONE_TICKS;
        let duration = step.saturating_mul(tone.sent.min(TONE_TICKS)).min(u32::from(u16::MAX)) as u16;
        let [d0, d1] = duration.to_be_bytes();
        let packet = EventPacket {
            payload: [tone.event, (u8::from(end) << 7) | VOLUME, d0, d1],
            timestamp: tone.start,
            marker: tone.sent == 1,
        };
        if tone.sent >= TONE_TICKS + END_REPEATS {
            self.tone = None;
            self.rest = GAP_TICKS;
        }
        Some(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys or pauses are waiting, a tone is going out, or a gap is owed.
    fn busy(s: &DtmfSender) -> bool {
        s.tone.is_some() || !s.queue.is_empty() || s.rest > 0
    }

    /// Runs `ticks` ticks from timestamp 1000 at 160 a tick (8 kHz).
    fn run(s: &mut DtmfSender, ticks: u32) -> Vec<Option<EventPacket>> {
        (0..ticks).map(|k| s.tick(1000 + 160 * k, 160)).collect()
    }

    #[test]
    fn a_key_is_a_marked_tone_of_growing_duration_then_three_ends_then_audio() {
        let mut s = DtmfSender::new();
        s.push("5").unwrap();
        let out = run(&mut s, TONE_TICKS + END_REPEATS + 2);
        for (k, p) in out[..TONE_TICKS as usize].iter().enumerate() {
            let p = p.expect("a tone packet");
            assert_eq!(p.payload[0], 5);
            assert_eq!(p.payload[1], VOLUME, "no E bit yet");
            assert_eq!(u16::from_be_bytes([p.payload[2], p.payload[3]]), 160 * (k as u16 + 1));
            assert_eq!(p.timestamp, 1000, "every packet of the event keeps its start");
            assert_eq!(p.marker, k == 0);
        }
        for p in &out[TONE_TICKS as usize..(TONE_TICKS + END_REPEATS) as usize] {
            let p = p.expect("an end packet");
            assert_eq!(p.payload[1] & 0x80, 0x80, "E bit");
            assert_eq!(u16::from_be_bytes([p.payload[2], p.payload[3]]), 160 * TONE_TICKS as u16);
            assert!(!p.marker);
        }
        assert_eq!(out[(TONE_TICKS + END_REPEATS) as usize], None, "audio again");
        assert_eq!(out[(TONE_TICKS + END_REPEATS + 1) as usize], None);
        assert!(busy(&s), "the gap before a next key is still owed");
    }

    #[test]
    fn keys_are_separated_by_audio_and_a_comma_pauses_a_second() {
        let mut s = DtmfSender::new();
        s.push("1#,*").unwrap();
        let out = run(&mut s, 200);
        // The events in order, each with its own start.
        let mut events: Vec<(u8, u32)> =
            out.iter().flatten().filter(|p| p.marker).map(|p| (p.payload[0], p.timestamp)).collect();
        assert_eq!(events.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 11, 10]);
        let per_key = TONE_TICKS + END_REPEATS + GAP_TICKS;
        let starts: Vec<u32> = events.drain(..).map(|e| (e.1 - 1000) / 160).collect();
        assert_eq!(starts, vec![0, per_key, 2 * per_key + PAUSE_TICKS]);
        assert!(!busy(&s));
    }

    #[test]
    fn bad_keys_and_overlong_sequences_are_refused_and_queue_nothing() {
        let mut s = DtmfSender::new();
        assert_eq!(s.push("12x"), Err(DtmfError::BadKey('x')));
        assert_eq!(s.push(&"1".repeat(MAX_QUEUED + 1)), Err(DtmfError::TooLong));
        assert!(!busy(&s));
        assert_eq!(check_sequence("0123456789*#ABCDabcd, ,"), Ok(()));
        s.push(&"1".repeat(MAX_QUEUED)).unwrap();
        assert_eq!(s.push("1"), Err(DtmfError::TooLong), "the queue is full");
    }

    #[test]
    fn a_long_event_clock_never_overflows_the_duration() {
        let mut s = DtmfSender::new();
        s.push("0").unwrap();
        let p = (0..TONE_TICKS).map(|k| s.tick(k * 96_000, 96_000)).last().flatten().unwrap();
        assert_eq!(u16::from_be_bytes([p.payload[2], p.payload[3]]), u16::MAX);
    }
}
