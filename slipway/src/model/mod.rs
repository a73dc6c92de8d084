//! The vocabulary every layer shares: stages and jobs, commands, events, the one
//! error type and the exit-code table. Imports nothing else from this crate.

pub mod cmd;
pub mod dur;
pub mod error;
pub mod event;
pub mod exit;
pub mod names;
pub mod redact;
pub mod stage;
pub mod vars;

pub use cmd::{Cmd, SecretInput, SecretKey, SecretSource, Stdin, MASK};
pub use dur::Dur;
pub use error::Error;
pub use event::{ms, Event, Outcome, PodStatus, ReleaseStatus, Sink, WorkloadStatus};
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
