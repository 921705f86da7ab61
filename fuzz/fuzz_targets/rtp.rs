//! RTP packets: any bytes give a packet view or an error, never a panic, and
//! every accessor of a parsed packet stays inside the buffer.
#![no_main]
use confero_media::rtp::RtpPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = RtpPacket::parse(data) {
        assert_eq!(packet.header_len() + packet.payload().len() + packet.padding_len(), data.len());
        let _ = (packet.sequence_number(), packet.timestamp(), packet.ssrc());
        let _ = packet.csrcs().count();
        if let Some(extensions) = packet.extensions() {
            for element in extensions.iter() {
                let _ = element.data.len();
            }
            let _ = packet.audio_level(1);
        }
    }
});
