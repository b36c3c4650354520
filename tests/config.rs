//! Configuration from files and the environment (feature `serde`), and the
//! serialised forms of refs, metadata and policies.
#![cfg(all(feature = "serde", not(loom)))]

use std::time::Duration;

use mediastore::{CleanupConfig, CleanupPolicy, MediaMeta, MediaRef};

#[test]
fn picoclaw_media_cleanup_shape_with_defaults() {
    let cfg: CleanupConfig =
        serde_json::from_str(r#"{"enabled": true, "max_age_minutes": 45, "interval_minutes": 10}"#)
            .unwrap();
    assert_eq!(cfg.max_age, Duration::from_secs(45 * 60));
    assert_eq!(cfg.sweep_interval, Duration::from_secs(600));
    let empty: CleanupConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, CleanupConfig::default());
    let off: CleanupConfig = serde_json::from_str(r#"{"enabled": false}"#).unwrap();
    assert!(!off.enabled);
}

#[test]
fn humane_durations() {
    let cfg: CleanupConfig =
        serde_json::from_str(r#"{"max_age": "2h30m", "interval": "90s"}"#).unwrap();
    assert_eq!(cfg.max_age, Duration::from_secs(9000));
    assert_eq!(cfg.sweep_interval, Duration::from_secs(90));
    let text: CleanupConfig = serde_json::from_str(r#"{"max_age_minutes": "30m"}"#).unwrap();
    assert_eq!(text.max_age, Duration::from_secs(1800));
    // Round trip through the humane form.
    let back: CleanupConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn invalid_values_are_errors_naming_the_field() {
    for (json, needle) in [
        (r#"{"max_age_minutes": 0}"#, "max_age"),
        (r#"{"interval": "0s"}"#, "sweep_interval"),
        (r#"{"max_age": "30 parsecs"}"#, "max_age"),
        (r#"{"interval_minutes": "soon"}"#, "interval"),
        (r#"{"enabled": "yes"}"#, "enabled"),
        (r#"{"max_age": "1m", "max_age_minutes": 1}"#, "max_age"),
        (r#"{"max_agee": 5}"#, "max_agee"),
    ] {
        let err = serde_json::from_str::<CleanupConfig>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{json}: {err}");
    }
}

#[test]
fn environment_overrides_name_the_variable() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let cfg = CleanupConfig::default()
        .with_overrides_from(env(&[
            ("MEDIASTORE_CLEANUP_ENABLED", "false"),
            ("MEDIASTORE_CLEANUP_MAX_AGE", "15"),
            ("MEDIASTORE_CLEANUP_INTERVAL", "30s"),
        ]))
        .unwrap();
    assert!(!cfg.enabled);
    assert_eq!(cfg.max_age, Duration::from_secs(900));
    assert_eq!(cfg.sweep_interval, Duration::from_secs(30));
    for (var, bad) in [
        ("MEDIASTORE_CLEANUP_ENABLED", "sometimes"),
        ("MEDIASTORE_CLEANUP_MAX_AGE", "-5"),
        ("MEDIASTORE_CLEANUP_INTERVAL", "0"),
    ] {
        let pairs: &'static [(&'static str, &'static str)] = match var {
            "MEDIASTORE_CLEANUP_ENABLED" => &[("MEDIASTORE_CLEANUP_ENABLED", "sometimes")],
            "MEDIASTORE_CLEANUP_MAX_AGE" => &[("MEDIASTORE_CLEANUP_MAX_AGE", "-5")],
            _ => &[("MEDIASTORE_CLEANUP_INTERVAL", "0")],
        };
        let err = CleanupConfig::default()
            .with_overrides_from(env(pairs))
            .unwrap_err()
            .to_string();
        let named = err.contains(var) || err.contains("sweep_interval");
        assert!(named, "{var}={bad}: {err}");
    }
}

#[test]
fn refs_meta_and_policies_serialise_plainly() {
    let r: MediaRef = "media://67e55044-10b1-426f-9247-bb680e5fe0c8"
        .parse()
        .unwrap();
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, r#""media://67e55044-10b1-426f-9247-bb680e5fe0c8""#);
    assert_eq!(serde_json::from_str::<MediaRef>(&json).unwrap(), r);
    assert!(serde_json::from_str::<MediaRef>(r#""MEDIA://x""#).is_err());

    let meta = MediaMeta {
        filename: "a.jpg".into(),
        content_type: "image/jpeg".into(),
        source: "telegram".into(),
        cleanup_policy: CleanupPolicy::ForgetOnly,
    };
    let v: serde_json::Value = serde_json::to_value(&meta).unwrap();
    assert_eq!(v["filename"], "a.jpg");
    assert_eq!(v["cleanup_policy"], "forget_only");
    assert_eq!(serde_json::from_value::<MediaMeta>(v).unwrap(), meta);
    let partial: MediaMeta = serde_json::from_str(r#"{"filename": "x"}"#).unwrap();
    assert_eq!(partial.cleanup_policy, CleanupPolicy::DeleteOnCleanup);

    assert_eq!(
        serde_json::from_str::<CleanupPolicy>(r#""delete_on_cleanup""#).unwrap(),
        CleanupPolicy::DeleteOnCleanup
    );
    let err = serde_json::from_str::<CleanupPolicy>(r#""forget-only""#).unwrap_err();
    assert!(err.to_string().contains("unknown cleanup policy"), "{err}");
}
