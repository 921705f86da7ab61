//! What each configuration object is made of: its paths, its XML element
//! names, and its fields with their types. The API and the store are generic
//! over these descriptions, so adding a CMS object is adding a table entry in
//! [`kinds`], and every object gets the same wire rules (case-insensitive
//! names, lenient forms, `total`, paging, `failureDetails`) for free.

mod kinds;
mod validate;

use uuid::Uuid;

use crate::Object;

pub use kinds::{spec, LAYOUTS, SPECS};
pub use validate::{
    check_value, expand_index_mapping, is_xml_char, new_secret, validate_changes, Change, Changes, Invalid,
};

/// Every stored object type. Live objects (calls, call legs, participants)
/// are not here: they belong to the call bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A call bridge of the cluster (`/callBridges`).
    CallBridge,
    /// Call settings shared by spaces (`/callProfiles`).
    CallProfile,
    /// Call leg settings, inherited field by field (`/callLegProfiles`).
    CallLegProfile,
    /// A space: a meeting room people dial into (`/coSpaces`).
    CoSpace,
    /// Another way into a space, with its own URI, call ID and passcode.
    AccessMethod,
    /// A member of a space.
    CoSpaceUser,
    /// A template spaces are made from.
    CoSpaceTemplate,
    /// An access method made with every space from a template.
    AccessMethodTemplate,
    /// The parameters of a bulk set of generated spaces.
    BulkParameterSet,
    /// One run making a bulk set's spaces.
    BulkSync,
    /// Which dialled domains resolve to spaces.
    InboundDialPlanRule,
    /// Where dial-outs to a domain go.
    OutboundDialPlanRule,
    /// Calls forwarded rather than answered.
    ForwardingDialPlanRule,
    /// A rewrite (or refusal) of a dialled string.
    DialTransform,
    /// A web bridge this call bridge serves.
    WebBridge,
    /// An HTTP receiver of call detail records.
    CdrReceiver,
    /// A tenant: spaces, users and profiles kept apart.
    Tenant,
    /// A user (imported from LDAP).
    User,
    /// The system-wide profiles (`/system/profiles`).
    SystemProfiles,
    /// The XMPP server this call bridge attaches to.
    XmppConfiguration,
    /// This call bridge's place in a cluster.
    ClusterConfiguration,
    /// What a web bridge's web app allows (`/webBridgeProfiles`), assigned
    /// to web bridges, tenants and `system/profiles`.
    WebBridgeProfile,
    /// The DTMF sequences participants control a call with
    /// (`/dtmfProfiles`), assigned to call leg profiles, tenants and
    /// `system/profiles`.
    DtmfProfile,
    /// A number callers dial to type a meeting ID (`/ivrs`).
    Ivr,
    /// Where an IVR's prompts come from (`/ivrBrandingProfiles`).
    IvrBrandingProfile,
    /// A post on a space's message board (`/coSpaces/<id>/messages`).
    CoSpaceMessage,
    /// Where invitation text and call branding come from
    /// (`/callBrandingProfiles`).
    CallBrandingProfile,
    /// SIP interoperability switches (`/compatibilityProfiles`).
    CompatibilityProfile,
    /// A group of tenants (`/tenantGroups`).
    TenantGroup,
    /// A recorder the call bridge may use (`/recorders`).
    Recorder,
    /// A streamer the call bridge may use (`/streamers`).
    Streamer,
    /// A TURN server for clients' media (`/turnServers`).
    TurnServer,
    /// What users may do (`/userProfiles`).
    UserProfile,
    /// The shortest passcode a space or access method may have
    /// (`/dialInSecurityProfiles`, CMS 3.0).
    DialInSecurityProfile,
    /// A space template assigned to a user
    /// (`/users/<id>/usercoSpaceTemplates`): what the user may schedule
    /// temporary spaces from.
    UserCoSpaceTemplate,
    /// A custom pane layout (`/layoutTemplates`, CMS 2.8): a name here, the
    /// JSON template itself at `/layoutTemplates/<id>/template`.
    LayoutTemplate,
    /// A directory users are imported from (`/ldapServers`).
    LdapServer,
    /// How a directory entry becomes a user and a personal space
    /// (`/ldapMappings`): `$attribute$` templates.
    LdapMapping,
    /// Which entries of which server are imported with which mapping
    /// (`/ldapSources`).
    LdapSource,
    /// One run importing the sources' users (`/ldapSyncs`).
    LdapSync,
    /// A space template given to every user an LDAP source imports
    /// (`/ldapUserCoSpaceTemplateSources`).
    LdapUserCoSpaceTemplateSource,
    /// Where the web app searches an external directory for people
    /// (`/directorySearchLocations`): an LDAP server, base DN, filter and
    /// the attributes shown.
    DirectorySearchLocation,
}

impl Kind {
    /// The stable name used in the database (never changes once written).
    pub fn db_name(self) -> &'static str {
        spec(self).element
    }

    /// The kind stored under `name` in the database.
    pub fn from_db_name(name: &str) -> Option<Kind> {
        SPECS.iter().find(|s| s.element == name).map(|s| s.kind)
    }
}

/// The shape of a field's value, which decides how it is validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// Free text (names, descriptions).
    Text,
    /// `true` / `false`.
    Bool,
    /// An integer within bounds.
    Int(i64, i64),
    /// One of a fixed set of words; matched case-insensitively, stored as listed.
    Enum(&'static [&'static str]),
    /// The id of another object, which must exist.
    Ref(Kind),
    /// A URI user part: stored lower-case and unique across spaces and access
    /// methods; the reason names the conflict (`duplicateCoSpaceUri`, ...).
    Uri(&'static str),
    /// A numeric call ID, unique across spaces and access methods.
    CallId(&'static str),
    /// Digits only; never logged.
    Passcode,
    /// A random base64url token the server makes; a client may set its own, and
    /// `regenerateSecret=true` replaces it. Never logged.
    Secret,
    /// A URI generator for an access method template: exactly one `$`.
    UriGenerator,
    /// A bulk mapping with at most one `$index$` (`\$` escapes a dollar).
    IndexMapping,
    /// A password or shared secret the client sets; stored, never logged or shown in lists.
    Password,
    /// A value the server keeps itself; a client cannot set it.
    ReadOnly,
    /// Text set on POST that PUT cannot change (a member's JID).
    FixedText,
    /// A SIP domain or domain pattern (`*.example.com`), stored lower-case.
    Domain,
    /// A JID, stored lower-case and unique among objects of its kind.
    Jid(&'static str),
    /// Text unique among objects of its kind (a call bridge's name).
    Unique(&'static str),
    /// An `http://` or `https://` URL.
    Url,
    /// A DTMF sequence to send (`dtmfSequence`): keys 0-9 * # A-D and `,`
    /// pauses, at most 128. Often a PIN, so never logged.
    Dtmf,
    /// A key sequence a participant presses for an action (`dtmfProfiles`):
    /// keys 0-9 * # A-D, at most 32. Not secret.
    DtmfKeys,
}

/// One field of an object.
#[derive(Debug)]
pub struct Field {
    /// The canonical camelCase name used on the wire.
    pub name: &'static str,
    /// How values are checked.
    pub ty: Ty,
    /// Shown on each item of a list GET (the single GET shows every set field).
    pub summary: bool,
    /// Must be given on POST.
    pub required: bool,
}

/// Namespaces in which values must be unique across object types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClaimSpace {
    /// URI user parts of spaces (uri, secondaryUri) and access methods.
    Uri,
    /// Numeric call IDs of spaces and access methods.
    CallId,
    /// Secrets of spaces and access methods (a guest link names exactly one).
    Secret,
    /// User JIDs.
    Jid,
    /// Call bridge names.
    Name,
}

impl ClaimSpace {
    /// The stable name of the namespace in a database's claims table (never
    /// changes once written: the uniqueness constraint is keyed by it).
    pub fn db_name(self) -> &'static str {
        match self {
            ClaimSpace::Uri => "uri",
            ClaimSpace::CallId => "callId",
            ClaimSpace::Secret => "secret",
            ClaimSpace::Jid => "jid",
            ClaimSpace::Name => "name",
        }
    }
}

impl Field {
    /// The uniqueness namespace this field's values live in, if any.
    pub fn claim_space(&self) -> Option<(ClaimSpace, &'static str)> {
        match self.ty {
            Ty::Uri(reason) => Some((ClaimSpace::Uri, reason)),
            Ty::CallId(reason) => Some((ClaimSpace::CallId, reason)),
            Ty::Secret => Some((ClaimSpace::Secret, "duplicateCoSpaceSecret")),
            Ty::Jid(reason) => Some((ClaimSpace::Jid, reason)),
            Ty::Unique(reason) => Some((ClaimSpace::Name, reason)),
            _ => None,
        }
    }

    /// The family that may share this field's claimed value: a space and
    /// its access methods may use one URI or call ID among themselves (CMS
    /// tells them apart by passcode, `duplicateCoSpaceUriPasscode`), so
    /// their family is the space; anything else is its own family.
    pub fn claim_family(&self, owner: &Object) -> Uuid {
        match (self.claim_space(), owner.kind) {
            (Some((ClaimSpace::Uri | ClaimSpace::CallId, _)), Kind::AccessMethod) => owner.parent.unwrap_or(owner.id),
            _ => owner.id,
        }
    }

    /// True for values that must never appear in a log.
    pub fn is_secret(&self) -> bool {
        matches!(self.ty, Ty::Passcode | Ty::Secret | Ty::Password | Ty::Dtmf)
    }
}

/// How an object type appears in the API.
#[derive(Debug)]
pub struct KindSpec {
    /// Which kind this describes.
    pub kind: Kind,
    /// The path under `/api/v1/` (or under the parent object's path), canonical camelCase.
    pub path: &'static str,
    /// The list element (`coSpaces`).
    pub list_element: &'static str,
    /// The item element (`coSpace`).
    pub element: &'static str,
    /// The object this one lives under (access methods under a space).
    pub parent: Option<Kind>,
    /// The `failureDetails` reason when an id does not exist.
    pub missing: &'static str,
    /// The fields, in the order they are written out.
    pub fields: &'static [Field],
    /// Fields searched by `filter=` (case-insensitive substring).
    pub filter_fields: &'static [&'static str],
    /// One object with no id (`system/profiles`).
    pub singleton: bool,
    /// Clients may POST and DELETE (PUT is allowed on every stored kind).
    pub creatable: bool,
}

impl KindSpec {
    /// The field named `name`, case-insensitively.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// True when this kind has a server-made secret.
    pub fn has_secret(&self) -> bool {
        self.fields.iter().any(|f| f.ty == Ty::Secret)
    }
}
