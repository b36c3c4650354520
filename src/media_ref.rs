//! [`MediaRef`]: the 16-byte handle that travels through the gateway.
//!
//! Invariants: a ref is a UUID (random v4 when minted by the store, with
//! 120 random bits: the top two pick the minting thread's shard group); its only
//! text form is `media://` followed by the lower-case, hyphenated UUID, and
//! parsing accepts exactly that form, so `parse(display(r)) == r` and no two
//! spellings name the same ref.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::ParseRefError;

/// The scheme every ref's text form starts with.
pub const MEDIA_REF_PREFIX: &str = "media://";

/// Length of the text form: the prefix and a hyphenated UUID.
const TEXT_LEN: usize = MEDIA_REF_PREFIX.len() + 36;

/// A handle to one registration of a media file.
///
/// Minted by [`MediaStore::store`](crate::MediaStore::store); `Copy`, 16 bytes,
/// hashed and compared as the 128-bit id it is. Its text form is
/// `media://<uuid>` with a lower-case hyphenated UUID.
///
/// ```
/// use mediastore::MediaRef;
///
/// let r: MediaRef = "media://67e55044-10b1-426f-9247-bb680e5fe0c8".parse()?;
/// assert_eq!(r.to_string(), "media://67e55044-10b1-426f-9247-bb680e5fe0c8");
/// assert_eq!(std::mem::size_of::<MediaRef>(), 16);
/// assert!("MEDIA://67e55044-10b1-426f-9247-bb680e5fe0c8".parse::<MediaRef>().is_err());
/// # Ok::<(), mediastore::ParseRefError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MediaRef(Uuid);

impl MediaRef {
    /// Wraps a UUID. Mostly useful for tests; the store mints its own.
    ///
    /// ```
    /// use mediastore::MediaRef;
    /// use uuid::Uuid;
    ///
    /// let r = MediaRef::from_uuid(Uuid::nil());
    /// assert_eq!(r.to_string(), "media://00000000-0000-0000-0000-000000000000");
    /// ```
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID inside.
    ///
    /// ```
    /// use mediastore::MediaRef;
    /// use uuid::Uuid;
    ///
    /// let id = Uuid::from_u128(7);
    /// assert_eq!(MediaRef::from_uuid(id).uuid(), id);
    /// ```
    pub const fn uuid(&self) -> Uuid {
        self.0
    }

    /// The id as one 128-bit number.
    pub(crate) fn as_u128(&self) -> u128 {
        self.0.as_u128()
    }
}

impl std::hash::Hash for MediaRef {
    /// Hashes the id as one `u128` (the store's ref map folds it).
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.as_u128());
    }
}

impl fmt::Display for MediaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        f.write_str(MEDIA_REF_PREFIX)?;
        f.write_str(self.0.hyphenated().encode_lower(&mut buf))
    }
}

impl fmt::Debug for MediaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MediaRef {
    type Err = ParseRefError;

    /// Parses exactly `media://` + a lower-case hyphenated UUID; anything
    /// else (other case, braces, URN form, whitespace, extra bytes) is an
    /// error that quotes the first 64 bytes of the input.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some(rest) = s.strip_prefix(MEDIA_REF_PREFIX) else {
            return Err(ParseRefError::MissingPrefix {
                input: ParseRefError::excerpt(s),
            });
        };
        if s.len() != TEXT_LEN || !is_lower_hyphenated(rest.as_bytes()) {
            return Err(ParseRefError::InvalidUuid {
                input: ParseRefError::excerpt(s),
            });
        }
        Uuid::try_parse(rest)
            .map(MediaRef)
            .map_err(|_| ParseRefError::InvalidUuid {
                input: ParseRefError::excerpt(s),
            })
    }
}

/// `8-4-4-4-12` lower-case hex digits.
fn is_lower_hyphenated(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_spellings() {
        let r = MediaRef::from_uuid(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef));
        let s = r.to_string();
        assert_eq!(s.parse::<MediaRef>().unwrap(), r);
        assert!(s.to_uppercase().parse::<MediaRef>().is_err());
        assert!(format!(" {s}").parse::<MediaRef>().is_err());
        assert!(format!("{s} ").parse::<MediaRef>().is_err());
        assert!("media://".parse::<MediaRef>().is_err());
        assert!("".parse::<MediaRef>().is_err());
        assert!("media://0123456789abcdef0123456789abcdef"
            .parse::<MediaRef>()
            .is_err());
    }
}
