//! `type = "kubectl"`: a resource exists, or reaches a condition.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Attempt, Io, Kind, Problem, Target};
use crate::model::Cmd;
use crate::tools::kubectl;

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Kubectl {
    /// `kind/name`, e.g. `deployment/sample`.
    pub resource: String,
    /// A condition to wait for (`kubectl wait --for=condition=…`).
    #[serde(default)]
    pub condition: Option<String>,
}

impl Kind for Kubectl {
    fn validate(&self) -> Vec<Problem> {
        let mut out = vec![];
        let ok = self.resource.split_once('/').is_some_and(|(k, n)| {
            !k.is_empty()
                && !n.is_empty()
                && !k.starts_with('-')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        });
        if !ok {
            out.push((
                "resource".into(),
                format!(
                    "resource {:?} must be KIND/NAME, like \"deployment/sample\"",
                    self.resource
                ),
                None,
            ));
        }
        if let Some(c) = &self.condition {
            if c.is_empty() || c.starts_with('-') || c.contains(char::is_whitespace) {
                out.push((
                    "condition".into(),
                    format!("condition {c:?} must be a condition type, like \"Available\""),
                    None,
                ));
            }
        }
        out
    }

    fn templated(&mut self) -> Vec<(&'static str, &mut String)> {
        vec![]
    }

    fn commands(&self, t: &Target) -> Vec<Cmd> {
        vec![match &self.condition {
            Some(cond) => kubectl::wait_condition(
                t.context,
                t.namespace,
                &self.resource,
                cond,
                Duration::from_secs(10),
            ),
            None => kubectl::get_resource(t.context, t.namespace, &self.resource),
        }]
    }

    fn attempt(&self, cmds: &[Cmd], io: &mut dyn Io) -> Attempt {
        let cmd = &cmds[0];
        match io.run(cmd) {
            Ok((0, out, _)) => Attempt {
                ok: true,
                settled: false,
                detail: format!("`{}`: {}", cmd.display(), out.trim()),
            },
            Ok((code, _, err)) => Attempt {
                ok: false,
                settled: false,
                detail: format!(
                    "`{}` exited {code}: {}",
                    cmd.display(),
                    err.lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("")
                        .trim()
                ),
            },
            Err(e) => Attempt {
                ok: false,
                settled: false,
                detail: e,
            },
        }
    }

    fn hint(&self, _t: &Target) -> String {
        "the resource or condition was not there before the deadline; raise `deadline` if it is just slow".into()
    }

    fn describe(&self) -> String {
        match &self.condition {
            Some(c) => format!("{} reaches condition {c}", self.resource),
            None => format!("{} exists", self.resource),
        }
    }
}
