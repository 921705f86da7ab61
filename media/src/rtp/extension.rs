//! RTP header extensions in the one-byte and two-byte forms (RFC 8285,
//! which replaced RFC 5285).

use super::RtpError;

/// The "defined by profile" value that marks the one-byte form.
const ONE_BYTE_PROFILE: u16 = 0xbede;
/// The two-byte form: 0x100 followed by four application bits.
const TWO_BYTE_PROFILE_MASK: u16 = 0xfff0;
const TWO_BYTE_PROFILE: u16 = 0x1000;

/// Which of the RFC 8285 layouts an extension block uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionForm {
    /// IDs 1..=14, 1..=16 bytes each, one header byte per element.
    OneByte,
    /// IDs 1..=255, 0..=255 bytes each, two header bytes per element.
    TwoByte,
}

/// One extension element: the ID negotiated in SDP (`a=extmap`) and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// The local identifier from `a=extmap`.
    pub id: u8,
    /// The element's bytes.
    pub data: &'a [u8],
}

impl<'a> HeaderExtension<'a> {
    /// An element with the given ID and data.
    pub fn new(id: u8, data: &'a [u8]) -> Self {
        Self { id, data }
    }

    fn fits_one_byte(&self) -> bool {
        (1..=14).contains(&self.id) && (1..=16).contains(&self.data.len())
    }
}

/// The extension block of a parsed packet.
///
/// Elements are decoded lazily, because most receivers look up one or two IDs
/// (audio level, video orientation) and ignore the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtensions<'a> {
    profile: u16,
    data: &'a [u8],
}

impl<'a> HeaderExtensions<'a> {
    pub(super) fn new(profile: u16, data: &'a [u8]) -> Self {
        Self { profile, data }
    }

    /// The 16-bit "defined by profile" field.
    pub fn profile(&self) -> u16 {
        self.profile
    }

    /// The RFC 8285 form, or `None` for a profile-specific block we do not read.
    pub fn form(&self) -> Option<ExtensionForm> {
        if self.profile == ONE_BYTE_PROFILE {
            Some(ExtensionForm::OneByte)
        } else if self.profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE {
            Some(ExtensionForm::TwoByte)
        } else {
            None
        }
    }

    /// The raw block after its 4-byte header.
    pub fn raw(&self) -> &'a [u8] {
        self.data
    }

    /// The elements in order. A malformed element ends the iteration, as
    /// RFC 8285 §4.2 asks for the reserved ID 15.
    pub fn iter(&self) -> ExtensionIter<'a> {
        ExtensionIter { form: self.form(), data: self.data }
    }

    /// The data of the first element with this ID.
    pub fn get(&self, id: u8) -> Option<&'a [u8]> {
        self.iter().find(|e| e.id == id).map(|e| e.data)
    }
}

/// Iterator over the elements of a [`HeaderExtensions`] block.
#[derive(Debug, Clone)]
pub struct ExtensionIter<'a> {
    form: Option<ExtensionForm>,
    data: &'a [u8],
}

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = HeaderExtension<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let form = self.form?;
        // Zero bytes between elements are padding in both forms.
        let start = self.data.iter().position(|&b| b != 0)?;
        let rest = &self.data[start..];
        let (id, len, head) = match form {
            ExtensionForm::OneByte => {
                let id = rest[0] >> 4;
                if id == 15 {
                    self.data = &[];
                    return None;
                }
                (id, usize::from(rest[0] & 0x0f) + 1, 1)
            }
            ExtensionForm::TwoByte => {
                let len = usize::from(*rest.get(1)?);
                (rest[0], len, 2)
            }
        };
        let Some(data) = rest.get(head..head + len) else {
            self.data = &[];
            return None;
        };
        self.data = &rest[head + len..];
        Some(HeaderExtension { id, data })
    }
}

/// Appends an extension block (its 4-byte header, the elements, padding to a
/// 32-bit boundary), choosing the one-byte form whenever every element fits.
pub(super) fn write_extensions(elements: &[HeaderExtension<'_>], out: &mut Vec<u8>) -> Result<(), RtpError> {
    let one_byte = elements.iter().all(HeaderExtension::fits_one_byte);
    let start = out.len();
    let profile = if one_byte { ONE_BYTE_PROFILE } else { TWO_BYTE_PROFILE };
    out.extend_from_slice(&profile.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    for e in elements {
        if one_byte {
            out.push(e.id << 4 | (e.data.len() - 1) as u8);
        } else {
            let len = u8::try_from(e.data.len()).ok().filter(|_| e.id != 0);
            let Some(len) = len else {
                return Err(RtpError::BadExtensionElement { id: e.id, len: e.data.len() });
            };
            out.extend_from_slice(&[e.id, len]);
        }
        out.extend_from_slice(e.data);
    }
    let body = out.len() - start - 4;
    let words = body.div_ceil(4);
    out.resize(start + 4 + 4 * words, 0);
    let words = u16::try_from(words).map_err(|_| RtpError::ExtensionTooLong)?;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(elements: &[HeaderExtension<'_>]) -> (u16, Vec<u8>) {
        let mut out = Vec::new();
        write_extensions(elements, &mut out).unwrap();
        let profile = u16::from_be_bytes([out[0], out[1]]);
        let words = usize::from(u16::from_be_bytes([out[2], out[3]]));
        assert_eq!(out.len(), 4 + 4 * words);
        (profile, out[4..].to_vec())
    }

    #[test]
    fn one_byte_form_round_trips_with_padding() {
        let els = [HeaderExtension::new(1, &[0x9e]), HeaderExtension::new(14, &[1; 16])];
        let (profile, data) = block(&els);
        assert_eq!(profile, 0xbede);
        let exts = HeaderExtensions::new(profile, &data);
        assert_eq!(exts.form(), Some(ExtensionForm::OneByte));
        assert_eq!(exts.iter().collect::<Vec<_>>(), els);
    }

    #[test]
    fn two_byte_form_when_an_element_does_not_fit() {
        let big = [7u8; 40];
        let els = [HeaderExtension::new(1, &[]), HeaderExtension::new(200, &big), HeaderExtension::new(2, &[5])];
        let (profile, data) = block(&els);
        assert_eq!(profile, 0x1000);
        let exts = HeaderExtensions::new(profile, &data);
        assert_eq!(exts.form(), Some(ExtensionForm::TwoByte));
        assert_eq!(exts.iter().collect::<Vec<_>>(), els);
        assert_eq!(exts.get(200), Some(&big[..]));
    }

    #[test]
    fn rejects_elements_no_form_can_carry() {
        let big = [0u8; 256];
        let mut out = Vec::new();
        assert!(write_extensions(&[HeaderExtension::new(3, &big)], &mut out).is_err());
        assert!(write_extensions(&[HeaderExtension::new(0, &[1; 20])], &mut out).is_err());
    }

    #[test]
    fn id_15_stops_one_byte_parsing() {
        let data = [0x10, 0xaa, 0xf0, 0x20, 0xbb, 0x00, 0x00, 0x00];
        let exts = HeaderExtensions::new(0xbede, &data);
        let ids: Vec<u8> = exts.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![1]);
    }

    #[test]
    fn truncated_element_ends_iteration() {
        let data = [0x10, 0xaa, 0x23, 0xbb];
        let exts = HeaderExtensions::new(0xbede, &data);
        assert_eq!(exts.iter().count(), 1);
        let data = [0x05, 0x09, 0x01];
        assert_eq!(HeaderExtensions::new(0x1000, &data).iter().count(), 0);
    }

    #[test]
    fn unknown_profile_has_no_elements() {
        let exts = HeaderExtensions::new(0x1234, &[0x10, 0xaa, 0, 0]);
        assert_eq!(exts.form(), None);
        assert_eq!(exts.iter().count(), 0);
        assert_eq!(exts.raw().len(), 4);
    }
}
