//! [`ObjectRecord`]: what a backend keeps about one saved object, and its
//! text form (the filesystem sidecar and the object-store manifest).
//!
//! Invariants:
//!
//! * An object's key is `{scope_hash}/{uuid}{ext}`: the scope hash is the
//!   first 128 bits of SHA-256 of the scope (32 lower-case hex digits), so
//!   two scopes share a folder or prefix only by a hash collision (about
//!   2^-64 at four billion scopes; goclaw's 48-bit hash reaches 0.2 % at one
//!   million). The extension is `""` or `.` followed by 1–16 ASCII
//!   alphanumerics, so a key never holds a `/`, `..` or a control character.
//! * The text form is one `name=value` line per field with `%`, CR and LF
//!   percent-escaped, so any scope or file name round-trips; unknown names
//!   are ignored (newer writers may add fields), missing required ones are
//!   an error.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::{MediaMeta, MediaRef};

/// One saved object: its id, scope, extension, store time and metadata.
///
/// ```
/// use mediastore::backend::ObjectRecord;
/// use mediastore::{MediaMeta, MediaRef};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let rec = ObjectRecord {
///     id: MediaRef::from_uuid(uuid::Uuid::from_u128(1)),
///     scope: "telegram:1:99".into(),
///     ext: ".jpg".into(),
///     stored_at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
///     size: 3,
///     meta: MediaMeta { content_type: "image/jpeg".into(), ..MediaMeta::default() },
/// };
/// assert_eq!(ObjectRecord::decode(&rec.encode())?, rec);
/// assert!(rec.key().ends_with("/00000000-0000-0000-0000-000000000001.jpg"));
/// # Ok::<(), mediastore::backend::BackendError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRecord {
    /// The ref, which is also the object's id.
    pub id: MediaRef,
    /// The scope it was saved under.
    pub scope: String,
    /// `""` or `.` plus 1–16 ASCII alphanumerics (see [`extension_for`](super::extension_for)).
    pub ext: String,
    /// Wall-clock time of the save, kept to the millisecond; TTL counts from it.
    pub stored_at: SystemTime,
    /// Size of the payload in bytes.
    pub size: u64,
    /// The metadata given at save time (its cleanup policy is always
    /// `DeleteOnCleanup`: the store owns the bytes).
    pub meta: MediaMeta,
}

impl ObjectRecord {
    /// The folder or prefix of the object's scope: 32 hex digits.
    ///
    /// ```
    /// # use mediastore::backend::{scope_hash, ObjectRecord};
    /// # let rec = ObjectRecord { id: mediastore::MediaRef::from_uuid(uuid::Uuid::nil()), scope: "s".into(),
    /// #     ext: ".png".into(), stored_at: std::time::UNIX_EPOCH, size: 0, meta: Default::default() };
    /// assert_eq!(rec.scope_hash(), scope_hash("s"));
    /// assert_eq!(rec.file_name(), "00000000-0000-0000-0000-000000000000.png");
    /// assert_eq!(rec.key(), format!("{}/{}", rec.scope_hash(), rec.file_name()));
    /// ```
    pub fn scope_hash(&self) -> String {
        scope_hash(&self.scope)
    }

    /// `{uuid}{ext}`.
    pub fn file_name(&self) -> String {
        format!("{}{}", self.id.uuid().hyphenated(), self.ext)
    }

    /// `{scope_hash}/{uuid}{ext}`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.scope_hash(), self.file_name())
    }

    /// The text form (see the module doc).
    pub fn encode(&self) -> String {
        let ms = self
            .stored_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let mut out = String::with_capacity(160);
        let mut field = |name: &str, value: &str| {
            let _ = writeln!(out, "{name}={}", escape(value));
        };
        field("v", "1");
        field("id", &self.id.uuid().hyphenated().to_string());
        field("key", &self.key());
        field("scope", &self.scope);
        field("ext", &self.ext);
        field("stored_at_ms", &ms.to_string());
        field("size", &self.size.to_string());
        field("filename", &self.meta.filename);
        field("content_type", &self.meta.content_type);
        field("source", &self.meta.source);
        out
    }

    /// Parses the text form.
    ///
    /// # Errors
    /// [`BackendError::Corrupt`](super::BackendError::Corrupt) for a missing
    /// or malformed field.
    pub fn decode(text: &str) -> Result<Self, super::BackendError> {
        let corrupt = |reason: String| super::BackendError::Corrupt {
            key: String::new(),
            reason,
        };
        let (mut id, mut scope, mut ext, mut at, mut size) = (None, None, None, None, 0u64);
        let mut meta = MediaMeta::default();
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let value = unescape(value).ok_or_else(|| corrupt(format!("bad escape in {name}")))?;
            match name {
                "id" => {
                    id = Some(
                        uuid::Uuid::parse_str(&value)
                            .map_err(|_| corrupt(format!("bad id {value:?}")))?,
                    )
                }
                "scope" => scope = Some(value),
                "ext" => ext = Some(value),
                "stored_at_ms" => {
                    at = Some(
                        value
                            .parse::<u64>()
                            .map_err(|_| corrupt(format!("bad stored_at_ms {value:?}")))?,
                    )
                }
                "size" => size = value.parse().unwrap_or(0),
                "filename" => meta.filename = value,
                "content_type" => meta.content_type = value,
                "source" => meta.source = value,
                _ => {}
            }
        }
        let ext = ext.ok_or_else(|| corrupt("no ext".into()))?;
        if !valid_ext(&ext) {
            return Err(corrupt(format!("bad ext {ext:?}")));
        }
        Ok(Self {
            id: MediaRef::from_uuid(id.ok_or_else(|| corrupt("no id".into()))?),
            scope: scope.ok_or_else(|| corrupt("no scope".into()))?,
            ext,
            stored_at: UNIX_EPOCH
                + Duration::from_millis(at.ok_or_else(|| corrupt("no stored_at_ms".into()))?),
            size,
            meta,
        })
    }
}

/// The first 128 bits of SHA-256 of `scope`, as 32 lower-case hex digits.
///
/// ```
/// use mediastore::backend::scope_hash;
/// assert_eq!(scope_hash("a").len(), 32);
/// assert_ne!(scope_hash("a"), scope_hash("b"));
/// ```
pub fn scope_hash(scope: &str) -> String {
    let digest = Sha256::digest(scope.as_bytes());
    let mut out = String::with_capacity(32);
    for b in &digest[..16] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Whether `ext` is `""` or `.` plus 1–16 ASCII alphanumerics.
pub(crate) fn valid_ext(ext: &str) -> bool {
    ext.is_empty()
        || (ext.len() >= 2
            && ext.len() <= 17
            && ext.starts_with('.')
            && ext[1..].bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(v: &str) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "25" => '%',
            "0A" => '\n',
            "0D" => '\r',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_round_trips_and_bad_records_are_refused() {
        let rec = ObjectRecord {
            id: MediaRef::from_uuid(uuid::Uuid::from_u128(42)),
            scope: "a=b\nc%0A\r%".into(),
            ext: String::new(),
            stored_at: UNIX_EPOCH + Duration::from_millis(5),
            size: 0,
            meta: MediaMeta {
                filename: "x\ny=z".into(),
                ..MediaMeta::default()
            },
        };
        assert_eq!(ObjectRecord::decode(&rec.encode()).unwrap(), rec);
        let bad_ext = rec.encode().replace("ext=\n", "ext=/../x\n");
        assert!(ObjectRecord::decode(&bad_ext).is_err());
        assert!(ObjectRecord::decode("id=zzz\n").is_err());
        assert!(ObjectRecord::decode("").is_err());
        assert_eq!(unescape("%zz"), None);
    }
}
