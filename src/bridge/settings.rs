//! A leg's settings, typed and resolved in one place.
//!
//! CMS settles what a leg does in layers: the leg's own values (set by
//! `POST /calls/<id>/callLegs` or `PUT /callLegs/<id>`), then the call leg
//! profiles that apply to it, field by field, most specific first — the
//! leg's own `callLegProfile`, its access method's, its space's, its
//! tenant's, the system profile's — and for `defaultLayout` the space's own
//! field before the tenant's and system's profiles. An unset field falls
//! through to the next layer; nothing sets it: the CMS default.
//!
//! [`ProfileChain`] is the profile layers, read from the store once when the
//! leg is admitted; [`LegSettings::resolve`] combines them with the leg's own
//! values whenever those change, so no other code reads settings as strings.

use std::collections::BTreeMap;
use std::time::Duration;

use confero_media::engine::MAX_VIDEO_SIZE;
use confero_media::video::layout::Layout;
use confero_sdp::MediaEncryption;
use confero_store::schema::Kind;
use confero_store::{Object, Store};

use super::dtmf::DtmfCommands;
use uuid::Uuid;

/// The call leg profiles that apply to one leg, most specific first, and the
/// space's own `defaultLayout` (which sits between the space's profile and
/// the tenant's).
#[derive(Debug, Clone, Default)]
pub struct ProfileChain {
    /// Profiles more specific than the space's own `defaultLayout`: the
    /// leg's, the access method's, the space's.
    near: Vec<Object>,
    /// The space's `defaultLayout`.
    space_layout: Option<Layout>,
    /// The tenant's profile, then the system profile's.
    far: Vec<Object>,
    /// The DTMF profile's sequences: a call leg profile's `dtmfProfile`, else
    /// the tenant's, else `system/profiles`'.
    pub dtmf: DtmfCommands,
    /// Where each profile applies (CMS's `callLegProfileTrace` scopes:
    /// `callLeg`, `accessMethod`, `coSpace`, `tenant`, `global`), most
    /// specific first.
    pub scopes: Vec<&'static str>,
}

/// Where a leg stands, for finding its profiles.
#[derive(Debug, Clone, Copy, Default)]
pub struct LegPlace<'a> {
    /// The leg's own `callLegProfile` (a dial-out's parameter).
    pub own_profile: Option<&'a str>,
    /// The access method it dialled, if any.
    pub access_method: Option<&'a Object>,
    /// Its call's space, if any.
    pub space: Option<&'a Object>,
}

impl ProfileChain {
    /// Reads the profiles that apply to a leg at `place`.
    pub fn resolve(store: &dyn Store, place: LegPlace<'_>) -> ProfileChain {
        let profile = |id: Option<&str>| {
            id.and_then(|p| Uuid::parse_str(p).ok()).and_then(|id| store.get(Kind::CallLegProfile, id))
        };
        let near = [
            ("callLeg", place.own_profile),
            ("accessMethod", place.access_method.and_then(|a| a.get("callLegProfile"))),
            ("coSpace", place.space.and_then(|s| s.get("callLegProfile"))),
        ];
        let tenant = place
            .space
            .and_then(|s| s.get("tenant"))
            .and_then(|t| Uuid::parse_str(t).ok())
            .and_then(|t| store.get(Kind::Tenant, t));
        let system = store.singleton(Kind::SystemProfiles);
        let far = [
            ("tenant", tenant.as_ref().and_then(|t| t.get("callLegProfile"))),
            ("global", system.get("callLegProfile")),
        ];
        let found = |layers: [(&'static str, Option<&str>); 3]| -> Vec<(&'static str, Object)> {
            layers.into_iter().filter_map(|(scope, id)| profile(id).map(|p| (scope, p))).collect()
        };
        let near = found(near);
        let far = found([far[0], far[1], ("", None)]);
        let mut chain = ProfileChain {
            scopes: near.iter().chain(&far).map(|(scope, _)| *scope).collect(),
            near: near.into_iter().map(|(_, p)| p).collect(),
            space_layout: place.space.and_then(|s| s.get("defaultLayout")).and_then(Layout::from_api),
            far: far.into_iter().map(|(_, p)| p).collect(),
            dtmf: DtmfCommands::default(),
        };
        let dtmf_profile = chain
            .field("dtmfProfile")
            .or_else(|| tenant.as_ref().and_then(|t| t.get("dtmfProfile")))
            .or_else(|| system.get("dtmfProfile"))
            .and_then(|p| Uuid::parse_str(p).ok())
            .and_then(|id| store.get(Kind::DtmfProfile, id));
        chain.dtmf = dtmf_profile.as_ref().map(DtmfCommands::of).unwrap_or_default();
        chain
    }

    /// Each profile with the scope it applies at, most general first, as
    /// `callLegProfileTrace` lists them.
    pub fn trace(&self) -> Vec<(&'static str, &Object)> {
        let mut layers: Vec<_> = self.scopes.iter().copied().zip(self.near.iter().chain(&self.far)).collect();
        layers.reverse();
        layers
    }

    /// A profile field: the first layer that sets it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.near.iter().chain(&self.far).find_map(|p| p.get(name))
    }

    /// `sipMediaEncryption`: whether SRTP is required, optional or refused.
    pub fn media_encryption(&self) -> MediaEncryption {
        match self.field("sipMediaEncryption") {
            Some("required") => MediaEncryption::Required,
            Some("prohibited") => MediaEncryption::Prohibited,
            _ => MediaEncryption::Optional,
        }
    }

    /// The layout a leg sees until it chooses one.
    pub fn default_layout(&self) -> Layout {
        let layout = |p: &Object| p.get("defaultLayout").and_then(Layout::from_api);
        self.near
            .iter()
            .find_map(layout)
            .or(self.space_layout)
            .or_else(|| self.far.iter().find_map(layout))
            .unwrap_or(Layout::Automatic)
    }
}

/// What a leg does now: its own values over its profiles'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegSettings {
    /// What it says is not mixed.
    pub rx_audio_mute: bool,
    /// It hears nothing.
    pub tx_audio_mute: bool,
    /// Its picture is not shown (its panes show the placeholder).
    pub rx_video_mute: bool,
    /// It is sent no video.
    pub tx_video_mute: bool,
    /// Its place in speaker selection and pane order (0: none).
    pub importance: i32,
    /// The layout it is sent.
    pub layout: Layout,
    /// The layout template drawn instead, while one is named: the leg's
    /// own `layoutTemplate`, else its profiles'.
    pub layout_template: Option<Uuid>,
    /// The largest picture it may be sent (`qualityMain`).
    pub max_picture: (u32, u32),
    /// Whether its panes carry participants' names.
    pub participant_labels: bool,
    /// The name on its own panes, when set (`nameLabelOverride`).
    pub name_label_override: Option<String>,
    /// A guest: it waits for an activator (`needsActivation`).
    pub needs_activation: bool,
    /// What it does when the last activator leaves (`deactivationMode`).
    pub deactivation_mode: DeactivationMode,
    /// How long after that (`deactivationModeTime`, seconds; 0: at once).
    pub deactivation_time: Duration,
    /// Its camera controls may move the camera it sees
    /// (`controlRemoteCameraAllowed`, unless `false`).
    pub control_remote_camera: bool,
}

/// CMS `deactivationMode`: a guest's lot when the last activator leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeactivationMode {
    /// It waits again (`deactivate`, the default).
    #[default]
    Deactivate,
    /// It is hung up (`disconnect`).
    Disconnect,
    /// It stays in (`remainActivated`).
    RemainActivated,
}

impl LegSettings {
    /// Resolves a leg's own values (`own`, as the API stored them) over its
    /// profiles.
    pub fn resolve(own: &BTreeMap<&'static str, String>, profiles: &ProfileChain) -> LegSettings {
        let value = |name: &str| own.get(name).map(String::as_str).or_else(|| profiles.field(name));
        let flag = |name: &str| value(name) == Some("true");
        // `chosenLayout` is the leg's choice; its own `defaultLayout` (or the
        // legacy `layout`) beats the profiles'.
        let layout = ["chosenLayout", "defaultLayout", "layout"]
            .iter()
            .find_map(|name| own.get(*name).and_then(|v| Layout::from_api(v)))
            .unwrap_or_else(|| profiles.default_layout());
        LegSettings {
            rx_audio_mute: flag("rxAudioMute"),
            tx_audio_mute: flag("txAudioMute"),
            rx_video_mute: flag("rxVideoMute"),
            tx_video_mute: flag("txVideoMute"),
            importance: own.get("importance").and_then(|v| v.parse().ok()).unwrap_or(0),
            layout,
            layout_template: value("layoutTemplate").and_then(|v| Uuid::parse_str(v).ok()),
            max_picture: value("qualityMain").and_then(quality_main_size).unwrap_or(MAX_VIDEO_SIZE),
            participant_labels: value("participantLabels") != Some("false"),
            name_label_override: own.get("nameLabelOverride").filter(|n| !n.trim().is_empty()).cloned(),
            needs_activation: flag("needsActivation"),
            deactivation_mode: match value("deactivationMode") {
                Some("disconnect") => DeactivationMode::Disconnect,
                Some("remainActivated") => DeactivationMode::RemainActivated,
                _ => DeactivationMode::Deactivate,
            },
            deactivation_time: Duration::from_secs(
                value("deactivationModeTime").and_then(|v| v.trim().parse().ok()).unwrap_or(0),
            ),
            control_remote_camera: value("controlRemoteCameraAllowed") != Some("false"),
        }
    }
}

/// The largest picture a CMS `qualityMain` lets a leg be sent (16:9; all
/// at 30 fps, which is what Confero sends anyway); `None` for
/// `unrestricted` or a value we do not know.
fn quality_main_size(quality: &str) -> Option<(u32, u32)> {
    match quality {
        "max1080p30" => Some((1920, 1080)),
        "max720p30" => Some((1280, 720)),
        "max480p30" => Some((848, 480)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{create, set, store};

    #[test]
    fn each_field_falls_through_to_the_next_layer_that_sets_it() {
        let (_dir, store) = store();
        let system_profile =
            create(&*store, Kind::CallLegProfile, None, &[("qualityMain", "max480p30"), ("rxAudioMute", "true")]);
        let system_id = system_profile.id.to_string();
        set(&*store, Kind::SystemProfiles, &[("callLegProfile", &system_id)]);
        let space_profile = create(&*store, Kind::CallLegProfile, None, &[("defaultLayout", "speakerOnly")]);
        let space_profile_id = space_profile.id.to_string();
        let space = create(
            &*store,
            Kind::CoSpace,
            None,
            &[("name", "s"), ("uri", "s"), ("callLegProfile", &space_profile_id), ("defaultLayout", "allEqual")],
        );
        let method_profile = create(&*store, Kind::CallLegProfile, None, &[("rxAudioMute", "false")]);
        let method_profile_id = method_profile.id.to_string();
        let method = create(
            &*store,
            Kind::AccessMethod,
            Some(space.id),
            &[("uri", "m"), ("callLegProfile", &method_profile_id)],
        );
        let chain = ProfileChain::resolve(
            &*store,
            LegPlace { own_profile: None, access_method: Some(&method), space: Some(&space) },
        );
        let settings = LegSettings::resolve(&BTreeMap::new(), &chain);
        // The access method's profile says rxAudioMute=false, over the system's true.
        assert!(!settings.rx_audio_mute);
        // The space's profile's layout beats the space's own defaultLayout.
        assert_eq!(settings.layout, Layout::SpeakerOnly);
        // Nothing nearer sets qualityMain: the system profile's.
        assert_eq!(settings.max_picture, (848, 480));
        assert!(settings.participant_labels);

        // Without its profile, the space's own defaultLayout applies.
        let bare = create(&*store, Kind::CoSpace, None, &[("name", "b"), ("uri", "b"), ("defaultLayout", "allEqual")]);
        let chain = ProfileChain::resolve(&*store, LegPlace { space: Some(&bare), ..LegPlace::default() });
        assert_eq!(LegSettings::resolve(&BTreeMap::new(), &chain).layout, Layout::AllEqual);
        assert!(LegSettings::resolve(&BTreeMap::new(), &chain).rx_audio_mute, "the system profile's mute");
        assert_eq!(LegSettings::resolve(&BTreeMap::new(), &chain).layout_template, None);

        // A profile's layoutTemplate, and the leg's own over it.
        let template = create(&*store, Kind::LayoutTemplate, None, &[("name", "side column")]);
        let template_id = template.id.to_string();
        let own_profile = create(&*store, Kind::CallLegProfile, None, &[("layoutTemplate", &template_id)]);
        let own_profile_id = own_profile.id.to_string();
        let place = LegPlace { own_profile: Some(&own_profile_id), space: Some(&space), ..LegPlace::default() };
        let chain = ProfileChain::resolve(&*store, place);
        assert_eq!(LegSettings::resolve(&BTreeMap::new(), &chain).layout_template, Some(template.id));
        let other = Uuid::new_v4();
        let own = BTreeMap::from([("layoutTemplate", other.to_string())]);
        assert_eq!(LegSettings::resolve(&own, &chain).layout_template, Some(other));
    }

    #[test]
    fn a_leg_s_own_values_beat_its_profiles() {
        let mut own = BTreeMap::new();
        own.insert("defaultLayout", "telepresence".to_string());
        own.insert("rxAudioMute", "true".to_string());
        own.insert("importance", "3".to_string());
        own.insert("qualityMain", "unrestricted".to_string());
        let settings = LegSettings::resolve(&own, &ProfileChain::default());
        assert_eq!(settings.layout, Layout::Telepresence);
        assert!(settings.rx_audio_mute);
        assert_eq!(settings.importance, 3);
        assert_eq!(settings.max_picture, MAX_VIDEO_SIZE);
        own.insert("chosenLayout", "speakerOnly".to_string());
        assert_eq!(LegSettings::resolve(&own, &ProfileChain::default()).layout, Layout::SpeakerOnly);
    }
}
