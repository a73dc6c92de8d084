//! The one error type. Every failure — a bad pipeline file, a planning problem, a
//! stage that failed, Ctrl-C — is an [`Error`]; it is rendered once, by the reporter,
//! and its exit code comes from [`Error::exit_code`] alone.

use super::{exit, Stage};

#[derive(Clone, Debug, Default)]
pub struct Error {
    /// The stage that failed; `None` for the pipeline file and planning (exit 2).
    pub stage: Option<Stage>,
    pub message: String,
    /// The command that failed, masked, when one did.
    pub command: Option<String>,
    /// That command's own exit code.
    pub child_exit: Option<i32>,
    /// The last lines of its output, masked.
    pub tail: Vec<String>,
    pub hint: Option<String>,
    pub interrupted: bool,
    pub timed_out: bool,
}

impl Error {
    pub fn new(stage: Stage, message: impl Into<String>) -> Error {
        Error {
            stage: Some(stage),
            message: message.into(),
            ..Error::default()
        }
    }

    /// A problem in the pipeline file or the plan: nothing ran.
    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            ..Error::default()
        }
    }

    pub fn interrupted(stage: Option<Stage>, message: impl Into<String>) -> Error {
        Error {
            stage,
            message: message.into(),
            interrupted: true,
            ..Error::default()
        }
    }

    pub fn hint(mut self, h: impl Into<String>) -> Error {
        self.hint = Some(h.into());
        self
    }

    /// Set the hint unless a more specific one is already there.
    pub fn or_hint(mut self, h: Option<String>) -> Error {
        if self.hint.is_none() {
            self.hint = h;
        }
        self
    }

    /// The process exit code for this error; the only mapping there is.
    pub fn exit_code(&self) -> i32 {
        match (self.interrupted, self.stage) {
            (true, _) => exit::INTERRUPTED,
            (false, Some(s)) => s.exit_code(),
            (false, None) => exit::USAGE,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
