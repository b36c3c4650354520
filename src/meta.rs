//! [`MediaMeta`] and [`CleanupPolicy`]: what the gateway knows about a file.
//!
//! Invariant: metadata is stored by value with its ref and handed back
//! unchanged by every lease of that ref.
//!
//! A ref keeps its metadata as a [`PackedMeta`]: the three strings back to
//! back in one allocation (24 bytes in the entry instead of three `String`s'
//! 72, one heap block instead of three). Leases lend it out as a
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
    /// Its MIME type, e.g. `image/jpeg`.
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

/// Metadata as a ref keeps it, less the policy (which the entry keeps next
/// to its other small fields, where it costs no padding); see the module
/// doc.
pub(crate) struct PackedMeta {
    text: Text,
}

enum Text {
    /// filename, content type and source back to back, with the ends of
    /// the first two.
    Packed(Box<str>, [u32; 2]),
    /// Strings too long for 32-bit offsets (never in practice; kept so that
    /// no input can make `store` fail or panic).
    Large(Box<[String; 3]>),
}

impl PackedMeta {
    /// Packs `meta`: one allocation (none when all three strings are
    /// empty).
    pub(crate) fn new(meta: MediaMeta) -> (Self, CleanupPolicy) {
        let MediaMeta {
            filename,
            content_type,
            source,
            cleanup_policy,
        } = meta;
        let a = filename.len();
        let b = a + content_type.len();
        let text = match (u32::try_from(a), u32::try_from(b)) {
            (Ok(ea), Ok(eb)) if source.len() <= u32::MAX as usize - b => {
                // Grow the filename's own buffer (usually in place) rather
                // than allocating a fourth one.
                let mut all = filename;
                all.reserve_exact(content_type.len() + source.len());
                all.push_str(&content_type);
                all.push_str(&source);
                Text::Packed(all.into_boxed_str(), [ea, eb])
            }
            _ => Text::Large(Box::new([filename, content_type, source])),
        };
        (Self { text }, cleanup_policy)
    }

    /// The view a lease hands out.
    #[inline]
    pub(crate) fn view(&self, cleanup_policy: CleanupPolicy) -> MediaMetaView<'_> {
        let (filename, content_type, source) = match &self.text {
            Text::Packed(all, [a, b]) => {
                let (a, b) = (*a as usize, *b as usize);
                // The ends were taken at `String` boundaries of the parts,
                // so they are char boundaries of `all`; `get` keeps this
                // free of panics regardless.
                (
                    all.get(..a).unwrap_or(""),
                    all.get(a..b).unwrap_or(""),
                    all.get(b..).unwrap_or(""),
                )
            }
            Text::Large(parts) => (&*parts[0], &*parts[1], &*parts[2]),
        };
        MediaMetaView {
            filename,
            content_type,
            source,
            cleanup_policy,
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
            let (packed, policy) = PackedMeta::new(meta.clone());
            let v = packed.view(policy);
            assert_eq!((v.filename, v.content_type, v.source), (f, c, s));
            assert_eq!(v.cleanup_policy, p);
            assert_eq!(v, meta);
            assert_eq!(v.to_meta(), meta);
        }
    }

    #[test]
    fn packed_meta_is_smaller_than_three_strings() {
        assert_eq!(std::mem::size_of::<PackedMeta>(), 24);
        assert!(std::mem::size_of::<PackedMeta>() < std::mem::size_of::<MediaMeta>());
    }
}
