//! `helm upgrade --install`; when it fails, the namespace's failed hook Jobs are
//! looked at (pods, their output) to say why. When a Secret the release reads
//! changed since the deployed revision, its workloads are restarted.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::{Cmd, Output, SecretInput};
use crate::tools::{helm, k8s};

/// Where the secret digest key lives, relative to the pipeline's root.
pub const KEY_PATH: &str = "target/slipway/secret-digest.key";

#[derive(Clone, Debug, Serialize)]
pub struct Upgrade {
    pub release: String,
    pub cmd: Cmd,
    pub jobs: Cmd,
    pub pods: Cmd,
    /// `{POD}` and `{CONTAINER}` are filled for a failed hook Job's pod.
    pub logs: Cmd,
    /// When a Secret of the release changed since the deployed revision: its
    /// pods are replaced so they read it again (a chart's pod template does not
    /// change with a Secret's data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotate: Option<Rotate>,
}

/// A release's Secrets and how their change reaches its pods: `{SECRETS}` in the
/// upgrade is filled with their keyed digests (recorded in the revision's
/// description), and when one differs from the deployed revision's, every
/// Deployment, StatefulSet and DaemonSet of the release gets `rollout restart`
/// after the upgrade. Works for any chart: nothing is asked of its templates.
#[derive(Clone, Debug, Serialize)]
pub struct Rotate {
    pub secrets: Vec<SecretInput>,
    /// The deployed revision (what its description recorded).
    pub status: Cmd,
    pub discover: Cmd,
    /// `{WORKLOAD}` is filled with `kind/name`.
    pub restart: Cmd,
}

impl StepKind for Upgrade {
    fn commands(&self) -> Vec<&Cmd> {
        let mut v = vec![&self.cmd, &self.jobs, &self.pods, &self.logs];
        if let Some(r) = &self.rotate {
            v.extend([&r.status, &r.discover, &r.restart]);
        }
        v
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(s, &self.cmd, "");
        if let Some(r) = &self.rotate {
            let names: Vec<&str> = r.secrets.iter().map(|s| s.name.as_str()).collect();
            v.line(
                s,
                &r.restart,
                &format!(
                    "for each of its workloads, when secret {} changed since the deployed revision",
                    names.join(", ")
                ),
            );
        }
        if v.verbose {
            v.line(s, &self.jobs, "if helm fails: the failed hook Jobs");
            v.line(s, &self.pods, "their pods");
            v.line(s, &self.logs, "and what they printed");
        } else {
            let _ = writeln!(
                s,
                "#   if helm fails: its failed hook Jobs, their pods and what they printed (plan --verbose)"
            );
        }
    }
}

impl Upgrade {
    /// The first failed hook Job `jobs` printed.
    pub fn failed_hook(jobs: &Output) -> Option<k8s::WorkloadState> {
        k8s::parse_failed_hooks(&jobs.stdout)
            .ok()?
            .into_iter()
            .next()
    }

    /// The pods `pods` printed (none when it cannot be read).
    pub fn hook_pods(pods: &Output) -> Vec<k8s::PodState> {
        k8s::parse_pods(&pods.stdout).unwrap_or_default()
    }
}

impl Rotate {
    /// Why the release's workloads are restarted after the upgrade, from the
    /// deployed revision (`before`, `status`'s output) and the Secrets' digests now
    /// (`now`, made with a key that may be new); `None`: none changed.
    pub fn restart_reason(before: &Output, now: &str, key_created: bool) -> Option<String> {
        let s = helm::parse_status(&before.stdout).filter(|_| before.ok())?;
        let names = changed(s.secrets(), now);
        (!names.is_empty()).then(|| reason(&names, s.secrets(), key_created))
    }
}

/// The Secrets whose digest differs from what the revision recorded (all of them
/// when it recorded none).
pub fn changed(recorded: Option<&str>, now: &str) -> Vec<String> {
    let parse = |s: &str| -> BTreeMap<String, String> {
        s.split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(n, h)| (n.to_string(), h.to_string()))
            .collect()
    };
    let before = recorded.map(parse).unwrap_or_default();
    parse(now)
        .into_iter()
        .filter(|(n, h)| before.get(n) != Some(h))
        .map(|(n, _)| n)
        .collect()
}

/// Why the release is upgraded although its chart, values and images are the same.
pub fn reason(names: &[String], recorded: Option<&str>, key_created: bool) -> String {
    let list = names.join(", ");
    let what = if names.len() == 1 {
        format!("secret {list} changed")
    } else {
        format!("secrets {list} changed")
    };
    if recorded.is_none() {
        format!("{what} (the deployed revision recorded no secret digests)")
    } else if key_created {
        format!("{what} (the digest key {KEY_PATH} is new: every secret counts as changed once)")
    } else {
        what
    }
}

/// The field manager a server-side apply conflict names (`conflict with "kubectl-set"`).
pub fn conflict_manager(lines: &[String]) -> Option<String> {
    lines.iter().find_map(|l| {
        let rest = l.split("conflict with ").nth(1)?;
        let rest = rest.trim_start_matches('\\').trim_start_matches('"');
        let name: String = rest
            .chars()
            .take_while(|c| *c != '"' && *c != '\\')
            .collect();
        (!name.is_empty()).then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_secrets_are_named() {
        assert_eq!(changed(Some("a=1,b=2"), "a=1,b=2"), Vec::<String>::new());
        assert_eq!(changed(Some("a=1,b=2"), "a=1,b=3"), vec!["b"]);
        assert_eq!(changed(Some("a=1"), "a=1,c=3"), vec!["c"]);
        assert_eq!(changed(None, "a=1,b=2"), vec!["a", "b"]);
    }

    #[test]
    fn the_conflicting_field_manager_is_named() {
        let helm4 = [
            "level=WARN msg=\"upgrade failed\" name=sample error=\"conflict occurred while applying object slipway-sample/sample apps/v1, Kind=Deployment: Apply failed with 1 conflict: conflict with \\\"kubectl-set\\\" using apps/v1: .spec\"".to_string(),
            "Error: UPGRADE FAILED: conflict occurred while applying object x: Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1".to_string(),
        ];
        assert_eq!(
            conflict_manager(&helm4[..1]).as_deref(),
            Some("kubectl-set")
        );
        assert_eq!(
            conflict_manager(&helm4[1..]).as_deref(),
            Some("kubectl-edit")
        );
        assert_eq!(conflict_manager(&["Error: boom".to_string()]), None);
    }
}
