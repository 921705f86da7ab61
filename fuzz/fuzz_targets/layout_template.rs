//! A layout template's JSON (`PUT layoutTemplates/<id>/template`): any bytes
//! are refused or read into panes the compositor can draw. Every template
//! the API keeps makes a media `LayoutTemplate`, and its panes lie inside
//! any picture for any number of participants.
#![no_main]
use confero_media::video::layout::{LayoutTemplate, TemplateLayout};
use confero_store::layout_template::{TemplateSpec, MAX_LAYOUTS, MAX_PANES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let Ok(spec) = TemplateSpec::parse(text) else { return };
    assert!(!spec.layouts.is_empty() && spec.layouts.len() <= MAX_LAYOUTS);
    let layouts = spec.layouts.iter().map(|l| {
        assert!(!l.panes.is_empty() && l.panes.len() <= MAX_PANES && l.min_participants <= l.max_participants);
        TemplateLayout {
            min_shown: l.min_participants,
            max_shown: l.max_participants,
            panes: l.panes.iter().map(|p| [p.x, p.y, p.width, p.height]).collect(),
        }
    });
    let template = LayoutTemplate::new(layouts.collect()).expect("every template the API keeps can be drawn");
    let (width, height) = (u32::from(size) * 8 + 2, u32::from(size.rotate_left(3)) * 5 + 2);
    let mut panes = Vec::new();
    for shown in [0, 1, 2, 5, usize::from(size), usize::MAX] {
        template.panes(shown, width, height, &mut panes);
        assert_eq!(panes.len(), template.pane_count(shown));
        for p in &panes {
            assert!(p.x + p.width <= width && p.y + p.height <= height, "{p:?} outside {width}x{height}");
        }
    }
});
