//! Composing one conference's views.
//!
//! A view is what one receiver sees: a [`ViewKey`] of layout, output size
//! and the receiver's [`SelfPane`] rule. Receivers with equal keys see the
//! same picture, so the conference composes it once and encodes it once per
//! resolution class for all of them — the video twin of the audio mixer's
//! mix-minus.
//!
//! How many distinct views a conference has, per (layout, size), with the
//! default `skip` self-pane mode: every participant who appears in a pane of
//! the others' picture sees a view of its own (it must not see itself), and
//! everyone else shares one. So speakerOnly has two views (the floor holder
//! sees the previous speaker; everyone else sees the floor holder);
//! allEqualQuarters has at most five; a layout that shows everyone
//! (telepresence or allEqual with ten people) has one per participant. In
//! `self` mode there is one view per (layout, size); in `blank` mode, one per
//! shown participant plus one.
//!
//! Scaling is the expensive part of composing, and distinct views mostly
//! show the same participants at the same pane sizes; so each participant's
//! picture is scaled once per pane size per frame and kept until
//! [`Compositor::begin_frame`], and further views only copy it.

use std::collections::HashMap;

use super::codec::VideoCodec;
use super::frame::{FrameError, I420Frame, Rect, Yuv};
use super::label::draw_label;
use super::layout::{PaneContent, SelfPane, SelfPaneMode, ViewLayout};
use super::scale::Scaler;
use crate::mixer::ParticipantId;

/// What one receiver sees; equal keys see equal pictures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ViewKey {
    /// The layout (the leg's `layoutTemplate`, else its `chosenLayout`, else
    /// its `defaultLayout`).
    pub layout: ViewLayout,
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// The receiver's self-pane rule, normalised.
    pub self_pane: SelfPane,
    /// Panes carry the participants' name labels (CMS `participantLabels`).
    pub labels: bool,
    /// The codec the picture is encoded in: receivers of equal pictures in
    /// two codecs share the scaled panes, not the encode.
    pub codec: VideoCodec,
}

impl ViewKey {
    /// The view of `receiver` in a conference whose speaker order is
    /// `order`. Keys of receivers that would see the same picture are equal.
    pub fn for_receiver(
        layout: ViewLayout,
        mode: SelfPaneMode,
        (width, height): (u32, u32),
        receiver: ParticipantId,
        order: &[ParticipantId],
    ) -> Self {
        let self_pane = SelfPane::for_receiver(&layout, mode, receiver, order);
        Self { layout, width, height, self_pane, labels: false, codec: VideoCodec::H264 }
    }

    /// The same view with (or without) name labels on its panes.
    pub fn with_labels(self, labels: bool) -> Self {
        Self { labels, ..self }
    }

    /// The same view encoded in `codec`.
    pub fn with_codec(self, codec: VideoCodec) -> Self {
        Self { codec, ..self }
    }
}

/// One participant's picture scaled for one pane size, with its bars.
#[derive(Debug)]
struct ScaledPane {
    frame: I420Frame,
    /// The frame generation it was scaled in.
    generation: u64,
}

/// Composes views; one per conference (it keeps scratch buffers and the
/// scaled panes of the current frame).
#[derive(Debug, Default)]
pub struct Compositor {
    scaler: Scaler,
    panes: Vec<Rect>,
    contents: Vec<PaneContent>,
    /// Keyed by participant, pane size and whether it is labelled.
    scaled: HashMap<(ParticipantId, u32, u32, bool), ScaledPane>,
    generation: u64,
    /// Participants' name labels.
    labels: HashMap<ParticipantId, String>,
}

impl Compositor {
    /// A compositor with nothing cached.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or, with `None` or an empty name, clears) the name label of a
    /// participant's panes in views with labels.
    pub fn set_label(&mut self, id: ParticipantId, label: Option<&str>) {
        match label.map(str::trim).filter(|l| !l.is_empty()) {
            Some(l) => {
                self.labels.insert(id, l.to_string());
            }
            None => {
                self.labels.remove(&id);
            }
        }
    }

    /// Starts a new output frame: the inputs have changed, so scaled panes
    /// from the previous frame are stale. Sizes nobody used last frame are
    /// dropped, so the cache follows the layouts in use.
    pub fn begin_frame(&mut self) {
        let previous = self.generation;
        self.scaled.retain(|_, pane| pane.generation == previous);
        self.generation += 1;
    }

    /// Composes `view` into `out` (resized to the view's size). `order` is
    /// the conference's speaker order ([`SpeakerOrder`](super::layout::SpeakerOrder));
    /// `input` gives a participant's latest decoded picture, or `None` when it
    /// has none (video-muted, audio-only, nothing decoded yet), which shows
    /// the placeholder pane. The same as [`prepare`](Self::prepare) then
    /// [`assemble`](Self::assemble).
    pub fn compose<'a>(
        &mut self,
        view: &ViewKey,
        order: &[ParticipantId],
        input: impl Fn(ParticipantId) -> Option<&'a I420Frame>,
        out: &mut I420Frame,
    ) -> Result<(), FrameError> {
        self.prepare(view, order, &input)?;
        self.assemble(view, order, input, out)
    }

    /// Scales, into this frame's cache, every picture `view` shows that is
    /// not there yet: the part of composing that needs `&mut self`, so that
    /// several views can then be [assembled](Self::assemble) at once on
    /// other threads.
    pub fn prepare<'a>(
        &mut self,
        view: &ViewKey,
        order: &[ParticipantId],
        input: impl Fn(ParticipantId) -> Option<&'a I420Frame>,
    ) -> Result<(), FrameError> {
        let shown = view.self_pane.shown(order);
        view.layout.panes(shown, view.width, view.height, &mut self.panes);
        view.self_pane.contents(order, self.panes.len(), &mut self.contents);
        // Taken out so the loop can use the scaled-pane cache in `self`.
        let (panes, contents) = (std::mem::take(&mut self.panes), std::mem::take(&mut self.contents));
        let mut result = Ok(());
        for (&rect, &content) in panes.iter().zip(&contents) {
            if rect.width == 0 || rect.height == 0 {
                continue;
            }
            if let (PaneContent::Participant(id), true) = (content, result.is_ok()) {
                if let Some(picture) = input(id) {
                    result = self.scaled_pane(id, picture, rect.width, rect.height, view.labels).map(|_| ());
                }
            }
        }
        (self.panes, self.contents) = (panes, contents);
        result
    }

    /// Draws `view` into `out` (resized to the view's size) from the panes
    /// [`prepare`](Self::prepare) scaled this frame; a picture it did not
    /// scale shows as the placeholder. Takes `&self`: views assemble in
    /// parallel.
    pub fn assemble<'a>(
        &self,
        view: &ViewKey,
        order: &[ParticipantId],
        input: impl Fn(ParticipantId) -> Option<&'a I420Frame>,
        out: &mut I420Frame,
    ) -> Result<(), FrameError> {
        out.resize(view.width, view.height)?;
        let mut panes = Vec::new();
        let mut contents = Vec::new();
        let shown = view.self_pane.shown(order);
        view.layout.panes(shown, view.width, view.height, &mut panes);
        view.self_pane.contents(order, panes.len(), &mut contents);
        // Every pane paints all of its rectangle (picture and bars, the
        // placeholder, or black), so a view whose first pane is the whole
        // picture (speakerOnly, telepresence) needs no background: a 720p
        // fill saved per view and frame.
        if panes.first() != Some(&out.rect()) {
            out.fill(Yuv::BLACK);
        }
        for (&rect, &content) in panes.iter().zip(&contents) {
            if rect.width == 0 || rect.height == 0 {
                continue;
            }
            let PaneContent::Participant(id) = content else {
                // Overlay panes must paint over what is under them.
                out.fill_rect(rect, Yuv::BLACK);
                continue;
            };
            let scaled = input(id)
                .and_then(|_| self.scaled.get(&(id, rect.width, rect.height, view.labels)))
                .filter(|pane| pane.generation == self.generation);
            match scaled {
                Some(pane) => out.blit(&pane.frame, rect.x, rect.y),
                None => {
                    out.draw_placeholder(rect);
                    if let Some(label) = self.labels.get(&id).filter(|_| view.labels) {
                        draw_label(out, rect, label);
                    }
                }
            }
        }
        Ok(())
    }

    /// `picture` scaled (letterboxed) to `width` × `height`, from the cache
    /// when this frame already has it.
    fn scaled_pane(
        &mut self,
        id: ParticipantId,
        picture: &I420Frame,
        width: u32,
        height: u32,
        labelled: bool,
    ) -> Result<&I420Frame, FrameError> {
        let generation = self.generation;
        let pane = match self.scaled.entry((id, width, height, labelled)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(ScaledPane { frame: I420Frame::new(width, height)?, generation: generation.wrapping_sub(1) })
            }
        };
        if pane.generation != generation {
            let area = pane.frame.rect();
            let picture_area = self.scaler.scale_letterboxed(picture, &mut pane.frame, area, Yuv::BLACK);
            if let Some(label) = self.labels.get(&id).filter(|_| labelled) {
                // On the picture, not on its bars.
                draw_label(&mut pane.frame, picture_area, label);
            }
            pane.generation = generation;
        }
        Ok(&pane.frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::layout::{Layout, SpeakerOrder};

    fn colour(i: u64) -> Yuv {
        let c = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255), (255, 255, 255)];
        let (r, g, b) = c[(i as usize) % c.len()];
        Yuv::from_rgb(r, g, b)
    }

    fn inputs(n: u64, w: u32, h: u32) -> HashMap<ParticipantId, I420Frame> {
        (1..=n)
            .map(|i| {
                let mut f = I420Frame::new(w, h).unwrap();
                f.fill(colour(i));
                (ParticipantId(i), f)
            })
            .collect()
    }

    fn order(n: u64) -> Vec<ParticipantId> {
        let mut o = SpeakerOrder::new(1);
        for i in 1..=n {
            o.join(ParticipantId(i));
        }
        o.order().to_vec()
    }

    /// The colour at the centre of each pane of `view`, in pane order.
    fn pane_centres(view: &ViewKey, order: &[ParticipantId], out: &I420Frame) -> Vec<Yuv> {
        let mut panes = Vec::new();
        view.layout.panes(view.self_pane.shown(order), view.width, view.height, &mut panes);
        panes.iter().map(|p| out.pixel(p.centre().0, p.centre().1).unwrap()).collect()
    }

    #[test]
    fn all_equal_shows_everyone_but_the_receiver() {
        let order = order(4);
        let frames = inputs(4, 640, 360);
        let mut c = Compositor::new();
        let mut out = I420Frame::new(2, 2).unwrap();
        c.begin_frame();
        let view =
            ViewKey::for_receiver(Layout::AllEqual.into(), SelfPaneMode::Skip, (1280, 720), ParticipantId(2), &order);
        c.compose(&view, &order, |p| frames.get(&p), &mut out).unwrap();
        assert_eq!((out.width(), out.height()), (1280, 720));
        let centres = pane_centres(&view, &order, &out);
        assert_eq!(centres, vec![colour(1), colour(3), colour(4), Yuv::BLACK]);
    }

    #[test]
    fn telepresence_overlays_the_others_on_the_floor_holder() {
        let order = order(10);
        let frames = inputs(10, 1280, 720);
        let mut c = Compositor::new();
        let mut out = I420Frame::new(2, 2).unwrap();
        c.begin_frame();
        let view_of = |p| {
            ViewKey::for_receiver(
                Layout::Telepresence.into(),
                SelfPaneMode::Skip,
                (1280, 720),
                ParticipantId(p),
                &order,
            )
        };
        let shared = view_of(10);
        c.compose(&shared, &order, |p| frames.get(&p), &mut out).unwrap();
        let centres = pane_centres(&shared, &order, &out);
        let expected: Vec<Yuv> = (1..=9).map(colour).collect();
        assert_eq!(centres, expected);
        // The floor holder sees participant 2 big and 3..=10 small.
        let own = view_of(1);
        c.compose(&own, &order, |p| frames.get(&p), &mut out).unwrap();
        let expected: Vec<Yuv> = (2..=10).map(colour).collect();
        assert_eq!(pane_centres(&own, &order, &out), expected);
        // Top-left corner is the big pane.
        assert_eq!(out.pixel(4, 4), Some(colour(2)));
    }

    #[test]
    fn a_full_picture_pane_repaints_a_reused_canvas_everywhere_bars_included() {
        // No background fill for speakerOnly and telepresence: what the
        // canvas held before must not show through anywhere, bars included.
        let order = order(3);
        let mut frames = inputs(3, 640, 480);
        frames.remove(&ParticipantId(3));
        let mut c = Compositor::new();
        c.begin_frame();
        for layout in [Layout::SpeakerOnly, Layout::Telepresence] {
            let mut out = I420Frame::new(640, 360).unwrap();
            out.fill(Yuv::from_rgb(255, 255, 255));
            let view = ViewKey::for_receiver(layout.into(), SelfPaneMode::Skip, (640, 360), ParticipantId(1), &order);
            c.compose(&view, &order, |p| frames.get(&p), &mut out).unwrap();
            let white = Yuv::from_rgb(255, 255, 255);
            for y in 0..360 {
                for x in 0..640 {
                    assert_ne!(out.pixel(x, y), Some(white), "{layout:?}: old canvas at ({x}, {y})");
                }
            }
            // The 4:3 picture is pillarboxed: black bars at the sides.
            assert_eq!(out.pixel(2, 180), Some(Yuv::BLACK), "{layout:?}");
            assert_eq!(out.pixel(320, 100), Some(colour(2)), "{layout:?}");
        }
    }

    #[test]
    fn missing_video_gets_the_placeholder_and_blank_mode_a_black_pane() {
        let order = order(3);
        let mut frames = inputs(3, 320, 180);
        frames.remove(&ParticipantId(3));
        let mut c = Compositor::new();
        let mut out = I420Frame::new(2, 2).unwrap();
        c.begin_frame();
        let view =
            ViewKey::for_receiver(Layout::AllEqual.into(), SelfPaneMode::Blank, (640, 360), ParticipantId(1), &order);
        c.compose(&view, &order, |p| frames.get(&p), &mut out).unwrap();
        let mut panes = Vec::new();
        view.layout.panes(3, 640, 360, &mut panes);
        assert_eq!(out.pixel(panes[0].centre().0, panes[0].centre().1), Some(Yuv::BLACK));
        assert_eq!(out.pixel(panes[1].centre().0, panes[1].centre().1), Some(colour(2)));
        assert_eq!(out.pixel(panes[2].x + 2, panes[2].y + 2), Some(Yuv::PLACEHOLDER));
    }

    #[test]
    fn labelled_views_show_names_on_video_and_placeholder_panes_and_others_do_not() {
        use crate::video::label::label_box;
        let order = order(3);
        let mut frames = inputs(3, 640, 360);
        frames.remove(&ParticipantId(3));
        let mut c = Compositor::new();
        c.set_label(ParticipantId(2), Some("Bob"));
        c.set_label(ParticipantId(3), Some("Carol"));
        let plain =
            ViewKey::for_receiver(Layout::AllEqual.into(), SelfPaneMode::Skip, (1280, 720), ParticipantId(1), &order);
        let labelled = plain.clone().with_labels(true);
        let mut panes = Vec::new();
        plain.layout.panes(2, 1280, 720, &mut panes);
        // Bob's label lies on his picture, letterboxed in his pane.
        let local = Rect::new(0, 0, panes[0].width, panes[0].height);
        let (bob, _) = label_box(crate::video::scale::fit_rect(640, 360, local), "Bob").unwrap();
        let bob = Rect::new(bob.x + panes[0].x, bob.y + panes[0].y, bob.width, bob.height);
        let (carol, _) = label_box(panes[1], "Carol").unwrap();
        let mut out = I420Frame::new(2, 2).unwrap();
        c.begin_frame();
        c.compose(&labelled, &order, |p| frames.get(&p), &mut out).unwrap();
        // The box's corner is darkened, on video and on the placeholder.
        assert!(out.pixel(bob.x + 1, bob.y + 1).unwrap().y < colour(2).y);
        assert!(out.pixel(carol.x + 1, carol.y + 1).unwrap().y < Yuv::PLACEHOLDER.y);
        assert_eq!(out.pixel(panes[0].centre().0, panes[0].centre().1), Some(colour(2)));
        // The same frame without labels: nothing drawn there.
        c.compose(&plain, &order, |p| frames.get(&p), &mut out).unwrap();
        assert_eq!(out.pixel(bob.x + 1, bob.y + 1), Some(colour(2)));
        assert_eq!(out.pixel(carol.x + 1, carol.y + 1), Some(Yuv::PLACEHOLDER));
        // A cleared label is gone.
        c.set_label(ParticipantId(2), None);
        c.begin_frame();
        c.compose(&labelled, &order, |p| frames.get(&p), &mut out).unwrap();
        assert_eq!(out.pixel(bob.x + 1, bob.y + 1), Some(colour(2)));
    }

    #[test]
    fn letterboxes_inputs_of_another_aspect() {
        let order = order(1);
        let mut frame = I420Frame::new(480, 480).unwrap();
        frame.fill(colour(1));
        let mut c = Compositor::new();
        let mut out = I420Frame::new(2, 2).unwrap();
        c.begin_frame();
        let view = speaker_only_view();
        c.compose(&view, &order, |_| Some(&frame), &mut out).unwrap();
        assert_eq!(out.pixel(320, 180), Some(colour(1)));
        assert_eq!(out.pixel(10, 180), Some(Yuv::BLACK));
    }

    /// Everyone shown, speakerOnly, 640×360, no labels.
    fn speaker_only_view() -> ViewKey {
        ViewKey {
            layout: Layout::SpeakerOnly.into(),
            width: 640,
            height: 360,
            self_pane: SelfPane::Shown,
            labels: false,
            codec: VideoCodec::H264,
        }
    }

    #[test]
    fn scaled_panes_follow_new_frames() {
        let order = order(2);
        let mut frames = inputs(2, 320, 180);
        let mut c = Compositor::new();
        let mut out = I420Frame::new(2, 2).unwrap();
        let view = speaker_only_view();
        c.begin_frame();
        c.compose(&view, &order, |p| frames.get(&p), &mut out).unwrap();
        assert_eq!(out.pixel(320, 180), Some(colour(1)));
        frames.get_mut(&ParticipantId(1)).unwrap().fill(colour(5));
        c.begin_frame();
        c.compose(&view, &order, |p| frames.get(&p), &mut out).unwrap();
        assert_eq!(out.pixel(320, 180), Some(colour(5)));
    }

    #[test]
    fn bad_view_sizes_are_errors() {
        let mut c = Compositor::new();
        let mut out = I420Frame::new(2, 2).unwrap();
        let view = ViewKey {
            layout: Layout::AllEqual.into(),
            width: 0,
            height: 360,
            self_pane: SelfPane::Shown,
            labels: false,
            codec: VideoCodec::H264,
        };
        assert!(c.compose(&view, &[], |_| None, &mut out).is_err());
    }
}
