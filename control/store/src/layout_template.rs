//! The JSON of a layout template (`PUT layoutTemplates/<id>/template`),
//! read and checked in one place: the API refuses a template this does not
//! accept, and the call bridge reads the same text into the panes the
//! compositor draws.
//!
//! Cisco's API reference names the object but not the file's format (it
//! points at an administrator guide that is not public), so the format is
//! ours, kept small (`docs/layout-templates.md`):
//!
//! ```json
//! { "layouts": [
//!     { "maxParticipants": 1, "panes": [ { "x": 0, "y": 0, "width": 100, "height": 100 } ] },
//!     { "minParticipants": 2,
//!       "panes": [ { "x": 0, "y": 0, "width": 75, "height": 100 },
//!                  { "x": 75, "y": 0, "width": 25, "height": 25 } ] } ] }
//! ```
//!
//! Positions and sizes are percentages of the picture (decimals allowed).
//! Panes are listed most important first (the floor holder, then the speaker
//! order); a later pane is drawn over an earlier one it overlaps. For a
//! number of participants shown, the first layout whose range holds it is
//! used; past every range, the last layout whose minimum is below it.

use serde_json::Value;

/// Where templates' JSON is kept in the store's records, by the object's id.
pub const LAYOUT_TEMPLATES: &str = "layoutTemplates";
/// The most layouts one template may hold.
pub const MAX_LAYOUTS: usize = 32;
/// The most panes one layout may hold (CMS's largest layout has 25).
pub const MAX_PANES: usize = 25;
/// Positions and sizes in the parsed template: 10,000 is the whole picture.
pub const WHOLE: u16 = 10_000;

/// A parsed template: its layouts in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSpec {
    /// Never empty.
    pub layouts: Vec<LayoutSpec>,
}

/// The panes for a range of participant counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutSpec {
    /// The fewest participants shown it is for (at least 0).
    pub min_participants: u32,
    /// The most (`u32::MAX`: no upper bound).
    pub max_participants: u32,
    /// Most important first; never empty.
    pub panes: Vec<PaneSpec>,
}

/// One pane, in ten-thousandths of the picture; it lies inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneSpec {
    /// Left edge.
    pub x: u16,
    /// Top edge.
    pub y: u16,
    /// Width, above 0.
    pub width: u16,
    /// Height, above 0.
    pub height: u16,
}

/// Why a template was refused: a path into the JSON and what is wrong
/// there, for the log (the API answers `parameterError template`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layout template {at}: {problem}")]
pub struct TemplateError {
    /// Where (`layouts[1].panes[0].width`).
    pub at: String,
    /// What.
    pub problem: &'static str,
}

fn refuse(at: impl Into<String>, problem: &'static str) -> TemplateError {
    TemplateError { at: at.into(), problem }
}

impl TemplateSpec {
    /// Reads a template's JSON.
    pub fn parse(text: &str) -> Result<TemplateSpec, TemplateError> {
        let json: Value = serde_json::from_str(text).map_err(|_| refuse("", "not JSON"))?;
        let layouts = json
            .as_object()
            .ok_or_else(|| refuse("", "not a JSON object"))?
            .get("layouts")
            .ok_or_else(|| refuse("layouts", "missing"))?
            .as_array()
            .ok_or_else(|| refuse("layouts", "not a list"))?;
        if layouts.is_empty() {
            return Err(refuse("layouts", "empty"));
        }
        if layouts.len() > MAX_LAYOUTS {
            return Err(refuse("layouts", "more than 32 layouts"));
        }
        let layouts = layouts.iter().enumerate().map(|(i, l)| layout(&format!("layouts[{i}]"), l));
        Ok(TemplateSpec { layouts: layouts.collect::<Result<_, _>>()? })
    }
}

fn layout(at: &str, json: &Value) -> Result<LayoutSpec, TemplateError> {
    let obj = json.as_object().ok_or_else(|| refuse(at, "not a JSON object"))?;
    let count = |name: &str, default: u32| -> Result<u32, TemplateError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| refuse(format!("{at}.{name}"), "not a whole number")),
        }
    };
    let min_participants = count("minParticipants", 0)?;
    let max_participants = count("maxParticipants", u32::MAX)?;
    if max_participants < min_participants {
        return Err(refuse(format!("{at}.maxParticipants"), "below minParticipants"));
    }
    let panes = obj
        .get("panes")
        .ok_or_else(|| refuse(format!("{at}.panes"), "missing"))?
        .as_array()
        .ok_or_else(|| refuse(format!("{at}.panes"), "not a list"))?;
    if panes.is_empty() {
        return Err(refuse(format!("{at}.panes"), "empty"));
    }
    if panes.len() > MAX_PANES {
        return Err(refuse(format!("{at}.panes"), "more than 25 panes"));
    }
    let panes = panes.iter().enumerate().map(|(i, p)| pane(&format!("{at}.panes[{i}]"), p));
    Ok(LayoutSpec { min_participants, max_participants, panes: panes.collect::<Result<_, _>>()? })
}

fn pane(at: &str, json: &Value) -> Result<PaneSpec, TemplateError> {
    let obj = json.as_object().ok_or_else(|| refuse(at, "not a JSON object"))?;
    let percent = |name: &str| -> Result<u16, TemplateError> {
        let v = obj.get(name).ok_or_else(|| refuse(format!("{at}.{name}"), "missing"))?;
        let v = v.as_f64().ok_or_else(|| refuse(format!("{at}.{name}"), "not a number"))?;
        if !(0.0..=100.0).contains(&v) {
            return Err(refuse(format!("{at}.{name}"), "not between 0 and 100"));
        }
        Ok((v * 100.0).round() as u16)
    };
    let p = PaneSpec { x: percent("x")?, y: percent("y")?, width: percent("width")?, height: percent("height")? };
    if p.width == 0 || p.height == 0 {
        return Err(refuse(at, "a pane with no area"));
    }
    if u32::from(p.x) + u32::from(p.width) > u32::from(WHOLE) || u32::from(p.y) + u32::from(p.height) > u32::from(WHOLE)
    {
        return Err(refuse(at, "reaches outside the picture"));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ranges_and_panes_in_ten_thousandths() {
        let t = TemplateSpec::parse(
            r#"{"name": "ignored", "layouts": [
                {"maxParticipants": 1, "panes": [{"x": 0, "y": 0, "width": 100, "height": 100}]},
                {"minParticipants": 2, "panes": [{"x": 0, "y": 0, "width": 66.67, "height": 100},
                                                  {"x": 66.67, "y": 0, "width": 33.33, "height": 50}]}]}"#,
        )
        .expect("a template");
        assert_eq!(t.layouts.len(), 2);
        assert_eq!((t.layouts[0].min_participants, t.layouts[0].max_participants), (0, 1));
        assert_eq!((t.layouts[1].min_participants, t.layouts[1].max_participants), (2, u32::MAX));
        assert_eq!(t.layouts[1].panes[1], PaneSpec { x: 6667, y: 0, width: 3333, height: 5000 });
    }

    #[test]
    fn refuses_what_it_cannot_draw_and_says_where() {
        let pane = r#"{"x": 0, "y": 0, "width": 50, "height": 50}"#;
        for (text, at) in [
            ("[]", ""),
            ("{}", "layouts"),
            (r#"{"layouts": []}"#, "layouts"),
            (r#"{"layouts": [{"panes": []}]}"#, "layouts[0].panes"),
            (r#"{"layouts": [{"panes": [{"x": 0, "y": 0, "width": 0, "height": 5}]}]}"#, "layouts[0].panes[0]"),
            (r#"{"layouts": [{"panes": [{"x": 60, "y": 0, "width": 50, "height": 5}]}]}"#, "layouts[0].panes[0]"),
            (r#"{"layouts": [{"panes": [{"x": -1, "y": 0, "width": 5, "height": 5}]}]}"#, "layouts[0].panes[0].x"),
            (r#"{"layouts": [{"panes": [{"x": "0", "y": 0, "width": 5, "height": 5}]}]}"#, "layouts[0].panes[0].x"),
            (
                &format!(r#"{{"layouts": [{{"minParticipants": 3, "maxParticipants": 2, "panes": [{pane}]}}]}}"#),
                "layouts[0].maxParticipants",
            ),
            (
                &format!(r#"{{"layouts": [{{"minParticipants": 1.5, "panes": [{pane}]}}]}}"#),
                "layouts[0].minParticipants",
            ),
            (&format!(r#"{{"layouts": [{{"panes": [{}]}}]}}"#, vec![pane; 26].join(",")), "layouts[0].panes"),
        ] {
            let err = TemplateSpec::parse(text).expect_err(text);
            assert_eq!(err.at, at, "{text}: {err}");
        }
    }
}
