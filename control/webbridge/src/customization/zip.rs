//! Just enough of ZIP to read a customization archive: the central
//! directory, and entries stored or deflated. Sans-IO and bounded: every
//! offset and size is checked against the archive before it is used, an
//! entry is inflated to at most the caller's limit, and its CRC is checked.
//! ZIP64, encryption and multi-disk archives are refused. The fuzz target
//! `customization` drives [`entries`] and [`Entry::read`] with arbitrary
//! bytes.

use std::io::Read;

/// Why an archive could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    /// No end-of-central-directory record, or one that points outside.
    #[error("not a ZIP archive")]
    NotZip,
    /// A record that does not fit the archive or its own fields.
    #[error("malformed ZIP record: {0}")]
    Malformed(&'static str),
    /// Something this reader does not do (ZIP64, encryption, a method).
    #[error("unsupported ZIP feature: {0}")]
    Unsupported(&'static str),
    /// An entry larger than the caller allows.
    #[error("entry over the size limit")]
    TooLarge,
    /// The inflated bytes do not match the recorded CRC or size.
    #[error("entry is corrupt")]
    Corrupt,
}

/// The most entries read from one central directory.
pub const MAX_ENTRIES: usize = 4096;

const EOCD: u32 = 0x0605_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
const EOCD_LEN: usize = 22;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;

/// One file of the archive, as its central directory records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its path in the archive (`/`-separated; lossily UTF-8).
    pub name: String,
    method: u16,
    crc: u32,
    compressed: usize,
    /// Its size once inflated, as recorded.
    pub size: usize,
    local_offset: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// The archive's entries, from its central directory.
pub fn entries(archive: &[u8]) -> Result<Vec<Entry>, ZipError> {
    let eocd = find_eocd(archive).ok_or(ZipError::NotZip)?;
    let field16 = |at| u16_at(archive, eocd + at).ok_or(ZipError::NotZip);
    let field32 = |at| u32_at(archive, eocd + at).ok_or(ZipError::NotZip);
    if field16(4)? != 0 || field16(6)? != 0 {
        return Err(ZipError::Unsupported("multi-disk archive"));
    }
    let count = field16(10)?;
    let (size, offset) = (field32(12)?, field32(16)?);
    if count == 0xffff || size == u32::MAX || offset == u32::MAX {
        return Err(ZipError::Unsupported("ZIP64"));
    }
    let start = offset as usize;
    let end = start.checked_add(size as usize).filter(|&e| e <= eocd).ok_or(ZipError::NotZip)?;
    let directory = &archive[start..end];
    let mut out = Vec::new();
    let mut at = 0usize;
    for _ in 0..count {
        if out.len() >= MAX_ENTRIES {
            return Err(ZipError::Malformed("too many entries"));
        }
        let bad = ZipError::Malformed("central directory entry");
        if u32_at(directory, at) != Some(CENTRAL) {
            return Err(bad);
        }
        let flags = u16_at(directory, at + 8).ok_or(bad.clone())?;
        let method = u16_at(directory, at + 10).ok_or(bad.clone())?;
        let crc = u32_at(directory, at + 16).ok_or(bad.clone())?;
        let compressed = u32_at(directory, at + 20).ok_or(bad.clone())?;
        let size = u32_at(directory, at + 24).ok_or(bad.clone())?;
        let name_len = u16_at(directory, at + 28).ok_or(bad.clone())? as usize;
        let extra_len = u16_at(directory, at + 30).ok_or(bad.clone())? as usize;
        let comment_len = u16_at(directory, at + 32).ok_or(bad.clone())? as usize;
        let local = u32_at(directory, at + 42).ok_or(bad.clone())?;
        let name_at = at + CENTRAL_LEN;
        let name = directory.get(name_at..name_at + name_len).ok_or(bad)?;
        if flags & 1 != 0 {
            return Err(ZipError::Unsupported("encrypted entry"));
        }
        if compressed == u32::MAX || size == u32::MAX || local == u32::MAX {
            return Err(ZipError::Unsupported("ZIP64"));
        }
        out.push(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            method,
            crc,
            compressed: compressed as usize,
            size: size as usize,
            local_offset: local as usize,
        });
        at = name_at + name_len + extra_len + comment_len;
    }
    Ok(out)
}

/// The end-of-central-directory record: searched from the end, past a
/// comment of up to 64 KiB.
fn find_eocd(archive: &[u8]) -> Option<usize> {
    let last = archive.len().checked_sub(EOCD_LEN)?;
    let first = last.saturating_sub(u16::MAX as usize);
    (first..=last).rev().find(|&at| u32_at(archive, at) == Some(EOCD))
}

impl Entry {
    /// Whether it is a directory rather than a file.
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }

    /// Its bytes, inflated and checked; refused when its recorded size is
    /// over `limit` or its data says otherwise.
    pub fn read(&self, archive: &[u8], limit: usize) -> Result<Vec<u8>, ZipError> {
        if self.size > limit {
            return Err(ZipError::TooLarge);
        }
        let bad = ZipError::Malformed("local header");
        if u32_at(archive, self.local_offset) != Some(LOCAL) {
            return Err(bad);
        }
        let name_len = u16_at(archive, self.local_offset + 26).ok_or(bad.clone())? as usize;
        let extra_len = u16_at(archive, self.local_offset + 28).ok_or(bad.clone())? as usize;
        let data_at = self.local_offset + LOCAL_LEN + name_len + extra_len;
        let data = archive.get(data_at..data_at.checked_add(self.compressed).ok_or(bad.clone())?).ok_or(bad)?;
        let bytes = match self.method {
            0 => data.to_vec(),
            8 => {
                let mut out = Vec::with_capacity(self.size.min(limit));
                // One byte past the recorded size, so a lying size shows.
                let mut inflate = flate2::read::DeflateDecoder::new(data).take(self.size as u64 + 1);
                inflate.read_to_end(&mut out).map_err(|_| ZipError::Corrupt)?;
                out
            }
            _ => return Err(ZipError::Unsupported("compression method")),
        };
        if bytes.len() != self.size {
            return Err(ZipError::Corrupt);
        }
        let mut crc = flate2::Crc::new();
        crc.update(&bytes);
        if crc.sum() != self.crc {
            return Err(ZipError::Corrupt);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stored (uncompressed) archive of `files`, for tests.
    pub(crate) fn stored(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in files {
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let offset = out.len() as u32;
            let header = |sig: u32, central: bool| {
                let mut h = Vec::new();
                h.extend_from_slice(&sig.to_le_bytes());
                if central {
                    h.extend_from_slice(&20u16.to_le_bytes());
                }
                h.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
                h.extend_from_slice(&crc.sum().to_le_bytes());
                h.extend_from_slice(&(data.len() as u32).to_le_bytes());
                h.extend_from_slice(&(data.len() as u32).to_le_bytes());
                h.extend_from_slice(&(name.len() as u16).to_le_bytes());
                h.extend_from_slice(&0u16.to_le_bytes());
                if central {
                    h.extend_from_slice(&[0; 6]);
                    h.extend_from_slice(&[0; 4]);
                    h.extend_from_slice(&offset.to_le_bytes());
                }
                h.extend_from_slice(name.as_bytes());
                h
            };
            out.extend(header(LOCAL, false));
            out.extend_from_slice(data);
            central.extend(header(CENTRAL, true));
        }
        let at = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&EOCD.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(files.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&at.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_a_stored_archive() {
        let zip = stored(&[("a.txt", b"hello"), ("dir/", b""), ("dir/b.bin", &[0, 1, 2])]);
        let entries = entries(&zip).unwrap();
        assert_eq!(entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["a.txt", "dir/", "dir/b.bin"]);
        assert_eq!(entries[0].read(&zip, 100).unwrap(), b"hello");
        assert!(entries[1].is_dir());
        assert_eq!(entries[2].read(&zip, 100).unwrap(), [0, 1, 2]);
        assert_eq!(entries[0].read(&zip, 4), Err(ZipError::TooLarge));
    }

    /// Made by Python's `zipfile` with ZIP_DEFLATED and a comment.
    #[test]
    fn reads_a_deflated_archive_made_by_another_tool() {
        let zip = include_bytes!("../../testdata/deflated.zip");
        let entries = entries(zip).unwrap();
        let text = entries.iter().find(|e| e.name == "text_strings.json").unwrap();
        let json = text.read(zip, 1 << 16).unwrap();
        assert!(std::str::from_utf8(&json).unwrap().contains("Example Corp"));
    }

    #[test]
    fn refuses_what_it_cannot_trust() {
        assert_eq!(entries(b"not a zip at all, not even close"), Err(ZipError::NotZip));
        assert_eq!(entries(b""), Err(ZipError::NotZip));
        let mut zip = stored(&[("a.txt", b"hello")]);
        // A flipped data byte fails the CRC.
        zip[30 + 5] ^= 1;
        let e = &entries(&zip).unwrap()[0];
        assert_eq!(e.read(&zip, 100), Err(ZipError::Corrupt));
        // A directory that points past the end is not an archive.
        let mut zip = stored(&[("a.txt", b"hello")]);
        let n = zip.len();
        zip[n - 6..n - 2].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(entries(&zip), Err(ZipError::Unsupported("ZIP64")));
        zip[n - 6..n - 2].copy_from_slice(&1_000_000u32.to_le_bytes());
        assert_eq!(entries(&zip), Err(ZipError::NotZip));
    }
}
