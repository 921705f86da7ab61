//! VP8 through libvpx (the system library, bound by `env-libvpx-sys`), for
//! browsers that avoid H.264 (CMS's `chromeWebRtcVideoCodec=avoidH264`).
//!
//! The same contract as [`super::h264`]: the encoder takes [`I420Frame`]s
//! and gives one [`AccessUnit`] per frame (one VP8 frame, as RFC 7741
//! carries it), the decoder does the reverse. The encoder is set up the way
//! a real-time bridge needs it, close to what browsers' own WebRTC stacks
//! do: one thread (the media workers are the parallelism), no lookahead,
//! CBR with frame dropping allowed (REMB/TMMBR limits must hold), error
//! resilient (a receiver that lost a packet recovers on the next keyframe
//! without reference to the entropy state of frames it never saw), and no
//! periodic keyframes: they come on request ([`Vp8Encoder::request_keyframe`]),
//! rate-limited by the same [`KeyframeGate`] as H.264.
//!
//! libvpx is C: each call is an `unsafe` block with the invariant it relies
//! on. Its codec context is boxed so its address never changes after
//! initialisation, and destroyed exactly once, in `Drop`.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_uint, c_ulong};
use std::ptr;
use std::time::Instant;

use vpx_sys as vpx;

use super::frame::{FrameError, I420Frame, MAX_DIMENSION};
use super::h264::{AccessUnit, KeyframeGate, VideoCodecError, MIN_IDR_INTERVAL};

/// The RTP clock of video, and so the encoder's timebase: a pts is then an
/// RTP timestamp offset and nothing is rescaled.
const TIMEBASE_HZ: u32 = 90_000;

/// libvpx's speed/quality trade-off for VP8 in real-time mode: -16 to 16,
/// faster with the magnitude; negative means "adapt to stay real-time, at
/// least this fast". Browsers use -6 on desktops; a bridge runs many encodes,
/// the dearest step of a view, and -8 took a 720p encode from 1.8 to 1.5
/// times OpenH264's (`cargo bench --bench video -- '^(h264|vp8)/'`).
const CPU_USED: c_int = -8;

/// An encoder's settings: one resolution/bitrate class of a shared encode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vp8EncoderConfig {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// The highest frame rate the encoder will be fed, for rate control.
    pub max_fps: f32,
}

/// A libvpx codec context (encoder or decoder) that was initialised and is
/// destroyed on drop.
struct Context {
    /// Boxed: libvpx keeps pointers into its own private state, not into the
    /// context, but nothing promises the context may move, so it never does.
    ctx: Box<vpx::vpx_codec_ctx_t>,
}

// SAFETY: a libvpx context has no thread affinity (no thread-local state, no
// callbacks into the creating thread); it only must not be used from two
// threads at once, which `&mut self` on every call guarantees. It is not
// `Sync`.
unsafe impl Send for Context {}

impl Context {
    /// An all-zero context, what libvpx's init functions expect to fill in.
    fn zeroed() -> Box<vpx::vpx_codec_ctx_t> {
        // SAFETY: the context is plain C data: null pointers, a zero error
        // code (VPX_CODEC_OK) and a union of pointers are all valid zeroed.
        Box::new(unsafe { std::mem::zeroed() })
    }

    /// The context's last error, with libvpx's detail when it has one.
    fn error(&mut self, code: vpx::vpx_codec_err_t) -> VideoCodecError {
        // SAFETY: the context is initialised; both functions return null or
        // a NUL-terminated string owned by libvpx that lives at least until
        // the next call on the context, and we copy it at once.
        let detail = unsafe { text(vpx::vpx_codec_error_detail(&mut *self.ctx)) };
        let message = code_text(code);
        VideoCodecError::Vpx(match detail {
            Some(detail) => format!("{message}: {detail}"),
            None => message,
        })
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: a `Context` exists only once init succeeded, and this is
        // the one place it is destroyed. The result is of no use here.
        unsafe {
            vpx::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// libvpx's text for an error code.
fn code_text(code: vpx::vpx_codec_err_t) -> String {
    // SAFETY: vpx_codec_err_to_string returns a static string for any code.
    unsafe { text(vpx::vpx_codec_err_to_string(code)) }.unwrap_or_else(|| format!("{code:?}"))
}

/// Copies a C string from libvpx.
///
/// # Safety
/// `s` is null or points to a NUL-terminated string valid for this call.
unsafe fn text(s: *const c_char) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated, as the caller promises.
    Some(unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
}

/// A VP8 encoder for one view at one resolution/bitrate class.
pub struct Vp8Encoder {
    ctx: Context,
    config: Vp8EncoderConfig,
    keyframes: KeyframeGate,
    /// The first frame's time: pts are 90 kHz ticks from here.
    origin: Option<Instant>,
    /// The last pts given: libvpx wants them strictly increasing.
    last_pts: Option<i64>,
    /// One frame's duration at `max_fps`, in 90 kHz ticks.
    frame_duration: c_ulong,
    /// A keyframe the gate let through went out as no frame at all (rate
    /// control dropped it): the next frame is forced instead.
    keyframe_owed: bool,
    out: Vec<u8>,
}

impl std::fmt::Debug for Vp8Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Encoder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Vp8Encoder {
    /// An encoder with these settings.
    pub fn new(config: Vp8EncoderConfig) -> Result<Self, VideoCodecError> {
        if config.width == 0 || config.height == 0 || config.width % 2 == 1 || config.height % 2 == 1 {
            return Err(VideoCodecError::Config("width and height must be even and non-zero"));
        }
        if config.width > MAX_DIMENSION || config.height > MAX_DIMENSION {
            return Err(VideoCodecError::Config("width and height must be at most 4096"));
        }
        if config.bitrate == 0 || !(config.max_fps > 0.0 && config.max_fps <= 120.0) {
            return Err(VideoCodecError::Config("bitrate must be non-zero and max_fps in (0, 120]"));
        }
        // SAFETY: vpx_codec_vp8_cx returns a pointer to libvpx's static VP8
        // encoder interface.
        let iface = unsafe { vpx::vpx_codec_vp8_cx() };
        // Not zeroed: the configuration holds enums with no zero variant
        // (g_bit_depth); libvpx writes the whole struct.
        let mut cfg = std::mem::MaybeUninit::<vpx::vpx_codec_enc_cfg_t>::uninit();
        // SAFETY: `iface` is valid and `cfg` writable memory for one
        // configuration.
        let code = unsafe { vpx::vpx_codec_enc_config_default(iface, cfg.as_mut_ptr(), 0) };
        if code != vpx::VPX_CODEC_OK {
            return Err(VideoCodecError::Vpx(code_text(code)));
        }
        // SAFETY: on success libvpx copied its default configuration, every
        // field, into `cfg`.
        let mut cfg = unsafe { cfg.assume_init() };
        cfg.g_w = config.width;
        cfg.g_h = config.height;
        cfg.g_threads = 1;
        cfg.g_timebase = vpx::vpx_rational { num: 1, den: TIMEBASE_HZ as c_int };
        cfg.g_lag_in_frames = 0;
        cfg.g_error_resilient = vpx::VPX_ERROR_RESILIENT_DEFAULT;
        cfg.g_pass = vpx::vpx_enc_pass::VPX_RC_ONE_PASS;
        cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = config.bitrate.div_ceil(1000);
        // Rate-control settings of browsers' WebRTC VP8 encoders: a buffer
        // of about one second, quantizers kept out of the extremes, and a
        // frame dropped when the buffer runs 30 % low rather than the
        // bitrate overshooting.
        cfg.rc_dropframe_thresh = 30;
        cfg.rc_resize_allowed = 0;
        cfg.rc_min_quantizer = 2;
        cfg.rc_max_quantizer = 56;
        cfg.rc_undershoot_pct = 100;
        cfg.rc_overshoot_pct = 15;
        cfg.rc_buf_initial_sz = 500;
        cfg.rc_buf_optimal_sz = 600;
        cfg.rc_buf_sz = 1000;
        // Keyframes only when asked for (and the first frame).
        cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_DISABLED;
        let mut ctx = Context::zeroed();
        // SAFETY: `ctx` is a zeroed context at a stable address, `iface` the
        // VP8 encoder and `cfg` a configuration that libvpx copies into the
        // encoder's own state during init (it keeps no pointer to it). The
        // ABI version is that of the bindings, which match the installed
        // library's version (the -sys crate picks them by pkg-config).
        let code =
            unsafe { vpx::vpx_codec_enc_init_ver(&mut *ctx, iface, &cfg, 0, vpx::VPX_ENCODER_ABI_VERSION as c_int) };
        if code != vpx::VPX_CODEC_OK {
            // libvpx destroyed the half-made context itself.
            return Err(VideoCodecError::Vpx(code_text(code)));
        }
        let mut ctx = Context { ctx };
        for (control, value) in [
            (vpx::vp8e_enc_control_id::VP8E_SET_CPUUSED, CPU_USED),
            // Skip the encode of blocks that barely change: most of a
            // composed view is still between speakers' moves.
            (vpx::vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD, 1),
            (vpx::vp8e_enc_control_id::VP8E_SET_NOISE_SENSITIVITY, 0),
        ] {
            // SAFETY: the context is an initialised VP8 encoder; these
            // controls take one `int` through the variadic argument, which
            // is what we pass.
            let code = unsafe { vpx::vpx_codec_control_(&mut *ctx.ctx, control as c_int, value) };
            if code != vpx::VPX_CODEC_OK {
                return Err(ctx.error(code));
            }
        }
        let frame_duration = (f64::from(TIMEBASE_HZ) / f64::from(config.max_fps)).round().max(1.0) as c_ulong;
        Ok(Self {
            ctx,
            config,
            keyframes: KeyframeGate::new(MIN_IDR_INTERVAL),
            origin: None,
            last_pts: None,
            frame_duration,
            keyframe_owed: false,
            out: Vec::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &Vp8EncoderConfig {
        &self.config
    }

    /// A receiver asked for a keyframe (RTCP PLI or FIR). Coalesced: the
    /// next keyframe comes with the first frame at least
    /// [`MIN_IDR_INTERVAL`] after the previous one.
    pub fn request_keyframe(&mut self) {
        self.keyframes.request();
    }

    /// Encodes `frame`, captured at `now`, into one VP8 frame; its data is
    /// empty when rate control dropped the frame.
    pub fn encode(&mut self, now: Instant, frame: &I420Frame) -> Result<AccessUnit<'_>, VideoCodecError> {
        VideoCodecError::check_frame_size(frame, self.config.width, self.config.height)?;
        let origin = *self.origin.get_or_insert(now);
        let ticks = now.saturating_duration_since(origin).as_micros() * u128::from(TIMEBASE_HZ) / 1_000_000;
        let ticks = i64::try_from(ticks).unwrap_or(i64::MAX);
        let pts = match self.last_pts {
            Some(last) if ticks <= last => last.saturating_add(1),
            _ => ticks,
        };
        self.last_pts = Some(pts);
        let force = self.keyframes.take(now) || std::mem::take(&mut self.keyframe_owed);
        let flags = if force { vpx::VPX_EFLAG_FORCE_KF as vpx::vpx_enc_frame_flags_t } else { 0 };
        let image = wrap(frame)?;
        // SAFETY: the context is an initialised VP8 encoder; `image`
        // describes `frame`'s planes with their strides and sizes (checked
        // against the encoder's above), which libvpx only reads, and which
        // `frame`'s borrow keeps alive for the call. With no lookahead
        // (g_lag_in_frames 0) the encoder copies or encodes the picture
        // before returning and keeps no pointer to it.
        let code = unsafe {
            vpx::vpx_codec_encode(
                &mut *self.ctx.ctx,
                &image,
                pts,
                self.frame_duration,
                flags,
                c_ulong::from(vpx::VPX_DL_REALTIME),
            )
        };
        if code != vpx::VPX_CODEC_OK {
            return Err(self.ctx.error(code));
        }
        self.out.clear();
        let mut keyframe = false;
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: the context is initialised and `iter` starts null, as
            // the iteration protocol asks; packets stay valid until the next
            // encode call.
            let packet = unsafe { vpx::vpx_codec_get_cx_data(&mut *self.ctx.ctx, &mut iter) };
            // SAFETY: null or a valid packet owned by the encoder.
            let Some(packet) = (unsafe { packet.as_ref() }) else { break };
            if packet.kind != vpx::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                continue;
            }
            // SAFETY: `kind` says the union holds a frame.
            let data = unsafe { packet.data.frame };
            if !data.buf.is_null() && data.sz > 0 {
                let Ok(len) = usize::try_from(data.sz) else { continue };
                // SAFETY: libvpx gives `sz` bytes at `buf`, valid until the
                // next call on the encoder; we copy them now.
                self.out.extend_from_slice(unsafe { std::slice::from_raw_parts(data.buf.cast::<u8>(), len) });
            }
            keyframe |= data.flags & vpx::VPX_FRAME_IS_KEY != 0;
        }
        if keyframe {
            self.keyframes.note_idr(now);
        } else if force {
            self.keyframe_owed = true;
        }
        Ok(AccessUnit { data: &self.out, keyframe })
    }
}

/// A `vpx_image_t` describing `frame`'s planes in place, without a copy.
fn wrap(frame: &I420Frame) -> Result<vpx::vpx_image_t, VideoCodecError> {
    let (y_stride, c_stride) = frame.strides();
    let (Ok(y_stride), Ok(c_stride)) = (c_int::try_from(y_stride), c_int::try_from(c_stride)) else {
        return Err(FrameError::Size { width: frame.width(), height: frame.height() }.into());
    };
    // SAFETY: the image is plain C data; all-zero is a valid empty image
    // (null planes, VPX_IMG_FMT_NONE), filled in below.
    let mut image: vpx::vpx_image_t = unsafe { std::mem::zeroed() };
    image.fmt = vpx::vpx_img_fmt::VPX_IMG_FMT_I420;
    image.cs = vpx::vpx_color_space::VPX_CS_BT_601;
    image.range = vpx::vpx_color_range::VPX_CR_STUDIO_RANGE;
    image.bit_depth = 8;
    image.w = frame.width();
    image.h = frame.height();
    image.d_w = frame.width();
    image.d_h = frame.height();
    image.x_chroma_shift = 1;
    image.y_chroma_shift = 1;
    image.bps = 12;
    // libvpx's planes are `*mut` for images it owns; an encoder only reads.
    image.planes[vpx::VPX_PLANE_Y as usize] = frame.y().as_ptr().cast_mut();
    image.planes[vpx::VPX_PLANE_U as usize] = frame.u().as_ptr().cast_mut();
    image.planes[vpx::VPX_PLANE_V as usize] = frame.v().as_ptr().cast_mut();
    image.stride[vpx::VPX_PLANE_Y as usize] = y_stride;
    image.stride[vpx::VPX_PLANE_U as usize] = c_stride;
    image.stride[vpx::VPX_PLANE_V as usize] = c_stride;
    Ok(image)
}

/// A VP8 decoder for one incoming stream.
pub struct Vp8Decoder {
    ctx: Context,
    /// Whether a keyframe has been decoded: before one, inter frames are not
    /// errors but simply not decodable yet.
    seen_keyframe: bool,
}

impl std::fmt::Debug for Vp8Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Decoder").field("seen_keyframe", &self.seen_keyframe).finish_non_exhaustive()
    }
}

impl Vp8Decoder {
    /// A decoder, waiting for a keyframe.
    pub fn new() -> Result<Self, VideoCodecError> {
        let mut ctx = Context::zeroed();
        let cfg = vpx::vpx_codec_dec_cfg_t { threads: 1, w: 0, h: 0 };
        // SAFETY: `ctx` is a zeroed context at a stable address; the VP8
        // decoder interface is static; libvpx copies `cfg` during init. The
        // ABI version is that of the bindings, which match the library.
        let code = unsafe {
            vpx::vpx_codec_dec_init_ver(
                &mut *ctx,
                vpx::vpx_codec_vp8_dx(),
                &cfg,
                0,
                vpx::VPX_DECODER_ABI_VERSION as c_int,
            )
        };
        if code != vpx::VPX_CODEC_OK {
            return Err(VideoCodecError::Vpx(code_text(code)));
        }
        Ok(Self { ctx: Context { ctx }, seen_keyframe: false })
    }

    /// Decodes one VP8 frame. Returns whether a picture came out (then `out`
    /// holds it, resized to the stream's size); an inter frame before any
    /// keyframe, or a frame not meant to be shown, gives `false`. Garbage
    /// gives an error or `false`, never a panic; the caller asks for a
    /// keyframe.
    pub fn decode(&mut self, frame: &[u8], out: &mut I420Frame) -> Result<bool, VideoCodecError> {
        let Some(&tag) = frame.first() else { return Ok(false) };
        // The frame tag's lowest bit is 0 on a keyframe (RFC 6386 §9.1).
        let keyframe = tag & 1 == 0;
        if !self.seen_keyframe && !keyframe {
            return Ok(false);
        }
        if let (true, Some(&[w0, w1, h0, h1])) = (keyframe, frame.get(6..10)) {
            // A keyframe's header gives its size, 14 bits a side after the
            // start code (RFC 6386 §9.1). libvpx would allocate what it says,
            // up to 16383x16383 (about 400 MB) for a ten-byte packet; a size
            // we could not hold anyway is refused first.
            let (width, height) =
                (u32::from(u16::from_le_bytes([w0, w1]) & 0x3fff), u32::from(u16::from_le_bytes([h0, h1]) & 0x3fff));
            if width > MAX_DIMENSION || height > MAX_DIMENSION {
                return Err(FrameError::Size { width, height }.into());
            }
        }
        let Ok(len) = c_uint::try_from(frame.len()) else {
            return Err(VideoCodecError::Vpx(format!("frame of {} bytes", frame.len())));
        };
        // SAFETY: the context is an initialised VP8 decoder; `frame` is
        // `len` readable bytes that libvpx reads during the call only.
        let code = unsafe { vpx::vpx_codec_decode(&mut *self.ctx.ctx, frame.as_ptr(), len, ptr::null_mut(), 0) };
        if code != vpx::VPX_CODEC_OK {
            return Err(self.ctx.error(code));
        }
        if keyframe {
            self.seen_keyframe = true;
        }
        let mut iter: vpx::vpx_codec_iter_t = ptr::null();
        // SAFETY: the context is initialised and `iter` starts null.
        let image = unsafe { vpx::vpx_codec_get_frame(&mut *self.ctx.ctx, &mut iter) };
        // SAFETY: null or an image owned by the decoder, valid until the
        // next decode call.
        let Some(image) = (unsafe { image.as_ref() }) else { return Ok(false) };
        copy_image(image, out)?;
        Ok(true)
    }
}

/// Copies a decoded I420 image into `out`.
fn copy_image(image: &vpx::vpx_image_t, out: &mut I420Frame) -> Result<(), VideoCodecError> {
    if image.fmt != vpx::vpx_img_fmt::VPX_IMG_FMT_I420 {
        return Err(VideoCodecError::Vpx(format!("decoded image in {:?}, not I420", image.fmt)));
    }
    let (w, h) = (image.d_w, image.d_h);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let y = plane(image, vpx::VPX_PLANE_Y, w, h)?;
    let u = plane(image, vpx::VPX_PLANE_U, cw, ch)?;
    let v = plane(image, vpx::VPX_PLANE_V, cw, ch)?;
    out.copy_from_planes(w, h, y, u, v)?;
    Ok(())
}

/// One plane of a decoded image, `height` rows of `width` bytes, and its
/// stride.
fn plane(image: &vpx::vpx_image_t, index: u32, width: u32, height: u32) -> Result<(&[u8], usize), VideoCodecError> {
    let bad = || VideoCodecError::Vpx(format!("decoded image of {}x{} has an unusable plane", image.d_w, image.d_h));
    let index = index as usize;
    let (Some(&pointer), Some(&stride)) = (image.planes.get(index), image.stride.get(index)) else { return Err(bad()) };
    let (Ok(stride), Ok(width), Ok(height)) =
        (usize::try_from(stride), usize::try_from(width), usize::try_from(height))
    else {
        return Err(bad());
    };
    if pointer.is_null() || width == 0 || height == 0 || stride < width {
        return Err(bad());
    }
    let len = stride * (height - 1) + width;
    // SAFETY: a decoded image has `height` rows of `stride` bytes from
    // `pointer` (the last at least `width`), owned by the decoder and valid
    // until its next call; the slice borrows `image`, which the caller holds
    // only until then.
    Ok((unsafe { std::slice::from_raw_parts(pointer, len) }, stride))
}

#[cfg(test)]
mod tests;
