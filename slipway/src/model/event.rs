//! Events: what a run tells the reporter. Producers (the executor, the runner) emit
//! them into a [`Sink`]; the reporter is the sink that renders them.

use std::time::Duration;

use serde::Serialize;

use super::{Redactor, Stage};

/// Bytes for people: `512 B`, `4.2 kB`, `5.3 MB`, `1.2 GB` (powers of 1000).
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

pub fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        project: String,
        job: String,
        profile: String,
        context: String,
    },
    StageStarted {
        stage: Stage,
    },
    StepStarted {
        stage: Stage,
        step: String,
        title: String,
    },
    StepSkipped {
        stage: Stage,
        step: String,
        reason: String,
    },
    StepFinished {
        stage: Stage,
        step: String,
        duration_ms: u64,
    },
    Command {
        stage: Stage,
        command: String,
        exit_code: Option<i32>,
        duration_ms: u64,
    },
    Check {
        stage: Stage,
        name: String,
        ok: bool,
        attempts: u32,
        duration_ms: u64,
        detail: String,
    },
    Note {
        stage: Stage,
        /// The step that said it, when a step did: a terminal showing the
        /// per-service table leaves a service's notes off its stage's line.
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        message: String,
    },
    /// A phase of long work (the spinner shows it): progress, not a note the run's
    /// summary repeats.
    Progress {
        stage: Stage,
        message: String,
    },
    /// What the run read of a release: its helm revision and status (before the
    /// upgrade), that the upgrade recorded a new revision, how many of its pods are
    /// ready. A failed or interrupted run says the state it left from these.
    ReleaseSeen(ReleaseSeen),
    /// An image reached the cluster: which way it went and how many bytes moved.
    Delivered {
        stage: Stage,
        image: String,
        reference: String,
        /// `kind-load`, `minikube-load`, `registry-push` or `push`.
        path: String,
        /// A load: the archive's bytes (the image's size); a push: the bytes of the
        /// layers it pushed. `None` when they could not be read.
        bytes: Option<u64>,
        /// A push: the layers it sent, of the image's `layers`.
        #[serde(skip_serializing_if = "Option::is_none")]
        layers_sent: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        layers: Option<u32>,
        duration_ms: u64,
        /// Why this path, when slipway chose it (kind's `delivery = "auto"`).
        #[serde(skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
    /// Why the run stopped: rendered once, as a block, by the reporter.
    Error {
        stage: Option<Stage>,
        message: String,
        command: Option<String>,
        exit_code: Option<i32>,
        output_tail: Vec<String>,
        hint: Option<String>,
        /// The exit code slipway will end with.
        slipway_exit: i32,
    },
    StageFinished {
        stage: Stage,
        result: Outcome,
        duration_ms: u64,
        commands: usize,
    },
    /// Text a command produces as its answer (a plan): stdout, as is.
    Output {
        text: String,
    },
    /// `status`: one release, its workloads and pods (stdout).
    ReleaseStatus(ReleaseStatus),
    /// What a stage gathered to explain a failure (a container's logs, the pods and
    /// events as JSON), masked: a file of the diagnosis bundle, not printed.
    Evidence {
        name: String,
        text: String,
    },
    /// `dev`: what the loop itself does (watching, a change and what it affects, one
    /// status line per release, port-forwards).
    Dev {
        message: String,
    },
    /// `dev`: a line a release's container printed, prefixed by kubectl with
    /// `[pod/NAME/CONTAINER]`.
    Log {
        release: String,
        line: String,
    },
    /// A failed run left its diagnosis bundle here.
    Bundle {
        path: String,
    },
    RunFinished {
        result: Outcome,
        exit_code: i32,
        duration_ms: u64,
    },
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ReleaseSeen {
    pub release: String,
    /// helm's revision and status, as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `helm upgrade --install` finished: helm recorded the next revision, deployed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub upgraded: bool,
    /// Pods ready and wanted, over the release's workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<(i64, i64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReleaseStatus {
    pub context: String,
    pub release: String,
    pub namespace: String,
    pub status: String,
    pub revision: Option<u32>,
    pub workloads: Vec<WorkloadStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadStatus {
    pub workload: String,
    pub ready: i64,
    pub desired: i64,
    pub pods: Vec<PodStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PodStatus {
    pub name: String,
    pub ready: bool,
    pub phase: String,
    pub restarts: i64,
    pub age: String,
    pub images: Vec<String>,
    /// `dev` synced files into it (`slipway.dev/synced`: when, which files): it runs
    /// code its image does not hold, until the next deploy-local rolls out the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced: Option<String>,
}

impl Event {
    /// Every text the event carries (what a renderer may print or write), for
    /// masking before it is encoded.
    pub fn texts_mut(&mut self) -> Vec<&mut String> {
        match self {
            Event::RunStarted {
                project,
                job,
                profile,
                context,
            } => vec![project, job, profile, context],
            Event::StageStarted { .. }
            | Event::StageFinished { .. }
            | Event::RunFinished { .. } => vec![],
            Event::StepStarted { step, title, .. } => vec![step, title],
            Event::StepSkipped { step, reason, .. } => vec![step, reason],
            Event::StepFinished { step, .. } => vec![step],
            Event::Command { command, .. } => vec![command],
            Event::Check { name, detail, .. } => vec![name, detail],
            Event::Note { message, step, .. } => {
                let mut v = vec![message];
                v.extend(step.as_mut());
                v
            }
            Event::Progress { message, .. } | Event::Dev { message } => vec![message],
            Event::ReleaseSeen(r) => {
                let mut v = vec![&mut r.release];
                v.extend(r.status.as_mut());
                v
            }
            Event::Error {
                message,
                command,
                output_tail,
                hint,
                ..
            } => {
                let mut v = vec![message];
                v.extend(command.as_mut());
                v.extend(output_tail.iter_mut());
                v.extend(hint.as_mut());
                v
            }
            Event::Output { text } => vec![text],
            Event::ReleaseStatus(r) => {
                let mut v = vec![
                    &mut r.context,
                    &mut r.release,
                    &mut r.namespace,
                    &mut r.status,
                ];
                for w in &mut r.workloads {
                    v.push(&mut w.workload);
                    for p in &mut w.pods {
                        v.extend([&mut p.name, &mut p.phase, &mut p.age]);
                        v.extend(p.images.iter_mut());
                    }
                }
                v
            }
            Event::Evidence { name, text } => vec![name, text],
            Event::Log { release, line } => vec![release, line],
            Event::Bundle { path } => vec![path],
            Event::Delivered {
                image,
                reference,
                path,
                ..
            } => vec![image, reference, path],
        }
    }

    /// A `delivered` event as one line: "api: registry-push, 3 of 5 layers, 1.2 MB
    /// in 0.3 s".
    pub fn delivered_text(&self) -> Option<String> {
        let Event::Delivered {
            image,
            path,
            bytes,
            layers_sent,
            layers,
            duration_ms,
            why,
            ..
        } = self
        else {
            return None;
        };
        let mut s = format!("{image}: {path}");
        if let (Some(sent), Some(all)) = (layers_sent, layers) {
            s.push_str(&format!(", {sent} of {all} layer(s) sent"));
        }
        s.push_str(&match bytes {
            Some(b) => format!(", {} moved", human_bytes(*b)),
            None => ", bytes moved unknown".into(),
        });
        s.push_str(&format!(" in {:.1}s", *duration_ms as f64 / 1000.0));
        if let Some(why) = why {
            s.push_str(&format!(" ({why})"));
        }
        Some(s)
    }

    pub fn error(e: &super::Error) -> Event {
        Event::Error {
            stage: e.stage,
            message: e.message.clone(),
            command: e.command.clone(),
            exit_code: e.child_exit,
            output_tail: e.tail.clone(),
            hint: e.hint.clone(),
            slipway_exit: e.exit_code(),
        }
    }
}

/// Where events go. The reporter implements it; tests may collect events instead.
pub trait Sink: Send + Sync {
    fn emit(&self, ev: Event);
    /// One line of a child's output (shown with --verbose).
    fn child_output(&self, stage: Stage, line: &str);
    /// The masks every emitted text passes through.
    fn redactor(&self) -> &Redactor;
}
