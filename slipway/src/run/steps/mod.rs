//! One file per kind of step: how it runs, given a small context — the executor,
//! the stage, its deadline, the cluster's provider settings — and what steps hand
//! on to later ones ([`Shared`]). What a probe's output means is the plan step's
//! to say (`plan::steps`); these files run commands and act on the verdicts.

mod capacity;
mod cluster_present;
mod create_cluster;
mod delete_cluster;
mod deliver;
pub mod guard;
mod health;
mod judge;
mod node_ports;
mod preflight;
mod recipe;
mod release_gate;
mod render;
mod rollout;
mod run;
mod smoke;
mod status;
mod uninstall;
mod upgrade;
mod verify_loaded;
mod watch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::probes::Probes;
use super::{rotate, smoke as smoke_run, watch as watch_run};
use crate::exec::{Executor, Failure, Output};
use crate::model::{Cmd, Error, Event, SecretInput, Stage};
use crate::plan::{self, Action, Plan, Step};
use crate::providers::{Cluster, ImageProbe};
use crate::tools::k8s;

/// What a step runs with.
pub struct Cx<'r> {
    pub ex: &'r Executor,
    pub stage: Stage,
    pub deadline: Instant,
    /// The cluster's settings: its provider.
    pub cluster: &'r Cluster,
    pub step: &'r Step,
    pub probes: &'r Probes,
    pub shared: &'r Shared,
}

/// What steps hand on to later steps of a run.
pub struct Shared {
    /// The pipeline's root (render stamps, the secret digest key).
    root: PathBuf,
    /// The kube context the plan is for.
    context: String,
    forwards: smoke_run::Forwards,
    /// `during_rollout` probes, from the deploy stage to their check's smoke step.
    watches: Mutex<HashMap<String, watch_run::Running>>,
    /// Set by `status`/`down` when the cluster does not exist.
    cluster_absent: Mutex<bool>,
    /// The helm version preflight found.
    pub helm_found: Mutex<Option<semver::Version>>,
    /// The key Secrets' digests are made with (read or made on first use).
    digest_key: OnceLock<Result<rotate::Key, String>>,
    /// The rollout's last read per release (its pods), for health.
    last_read: Mutex<HashMap<String, LastRead>>,
}

/// How long the rollout's last read may stand in for health's own.
const REUSE_WITHIN: Duration = Duration::from_secs(5);

/// The namespace's pods as the rollout read them last, kept for the health stage:
/// read again only when older than [`REUSE_WITHIN`]. (Health lists the workloads
/// itself: its listing is not the rollout's, which has Jobs and autoscalers.)
pub struct LastRead {
    pods: String,
    at: Instant,
    /// How old it was when health took it.
    age: Duration,
}

impl LastRead {
    fn said(&self) -> String {
        format!(
            "pods from the rollout's read of {:.1}s before (not read again)",
            self.age.as_secs_f64()
        )
    }
}

impl Shared {
    pub fn new(plan: &Plan) -> Shared {
        Shared {
            root: plan.root.clone(),
            context: plan.context.clone(),
            forwards: smoke_run::Forwards::default(),
            watches: Mutex::new(HashMap::new()),
            cluster_absent: Mutex::new(false),
            helm_found: Mutex::new(None),
            digest_key: OnceLock::new(),
            last_read: Mutex::new(HashMap::new()),
        }
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The registration: each kind of step, to the file that runs it.
pub fn execute(cx: &Cx, action: &Action) -> Result<(), Error> {
    match action {
        Action::Preflight(s) => preflight::run(cx, s),
        Action::Capacity(s) => capacity::run(cx, s),
        Action::Run(s) => run::run(cx, s),
        Action::Deliver(s) => deliver::run(cx, s),
        Action::Recipe(s) => recipe::run(cx, s),
        Action::VerifyLoaded(s) => verify_loaded::run(cx, s),
        Action::CreateCluster(s) => create_cluster::run(cx, s),
        Action::ReleaseGate(s) => release_gate::run(cx, s),
        Action::Rollout(s) => rollout::run(cx, s),
        Action::Health(s) => health::run(cx, s),
        Action::Smoke(s) => smoke::run(cx, s),
        Action::Watch(s) => watch::run(cx, s),
        Action::Judge(s) => judge::run(cx, s),
        Action::NodePorts(s) => node_ports::run(cx, s),
        Action::ClusterPresent(s) => cluster_present::run(cx, s),
        Action::Status(s) => status::run(cx, s),
        Action::Uninstall(s) => uninstall::run(cx, s),
        Action::Upgrade(s) => upgrade::run(cx, s),
        Action::Render(s) => render::run(cx, s),
        Action::DeleteCluster(s) => delete_cluster::run(cx, s),
    }
}

impl Cx<'_> {
    fn note(&self, message: impl Into<String>) {
        self.ex.events.emit(Event::Note {
            stage: self.stage,
            step: Some(self.step.id.clone()),
            message: message.into(),
        });
    }

    fn redact(&self) -> impl Fn(&str) -> String + '_ {
        |s| self.ex.redact(s)
    }

    /// A guard's probe, through the cache.
    fn probe(&self, cmd: &Cmd) -> Result<Output, Error> {
        self.probes.get(self.ex, self.stage, cmd, self.deadline)
    }

    /// A read of the namespace that other steps may be making now: shared.
    fn read(&self, cmd: &Cmd, what: &str) -> Result<Output, Error> {
        self.ex
            .read_shared(self.stage, cmd, Some(self.deadline))
            .map_err(|e| e.into_error(self.stage, what))
    }

    /// Run a command to its end within the stage's deadline.
    fn run(&self, cmd: &Cmd, what: &str) -> Result<Output, Error> {
        self.ex
            .run(self.stage, cmd, Some(self.deadline))
            .map_err(|e| e.into_error(self.stage, what))
    }

    /// Run a step's command; a failure carries the step's hint (for a cluster that
    /// could not pull its node image, the offline one).
    fn run_step_cmd(&self, cmd: &Cmd, deadline: Instant) -> Result<(), Error> {
        self.run_step_cmd_output(cmd, deadline).map(drop)
    }

    /// [`Cx::run_step_cmd`], and what the command printed.
    fn run_step_cmd_output(&self, cmd: &Cmd, deadline: Instant) -> Result<Output, Error> {
        let (stage, step) = (self.stage, self.step);
        self.ex.run(stage, cmd, Some(deadline)).map_err(|e| {
            let interrupted = e.failure == Failure::Interrupted;
            let err = e.into_error(stage, &step.title);
            if interrupted {
                return err;
            }
            let pull = stage == Stage::Cluster
                && err
                    .tail
                    .iter()
                    .any(|l| plan::steps::create_cluster::is_pull_failure(l));
            err.or_hint(if pull {
                Some(PULL_HINT.into())
            } else {
                hint_for_step(step)
            })
        })
    }

    /// On a failure (not an interruption), run `rollback` and say how it went.
    fn rollback_on_err(&self, r: Result<(), Error>, rollback: Option<&Cmd>) -> Result<(), Error> {
        let Err(mut e) = r else { return Ok(()) };
        if let (Some(rb), false) = (rollback, e.interrupted) {
            let deadline = self.deadline.max(Instant::now() + rb.timeout);
            match self.ex.run(self.stage, rb, Some(deadline)) {
                Ok(_) => e
                    .message
                    .push_str(&format!("; rolled back with `{}`", rb.display())),
                Err(re) => e
                    .message
                    .push_str(&format!("; the rollback failed too: {re}")),
            }
        }
        Err(e)
    }

    /// The release's workloads.
    fn discover(&self, release: &str, discover: &Cmd) -> Result<Vec<k8s::WorkloadState>, Error> {
        let out = self.read(discover, &format!("list the workloads of {release}"))?;
        plan::steps::workloads(self.stage, release, discover, &out, &self.redact())
    }

    /// The pods of one workload, through a `{SELECTOR}` template.
    fn pods(&self, template: &Cmd, w: &k8s::WorkloadState) -> Result<Vec<k8s::PodState>, Error> {
        let what = format!("list the pods of {}", w.id());
        let cmd = template.fill(&[("SELECTOR", &w.selector_arg())]);
        let out = self.run(&cmd, &what)?;
        plan::steps::pods(self.stage, &what, &cmd, &out, &self.redact())
    }

    /// Every pod of the namespace.
    fn all_pods(&self, cmd: &Cmd) -> Result<Vec<k8s::PodState>, Error> {
        let what = "list the namespace's pods";
        let out = self.read(cmd, what)?;
        plan::steps::pods(self.stage, what, cmd, &out, &self.redact())
    }

    /// The local image's ID and how many nodes hold it, when every node of the
    /// cluster does (`None` otherwise). `cached`: answers read ahead or earlier in
    /// the stage may serve (a guard); else every command runs now (after a load).
    fn image_on_nodes(
        &self,
        local_id: &Cmd,
        probe: &ImageProbe,
        cached: bool,
    ) -> Result<Option<(String, usize)>, Error> {
        let provider = self.cluster.provider();
        let ask = |c: &Cmd| -> Result<Output, Error> {
            if cached {
                self.probe(c)
            } else {
                self.ex
                    .probe(self.stage, c, Some(self.deadline))
                    .map_err(|e| e.into_error(self.stage, "look for the image on the nodes"))
            }
        };
        let local = ask(local_id)?;
        if !local.ok() {
            return Ok(None);
        }
        let id = local.stdout.trim().to_string();
        let nodes = match &probe.nodes {
            Some(list) => provider.node_names(&ask(list)?.stdout),
            None => vec![String::new()],
        };
        if nodes.is_empty() {
            return Ok(None);
        }
        for n in &nodes {
            let o = ask(&probe.per_node.fill(&[("NODE", n)]))?;
            if !o.ok() || !provider.holds_image(&o.stdout, &id) {
                return Ok(None);
            }
        }
        Ok(Some((id, nodes.len())))
    }

    /// The keyed digests of `secrets` (`NAME=HEX,…`), and whether their key was made
    /// just now.
    fn secret_digests(&self, secrets: &[SecretInput]) -> Result<(String, bool), Error> {
        let key = self
            .shared
            .digest_key
            .get_or_init(|| rotate::key(&self.shared.root))
            .as_ref()
            .map_err(|e| {
                Error::new(self.stage, format!("cannot use the secret digest key: {e}"))
                    .hint("it keeps the digests of Secrets' values (never the values); delete the file named and rerun")
            })?;
        Ok((
            rotate::digests(self.ex, self.stage, key, secrets)?,
            key.created,
        ))
    }

    /// One container's output through a `kubectl logs` template (`{POD}`,
    /// `{CONTAINER}`): kept masked as evidence (`logs-POD-CONTAINER{suffix}.txt`), its
    /// last 20 lines returned.
    fn container_logs(
        &self,
        tmpl: &Cmd,
        pod: &str,
        container: &str,
        suffix: &str,
        deadline: Instant,
    ) -> Result<Vec<String>, crate::exec::ExecError> {
        let cmd = tmpl.fill(&[("POD", pod), ("CONTAINER", container)]);
        let out = self.ex.run(self.stage, &cmd, Some(deadline))?;
        let text = self.ex.redact(&out.stdout);
        let lines = crate::model::last_lines(&text, 20);
        self.ex.events.emit(Event::Evidence {
            name: format!("logs-{pod}-{container}{suffix}.txt"),
            text,
        });
        Ok(lines)
    }

    fn keep_last_read(&self, release: &str, pods: &str) {
        let read = LastRead {
            pods: pods.to_string(),
            at: Instant::now(),
            age: Duration::ZERO,
        };
        lock(&self.shared.last_read).insert(release.to_string(), read);
    }

    /// The rollout's last read of `release`, once, while it is fresh.
    fn reuse_last_read(&self, release: &str) -> Option<LastRead> {
        lock(&self.shared.last_read)
            .remove(release)
            .map(|r| LastRead {
                age: r.at.elapsed(),
                ..r
            })
            .filter(|r| r.age < REUSE_WITHIN)
    }

    /// What a Secret's `slipway.dev/digest` annotation says when it holds these
    /// values: the keyed digest of its keys and values, and a digest of its type and
    /// labels (so a changed label is applied too).
    fn secret_annotation(&self, s: &SecretInput) -> Result<String, Error> {
        let (values, _) = self.secret_digests(std::slice::from_ref(s))?;
        Ok(rotate::annotation(&values, s))
    }

    fn absent(&self) -> bool {
        *lock(&self.shared.cluster_absent)
    }
}

const PULL_HINT: &str = "the cluster's node image could not be pulled (this machine cannot reach its registry): let slipway build its offline node image (it does unless --no-provision, SLIPWAY_NO_PROVISION or [tools] provision = false), or set cluster.kind.node_image to an image this machine has";

/// What to do next when a plain command step fails, by stage.
fn hint_for_step(step: &Step) -> Option<String> {
    Some(match step.stage {
        Stage::Cluster => "read the tool's output above; `kind create cluster` needs a working Docker with privileged containers".into(),
        Stage::Build if step.id.starts_with("pre-build/") => "the pre-build command failed: run it by hand (see `cargo xtask plan`)".into(),
        Stage::Build => "fix the Dockerfile or build context; `cargo xtask plan` prints the exact docker command".into(),
        Stage::Load => "is the cluster running? `kind get clusters` / `minikube status`; rerun with --force to reload".into(),
        Stage::Secrets => "check the kube context answers and that you may create Secrets in the namespace".into(),
        Stage::Deploy => "helm failed: `helm lint` the chart, and check the values; rerunning is safe".into(),
        _ => return None,
    })
}
