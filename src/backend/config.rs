//! [`BackendConfig`]: which backend a store uses, from code or from the
//! environment.
//!
//! Invariant: credentials are never part of the configuration; the object
//! store backend takes them from the standard environment variables and
//! credential chain only.

use std::path::PathBuf;

use super::BackendError;

/// `fs` or `s3`; unset means `fs`.
pub const ENV_BACKEND: &str = "MEDIASTORE_BACKEND";
/// Root folder of the filesystem backend.
pub const ENV_BASEDIR: &str = "MEDIASTORE_BASEDIR";
/// Bucket of the S3 backend (required for `s3`).
#[cfg(feature = "s3")]
pub const ENV_S3_BUCKET: &str = "MEDIASTORE_S3_BUCKET";
/// Key prefix inside the bucket (optional).
#[cfg(feature = "s3")]
pub const ENV_S3_PREFIX: &str = "MEDIASTORE_S3_PREFIX";
/// Region; `us-east-1` if unset.
#[cfg(feature = "s3")]
pub const ENV_S3_REGION: &str = "MEDIASTORE_S3_REGION";
/// Endpoint URL for S3-compatible servers (MinIO, R2, Garage...): then
/// path-style requests and plain http are allowed.
#[cfg(feature = "s3")]
pub const ENV_S3_ENDPOINT: &str = "MEDIASTORE_S3_ENDPOINT";
/// Folder of the local cache of remote objects.
#[cfg(feature = "s3")]
pub const ENV_S3_CACHE_DIR: &str = "MEDIASTORE_S3_CACHE_DIR";

/// Settings of the object-store backend. Credentials are not here: they come
/// from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, web
/// identity, ECS or instance metadata, as `object_store` finds them.
///
/// ```
/// let c = mediastore::backend::S3Config::new("media");
/// assert_eq!(c.region, "us-east-1");
/// assert!(c.endpoint.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix (no leading or trailing `/`), or empty.
    pub prefix: String,
    /// Region (`us-east-1` by default).
    pub region: String,
    /// Endpoint URL; set for MinIO, R2, Garage, s3s-fs...: path-style
    /// requests and plain http are then allowed.
    pub endpoint: Option<String>,
    /// Local cache folder (default `$TMP/mediastore-s3-cache`). One store
    /// instance per cache folder: the store locks it and empties what an
    /// earlier run left; a second store on a folder in use is refused.
    pub cache_dir: PathBuf,
    /// How many times a failed request is retried by the client.
    pub max_retries: usize,
    /// Give up on a request (with its retries) after this long.
    pub request_timeout: std::time::Duration,
}

impl S3Config {
    /// Defaults for `bucket`.
    ///
    /// ```
    /// use mediastore::backend::S3Config;
    /// let c = S3Config::new("media");
    /// assert_eq!(c.bucket, "media");
    /// ```
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: String::new(),
            region: "us-east-1".into(),
            endpoint: None,
            cache_dir: std::env::temp_dir().join("mediastore-s3-cache"),
            max_retries: 3,
            request_timeout: std::time::Duration::from_secs(10),
        }
    }

    /// Sets the key prefix (slashes at either end are trimmed).
    ///
    /// ```
    /// use mediastore::backend::S3Config;
    /// let c = S3Config::new("media").prefix("/gw/");
    /// assert_eq!(c.prefix, "gw");
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().trim_matches('/').to_owned();
        self
    }

    /// Sets the region.
    ///
    /// ```
    /// use mediastore::backend::S3Config;
    /// let c = S3Config::new("media").region("auto");
    /// assert_eq!(c.region, "auto");
    /// ```
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Sets an endpoint URL (S3-compatible servers).
    ///
    /// ```
    /// use mediastore::backend::S3Config;
    /// let c = S3Config::new("media").endpoint("http://127.0.0.1:9000");
    /// assert!(c.endpoint.is_some());
    /// ```
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Sets the cache folder.
    ///
    /// ```
    /// use mediastore::backend::S3Config;
    /// let c = S3Config::new("media").cache_dir("/var/cache/gw");
    /// assert!(c.cache_dir.ends_with("gw"));
    /// ```
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self
    }

    /// Sets the client's retry budget: attempts after the first, and the
    /// time limit for one request with its retries.
    ///
    /// ```
    /// use mediastore::backend::S3Config;
    /// let c = S3Config::new("media").retries(1, std::time::Duration::from_secs(2));
    /// assert_eq!(c.max_retries, 1);
    /// ```
    pub fn retries(mut self, max_retries: usize, request_timeout: std::time::Duration) -> Self {
        self.max_retries = max_retries;
        self.request_timeout = request_timeout;
        self
    }
}

/// Which backend to build.
///
/// ```
/// use mediastore::backend::BackendConfig;
/// let vars = [("MEDIASTORE_BACKEND", "fs"), ("MEDIASTORE_BASEDIR", "/var/lib/gw/media")];
/// let cfg = BackendConfig::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))?;
/// assert_eq!(cfg, BackendConfig::Fs { base_dir: "/var/lib/gw/media".into() });
/// assert!(BackendConfig::from_vars(|k| (k == "MEDIASTORE_BACKEND").then(|| "ftp".into())).is_err());
/// # Ok::<(), mediastore::backend::BackendError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendConfig {
    /// [`FsBackend`](super::FsBackend) at `base_dir`.
    Fs {
        /// The root folder.
        base_dir: PathBuf,
    },
    /// `S3Backend` (feature `s3`).
    S3(S3Config),
}

impl BackendConfig {
    /// The default filesystem root: `$TMP/mediastore-objects`.
    ///
    /// ```
    /// assert!(mediastore::backend::BackendConfig::default_base_dir().ends_with("mediastore-objects"));
    /// ```
    pub fn default_base_dir() -> PathBuf {
        std::env::temp_dir().join("mediastore-objects")
    }

    /// Reads the `MEDIASTORE_*` variables (see the constants in this
    /// module); unset means the filesystem backend at
    /// [`BackendConfig::default_base_dir`].
    ///
    /// # Errors
    /// [`BackendError::Config`] for an unknown backend name, `s3` without a
    /// bucket, or `s3` in a build without the `s3` feature.
    ///
    /// ```
    /// use mediastore::backend::BackendConfig;
    /// // With none of the variables set: the filesystem backend.
    /// if std::env::var_os("MEDIASTORE_BACKEND").is_none() && std::env::var_os("MEDIASTORE_BASEDIR").is_none() {
    ///     assert!(matches!(BackendConfig::from_env()?, BackendConfig::Fs { .. }));
    /// }
    /// # Ok::<(), mediastore::backend::BackendError>(())
    /// ```
    pub fn from_env() -> Result<Self, BackendError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// As [`BackendConfig::from_env`], reading variables through `get`.
    ///
    /// # Errors
    /// As [`BackendConfig::from_env`].
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, BackendError> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let kind = var(ENV_BACKEND)
            .unwrap_or_else(|| "fs".into())
            .to_ascii_lowercase();
        match kind.as_str() {
            "fs" => Ok(Self::Fs {
                base_dir: var(ENV_BASEDIR).map_or_else(Self::default_base_dir, PathBuf::from),
            }),
            #[cfg(feature = "s3")]
            "s3" => {
                let bucket = var(ENV_S3_BUCKET).ok_or_else(|| {
                    BackendError::Config(format!("{ENV_BACKEND}=s3 needs {ENV_S3_BUCKET}"))
                })?;
                let mut c = S3Config::new(bucket);
                if let Some(p) = var(ENV_S3_PREFIX) {
                    c = c.prefix(p);
                }
                if let Some(r) = var(ENV_S3_REGION) {
                    c = c.region(r);
                }
                if let Some(e) = var(ENV_S3_ENDPOINT) {
                    c = c.endpoint(e);
                }
                if let Some(d) = var(ENV_S3_CACHE_DIR) {
                    c = c.cache_dir(d);
                }
                Ok(Self::S3(c))
            }
            #[cfg(not(feature = "s3"))]
            "s3" => Err(BackendError::Config(format!(
                "{ENV_BACKEND}=s3 needs mediastore built with the `s3` feature"
            ))),
            other => Err(BackendError::Config(format!(
                "unknown backend {other:?} in {ENV_BACKEND} (want fs|s3)"
            ))),
        }
    }

    /// Builds the backend.
    ///
    /// # Errors
    /// [`BackendError`] if the folder cannot be created or the client
    /// cannot be configured.
    ///
    /// ```
    /// use mediastore::backend::BackendConfig;
    /// # let dir = tempfile::tempdir()?;
    /// let b = BackendConfig::Fs { base_dir: dir.path().into() }.build()?;
    /// assert!(!b.is_shared());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(&self) -> Result<std::sync::Arc<dyn super::Backend>, BackendError> {
        match self {
            Self::Fs { base_dir } => Ok(std::sync::Arc::new(super::FsBackend::new(base_dir)?)),
            #[cfg(feature = "s3")]
            Self::S3(c) => Ok(std::sync::Arc::new(super::S3Backend::new(c.clone())?)),
            #[cfg(not(feature = "s3"))]
            Self::S3(_) => Err(BackendError::Config(
                "the s3 backend needs the `s3` feature".into(),
            )),
        }
    }
}
