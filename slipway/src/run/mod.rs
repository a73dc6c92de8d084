//! Executing a plan: stage by stage, each within its time budget, guards decided by
//! their probes, every command from the plan's data (placeholders filled here) and
//! run by the one executor. A failure is an [`Error`] that says what failed, the
//! command, the tail of its output and what to do next.

mod build_waves;
mod delivery;
pub mod facts;
pub mod lock;
mod ops;
mod preflight;
mod private;
mod provision;
mod rotate;
mod seen;
mod serving;

pub use provision::{adopt_provisioned, oci_capfilter};
pub mod self_check;
mod smoke;
pub use smoke::forward_on;
mod capacity;
pub mod tool_cache;
pub mod track;
mod watch;
mod waves;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{OnPending, Pipeline};
use crate::exec::{Executor, Failure, Output};
use crate::model::{ms, Cmd, Error, Event, Outcome, Stage, TAIL_LINES};
use crate::plan::{Action, Guard, Plan, Step};
use crate::tools::{helm, k8s, kubectl};

pub struct Runner<'a> {
    pub ex: &'a Executor,
    pub pipeline: &'a Pipeline,
    pub plan: &'a Plan,
    probes: Mutex<HashMap<String, Output>>,
    forwards: smoke::Forwards,
    /// `during_rollout` probes, from the deploy stage to their check's smoke step.
    watches: Mutex<HashMap<String, watch::Running>>,
    /// Set by `status`/`down` when the cluster does not exist.
    cluster_absent: Mutex<bool>,
    /// The helm version preflight found.
    helm_found: Mutex<Option<semver::Version>>,
    /// Guard probes run all at once before the stages (see [`Runner::prefetch`]).
    prefetched: Mutex<HashMap<String, Output>>,
    /// Set once a guarded step runs (it may change what the probes saw): from then on
    /// every probe is asked again.
    stale: std::sync::atomic::AtomicBool,
    /// The key Secrets' digests are made with (read or made on first use).
    digest_key: std::sync::OnceLock<Result<rotate::Key, String>>,
    /// The rollout's last read per release (workloads, pods), for health.
    last_read: Mutex<HashMap<String, track::LastRead>>,
}

impl<'a> Runner<'a> {
    pub fn new(ex: &'a Executor, pipeline: &'a Pipeline, plan: &'a Plan) -> Runner<'a> {
        Runner {
            ex,
            pipeline,
            plan,
            probes: Mutex::new(HashMap::new()),
            forwards: smoke::Forwards::default(),
            watches: Mutex::new(HashMap::new()),
            cluster_absent: Mutex::new(false),
            helm_found: Mutex::new(None),
            prefetched: Mutex::new(HashMap::new()),
            stale: std::sync::atomic::AtomicBool::new(false),
            digest_key: std::sync::OnceLock::new(),
            last_read: Mutex::new(HashMap::new()),
        }
    }

    /// Run every guard probe of the plan at once (they are independent reads), so a
    /// run where nothing changed pays for the slowest probe, not for their sum. The
    /// answers serve the guards until a guarded step runs.
    pub fn prefetch(&self, deadline: Instant) {
        // Node lists are read by the per-node image checks below.
        let node_lists: Vec<String> = self
            .plan
            .steps
            .iter()
            .filter_map(|s| match &s.skip_if {
                Some(Guard::ImageOnCluster { probe, .. }) => probe.nodes.as_ref().map(Cmd::display),
                _ => None,
            })
            .collect();
        let mut cmds: Vec<(Stage, &Cmd)> = vec![];
        for s in self
            .plan
            .steps
            .iter()
            .filter(|s| s.stage != Stage::Preflight)
        {
            for c in s.skip_if.iter().flat_map(|g| g.commands()) {
                if c.placeholders().is_empty()
                    && !node_lists.contains(&c.display())
                    && !cmds.iter().any(|(_, x)| x.display() == c.display())
                {
                    cmds.push((s.stage, c));
                }
            }
        }
        if cmds.len() < 2 {
            return;
        }
        // First the cluster: when it is not up, the stages will change everything
        // and there is nothing worth reading ahead.
        let cluster_up = self.plan.steps.iter().find_map(|s| match &s.skip_if {
            Some(Guard::ClusterUp { probe, .. }) => Some(probe),
            _ => None,
        });
        // A cluster slipway does not manage is not read ahead (its guards are few).
        let Some(probe) = cluster_up else { return };
        {
            let Ok(out) = self.ex.probe(Stage::Cluster, probe, Some(deadline)) else {
                return;
            };
            let c = &self.pipeline.cluster;
            let up = c.provider().is_up(c, out.code, &out.stdout) == Ok(true);
            self.prefetched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(probe.display(), out);
            if !up {
                return;
            }
            cmds.retain(|(_, c)| c.display() != probe.display());
        }
        let fetch = |stage: Stage, c: &Cmd| {
            if let Ok(out) = self.ex.probe(stage, c, Some(deadline)) {
                self.prefetched
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(c.display(), out);
            }
        };
        std::thread::scope(|scope| {
            for (stage, c) in cmds {
                scope.spawn(move || fetch(stage, c));
            }
            // Per-node image checks, once the node list is known.
            for s in &self.plan.steps {
                if let Some(Guard::ImageOnCluster { probe, .. }) = &s.skip_if {
                    let (stage, probe) = (s.stage, probe);
                    scope.spawn(move || {
                        let nodes = match &probe.nodes {
                            Some(list) => {
                                let Ok(out) = self.ex.probe(stage, list, Some(deadline)) else {
                                    return;
                                };
                                let names =
                                    self.pipeline.cluster.provider().node_names(&out.stdout);
                                self.prefetched
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .insert(list.display(), out);
                                names
                            }
                            None => vec![String::new()],
                        };
                        std::thread::scope(|inner| {
                            for n in nodes {
                                inner.spawn(move || {
                                    fetch(stage, &probe.per_node.fill(&[("NODE", &n)]))
                                });
                            }
                        });
                    });
                }
            }
        });
    }

    /// The helm preflight found, when the plan's helm commands were made for another
    /// (or an assumed) version: the caller re-plans with it before anything else runs.
    pub fn helm_replan(&self) -> Option<semver::Version> {
        let found = self
            .helm_found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        let planned = self.plan.helm.as_ref()?;
        (planned.dialect.version != Some(found.to_string())).then_some(found)
    }

    fn note(&self, stage: Stage, message: impl Into<String>) {
        self.ex.events.emit(Event::Note {
            stage,
            message: message.into(),
        });
    }

    /// Run every stage of the plan in order; stop at the first failure.
    pub fn execute(&self) -> Result<(), Error> {
        self.execute_stages(|_| true)
    }

    /// Run the plan's stages that `which` selects, in order.
    pub fn execute_stages(&self, which: impl Fn(Stage) -> bool) -> Result<(), Error> {
        let mut stages: Vec<Stage> = self.plan.steps.iter().map(|s| s.stage).collect();
        stages.dedup();
        stages.retain(|s| which(*s));
        for stage in stages {
            let steps: Vec<&Step> = self
                .plan
                .steps
                .iter()
                .filter(|s| s.stage == stage)
                .collect();
            self.ex.events.emit(Event::StageStarted { stage });
            // Probes are cached within a stage: what a guard saw stays true until the
            // stage's own commands run after it.
            self.probes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            let started = Instant::now();
            let budget = self.plan.budget(stage);
            let deadline = started + budget;
            let mut result = self.run_groups(&steps, deadline);
            if let Err(e) = &mut result {
                if e.timed_out && Instant::now() + Duration::from_millis(500) >= deadline {
                    e.hint = Some(format!(
                        "the {stage} stage's time budget ({}) ran out; raise [timeouts] {stage} in pipeline.toml if the work is just slow",
                        humantime::format_duration(budget),
                    ));
                }
            }
            self.ex.events.emit(Event::StageFinished {
                stage,
                result: if result.is_err() {
                    Outcome::Failed
                } else {
                    Outcome::Ok
                },
                duration_ms: ms(started.elapsed()),
                commands: self.ex.commands_in(stage),
            });
            result?;
        }
        Ok(())
    }

    /// Waves one after another; within one, steps of different groups run at the
    /// same time, each group's steps (and ungrouped steps) in order.
    fn run_groups(&self, steps: &[&Step], deadline: Instant) -> Result<(), Error> {
        if let Some(done) = steps
            .first()
            .and_then(|s| self.run_graph(s.stage, steps, deadline))
        {
            return done;
        }
        let mut waves: Vec<u32> = steps.iter().map(|s| s.wave).collect();
        waves.sort_unstable();
        waves.dedup();
        for w in waves {
            let wave: Vec<&Step> = steps.iter().copied().filter(|s| s.wave == w).collect();
            self.run_wave(&wave, deadline)?;
        }
        Ok(())
    }

    fn run_wave(&self, steps: &[&Step], deadline: Instant) -> Result<(), Error> {
        let mut groups: Vec<(Option<&str>, Vec<&Step>)> = vec![];
        for s in steps {
            match groups
                .iter_mut()
                .find(|(g, _)| g.is_some() && *g == s.group.as_deref())
            {
                Some((_, v)) => v.push(s),
                None => groups.push((s.group.as_deref(), vec![s])),
            }
        }
        if groups.len() < 2 || groups.iter().any(|(g, _)| g.is_none()) {
            return steps.iter().try_for_each(|s| self.step(s, deadline));
        }
        let stage_of = steps[0].stage;
        std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .map(|(_, g)| {
                    scope.spawn(move || g.iter().try_for_each(|s| self.step(s, deadline)))
                })
                .collect();
            let results: Vec<Result<(), Error>> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::new(stage_of, "a step's thread panicked")))
                })
                .collect();
            results.into_iter().collect()
        })
    }

    fn step(&self, step: &Step, deadline: Instant) -> Result<(), Error> {
        let stage = step.stage;
        if self.ex.cancelled() {
            return Err(Error::interrupted(Some(stage), "interrupted"));
        }
        if let Some(g) = &step.skip_if {
            if let Some(reason) = self.guard(stage, g, deadline)? {
                self.ex.events.emit(Event::StepSkipped {
                    stage,
                    step: step.id.clone(),
                    reason,
                });
                return Ok(());
            }
            // This step changes something a later guard may look at (rendering a
            // chart changes nothing).
            if !matches!(g, Guard::Rendered { .. }) {
                self.stale.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        self.ex.events.emit(Event::StepStarted {
            stage,
            step: step.id.clone(),
            title: step.title.clone(),
        });
        let started = Instant::now();
        match &step.action {
            Action::CreateCluster { cmd, node } => {
                let mut deadline = deadline;
                let cmd = match node {
                    Some(n) => {
                        let took = Instant::now();
                        let offline = provision::node_image(self.ex, n, deadline)?;
                        // A node image build has its own timeout, not the stage's.
                        deadline += took.elapsed();
                        if offline {
                            &n.create
                        } else {
                            cmd
                        }
                    }
                    None => cmd,
                };
                self.run_cmd(stage, step, cmd, deadline)?;
            }
            Action::Run { cmd } => self.run_cmd(
                stage,
                step,
                &*self.with_secret_digest(stage, cmd)?,
                deadline,
            )?,
            Action::Deliver(d) => self.deliver(stage, step, d, deadline)?,
            Action::Recipe { recipe, cmd } => {
                let r = crate::tools::provision::recipe_named(recipe)
                    .ok_or_else(|| Error::new(stage, format!("no recipe named {recipe}")))?;
                let cache = crate::tools::provision::cache_root().ok_or_else(|| {
                    Error::new(stage, "HOME is not set: no cache for slipway's recipes")
                })?;
                provision::materialize(r, &cache)
                    .map_err(|e| Error::new(stage, format!("cannot write recipe {recipe}: {e}")))?;
                self.run_cmd(stage, step, cmd, deadline)?
            }
            Action::VerifyLoaded {
                reference,
                local_id,
                probe,
            } => {
                let c = &self.pipeline.cluster;
                match self.image_on_nodes(stage, local_id, probe, deadline, false)? {
                    Some((id, nodes)) => self.note(
                        stage,
                        format!("{reference} ({}) is on all {nodes} node(s)", short_id(&id)),
                    ),
                    None => {
                        return Err(Error::new(
                            stage,
                            format!(
                                "{reference} is not on the nodes of {} after the load, though the load command succeeded",
                                c.provider().describe(c)
                            ),
                        )
                        .hint("the load command exits 0 even when it fails (minikube image load does): check the image exists in Docker (`docker image inspect`) and that the node has disk space; rerun with --force"))
                    }
                }
            }
            Action::Upgrade {
                release,
                cmd,
                jobs,
                pods,
                logs,
                rotate,
            } => {
                // A Secret that changed since the deployed revision: recorded with
                // this one, and its pods replaced after the upgrade.
                let (cmd, restart) = match rotate {
                    None => (cmd.clone(), None),
                    Some(r) => {
                        let (now, key) = self.secret_digests(stage, &r.secrets)?;
                        let before = self.probe(stage, &r.status, deadline)?;
                        let restart = helm::parse_status(&before.stdout)
                            .filter(|_| before.ok())
                            .and_then(|s| {
                                let names = rotate::changed(s.secrets(), &now);
                                (!names.is_empty())
                                    .then(|| rotate::reason(&names, s.secrets(), key))
                            });
                        (cmd.fill(&[("SECRETS", &now)]), restart.map(|why| (r, why)))
                    }
                };
                let cmd = &cmd;
                if let Err(e) = self.ex.run(stage, cmd, Some(deadline)) {
                    let interrupted = e.failure == Failure::Interrupted;
                    let mut err = e.into_error(stage, &step.title);
                    if interrupted {
                        err.hint = Some(format!(
                            "helm was given time to record release {release} as failed rather than leave it pending; rerun to continue (a release left pending is reported first, or rolled back with on_pending = \"rollback\")"
                        ));
                    } else if let Some(manager) = conflict_manager(&err.tail) {
                        err.message.push_str(&format!(
                            " — a field helm applies was changed by \"{manager}\" (server-side apply conflict)"
                        ));
                        err.hint = Some(format!(
                            "something other than helm (\"{manager}\", e.g. `kubectl set`/`edit`) changed a field of the release: let helm take it back with force_conflicts = true (the default with apply = \"server-side\"), or undo the change"
                        ));
                    } else {
                        self.hook_failures(stage, jobs, pods, logs, &mut err, deadline);
                        err = err.or_hint(hint_for_step(step));
                    }
                    return Err(err);
                }
                seen::upgraded(self.ex, release);
                if let Some((r, why)) = restart {
                    self.restart(stage, release, r, &why, deadline)?;
                }
            }
            Action::Render {
                release,
                chart,
                cmd,
                digest,
                stamp,
            } => self
                .render(stage, release, chart, cmd, deadline)
                .map(|manifests| {
                    capacity::save(&self.pipeline.root, stamp, &manifests);
                    // Best effort: without the stamp the next run only renders again.
                    let stamp = self.pipeline.root.join(stamp);
                    if let Some(dir) = stamp.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let _ = std::fs::write(stamp, digest);
                })?,
            Action::Capacity {
                nodes,
                requests,
                strict,
            } => self.capacity(nodes, requests, *strict, deadline)?,
            Action::Preflight(pf) => {
                let found = preflight::run(self.ex, &self.pipeline.cluster, pf, deadline)?;
                *self.helm_found.lock().unwrap_or_else(|e| e.into_inner()) = found.helm;
            }
            Action::ReleaseGate {
                release,
                status,
                on_pending,
                rollback,
            } => self.gate(stage, release, status, *on_pending, rollback, deadline)?,
            Action::Rollout { track, rollback } => {
                let r = self.track(stage, track, deadline);
                self.rollback_on_err(stage, r, rollback.as_ref(), deadline)?
            }
            Action::Health {
                release,
                namespace,
                context,
                discover,
                pods,
                rollback,
            } => {
                let r = self.health(stage, release, namespace, context, discover, pods, deadline);
                self.rollback_on_err(stage, r, rollback.as_ref(), deadline)?
            }
            Action::Watch(w) => {
                let running = watch::start(self.ex, w, deadline)?;
                self.watches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(w.check.clone(), running);
            }
            Action::Judge { check } => {
                let running = self
                    .watches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(check);
                if let Some(r) = running {
                    watch::finish(self.ex, check, r)?
                }
            }
            Action::Smoke(check) => {
                let running = self
                    .watches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&check.name);
                let judged = running.map_or(Ok(()), |r| watch::finish(self.ex, &check.name, r));
                smoke::run_check(self.ex, &self.forwards, check, deadline)?;
                judged?
            }
            Action::NodePorts {
                namespace,
                releases,
                services,
                access,
            } => smoke::node_ports(self.ex, namespace, releases, services, access, deadline)?,
            Action::ClusterPresent { describe, probe } => {
                self.cluster_present(stage, describe, probe.as_ref(), deadline)?
            }
            Action::Status { .. } => self.status(stage, &step.action, deadline)?,
            Action::Uninstall { .. } => self.uninstall(stage, &step.action, deadline)?,
            Action::DeleteCluster { describe, delete } => {
                self.delete_cluster(stage, describe, delete.as_ref(), deadline)?
            }
        }
        self.ex.events.emit(Event::StepFinished {
            stage,
            step: step.id.clone(),
            duration_ms: ms(started.elapsed()),
        });
        Ok(())
    }

    /// Run a probe once per stage (until a command changes something).
    /// Run a step's command; a failure carries the step's hint (for a cluster that
    /// could not pull its node image, the offline one).
    fn run_cmd(
        &self,
        stage: Stage,
        step: &Step,
        cmd: &Cmd,
        deadline: Instant,
    ) -> Result<(), Error> {
        self.run_cmd_output(stage, step, cmd, deadline).map(drop)
    }

    /// [`Runner::run_cmd`], and what the command printed.
    fn run_cmd_output(
        &self,
        stage: Stage,
        step: &Step,
        cmd: &Cmd,
        deadline: Instant,
    ) -> Result<Output, Error> {
        self.ex.run(stage, cmd, Some(deadline)).map_err(|e| {
            let interrupted = e.failure == Failure::Interrupted;
            let err = e.into_error(stage, &step.title);
            if interrupted {
                return err;
            }
            let pull = stage == Stage::Cluster && err.tail.iter().any(|l| is_pull_failure(l));
            err.or_hint(if pull {
                Some(PULL_HINT.into())
            } else {
                hint_for_step(step)
            })
        })
    }

    fn probe(&self, stage: Stage, cmd: &Cmd, deadline: Instant) -> Result<Output, Error> {
        let key = cmd.display();
        if let Some(o) = self
            .probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(o.clone());
        }
        if !self.stale.load(std::sync::atomic::Ordering::SeqCst) {
            if let Some(o) = self
                .prefetched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .cloned()
            {
                self.probes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, o.clone());
                return Ok(o);
            }
        }
        let out = self
            .ex
            .probe(stage, cmd, Some(deadline))
            .map_err(|e| e.into_error(stage, "probe"))?;
        self.probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, out.clone());
        Ok(out)
    }

    /// The local image's ID and how many nodes hold it, when every node of the
    /// cluster does (`None` otherwise). `cached`: answers read ahead or earlier in
    /// the stage may serve (a guard); else every command runs now (after a load).
    fn image_on_nodes(
        &self,
        stage: Stage,
        local_id: &Cmd,
        probe: &crate::providers::ImageProbe,
        deadline: Instant,
        cached: bool,
    ) -> Result<Option<(String, usize)>, Error> {
        let provider = self.pipeline.cluster.provider();
        let ask = |c: &Cmd| -> Result<Output, Error> {
            if cached {
                self.probe(stage, c, deadline)
            } else {
                self.ex
                    .probe(stage, c, Some(deadline))
                    .map_err(|e| e.into_error(stage, "look for the image on the nodes"))
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

    /// `Some(reason)` when the guarded step can be skipped.
    fn guard(&self, stage: Stage, g: &Guard, deadline: Instant) -> Result<Option<String>, Error> {
        let cluster = &self.pipeline.cluster;
        let provider = cluster.provider();
        Ok(match g {
            Guard::Always { reason } => Some(reason.clone()),
            Guard::Rendered {
                release,
                digest,
                stamp,
                requires,
            } => (std::fs::read_to_string(self.pipeline.root.join(stamp))
                .is_ok_and(|s| s.trim() == digest)
                && requires
                    .as_ref()
                    .is_none_or(|r| self.pipeline.root.join(r).exists()))
            .then(|| format!("{release} rendered with these inputs before (digest {digest})")),
            Guard::ClusterUp { describe, probe } => {
                let out = self.probe(stage, probe, deadline)?;
                let up = provider
                    .is_up(cluster, out.code, &out.stdout)
                    .map_err(|e| {
                        Error {
                            command: Some(self.ex.redact(&probe.display())),
                            tail: crate::model::last_lines(
                                &self.ex.redact(&out.stderr),
                                TAIL_LINES,
                            ),
                            ..Error::new(
                                stage,
                                format!("cannot tell whether {describe} is up: {e}"),
                            )
                        }
                        .hint("is Docker running? `docker info` should answer")
                    })?;
                up.then(|| format!("{describe} is up"))
            }
            Guard::RegistryAdvertised { host, probe } => {
                let out = self.probe(stage, probe, deadline)?;
                match kubectl::parse_registry_host(&out.stdout) {
                    _ if !out.ok() => None,
                    None => None,
                    Some(h) if h == *host => registry_answers(host, self.ex.signals()).then(|| {
                        format!("the cluster advertises registry {host} (KEP-1755) and it answers")
                    }),
                    Some(h) => {
                        let (ns, name) = kubectl::REGISTRY_HOSTING;
                        return Err(Error::new(
                            stage,
                            format!("the cluster advertises registry {h} (ConfigMap {ns}/{name}), not {host}: its nodes may not pull from {host}"),
                        )
                        .hint(format!("push to the advertised one: set cluster.kind.registry = \"{h}\" in pipeline.toml")));
                    }
                }
            }
            Guard::SecretCurrent { secret, probe } => {
                self.secret_current(stage, secret, probe, deadline)?
            }
            Guard::NamespaceExists { namespace, probe } => {
                let out = self.probe(stage, probe, deadline)?;
                (out.ok() && out.stdout.trim() == "Active")
                    .then(|| format!("namespace {namespace} exists"))
            }
            Guard::ImageBuilt { reference, probe } => {
                let out = self.probe(stage, probe, deadline)?;
                out.ok()
                    .then(|| format!("{reference} is already built ({})", short_id(&out.stdout)))
            }
            Guard::ImagesBuilt { references, probes } => {
                self.images_built(stage, references, probes, deadline)?
            }
            Guard::ImageOnCluster {
                reference,
                local_id,
                probe,
            } => self
                .image_on_nodes(stage, local_id, probe, deadline, true)?
                .map(|(id, nodes)| {
                    format!(
                        "{reference} ({}) is already on all {nodes} node(s) of {}",
                        short_id(&id),
                        provider.describe(cluster),
                    )
                }),
            Guard::ReleaseCurrent {
                release,
                digest,
                probe,
                secrets,
            } => {
                let out = self.probe(stage, probe, deadline)?;
                let Some(s) = helm::parse_status(&out.stdout)
                    .filter(|s| s.status == "deployed" && s.digest() == Some(digest))
                else {
                    return Ok(None);
                };
                if !secrets.is_empty() {
                    let (now, key) = self.secret_digests(stage, secrets)?;
                    let names = rotate::changed(s.secrets(), &now);
                    if !names.is_empty() {
                        self.note(
                            stage,
                            format!(
                                "release {release} revision {} has these chart files, values and images, but {}: upgrading it and restarting its workloads",
                                s.version,
                                rotate::reason(&names, s.secrets(), key)
                            ),
                        );
                        return Ok(None);
                    }
                }
                Some(format!("release {release} revision {} already has these chart files, values and images (digest {digest}){}; --force redeploys", s.version, if secrets.is_empty() { "" } else { " and secrets" }))
            }
        })
    }

    /// The keyed digests of `secrets` (`NAME=HEX,…`), and the key they were made with.
    fn secret_digests(
        &self,
        stage: Stage,
        secrets: &[crate::model::SecretInput],
    ) -> Result<(String, &rotate::Key), Error> {
        let key = self
            .digest_key
            .get_or_init(|| rotate::key(&self.pipeline.root))
            .as_ref()
            .map_err(|e| {
                Error::new(stage, format!("cannot use the secret digest key: {e}"))
                    .hint("it keeps the digests of Secrets' values (never the values); delete the file named and rerun")
            })?;
        Ok((rotate::digests(self.ex, stage, key, secrets)?, key))
    }

    /// `kubectl rollout restart` every Deployment, StatefulSet and DaemonSet of the
    /// release: their pods read the changed Secret when they start.
    fn restart(
        &self,
        stage: Stage,
        release: &str,
        r: &crate::plan::Rotate,
        why: &str,
        deadline: Instant,
    ) -> Result<(), Error> {
        let workloads = self.discover(stage, release, &r.discover, deadline)?;
        for w in &workloads {
            let cmd = r.restart.fill(&[("WORKLOAD", &w.id())]);
            self.ex
                .run(stage, &cmd, Some(deadline))
                .map_err(|e| e.into_error(stage, &format!("restart {}", w.id())))?;
        }
        let ids: Vec<String> = workloads.iter().map(|w| w.id()).collect();
        self.note(
            stage,
            format!(
                "release {release}: {why}; restarted {}",
                if ids.is_empty() {
                    "nothing (no Deployment, StatefulSet or DaemonSet)".to_string()
                } else {
                    ids.join(", ")
                }
            ),
        );
        Ok(())
    }

    fn gate(
        &self,
        stage: Stage,
        release: &str,
        status: &Cmd,
        on_pending: OnPending,
        rollback: &Cmd,
        deadline: Instant,
    ) -> Result<(), Error> {
        let out = self.probe(stage, status, deadline)?;
        if !out.ok() {
            if helm::is_not_found(&out.stderr) {
                self.note(
                    stage,
                    format!("release {release} does not exist yet: it will be installed"),
                );
                seen::status(self.ex, release, None, "not installed");
                return Ok(());
            }
            return Err(Error {
                command: Some(self.ex.redact(&status.display())),
                child_exit: Some(out.code),
                tail: crate::model::last_lines(
                    &self.ex.redact(&format!("{}\n{}", out.stdout, out.stderr)),
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
                command: Some(self.ex.redact(&status.display())),
                tail: crate::model::last_lines(&self.ex.redact(&out.stdout), TAIL_LINES),
                ..Error::new(stage, format!("cannot read the state of release {release}: helm printed something slipway cannot parse"))
            });
        };
        seen::status(self.ex, release, Some(s.version), &s.status);
        if !s.is_pending() {
            return Ok(());
        }
        let uninstall = || {
            format!("the first install never finished: remove it with `helm uninstall {release} {}` and deploy again", ctx_ns_flags(rollback))
        };
        match on_pending {
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
            OnPending::Rollback => {
                self.note(stage, format!("release {release} is {} at revision {}: rolling back", s.status, s.version));
                self.probes.lock().unwrap_or_else(|e| e.into_inner()).clear();
                self.stale.store(true, std::sync::atomic::Ordering::SeqCst);
                self.ex
                    .run(stage, rollback, Some(deadline))
                    .map_err(|e| e.into_error(stage, &format!("roll back pending release {release}")))?;
                Ok(())
            }
        }
    }

    /// `helm template`: a chart that does not render fails here, located by what helm
    /// says (the values schema's paths, the template and line).
    fn render(
        &self,
        stage: Stage,
        release: &str,
        chart: &str,
        cmd: &Cmd,
        deadline: Instant,
    ) -> Result<String, Error> {
        let e = match self.ex.run(stage, cmd, Some(deadline)) {
            Ok(out) => return Ok(out.stdout),
            Err(e) => e,
        };
        if e.failure == Failure::Interrupted {
            return Err(e.into_error(stage, "render"));
        }
        let mut err = e.into_error(stage, &format!("render {release}"));
        let problems: Vec<String> = err
            .tail
            .iter()
            .map(|l| {
                l.trim()
                    .trim_start_matches("Error: ")
                    .trim_start_matches("- ")
                    .to_string()
            })
            .filter(|l| !l.is_empty() && !l.ends_with(':') && !l.starts_with("Use --debug"))
            .collect();
        err.message = format!(
            "release {release}: chart {chart} does not render with the pipeline's values: {}",
            problems
                .first()
                .cloned()
                .unwrap_or_else(|| "see helm's output".into())
        );
        err.hint = Some(format!(
            "fix the value helm names in pipeline.toml ([releases.{release}] set / set_string / values) or in the chart; nothing was built or deployed. Reproduce with the command above"
        ));
        Err(err)
    }

    fn rollback_on_err(
        &self,
        stage: Stage,
        r: Result<(), Error>,
        rollback: Option<&Cmd>,
        deadline: Instant,
    ) -> Result<(), Error> {
        let Err(mut e) = r else { return Ok(()) };
        if let (Some(rb), false) = (rollback, e.interrupted) {
            let deadline = deadline.max(Instant::now() + rb.timeout);
            match self.ex.run(stage, rb, Some(deadline)) {
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

    fn discover(
        &self,
        stage: Stage,
        release: &str,
        discover: &Cmd,
        deadline: Instant,
    ) -> Result<Vec<k8s::WorkloadState>, Error> {
        let what = format!("list the workloads of {release}");
        let out = self
            .ex
            .run(stage, discover, Some(deadline))
            .map_err(|e| e.into_error(stage, &what))?;
        k8s::parse_workloads(&out.stdout, release)
            .map_err(|e| unreadable(self.ex, stage, &what, discover, &out, e))
    }

    fn pods(
        &self,
        stage: Stage,
        template: &Cmd,
        w: &k8s::WorkloadState,
        deadline: Instant,
    ) -> Result<Vec<k8s::PodState>, Error> {
        let what = format!("list the pods of {}", w.id());
        let cmd = template.fill(&[("SELECTOR", &w.selector_arg())]);
        let out = self
            .ex
            .run(stage, &cmd, Some(deadline))
            .map_err(|e| e.into_error(stage, &what))?;
        k8s::parse_pods(&out.stdout).map_err(|e| unreadable(self.ex, stage, &what, &cmd, &out, e))
    }

    /// Every pod of the namespace.
    fn all_pods(
        &self,
        stage: Stage,
        cmd: &Cmd,
        deadline: Instant,
    ) -> Result<Vec<k8s::PodState>, Error> {
        let what = "list the namespace's pods";
        let out = self
            .ex
            .run(stage, cmd, Some(deadline))
            .map_err(|e| e.into_error(stage, what))?;
        k8s::parse_pods(&out.stdout).map_err(|e| unreadable(self.ex, stage, what, cmd, &out, e))
    }

    #[allow(clippy::too_many_arguments)]
    fn health(
        &self,
        stage: Stage,
        release: &str,
        ns: &str,
        ctx: &str,
        discover: &Cmd,
        pods: &Cmd,
        deadline: Instant,
    ) -> Result<(), Error> {
        // The pods the rollout read last, while fresh; else read now. A reused read
        // that shows a problem is read again first: it can predate the last pod's
        // readiness (the rollout judged the workloads' counts, read at the same time).
        let mut reused = self.reuse_last_read(release);
        loop {
            let (workloads, all_pods) = std::thread::scope(|scope| {
                let pods = scope.spawn(|| match &reused {
                    Some(read) => read.pods(stage),
                    None => self.all_pods(stage, pods, deadline),
                });
                let workloads = self.discover(stage, release, discover, deadline);
                let pods = pods
                    .join()
                    .unwrap_or_else(|_| Err(Error::new(stage, "reading the pods panicked")));
                (workloads, pods)
            });
            let (workloads, all_pods) = (workloads?, all_pods?);
            let mut problems = vec![];
            let mut hints: Vec<&str> = vec![];
            let mut total = 0;
            for w in &workloads {
                for p in all_pods
                    .iter()
                    .filter(|p| p.selected_by(w) && !p.terminating)
                {
                    total += 1;
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
                        problems.push(format!("pod {}: {why}, {} restart(s)", p.name, p.restarts));
                        hints.extend(p.reasons.iter().filter_map(|r| kubectl::hint_for(r)));
                    } else if p.restarts > 0 {
                        self.note(
                            stage,
                            format!(
                                "pod {} is Ready but restarted {} time(s)",
                                p.name, p.restarts
                            ),
                        );
                    }
                }
            }
            if !problems.is_empty() && reused.is_some() {
                reused = None;
                continue;
            }
            if !problems.is_empty() {
                hints.dedup();
                let mut e = Error::new(
                    stage,
                    format!(
                        "{} of {total} pod(s) of release {release} are unhealthy",
                        problems.len()
                    ),
                );
                e.tail = problems;
                e.hint = Some(if hints.is_empty() {
                    format!("look at `kubectl --context {ctx} -n {ns} describe pods`")
                } else {
                    hints.join("; ")
                });
                return Err(e);
            }
            if let Some(r) = reused {
                self.note(stage, r.said());
            }
            self.note(stage, format!("{total} pod(s) of {release} Ready"));
            return Ok(());
        }
    }
}

/// A tool exited 0 but printed what slipway cannot read: the stage fails (never
/// counts as healthy), with the command and what it printed.
fn unreadable(
    ex: &Executor,
    stage: Stage,
    what: &str,
    cmd: &Cmd,
    out: &Output,
    why: String,
) -> Error {
    Error {
        command: Some(ex.redact(&cmd.display())),
        tail: crate::model::last_lines(&ex.redact(&format!("{}\n{}", out.stdout, out.stderr)), 10),
        ..Error::new(stage, format!("{what}: {why}"))
    }
    .hint("slipway fails closed on output it cannot read; run the command by hand to see what the tool says")
}

fn short_id(id: &str) -> String {
    let id = id.trim().trim_start_matches("sha256:");
    format!("sha256:{}", id.chars().take(12).collect::<String>())
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

/// The field manager a server-side apply conflict names (`conflict with "kubectl-set"`).
fn conflict_manager(lines: &[String]) -> Option<String> {
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

const PULL_HINT: &str = "the cluster's node image could not be pulled (this machine cannot reach its registry): let slipway build its offline node image (it does unless --no-provision, SLIPWAY_NO_PROVISION or [tools] provision = false), or set cluster.kind.node_image to an image this machine has";

/// Does a line of `kind create cluster` / `minikube start` output say an image pull
/// failed for a network or registry reason?
fn is_pull_failure(line: &str) -> bool {
    // kind's own words around docker's; docker's are the ones slipway reads itself.
    let l = line.to_ascii_lowercase();
    [
        "failed to pull image",
        "error pulling image",
        "error response from daemon: get",
    ]
    .iter()
    .any(|p| l.contains(p))
        // A network sign counts only on a line about pulling (a kubelet's refused
        // health check is not a pull).
        || (l.contains("pull") && crate::tools::provision::is_unreachable_pull(line))
}

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

/// `GET http://HOST/v2/` answers as a registry does (200, or 401 when it wants a login).
fn registry_answers(host: &str, signals: &crate::exec::Signals) -> bool {
    use crate::exec::net;
    let url = net::Target::Url(format!("http://{host}/v2/"));
    net::Client::new(Duration::from_secs(3), signals)
        .send(&net::Request::new("GET", url))
        .is_ok_and(|r| matches!(r.status, 200 | 401))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_conflicting_field_manager_is_named() {
        let helm4 = [
            "level=WARN msg=\"upgrade failed\" name=sample error=\"conflict occurred while applying object slipway-sample/sample apps/v1, Kind=Deployment: Apply failed with 1 conflict: conflict with \\\"kubectl-set\\\" using apps/v1: .spec\"".to_string(),
            "Error: UPGRADE FAILED: conflict occurred while applying object x: Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1".to_string(),
        ];
        assert_eq!(
            super::conflict_manager(&helm4[..1]).as_deref(),
            Some("kubectl-set")
        );
        assert_eq!(
            super::conflict_manager(&helm4[1..]).as_deref(),
            Some("kubectl-edit")
        );
        assert_eq!(super::conflict_manager(&["Error: boom".to_string()]), None);
    }

    /// kind's output names a pull that failed for a network reason; a kubelet that
    /// does not answer its health check is not one (it got the pull hint once).
    #[test]
    fn only_a_failed_pull_gets_the_pull_hint() {
        assert!(super::is_pull_failure(
            "ERROR: failed to create cluster: failed to pull image \"kindest/node:v1.34.0\""
        ));
        assert!(super::is_pull_failure(
            "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host"
        ));
        assert!(!super::is_pull_failure(
            "error: error execution phase wait-control-plane: failed while waiting for the kubelet to start: The HTTP call equal to 'curl -sSL http://127.0.0.1:10248/healthz' returned error: Get \"http://127.0.0.1:10248/healthz\": dial tcp 127.0.0.1:10248: connect: connection refused"
        ));
    }
}
