//! One file per kind of step: its data (every command it may spawn, as planned),
//! its lines in `plan`'s text, and — as pure functions of what its commands printed
//! — what that output means (a guard's skip or finding, a step's verdict). The
//! runner runs the commands and hands their output back here; it picks no parser.
//!
//! Adding a step: a file here with a type that implements [`StepKind`], a variant
//! of [`Action`] and its arm in [`Action::kind`]; then how it runs, in
//! `run/steps/<name>.rs` and its arm in `run::steps::execute`.

pub mod capacity;
mod cluster_present;
pub mod create_cluster;
mod delete_cluster;
pub mod deliver;
pub mod guard;
pub mod health;
mod judge;
mod node_ports;
pub mod preflight;
mod recipe;
pub mod release_gate;
mod render;
pub mod rollout;
mod run;
mod smoke;
mod status;
mod uninstall;
pub mod upgrade;
mod verify_loaded;
mod watch;

use serde::Serialize;

pub use capacity::Capacity;
pub use cluster_present::ClusterPresent;
pub use create_cluster::CreateCluster;
pub use delete_cluster::DeleteCluster;
pub use deliver::Delivery;
pub use guard::Guard;
pub use health::Health;
pub use judge::Judge;
pub use node_ports::NodePorts;
pub use preflight::{
    ContextCheck, ContextGuard, DockerStart, Fetch, GuardRule, Preflight, SecretVar, Supply,
    ToolCheck,
};
pub use recipe::Recipe;
pub use release_gate::ReleaseGate;
pub use render::Render;
pub use rollout::{Rollout, Track};
pub use run::Run;
pub use smoke::SmokeCheck;
pub use status::Status;
pub use uninstall::Uninstall;
pub use upgrade::{Rotate, Upgrade};
pub use verify_loaded::VerifyLoaded;
pub use watch::Watch;

use crate::model::{Cmd, Error, Output, Stage};
use crate::plan::brief::View;
use crate::plan::Step;
use crate::tools::k8s;

/// What every kind of step knows about itself.
pub trait StepKind {
    /// Every command this step may spawn.
    fn commands(&self) -> Vec<&Cmd>;
    /// Its lines in `plan`'s text (after the step's title and guard): in full with
    /// `v.verbose`, else what will run in full and the rest one line each.
    fn render(&self, s: &mut String, v: &mut View, step: &Step);
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // a plan holds a handful of these
pub enum Action {
    Preflight(Preflight),
    /// Before any release is deployed: the selected releases' rendered requests
    /// (saved by the render stage) against the nodes' allocatable.
    Capacity(Capacity),
    Run(Run),
    /// Put an image on the cluster (a load, or a push the nodes pull from), then say
    /// which way it went and how many bytes moved.
    Deliver(Delivery),
    /// Run one of slipway's recipes (`slipway/recipes/`), written to its cache
    /// directory first.
    Recipe(Recipe),
    /// After a load whose tool says it worked whether or not it did (`minikube image
    /// load`): every node must now hold the image's local ID.
    VerifyLoaded(VerifyLoaded),
    /// Create the cluster; first make sure its node image is there (pulled, or built
    /// offline when the registry cannot be reached).
    CreateCluster(CreateCluster),
    /// Look at the release before upgrading: stop (or roll back) if it is stuck pending.
    ReleaseGate(ReleaseGate),
    /// Track the release's workloads until they have rolled out; fail as soon as a
    /// cause that will not fix itself shows, with the evidence.
    Rollout(Rollout),
    /// Every pod of the release Ready, none crash-looping.
    Health(Health),
    Smoke(SmokeCheck),
    /// Start probing a check's Service through the API server's service proxy for
    /// the length of the upgrade (`during_rollout`); the check's smoke step ends it
    /// and judges what it saw.
    Watch(Watch),
    /// End a `during_rollout` probe and judge it, in a job that probes but has no
    /// smoke stage (`deploy`): any failed request fails the run.
    Judge(Judge),
    /// The releases' NodePort Services, reached from this machine the way a user
    /// would (kind's mapped ports, minikube's node address): each URL printed and
    /// checked to accept a connection.
    NodePorts(NodePorts),
    /// `status` and `down`: does the cluster exist at all?
    ClusterPresent(ClusterPresent),
    /// `status`: one release's state, workloads and pods.
    Status(Status),
    /// `down`: uninstall a release (if installed) and the Secrets slipway made for it.
    Uninstall(Uninstall),
    /// `helm upgrade --install`; when it fails, the namespace's failed hook Jobs are
    /// looked at (pods, their output) to say why.
    Upgrade(Upgrade),
    /// `helm template` a release; on success remember its digest in `stamp`.
    Render(Render),
    /// `down --cluster`.
    DeleteCluster(DeleteCluster),
}

impl Action {
    /// The registration: each kind of step, as what it knows about itself.
    pub fn kind(&self) -> &dyn StepKind {
        match self {
            Action::Preflight(s) => s,
            Action::Capacity(s) => s,
            Action::Run(s) => s,
            Action::Deliver(s) => s,
            Action::Recipe(s) => s,
            Action::VerifyLoaded(s) => s,
            Action::CreateCluster(s) => s,
            Action::ReleaseGate(s) => s,
            Action::Rollout(s) => s,
            Action::Health(s) => s,
            Action::Smoke(s) => s,
            Action::Watch(s) => s,
            Action::Judge(s) => s,
            Action::NodePorts(s) => s,
            Action::ClusterPresent(s) => s,
            Action::Status(s) => s,
            Action::Uninstall(s) => s,
            Action::Upgrade(s) => s,
            Action::Render(s) => s,
            Action::DeleteCluster(s) => s,
        }
    }

    /// Every command this action may spawn.
    pub fn commands(&self) -> Vec<&Cmd> {
        self.kind().commands()
    }

    /// A plain command step.
    pub fn run(cmd: Cmd) -> Action {
        Action::Run(Run { cmd })
    }
}

/// How the runner redacts what the executor saw (secrets' values) before it goes
/// into an error.
pub type Redact<'a> = &'a dyn Fn(&str) -> String;

/// A local image ID, short: `sha256:` and 12 hex digits.
pub fn short_id(id: &str) -> String {
    let id = id.trim().trim_start_matches("sha256:");
    format!("sha256:{}", id.chars().take(12).collect::<String>())
}

/// A tool exited 0 but printed what slipway cannot read: the stage fails (never
/// counts as healthy), with the command and what it printed.
pub fn unreadable(
    stage: Stage,
    what: &str,
    cmd: &Cmd,
    out: &Output,
    why: String,
    redact: Redact,
) -> Error {
    Error {
        command: Some(redact(&cmd.display())),
        tail: crate::model::last_lines(&redact(&format!("{}\n{}", out.stdout, out.stderr)), 10),
        ..Error::new(stage, format!("{what}: {why}"))
    }
    .hint("slipway fails closed on output it cannot read; run the command by hand to see what the tool says")
}

/// A release's workloads, from its `discover` command's output.
pub fn workloads(
    stage: Stage,
    release: &str,
    discover: &Cmd,
    out: &Output,
    redact: Redact,
) -> Result<Vec<k8s::WorkloadState>, Error> {
    let what = format!("list the workloads of {release}");
    k8s::parse_workloads(&out.stdout, release)
        .map_err(|e| unreadable(stage, &what, discover, out, e, redact))
}

/// Pods, from a `pods` command's output (`what` says whose, for the error).
pub fn pods(
    stage: Stage,
    what: &str,
    cmd: &Cmd,
    out: &Output,
    redact: Redact,
) -> Result<Vec<k8s::PodState>, Error> {
    k8s::parse_pods(&out.stdout).map_err(|e| unreadable(stage, what, cmd, out, e, redact))
}
