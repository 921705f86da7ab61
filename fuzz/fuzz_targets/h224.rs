//! Far-end camera control from an endpoint: any RTP payload is an H.224
//! frame, ignored, or an error — never a panic — and every H.281 message
//! read is written back to the same message. The same bytes in an RTP packet
//! go through a whole session (no SRTP), which answers CME commands.
#![no_main]
use std::time::{Duration, Instant};

use confero_media::fecc::{FeccConfig, FeccSession, Frame};
use confero_media::rtp::RtpHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(Frame::H281(message))) = Frame::parse(data) {
        assert_eq!(Frame::parse(&Frame::H281(message).encode()), Ok(Some(Frame::H281(message))));
    }
    let now = Instant::now();
    let config = FeccConfig { payload_type: 107, ssrc: 1, srtp_in: None, srtp_out: None, sends: true };
    let mut session = FeccSession::new(config, now).expect("no keys to refuse");
    let header = RtpHeader { marker: true, payload_type: 107, ssrc: 2, ..RtpHeader::default() };
    let mut datagram = Vec::new();
    header.write_packet(data, &mut datagram).expect("a plain header");
    let _ = session.handle_datagram(now, &mut datagram);
    session.handle_timeout(now + Duration::from_secs(1));
    while let Some(out) = session.poll_transmit() {
        assert!(out.len() <= 12 + 263);
    }
});
