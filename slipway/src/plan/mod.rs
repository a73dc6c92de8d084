//! Planning: a validated pipeline becomes an ordered list of steps, and every
//! command a run can spawn — guard probes, rollout and health queries, smoke checks'
//! port-forwards included — is in the plan's data with its exact argv, env, stdin and
//! timeout. A value known only at run time is a `{PLACEHOLDER}` (see
//! [`crate::model::Cmd::fill`]). `plan` renders this data and nothing else.
//!
//! No side effects: planning reads the pipeline's files (to hash them) and nothing
//! else, so `plan` runs with an empty PATH. Each stage plans itself in
//! `stages/<stage>.rs`; [`build`] calls them in the job's order.

mod brief;
pub mod delivery;
pub mod dev;
pub mod digest;
mod exposed;
mod local;
mod render;
mod stages;
pub mod sync;
pub use stages::build_waves::BUILD_CONCURRENCY;
pub use stages::{requests_file, CAPACITY};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::checks;
use crate::config::{self, OnPending, Pipeline, Provider};
use crate::model::{Cmd, Error, Job, SecretInput, SecretSource, Stage};
use crate::providers::ImageProbe;
use crate::tools::helm;

/// How many groups (builds, loads, releases) run at a time unless `--jobs` says.
pub const DEFAULT_PARALLEL: u16 = 8;
pub use local::{LocalFacts, ToolUse};

#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub job: Job,
    /// Rebuild, reload and redeploy even when nothing changed.
    pub force: bool,
    /// `--kube-context`: overrides the pipeline's context.
    pub context: Option<String>,
    /// `--namespace`: overrides every release's namespace.
    pub namespace: Option<String>,
    /// Let a mutating job use a context that is not the local cluster slipway manages.
    pub allow_context: bool,
    /// `down --cluster`: also delete the cluster slipway manages.
    pub with_cluster: bool,
    /// The time a `timestamp` tag is taken from.
    pub now: SystemTime,
    /// Which helm the helm commands are for (detected, or the default major).
    pub helm: helm::Dialect,
    /// Only this release (`rollback RELEASE`); `None` is every release.
    pub release: Option<String>,
    /// `rollback --to`: the revision to return to.
    pub revision: Option<u32>,
    /// `logs`: one workload (`kind/name`) instead of whole releases.
    pub workload: Option<String>,
    /// `logs --follow` and `--tail`.
    pub follow: bool,
    pub tail: u32,
    /// Provision missing tools and start a stopped Docker engine (unless
    /// `[tools] provision = false` says otherwise).
    pub provision: bool,
    /// `--install-packages`: slipway's recipes may apt-get install what they need.
    pub install_packages: bool,
    /// `--jobs`: at most this many groups (builds, loads, releases) at a time.
    pub parallel: usize,
    /// What this machine already has (tools, the kube contexts), when the caller read
    /// it: the plan shows what will run first (see [`LocalFacts`]).
    pub local: Option<LocalFacts>,
    /// `--strict`: the capacity preflight fails instead of warning.
    pub strict: bool,
}

impl PlanOptions {
    pub fn new(job: Job) -> PlanOptions {
        PlanOptions {
            job,
            force: false,
            context: None,
            namespace: None,
            allow_context: false,
            with_cluster: false,
            now: SystemTime::now(),
            helm: helm::Dialect::assumed(),
            release: None,
            revision: None,
            workload: None,
            follow: false,
            tail: 50,
            provision: true,
            install_packages: false,
            parallel: usize::from(DEFAULT_PARALLEL),
            local: None,
            strict: false,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub project: String,
    pub job: Job,
    pub profile: String,
    pub provider: Provider,
    pub cluster: String,
    pub context: String,
    pub images: Vec<ImagePlan>,
    pub steps: Vec<Step>,
    /// Per stage, how long it may take.
    pub budgets: BTreeMap<Stage, u64>,
    /// How to reach what a deploy-local ends with.
    pub reach: Vec<String>,
    /// Run only when the job fails, for the diagnosis bundle (each release's `helm
    /// status` and `helm history`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<Cmd>,
    /// Which helm the plan's helm commands are for and what that decided, per
    /// release (jobs that run helm only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmPlan>,
    /// `dev`: what it watches and keeps running between rounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<dev::DevPlan>,
    /// At most this many of a stage's groups run at a time (`--jobs`).
    pub parallel: usize,
    /// `--only`: what is selected and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection: Option<crate::config::Selection>,
    /// The local facts the plan was made with (see [`LocalFacts`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalFacts>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HelmPlan {
    pub dialect: helm::Dialect,
    pub decisions: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ImagePlan {
    pub name: String,
    pub repository: String,
    pub tag: String,
    pub reference: String,
    /// Inputs that are not regular files, left out of the content tag.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_inputs: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub stage: Stage,
    pub id: String,
    pub title: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_if: Option<Guard>,
    /// Steps with the same group run one after another; different groups of one
    /// stage may run at the same time (images build in parallel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A stage's waves run one after another (releases after those they `need`);
    /// groups run at the same time within a wave.
    #[serde(skip_serializing_if = "is_zero")]
    pub wave: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // a plan holds a handful of these
pub enum Action {
    Preflight(Preflight),
    /// Before any release is deployed: the selected releases' rendered requests
    /// (saved by the render stage) against the nodes' allocatable.
    Capacity {
        nodes: Cmd,
        /// Release → the file its rendered requests were saved to.
        requests: Vec<(String, PathBuf)>,
        /// `--strict`: fail instead of warning.
        strict: bool,
    },
    Run {
        cmd: Cmd,
    },
    /// Put an image on the cluster (a load, or a push the nodes pull from), then say
    /// which way it went and how many bytes moved.
    Deliver(delivery::Delivery),
    /// Run one of slipway's recipes (`slipway/recipes/`), written to its cache
    /// directory first.
    Recipe {
        recipe: String,
        cmd: Cmd,
    },
    /// After a load whose tool says it worked whether or not it did (`minikube image
    /// load`): every node must now hold the image's local ID.
    VerifyLoaded {
        reference: String,
        local_id: Cmd,
        probe: ImageProbe,
    },
    /// Create the cluster; first make sure its node image is there (pulled, or built
    /// offline when the registry cannot be reached).
    CreateCluster {
        cmd: Cmd,
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<crate::providers::NodeImage>,
    },
    /// Look at the release before upgrading: stop (or roll back) if it is stuck pending.
    ReleaseGate {
        release: String,
        status: Cmd,
        on_pending: OnPending,
        rollback: Cmd,
    },
    /// Track the release's workloads until they have rolled out; fail as soon as a
    /// cause that will not fix itself shows, with the evidence.
    Rollout {
        track: Track,
        rollback: Option<Cmd>,
    },
    /// Every pod of the release Ready, none crash-looping.
    Health {
        release: String,
        namespace: String,
        context: String,
        discover: Cmd,
        pods: Cmd,
        rollback: Option<Cmd>,
    },
    Smoke(SmokeCheck),
    /// Start probing a check's Service through the API server's service proxy for
    /// the length of the upgrade (`during_rollout`); the check's smoke step ends it
    /// and judges what it saw.
    Watch(Watch),
    /// End a `during_rollout` probe and judge it, in a job that probes but has no
    /// smoke stage (`deploy`): any failed request fails the run.
    Judge {
        check: String,
    },
    /// The releases' NodePort Services, reached from this machine the way a user
    /// would (kind's mapped ports, minikube's node address): each URL printed and
    /// checked to accept a connection.
    NodePorts {
        namespace: String,
        releases: Vec<String>,
        services: Cmd,
        access: crate::providers::HostAccess,
    },
    /// `status` and `down`: does the cluster exist at all?
    ClusterPresent {
        describe: String,
        /// `None` for a cluster slipway does not manage (assumed present).
        probe: Option<Cmd>,
    },
    /// `status`: one release's state, workloads and pods.
    Status {
        release: String,
        namespace: String,
        status: Cmd,
        discover: Cmd,
        pods: Cmd,
    },
    /// `down`: uninstall a release (if installed) and the Secrets slipway made for it.
    Uninstall {
        release: String,
        namespace: String,
        status: Cmd,
        uninstall: Cmd,
        list_secrets: Cmd,
        delete_secrets: Cmd,
    },
    /// `helm upgrade --install`; when it fails, the namespace's failed hook Jobs are
    /// looked at (pods, their output) to say why.
    Upgrade {
        release: String,
        cmd: Cmd,
        jobs: Cmd,
        pods: Cmd,
        /// `{POD}` and `{CONTAINER}` are filled for a failed hook Job's pod.
        logs: Cmd,
        /// When a Secret of the release changed since the deployed revision: its
        /// pods are replaced so they read it again (a chart's pod template does not
        /// change with a Secret's data).
        #[serde(skip_serializing_if = "Option::is_none")]
        rotate: Option<Rotate>,
    },
    /// `helm template` a release; on success remember its digest in `stamp`.
    Render {
        release: String,
        chart: String,
        cmd: Cmd,
        digest: String,
        stamp: PathBuf,
    },
    /// `down --cluster`.
    DeleteCluster {
        describe: String,
        delete: Option<Cmd>,
    },
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

/// A condition under which a step is skipped, with the probe that decides it.
#[derive(Clone, Debug, Serialize)]
#[allow(clippy::large_enum_variant)] // one per step
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Guard {
    /// The provider's probe says the cluster is up.
    ClusterUp { describe: String, probe: Cmd },
    /// The image reference already exists locally (content-addressed tags only).
    ImageBuilt { reference: String, probe: Cmd },
    /// Every one of the image references exists locally (a pre-build shared by
    /// several images: it runs when any of them is to be built).
    ImagesBuilt {
        references: Vec<String>,
        probes: Vec<Cmd>,
    },
    /// Every node of the cluster holds the image with the local image ID.
    ImageOnCluster {
        reference: String,
        local_id: Cmd,
        probe: ImageProbe,
    },
    /// The deployed revision carries this digest and is `deployed`.
    ReleaseCurrent {
        release: String,
        digest: String,
        probe: Cmd,
        /// The Secrets the release reads (values read at run time): their keyed
        /// digests must also match what the deployed revision recorded.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        secrets: Vec<SecretInput>,
    },
    /// The namespace exists and is Active.
    NamespaceExists { namespace: String, probe: Cmd },
    /// The Secret's digest annotation (what `probe` prints) is the keyed digest of
    /// the values it would be applied with now.
    SecretCurrent { secret: SecretInput, probe: Cmd },
    /// The cluster advertises this local registry (KEP-1755) and it answers on
    /// `http://HOST/v2/`. Another advertised host stops the run.
    RegistryAdvertised { host: String, probe: Cmd },
    /// Decided when planning: always skipped, for this reason.
    Always { reason: String },
    /// The release rendered fine with inputs of this digest before (a stamp file,
    /// relative to the pipeline's root, slipway writes after `helm template`
    /// succeeds).
    Rendered {
        release: String,
        digest: String,
        stamp: PathBuf,
        /// Also only while this path (relative to the pipeline's root) exists: what
        /// the guarded step made (`helm dependency build`'s `charts/`).
        #[serde(skip_serializing_if = "Option::is_none")]
        requires: Option<PathBuf>,
    },
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
    /// endpoint is a pod of the current revision (`run/serving.rs`).
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

#[derive(Clone, Debug, Serialize)]
pub struct Preflight {
    pub tools: Vec<ToolCheck>,
    pub docker_daemon: Option<Cmd>,
    /// Provisioning is on (tools, a stopped Docker engine).
    pub provision: bool,
    /// When the daemon does not answer and can be started here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_start: Option<DockerStart>,
    /// Minimum free space, in GiB, for Docker's data root and the temp dir.
    pub min_free_gib: u64,
    /// For `existing`: the context must exist and answer.
    pub context: Option<ContextCheck>,
    /// For jobs that change the cluster: the context must be the local cluster
    /// slipway manages.
    pub guard: Option<ContextGuard>,
    /// Variables the release secrets read; all must be set.
    pub secret_vars: Vec<SecretVar>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ToolCheck {
    pub tool: crate::tools::registry::ToolId,
    pub min: String,
    pub why: String,
    pub version: Cmd,
    /// How slipway gets this tool when PATH has none at `min` or later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supply: Option<Supply>,
}

/// A tool slipway provisions into its cache: the official release binary (checksum
/// verified), else a build from the Go module proxy with slipway's recipe.
#[derive(Clone, Debug, Serialize)]
pub struct Supply {
    pub version: String,
    /// Where the provisioned binary lives (the cache is keyed by version).
    pub path: PathBuf,
    /// The official release: fetch it, compare its SHA-256 with the pin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download: Option<Fetch>,
    /// Why there is no download: no SHA-256 is pinned for this version (in slipway's
    /// source or `[tools.sha256]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpinned: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Cmd>,
    /// The Debian packages `build` needs, by the program that shows each is there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<crate::providers::Package>,
    /// `--install-packages`: `build` may install missing ones itself.
    pub install_packages: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Fetch {
    /// Writes the file to `file`.
    pub fetch: Cmd,
    pub file: PathBuf,
    /// The SHA-256 the file must have (slipway's source pin, or `[tools.sha256]`).
    pub sha256: String,
    /// Where the pin comes from.
    pub pinned_by: String,
    /// For an archive: unpack the binary (`tar -xzf ARCHIVE -C DIR MEMBER`), found
    /// then at `unpacked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpack: Option<Cmd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpacked: Option<PathBuf>,
}

/// Start a Docker engine that is installed but not running (root, no systemd): with
/// its configuration, runtime wrapper and log under slipway's cache. Never touches a running one.
#[derive(Clone, Debug, Serialize)]
pub struct DockerStart {
    pub dockerd: Cmd,
    /// Its daemon.json (the host's `host_config`, merged) and runtime wrapper (a shell
    /// script running `filter`, a copy of slipway, then runc), written before it starts.
    pub config: PathBuf,
    pub host_config: PathBuf,
    pub wrapper: PathBuf,
    pub filter: PathBuf,
    pub log: PathBuf,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContextCheck {
    pub context: String,
    pub list: Cmd,
    pub ready: Cmd,
}

/// Planned whenever the plan holds a command that changes a cluster (read from each
/// command's tool and verb, [`crate::model::mutation`]): preflight decides whether
/// `context` may be changed and, if so, approves it (and `also`) to the executor,
/// which refuses every command that changes anything else.
#[derive(Clone, Debug, Serialize)]
pub struct ContextGuard {
    pub job: Job,
    pub context: String,
    /// The context of the cluster slipway manages, if any.
    pub managed: Option<String>,
    pub allowed: bool,
    /// Reads the kubeconfig, to check the managed context points at the cluster
    /// slipway made (and not at one that took its name).
    pub kubeconfig: Option<Cmd>,
    pub rule: GuardRule,
    /// The first planned command that changes the cluster, for messages.
    pub first_change: String,
    /// Approved with the context: the registries the plan pushes to (the pipeline's
    /// own, which the cluster pulls from).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<crate::model::mutation::Target>,
}

/// Which contexts a job may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardRule {
    /// Only the local cluster slipway manages (checked in the kubeconfig), unless
    /// --allow-context: deploy-local, dev, down, rollback, and any job given a
    /// --kube-context.
    Managed,
    /// The pipeline's own context (provider "existing"), the one `deploy` changes.
    Pipeline,
    /// `deploy`: the way to clusters slipway does not manage; any context named.
    Any,
}

#[derive(Clone, Debug, Serialize)]
pub struct SecretVar {
    pub secret: String,
    pub key: String,
    pub source: SecretSource,
}

#[derive(Clone, Debug, Serialize)]
pub struct Watch {
    /// The smoke check this belongs to.
    pub check: String,
    pub service: String,
    pub port: u16,
    pub method: String,
    pub path: String,
    /// Reads the Service: a NodePort this machine reaches is probed there, through
    /// kube-proxy as clients are; otherwise through `proxy`.
    pub services: Cmd,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<crate::providers::HostAccess>,
    /// The request's path through `kubectl proxy`.
    pub proxy_path: String,
    pub expect_status: u16,
    /// One request every this long (each with a 2 s deadline).
    #[serde(with = "crate::model::millis")]
    pub every: Duration,
    /// `kubectl proxy` on a unix socket (`{SOCKET}`, in a 0700 directory made at run
    /// time): never a TCP port another local user could reach.
    pub proxy: Cmd,
}

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

impl Guard {
    pub fn commands(&self) -> Vec<&Cmd> {
        match self {
            Guard::ClusterUp { probe, .. }
            | Guard::ImageBuilt { probe, .. }
            | Guard::NamespaceExists { probe, .. }
            | Guard::SecretCurrent { probe, .. }
            | Guard::RegistryAdvertised { probe, .. }
            | Guard::ReleaseCurrent { probe, .. } => vec![probe],
            Guard::Always { .. } | Guard::Rendered { .. } => vec![],
            Guard::ImagesBuilt { probes, .. } => probes.iter().collect(),
            Guard::ImageOnCluster {
                local_id, probe, ..
            } => {
                let mut v = vec![local_id];
                v.extend(probe.nodes.iter());
                v.push(&probe.per_node);
                v
            }
        }
    }
}

impl Action {
    /// Every command this action may spawn.
    pub fn commands(&self) -> Vec<&Cmd> {
        match self {
            Action::Preflight(pf) => {
                let mut v: Vec<&Cmd> = pf.tools.iter().map(|t| &t.version).collect();
                for s in pf.tools.iter().filter_map(|t| t.supply.as_ref()) {
                    if let Some(d) = &s.download {
                        v.push(&d.fetch);
                        v.extend(d.unpack.iter());
                    }
                    v.extend(s.build.iter());
                }
                v.extend(pf.docker_daemon.iter());
                v.extend(pf.docker_start.iter().map(|d| &d.dockerd));
                v.extend(pf.guard.iter().flat_map(|g| g.kubeconfig.iter()));
                if let Some(c) = &pf.context {
                    v.extend([&c.list, &c.ready]);
                }
                v
            }
            Action::Run { cmd } | Action::Render { cmd, .. } | Action::Recipe { cmd, .. } => {
                vec![cmd]
            }
            Action::Deliver(d) => d.commands(),
            Action::NodePorts {
                services, access, ..
            } => match access {
                crate::providers::HostAccess::NodeAddress { address } => vec![services, address],
                crate::providers::HostAccess::Mapped { .. } => vec![services],
            },
            Action::VerifyLoaded {
                local_id, probe, ..
            } => {
                let mut v = vec![local_id];
                v.extend(probe.nodes.iter());
                v.push(&probe.per_node);
                v
            }
            Action::CreateCluster { cmd, node } => {
                let mut v = vec![cmd];
                if let Some(n) = node {
                    v.extend([&n.inspect, &n.pull, &n.build, &n.create]);
                }
                v
            }
            Action::Upgrade {
                cmd,
                jobs,
                pods,
                logs,
                rotate,
                ..
            } => {
                let mut v = vec![cmd, jobs, pods, logs];
                if let Some(r) = rotate {
                    v.extend([&r.status, &r.discover, &r.restart]);
                }
                v
            }
            Action::ReleaseGate {
                status, rollback, ..
            } => vec![status, rollback],
            Action::Rollout { track, rollback } => {
                let mut v = vec![
                    &track.workloads,
                    &track.pods,
                    &track.events,
                    &track.serving,
                    &track.logs,
                    &track.logs_previous,
                ];
                v.extend(rollback.iter());
                v
            }
            Action::Health {
                discover,
                pods,
                rollback,
                ..
            } => {
                let mut v = vec![discover, pods];
                v.extend(rollback.iter());
                v
            }
            Action::Smoke(c) => c.commands.iter().collect(),
            Action::Judge { .. } => vec![],
            Action::Watch(w) => {
                let mut v = vec![&w.services, &w.proxy];
                if let Some(crate::providers::HostAccess::NodeAddress { address }) = &w.access {
                    v.push(address);
                }
                v
            }
            Action::ClusterPresent { probe, .. } => probe.iter().collect(),
            Action::Status {
                status,
                discover,
                pods,
                ..
            } => vec![status, discover, pods],
            Action::Uninstall {
                status,
                uninstall,
                list_secrets,
                delete_secrets,
                ..
            } => vec![status, uninstall, list_secrets, delete_secrets],
            Action::DeleteCluster { delete, .. } => delete.iter().collect(),
            Action::Capacity { nodes, .. } => vec![nodes],
        }
    }
}

impl Plan {
    /// Every command the plan may spawn, guards and diagnosis included.
    pub fn commands(&self) -> Vec<&Cmd> {
        self.steps
            .iter()
            .flat_map(|s| {
                let mut v = s.skip_if.as_ref().map(Guard::commands).unwrap_or_default();
                v.extend(s.action.commands());
                v
            })
            .chain(self.on_failure.iter())
            .collect()
    }

    pub fn budget(&self, s: Stage) -> Duration {
        Duration::from_secs(
            self.budgets
                .get(&s)
                .copied()
                .unwrap_or(s.default_budget().as_secs()),
        )
    }
}

pub(crate) struct Planner<'a> {
    p: &'a Pipeline,
    o: &'a PlanOptions,
    context: String,
    images: Vec<ImagePlan>,
    steps: Vec<Step>,
}

/// Turn a pipeline into the plan for one job.
pub fn build(p: &Pipeline, o: &PlanOptions) -> Result<Plan, Error> {
    if let Some(name) = &o.release {
        if !p
            .releases
            .iter()
            .any(|r| &r.name == name || r.release_name() == name)
        {
            let known: Vec<&str> = p.releases.iter().map(|r| r.name.as_str()).collect();
            return Err(Error::usage(format!(
                "no release {name:?} in the pipeline (releases: {})",
                known.join(", ")
            )));
        }
    }
    let context = o
        .context
        .clone()
        .unwrap_or_else(|| p.cluster.kube_context());
    let mut pl = Planner {
        p,
        o,
        context,
        images: vec![],
        steps: vec![],
    };
    pl.images = p
        .images
        .iter()
        .map(|i| pl.image_plan(i))
        .collect::<Result<_, Error>>()?;
    for stage in o.job.stages() {
        match stage {
            Stage::Preflight => pl.preflight(),
            Stage::Cluster => pl.cluster(),
            Stage::Build => pl.build(),
            Stage::Load => pl.load(),
            Stage::Secrets => pl.secrets(),
            Stage::Deploy => pl.deploy()?,
            Stage::Rollout => pl.rollout(),
            Stage::Health => pl.health(),
            Stage::Smoke => pl.smoke(),
            Stage::Status => pl.status(),
            Stage::Down => pl.down(),
            Stage::Rollback => pl.rollback(),
            Stage::Render => pl.render()?,
            Stage::Logs => pl.logs(),
        }
    }
    pl.judge_watches();
    pl.plan_guard();
    let reach = pl.reach();
    let dev = (o.job == Job::Dev).then(|| pl.dev());
    let runs_helm = o
        .job
        .stages()
        .iter()
        .any(|s| matches!(s, Stage::Deploy | Stage::Down | Stage::Rollback));
    let helm = (runs_helm && !p.releases.is_empty()).then(|| HelmPlan {
        dialect: o.helm.clone(),
        decisions: p
            .releases
            .iter()
            .map(|r| {
                (
                    r.release_name().to_string(),
                    o.helm.decisions(&Planner::helm_flags(r)),
                )
            })
            .collect(),
    });
    // The job's stages, and the smoke stage when it only judges probes.
    let mut stages = o.job.stages().to_vec();
    for s in &pl.steps {
        if !stages.contains(&s.stage) {
            stages.push(s.stage);
        }
    }
    let on_failure = if runs_helm {
        p.releases
            .iter()
            .flat_map(|r| {
                let ns = pl.namespace(r);
                let rel = r.release_name();
                [
                    helm::status(rel, &ns, &pl.context),
                    helm::history(rel, &ns, &pl.context),
                ]
            })
            .collect()
    } else {
        vec![]
    };
    let plan = Plan {
        project: p.project.name.clone(),
        job: o.job,
        profile: p.profile.clone(),
        provider: p.cluster.provider,
        cluster: p.cluster.name.clone(),
        context: pl.context,
        images: pl.images,
        steps: pl.steps,
        budgets: stages
            .iter()
            .map(|s| (*s, p.timeouts.budget(*s).as_secs()))
            .collect(),
        reach,
        helm,
        on_failure,
        dev,
        selection: p.selection.clone(),
        parallel: o.parallel,
        local: o.local.clone(),
    };
    exposed::refuse_secrets(&plan, &p.secret_sources())?;
    Ok(plan)
}

impl<'a> Planner<'a> {
    /// Every `during_rollout` probe is judged: by its check's smoke step, or, in a
    /// job without a smoke stage (`deploy`), by a step of its own at the end. A probe
    /// that ran and was never judged would let failed requests pass unseen.
    fn judge_watches(&mut self) {
        let judged: Vec<String> = self
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Smoke(c) => Some(c.name.clone()),
                _ => None,
            })
            .collect();
        let unjudged: Vec<String> = self
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Watch(w) if !judged.contains(&w.check) => Some(w.check.clone()),
                _ => None,
            })
            .collect();
        for check in unjudged {
            let id = format!("judge/{check}");
            self.push(
                Stage::Smoke,
                id.clone(),
                format!("judge check {check}'s requests during the upgrade"),
                Action::Judge { check },
                None,
            );
            if let Some(s) = self.steps.last_mut() {
                s.group = Some(id);
            }
        }
    }

    fn push(
        &mut self,
        stage: Stage,
        id: String,
        title: String,
        action: Action,
        skip_if: Option<Guard>,
    ) {
        self.steps.push(Step {
            stage,
            id,
            title,
            action,
            skip_if,
            group: None,
            wave: 0,
        });
    }

    fn budget(&self, s: Stage) -> Duration {
        self.p.timeouts.budget(s)
    }

    fn rel(&self, path: &Path) -> String {
        path.display().to_string()
    }

    /// The releases this job is about: all, or the one named.
    fn releases(&self) -> impl DoubleEndedIterator<Item = &'a config::Release> + '_ {
        let only = self.o.release.clone();
        self.p.releases.iter().filter(move |r| {
            only.as_deref()
                .is_none_or(|n| r.name == n || r.release_name() == n)
        })
    }

    /// A release's helm settings that depend on the helm major.
    fn helm_flags(r: &config::Release) -> helm::ReleaseFlags {
        helm::ReleaseFlags {
            wait: r.wait,
            atomic: r.atomic,
            wait_strategy: r.wait_strategy,
            apply: r.apply,
            force_conflicts: r.force_conflicts(),
        }
    }

    /// `helm rollback` of a release, to the previous revision or to `to`.
    fn helm_rollback(&self, r: &config::Release, to: Option<&str>) -> Cmd {
        helm::rollback(
            &self.o.helm,
            &Self::helm_flags(r),
            (r.release_name(), &self.namespace(r), &self.context),
            to,
            r.timeout.0,
        )
    }

    fn namespace(&self, r: &config::Release) -> String {
        self.o
            .namespace
            .clone()
            .unwrap_or_else(|| self.p.namespace_of(r))
    }

    /// Replace `${images.NAME.FIELD}` with the planned values.
    fn resolve(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (name, field) in config::image_refs(s) {
            if let Some(i) = self.images.iter().find(|i| i.name == name) {
                let v = match field.as_str() {
                    "repository" => &i.repository,
                    "tag" => &i.tag,
                    _ => &i.reference,
                };
                out = out.replace(&format!("${{images.{name}.{field}}}"), v);
            }
        }
        out
    }

    /// How to reach what was deployed: mapped node ports, then a port-forward per
    /// service the smoke checks use.
    fn reach(&self) -> Vec<String> {
        if !matches!(self.o.job, Job::DeployLocal | Job::Dev) {
            return vec![];
        }
        let mut out = vec![];
        if self.p.cluster.provider == Provider::Kind {
            for m in &self.p.cluster.kind.port_mappings {
                out.push(format!(
                    "reach: http://{}:{} (kind node port {})",
                    m.listen_address, m.host_port, m.container_port
                ));
            }
        }
        for s in &self.steps {
            if let Action::Smoke(c) = &s.action {
                if let Some((service, port)) = c.spec.kind().service() {
                    let line = format!(
                        "reach {service}: kubectl --context {} -n {} port-forward service/{service} 8080:{port}",
                        c.context, c.namespace
                    );
                    if !out.contains(&line) {
                        out.push(line);
                    }
                }
            }
        }
        out
    }
}
