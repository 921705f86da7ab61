//! Scaling a participant's picture into its pane.
//!
//! Our own scaler rather than the `fast_image_resize` crate. That crate is
//! well kept and has AVX2/SSE4.1/NEON convolution for `U8` planes, but:
//! - it needs Rust 1.87 and the workspace promises 1.85;
//! - its images are row-contiguous (no stride), so every pane of a composed
//!   frame would be a cropped view built per call, and our padded rows would
//!   need a copy;
//! - its filters size their support to the scale factor, which is the right
//!   thing for photos but costs several taps per output pixel on the 4–5×
//!   reductions of small panes; video panes at 30 fps are fine with less.
//!
//! What we do instead, per plane: while the source is at least twice the
//! destination both ways, halve it with a 2×2 box average (a cheap,
//! alias-free reduction the compiler vectorises), then bilinear-interpolate
//! the rest in 8-bit fixed point — a vertical blend of two rows that
//! vectorises, then a horizontal blend with precomputed taps. 720p to a
//! third is one halving and one bilinear pass. Not measured against
//! `fast_image_resize` side by side; `benches/video.rs` has our figures.

use super::frame::{I420Frame, Rect, Yuv};

/// Fixed-point weights have this many fractional bits.
const FRAC_BITS: u32 = 8;
const ONE: u32 = 1 << FRAC_BITS;

/// Reusable scratch buffers, so scaling allocates nothing once warm. One per
/// compositor (not shared between threads).
#[derive(Debug, Default)]
pub struct Scaler {
    /// Halved copies of the source plane (ping-pong).
    halves: [Vec<u8>; 2],
    /// One source row blended vertically, in 16-bit fixed point.
    row: Vec<u16>,
    /// Per output column: the left source column and the right weight.
    taps: Vec<(u32, u16)>,
}

/// Where a picture of `src_width` × `src_height` goes inside `area`, keeping its
/// aspect ratio (letterbox or pillarbox), centred, with even edges.
pub fn fit_rect(src_width: u32, src_height: u32, area: Rect) -> Rect {
    if src_width == 0 || src_height == 0 || area.width < 2 || area.height < 2 {
        return Rect { width: 0, height: 0, ..area };
    }
    let (sw, sh) = (u64::from(src_width), u64::from(src_height));
    let (aw, ah) = (u64::from(area.width), u64::from(area.height));
    let (w, h) = if aw * sh <= ah * sw { (aw, aw * sh / sw) } else { (ah * sw / sh, ah) };
    let (w, h) = ((w as u32 & !1).max(2), (h as u32 & !1).max(2));
    let x = area.x + (((area.width - w) / 2) & !1);
    let y = area.y + (((area.height - h) / 2) & !1);
    Rect::new(x, y, w, h)
}

impl Scaler {
    /// A scaler with empty scratch buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Scales all of `src` into `area` of `dst`, keeping its aspect ratio:
    /// the bars `area` has left over are painted `bars`. `area` is clipped to
    /// `dst`. Returns the rectangle the picture itself covers.
    pub fn scale_letterboxed(&mut self, src: &I420Frame, dst: &mut I420Frame, area: Rect, bars: Yuv) -> Rect {
        let area = area.clip(dst.width(), dst.height());
        let inner = fit_rect(src.width(), src.height(), area);
        if inner.width == 0 {
            dst.fill_rect(area, bars);
            return inner;
        }
        if inner != area {
            paint_bars(dst, area, inner, bars);
        }
        self.scale_into(src, dst, inner);
        inner
    }

    /// Scales all of `src` to exactly `rect` of `dst` (aspect ratio not
    /// kept). `rect` is clipped to `dst`; its position is rounded down to
    /// even so the chroma lines up.
    pub fn scale_into(&mut self, src: &I420Frame, dst: &mut I420Frame, rect: Rect) {
        let rect = Rect { x: rect.x & !1, y: rect.y & !1, ..rect }.clip(dst.width(), dst.height());
        if rect.width == 0 || rect.height == 0 {
            return;
        }
        let (src_ys, src_cs) = src.strides();
        let (dst_ys, dst_cs) = dst.strides();
        let (dy, du, dv) = dst.planes_mut();
        let luma_src = Plane { data: src.y(), stride: src_ys, width: src.width(), height: src.height() };
        let luma_dst = PlaneRect { stride: dst_ys, x: rect.x, y: rect.y, width: rect.width, height: rect.height };
        self.scale_plane(luma_src, dy, luma_dst);
        let chroma_dst = PlaneRect {
            stride: dst_cs,
            x: rect.x / 2,
            y: rect.y / 2,
            width: rect.width.div_ceil(2),
            height: rect.height.div_ceil(2),
        };
        let (cw, ch) = (src.chroma_width(), src.chroma_height());
        self.scale_plane(Plane { data: src.u(), stride: src_cs, width: cw, height: ch }, du, chroma_dst);
        self.scale_plane(Plane { data: src.v(), stride: src_cs, width: cw, height: ch }, dv, chroma_dst);
    }

    fn scale_plane(&mut self, src: Plane<'_>, dst: &mut [u8], to: PlaneRect) {
        let (mut w, mut h, mut steps) = (src.width, src.height, 0);
        while w >= 2 * to.width && h >= 2 * to.height {
            (w, h, steps) = (w / 2, h / 2, steps + 1);
        }
        if steps == 0 {
            return self.bilinear(src, dst, to);
        }
        // Taken out of `self` so `bilinear` can borrow `self` mutably while
        // reading the last halved plane.
        let mut halves = std::mem::take(&mut self.halves);
        let (mut w, mut h) = (src.width / 2, src.height / 2);
        halves[0].resize(w as usize * h as usize, 0);
        halve(src, &mut halves[0], w, h);
        let mut current = 0;
        for _ in 1..steps {
            let (nw, nh) = (w / 2, h / 2);
            let [a, b] = &mut halves;
            let (from, into) = if current == 0 { (&*a, b) } else { (&*b, a) };
            into.resize(nw as usize * nh as usize, 0);
            halve(Plane { data: from, stride: w as usize, width: w, height: h }, into, nw, nh);
            (w, h, current) = (nw, nh, current ^ 1);
        }
        self.bilinear(Plane { data: &halves[current], stride: w as usize, width: w, height: h }, dst, to);
        self.halves = halves;
    }

    /// Bilinear from `src` to `to` in `dst`, pixel centres aligned.
    fn bilinear(&mut self, src: Plane<'_>, dst: &mut [u8], to: PlaneRect) {
        let (sw, sh) = (src.width as usize, src.height as usize);
        let (dw, dh) = (to.width as usize, to.height as usize);
        if sw == dw && sh == dh {
            let off = to.y as usize * to.stride + to.x as usize;
            super::frame::copy_plane(src.data, src.stride, &mut dst[off..], to.stride, dw, dh);
            return;
        }
        self.taps.clear();
        self.taps.extend((0..dw).map(|x| source_tap(x, dw, sw)));
        self.row.resize(sw, 0);
        for j in 0..dh {
            let (y0, fy) = source_tap(j, dh, sh);
            let y0 = y0 as usize;
            let y1 = (y0 + 1).min(sh - 1);
            let r0 = &src.data[y0 * src.stride..y0 * src.stride + sw];
            let r1 = &src.data[y1 * src.stride..y1 * src.stride + sw];
            let (w0, w1) = (ONE as u16 - fy, fy);
            for ((t, &a), &b) in self.row.iter_mut().zip(r0).zip(r1) {
                *t = u16::from(a) * w0 + u16::from(b) * w1;
            }
            let start = (to.y as usize + j) * to.stride + to.x as usize;
            let out = &mut dst[start..start + dw];
            let last = sw - 1;
            for (o, &(x0, fx)) in out.iter_mut().zip(&self.taps) {
                let x0 = x0 as usize;
                let x1 = (x0 + 1).min(last);
                let v = u32::from(self.row[x0]) * (ONE - u32::from(fx)) + u32::from(self.row[x1]) * u32::from(fx);
                *o = ((v + (1 << (2 * FRAC_BITS - 1))) >> (2 * FRAC_BITS)) as u8;
            }
        }
    }
}

/// A read-only plane.
#[derive(Clone, Copy)]
struct Plane<'a> {
    data: &'a [u8],
    stride: usize,
    width: u32,
    height: u32,
}

/// Where in a destination plane to write.
#[derive(Clone, Copy)]
struct PlaneRect {
    stride: usize,
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

/// For output sample `i` of `out_len`, the source sample left of its centre
/// and the weight of the one right of it, in [`FRAC_BITS`] fixed point.
fn source_tap(i: usize, out_len: usize, in_len: usize) -> (u32, u16) {
    // Centre of output sample i in source coordinates, times ONE:
    // ((i + 0.5) * in / out - 0.5) * ONE.
    let num = ((2 * i + 1) * in_len * ONE as usize) / (2 * out_len);
    let pos = num.saturating_sub(ONE as usize / 2);
    let left = (pos >> FRAC_BITS).min(in_len - 1);
    let frac = if left == in_len - 1 { 0 } else { pos & (ONE as usize - 1) };
    (left as u32, frac as u16)
}

/// 2×2 box average of `src` into `out` (`w` × `h`, tightly packed).
fn halve(src: Plane<'_>, out: &mut [u8], w: u32, h: u32) {
    let w = w as usize;
    for (j, out_row) in out.chunks_exact_mut(w).take(h as usize).enumerate() {
        let r0 = &src.data[2 * j * src.stride..2 * j * src.stride + 2 * w];
        let r1 = &src.data[(2 * j + 1) * src.stride..(2 * j + 1) * src.stride + 2 * w];
        // Blocks of fixed length let the compiler drop the bounds checks and
        // use SIMD shuffles; the tail goes one pixel at a time.
        let blocks = w / BLOCK * BLOCK;
        let (head, tail) = out_row.split_at_mut(blocks);
        for ((o, a), b) in head.chunks_exact_mut(BLOCK).zip(r0.chunks_exact(2 * BLOCK)).zip(r1.chunks_exact(2 * BLOCK))
        {
            for i in 0..BLOCK {
                o[i] = average4(a[2 * i], a[2 * i + 1], b[2 * i], b[2 * i + 1]);
            }
        }
        for (i, o) in tail.iter_mut().enumerate() {
            let x = 2 * (blocks + i);
            *o = average4(r0[x], r0[x + 1], r1[x], r1[x + 1]);
        }
    }
}

/// Output pixels per block in [`halve`].
const BLOCK: usize = 16;

fn average4(a: u8, b: u8, c: u8, d: u8) -> u8 {
    ((u16::from(a) + u16::from(b) + u16::from(c) + u16::from(d) + 2) >> 2) as u8
}

/// Paints the parts of `area` that `inner` does not cover.
fn paint_bars(dst: &mut I420Frame, area: Rect, inner: Rect, colour: Yuv) {
    dst.fill_rect(Rect::new(area.x, area.y, area.width, inner.y - area.y), colour);
    dst.fill_rect(Rect::new(area.x, inner.bottom(), area.width, area.bottom() - inner.bottom()), colour);
    dst.fill_rect(Rect::new(area.x, inner.y, inner.x - area.x, inner.height), colour);
    dst.fill_rect(Rect::new(inner.right(), inner.y, area.right() - inner.right(), inner.height), colour);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, c: Yuv) -> I420Frame {
        let mut f = I420Frame::new(w, h).unwrap();
        f.fill(c);
        f
    }

    #[test]
    fn fit_keeps_aspect_and_centres() {
        // 16:9 into 4:3: pillar bars top and bottom.
        let r = fit_rect(1280, 720, Rect::new(0, 0, 640, 480));
        assert_eq!(r, Rect::new(0, 60, 640, 360));
        // 4:3 into 16:9: bars left and right.
        let r = fit_rect(640, 480, Rect::new(100, 0, 640, 360));
        assert_eq!(r, Rect::new(100 + 80, 0, 480, 360));
        assert_eq!(fit_rect(0, 10, Rect::new(0, 0, 10, 10)).width, 0);
    }

    #[test]
    fn solid_colour_stays_solid_at_every_ratio() {
        let c = Yuv::from_rgb(200, 40, 90);
        let mut s = Scaler::new();
        for (sw, sh, dw, dh) in [(1280, 720, 640, 360), (1280, 720, 256, 144), (320, 180, 1280, 720), (7, 5, 3, 9)] {
            let src = solid(sw, sh, c);
            let mut dst = solid(dw + 10, dh + 10, Yuv::BLACK);
            s.scale_into(&src, &mut dst, Rect::new(2, 2, dw, dh));
            for (x, y) in [(2, 2), (1 + dw, 1 + dh), (2 + dw / 2, 2 + dh / 2)] {
                assert_eq!(dst.pixel(x, y), Some(c), "{sw}x{sh}->{dw}x{dh} at {x},{y}");
            }
            assert_eq!(dst.pixel(2 + dw + 1, 2 + dh + 1), Some(Yuv::BLACK));
        }
    }

    #[test]
    fn gradient_is_interpolated_monotonically() {
        let mut src = I420Frame::new(64, 2).unwrap();
        let stride = src.strides().0;
        for (x, p) in src.planes_mut().0[..stride].iter_mut().enumerate().take(64) {
            *p = (x * 4) as u8;
        }
        let row0: Vec<u8> = src.y()[..64].to_vec();
        src.planes_mut().0[stride..stride + 64].copy_from_slice(&row0);
        let mut dst = I420Frame::new(160, 2).unwrap();
        let all = dst.rect();
        Scaler::new().scale_into(&src, &mut dst, all);
        let out = &dst.y()[..160];
        assert!(out.windows(2).all(|w| w[0] <= w[1]), "{out:?}");
        assert_eq!(out[0], 0);
        assert_eq!(out[159], 252);
    }

    #[test]
    fn halving_matches_a_plain_box_average_in_blocks_and_tail() {
        let (sw, sh) = (71u32, 5u32);
        let data: Vec<u8> = (0..sw * sh).map(|i| (i * 37 % 251) as u8).collect();
        let src = Plane { data: &data, stride: sw as usize, width: sw, height: sh };
        let (w, h) = (sw / 2, sh / 2);
        let mut out = vec![0; (w * h) as usize];
        halve(src, &mut out, w, h);
        for y in 0..h as usize {
            for x in 0..w as usize {
                let p = |dx: usize, dy: usize| data[(2 * y + dy) * sw as usize + 2 * x + dx];
                assert_eq!(out[y * w as usize + x], average4(p(0, 0), p(1, 0), p(0, 1), p(1, 1)), "{x},{y}");
            }
        }
    }

    #[test]
    fn letterbox_paints_bars() {
        let c = Yuv::from_rgb(0, 0, 255);
        let src = solid(1280, 720, c);
        let mut dst = solid(640, 480, Yuv::from_rgb(255, 255, 255));
        let all = dst.rect();
        let inner = Scaler::new().scale_letterboxed(&src, &mut dst, all, Yuv::BLACK);
        assert_eq!(inner, Rect::new(0, 60, 640, 360));
        assert_eq!(dst.pixel(320, 10), Some(Yuv::BLACK));
        assert_eq!(dst.pixel(320, 470), Some(Yuv::BLACK));
        assert_eq!(dst.pixel(320, 240), Some(c));
    }

    #[test]
    fn out_of_frame_rects_are_clipped() {
        let src = solid(64, 64, Yuv::from_rgb(9, 9, 9));
        let mut dst = I420Frame::new(32, 32).unwrap();
        let mut s = Scaler::new();
        s.scale_into(&src, &mut dst, Rect::new(30, 30, 64, 64));
        s.scale_into(&src, &mut dst, Rect::new(40, 40, 8, 8));
        s.scale_letterboxed(&src, &mut dst, Rect::new(31, 31, 1, 1), Yuv::BLACK);
    }
}
