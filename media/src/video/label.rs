//! Participant name labels (CMS `participantLabels`): the name in white on a
//! darkened box at the bottom left of a pane, as CMS draws it.
//!
//! Glyphs come from the `font8x8` crate's 8×8 bitmaps (ASCII; anything else
//! is drawn as `?`), doubled for panes of 360 rows or more so the name stays
//! readable on a big pane and small on a strip pane.

use font8x8::legacy::BASIC_LEGACY;

use super::frame::{I420Frame, Rect};

/// Luma of the text.
const TEXT_Y: u8 = 235;
/// Pixels between the box and the pane's edges, and around the text, at
/// scale 1.
const MARGIN: u32 = 4;

/// Where the label of a pane lies and how big its glyphs are: the box
/// (bottom left of `pane`) and the glyph scale; `None` when the pane is too
/// small for one glyph.
pub fn label_box(pane: Rect, text: &str) -> Option<(Rect, u32)> {
    let scale = if pane.height >= 360 { 2 } else { 1 };
    let (margin, glyph) = (MARGIN * scale, 8 * scale);
    let height = glyph + 2 * margin;
    let room = pane.width.checked_sub(4 * margin)? / glyph;
    let chars = (text.chars().count() as u32).min(room);
    if chars == 0 || pane.height < height + 2 * margin {
        return None;
    }
    let width = chars * glyph + 2 * margin;
    let rect = Rect::new(pane.x + margin, pane.y + pane.height - margin - height, width, height);
    Some((even(rect), scale))
}

/// A rectangle grown to even edges, so it covers whole chroma samples.
fn even(r: Rect) -> Rect {
    let (x, y) = (r.x & !1, r.y & !1);
    Rect::new(x, y, (r.right() - x).div_ceil(2) * 2, (r.bottom() - y).div_ceil(2) * 2)
}

/// Draws `text` as a label on `pane` of `frame`: the box darkens what is
/// under it (luma halved, chroma towards grey) and the glyphs are white. A
/// name too long for the pane is cut.
pub fn draw_label(frame: &mut I420Frame, pane: Rect, text: &str) {
    let Some((area, scale)) = label_box(pane, text) else { return };
    let area = area.clip(frame.width(), frame.height());
    if area.width == 0 || area.height == 0 {
        return;
    }
    let (ys, cs) = frame.strides();
    let (y, u, v) = frame.planes_mut();
    for row in area.y..area.bottom() {
        let line = &mut y[row as usize * ys..][area.x as usize..area.right() as usize];
        line.iter_mut().for_each(|p| *p = 16 + (p.saturating_sub(16) / 3));
    }
    for row in area.y / 2..area.bottom() / 2 {
        for plane in [&mut *u, &mut *v] {
            let line = &mut plane[row as usize * cs..][(area.x / 2) as usize..(area.right() / 2) as usize];
            line.iter_mut().for_each(|p| *p = ((u16::from(*p) + 3 * 128) / 4) as u8);
        }
    }
    let margin = MARGIN * scale;
    let room = (area.width - 2 * margin) / (8 * scale);
    for (i, c) in text.chars().take(room as usize).enumerate() {
        let glyph = BASIC_LEGACY
            .get(c as usize)
            .filter(|_| c.is_ascii() && !c.is_ascii_control())
            .unwrap_or(&BASIC_LEGACY[b'?' as usize]);
        let x0 = area.x + margin + i as u32 * 8 * scale;
        let y0 = area.y + margin;
        for (gy, bits) in glyph.iter().enumerate() {
            for gx in 0..8u32 {
                if bits & (1 << gx) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    let row = (y0 + gy as u32 * scale + dy) as usize;
                    let col = (x0 + gx * scale) as usize;
                    if let Some(px) = y.get_mut(row * ys + col..row * ys + col + scale as usize) {
                        px.fill(TEXT_Y);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::frame::Yuv;

    #[test]
    fn a_label_darkens_its_box_draws_white_glyphs_and_leaves_the_rest() {
        let mut f = I420Frame::new(640, 360).unwrap();
        let colour = Yuv::from_rgb(200, 60, 30);
        f.fill(colour);
        let pane = f.rect();
        draw_label(&mut f, pane, "Ann");
        let (area, scale) = label_box(pane, "Ann").unwrap();
        assert_eq!(scale, 2);
        assert!(area.bottom() <= 360 && area.x >= 8);
        // Inside the box, off the glyphs (the margin): darkened.
        let inside = f.pixel(area.x + 1, area.y + 1).unwrap();
        assert!(inside.y < colour.y / 2 + 16, "{inside:?}");
        // Some glyph pixels are white.
        let white = (area.x..area.right())
            .flat_map(|x| (area.y..area.bottom()).map(move |y| (x, y)))
            .filter(|&(x, y)| f.pixel(x, y).unwrap().y == TEXT_Y)
            .count();
        assert!(white > 50, "{white} white pixels");
        // Outside the box: untouched.
        assert_eq!(f.pixel(320, 100).unwrap(), colour);
        assert_eq!(f.pixel(area.right() + 2, area.y + 2).unwrap(), colour);
    }

    #[test]
    fn long_names_are_cut_and_tiny_panes_get_none() {
        let pane = Rect::new(100, 50, 160, 90);
        let (area, scale) = label_box(pane, &"x".repeat(100)).unwrap();
        assert_eq!(scale, 1);
        assert!(area.right() <= pane.right() && area.bottom() <= pane.bottom(), "{area:?}");
        assert!(label_box(Rect::new(0, 0, 20, 12), "Ann").is_none());
        assert!(label_box(Rect::new(0, 0, 640, 360), "").is_none());
        // Any text, any pane: never a panic.
        let mut f = I420Frame::new(64, 36).unwrap();
        draw_label(&mut f, Rect::new(60, 30, 100, 100), "Zoë ☃ \u{0}");
        let all = f.rect();
        draw_label(&mut f, all, "Zoë ☃ \u{0}");
    }
}
