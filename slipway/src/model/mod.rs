//! The vocabulary every layer shares: stages and jobs, commands, events, the one
//! error type and the exit-code table. Imports nothing else from this crate.

pub mod cmd;
pub mod dur;
pub mod error;
pub mod event;
pub mod exit;
pub mod helm;
pub mod mutation;
pub mod names;
pub mod redact;
pub mod repo;
pub mod stage;
pub mod vars;

pub use cmd::{docker_config_json, Cmd, Output, SecretInput, SecretKey, SecretSource, Stdin, MASK};
pub use dur::Dur;
pub use error::Error;
pub use event::{ms, Event, Outcome, PodStatus, ReleaseSeen, ReleaseStatus, Sink, WorkloadStatus};
pub use redact::Redactor;
pub use stage::{Job, Stage};
pub use vars::Vars;

/// Serialize a `Duration` as whole seconds (`#[serde(with = "crate::model::secs")]`).
pub mod secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

/// Serialize a `Duration` as milliseconds.
pub mod millis {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// The last `n` non-blank lines of `text`.
pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Lines of a failed command's output shown with its error.
pub const TAIL_LINES: usize = 30;

/// The field names a struct's `Deserialize` asks for (serde passes them to
/// `deserialize_struct`), read by a deserializer that stops right there.
pub fn fields_of<'de, T: serde::Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Stop {
            Stop
        }
    }
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            *self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut found = None;
    let _ = T::deserialize(Probe(&mut found));
    found.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct S {
        a: u8,
        #[serde(default, rename = "b-b")]
        b: Option<String>,
        #[serde(skip_deserializing)]
        c: u8,
    }

    #[test]
    fn fields_are_serdes_own_list() {
        assert_eq!(super::fields_of::<S>(), ["a", "b-b"]);
    }
}
