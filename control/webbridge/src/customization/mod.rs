//! Web app customization: the sign-in page's background image, logo, icon
//! and brand words, from the customization archive CMS administrators
//! already make (`resourceArchive` on `webBridges` before CMS 3.0, on
//! `webBridgeProfiles` since). `docs/web-customization.md` lists the files.
//!
//! As in CMS, the call bridge retrieves the archive and pushes what it
//! holds to the web bridge over C2W ([`crate::c2w::client`]); the web bridge
//! serves it ([`crate::app`]). Both ends build a [`Customization`] with
//! [`Customization::from_files`], so what a web bridge serves has been
//! checked by the same rules whoever sent it. Sans-IO: bytes in, checked
//! files out.

pub mod zip;

use std::collections::BTreeMap;

/// The largest archive retrieved (it may hold files we do not use).
pub const MAX_ARCHIVE: usize = 8 * 1024 * 1024;

/// One image the sign-in page can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Image {
    /// Behind the sign-in page (`sign_in_background.jpg` or `.png`).
    Background,
    /// Above the page's title (`sign_in_logo.png`).
    Logo,
    /// The browser tab's icon (`sign_in_icon.png`).
    Icon,
}

impl Image {
    /// Every image, in the order the web app asks for them.
    pub const ALL: [Image; 3] = [Image::Background, Image::Logo, Image::Icon];

    /// Its name in the web app's URLs (`/branding/<name>`).
    pub fn slug(self) -> &'static str {
        match self {
            Image::Background => "background",
            Image::Logo => "logo",
            Image::Icon => "icon",
        }
    }

    /// The image named `slug`.
    pub fn from_slug(slug: &str) -> Option<Image> {
        Image::ALL.into_iter().find(|i| i.slug() == slug)
    }

    /// Its largest size in bytes. Together they fit one C2W frame.
    fn limit(self) -> usize {
        match self {
            Image::Background => 768 * 1024,
            Image::Logo => 256 * 1024,
            Image::Icon => 64 * 1024,
        }
    }
}

/// The largest `text_strings.json`.
const MAX_TEXT: usize = 16 * 1024;
/// The longest brand name or tag line, in characters.
const MAX_WORDS: usize = 200;
/// The file holding the brand words.
pub const TEXT_STRINGS: &str = "text_strings.json";

/// What an archive file's name makes it: one of the images (and its type)
/// or the brand words; `None` for a file the web app does not use.
fn role_of(name: &str) -> Option<(Option<Image>, &'static str)> {
    Some(match name {
        "sign_in_background.jpg" | "sign_in_background.jpeg" => (Some(Image::Background), "image/jpeg"),
        "sign_in_background.png" => (Some(Image::Background), "image/png"),
        "sign_in_logo.png" => (Some(Image::Logo), "image/png"),
        "sign_in_icon.png" => (Some(Image::Icon), "image/png"),
        TEXT_STRINGS => (None, "application/json"),
        _ => return None,
    })
}

/// Whether `name` is a file the web app uses (anything else in an archive
/// is ignored).
pub fn is_used(name: &str) -> bool {
    role_of(name).is_some()
}

/// Why an archive or its files cannot be used; each maps to the alarm
/// reason CMS names (`dataFormatInvalid`, `fileSizeLimitExceeded`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomizationError {
    /// The archive could not be read.
    #[error("archive: {0}")]
    Archive(#[from] zip::ZipError),
    /// A file is not what its name says (an image that is not one, text
    /// strings that are not a JSON object of strings).
    #[error("{0} is not in a usable format")]
    Format(String),
    /// A file, or the archive, is over its size limit.
    #[error("{0} is over its size limit")]
    TooLarge(String),
}

impl CustomizationError {
    /// The alarm's `failureReason`.
    pub fn reason(&self) -> &'static str {
        match self {
            CustomizationError::TooLarge(_) | CustomizationError::Archive(zip::ZipError::TooLarge) => {
                "fileSizeLimitExceeded"
            }
            _ => "dataFormatInvalid",
        }
    }
}

/// A checked customization: images with their types, and the brand words.
/// The default is none: the web app's own look.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customization {
    images: BTreeMap<Image, (&'static str, Vec<u8>)>,
    /// Replaces "Confero" as the page's title and heading.
    pub brand_name: Option<String>,
    /// A line under the heading.
    pub brand_tag_line: Option<String>,
    files: Vec<(String, Vec<u8>)>,
}

impl Customization {
    /// The used files of a customization archive: found by their name
    /// anywhere in the archive (an archive made of a folder holds them one
    /// level down), checked, the rest ignored.
    pub fn from_archive(archive: &[u8]) -> Result<Customization, CustomizationError> {
        if archive.len() > MAX_ARCHIVE {
            return Err(CustomizationError::TooLarge("the archive".into()));
        }
        let mut files = Vec::new();
        for entry in zip::entries(archive)? {
            let base = entry.name.rsplit('/').next().unwrap_or("");
            // macOS's Finder adds resource forks under __MACOSX/ with the same names.
            if entry.is_dir() || entry.name.starts_with("__MACOSX/") || !is_used(base) {
                continue;
            }
            if files.iter().any(|(n, _): &(String, Vec<u8>)| n == base) {
                return Err(CustomizationError::Format(format!("{base} (twice in the archive)")));
            }
            let limit = limit_of(base);
            let bytes = entry.read(archive, limit).map_err(|e| match e {
                zip::ZipError::TooLarge => CustomizationError::TooLarge(base.to_string()),
                e => CustomizationError::Archive(e),
            })?;
            files.push((base.to_string(), bytes));
        }
        Customization::from_files(files)
    }

    /// A customization of these files (name, bytes), each checked; a name
    /// the web app does not use is refused (the sender filtered them).
    pub fn from_files(files: Vec<(String, Vec<u8>)>) -> Result<Customization, CustomizationError> {
        let mut c = Customization::default();
        for (name, bytes) in &files {
            let Some((image, content_type)) = role_of(name) else {
                return Err(CustomizationError::Format(format!("{:?} (not a customization file)", clip(name))));
            };
            if bytes.len() > limit_of(name) {
                return Err(CustomizationError::TooLarge(name.clone()));
            }
            match image {
                Some(image) => {
                    if !looks_like(content_type, bytes) {
                        return Err(CustomizationError::Format(name.clone()));
                    }
                    if c.images.insert(image, (content_type, bytes.clone())).is_some() {
                        return Err(CustomizationError::Format(format!("{name} (a second {} image)", image.slug())));
                    }
                }
                None => {
                    let (brand_name, tag_line) =
                        brand_words(bytes).ok_or_else(|| CustomizationError::Format(name.clone()))?;
                    c.brand_name = brand_name;
                    c.brand_tag_line = tag_line;
                }
            }
        }
        c.files = files;
        Ok(c)
    }

    /// The image `image` and its content type, if the archive had it.
    pub fn image(&self, image: Image) -> Option<(&'static str, &[u8])> {
        self.images.get(&image).map(|(t, b)| (*t, b.as_slice()))
    }

    /// The files it was made of, to push on (name, bytes).
    pub fn files(&self) -> &[(String, Vec<u8>)] {
        &self.files
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

fn limit_of(name: &str) -> usize {
    match role_of(name) {
        Some((Some(image), _)) => image.limit(),
        _ => MAX_TEXT,
    }
}

/// Whether `bytes` start as an image of `content_type` does: a file named
/// `.png` that is HTML must not be served, even as an image.
fn looks_like(content_type: &str, bytes: &[u8]) -> bool {
    match content_type {
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => bytes.starts_with(&[0xff, 0xd8, 0xff]),
        _ => false,
    }
}

/// `text_strings.json`'s `brand_name` and `brand_tag_line`: a JSON object
/// whose other keys are ignored (later CMS versions add more); each value
/// a string, trimmed, control characters dropped, at most 200 characters.
fn brand_words(bytes: &[u8]) -> Option<(Option<String>, Option<String>)> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let object = value.as_object()?;
    let word = |key: &str| -> Option<Option<String>> {
        match object.get(key) {
            None | Some(serde_json::Value::Null) => Some(None),
            Some(serde_json::Value::String(s)) => {
                let clean: String = s.chars().filter(|c| !c.is_control()).take(MAX_WORDS).collect();
                let clean = clean.trim().to_string();
                Some((!clean.is_empty()).then_some(clean))
            }
            Some(_) => None,
        }
    };
    Some((word("brand_name")?, word("brand_tag_line")?))
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n rest";

    #[test]
    fn an_archive_gives_its_images_and_words() {
        let c = Customization::from_archive(include_bytes!("../../testdata/deflated.zip")).unwrap();
        assert_eq!(c.brand_name.as_deref(), Some("Example Corp Meetings"));
        assert_eq!(c.brand_tag_line.as_deref(), Some("Meet from anywhere"));
        assert_eq!(c.image(Image::Logo).map(|(t, _)| t), Some("image/png"));
        assert_eq!(c.image(Image::Background).map(|(t, _)| t), Some("image/png"));
        assert_eq!(c.image(Image::Icon), None);
        // readme.txt was left out; what is pushed on reads back the same.
        assert_eq!(c.files().len(), 3);
        assert_eq!(Customization::from_files(c.files().to_vec()).unwrap(), c);
    }

    #[test]
    fn files_one_folder_down_are_found_and_others_ignored() {
        let zip = zip::tests::stored(&[
            ("brand/", b""),
            ("brand/sign_in_logo.png", PNG),
            ("__MACOSX/brand/._sign_in_logo.png", b"junk"),
            ("brand/notes.txt", b"x"),
        ]);
        let c = Customization::from_archive(&zip).unwrap();
        assert_eq!(c.image(Image::Logo), Some(("image/png", PNG)));
        assert_eq!(c.brand_name, None);
    }

    #[test]
    fn what_cannot_be_used_is_refused_with_cms_reasons() {
        let html = zip::tests::stored(&[("sign_in_logo.png", b"<html><script>")]);
        let e = Customization::from_archive(&html).unwrap_err();
        assert_eq!(e.reason(), "dataFormatInvalid", "{e}");
        let big = vec![0xffu8; 70 * 1024];
        let icon = [PNG, &big].concat();
        let e = Customization::from_archive(&zip::tests::stored(&[("sign_in_icon.png", &icon)])).unwrap_err();
        assert_eq!(e.reason(), "fileSizeLimitExceeded", "{e}");
        let words = zip::tests::stored(&[(TEXT_STRINGS, br#"{"brand_name": 7}"#)]);
        assert_eq!(Customization::from_archive(&words).unwrap_err().reason(), "dataFormatInvalid");
        let twice = zip::tests::stored(&[("a/sign_in_logo.png", PNG), ("b/sign_in_logo.png", PNG)]);
        assert!(Customization::from_archive(&twice).is_err());
        let both = zip::tests::stored(&[("sign_in_background.png", PNG), ("sign_in_background.jpg", b"\xff\xd8\xff")]);
        assert!(Customization::from_archive(&both).is_err());
        assert!(Customization::from_files(vec![("../etc/passwd".into(), vec![])]).is_err());
        assert_eq!(Customization::from_archive(b"PK junk").unwrap_err().reason(), "dataFormatInvalid");
    }

    #[test]
    fn brand_words_are_cleaned() {
        let words = br#"{"brand_name": "  Acme\u0007 Video ", "brand_tag_line": "", "other": [1]}"#;
        let c = Customization::from_files(vec![(TEXT_STRINGS.into(), words.to_vec())]).unwrap();
        assert_eq!(c.brand_name.as_deref(), Some("Acme Video"));
        assert_eq!(c.brand_tag_line, None);
    }
}
