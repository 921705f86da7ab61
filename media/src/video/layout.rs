//! The CMS layouts: where the panes are, and who goes in each.
//!
//! Three separate questions, three separate pieces:
//! - [`Layout::panes`]: the pane rectangles for an output size and a number of
//!   participants to show. Pure geometry; pane 0 is always the most
//!   important (the big pane where the layout has one). A leg whose
//!   `layoutTemplate` names a [`LayoutTemplate`] is drawn in that instead
//!   ([`ViewLayout`] is either).
//! - [`SpeakerOrder`]: the conference's speaker history, most recent speaker
//!   first, fed by the audio mixer's active speaker once per tick. A new
//!   speaker must hold the floor for `hold_ticks` ticks in a row before it
//!   moves to the front, so a cough does not swap the big pane.
//! - [`SelfPane`]: the `panePlacementSelfPaneMode` rule for one receiver,
//!   normalised so that receivers who would see the same picture get the same
//!   value (and so share one composition and one encode).

use std::sync::Arc;

use super::frame::Rect;
use crate::mixer::ParticipantId;

/// A CMS layout, as `defaultLayout`, `chosenLayout` and `activeLayout` spell
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layout {
    /// `allEqual`: a grid that grows with the participants, up to 5×5.
    AllEqual,
    /// `allEqualQuarters`: a grid of at most 2×2.
    AllEqualQuarters,
    /// `allEqualNinths`: a grid of at most 3×3.
    AllEqualNinths,
    /// `allEqualSixteenths`: a grid of at most 4×4.
    AllEqualSixteenths,
    /// `allEqualTwentyFifths`: a grid of at most 5×5.
    AllEqualTwentyFifths,
    /// `speakerOnly` ("full screen"): the floor holder alone.
    SpeakerOnly,
    /// `telepresence` ("overlay"): the floor holder full screen, the others
    /// in small panes over the bottom of it.
    Telepresence,
    /// `stacked` ("stack"): the floor holder in a large pane, the others in a
    /// row of small panes below it.
    Stacked,
    /// `onePlusFive`: a big pane of 2×2 cells in a 3×3 grid, five small.
    OnePlusFive,
    /// `onePlusSeven`: a big pane of 3×3 cells in a 4×4 grid, seven small.
    OnePlusSeven,
    /// `onePlusNine`: a big pane of 4×4 cells in a 5×5 grid, nine small.
    OnePlusNine,
    /// `onePlusN`: the smallest of onePlusFive/Seven/Nine that shows
    /// everyone (onePlusNine beyond ten).
    OnePlusN,
    /// `automatic`: our choice by count: the floor holder alone for one,
    /// allEqual for two to four, onePlusN beyond.
    Automatic,
}

impl Layout {
    /// Every layout, in the order of CMS's `Layouts` enumeration.
    pub const ALL: [Layout; 13] = [
        Layout::AllEqual,
        Layout::SpeakerOnly,
        Layout::Telepresence,
        Layout::Stacked,
        Layout::AllEqualQuarters,
        Layout::AllEqualNinths,
        Layout::AllEqualSixteenths,
        Layout::AllEqualTwentyFifths,
        Layout::OnePlusFive,
        Layout::OnePlusSeven,
        Layout::OnePlusNine,
        Layout::Automatic,
        Layout::OnePlusN,
    ];

    /// The layout an API value names (case-sensitive, as CMS's enumeration
    /// is); `None` for anything else.
    pub fn from_api(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.api_name() == name)
    }

    /// The name the API uses.
    pub const fn api_name(self) -> &'static str {
        match self {
            Layout::AllEqual => "allEqual",
            Layout::AllEqualQuarters => "allEqualQuarters",
            Layout::AllEqualNinths => "allEqualNinths",
            Layout::AllEqualSixteenths => "allEqualSixteenths",
            Layout::AllEqualTwentyFifths => "allEqualTwentyFifths",
            Layout::SpeakerOnly => "speakerOnly",
            Layout::Telepresence => "telepresence",
            Layout::Stacked => "stacked",
            Layout::OnePlusFive => "onePlusFive",
            Layout::OnePlusSeven => "onePlusSeven",
            Layout::OnePlusNine => "onePlusNine",
            Layout::OnePlusN => "onePlusN",
            Layout::Automatic => "automatic",
        }
    }

    /// The fixed layout that `onePlusN` and `automatic` stand for when
    /// `shown` participants are to be shown; other layouts are themselves.
    pub fn resolve(self, shown: usize) -> Layout {
        match self {
            Layout::OnePlusN if shown <= 6 => Layout::OnePlusFive,
            Layout::OnePlusN if shown <= 8 => Layout::OnePlusSeven,
            Layout::OnePlusN => Layout::OnePlusNine,
            Layout::Automatic if shown <= 1 => Layout::SpeakerOnly,
            Layout::Automatic if shown <= 4 => Layout::AllEqual,
            Layout::Automatic => Layout::OnePlusN.resolve(shown),
            fixed => fixed,
        }
    }

    /// How many panes [`panes`](Self::panes) gives for `shown` participants.
    pub fn pane_count(self, shown: usize) -> usize {
        match self.resolve(shown) {
            Layout::SpeakerOnly => 1,
            Layout::Telepresence => 1 + shown.saturating_sub(1).min(TELEPRESENCE_MAX_SMALL),
            Layout::Stacked => 1 + shown.saturating_sub(1).min(STACKED_MAX_SMALL),
            Layout::OnePlusFive => 6,
            Layout::OnePlusSeven => 8,
            Layout::OnePlusNine => 10,
            grid => {
                let n = grid_side(grid, shown);
                if n == 2 && shown == 2 {
                    2
                } else {
                    n * n
                }
            }
        }
    }

    /// Whether some panes lie over others (drawn later, so on top).
    pub fn has_overlays(self, shown: usize) -> bool {
        self.resolve(shown) == Layout::Telepresence && shown > 1
    }

    /// The panes for `shown` participants in a `width` × `height` picture,
    /// most important first, into `out` (cleared first). Every pane lies
    /// inside the picture with even edges; panes overlap only in
    /// telepresence, where the small ones lie over the big one. A layout may
    /// give more panes than there are participants (fixed grids): the rest
    /// stay background.
    pub fn panes(self, shown: usize, width: u32, height: u32, out: &mut Vec<Rect>) {
        out.clear();
        let (w, h) = (even(width), even(height));
        let full = Rect::new(0, 0, w, h);
        match self.resolve(shown) {
            Layout::SpeakerOnly => out.push(full),
            Layout::Telepresence => {
                out.push(full);
                telepresence_strip(shown.saturating_sub(1).min(TELEPRESENCE_MAX_SMALL), w, h, out);
            }
            Layout::Stacked => {
                let small = shown.saturating_sub(1).min(STACKED_MAX_SMALL);
                if small == 0 {
                    out.push(full);
                } else {
                    let strip = even(h / 5);
                    out.push(Rect::new(0, 0, w, h - strip));
                    let pane_w = even(w / STACKED_MAX_SMALL as u32);
                    let x0 = even((w - pane_w * small as u32) / 2);
                    out.extend((0..small as u32).map(|i| Rect::new(x0 + i * pane_w, h - strip, pane_w, strip)));
                }
            }
            Layout::OnePlusFive => one_plus(3, w, h, out),
            Layout::OnePlusSeven => one_plus(4, w, h, out),
            Layout::OnePlusNine => one_plus(5, w, h, out),
            grid => {
                let n = grid_side(grid, shown) as u32;
                if n == 2 && shown == 2 {
                    // Two people side by side rather than a half-empty 2×2.
                    out.extend((0..2).map(|c| cell(c, 0, 2, 1, w, h)));
                } else {
                    out.extend((0..n * n).map(|i| cell(i % n, i / n, n, n, w, h)));
                }
            }
        }
    }
}

/// A layout template's panes (CMS `layoutTemplates`), as the compositor
/// draws them: for ranges of the number of participants shown, pane
/// rectangles in ten-thousandths of the picture, most important first; a
/// later pane lies over an earlier one it overlaps. The control plane reads
/// and checks the template's JSON; this is only its geometry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayoutTemplate {
    layouts: Vec<TemplateLayout>,
}

/// One of a template's layouts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateLayout {
    /// The fewest participants shown it is for.
    pub min_shown: u32,
    /// The most.
    pub max_shown: u32,
    /// `[x, y, width, height]` in ten-thousandths of the picture.
    pub panes: Vec<[u16; 4]>,
}

impl LayoutTemplate {
    /// Ten-thousandths: a pane's coordinates are out of this.
    pub const WHOLE: u32 = 10_000;

    /// A template of these layouts; `None` if there is none, one has no
    /// pane, or a pane is empty or reaches outside the picture.
    pub fn new(layouts: Vec<TemplateLayout>) -> Option<Self> {
        let inside = |&[x, y, w, h]: &[u16; 4]| {
            w > 0 && h > 0 && u32::from(x) + u32::from(w) <= Self::WHOLE && u32::from(y) + u32::from(h) <= Self::WHOLE
        };
        let drawable = !layouts.is_empty() && layouts.iter().all(|l| !l.panes.is_empty() && l.panes.iter().all(inside));
        drawable.then_some(Self { layouts })
    }

    /// The layout for `shown` participants: the first whose range holds
    /// the number, else the last that starts below it, else the first.
    fn layout_for(&self, shown: usize) -> &TemplateLayout {
        let n = u32::try_from(shown).unwrap_or(u32::MAX);
        self.layouts
            .iter()
            .find(|l| (l.min_shown..=l.max_shown).contains(&n))
            .or_else(|| self.layouts.iter().rev().find(|l| l.min_shown <= n))
            .unwrap_or(&self.layouts[0])
    }

    /// How many panes [`panes`](Self::panes) gives for `shown` participants.
    pub fn pane_count(&self, shown: usize) -> usize {
        self.layout_for(shown).panes.len()
    }

    /// The panes for `shown` participants in a `width` × `height` picture,
    /// most important first, into `out` (cleared first), with even edges;
    /// panes that touch in the template share their edge exactly.
    pub fn panes(&self, shown: usize, width: u32, height: u32, out: &mut Vec<Rect>) {
        out.clear();
        let (w, h) = (u64::from(even(width)), u64::from(even(height)));
        let at = |v: u16, side: u64| even((u64::from(v) * side / u64::from(Self::WHOLE)) as u32);
        out.extend(self.layout_for(shown).panes.iter().map(|&[x, y, pw, ph]| {
            let (x0, y0) = (at(x, w), at(y, h));
            Rect::new(x0, y0, at(x + pw, w) - x0, at(y + ph, h) - y0)
        }));
    }
}

/// What a view is drawn in: one of CMS's layouts, or a layout template
/// that replaces it while the leg names one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViewLayout {
    /// The leg's `chosenLayout`, else its `defaultLayout`.
    Cms(Layout),
    /// The leg's `layoutTemplate`.
    Template(Arc<LayoutTemplate>),
}

impl ViewLayout {
    /// How many panes [`panes`](Self::panes) gives for `shown` participants.
    pub fn pane_count(&self, shown: usize) -> usize {
        match self {
            ViewLayout::Cms(l) => l.pane_count(shown),
            ViewLayout::Template(t) => t.pane_count(shown),
        }
    }

    /// The panes for `shown` participants, most important first.
    pub fn panes(&self, shown: usize, width: u32, height: u32, out: &mut Vec<Rect>) {
        match self {
            ViewLayout::Cms(l) => l.panes(shown, width, height, out),
            ViewLayout::Template(t) => t.panes(shown, width, height, out),
        }
    }
}

impl From<Layout> for ViewLayout {
    fn from(layout: Layout) -> Self {
        ViewLayout::Cms(layout)
    }
}

/// Telepresence shows at most this many small panes (two rows of six).
const TELEPRESENCE_MAX_SMALL: usize = 12;
/// Stacked shows at most this many small panes (one row).
const STACKED_MAX_SMALL: usize = 5;

fn even(v: u32) -> u32 {
    v & !1
}

/// The side of the grid an allEqual layout uses for `shown` participants.
fn grid_side(layout: Layout, shown: usize) -> usize {
    let cap = match layout {
        Layout::AllEqualQuarters => 2,
        Layout::AllEqualNinths => 3,
        Layout::AllEqualSixteenths => 4,
        _ => 5,
    };
    let mut n = 1;
    while n * n < shown && n < cap {
        n += 1;
    }
    n
}

/// Cell (`col`, `row`) of a `cols` × `rows` grid over `w` × `h`; edges are
/// computed from the grid lines so that neighbours share them exactly.
fn cell(col: u32, row: u32, cols: u32, rows: u32, w: u32, h: u32) -> Rect {
    let x0 = even(col * w / cols);
    let x1 = even((col + 1) * w / cols);
    let y0 = even(row * h / rows);
    let y1 = even((row + 1) * h / rows);
    Rect::new(x0, y0, x1 - x0, y1 - y0)
}

/// onePlusX: the big pane covers (n-1)×(n-1) cells of an n×n grid; the small
/// panes fill the right column top to bottom, then the bottom row.
fn one_plus(n: u32, w: u32, h: u32, out: &mut Vec<Rect>) {
    let big_right = even((n - 1) * w / n);
    let big_bottom = even((n - 1) * h / n);
    out.push(Rect::new(0, 0, big_right, big_bottom));
    out.extend((0..n - 1).map(|row| cell(n - 1, row, n, n, w, h)));
    out.extend((0..n).map(|col| cell(col, n - 1, n, n, w, h)));
}

/// Small panes of telepresence: rows of up to six, centred, the first row at
/// the bottom with a small margin, each pane the picture's aspect ratio.
fn telepresence_strip(count: usize, w: u32, h: u32, out: &mut Vec<Rect>) {
    const PER_ROW: u32 = 6;
    let gap = even(w / 160).max(2);
    let pane_w = even(w.saturating_sub((PER_ROW + 1) * gap) / PER_ROW);
    let pane_h = even((u64::from(pane_w) * u64::from(h) / u64::from(w.max(1))) as u32);
    if pane_w == 0 || pane_h == 0 {
        // Too small a picture for a strip: empty panes keep the count.
        out.extend(std::iter::repeat_n(Rect::default(), count));
        return;
    }
    let mut left = count as u32;
    let mut row = 0;
    while left > 0 {
        let n = left.min(PER_ROW);
        // Row 0 sits `gap` above the bottom edge, each next row above it.
        let y = even(h.saturating_sub((row + 1) * (pane_h + gap)));
        let total = n * pane_w + (n - 1) * gap;
        let x0 = even((w - total) / 2);
        out.extend((0..n).map(|i| Rect::new(x0 + i * (pane_w + gap), y, pane_w, pane_h)));
        left -= n;
        row += 1;
    }
}

/// The conference's speaker history: who has held the floor, most recent
/// first, then those who never spoke in the order they joined. The front
/// is the floor holder (the big pane).
#[derive(Debug, Clone)]
pub struct SpeakerOrder {
    order: Vec<ParticipantId>,
    hold_ticks: u32,
    /// Someone speaking who is not the floor holder, and for how many ticks
    /// in a row.
    challenger: Option<(ParticipantId, u32)>,
}

impl SpeakerOrder {
    /// Conference ticks (20 ms) a new speaker must be the active speaker in
    /// a row before taking the floor: 1.5 s, long enough to ride over "mm"
    /// and coughs, short enough that a real turn shows quickly.
    pub const DEFAULT_HOLD_TICKS: u32 = 75;

    /// An empty history; a speaker takes the floor after `hold_ticks`
    /// consecutive ticks (0 or 1: at once).
    pub fn new(hold_ticks: u32) -> Self {
        Self { order: Vec::new(), hold_ticks, challenger: None }
    }

    /// A participant joins: last in the order until it speaks.
    pub fn join(&mut self, id: ParticipantId) {
        if !self.order.contains(&id) {
            self.order.push(id);
        }
    }

    /// A participant leaves.
    pub fn leave(&mut self, id: ParticipantId) {
        self.order.retain(|&p| p != id);
        if self.challenger.is_some_and(|(c, _)| c == id) {
            self.challenger = None;
        }
    }

    /// One tick with the audio mixer's active speaker (`None` in silence).
    /// Returns whether the order changed.
    pub fn tick(&mut self, active_speaker: Option<ParticipantId>) -> bool {
        let Some(speaker) = active_speaker.filter(|s| self.order.contains(s)) else {
            self.challenger = None;
            return false;
        };
        if self.order.first() == Some(&speaker) {
            self.challenger = None;
            return false;
        }
        let held = match self.challenger {
            Some((c, n)) if c == speaker => n + 1,
            _ => 1,
        };
        if held < self.hold_ticks {
            self.challenger = Some((speaker, held));
            return false;
        }
        self.challenger = None;
        self.order.retain(|&p| p != speaker);
        self.order.insert(0, speaker);
        true
    }

    /// The participants, most recent speaker first.
    pub fn order(&self) -> &[ParticipantId] {
        &self.order
    }

    /// The floor holder, if anyone is here.
    pub fn floor(&self) -> Option<ParticipantId> {
        self.order.first().copied()
    }
}

/// CMS `panePlacementSelfPaneMode`: what a receiver sees where it would
/// appear itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SelfPaneMode {
    /// `skip` (and `unset`, CMS's default): the receiver is left out and
    /// everyone else moves up.
    #[default]
    Skip,
    /// `self`: the receiver sees itself in its pane.
    ShowSelf,
    /// `blank`: the receiver's pane stays where it is, blank.
    Blank,
}

impl SelfPaneMode {
    /// The mode an API value names (`unset` and the empty string are the
    /// default, `skip`).
    pub fn from_api(value: &str) -> Option<Self> {
        match value {
            "skip" | "unset" | "" => Some(Self::Skip),
            "self" => Some(Self::ShowSelf),
            "blank" => Some(Self::Blank),
            _ => None,
        }
    }
}

/// What goes in one pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaneContent {
    /// A participant's picture (or its placeholder when it has no video).
    Participant(ParticipantId),
    /// Background: the receiver's own pane in `blank` mode.
    Blank,
}

/// One receiver's self-pane rule, normalised: two receivers with equal
/// values (and the same layout and size) see the same picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SelfPane {
    /// Everyone is shown: `self` mode, receivers that are not participants
    /// (a recorder), and `blank`-mode receivers beyond the panes.
    Shown,
    /// `skip` mode for receivers that would not be in any pane anyway: the
    /// panes are laid out for one participant fewer, and the first panes'
    /// worth of the order shown. All such receivers share this view.
    SkippedUnseen,
    /// `skip` mode for a receiver that would be in a pane: its own view.
    Skipped(ParticipantId),
    /// `blank` mode for a receiver that would be in a pane: its own view.
    Blank(ParticipantId),
}

impl SelfPane {
    /// The rule for `receiver` watching `layout` in a conference whose
    /// speaker order is `order`.
    pub fn for_receiver(
        layout: &ViewLayout,
        mode: SelfPaneMode,
        receiver: ParticipantId,
        order: &[ParticipantId],
    ) -> Self {
        let Some(index) = order.iter().position(|&p| p == receiver) else {
            return SelfPane::Shown;
        };
        match mode {
            SelfPaneMode::ShowSelf => SelfPane::Shown,
            SelfPaneMode::Skip if index < layout.pane_count(order.len() - 1) => SelfPane::Skipped(receiver),
            SelfPaneMode::Skip => SelfPane::SkippedUnseen,
            SelfPaneMode::Blank if index < layout.pane_count(order.len()) => SelfPane::Blank(receiver),
            SelfPaneMode::Blank => SelfPane::Shown,
        }
    }

    /// How many participants the layout is laid out for.
    pub fn shown(self, order: &[ParticipantId]) -> usize {
        match self {
            SelfPane::Shown | SelfPane::Blank(_) => order.len(),
            SelfPane::SkippedUnseen => order.len().saturating_sub(1),
            SelfPane::Skipped(p) => order.iter().filter(|&&q| q != p).count(),
        }
    }

    /// Who goes in the panes, in pane order, into `out` (cleared first);
    /// at most `panes` entries.
    pub fn contents(self, order: &[ParticipantId], panes: usize, out: &mut Vec<PaneContent>) {
        out.clear();
        let skipped = match self {
            SelfPane::Skipped(p) => Some(p),
            _ => None,
        };
        let items = order.iter().filter(|&&p| Some(p) != skipped).map(|&p| match self {
            SelfPane::Blank(b) if b == p => PaneContent::Blank,
            _ => PaneContent::Participant(p),
        });
        out.extend(items.take(panes));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn ids(n: u64) -> Vec<ParticipantId> {
        (1..=n).map(ParticipantId).collect()
    }

    #[test]
    fn api_names_round_trip_and_match_the_schema() {
        let names = [
            "allEqual",
            "speakerOnly",
            "telepresence",
            "stacked",
            "allEqualQuarters",
            "allEqualNinths",
            "allEqualSixteenths",
            "allEqualTwentyFifths",
            "onePlusFive",
            "onePlusSeven",
            "onePlusNine",
            "automatic",
            "onePlusN",
        ];
        for (layout, name) in Layout::ALL.into_iter().zip(names) {
            assert_eq!(layout.api_name(), name);
            assert_eq!(Layout::from_api(name), Some(layout));
        }
        assert_eq!(Layout::from_api("AllEqual"), None);
        assert_eq!(SelfPaneMode::from_api("unset"), Some(SelfPaneMode::Skip));
        assert_eq!(SelfPaneMode::from_api("self"), Some(SelfPaneMode::ShowSelf));
        assert_eq!(SelfPaneMode::from_api("nope"), None);
    }

    #[test]
    fn every_layout_stays_inside_the_frame_with_the_expected_counts() {
        let mut panes = Vec::new();
        for (w, h) in [(1280, 720), (1920, 1080), (640, 360), (352, 288), (176, 144), (2, 2)] {
            let frame = Rect::new(0, 0, w, h);
            for layout in Layout::ALL {
                for shown in 0..=30 {
                    layout.panes(shown, w, h, &mut panes);
                    assert_eq!(panes.len(), layout.pane_count(shown), "{layout:?} {shown} {w}x{h}");
                    for p in &panes {
                        assert!(frame.contains(p), "{layout:?} {shown} {w}x{h}: {p:?}");
                        assert!(p.x % 2 == 0 && p.y % 2 == 0 && p.width % 2 == 0 && p.height % 2 == 0);
                    }
                    if w >= 640 {
                        assert!(panes.iter().all(|p| p.width > 0 && p.height > 0), "{layout:?} {shown}");
                    }
                    // Panes overlap only where the layout overlays them, and
                    // then only the big pane.
                    for (i, a) in panes.iter().enumerate() {
                        for b in &panes[i + 1..] {
                            let allowed = layout.has_overlays(shown) && i == 0;
                            assert!(allowed || !a.overlaps(b), "{layout:?} {shown} {w}x{h}: {a:?} {b:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn pane_counts_per_layout() {
        let count = |l: Layout, n| l.pane_count(n);
        assert_eq!(count(Layout::SpeakerOnly, 10), 1);
        assert_eq!(count(Layout::AllEqual, 1), 1);
        assert_eq!(count(Layout::AllEqual, 2), 2);
        assert_eq!(count(Layout::AllEqual, 3), 4);
        assert_eq!(count(Layout::AllEqual, 9), 9);
        assert_eq!(count(Layout::AllEqual, 10), 16);
        assert_eq!(count(Layout::AllEqual, 40), 25);
        assert_eq!(count(Layout::AllEqualQuarters, 10), 4);
        assert_eq!(count(Layout::AllEqualNinths, 10), 9);
        assert_eq!(count(Layout::AllEqualSixteenths, 40), 16);
        assert_eq!(count(Layout::AllEqualTwentyFifths, 40), 25);
        assert_eq!(count(Layout::OnePlusFive, 1), 6);
        assert_eq!(count(Layout::OnePlusSeven, 1), 8);
        assert_eq!(count(Layout::OnePlusNine, 1), 10);
        assert_eq!(count(Layout::OnePlusN, 6), 6);
        assert_eq!(count(Layout::OnePlusN, 7), 8);
        assert_eq!(count(Layout::OnePlusN, 20), 10);
        assert_eq!(count(Layout::Telepresence, 10), 10);
        assert_eq!(count(Layout::Telepresence, 40), 13);
        assert_eq!(count(Layout::Stacked, 10), 6);
        assert_eq!(count(Layout::Automatic, 1), 1);
        assert_eq!(count(Layout::Automatic, 3), 4);
        assert_eq!(count(Layout::Automatic, 7), 8);
    }

    #[test]
    fn big_panes_are_big() {
        let mut panes = Vec::new();
        Layout::OnePlusFive.panes(6, 1280, 720, &mut panes);
        assert_eq!(panes[0], Rect::new(0, 0, 852, 480));
        assert_eq!(panes[1], Rect::new(852, 0, 428, 240));
        Layout::Telepresence.panes(10, 1280, 720, &mut panes);
        assert_eq!(panes[0], Rect::new(0, 0, 1280, 720));
        assert!(panes[1..].iter().all(|p| p.width < 1280 / 5 && p.y > 360));
        Layout::Stacked.panes(3, 1280, 720, &mut panes);
        assert_eq!(panes[0], Rect::new(0, 0, 1280, 576));
        assert_eq!(panes.len(), 3);
    }

    #[test]
    fn a_speaker_takes_the_floor_only_after_holding_it() {
        let mut order = SpeakerOrder::new(3);
        for id in ids(4) {
            order.join(id);
        }
        assert_eq!(order.floor(), Some(ParticipantId(1)));
        // Two ticks of participant 3, a gap, then two more: never three in a row.
        for speaker in [Some(3), Some(3), None, Some(3), Some(3), Some(4)] {
            assert!(!order.tick(speaker.map(ParticipantId)));
        }
        assert_eq!(order.order(), &ids(4)[..]);
        // Three in a row: 3 takes the floor, 1 is second.
        assert!(!order.tick(Some(ParticipantId(3))));
        assert!(!order.tick(Some(ParticipantId(3))));
        assert!(order.tick(Some(ParticipantId(3))));
        assert_eq!(order.order(), &[3, 1, 2, 4].map(ParticipantId)[..]);
        // The floor holder speaking changes nothing; unknown speakers neither.
        assert!(!order.tick(Some(ParticipantId(3))));
        assert!(!order.tick(Some(ParticipantId(99))));
        order.leave(ParticipantId(3));
        assert_eq!(order.floor(), Some(ParticipantId(1)));
        let mut at_once = SpeakerOrder::new(0);
        at_once.join(ParticipantId(1));
        at_once.join(ParticipantId(2));
        assert!(at_once.tick(Some(ParticipantId(2))));
    }

    /// A big pane and a column of small ones for two to four, one pane
    /// alone, and a 2×2 beyond.
    pub(crate) fn side_column_template() -> LayoutTemplate {
        let layout =
            |min_shown, max_shown, panes: &[[u16; 4]]| TemplateLayout { min_shown, max_shown, panes: panes.to_vec() };
        LayoutTemplate::new(vec![
            layout(0, 1, &[[0, 0, 10_000, 10_000]]),
            layout(2, 4, &[[0, 0, 7_500, 10_000], [7_500, 0, 2_500, 3_333], [7_500, 3_333, 2_500, 3_334]]),
            layout(
                5,
                9,
                &[
                    [0, 0, 5_000, 5_000],
                    [5_000, 0, 5_000, 5_000],
                    [0, 5_000, 5_000, 5_000],
                    [5_000, 5_000, 5_000, 5_000],
                ],
            ),
        ])
        .expect("a drawable template")
    }

    #[test]
    fn a_template_gives_the_panes_of_the_range_that_holds_the_count() {
        let t = ViewLayout::Template(Arc::new(side_column_template()));
        let mut out = Vec::new();
        t.panes(1, 1280, 720, &mut out);
        assert_eq!(out, [Rect::new(0, 0, 1280, 720)]);
        t.panes(3, 1280, 720, &mut out);
        assert_eq!(out, [Rect::new(0, 0, 960, 720), Rect::new(960, 0, 320, 238), Rect::new(960, 238, 320, 242)]);
        assert_eq!(t.pane_count(4), 3);
        // Touching panes share their edge; every edge is even.
        t.panes(5, 1279, 719, &mut out);
        assert_eq!(out[0].x + out[0].width, out[1].x);
        assert_eq!(out[0].y + out[0].height, out[2].y);
        assert!(out.iter().all(|r| r.x % 2 == 0 && r.y % 2 == 0 && r.width % 2 == 0 && r.height % 2 == 0));
        // Past every range: the last layout that starts below the count.
        assert_eq!(t.pane_count(30), 4);
        // Nothing drawable is refused.
        assert!(LayoutTemplate::new(Vec::new()).is_none());
        let outside = TemplateLayout { min_shown: 0, max_shown: 9, panes: vec![[6_000, 0, 5_000, 100]] };
        assert!(LayoutTemplate::new(vec![outside]).is_none());
        // A receiver shown in the template's panes has a view of its own.
        let order = ids(3);
        assert_eq!(
            SelfPane::for_receiver(&t, SelfPaneMode::Skip, ParticipantId(2), &order),
            SelfPane::Skipped(ParticipantId(2))
        );
    }

    #[test]
    fn self_skip_leaves_the_receiver_out() {
        let order = ids(4);
        let l = Layout::AllEqual;
        let mut out = Vec::new();
        // The floor holder sees the others, the previous speaker big.
        let me = SelfPane::for_receiver(&l.into(), SelfPaneMode::Skip, ParticipantId(1), &order);
        assert_eq!(me, SelfPane::Skipped(ParticipantId(1)));
        assert_eq!(me.shown(&order), 3);
        me.contents(&order, l.pane_count(3), &mut out);
        assert_eq!(out, [2, 3, 4].map(|p| PaneContent::Participant(ParticipantId(p))));
        // speakerOnly: only the floor holder has a view of its own.
        let l = Layout::SpeakerOnly;
        assert_eq!(SelfPane::for_receiver(&l.into(), SelfPaneMode::Skip, ParticipantId(1), &order), me);
        let other = SelfPane::for_receiver(&l.into(), SelfPaneMode::Skip, ParticipantId(3), &order);
        assert_eq!(other, SelfPane::SkippedUnseen);
        assert_eq!(SelfPane::for_receiver(&l.into(), SelfPaneMode::Skip, ParticipantId(4), &order), other);
        other.contents(&order, l.pane_count(other.shown(&order)), &mut out);
        assert_eq!(out, [PaneContent::Participant(ParticipantId(1))]);
        // A receiver that is not a participant sees everyone.
        assert_eq!(SelfPane::for_receiver(&l.into(), SelfPaneMode::Skip, ParticipantId(9), &order), SelfPane::Shown);
    }

    #[test]
    fn self_and_blank_modes() {
        let order = ids(3);
        let l = Layout::AllEqual;
        let mut out = Vec::new();
        let shown = SelfPane::for_receiver(&l.into(), SelfPaneMode::ShowSelf, ParticipantId(2), &order);
        assert_eq!(shown, SelfPane::Shown);
        shown.contents(&order, l.pane_count(3), &mut out);
        assert_eq!(out.len(), 3);
        let blank = SelfPane::for_receiver(&l.into(), SelfPaneMode::Blank, ParticipantId(2), &order);
        assert_eq!(blank, SelfPane::Blank(ParticipantId(2)));
        blank.contents(&order, l.pane_count(3), &mut out);
        assert_eq!(out[1], PaneContent::Blank);
        assert_eq!(out[2], PaneContent::Participant(ParticipantId(3)));
        // Beyond the panes, blank mode changes nothing.
        let blank = SelfPane::for_receiver(&Layout::SpeakerOnly.into(), SelfPaneMode::Blank, ParticipantId(2), &order);
        assert_eq!(blank, SelfPane::Shown);
    }

    #[test]
    fn distinct_views_with_self_skip() {
        // Ten in telepresence: each receiver sees nine others, so the first
        // nine each have a view of their own and the tenth sees what a
        // non-speaker would: ten views. speakerOnly: the floor holder's and
        // everyone else's.
        let order = ids(10);
        let views = |l: Layout| {
            let mut v: Vec<SelfPane> =
                order.iter().map(|&r| SelfPane::for_receiver(&l.into(), SelfPaneMode::Skip, r, &order)).collect();
            v.sort_by_key(|s| format!("{s:?}"));
            v.dedup();
            v.len()
        };
        assert_eq!(views(Layout::Telepresence), 10);
        assert_eq!(views(Layout::SpeakerOnly), 2);
        assert_eq!(views(Layout::AllEqualQuarters), 4 + 1);
        assert_eq!(views(Layout::Stacked), 6 + 1);
    }
}
