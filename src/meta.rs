//! [`MediaMeta`] and [`CleanupPolicy`]: what the gateway knows about a file.
//!
//! Invariant: metadata is stored by value with its ref and handed back
//! unchanged by every lease of that ref.
//!
//! A ref keeps its metadata as a [`PackedMeta`]: the three strings back to
//! back in one allocation, and where the first two end as two 16-bit
//! numbers (22 bytes in the entry with the policy and the content type tag,
//! instead of three `String`s' 72, one heap block instead of three). A
//! content type from a table of everyday ones ([`KNOWN_TYPES`]) is kept as
//! a one-byte index and not copied into the text. Leases lend it out as a
//! [`MediaMetaView`].

/// What may happen to the file when its last ref goes away.
///
/// ```
/// use mediastore::CleanupPolicy;
/// assert_eq!(CleanupPolicy::default(), CleanupPolicy::DeleteOnCleanup);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CleanupPolicy {
    /// The store owns the file: it is deleted once the last ref to its path
    /// is released or expired and no lease is alive. Use it for downloads and
    /// generated temp files.
    #[default]
    DeleteOnCleanup,
    /// The store only forgets the ref; the file stays. Use it for files that
    /// belong to somebody else (workspace files, user uploads kept elsewhere).
    /// One such ref protects the path for as long as any ref to it lives.
    ForgetOnly,
}

/// Metadata registered with a file and returned by every lease.
///
/// ```
/// use mediastore::{CleanupPolicy, MediaMeta};
///
/// let meta = MediaMeta {
///     filename: "photo.jpg".into(),
///     content_type: "image/jpeg".into(),
///     source: "telegram".into(),
///     ..MediaMeta::default()
/// };
/// assert_eq!(meta.cleanup_policy, CleanupPolicy::DeleteOnCleanup);
/// assert_eq!(MediaMeta::forget_only().cleanup_policy, CleanupPolicy::ForgetOnly);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct MediaMeta {
    /// The file's display name (for uploads), e.g. `photo.jpg`.
    pub filename: String,
    /// Its MIME type, e.g. `image/jpeg`. About forty everyday types
    /// (`image/jpeg`, `image/png`, `audio/ogg`, `video/mp4`,
    /// `application/pdf`, `application/octet-stream`, the Office formats...)
    /// cost a stored ref one byte instead of their text; the exact string
    /// comes back either way.
    pub content_type: String,
    /// Where it came from, free text: `telegram`, `tool:send_file`...
    pub source: String,
    /// What happens to the file when its refs are gone.
    pub cleanup_policy: CleanupPolicy,
}

impl MediaMeta {
    /// Empty metadata with [`CleanupPolicy::ForgetOnly`].
    ///
    /// ```
    /// # use mediastore::{CleanupPolicy, MediaMeta};
    /// assert_eq!(MediaMeta::forget_only().cleanup_policy, CleanupPolicy::ForgetOnly);
    /// ```
    pub fn forget_only() -> Self {
        Self {
            cleanup_policy: CleanupPolicy::ForgetOnly,
            ..Self::default()
        }
    }
}

/// A lease's metadata, borrowed from the ref. Its fields read like
/// [`MediaMeta`]'s; [`MediaMetaView::to_meta`] makes an owned copy.
///
/// ```
/// # use mediastore::{MediaMeta, MediaStore};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("a.jpg");
/// # std::fs::write(&path, b"x")?;
/// let store = MediaStore::builder().managed_root(dir.path()).build()?;
/// let meta = MediaMeta { filename: "a.jpg".into(), source: "telegram".into(), ..MediaMeta::default() };
/// let r = store.store(&path, meta.clone(), "s")?;
/// let lease = store.resolve(&r)?;
/// assert_eq!(lease.meta().filename, "a.jpg");
/// assert_eq!(lease.meta(), meta);
/// assert_eq!(lease.meta().to_meta(), meta);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MediaMetaView<'a> {
    /// The file's display name.
    pub filename: &'a str,
    /// Its MIME type.
    pub content_type: &'a str,
    /// Where it came from.
    pub source: &'a str,
    /// What happens to the file when its refs are gone.
    pub cleanup_policy: CleanupPolicy,
}

impl MediaMetaView<'_> {
    /// An owned copy.
    ///
    /// ```
    /// # use mediastore::{MediaMeta, MediaStore};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("a.jpg");
    /// # std::fs::write(&path, b"x")?;
    /// let store = MediaStore::builder().managed_root(dir.path()).build()?;
    /// let r = store.store(&path, MediaMeta { filename: "a.jpg".into(), ..MediaMeta::default() }, "s")?;
    /// let owned: MediaMeta = store.resolve(&r)?.meta().to_meta();
    /// assert_eq!(owned.filename, "a.jpg");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn to_meta(&self) -> MediaMeta {
        MediaMeta {
            filename: self.filename.to_owned(),
            content_type: self.content_type.to_owned(),
            source: self.source.to_owned(),
            cleanup_policy: self.cleanup_policy,
        }
    }
}

impl PartialEq<MediaMeta> for MediaMetaView<'_> {
    fn eq(&self, m: &MediaMeta) -> bool {
        self.filename == m.filename
            && self.content_type == m.content_type
            && self.source == m.source
            && self.cleanup_policy == m.cleanup_policy
    }
}

impl PartialEq<MediaMetaView<'_>> for MediaMeta {
    fn eq(&self, v: &MediaMetaView<'_>) -> bool {
        v == self
    }
}

impl From<MediaMetaView<'_>> for MediaMeta {
    fn from(v: MediaMetaView<'_>) -> Self {
        v.to_meta()
    }
}

/// Metadata text as a ref keeps it: see the module doc. The policy, the
/// content type's index in [`KNOWN_TYPES`] and the two part ends
/// ([`MetaTags`]) sit in the entry next to its other small fields, where
/// they cost no padding; the text is one pointer and length.
pub(crate) struct PackedMeta {
    /// filename, content type (unless it is a known one) and source back to
    /// back; for parts too long for 16-bit ends, prefixed with both ends as
    /// 20 decimal digits each (see [`MetaTags::LONG`]).
    text: Box<str>,
}

/// Declares [`KNOWN_TYPES`] and [`known_type`] from one list, so the two
/// cannot drift apart. `known_type` is a chain of comparisons with string
/// literals, which the compiler turns into a switch on the length and
/// inline word compares: a few nanoseconds for any input, where a loop
/// over the table calling `memcmp` took up to 28 ns (measured on this
/// machine with a standalone 20 M-call loop).
macro_rules! known_types {
    ($($ty:literal),+ $(,)?) => {
        /// Content types that chat platforms and gateways use every day,
        /// kept by a ref as a one-byte index into this table instead of as
        /// text (a ref's metadata view hands out the table's string, which
        /// is byte for byte what was stored). Matching is exact:
        /// `Image/JPEG` is kept as text. At most 254 entries (index 0
        /// means "in the text").
        const KNOWN_TYPES: &[&str] = &[$($ty),+];
        // Index 0 is "not in the table", so at most 254 types fit a byte.
        const _: () = assert!(KNOWN_TYPES.len() < 255);

        /// The index a content type is kept under: 1 + its place in
        /// [`KNOWN_TYPES`], or 0 for a type kept as text.
        fn known_type(content_type: &str) -> u8 {
            let mut index = 0u8;
            $(
                index += 1;
                if content_type == $ty {
                    return index;
                }
            )+
            let _ = index;
            0
        }
    };
}

known_types!(
    "application/octet-stream",
    "application/pdf",
    "application/json",
    "application/zip",
    "application/gzip",
    "application/x-tar",
    "application/x-7z-compressed",
    "application/vnd.rar",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/x-tgsticker",
    "text/plain",
    "text/markdown",
    "text/csv",
    "text/html",
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/bmp",
    "image/tiff",
    "image/svg+xml",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/wav",
    "audio/x-wav",
    "audio/webm",
    "audio/flac",
    "audio/opus",
    "video/mp4",
    "video/webm",
    "video/quicktime",
    "video/x-matroska",
);

/// The small part of a ref's metadata, stored in the entry: the cleanup
/// policy, the known content type (0: in the text) and where the filename
/// and the content type end in a [`PackedMeta`]'s text.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct MetaTags {
    policy: CleanupPolicy,
    known: u8,
    ends: [u16; 2],
}

impl MetaTags {
    /// The ends did not fit in 16 bits (a filename and content type of more
    /// than 64 KiB together: never from a chat platform, kept so that no
    /// input makes `store` fail or panic). The text then starts with both
    /// ends in decimal; that prefix is read only by such a ref's views.
    const LONG: [u16; 2] = [u16::MAX; 2];
    /// Length of each decimal end in a long text's prefix.
    const DIGITS: usize = 20;
}

impl PackedMeta {
    /// Packs `meta`: one allocation (none when the filename, the source and
    /// any unknown content type are all empty).
    pub(crate) fn new(meta: MediaMeta) -> (Self, MetaTags) {
        let MediaMeta {
            filename,
            content_type,
            source,
            cleanup_policy: policy,
        } = meta;
        let known = known_type(&content_type);
        let content_type = if known == 0 { &*content_type } else { "" };
        let a = filename.len();
        let b = a + content_type.len();
        match (u16::try_from(a), u16::try_from(b)) {
            (Ok(ea), Ok(eb)) if eb < u16::MAX => {
                // A fresh exact-size buffer: allocating it and freeing the
                // filename's costs less than `realloc`, which takes the
                // allocator's arena lock (measured with the churn loop).
                let mut all = String::with_capacity(b + source.len());
                all.push_str(&filename);
                all.push_str(content_type);
                all.push_str(&source);
                let text = all.into_boxed_str();
                let ends = [ea, eb];
                (
                    Self { text },
                    MetaTags {
                        policy,
                        known,
                        ends,
                    },
                )
            }
            _ => {
                let text = format!("{a:020}{b:020}{filename}{content_type}{source}");
                let text = text.into_boxed_str();
                let ends = MetaTags::LONG;
                (
                    Self { text },
                    MetaTags {
                        policy,
                        known,
                        ends,
                    },
                )
            }
        }
    }

    /// The view a lease hands out.
    #[inline]
    pub(crate) fn view(&self, tags: MetaTags) -> MediaMetaView<'_> {
        let (all, a, b) = if tags.ends == MetaTags::LONG {
            let d = MetaTags::DIGITS;
            let end = |r: std::ops::Range<usize>| {
                self.text
                    .get(r)
                    .and_then(|t| t.parse::<usize>().ok())
                    .unwrap_or(0)
            };
            let (a, b) = (end(0..d), end(d..2 * d));
            (self.text.get(2 * d..).unwrap_or(""), a, b)
        } else {
            let [a, b] = tags.ends;
            (&*self.text, usize::from(a), usize::from(b))
        };
        let known = usize::from(tags.known)
            .checked_sub(1)
            .and_then(|i| KNOWN_TYPES.get(i));
        // The ends were taken at `String` boundaries of the parts, so they
        // are char boundaries of `all`; `get` keeps this free of panics
        // regardless.
        MediaMetaView {
            filename: all.get(..a).unwrap_or(""),
            content_type: known.map_or_else(|| all.get(a..b).unwrap_or(""), |k| *k),
            source: all.get(b..).unwrap_or(""),
            cleanup_policy: tags.policy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_keeps_every_part_and_its_boundaries() {
        let cases = [
            ("", "", "", CleanupPolicy::ForgetOnly),
            (
                "photo.jpg",
                "image/jpeg",
                "telegram",
                CleanupPolicy::DeleteOnCleanup,
            ),
            ("", "image/png", "", CleanupPolicy::DeleteOnCleanup),
            ("фото-📷.jpg", "", "tool:ü", CleanupPolicy::ForgetOnly),
        ];
        for (f, c, s, p) in cases {
            let meta = MediaMeta {
                filename: f.into(),
                content_type: c.into(),
                source: s.into(),
                cleanup_policy: p,
            };
            let (packed, tags) = PackedMeta::new(meta.clone());
            let v = packed.view(tags);
            assert_eq!((v.filename, v.content_type, v.source), (f, c, s));
            assert_eq!(v.cleanup_policy, p);
            assert_eq!(v, meta);
            assert_eq!(v.to_meta(), meta);
        }
    }

    #[test]
    fn parts_beyond_16_bit_ends_round_trip() {
        let long = "é".repeat(40_000); // 80 000 bytes
        let cases = [
            (long.clone(), String::new(), "tool".to_string()),
            ("a.bin".to_string(), long.clone(), long.clone()),
            ("x".repeat(65_534), "y".to_string(), String::new()),
            ("x".repeat(65_535), String::new(), "z".to_string()),
            ("x".repeat(65_533), "y".to_string(), "z".to_string()),
        ];
        for (f, c, s) in cases {
            let meta = MediaMeta {
                filename: f,
                content_type: c,
                source: s,
                cleanup_policy: CleanupPolicy::ForgetOnly,
            };
            let (packed, tags) = PackedMeta::new(meta.clone());
            assert_eq!(packed.view(tags), meta);
        }
    }

    #[test]
    fn known_content_types_are_tagged_not_copied_and_read_back_exactly() {
        let long = "x".repeat(70_000);
        let cases = [
            ("photo.jpg", "image/jpeg", "telegram", true),
            ("", "application/octet-stream", "", true),
            (long.as_str(), "audio/ogg", "voice", true),
            ("a.jpg", "Image/JPEG", "s", false),
            ("a.jpg", "image/jpeg ", "s", false),
            ("a.bin", "application/x-custom", "s", false),
            ("a.bin", "", "s", false),
        ];
        for (f, c, s, tagged) in cases {
            let meta = MediaMeta {
                filename: f.into(),
                content_type: c.into(),
                source: s.into(),
                cleanup_policy: CleanupPolicy::DeleteOnCleanup,
            };
            let (packed, tags) = PackedMeta::new(meta.clone());
            assert_eq!(tags.known != 0, tagged, "{c:?}");
            if !c.is_empty() {
                assert_eq!(packed.text.contains(c), !tagged, "{c:?}");
            }
            assert_eq!(packed.view(tags), meta);
        }
        // Every table entry round-trips to itself, and the table fits a byte.
        assert!(KNOWN_TYPES.len() < 255);
        for (i, k) in KNOWN_TYPES.iter().enumerate() {
            assert_eq!(usize::from(known_type(k)), i + 1, "{k} listed twice");
        }
    }

    #[test]
    fn packed_meta_is_smaller_than_three_strings() {
        assert_eq!(std::mem::size_of::<PackedMeta>(), 16);
        assert_eq!(std::mem::size_of::<MetaTags>(), 6);
        assert!(std::mem::size_of::<PackedMeta>() < std::mem::size_of::<MediaMeta>());
    }
}
