//! The conference's video half end to end in one process: real H.264 (or
//! VP8) streams of solid colours in, what each receiver decodes checked pane
//! by pane. Time is injected; nothing reads a clock.

use std::time::{Duration, Instant};

use super::*;
use crate::engine::Flow;
use crate::rtcp;
use crate::rtcp::{Nack, PictureLossIndication, ReceiverReport, RtcpPacket};
use crate::rtp::{RtpHeader, RtpPacket};
use crate::video::codec::{
    EncoderSettings, Received, VideoCodec, VideoDecoder, VideoDepacketizer, VideoEncoder, VideoPacketizer,
};
use crate::video::frame::{I420Frame, Rect, Yuv};
use crate::video::h264::H264EncoderConfig;
use crate::video::h264_rtp::RtpPayloads;
use crate::video::layout::{LayoutTemplate, ViewLayout};

const PT: u8 = 96;
const FRAME: Duration = Duration::from_nanos(33_333_333);
const SOURCE: H264EncoderConfig =
    H264EncoderConfig { width: 320, height: 180, bitrate: 300_000, max_fps: 30.0, max_nal_size: None };
/// What every receiver asks for: small, so the test runs fast.
const VIEW: (u32, u32) = (320, 180);

/// A camera of one colour and the receiving side of one endpoint.
struct Party {
    id: EndpointId,
    colour: Yuv,
    codec: VideoCodec,
    encoder: VideoEncoder,
    packetizer: VideoPacketizer,
    picture: I420Frame,
    seq: u16,
    ssrc: u32,
    depacketizer: VideoDepacketizer,
    decoder: VideoDecoder,
    seen: I420Frame,
    frames_seen: usize,
    keyframes_seen: usize,
    /// Our SSRC as the mix sends it to this party.
    mix_ssrc: Option<u32>,
    /// TMMBNs the mix sent it.
    tmmbns: Vec<crate::rtcp::Tmmbn>,
    /// Bitrate limits (TMMBR or REMB) the mix asked of its stream.
    limits: Vec<u64>,
    /// Its SRTP contexts (what it sends, what it receives), if it uses SRTP.
    srtp: Option<(crate::srtp::SrtpContext, crate::srtp::SrtpContext)>,
    /// Packets (RTP or RTCP) the mix sent it.
    received: usize,
    /// RTP packets the mix sent it that were not one whole NAL unit (STAP-A,
    /// FU-A), and the largest payload.
    aggregated_or_fragmented: usize,
    largest_payload: usize,
}

struct Harness {
    mix: VideoMix,
    parties: Vec<Party>,
    start: Instant,
    frame: u32,
    out: Vec<Outgoing>,
    summary: VideoTickSummary,
}

fn colour(n: usize) -> Yuv {
    [Yuv::from_rgb(220, 40, 40), Yuv::from_rgb(40, 200, 40), Yuv::from_rgb(40, 40, 220), Yuv::from_rgb(230, 230, 40)]
        [n % 4]
}

fn close(a: Yuv, b: Yuv) -> bool {
    a.y.abs_diff(b.y) <= 24 && a.u.abs_diff(b.u) <= 24 && a.v.abs_diff(b.v) <= 24
}

impl Harness {
    fn new(parties: usize, layout: Layout, self_pane: SelfPaneMode) -> Self {
        Self::with(parties, layout, self_pane, |_, _| {})
    }

    /// As [`new`](Self::new), with party `n`'s config changed by `configure`.
    fn with(
        parties: usize,
        layout: Layout,
        self_pane: SelfPaneMode,
        configure: impl Fn(usize, &mut VideoConfig),
    ) -> Self {
        let mut h = Self {
            mix: VideoMix::new(rand::SeedableRng::seed_from_u64(5)),
            parties: Vec::new(),
            start: Instant::now(),
            frame: 0,
            out: Vec::new(),
            summary: VideoTickSummary::default(),
        };
        for n in 0..parties {
            let id = EndpointId(n as u64 + 1);
            let mut config = VideoConfig::new(PT);
            config.max_size = VIEW;
            config.bitrate = 400_000;
            config.layout = layout.into();
            config.self_pane = self_pane;
            configure(n, &mut config);
            let codec = config.codec;
            h.mix.join(id);
            h.mix.attach(id, config).unwrap();
            let mut picture = I420Frame::new(SOURCE.width, SOURCE.height).unwrap();
            picture.fill(colour(n));
            let settings = EncoderSettings {
                codec,
                width: SOURCE.width,
                height: SOURCE.height,
                bitrate: SOURCE.bitrate,
                max_nal_size: None,
            };
            h.parties.push(Party {
                id,
                colour: colour(n),
                codec,
                encoder: VideoEncoder::new(settings).unwrap().0,
                packetizer: VideoPacketizer::new(codec, 1100).unwrap(),
                picture,
                seq: 100 * n as u16,
                ssrc: 0xabc0 + n as u32,
                depacketizer: VideoDepacketizer::new(codec),
                decoder: VideoDecoder::new(codec).unwrap(),
                seen: I420Frame::new(2, 2).unwrap(),
                frames_seen: 0,
                keyframes_seen: 0,
                mix_ssrc: None,
                tmmbns: Vec::new(),
                limits: Vec::new(),
                srtp: None,
                received: 0,
                aggregated_or_fragmented: 0,
                largest_payload: 0,
            });
        }
        h
    }

    fn now(&self) -> Instant {
        self.start + FRAME * self.frame
    }

    /// One frame time: every party sends a frame, the mix ticks, every
    /// party decodes what it got.
    fn step(&mut self) {
        let now = self.now();
        let mut payloads = RtpPayloads::new();
        for p in &mut self.parties {
            let unit = p.encoder.encode(now, &p.picture).unwrap();
            payloads.clear();
            if !unit.data.is_empty() {
                p.packetizer.packetize(unit.data, &mut payloads).unwrap();
            }
            for (payload, marker) in payloads.iter() {
                let header = RtpHeader {
                    marker,
                    payload_type: PT,
                    sequence_number: p.seq,
                    timestamp: self.frame * 3000,
                    ssrc: p.ssrc,
                    ..RtpHeader::default()
                };
                p.seq = p.seq.wrapping_add(1);
                let mut bytes = Vec::new();
                header.write_packet(payload, &mut bytes).unwrap();
                if let Some((out, _)) = &mut p.srtp {
                    out.protect_rtp(&mut bytes).unwrap();
                }
                // A party whose keys are pending is refused, and counted.
                match self.mix.receive(now, NtpTime(0), p.id, &mut bytes) {
                    Ok(()) | Err(EngineError::KeysPending) => {}
                    Err(e) => panic!("{:?}: {e}", p.id),
                }
            }
        }
        self.summary = self.mix.tick(now, NtpTime(0), &mut self.out).unwrap();
        for mut o in self.out.drain(..) {
            let p = self.parties.iter_mut().find(|p| p.id == o.endpoint).unwrap();
            p.received += 1;
            if let Some((_, srtp_in)) = &mut p.srtp {
                match o.flow {
                    Flow::VideoRtcp => srtp_in.unprotect_rtcp(&mut o.bytes).unwrap(),
                    _ => srtp_in.unprotect_rtp(&mut o.bytes).unwrap(),
                }
            }
            if o.flow == Flow::VideoRtcp {
                // A real endpoint answers a keyframe request with an IDR.
                for item in rtcp::compound(&o.bytes) {
                    match item {
                        Ok(RtcpPacket::PictureLossIndication(_)) => p.encoder.request_keyframe(),
                        Ok(RtcpPacket::Tmmbn(n)) => p.tmmbns.push(n),
                        Ok(RtcpPacket::Tmmbr(t)) if t.entries.iter().all(|e| e.ssrc == p.ssrc) => {
                            p.limits.extend(t.entries.iter().map(|e| e.bitrate_bps));
                        }
                        Ok(RtcpPacket::Remb(r)) if r.ssrcs == [p.ssrc] => p.limits.push(r.bitrate_bps),
                        _ => {}
                    }
                }
                continue;
            }
            let rtp = RtpPacket::parse(&o.bytes).unwrap();
            assert_eq!(rtp.payload_type(), PT);
            p.mix_ssrc = Some(rtp.ssrc());
            if p.codec == VideoCodec::H264 && !(1..=23).contains(&(rtp.payload().first().copied().unwrap_or(0) & 0x1f))
            {
                p.aggregated_or_fragmented += 1;
            }
            p.largest_payload = p.largest_payload.max(rtp.payload().len());
            p.depacketizer.push(rtp.sequence_number(), rtp.timestamp(), rtp.marker(), rtp.payload()).unwrap();
            while let Some(a) = p.depacketizer.poll() {
                if let Received::Frame(unit) = a {
                    p.keyframes_seen += usize::from(unit.is_keyframe());
                    if p.decoder.decode(&unit, &mut p.seen).unwrap_or(false) {
                        p.frames_seen += 1;
                    }
                    p.depacketizer.recycle(unit);
                }
            }
        }
        self.frame += 1;
    }

    fn run(&mut self, frames: u32) {
        for _ in 0..frames {
            self.step();
        }
    }

    /// The colour at the centre of `rect` in what party `n` sees.
    fn seen_at(&self, n: usize, rect: Rect) -> Yuv {
        let p = &self.parties[n];
        p.seen.pixel(rect.x + rect.width / 2, rect.y + rect.height / 2).unwrap()
    }

    /// Party `n` sees these parties, in this layout's pane order.
    fn assert_sees(&self, n: usize, layout: impl Into<ViewLayout>, shown: &[usize]) {
        let mut panes = Vec::new();
        layout.into().panes(shown.len(), VIEW.0, VIEW.1, &mut panes);
        let p = &self.parties[n];
        assert!(p.frames_seen > 0, "party {n} decoded nothing");
        assert_eq!((p.seen.width(), p.seen.height()), VIEW);
        for (&rect, &other) in panes.iter().zip(shown) {
            let got = self.seen_at(n, rect);
            assert!(close(got, self.parties[other].colour), "party {n} pane {rect:?}: {got:?}, not party {other}");
        }
    }
}

#[test]
fn each_receiver_sees_the_others_in_its_layout_and_not_itself() {
    let mut h = Harness::new(3, Layout::AllEqual, SelfPaneMode::Skip);
    h.run(12);
    // Nobody has spoken: the order is the join order; each sees the other two.
    h.assert_sees(0, Layout::AllEqual, &[1, 2]);
    h.assert_sees(1, Layout::AllEqual, &[0, 2]);
    h.assert_sees(2, Layout::AllEqual, &[0, 1]);
    // Three distinct views (each skips itself), three decodes a frame.
    assert_eq!((h.summary.encodes, h.summary.decodes), (3, 3));
    for p in &h.parties {
        let stats = h.mix.stats(p.id).unwrap();
        assert_eq!(stats.tx_size, VIEW);
        assert_eq!(stats.rx_size, (SOURCE.width, SOURCE.height));
        assert!(stats.frames_out >= 10 && stats.frames_decoded >= 10);
    }
}

/// A browser in VP8 among H.264 endpoints: it is sent the same layout in
/// VP8 (its own view, since an encode is in one codec), and its VP8 camera
/// is decoded into the others' H.264 views. Receivers in one codec still
/// share an encode.
#[test]
fn a_vp8_receiver_gets_its_own_encode_and_its_vp8_camera_is_shown_to_h264_receivers() {
    let mut h = Harness::with(3, Layout::AllEqual, SelfPaneMode::ShowSelf, |n, c| {
        if n == 2 {
            c.codec = VideoCodec::Vp8;
        }
    });
    h.run(12);
    for n in 0..3 {
        h.assert_sees(n, Layout::AllEqual, &[0, 1, 2]);
    }
    assert_eq!((h.summary.encodes, h.summary.decodes), (2, 3), "one H.264 view and one VP8 view");
    let stats = h.mix.stats(h.parties[2].id).unwrap();
    assert_eq!((stats.codec, stats.rx_size), (VideoCodec::Vp8, (SOURCE.width, SOURCE.height)));
    assert!(stats.frames_out >= 10 && stats.frames_decoded >= 10, "{stats:?}");
    // Its PLI gets it a keyframe of its own view.
    let before = h.parties[2].keyframes_seen;
    let ssrc = h.parties[2].mix_ssrc.unwrap();
    h.send_rtcp(2, &[RtcpPacket::PictureLossIndication(PictureLossIndication { sender_ssrc: 1, media_ssrc: ssrc })]);
    h.run(20);
    assert!(h.parties[2].keyframes_seen > before);
}

#[test]
fn decodes_and_views_spread_over_threads_give_the_same_pictures() {
    // Four parties, three threads: steps of three and of one.
    let mut h = Harness::new(4, Layout::AllEqual, SelfPaneMode::Skip);
    h.mix.set_pool(Some(std::sync::Arc::new(rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap())));
    h.run(12);
    h.assert_sees(0, Layout::AllEqual, &[1, 2, 3]);
    h.assert_sees(1, Layout::AllEqual, &[0, 2, 3]);
    h.assert_sees(2, Layout::AllEqual, &[0, 1, 3]);
    h.assert_sees(3, Layout::AllEqual, &[0, 1, 2]);
    assert_eq!((h.summary.encodes, h.summary.decodes), (4, 4));
    // A PLI still gets its receiver an IDR.
    let before = h.parties[1].keyframes_seen;
    let ssrc = h.parties[1].mix_ssrc.unwrap();
    h.send_rtcp(1, &[RtcpPacket::PictureLossIndication(PictureLossIndication { sender_ssrc: 1, media_ssrc: ssrc })]);
    h.run(20);
    assert!(h.parties[1].keyframes_seen > before);
}

#[test]
fn receivers_with_the_same_picture_share_one_encode() {
    // `self` mode: everyone sees everyone, so one view serves all four.
    let mut h = Harness::new(4, Layout::AllEqual, SelfPaneMode::ShowSelf);
    h.run(8);
    assert_eq!(h.summary.encodes, 1);
    for n in 0..4 {
        h.assert_sees(n, Layout::AllEqual, &[0, 1, 2, 3]);
    }
}

#[test]
fn a_chosen_layout_changes_what_one_receiver_sees_live() {
    let mut h = Harness::new(3, Layout::AllEqual, SelfPaneMode::Skip);
    h.run(6);
    let settings = VideoSettings::new(Layout::SpeakerOnly);
    h.mix.set_settings(h.parties[2].id, settings).unwrap();
    let before = h.parties[2].keyframes_seen;
    h.run(6);
    // The floor holder is party 0 (first in the order): party 2 sees it alone.
    h.assert_sees(2, Layout::SpeakerOnly, &[0]);
    assert!(h.parties[2].keyframes_seen > before, "a new view starts with an IDR");
    // The others are unchanged.
    h.assert_sees(0, Layout::AllEqual, &[1, 2]);
    h.assert_sees(1, Layout::AllEqual, &[0, 2]);
}

/// A leg's `layoutTemplate`: its panes where the template puts them, live,
/// and receivers with the same template share one view (one encode).
#[test]
fn a_layout_template_places_the_panes_and_is_shared_by_its_receivers() {
    let mut h = Harness::new(3, Layout::AllEqual, SelfPaneMode::Skip);
    h.run(6);
    let template = ViewLayout::Template(std::sync::Arc::new(crate::video::layout::tests::side_column_template()));
    let settings = VideoSettings::new(template.clone());
    h.mix.set_settings(h.parties[2].id, settings).unwrap();
    h.run(6);
    // Two others shown: the template's 2–4 layout, big pane then column.
    h.assert_sees(2, template.clone(), &[0, 1]);
    let mut panes = Vec::new();
    template.panes(2, VIEW.0, VIEW.1, &mut panes);
    assert_eq!(panes[0].width, VIEW.0 * 3 / 4, "the big pane is three quarters wide: {panes:?}");
    // Its third pane stays background.
    assert!(close(h.seen_at(2, panes[2]), Yuv::BLACK), "{:?}", h.seen_at(2, panes[2]));
    h.assert_sees(0, Layout::AllEqual, &[1, 2]);
    // A one-pane template for parties 1 and 2: both see the floor holder
    // (party 0) alone, in one shared view, so the tick encodes two views.
    let one_pane =
        crate::video::layout::TemplateLayout { min_shown: 0, max_shown: 99, panes: vec![[0, 0, 10_000, 10_000]] };
    let one_pane = ViewLayout::Template(std::sync::Arc::new(LayoutTemplate::new(vec![one_pane]).unwrap()));
    for n in [1, 2] {
        h.mix.set_settings(h.parties[n].id, VideoSettings::new(one_pane.clone())).unwrap();
    }
    h.run(6);
    h.assert_sees(1, one_pane.clone(), &[0]);
    h.assert_sees(2, one_pane, &[0]);
    assert_eq!(h.summary.encodes, 2, "parties 1 and 2 share one view");
    // Back to the CMS layout when the template is cleared.
    h.mix.set_settings(h.parties[2].id, VideoSettings::new(Layout::SpeakerOnly)).unwrap();
    h.run(6);
    h.assert_sees(2, Layout::SpeakerOnly, &[0]);
}

#[test]
fn a_quality_cap_lowers_one_receiver_s_picture_live_and_never_raises_it_past_its_sdp() {
    let mut h = Harness::new(3, Layout::AllEqual, SelfPaneMode::Skip);
    h.run(6);
    assert_eq!((h.parties[2].seen.width(), h.parties[2].seen.height()), VIEW);
    // qualityMain below its SDP limit: a smaller view of its own.
    let capped = VideoSettings { max_size: (160, 90), ..VideoSettings::new(Layout::AllEqual) };
    h.mix.set_settings(h.parties[2].id, capped).unwrap();
    h.run(20);
    assert_eq!((h.parties[2].seen.width(), h.parties[2].seen.height()), (160, 90));
    // The others keep their size.
    assert_eq!((h.parties[1].seen.width(), h.parties[1].seen.height()), VIEW);
    // A cap above its SDP limit does not raise it.
    let loose = VideoSettings { max_size: (1280, 720), ..VideoSettings::new(Layout::AllEqual) };
    h.mix.set_settings(h.parties[2].id, loose).unwrap();
    h.run(20);
    assert_eq!((h.parties[2].seen.width(), h.parties[2].seen.height()), VIEW);
}

#[test]
fn the_speaker_order_follows_the_active_speaker_with_hysteresis() {
    let mut h = Harness::new(3, Layout::SpeakerOnly, SelfPaneMode::Skip);
    h.run(4);
    h.assert_sees(1, Layout::SpeakerOnly, &[0]);
    // Party 2 speaks: it takes the floor only after the hold time.
    let id = h.parties[2].id;
    for _ in 0..(SpeakerOrder::DEFAULT_HOLD_TICKS - 1) {
        h.mix.speaker_tick(Some(id));
    }
    assert_eq!(h.mix.speaker_order()[0], h.parties[0].id);
    h.mix.speaker_tick(Some(id));
    assert_eq!(h.mix.speaker_order()[0], id);
    // Keyframes for the changed views are limited to one per 500 ms.
    h.run(20);
    h.assert_sees(1, Layout::SpeakerOnly, &[2]);
    h.assert_sees(0, Layout::SpeakerOnly, &[2]);
    // The new floor holder sees the previous one.
    h.assert_sees(2, Layout::SpeakerOnly, &[0]);
}

#[test]
fn an_important_participant_takes_the_first_pane_whoever_speaks() {
    let mut h = Harness::new(3, Layout::AllEqual, SelfPaneMode::Skip);
    h.run(6);
    h.assert_sees(1, Layout::AllEqual, &[0, 2]);
    h.mix.set_importance(h.parties[2].id, 5);
    h.run(20);
    h.assert_sees(1, Layout::AllEqual, &[2, 0]);
    h.assert_sees(0, Layout::AllEqual, &[2, 1]);
    // Party 1 speaks: it leads the speaker order, yet party 2 keeps the
    // first pane; party 2 itself sees the speaker first.
    for _ in 0..SpeakerOrder::DEFAULT_HOLD_TICKS {
        h.mix.speaker_tick(Some(h.parties[1].id));
    }
    h.run(20);
    h.assert_sees(0, Layout::AllEqual, &[2, 1]);
    h.assert_sees(2, Layout::AllEqual, &[1, 0]);
    // Importance 0 clears it: the speaker order again.
    h.mix.set_importance(h.parties[2].id, 0);
    h.run(20);
    h.assert_sees(0, Layout::AllEqual, &[1, 2]);
}

#[test]
fn a_stream_no_view_shows_is_not_decoded_and_gets_a_keyframe_request_when_shown() {
    let mut h = Harness::new(3, Layout::SpeakerOnly, SelfPaneMode::Skip);
    h.run(10);
    // Party 0 holds the floor and sees party 1; nobody sees party 2.
    let hidden = h.mix.stats(h.parties[2].id).unwrap();
    assert_eq!(hidden.frames_decoded, 0);
    assert!(hidden.frames_in >= 9);
    assert_eq!(h.summary.decodes, 2);
    // Party 2 speaks and takes the floor: now it is shown, and it is asked
    // for a keyframe (its decoder missed everything so far).
    for _ in 0..SpeakerOrder::DEFAULT_HOLD_TICKS {
        h.mix.speaker_tick(Some(h.parties[2].id));
    }
    let now = h.now();
    let mut out = Vec::new();
    h.mix.tick(now, NtpTime(0), &mut out).unwrap();
    let asked = out.iter().any(|o| {
        o.endpoint == h.parties[2].id
            && o.flow == Flow::VideoRtcp
            && rtcp::compound(&o.bytes).any(|p| matches!(p, Ok(RtcpPacket::PictureLossIndication(_))))
    });
    assert!(asked, "no PLI to the stream coming into view");
    assert_eq!(h.mix.stats(h.parties[2].id).unwrap().keyframe_requests_sent, 1);
    // It answers with an IDR (within its own 500 ms gate), which is decoded.
    h.parties[2].encoder.request_keyframe();
    h.frame += 1;
    h.run(10);
    assert!(h.mix.stats(h.parties[2].id).unwrap().frames_decoded > 0);
    h.assert_sees(0, Layout::SpeakerOnly, &[2]);
}

#[test]
fn a_pli_from_a_receiver_makes_its_view_send_an_idr() {
    let mut h = Harness::new(2, Layout::SpeakerOnly, SelfPaneMode::Skip);
    h.run(20); // past the 500 ms keyframe gate
    let before = h.parties[0].keyframes_seen;
    assert_eq!(before, 1, "only the first frame is an IDR");
    let media_ssrc = h.parties[0].mix_ssrc.unwrap();
    let pli = [
        RtcpPacket::ReceiverReport(ReceiverReport { ssrc: h.parties[0].ssrc, reports: Vec::new() }),
        RtcpPacket::PictureLossIndication(PictureLossIndication { sender_ssrc: h.parties[0].ssrc, media_ssrc }),
    ];
    let mut bytes = Vec::new();
    RtcpPacket::write_compound(&pli, &mut bytes).unwrap();
    let now = h.now();
    h.mix.receive(now, NtpTime(0), h.parties[0].id, &mut bytes).unwrap();
    h.run(1);
    assert_eq!(h.parties[0].keyframes_seen, before + 1);
    assert_eq!(h.parties[1].keyframes_seen, 1, "the other view is not disturbed");
    assert_eq!(h.mix.stats(h.parties[0].id).unwrap().keyframe_requests_received, 1);
}

#[test]
fn video_mutes_show_a_placeholder_and_stop_sending() {
    let mut h = Harness::new(2, Layout::SpeakerOnly, SelfPaneMode::Skip);
    h.run(4);
    let muted = VideoSettings { rx_muted: true, ..VideoSettings::new(Layout::SpeakerOnly) };
    h.mix.set_settings(h.parties[0].id, muted).unwrap();
    h.run(20);
    // Party 1 sees party 0's placeholder (dark grey), not its red.
    let full = Rect::new(0, 0, VIEW.0, VIEW.1);
    assert!(!close(h.seen_at(1, full), h.parties[0].colour));
    let sent_before = h.mix.stats(h.parties[1].id).unwrap().frames_out;
    let off = VideoSettings { tx_muted: true, ..VideoSettings::new(Layout::SpeakerOnly) };
    h.mix.set_settings(h.parties[1].id, off).unwrap();
    h.run(3);
    assert_eq!(h.mix.stats(h.parties[1].id).unwrap().frames_out, sent_before);
}

#[test]
fn bad_packets_are_refused_and_counted_never_a_panic() {
    let mut h = Harness::new(2, Layout::AllEqual, SelfPaneMode::Skip);
    let id = h.parties[0].id;
    let now = h.now();
    for junk in [&[][..], &[0x80, 96, 0, 1][..], &[0x80, 97, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0x65][..]] {
        let mut bytes = junk.to_vec();
        assert!(h.mix.receive(now, NtpTime(0), id, &mut bytes).is_err());
    }
    assert_eq!(h.mix.stats(id).unwrap().refused, 3);
    assert!(h.mix.receive(now, NtpTime(0), EndpointId(99), &mut vec![0x80, 96]).is_err());
    h.run(3);
    h.assert_sees(1, Layout::AllEqual, &[0]);
}

#[test]
fn a_participant_in_the_lobby_is_not_shown_and_sees_nothing() {
    let mut h = Harness::new(3, Layout::AllEqual, SelfPaneMode::Skip);
    h.mix.set_lobby(h.parties[1].id, true);
    h.run(8);
    // Party 0 sees only party 2; party 2 only party 0; party 1 nothing.
    h.assert_sees(0, Layout::AllEqual, &[2]);
    h.assert_sees(2, Layout::AllEqual, &[0]);
    assert_eq!(h.mix.stats(h.parties[1].id).unwrap().frames_out, 0);
    assert_eq!(h.parties[1].frames_seen, 0);
    // Let in: everyone sees the other two again.
    h.mix.set_lobby(h.parties[1].id, false);
    h.run(20);
    h.assert_sees(0, Layout::AllEqual, &[1, 2]);
    h.assert_sees(1, Layout::AllEqual, &[0, 2]);
}

impl Harness {
    /// Party `n` sends the mix this RTCP compound about the stream it receives.
    fn send_rtcp(&mut self, n: usize, packets: &[RtcpPacket]) {
        let mut bytes = Vec::new();
        RtcpPacket::write_compound(packets, &mut bytes).unwrap();
        let now = self.now();
        self.mix.receive(now, NtpTime(0), self.parties[n].id, &mut bytes).unwrap();
    }
}

#[test]
fn a_view_s_bitrate_follows_remb_tmmbr_and_reported_loss() {
    use crate::rtcp::{Remb, ReportBlock, Tmmbr, TmmbrEntry};
    let mut h = Harness::new(2, Layout::SpeakerOnly, SelfPaneMode::Skip);
    h.run(10);
    let target = |h: &Harness, n: usize| h.mix.stats(h.parties[n].id).unwrap().tx_target_bitrate;
    assert_eq!((target(&h, 0), target(&h, 1)), (400_000, 400_000));
    // Party 0 estimates 200 kbit/s: its view's encoder is rebuilt at that rate
    // once the 2 s hold since it was built has passed; party 1's is not.
    let (ssrc0, mix0) = (h.parties[0].ssrc, h.parties[0].mix_ssrc.unwrap());
    h.send_rtcp(
        0,
        &[
            RtcpPacket::ReceiverReport(ReceiverReport { ssrc: ssrc0, reports: Vec::new() }),
            RtcpPacket::Remb(Remb { sender_ssrc: ssrc0, bitrate_bps: 200_000, ssrcs: vec![mix0] }),
        ],
    );
    h.run(10);
    assert_eq!(target(&h, 0), 400_000, "rebuilt inside the hold");
    h.run(55);
    assert_eq!((target(&h, 0), target(&h, 1)), (200_000, 400_000));
    h.assert_sees(0, Layout::SpeakerOnly, &[1]);
    // Party 1 reports 25 % loss twice: each cuts by half the loss (400 → 350 → 306 kbit/s).
    let (ssrc1, mix1) = (h.parties[1].ssrc, h.parties[1].mix_ssrc.unwrap());
    let lossy = ReportBlock { ssrc: mix1, fraction_lost: 64, ..ReportBlock::default() };
    for _ in 0..2 {
        h.send_rtcp(1, &[RtcpPacket::ReceiverReport(ReceiverReport { ssrc: ssrc1, reports: vec![lossy] })]);
    }
    h.run(3);
    assert_eq!(target(&h, 1), 306_250);
    // A TMMBR for our stream limits it further; other streams' entries do not count.
    let entries = vec![
        TmmbrEntry { ssrc: mix1 ^ 1, bitrate_bps: 100_000, overhead: 40 },
        TmmbrEntry { ssrc: mix1, bitrate_bps: 180_000, overhead: 40 },
    ];
    h.send_rtcp(
        1,
        &[
            RtcpPacket::ReceiverReport(ReceiverReport { ssrc: ssrc1, reports: Vec::new() }),
            RtcpPacket::Tmmbr(Tmmbr { sender_ssrc: ssrc1, entries }),
        ],
    );
    // It is answered at once with a TMMBN: the bounding set is its request.
    h.run(1);
    let owed = TmmbrEntry { ssrc: ssrc1, bitrate_bps: 180_000, overhead: 40 };
    assert_eq!(h.parties[1].tmmbns, vec![crate::rtcp::Tmmbn { sender_ssrc: mix1, entries: vec![owed] }]);
    assert!(h.parties[0].tmmbns.is_empty());
    h.run(64);
    assert_eq!(target(&h, 1), 180_000);
    h.assert_sees(1, Layout::SpeakerOnly, &[0]);
}

#[test]
fn a_sender_shown_only_small_is_asked_for_less_and_for_its_full_rate_when_it_grows() {
    use crate::video::source_rate::{class_for, LOWER_HOLD};
    // Parties 0-2 take TMMBR, party 3 only REMB; all are sent 720p (what a
    // sender needs follows the pixels its pane fills).
    const HD: (u32, u32) = MAX_VIDEO_SIZE;
    let mut h = Harness::with(4, Layout::Telepresence, SelfPaneMode::Skip, |n, config| {
        config.bitrate_request = if n == 3 { BitrateRequestMethod::Remb } else { BitrateRequestMethod::Tmmbr };
        config.max_size = HD;
    });
    let hold = (LOWER_HOLD.as_millis() / FRAME.as_millis()) as u32;
    h.run(hold + 10);
    // Party 0 holds the floor (big for the others), party 1 is big in party
    // 0's view; parties 2 and 3 are only ever thumbnails.
    let mut panes = Vec::new();
    Layout::Telepresence.panes(3, HD.0, HD.1, &mut panes);
    let thumb = f64::from(panes[1].width * panes[1].height) / f64::from(HD.0 * HD.1);
    let small = u64::from(class_for(400_000, thumb));
    assert!(small < 400_000);
    for n in [0, 1] {
        assert!(h.parties[n].limits.is_empty(), "party {n} shown large was asked {:?}", h.parties[n].limits);
        assert_eq!(h.mix.stats(h.parties[n].id).unwrap().source_limit, 0);
    }
    for n in [2, 3] {
        let limits = &h.parties[n].limits;
        assert!(!limits.is_empty() && limits.iter().all(|&l| l == small), "party {n}: {limits:?}, not {small}");
        assert_eq!(u64::from(h.mix.stats(h.parties[n].id).unwrap().source_limit), small);
    }
    // Party 2 speaks: its full rate is asked for in the frame it takes the
    // floor, not after a hold.
    for _ in 0..SpeakerOrder::DEFAULT_HOLD_TICKS {
        h.mix.speaker_tick(Some(h.parties[2].id));
    }
    h.parties[2].limits.clear();
    h.run(1);
    assert_eq!(h.parties[2].limits, vec![400_000]);
    // Party 1 is now big nowhere (party 2 sees party 0): lowered after the hold.
    h.run(hold + 10);
    assert_eq!(h.parties[1].limits.last(), Some(&small));
    assert_eq!(h.parties[0].limits, Vec::<u64>::new(), "party 0 is big in party 2's view");
}

#[test]
fn a_sender_filling_a_small_view_is_asked_for_what_that_view_needs() {
    use crate::video::source_rate::{class_for, LOWER_HOLD};
    // Two parties, each the other's whole (320x180) picture: a sixteenth of
    // 720p's pixels, so neither needs to send more than the smallest class.
    let mut h = Harness::with(2, Layout::SpeakerOnly, SelfPaneMode::Skip, |_, config| {
        config.bitrate_request = BitrateRequestMethod::Tmmbr;
    });
    h.run((LOWER_HOLD.as_millis() / FRAME.as_millis()) as u32 + 10);
    let share = f64::from(VIEW.0 * VIEW.1) / f64::from(MAX_VIDEO_SIZE.0 * MAX_VIDEO_SIZE.1);
    for p in &h.parties {
        assert_eq!(p.limits.last(), Some(&u64::from(class_for(400_000, share))));
    }
    h.assert_sees(0, Layout::SpeakerOnly, &[1]);
}

/// DTLS-SRTP: a party attached with its keys pending is sent nothing (no
/// video, no RTCP, nothing in clear) and not shown; what it sends is
/// dropped and counted. Once its keys are set, video flows both ways.
#[test]
fn a_party_with_pending_keys_gets_nothing_and_is_not_shown_until_its_keys_are_set() {
    use crate::engine::SrtpKeys;
    use crate::srtp::{SrtpContext, SrtpProfile};
    let keys = |n: u8| SrtpKeys { profile: SrtpProfile::AesCm128HmacSha1_80, key: vec![n; 16], salt: vec![n; 14] };
    let context = |k: &SrtpKeys| SrtpContext::new(k.profile, &k.key, &k.salt).unwrap();
    let mut h = Harness::with(2, Layout::AllEqual, SelfPaneMode::Skip, |n, c| c.srtp_pending = n == 1);
    h.parties[1].srtp = Some((context(&keys(1)), context(&keys(2))));
    // 6 s: past the first RTCP report's time.
    h.run(180);
    assert_eq!(h.parties[1].received, 0, "sent to a party before its keys");
    let stats = h.mix.stats(h.parties[1].id).unwrap();
    assert_eq!((stats.packets_in, stats.frames_in, stats.packets_out), (0, 0, 0));
    assert!(stats.unkeyed >= 180, "{stats:?}");
    assert_eq!(stats.refused, 0);
    // Party 0 sees party 1's placeholder, not its colour.
    let mut panes = Vec::new();
    Layout::AllEqual.panes(1, VIEW.0, VIEW.1, &mut panes);
    assert!(!close(h.seen_at(0, panes[0]), h.parties[1].colour));

    h.mix.set_srtp_keys(h.parties[1].id, &keys(1), &keys(2)).unwrap();
    h.run(30);
    h.assert_sees(0, Layout::AllEqual, &[1]);
    h.assert_sees(1, Layout::AllEqual, &[0]);
}

/// A receiver with `nack` that reports lost packets gets them again, as
/// they were sent; one without gets nothing.
#[test]
fn a_nack_gets_the_lost_packets_sent_again() {
    let mut h = Harness::with(2, Layout::AllEqual, SelfPaneMode::Skip, |n, c| c.nack = n == 1);
    h.run(6);
    let (id0, id1) = (h.parties[0].id, h.parties[1].id);
    let kept: Vec<u16> = {
        let e = &h.mix.endpoints[&id1];
        (0..u16::MAX).filter(|s| e.retransmit.get(*s).is_some()).take(3).collect()
    };
    assert_eq!(kept.len(), 3, "what party 1 was sent is kept");
    let ssrc1 = h.parties[1].mix_ssrc.unwrap();
    let nack = Nack { sender_ssrc: 1, media_ssrc: ssrc1, lost: kept.clone() };
    h.send_rtcp(1, &[RtcpPacket::Nack(nack)]);
    let ssrc0 = h.parties[0].mix_ssrc.unwrap();
    h.send_rtcp(0, &[RtcpPacket::Nack(Nack { sender_ssrc: 2, media_ssrc: ssrc0, lost: kept })]);
    h.run(1);
    assert_eq!(h.mix.stats(id1).unwrap().retransmitted, 3);
    assert_eq!(h.mix.stats(id0).unwrap().retransmitted, 0);
    assert!(h.mix.endpoints[&id0].retransmit.get(0).is_none() && h.mix.endpoints[&id1].resend.is_empty());
}

/// A receiver in packetization mode 0 beside mode-1 receivers of the same
/// 720p view (`self` pane mode: all three see one picture): the view is encoded in slices that each fit one packet, so it
/// gets only single NAL unit packets within the payload size and decodes
/// every picture; the mode-1 receivers decode the same encode.
#[test]
fn a_mode_0_receiver_gets_slices_that_each_fit_a_packet() {
    let mut h = Harness::with(3, Layout::AllEqual, SelfPaneMode::ShowSelf, |n, c| {
        c.max_size = (1280, 720);
        c.bitrate = 1_500_000;
        if n == 2 {
            c.packetization_mode = crate::video::h264_rtp::PacketizationMode::SingleNalUnit;
        }
    });
    // Textured cameras (a checkerboard), so a 720p picture is far larger
    // than a packet.
    for p in &mut h.parties {
        let width = SOURCE.width as usize;
        let (y, _, _) = p.picture.planes_mut();
        for (i, px) in y.iter_mut().enumerate() {
            let (x, row) = (i % width, i / width);
            *px = px.saturating_add(if (x / 8 + row / 8) % 2 == 0 { 40 } else { 0 });
        }
    }
    h.run(15);
    let mode_0 = &h.parties[2];
    assert!(mode_0.frames_seen >= 10, "the mode-0 receiver decoded {} pictures", mode_0.frames_seen);
    assert_eq!(mode_0.aggregated_or_fragmented, 0, "only single NAL unit packets to mode 0");
    assert!(mode_0.largest_payload <= MAX_PAYLOAD, "a {} byte payload", mode_0.largest_payload);
    assert!(h.parties[0].frames_seen >= 10 && h.parties[1].frames_seen >= 10);
    // The same encode reached mode 1 in slices: no FU-A needed either, but
    // pictures were many packets (it would not fit one without slicing).
    let packets_per_picture = h.parties[0].received / 15;
    assert!(packets_per_picture > 2, "{packets_per_picture} packets a picture");
}
