//! Smoke-check kinds. Each kind is one file: its keys in `[smoke.NAME]`, their
//! validation, the commands it needs (for the plan) and one attempt at run time.
//! Adding a kind is that file plus one registration here: a variant of [`Spec`] and
//! its arms in [`Spec::kind`] and [`decode`].

pub mod http;
pub mod job;
pub mod kubectl;

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::exec::Signals;
use crate::model::Cmd;

/// The kind-specific part of a check, as written (then with image references
/// resolved, in the plan).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Spec {
    Http(http::Http),
    Kubectl(kubectl::Kubectl),
    Job(job::Job),
}

/// The registered kinds: their `type` name and their keys (serde's own field list).
/// A kind's name and the function that lists its keys.
pub type Registration = (&'static str, fn() -> &'static [&'static str]);

pub const KINDS: &[Registration] = &[
    ("http", crate::model::fields_of::<http::Http>),
    ("kubectl", crate::model::fields_of::<kubectl::Kubectl>),
    ("job", crate::model::fields_of::<job::Job>),
];

/// The keys of a kind (empty for an unknown one).
pub fn fields(kind: &str) -> &'static [&'static str] {
    KINDS
        .iter()
        .find(|(n, _)| *n == kind)
        .map_or(&[], |(_, f)| f())
}

/// Decodes one check's table strictly (unknown keys and bad values reported).
pub trait Decode {
    fn decode<T: DeserializeOwned>(&mut self, v: toml::Value) -> Option<T>;
}

/// The check of kind `kind` from its table (without `type`); `None` for an unknown
/// kind, `Some(None)` when the table had errors (already reported).
pub fn decode(kind: &str, v: toml::Value, d: &mut impl Decode) -> Option<Option<Spec>> {
    Some(match kind {
        "http" => d.decode(v).map(Spec::Http),
        "kubectl" => d.decode(v).map(Spec::Kubectl),
        "job" => d.decode(v).map(Spec::Job),
        _ => return None,
    })
}

impl Spec {
    pub fn kind(&self) -> &dyn Kind {
        match self {
            Spec::Http(c) => c,
            Spec::Kubectl(c) => c,
            Spec::Job(c) => c,
        }
    }

    pub fn kind_mut(&mut self) -> &mut dyn Kind {
        match self {
            Spec::Http(c) => c,
            Spec::Kubectl(c) => c,
            Spec::Job(c) => c,
        }
    }
}

/// Where a check runs, for planning its commands.
pub struct Target<'a> {
    pub context: &'a str,
    pub namespace: &'a str,
}

/// A problem found in a check's keys: the key it is about, the message, a hint.
pub type Problem = (String, String, Option<String>);

/// What one attempt saw.
pub struct Attempt {
    pub ok: bool,
    pub detail: String,
    /// A failure that will not fix itself by trying again (a pod that cannot start):
    /// the check fails now instead of retrying until its deadline.
    pub settled: bool,
}

/// What a check may ask of the runner at run time.
pub trait Io {
    /// Run a planned command (placeholders filled) to completion: exit code, stdout,
    /// stderr. `Err` for a command that could not run or was stopped.
    fn run(&mut self, cmd: &Cmd) -> Result<(i32, String, String), String>;
    /// The local port of a running port-forward started from this planned command
    /// (`{LOCAL_PORT}` is filled by the runner); started on first use, shared.
    fn forward(&mut self, cmd: &Cmd) -> Result<u16, String>;
    /// How long this attempt may take.
    fn remaining(&self) -> Duration;
    /// Undo what the attempt made in the cluster (delete its Job): run with its own
    /// small budget ([`CLEANUP`]) beyond the check's, so an attempt that used all of
    /// its time still cleans up.
    fn cleanup(&mut self, cmd: &Cmd) -> Result<(i32, String, String), String>;
    /// The signals that end the run: a request the check makes itself stops there
    /// (through [`crate::exec::net`], the one network client).
    fn signals(&self) -> Signals;
}

/// How long a check's cleanup may take after its deadline.
pub const CLEANUP: Duration = Duration::from_secs(15);

pub trait Kind {
    /// Meaning checks on the keys (types were checked by the decoder).
    fn validate(&self) -> Vec<Problem>;
    /// Every string value that may hold `${images.…}` references, to be resolved by
    /// the planner, with its key.
    fn templated(&mut self) -> Vec<(&'static str, &mut String)>;
    /// The commands an attempt runs (templates; the plan shows them).
    fn commands(&self, t: &Target) -> Vec<Cmd>;
    /// One attempt.
    fn attempt(&self, cmds: &[Cmd], io: &mut dyn Io) -> Attempt;
    /// What to do when the check keeps failing.
    fn hint(&self, t: &Target) -> String;
    /// The plan's one-line description of what passes.
    fn describe(&self) -> String;
    /// The service this check reaches, if any (for "how to reach it").
    fn service(&self) -> Option<(&str, u16)> {
        None
    }
}
