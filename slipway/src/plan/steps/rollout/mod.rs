//! Track the release's workloads until they have rolled out; fail as soon as a cause
//! that will not fix itself shows, with the evidence. [`judge`] decides on one
//! snapshot; the runner polls and gathers the evidence.

pub mod judge;
pub mod serving;

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::{Cmd, Error, Stage};
use crate::tools::k8s::{self, KubeEvent, PodState, WorkloadState};

#[derive(Clone, Debug, Serialize)]
pub struct Rollout {
    pub track: Track,
    pub rollback: Option<Cmd>,
}

/// What the rollout tracker polls, and the commands it gathers evidence with.
#[derive(Clone, Debug, Serialize)]
pub struct Track {
    pub release: String,
    pub namespace: String,
    pub context: String,
    /// Deployments, StatefulSets, DaemonSets and Jobs (those helm annotated as the
    /// release's are tracked).
    pub workloads: Cmd,
    /// The namespace's pods, matched to workloads by selector.
    pub pods: Cmd,
    pub events: Cmd,
    /// The Services, EndpointSlices and ReplicaSets: done only when every ready
    /// endpoint is a pod of the current revision (`run/steps/serving.rs`).
    pub serving: Cmd,
    /// `{POD}` and `{CONTAINER}` are filled for the container that failed.
    pub logs: Cmd,
    pub logs_previous: Cmd,
    /// Only these workloads (`kind/name`); `None` is all of the release's.
    pub only: Option<Vec<String>>,
    #[serde(with = "crate::model::secs")]
    pub timeout: Duration,
    /// A container that restarted this often is crash-looping: fail.
    pub crash_limit: u32,
}

impl StepKind for Rollout {
    fn commands(&self) -> Vec<&Cmd> {
        let t = &self.track;
        let mut cmds = vec![
            &t.workloads,
            &t.pods,
            &t.events,
            &t.serving,
            &t.logs,
            &t.logs_previous,
        ];
        cmds.extend(self.rollback.iter());
        cmds
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        let t = &self.track;
        let which = match &t.only {
            Some(ws) => ws.join(", "),
            None => format!(
                "each Deployment/StatefulSet/DaemonSet/Job annotated meta.helm.sh/release-name={}",
                t.release
            ),
        };
        v.line(
            s,
            &t.workloads,
            &format!(
                "every second until rolled out ({which}), at most {}",
                humantime::format_duration(t.timeout)
            ),
        );
        v.line(
            s,
            &t.pods,
            "their pods: fail early on a cause that will not fix itself",
        );
        if v.verbose {
            v.line(
                s,
                &t.events,
                "when a pod is stuck: the scheduler's, kubelet's and volume events",
            );
            serving(s, v, &t.serving);
            v.line(s, &t.logs, "evidence: the failing container's output");
            v.line(
                s,
                &t.logs_previous,
                &format!("evidence: the previous instance, after a restart (crash-looping at {} restarts)", t.crash_limit),
            );
        } else {
            serving(s, v, &t.serving);
            let _ = writeln!(
                s,
                "#   when a pod is stuck: its events and its containers' logs, as evidence (plan --verbose)"
            );
        }
        if let Some(rb) = &self.rollback {
            v.line(s, rb, "on failure");
        }
    }
}

/// The read that judges a release serving: every ready endpoint a new pod.
fn serving(s: &mut String, v: &View, cmd: &Cmd) {
    v.line(
        s,
        cmd,
        "then until every ready endpoint of the release's Services is a pod of the new revision",
    );
}

impl Track {
    /// The workloads to wait for, from what `workloads` printed: the release's, or
    /// only those named (each must be there).
    pub fn workloads(&self, stage: Stage, raw: &str) -> Result<Vec<WorkloadState>, Error> {
        let what = format!("list the workloads of {}", self.release);
        let mut workloads = k8s::parse_workloads(raw, &self.release).map_err(|e| {
            Error::new(stage, format!("{what}: {e}"))
                .hint("slipway fails closed on output it cannot read; run the command by hand")
        })?;
        let Some(only) = &self.only else {
            return Ok(workloads);
        };
        for id in only {
            if !workloads.iter().any(|w| w.id() == id.to_ascii_lowercase()) {
                return Err(Error::new(
                    stage,
                    format!(
                        "workload {id} of release {} was not found in namespace {}",
                        self.release, self.namespace
                    ),
                )
                .hint(format!(
                    "found: {}",
                    workloads
                        .iter()
                        .map(WorkloadState::id)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        workloads.retain(|w| only.iter().any(|id| id.to_ascii_lowercase() == w.id()));
        Ok(workloads)
    }

    /// The namespace's pods, from what `pods` printed.
    pub fn pods(&self, stage: Stage, raw: &str) -> Result<Vec<PodState>, Error> {
        k8s::parse_pods(raw)
            .map_err(|e| Error::new(stage, format!("list the pods of {}: {e}", self.release)))
    }

    /// The namespace's events, from what `events` printed (none when unreadable).
    pub fn events(raw: &str) -> Vec<KubeEvent> {
        k8s::parse_events(raw).unwrap_or_default()
    }
}
