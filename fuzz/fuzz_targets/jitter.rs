//! Jitter buffer: any sequence of pushes (any sequence number, timestamp,
//! payload and arrival time), pops and resets never panics, and the buffer
//! never holds more than its capacity.
#![no_main]
use std::time::{Duration, Instant};

use confero_media::jitter::{JitterBuffer, JitterConfig, Playout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&frame, mut ops)) = data.split_first() else { return };
    let frame_ms = [10, 20, 40, 60][usize::from(frame % 4)];
    let config = JitterConfig { frame_duration: Duration::from_millis(frame_ms), ..JitterConfig::default() };
    let Ok(mut jb) = JitterBuffer::new(config) else { return };
    let mut now = Instant::now();
    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        // The low bits pick the operation, the high ones advance the clock.
        now += Duration::from_millis(u64::from(op >> 2));
        match op & 3 {
            0 | 1 => {
                let Some(header) = ops.get(..8) else { return };
                let seq = u16::from_be_bytes([header[0], header[1]]);
                let timestamp = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
                let len = usize::from(header[6]).min(ops.len() - 8);
                let marker = header[7] & 1 == 1;
                jb.push(now, seq, timestamp, &ops[8..8 + len], marker);
                ops = &ops[8 + len..];
            }
            2 => {
                if let Playout::Frame { payload, .. } | Playout::Fec { next_payload: payload } = jb.pop(now) {
                    assert!(payload.len() <= 255);
                }
            }
            _ => jb.reset(),
        }
        assert!(jb.stats().buffered_frames <= jb.capacity());
    }
});
