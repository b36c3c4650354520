//! [`MediaMeta`] and [`CleanupPolicy`]: what the gateway knows about a file.
//!
//! Invariant: metadata is stored by value with its ref and handed back
//! unchanged by every lease of that ref.

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
