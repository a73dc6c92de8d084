//! Masks secret values wherever text is about to leave the process.
//!
//! Masking works on raw text, before any encoding: every sink (the terminal, plain
//! logs, JSON events, the JUnit report, the diagnosis bundle, `plan`) masks the
//! event's strings first ([`Redactor::event`], [`Redactor::json`]) and encodes
//! the masked text afterwards. A value is masked in the forms tools print it in
//! (see [`Redactor::add`]), and a multi-line value line by line too, because output
//! reaches slipway one line at a time.

use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};

use super::{Event, MASK};

#[derive(Default)]
struct Masks {
    forms: Vec<String>,
    matcher: Option<AhoCorasick>,
}

#[derive(Clone, Default)]
pub struct Redactor(Arc<RwLock<Masks>>);

/// The base64 characters that depend on `secret`'s bytes alone when it is encoded
/// after `offset` other bytes (0, 1 or 2) and before unknown ones: what any base64
/// text that embeds the secret (`user:password` in a registry's `auth`) contains.
fn base64_core(secret: &[u8], offset: usize) -> String {
    use base64::Engine as _;
    let mut bytes = vec![0u8; offset];
    bytes.extend_from_slice(secret);
    let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
    let (start, end) = (offset, offset + secret.len());
    // Character i of a group g reads these bytes.
    let reads = |i: usize| -> (usize, usize) {
        let g = 3 * (i / 4);
        match i % 4 {
            0 => (g, g),
            1 => (g, g + 1),
            2 => (g + 1, g + 2),
            _ => (g + 2, g + 2),
        }
    };
    enc.char_indices()
        .filter(|(i, _)| {
            let (a, b) = reads(*i);
            a >= start && b < end
        })
        .map(|(_, c)| c)
        .collect()
}

impl Redactor {
    /// Values shorter than this are not masked (masking "a" would mangle all output);
    /// preflight refuses them.
    pub const MIN_LEN: usize = 4;
    /// Shortest base64 text taken from inside a longer encoding (shorter ones would
    /// match by chance).
    const MIN_CORE: usize = 8;

    /// Mask `secret` from now on, in the forms it is seen in: as is, JSON-escaped
    /// (inside a JSON string), shell-quoted (a command line), base64 (how Kubernetes
    /// shows Secret data, also inside a longer base64 text), and, for a multi-line
    /// value, each of its lines (a line of a secret is a secret).
    pub fn add(&self, secret: &str) {
        use base64::Engine as _;
        if secret.len() < Self::MIN_LEN {
            return;
        }
        let mut pieces: Vec<&str> = vec![secret];
        if secret.contains(['\n', '\r']) {
            for l in secret.split(['\n', '\r']) {
                pieces.extend([l, l.trim()]);
            }
        }
        let mut forms: Vec<String> = vec![];
        for p in pieces.into_iter().filter(|p| p.len() >= Self::MIN_LEN) {
            let json = serde_json::to_string(p).unwrap_or_default();
            let quoted = shell_words::quote(p);
            forms.extend([
                p.to_string(),
                json.get(1..json.len().saturating_sub(1))
                    .unwrap_or_default()
                    .to_string(),
                quoted
                    .strip_prefix('\'')
                    .and_then(|q| q.strip_suffix('\''))
                    .unwrap_or(&quoted)
                    .to_string(),
            ]);
        }
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE,
        ];
        for e in engines {
            let padded = e.encode(secret);
            forms.push(padded.trim_end_matches('=').to_string());
            forms.push(padded);
        }
        for offset in 0..3 {
            let core = base64_core(secret.as_bytes(), offset);
            if core.len() >= Self::MIN_CORE {
                forms.push(core.replace('+', "-").replace('/', "_"));
                forms.push(core);
            }
        }
        let mut m = self.0.write().unwrap_or_else(|e| e.into_inner());
        for f in forms {
            if f.len() >= Self::MIN_LEN && !m.forms.contains(&f) {
                m.forms.push(f);
            }
        }
        m.matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&m.forms)
            .ok();
    }

    /// The length of the longest form masked (a cut text keeps no more than this
    /// less one byte of a secret at its end).
    pub fn longest(&self) -> usize {
        let m = self.0.read().unwrap_or_else(|e| e.into_inner());
        m.forms.iter().map(String::len).max().unwrap_or(0)
    }

    pub fn redact(&self, text: &str) -> String {
        let m = self.0.read().unwrap_or_else(|e| e.into_inner());
        match &m.matcher {
            Some(ac) if ac.is_match(text) => ac.replace_all(text, &vec![MASK; m.forms.len()]),
            _ => text.to_string(),
        }
    }

    fn redact_in_place(&self, text: &mut String) {
        let m = self.0.read().unwrap_or_else(|e| e.into_inner());
        if let Some(ac) = m.matcher.as_ref().filter(|ac| ac.is_match(text.as_str())) {
            *text = ac.replace_all(text, &vec![MASK; m.forms.len()]);
        }
    }

    /// `ev` with every text in it masked (before any renderer encodes it).
    pub fn event(&self, mut ev: Event) -> Event {
        for t in ev.texts_mut() {
            self.redact_in_place(t);
        }
        ev
    }

    /// Mask every string (and key) of a JSON value, before it is serialized.
    pub fn json(&self, v: &mut serde_json::Value) {
        use serde_json::Value;
        match v {
            Value::String(s) => self.redact_in_place(s),
            Value::Array(a) => a.iter_mut().for_each(|x| self.json(x)),
            Value::Object(o) => {
                let masked = std::mem::take(o)
                    .into_iter()
                    .map(|(k, mut x)| {
                        self.json(&mut x);
                        (self.redact(&k), x)
                    })
                    .collect();
                *o = masked;
            }
            _ => {}
        }
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

    #[test]
    fn masks_each_line_of_a_multi_line_value() {
        let r = Redactor::default();
        let pem = "-----BEGIN KEY-----\r\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n  indented-line  \n-----END KEY-----\n";
        r.add(pem);
        for l in [
            "MIIEvQIBADANBgkqhkiG9w0B",
            "AQEFAASCBKcwggSjAgEAAoIB",
            "indented-line",
            "-----END KEY-----",
        ] {
            assert_eq!(r.redact(&format!("| {l}")), "| ********", "{l}");
        }
        assert!(!r.redact(&format!("x{pem}y")).contains("MII"));
    }

    #[test]
    fn masks_base64_inside_a_longer_encoding_and_shell_quoted_forms() {
        use base64::Engine as _;
        let r = Redactor::default();
        r.add("it's&<a>\"secret\"");
        for prefix in ["", "u:", "ci-bot:", "xy"] {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{prefix}it's&<a>\"secret\"-and-more"));
            assert!(r.redact(&auth).contains(MASK), "{prefix}: {auth}");
        }
        let quoted = shell_words::quote("--set=a=it's&<a>\"secret\"").into_owned();
        assert!(r.redact(&quoted).contains(MASK), "{quoted}");
        assert!(!r.redact(&quoted).contains("secret"), "{quoted}");
    }

    #[test]
    fn masks_events_and_json_before_encoding() {
        let r = Redactor::default();
        r.add("a&b<c>'d\"");
        let ev = r.event(Event::Note {
            stage: crate::model::Stage::Deploy,
            step: None,
            message: "saw a&b<c>'d\" here".into(),
        });
        let Event::Note { message, .. } = &ev else {
            unreachable!()
        };
        assert_eq!(message, "saw ******** here");
        let mut v = serde_json::json!({"k": ["a&b<c>'d\""], "a&b<c>'d\"": 1});
        r.json(&mut v);
        assert_eq!(v.to_string(), r#"{"********":1,"k":["********"]}"#);
    }
}
