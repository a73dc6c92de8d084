//! A smoke check: one attempt's commands, retried until the check's deadline.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::checks;
use crate::model::Cmd;

#[derive(Clone, Debug, Serialize)]
pub struct SmokeCheck {
    pub name: String,
    pub namespace: String,
    pub context: String,
    #[serde(with = "crate::model::secs")]
    pub deadline: Duration,
    #[serde(with = "crate::model::millis")]
    pub interval: Duration,
    pub spec: checks::Spec,
    /// What an attempt runs (templates).
    pub commands: Vec<Cmd>,
}

impl SmokeCheck {
    pub fn target(&self) -> checks::Target<'_> {
        checks::Target {
            context: &self.context,
            namespace: &self.namespace,
        }
    }
}

impl StepKind for SmokeCheck {
    fn commands(&self) -> Vec<&Cmd> {
        self.commands.iter().collect()
    }

    fn render(&self, s: &mut String, v: &mut View, step: &Step) {
        for cmd in &self.commands {
            // A port-forward the checks share is started once.
            if v.verbose || v.seen.insert(cmd.script()) {
                v.line(s, cmd, "");
            }
        }
        let _ = writeln!(
            s,
            "# {}{}; retry every {} until {}",
            if v.verbose {
                String::new()
            } else {
                format!("{}: ", step.title)
            },
            self.spec.kind().describe(),
            humantime::format_duration(self.interval),
            humantime::format_duration(self.deadline)
        );
    }
}
