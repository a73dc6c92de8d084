//! Every pod of the release Ready, none crash-looping.

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::{Cmd, Error, Stage};
use crate::tools::{k8s, kubectl};

#[derive(Clone, Debug, Serialize)]
pub struct Health {
    pub release: String,
    pub namespace: String,
    pub context: String,
    pub discover: Cmd,
    pub pods: Cmd,
    pub rollback: Option<Cmd>,
}

impl StepKind for Health {
    fn commands(&self) -> Vec<&Cmd> {
        let mut v = vec![&self.discover, &self.pods];
        v.extend(self.rollback.iter());
        v
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(s, &self.discover, "");
        v.line(
            s,
            &self.pods,
            "per workload: each pod Ready, none crash-looping",
        );
        if let Some(rb) = &self.rollback {
            v.line(s, rb, "on failure");
        }
    }
}

/// What the release's pods show.
#[derive(Debug, Default)]
pub struct Verdict {
    pub total: usize,
    /// One line per pod that is not Ready or is crash-looping.
    pub problems: Vec<String>,
    pub hints: Vec<&'static str>,
    /// Ready pods that restarted.
    pub notes: Vec<String>,
}

impl Health {
    /// The namespace's pods from the rollout's last read.
    pub fn reused_pods(stage: Stage, raw: &str) -> Result<Vec<k8s::PodState>, Error> {
        k8s::parse_pods(raw).map_err(|e| {
            Error::new(
                stage,
                format!("list the namespace's pods (the rollout's last read): {e}"),
            )
            .hint("slipway fails closed on output it cannot read; run the command by hand")
        })
    }

    /// Judge the release's pods: the workloads' pods, each Ready, none crash-looping.
    pub fn verdict(&self, workloads: &[k8s::WorkloadState], all_pods: &[k8s::PodState]) -> Verdict {
        let mut v = Verdict::default();
        for w in workloads {
            for p in all_pods
                .iter()
                .filter(|p| p.selected_by(w) && !p.terminating)
            {
                v.total += 1;
                let crash = p
                    .reasons
                    .iter()
                    .any(|r| r == "CrashLoopBackOff" || r == "Error" || r == "OOMKilled");
                if !p.ready || crash {
                    let why = if p.reasons.is_empty() {
                        format!("not Ready ({})", p.phase)
                    } else {
                        p.reasons.join(", ")
                    };
                    v.problems
                        .push(format!("pod {}: {why}, {} restart(s)", p.name, p.restarts));
                    v.hints
                        .extend(p.reasons.iter().filter_map(|r| kubectl::hint_for(r)));
                } else if p.restarts > 0 {
                    v.notes.push(format!(
                        "pod {} is Ready but restarted {} time(s)",
                        p.name, p.restarts
                    ));
                }
            }
        }
        v
    }
}
