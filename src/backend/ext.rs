//! The extension an object is saved with: from its MIME type first, then
//! from its source name, else none.
//!
//! Invariant: the result is always a valid extension (`""` or `.` plus 1–16
//! ASCII alphanumerics, lower-cased), whatever the input, so it can never
//! add a path separator or a `..` to a key.

/// MIME type (lower-cased, parameters dropped) → extension.
const BY_MIME: &[(&str, &str)] = &[
    ("image/jpeg", ".jpg"),
    ("image/jpg", ".jpg"),
    ("image/png", ".png"),
    ("image/gif", ".gif"),
    ("image/webp", ".webp"),
    ("image/heic", ".heic"),
    ("image/svg+xml", ".svg"),
    ("video/mp4", ".mp4"),
    ("video/webm", ".webm"),
    ("video/quicktime", ".mov"),
    ("audio/ogg", ".ogg"),
    ("audio/opus", ".ogg"),
    ("audio/mpeg", ".mp3"),
    ("audio/mp4", ".m4a"),
    ("audio/wav", ".wav"),
    ("audio/x-wav", ".wav"),
    ("audio/webm", ".weba"),
    ("application/pdf", ".pdf"),
    ("application/zip", ".zip"),
    ("application/json", ".json"),
    ("text/plain", ".txt"),
    ("text/markdown", ".md"),
    ("text/csv", ".csv"),
    ("text/html", ".html"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".docx",
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".xlsx",
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ".pptx",
    ),
];

/// The extension for an object with this MIME type and source name.
///
/// ```
/// use mediastore::backend::extension_for;
/// assert_eq!(extension_for("audio/mpeg", "voice"), ".mp3");        // MIME wins
/// assert_eq!(extension_for("IMAGE/JPEG; q=1", "x.png"), ".jpg");
/// assert_eq!(extension_for("", "Report.PDF"), ".pdf");             // then the name
/// assert_eq!(extension_for("application/octet-stream", "blob"), ""); // else none
/// assert_eq!(extension_for("", "evil./../x"), "");                 // never a path
/// ```
pub fn extension_for(content_type: &str, name: &str) -> String {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if let Some((_, ext)) = BY_MIME.iter().find(|(m, _)| *m == mime) {
        return (*ext).to_owned();
    }
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    match base.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && (1..=16).contains(&ext.len())
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!(".{}", ext.to_ascii_lowercase())
        }
        _ => String::new(),
    }
}
