//! Writing JSON text by hand where a content must be embedded as the text the host gave.

/// Appends `s` as a JSON string.
pub fn push_string(out: &mut String, s: &str) {
    // serde_json's escaping of a &str cannot fail
    out.push_str(&serde_json::to_string(s).expect("string serialises"));
}
