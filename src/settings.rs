//! Configuration from the outside world: humane durations (`"30m"`),
//! environment overrides, and (feature `serde`) deserialisation of
//! [`CleanupConfig`] from picoclaw's `tools.media_cleanup` shape.
//!
//! Invariant: every value read from outside is validated before it is used,
//! and an invalid one is an error that names the field (or variable) and
//! the value; nothing falls back to a default silently.

use std::time::Duration;

use crate::config::CleanupConfig;
use crate::error::ConfigError;

/// Environment variable: `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
pub const ENV_ENABLED: &str = "MEDIASTORE_CLEANUP_ENABLED";
/// Environment variable: max age, minutes (`30`) or a humane duration (`30m`).
pub const ENV_MAX_AGE: &str = "MEDIASTORE_CLEANUP_MAX_AGE";
/// Environment variable: sweep interval, minutes or a humane duration.
pub const ENV_INTERVAL: &str = "MEDIASTORE_CLEANUP_INTERVAL";

/// Parses a duration: a plain number is minutes (picoclaw's unit), otherwise
/// one or more `<number><unit>` parts with units `ms`, `s`, `m`, `h`, `d`
/// (`"90s"`, `"1h30m"`, `"1h 30m"`).
///
/// ```
/// use mediastore::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30 * 60)));
/// assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(90 * 60)));
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert!(parse_duration("30 parsecs").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let minutes: u64 = t.parse().map_err(|_| format!("{t:?} is too large"))?;
        return minutes
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{t:?} is too large"));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number in {t:?}"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{t:?} is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let part = match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" | "sec" | "secs" => Some(Duration::from_secs(n)),
            "m" | "min" | "mins" => n.checked_mul(60).map(Duration::from_secs),
            "h" | "hr" | "hrs" => n.checked_mul(3600).map(Duration::from_secs),
            "d" | "day" | "days" => n.checked_mul(86_400).map(Duration::from_secs),
            "" => return Err(format!("missing unit in {t:?} (use ms, s, m, h or d)")),
            other => {
                return Err(format!(
                    "unknown unit {other:?} in {t:?} (use ms, s, m, h or d)"
                ))
            }
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("{t:?} is too large"))?;
    }
    Ok(total)
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (use true or false)")),
    }
}

impl CleanupConfig {
    /// Applies `MEDIASTORE_CLEANUP_ENABLED`, `MEDIASTORE_CLEANUP_MAX_AGE` and
    /// `MEDIASTORE_CLEANUP_INTERVAL` from the process environment on top of
    /// `self`, then validates.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the variable and its value, or a
    /// validation error.
    ///
    /// ```
    /// use mediastore::CleanupConfig;
    /// let cfg = CleanupConfig::default().with_env_overrides()?;
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn with_env_overrides(self) -> Result<Self, ConfigError> {
        self.with_overrides_from(|k| std::env::var(k).ok())
    }

    /// Like [`CleanupConfig::with_env_overrides`], reading variables through
    /// `lookup` (for tests, or another source of settings).
    ///
    /// ```
    /// use mediastore::CleanupConfig;
    /// use std::time::Duration;
    ///
    /// let cfg = CleanupConfig::default().with_overrides_from(|k| match k {
    ///     "MEDIASTORE_CLEANUP_MAX_AGE" => Some("2h".into()),
    ///     "MEDIASTORE_CLEANUP_INTERVAL" => Some("10".into()),
    ///     _ => None,
    /// })?;
    /// assert_eq!(cfg.max_age, Duration::from_secs(7200));
    /// assert_eq!(cfg.sweep_interval, Duration::from_secs(600));
    ///
    /// let bad = CleanupConfig::default()
    ///     .with_overrides_from(|k| (k == "MEDIASTORE_CLEANUP_ENABLED").then(|| "maybe".into()));
    /// assert!(bad.unwrap_err().to_string().contains("MEDIASTORE_CLEANUP_ENABLED"));
    /// # Ok::<(), mediastore::ConfigError>(())
    /// ```
    pub fn with_overrides_from(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let invalid = |field: &'static str, value: &str, reason: String| ConfigError::Invalid {
            field,
            value: crate::error::ParseRefError::excerpt(value),
            reason,
        };
        if let Some(v) = lookup(ENV_ENABLED) {
            self.enabled = parse_bool(&v).map_err(|r| invalid(ENV_ENABLED, &v, r))?;
        }
        if let Some(v) = lookup(ENV_MAX_AGE) {
            self.max_age = parse_duration(&v).map_err(|r| invalid(ENV_MAX_AGE, &v, r))?;
        }
        if let Some(v) = lookup(ENV_INTERVAL) {
            self.sweep_interval = parse_duration(&v).map_err(|r| invalid(ENV_INTERVAL, &v, r))?;
        }
        self.validate()?;
        Ok(self)
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;
    use serde::{Deserialize, Serialize};

    use super::parse_duration;
    use crate::config::CleanupConfig;
    use crate::meta::CleanupPolicy;
    use crate::MediaRef;

    impl Serialize for MediaRef {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self)
        }
    }

    impl<'de> Deserialize<'de> for MediaRef {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = MediaRef;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a media ref, \"media://<uuid>\"")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<MediaRef, E> {
                    v.parse().map_err(E::custom)
                }
            }
            d.deserialize_str(V)
        }
    }

    impl Serialize for CleanupPolicy {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(match self {
                CleanupPolicy::DeleteOnCleanup => "delete_on_cleanup",
                CleanupPolicy::ForgetOnly => "forget_only",
            })
        }
    }

    impl<'de> Deserialize<'de> for CleanupPolicy {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = String::deserialize(d)?;
            match s.as_str() {
                "delete_on_cleanup" => Ok(CleanupPolicy::DeleteOnCleanup),
                "forget_only" => Ok(CleanupPolicy::ForgetOnly),
                other => Err(de::Error::custom(format!(
                    "unknown cleanup policy {other:?} (expected \"delete_on_cleanup\" or \"forget_only\")"
                ))),
            }
        }
    }

    /// A duration in a config file: minutes as a number, or a humane text.
    /// Any other type is an error that names the field.
    struct DurationValue(Duration);

    fn duration_field<'de, D: Deserializer<'de>>(
        d: D,
        field: &'static str,
    ) -> Result<Option<DurationValue>, D::Error> {
        struct V(&'static str);
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "{}: minutes as a number, or a duration such as \"30m\"",
                    self.0
                )
            }
            fn visit_u64<E: de::Error>(self, m: u64) -> Result<Duration, E> {
                m.checked_mul(60)
                    .map(Duration::from_secs)
                    .ok_or_else(|| E::custom(format!("{}: {m} minutes is too large", self.0)))
            }
            fn visit_i64<E: de::Error>(self, m: i64) -> Result<Duration, E> {
                u64::try_from(m)
                    .map_err(|_| E::custom(format!("{}: {m} is negative", self.0)))
                    .and_then(|m| self.visit_u64(m))
            }
            fn visit_str<E: de::Error>(self, t: &str) -> Result<Duration, E> {
                parse_duration(t).map_err(|r| E::custom(format!("{}: {r}", self.0)))
            }
        }
        d.deserialize_any(V(field)).map(|v| Some(DurationValue(v)))
    }

    fn max_age_minutes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DurationValue>, D::Error> {
        duration_field(d, "max_age_minutes")
    }
    fn max_age<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DurationValue>, D::Error> {
        duration_field(d, "max_age")
    }
    fn interval_minutes<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DurationValue>, D::Error> {
        duration_field(d, "interval_minutes")
    }
    fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DurationValue>, D::Error> {
        duration_field(d, "interval")
    }
    fn sweep_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DurationValue>, D::Error> {
        duration_field(d, "sweep_interval")
    }
    fn enabled<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        bool::deserialize(d)
            .map(Some)
            .map_err(|e| de::Error::custom(format!("enabled: {e}")))
    }

    /// picoclaw's `tools.media_cleanup` shape, plus humane spellings.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawCleanup {
        #[serde(default, deserialize_with = "enabled")]
        enabled: Option<bool>,
        #[serde(default, deserialize_with = "max_age_minutes")]
        max_age_minutes: Option<DurationValue>,
        #[serde(default, deserialize_with = "interval_minutes")]
        interval_minutes: Option<DurationValue>,
        #[serde(default, deserialize_with = "max_age")]
        max_age: Option<DurationValue>,
        #[serde(default, deserialize_with = "interval")]
        interval: Option<DurationValue>,
        #[serde(default, deserialize_with = "sweep_interval")]
        sweep_interval: Option<DurationValue>,
    }

    impl<'de> Deserialize<'de> for CleanupConfig {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let raw = RawCleanup::deserialize(d)?;
            let mut cfg = CleanupConfig::default();
            if let Some(e) = raw.enabled {
                cfg.enabled = e;
            }
            let one = |a: Option<DurationValue>, b: Option<DurationValue>, names: &str| match (a, b)
            {
                (Some(_), Some(_)) => Err(de::Error::custom(format!("give only one of {names}"))),
                (a, b) => Ok(a.or(b)),
            };
            if let Some(v) = one(
                raw.max_age_minutes,
                raw.max_age,
                "max_age_minutes and max_age",
            )? {
                cfg.max_age = v.0;
            }
            let interval = match one(
                raw.interval_minutes,
                raw.interval,
                "interval_minutes and interval",
            )? {
                Some(v) => Some(v),
                None => raw.sweep_interval,
            };
            if let Some(v) = interval {
                cfg.sweep_interval = v.0;
            }
            cfg.validate().map_err(de::Error::custom)?;
            Ok(cfg)
        }
    }

    impl Serialize for CleanupConfig {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeStruct;
            let mut st = s.serialize_struct("CleanupConfig", 3)?;
            st.serialize_field("enabled", &self.enabled)?;
            st.serialize_field("max_age", &human(self.max_age))?;
            st.serialize_field("interval", &human(self.sweep_interval))?;
            st.end()
        }
    }

    /// The shortest exact humane spelling of a duration.
    fn human(d: Duration) -> String {
        let ms = d.as_millis();
        if ms % 1000 != 0 {
            return format!("{ms}ms");
        }
        let s = ms / 1000;
        for (unit, n) in [("d", 86_400u128), ("h", 3600), ("m", 60)] {
            if s % n == 0 && s > 0 {
                return format!("{}{unit}", s / n);
            }
        }
        format!("{s}s")
    }
}
