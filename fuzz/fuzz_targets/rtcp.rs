//! Compound RTCP: any bytes give packets or an error, never a panic, and
//! whatever parses can be written back and parsed again to the same packets.
#![no_main]
use confero_media::rtcp::RtcpPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packets) = RtcpPacket::parse_compound(data) else {
        return;
    };
    let mut out = Vec::new();
    if RtcpPacket::write_compound(&packets, &mut out).is_ok() {
        let again = RtcpPacket::parse_compound(&out).expect("our own output parses");
        // Text is decoded lossily, so compare a second round trip, which is stable.
        let mut out2 = Vec::new();
        RtcpPacket::write_compound(&again, &mut out2).expect("rewrites");
        assert_eq!(out, out2);
    }
});
