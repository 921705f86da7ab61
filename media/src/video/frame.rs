//! Raw pictures: [`I420Frame`], the one pixel format inside the media engine.
//!
//! I420 (planar Y, then U and V at half resolution both ways) is what H.264
//! decoders produce and encoders take, so decode → compose → encode never
//! converts colour spaces. The three planes live in one buffer that is reused
//! when the frame is resized, so a steady conference allocates nothing per
//! frame.

/// The largest width or height a frame may have. H.264 level 5.2 stops at
/// 4096 luma samples a side; anything larger is a bad size, not a picture.
pub const MAX_DIMENSION: u32 = 4096;

/// Rows are padded to a multiple of this many bytes, so each row starts
/// aligned for SIMD loads in the scaler and in OpenH264.
const ROW_ALIGN: usize = 16;

/// Why a frame could not be made or filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Width or height is 0 or above [`MAX_DIMENSION`].
    #[error("frame size {width}x{height} is not supported")]
    Size {
        /// The requested width.
        width: u32,
        /// The requested height.
        height: u32,
    },
    /// A source plane is shorter than its stride and height say.
    #[error("source plane too short for its size and stride")]
    PlaneLength,
}

/// A colour in limited-range BT.601 Y'CbCr, what SIP video endpoints send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Yuv {
    /// Luma, 16..=235 for video-range content.
    pub y: u8,
    /// Blue-difference chroma, 128 is neutral.
    pub u: u8,
    /// Red-difference chroma, 128 is neutral.
    pub v: u8,
}

impl Yuv {
    /// Video black: the background of empty panes and letterbox bars.
    pub const BLACK: Self = Self { y: 16, u: 128, v: 128 };
    /// The dark grey of a placeholder pane.
    pub const PLACEHOLDER: Self = Self { y: 48, u: 128, v: 128 };
    /// The lighter grey of the placeholder pane's mark.
    pub const PLACEHOLDER_MARK: Self = Self { y: 96, u: 128, v: 128 };

    /// The BT.601 limited-range colour of an sRGB triple (integer maths, the
    /// usual rounded coefficients).
    pub fn from_rgb(r: u8, g: u8, b: u8) -> Self {
        let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
        let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
        let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
        let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
        Self { y: clamp_u8(y), u: clamp_u8(u), v: clamp_u8(v) }
    }
}

fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// A rectangle of a frame, in luma pixels. Layouts keep every edge on an even
/// coordinate so that it also falls on a whole chroma sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Rect {
    /// A rectangle from its position and size.
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Self {
        Self { x, y, width, height }
    }

    /// The first column to the right of the rectangle.
    pub const fn right(&self) -> u32 {
        self.x + self.width
    }

    /// The first row below the rectangle.
    pub const fn bottom(&self) -> u32 {
        self.y + self.height
    }

    /// Whether the two rectangles share any pixel.
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.right() && other.x < self.right() && self.y < other.bottom() && other.y < self.bottom()
    }

    /// Whether `other` lies entirely inside this rectangle.
    pub fn contains(&self, other: &Rect) -> bool {
        other.x >= self.x && other.y >= self.y && other.right() <= self.right() && other.bottom() <= self.bottom()
    }

    /// The part of this rectangle inside a `width` × `height` frame.
    pub fn clip(&self, width: u32, height: u32) -> Rect {
        let x = self.x.min(width);
        let y = self.y.min(height);
        Rect { x, y, width: self.right().min(width) - x, height: self.bottom().min(height) - y }
    }

    /// The centre pixel.
    pub const fn centre(&self) -> (u32, u32) {
        (self.x + self.width / 2, self.y + self.height / 2)
    }
}

/// One picture in I420. Widths and heights may be odd: chroma planes are
/// rounded up (`(w + 1) / 2`), as H.264 and libyuv do.
#[derive(Clone)]
pub struct I420Frame {
    width: u32,
    height: u32,
    y_stride: usize,
    c_stride: usize,
    /// Y plane, then U, then V; each row `*_stride` bytes.
    buf: Vec<u8>,
}

impl std::fmt::Debug for I420Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I420Frame").field("width", &self.width).field("height", &self.height).finish_non_exhaustive()
    }
}

impl I420Frame {
    /// A black frame of this size.
    pub fn new(width: u32, height: u32) -> Result<Self, FrameError> {
        let mut frame = Self { width: 0, height: 0, y_stride: 0, c_stride: 0, buf: Vec::new() };
        frame.resize(width, height)?;
        frame.fill(Yuv::BLACK);
        Ok(frame)
    }

    /// Changes the size, reusing the buffer (it only grows). The pixels are
    /// unspecified afterwards: the caller is about to overwrite them.
    pub fn resize(&mut self, width: u32, height: u32) -> Result<(), FrameError> {
        if width == 0 || height == 0 || width > MAX_DIMENSION || height > MAX_DIMENSION {
            return Err(FrameError::Size { width, height });
        }
        if (width, height) == (self.width, self.height) {
            return Ok(());
        }
        self.width = width;
        self.height = height;
        self.y_stride = align(width as usize);
        self.c_stride = align(width.div_ceil(2) as usize);
        let len = self.y_stride * height as usize + 2 * self.c_stride * self.chroma_height() as usize;
        self.buf.resize(len, 0);
        Ok(())
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width of the U and V planes.
    pub fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    /// Height of the U and V planes.
    pub fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    /// Bytes per row of the Y plane and of the U and V planes.
    pub fn strides(&self) -> (usize, usize) {
        (self.y_stride, self.c_stride)
    }

    /// The whole frame as a rectangle.
    pub fn rect(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    fn y_len(&self) -> usize {
        self.y_stride * self.height as usize
    }

    fn c_len(&self) -> usize {
        self.c_stride * self.chroma_height() as usize
    }

    /// The Y plane (`height` rows of `strides().0` bytes).
    pub fn y(&self) -> &[u8] {
        &self.buf[..self.y_len()]
    }

    /// The U plane (`chroma_height` rows of `strides().1` bytes).
    pub fn u(&self) -> &[u8] {
        let start = self.y_len();
        &self.buf[start..start + self.c_len()]
    }

    /// The V plane (`chroma_height` rows of `strides().1` bytes).
    pub fn v(&self) -> &[u8] {
        let start = self.y_len() + self.c_len();
        &self.buf[start..start + self.c_len()]
    }

    /// The three planes, mutable, at once.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let (y_len, c_len) = (self.y_len(), self.c_len());
        let (y, rest) = self.buf.split_at_mut(y_len);
        let (u, rest) = rest.split_at_mut(c_len);
        (y, u, &mut rest[..c_len])
    }

    /// The colour at a pixel; `None` outside the frame.
    pub fn pixel(&self, x: u32, y: u32) -> Option<Yuv> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let (cx, cy) = ((x / 2) as usize, (y / 2) as usize);
        Some(Yuv {
            y: self.y()[y as usize * self.y_stride + x as usize],
            u: self.u()[cy * self.c_stride + cx],
            v: self.v()[cy * self.c_stride + cx],
        })
    }

    /// Paints the whole frame one colour.
    pub fn fill(&mut self, colour: Yuv) {
        self.fill_rect(self.rect(), colour);
    }

    /// Paints a rectangle (clipped to the frame) one colour. Chroma covers
    /// every chroma sample the rectangle touches, so odd edges round outwards.
    pub fn fill_rect(&mut self, rect: Rect, colour: Yuv) {
        let r = rect.clip(self.width, self.height);
        if r.width == 0 || r.height == 0 {
            return;
        }
        let (ys, cs) = (self.y_stride, self.c_stride);
        let (y, u, v) = self.planes_mut();
        fill_plane(y, ys, r.x as usize, r.y as usize, r.width as usize, r.height as usize, colour.y);
        let (cx, cy) = ((r.x / 2) as usize, (r.y / 2) as usize);
        let cw = (r.right().div_ceil(2) as usize) - cx;
        let ch = (r.bottom().div_ceil(2) as usize) - cy;
        fill_plane(u, cs, cx, cy, cw, ch, colour.u);
        fill_plane(v, cs, cx, cy, cw, ch, colour.v);
    }

    /// Paints the pane shown for a participant without video (video-muted,
    /// audio-only, or no frame decoded yet): dark grey with a lighter head and
    /// shoulders in the middle, so a receiver sees someone is there.
    pub fn draw_placeholder(&mut self, rect: Rect) {
        let r = rect.clip(self.width, self.height);
        self.fill_rect(r, Yuv::PLACEHOLDER);
        let unit = r.width.min(r.height) / 8;
        if unit == 0 {
            return;
        }
        let (cx, cy) = r.centre();
        // Head: a disc of radius `unit` above the centre.
        let head_cy = cy.saturating_sub(unit);
        self.fill_disc(cx, head_cy, unit, r);
        // Shoulders: the top half of a wider disc below the head.
        let shoulders_cy = cy + 2 * unit;
        self.fill_disc(cx, shoulders_cy, 2 * unit, Rect { height: shoulders_cy.saturating_sub(r.y), ..r });
    }

    /// Paints the luma of a disc with the mark colour, inside `clip` only.
    /// Chroma is already neutral grey in a placeholder, so luma is enough.
    fn fill_disc(&mut self, cx: u32, cy: u32, radius: u32, clip: Rect) {
        let stride = self.y_stride;
        let (y_plane, _, _) = self.planes_mut();
        let r2 = i64::from(radius) * i64::from(radius);
        let top = cy.saturating_sub(radius).max(clip.y);
        let bottom = (cy + radius).min(clip.bottom());
        for row in top..bottom {
            let dy = i64::from(row) - i64::from(cy);
            let half = ((r2 - dy * dy).max(0) as f64).sqrt() as u32;
            let left = cx.saturating_sub(half).max(clip.x);
            let right = (cx + half).min(clip.right());
            if left < right {
                let start = row as usize * stride;
                y_plane[start + left as usize..start + right as usize].fill(Yuv::PLACEHOLDER_MARK.y);
            }
        }
    }

    /// Copies a picture given as three planes with their strides (a decoder's
    /// output), resizing this frame to `width` × `height`.
    pub fn copy_from_planes(
        &mut self,
        width: u32,
        height: u32,
        (y, y_stride): (&[u8], usize),
        (u, u_stride): (&[u8], usize),
        (v, v_stride): (&[u8], usize),
    ) -> Result<(), FrameError> {
        self.resize(width, height)?;
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (self.chroma_width() as usize, self.chroma_height() as usize);
        if !plane_fits(y, y_stride, w, h) || !plane_fits(u, u_stride, cw, ch) || !plane_fits(v, v_stride, cw, ch) {
            return Err(FrameError::PlaneLength);
        }
        let (ys, cs) = (self.y_stride, self.c_stride);
        let (dy, du, dv) = self.planes_mut();
        copy_plane(y, y_stride, dy, ys, w, h);
        copy_plane(u, u_stride, du, cs, cw, ch);
        copy_plane(v, v_stride, dv, cs, cw, ch);
        Ok(())
    }

    /// Copies `src` (whole) into this frame with its top-left corner at
    /// `(x, y)`, clipped to this frame. Both must be even for the chroma to
    /// land on the same samples; odd positions are rounded down.
    pub fn blit(&mut self, src: &I420Frame, x: u32, y: u32) {
        let area = Rect::new(x & !1, y & !1, src.width, src.height).clip(self.width, self.height);
        if area.width == 0 || area.height == 0 {
            return;
        }
        let (ys, cs) = (self.y_stride, self.c_stride);
        let (dy, du, dv) = self.planes_mut();
        let y_off = area.y as usize * ys + area.x as usize;
        copy_plane(src.y(), src.y_stride, &mut dy[y_off..], ys, area.width as usize, area.height as usize);
        let c_off = (area.y / 2) as usize * cs + (area.x / 2) as usize;
        let (cw, ch) = (area.width.div_ceil(2) as usize, area.height.div_ceil(2) as usize);
        copy_plane(src.u(), src.c_stride, &mut du[c_off..], cs, cw, ch);
        copy_plane(src.v(), src.c_stride, &mut dv[c_off..], cs, cw, ch);
    }
}

fn align(n: usize) -> usize {
    n.div_ceil(ROW_ALIGN) * ROW_ALIGN
}

fn plane_fits(plane: &[u8], stride: usize, width: usize, height: usize) -> bool {
    stride >= width && (height == 0 || plane.len() >= (height - 1) * stride + width)
}

fn fill_plane(plane: &mut [u8], stride: usize, x: usize, y: usize, width: usize, height: usize, value: u8) {
    for row in plane.chunks_mut(stride).skip(y).take(height) {
        row[x..x + width].fill(value);
    }
}

/// Copies `width` × `height` bytes between planes; rows beyond either slice's
/// end are skipped (callers check sizes first).
pub(crate) fn copy_plane(
    src: &[u8],
    src_stride: usize,
    dst: &mut [u8],
    dst_stride: usize,
    width: usize,
    height: usize,
) {
    for (s, d) in src.chunks(src_stride).zip(dst.chunks_mut(dst_stride)).take(height) {
        d[..width].copy_from_slice(&s[..width]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_frame_is_black_and_sized() {
        let f = I420Frame::new(1280, 720).unwrap();
        assert_eq!((f.width(), f.height(), f.chroma_width(), f.chroma_height()), (1280, 720, 640, 360));
        assert_eq!(f.pixel(639, 359), Some(Yuv::BLACK));
        assert_eq!(f.pixel(1280, 0), None);
        assert_eq!(f.strides().0 % ROW_ALIGN, 0);
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert_eq!(I420Frame::new(0, 10).unwrap_err(), FrameError::Size { width: 0, height: 10 });
        assert!(I420Frame::new(4097, 10).is_err());
    }

    #[test]
    fn odd_sizes_round_chroma_up() {
        let mut f = I420Frame::new(5, 3).unwrap();
        assert_eq!((f.chroma_width(), f.chroma_height()), (3, 2));
        f.fill(Yuv::from_rgb(255, 0, 0));
        assert_eq!(f.pixel(4, 2), Some(Yuv::from_rgb(255, 0, 0)));
    }

    #[test]
    fn fill_rect_touches_only_its_rect() {
        let mut f = I420Frame::new(64, 32).unwrap();
        let red = Yuv::from_rgb(255, 0, 0);
        f.fill_rect(Rect::new(16, 8, 16, 8), red);
        assert_eq!(f.pixel(16, 8), Some(red));
        assert_eq!(f.pixel(31, 15), Some(red));
        assert_eq!(f.pixel(32, 15), Some(Yuv::BLACK));
        assert_eq!(f.pixel(16, 16), Some(Yuv::BLACK));
        // Clipped, not a panic.
        f.fill_rect(Rect::new(60, 30, 100, 100), red);
        assert_eq!(f.pixel(63, 31), Some(red));
    }

    #[test]
    fn placeholder_is_grey_with_a_mark() {
        let mut f = I420Frame::new(320, 180).unwrap();
        let pane = Rect::new(0, 0, 320, 180);
        f.draw_placeholder(pane);
        assert_eq!(f.pixel(2, 2), Some(Yuv::PLACEHOLDER));
        let (cx, cy) = pane.centre();
        assert_eq!(f.pixel(cx, cy - 22).map(|p| p.y), Some(Yuv::PLACEHOLDER_MARK.y));
        // Tiny panes get plain grey.
        f.draw_placeholder(Rect::new(0, 0, 4, 4));
    }

    #[test]
    fn copy_and_blit_keep_pixels() {
        let mut src = I420Frame::new(8, 8).unwrap();
        src.fill(Yuv::from_rgb(0, 255, 0));
        let mut copy = I420Frame::new(2, 2).unwrap();
        let (ys, cs) = src.strides();
        copy.copy_from_planes(8, 8, (src.y(), ys), (src.u(), cs), (src.v(), cs)).unwrap();
        assert_eq!(copy.pixel(7, 7), src.pixel(7, 7));
        assert_eq!(
            copy.copy_from_planes(8, 8, (&src.y()[..10], ys), (src.u(), cs), (src.v(), cs)),
            Err(FrameError::PlaneLength)
        );
        let mut big = I420Frame::new(32, 32).unwrap();
        big.blit(&src, 30, 30);
        assert_eq!(big.pixel(31, 31), src.pixel(0, 0));
        assert_eq!(big.pixel(29, 29), Some(Yuv::BLACK));
    }

    #[test]
    fn rect_geometry() {
        let a = Rect::new(0, 0, 10, 10);
        assert!(a.overlaps(&Rect::new(9, 9, 2, 2)));
        assert!(!a.overlaps(&Rect::new(10, 0, 2, 2)));
        assert!(a.contains(&Rect::new(2, 2, 8, 8)));
        assert!(!a.contains(&Rect::new(2, 2, 9, 8)));
        assert_eq!(Rect::new(5, 5, 10, 10).clip(8, 20), Rect::new(5, 5, 3, 10));
    }
}
