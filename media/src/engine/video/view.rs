//! Views and their encoders: each distinct [`ViewKey`] (which names the
//! codec) is composed once, encoded once (at the bitrate its most limited
//! receiver can take), and packetized once (per packetization mode for
//! H.264); then only the RTP header and
//! SRTP are per receiver, in each receiver's [`RtpSession`](crate::engine::session::RtpSession).

use std::time::Instant;

use rayon::prelude::*;

use super::rate::{rebuild_due, view_target};
use super::{VideoMix, VideoTickSummary, MAX_VIDEO_SIZE};
use crate::engine::{EndpointId, EngineError, Flow, Outgoing};
use crate::video::codec::{EncoderSettings, VideoCodec, VideoEncoder, VideoPacketizer};
use crate::video::compose::ViewKey;
use crate::video::frame::I420Frame;
use crate::video::h264_rtp::{PacketizationMode, RtpPayloads};

/// One distinct view's encoder and this tick's packets of it.
pub(super) struct View {
    encoder: VideoEncoder,
    /// What the encoder was built with.
    settings: EncoderSettings,
    /// Its own, for VP8's picture IDs, which count the view's frames.
    packetizer: VideoPacketizer,
    /// When the encoder was (re)built, for [`BITRATE_HOLD`].
    built: Instant,
    /// The view's picture: each view has its own, so that views compose and
    /// encode at once on several threads.
    canvas: I420Frame,
    /// This frame's access unit, copied out of the encoder (empty: skipped).
    encoded: Vec<u8>,
    /// It is an IDR.
    keyframe: bool,
    payloads: RtpPayloads,
    /// Mode-0 packets, made only when a receiver of the view needs them.
    single_nal_payloads: Option<RtpPayloads>,
}

impl VideoMix {
    /// Composes and encodes the views `keys` (in parallel), then sends each
    /// to its receivers.
    pub(super) fn encode_views(
        &mut self,
        now: Instant,
        ticks_90k: u32,
        keys: &[ViewKey],
        order: &[EndpointId],
        out: &mut Vec<Outgoing>,
        summary: &mut VideoTickSummary,
    ) -> Result<(), EngineError> {
        let mut jobs: Vec<(ViewKey, View)> = Vec::with_capacity(keys.len());
        let mut result = Ok(());
        for key in keys {
            match self.prepare_view(now, key, order) {
                Ok(Some(view)) => jobs.push((key.clone(), view)),
                Ok(None) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // The parallel part: each view composed from the scaled panes and
        // encoded, on its own thread.
        let pictures: Vec<(EndpointId, &I420Frame)> = self
            .endpoints
            .iter()
            .filter(|(_, e)| !e.rx_muted)
            .filter_map(|(id, e)| e.picture.as_ref().map(|p| (*id, p)))
            .collect();
        let compositor = &self.compositor;
        let encode = |key: &ViewKey, view: &mut View| -> Result<(), EngineError> {
            let input = |p: EndpointId| pictures.iter().find(|(id, _)| *id == p).map(|(_, f)| *f);
            compositor.assemble(key, order, input, &mut view.canvas).map_err(|e| EngineError::Video(e.to_string()))?;
            let unit = view.encoder.encode(now, &view.canvas).map_err(|e| EngineError::Video(e.to_string()))?;
            view.keyframe = unit.keyframe;
            view.encoded.clear();
            view.encoded.extend_from_slice(unit.data);
            Ok(())
        };
        let encoded: Vec<Result<(), EngineError>> = match &self.pool {
            Some(pool) if jobs.len() > 1 => {
                pool.install(|| jobs.par_iter_mut().map(|(key, view)| encode(key, view)).collect())
            }
            _ => jobs.iter_mut().map(|(key, view)| encode(key, view)).collect(),
        };
        drop(pictures);
        for ((key, mut view), encoded) in jobs.into_iter().zip(encoded) {
            match encoded {
                Ok(()) => {
                    summary.encodes += 1;
                    if let Err(e) = self.send_view(ticks_90k, &key, &mut view, out, summary) {
                        result = result.and(Err(e));
                    }
                }
                Err(e) => result = result.and(Err(e)),
            }
            self.views.insert(key, view);
        }
        result
    }

    /// The sequential part of a view before its encode: its bitrate, its
    /// encoder (made, or rebuilt for a new bitrate), its receivers'
    /// keyframe requests, and its panes scaled. `None`: nobody receives it.
    fn prepare_view(&mut self, now: Instant, key: &ViewKey, order: &[EndpointId]) -> Result<Option<View>, EngineError> {
        let Some(ids) = self.receivers.get(key) else { return Ok(None) };
        let target = view_target(ids.iter().filter_map(|id| self.endpoints.get(id)).map(|e| e.rate.limit()));
        // A receiver in packetization mode 0 takes only NAL units that fit
        // a packet: the view is then encoded in slices that do, once for
        // every receiver (mode-1 receivers take them as well).
        let mode_0 = ids
            .iter()
            .filter_map(|id| self.endpoints.get(id))
            .any(|e| e.config.packetization_mode == PacketizationMode::SingleNalUnit);
        let max_nal_size = (mode_0 && key.codec == VideoCodec::H264).then_some(super::MAX_PAYLOAD as u32);
        let endpoints = &self.endpoints;
        self.compositor
            .prepare(key, order, |p| endpoints.get(&p).filter(|e| !e.rx_muted).and_then(|e| e.picture.as_ref()))
            .map_err(|e| EngineError::Video(e.to_string()))?;
        let mut view = match self.views.remove(key) {
            Some(view) => view,
            None => {
                let (encoder, settings) = new_encoder(key, target, max_nal_size)?;
                let packetizer = VideoPacketizer::new(key.codec, super::MAX_PAYLOAD).map_err(EngineError::Video)?;
                View {
                    encoder,
                    settings,
                    packetizer,
                    built: now,
                    canvas: I420Frame::new(key.width, key.height).map_err(|e| EngineError::Video(e.to_string()))?,
                    encoded: Vec::new(),
                    keyframe: false,
                    payloads: RtpPayloads::new(),
                    single_nal_payloads: None,
                }
            }
        };
        let slicing_changed = view.settings.max_nal_size != max_nal_size;
        if slicing_changed || rebuild_due(view.settings.bitrate, target, view.built, now) {
            // Its first frame is an IDR, which every receiver of the view can take.
            match new_encoder(key, target, max_nal_size) {
                Ok((encoder, settings)) => (view.encoder, view.settings) = (encoder, settings),
                Err(e) => {
                    self.views.insert(key.clone(), view);
                    return Err(e);
                }
            }
            view.built = now;
        }
        for id in ids {
            if let Some(e) = self.endpoints.get_mut(id) {
                if e.view.as_ref() != Some(key) {
                    e.awaiting_keyframe = true;
                }
                if e.wants_keyframe || e.awaiting_keyframe {
                    view.encoder.request_keyframe();
                }
                e.wants_keyframe = false;
                e.view = Some(key.clone());
            }
        }
        Ok(Some(view))
    }

    /// Packetizes a view's encoded frame once (per packetization mode) and
    /// sends it to each of its receivers.
    fn send_view(
        &mut self,
        ticks_90k: u32,
        key: &ViewKey,
        view: &mut View,
        out: &mut Vec<Outgoing>,
        summary: &mut VideoTickSummary,
    ) -> Result<(), EngineError> {
        let Some(ids) = self.receivers.get(key) else { return Ok(()) };
        let unit_keyframe = view.keyframe;
        if view.encoded.is_empty() {
            return Ok(());
        }
        view.packetizer.packetize(&view.encoded, &mut view.payloads).map_err(EngineError::Video)?;
        view.single_nal_payloads = None;
        let needs_mode_0 = ids
            .iter()
            .filter_map(|id| self.endpoints.get(id))
            .any(|e| e.config.packetization_mode == PacketizationMode::SingleNalUnit);
        if needs_mode_0 {
            // A NAL unit over the payload size cannot go in mode 0: those
            // receivers miss the frame and will ask for a keyframe.
            view.single_nal_payloads = view.packetizer.packetize_single_nal(&view.encoded);
        }
        for id in ids {
            let Some(e) = self.endpoints.get_mut(id) else { continue };
            // A view is in one codec; VP8 receivers' mode is left at 1.
            let payloads = match e.config.packetization_mode {
                PacketizationMode::NonInterleaved => Some(&view.payloads),
                PacketizationMode::SingleNalUnit => view.single_nal_payloads.as_ref(),
            };
            let Some(payloads) = payloads else { continue };
            if e.awaiting_keyframe && !unit_keyframe {
                continue;
            }
            if !e.session.can_send() {
                e.session.count_unkeyed();
                continue;
            }
            e.awaiting_keyframe = false;
            let timestamp = e.session.timestamp_base().wrapping_add(ticks_90k);
            e.session.set_timestamp(timestamp);
            e.stats.frames_out += 1;
            e.stats.tx_size = (key.width, key.height);
            e.stats.tx_target_bitrate = view.settings.bitrate;
            for (payload, marker) in payloads.iter() {
                let mut bytes = Vec::with_capacity(payload.len() + 40);
                e.session.write_rtp(marker, e.config.payload_type, timestamp, &[], payload, &mut bytes)?;
                if e.config.nack {
                    e.retransmit.remember(&bytes);
                }
                summary.packets += 1;
                out.push(Outgoing { endpoint: *id, flow: Flow::VideoRtp, bytes });
            }
        }
        Ok(())
    }
}

/// The picture a receiver is sent: within its SDP limit, its `qualityMain`
/// cap and [`MAX_VIDEO_SIZE`], each side even and at least 16 pixels (an
/// H.264 macroblock).
pub(super) fn view_size(sdp: (u32, u32), quality: (u32, u32)) -> (u32, u32) {
    let side = |a: u32, b: u32, max: u32| (a.min(b).min(max).max(16)) & !1;
    (side(sdp.0, quality.0, MAX_VIDEO_SIZE.0), side(sdp.1, quality.1, MAX_VIDEO_SIZE.1))
}

/// An encoder for `key`'s picture, in its codec, at `bitrate`.
fn new_encoder(
    key: &ViewKey,
    bitrate: u32,
    max_nal_size: Option<u32>,
) -> Result<(VideoEncoder, EncoderSettings), EngineError> {
    let settings = EncoderSettings { codec: key.codec, width: key.width, height: key.height, bitrate, max_nal_size };
    VideoEncoder::new(settings).map_err(|e| EngineError::Video(e.to_string()))
}
