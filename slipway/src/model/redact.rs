//! Masks secret values wherever text is about to leave the process.

use std::sync::{Arc, RwLock};

use super::MASK;

#[derive(Clone, Default)]
pub struct Redactor(Arc<RwLock<Vec<String>>>);

impl Redactor {
    /// Values shorter than this are not masked (masking "a" would mangle all output);
    /// preflight refuses them.
    pub const MIN_LEN: usize = 4;

    /// Mask `secret` from now on, in the forms it is seen in: as is, JSON-escaped
    /// (inside a JSON string) and base64 (how Kubernetes shows Secret data).
    pub fn add(&self, secret: &str) {
        use base64::Engine as _;
        if secret.len() < Self::MIN_LEN {
            return;
        }
        let json = serde_json::to_string(secret).unwrap_or_default();
        let forms = [
            secret.to_string(),
            json[1..json.len().saturating_sub(1).max(1)].to_string(),
            base64::engine::general_purpose::STANDARD.encode(secret),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret),
        ];
        let mut v = self.0.write().unwrap_or_else(|e| e.into_inner());
        for f in forms {
            if f.len() >= Self::MIN_LEN && !v.contains(&f) {
                v.push(f);
            }
        }
        // Longest first, so a secret containing another is masked whole.
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn redact(&self, text: &str) -> String {
        let v = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_string();
        for s in v.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_json_escaped_and_base64_forms() {
        let r = Redactor::default();
        r.add("p\"w\\d-canary");
        let json = serde_json::json!({"v": "p\"w\\d-canary"}).to_string();
        assert!(!r.redact(&json).contains("canary"), "{}", r.redact(&json));
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode("p\"w\\d-canary");
        assert_eq!(r.redact(&format!("data: {b64}")), "data: ********");
    }

    #[test]
    fn masks_longest_first_and_ignores_tiny_values() {
        let r = Redactor::default();
        r.add("hunter2");
        r.add("hunter2-extended");
        r.add("ab");
        assert_eq!(
            r.redact("x hunter2-extended y hunter2 ab"),
            "x ******** y ******** ab"
        );
    }
}
