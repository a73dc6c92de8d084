//! Look at the release before upgrading: stop (or roll back) if it is stuck pending.

use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::{Redact, StepKind};
use crate::config::OnPending;
use crate::model::{Cmd, Error, Output, Stage, TAIL_LINES};
use crate::tools::helm;

#[derive(Clone, Debug, Serialize)]
pub struct ReleaseGate {
    pub release: String,
    pub status: Cmd,
    pub on_pending: OnPending,
    pub rollback: Cmd,
}

/// What the release's state asks of the run.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    /// Go on with the upgrade (saying this first, if anything).
    Proceed(Option<String>),
    /// Roll the pending release back first (saying this).
    RollBack(String),
}

impl StepKind for ReleaseGate {
    fn commands(&self) -> Vec<&Cmd> {
        vec![&self.status, &self.rollback]
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(s, &self.status, "");
        let what = match self.on_pending {
            OnPending::Fail => "stop with a hint".to_string(),
            OnPending::Rollback => format!("run `{}`", self.rollback.display()),
        };
        let _ = writeln!(s, "#   if pending-install/upgrade/rollback: {what}");
    }
}

impl ReleaseGate {
    /// From `status`'s output: go on, roll back first, or stop.
    pub fn verdict(&self, stage: Stage, out: &Output, redact: Redact) -> Result<Gate, Error> {
        let release = &self.release;
        if !out.ok() {
            if helm::is_not_found(&out.stderr) {
                return Ok(Gate::Proceed(Some(format!(
                    "release {release} does not exist yet: it will be installed"
                ))));
            }
            return Err(Error {
                command: Some(redact(&self.status.display())),
                child_exit: Some(out.code),
                tail: crate::model::last_lines(
                    &redact(&format!("{}\n{}", out.stdout, out.stderr)),
                    TAIL_LINES,
                ),
                ..Error::new(stage, format!("cannot read the state of release {release}"))
            }
            .hint(
                "check that the cluster answers: `kubectl --context CONTEXT get --raw /readyz`",
            ));
        }
        let Some(s) = helm::parse_status(&out.stdout) else {
            return Err(Error {
                command: Some(redact(&self.status.display())),
                tail: crate::model::last_lines(&redact(&out.stdout), TAIL_LINES),
                ..Error::new(stage, format!("cannot read the state of release {release}: helm printed something slipway cannot parse"))
            });
        };
        if !s.is_pending() {
            return Ok(Gate::Proceed(None));
        }
        self.pending(stage, &s)
    }

    /// The release's state as `status` shows it, for the run's record: its revision
    /// (`None`: not installed) and status; `None` when it cannot be read.
    pub fn seen(out: &Output) -> Option<(Option<u32>, String)> {
        if !out.ok() {
            return helm::is_not_found(&out.stderr).then(|| (None, "not installed".to_string()));
        }
        helm::parse_status(&out.stdout).map(|s| (Some(s.version), s.status))
    }

    fn pending(&self, stage: Stage, s: &helm::ReleaseStatus) -> Result<Gate, Error> {
        let (release, rollback) = (&self.release, &self.rollback);
        let uninstall = || {
            format!("the first install never finished: remove it with `helm uninstall {release} {}` and deploy again", ctx_ns_flags(rollback))
        };
        match self.on_pending {
            OnPending::Fail => Err(Error::new(
                stage,
                format!("release {release} is stuck in {} at revision {} (a helm run was interrupted or is still running)", s.status, s.version),
            )
            .hint(if s.version > 1 {
                format!("roll it back with `{}`, or set on_pending = \"rollback\" for this release", rollback.display())
            } else {
                uninstall()
            })),
            // A first install has no earlier revision: helm's rollback would fail.
            OnPending::Rollback if s.version <= 1 => Err(Error::new(
                stage,
                format!("release {release} is stuck in {} at revision {}, which has no earlier revision to roll back to", s.status, s.version),
            )
            .hint(uninstall())),
            OnPending::Rollback => Ok(Gate::RollBack(format!(
                "release {release} is {} at revision {}: rolling back",
                s.status, s.version
            ))),
        }
    }
}

fn ctx_ns_flags(helm_cmd: &Cmd) -> String {
    let a = &helm_cmd.args;
    let mut out = vec![];
    for flag in ["--kube-context", "--namespace"] {
        if let Some(i) = a.iter().position(|x| x == flag) {
            if let Some(v) = a.get(i + 1) {
                out.push(format!("{flag} {v}"));
            }
        }
    }
    out.join(" ")
}
