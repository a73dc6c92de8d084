//! Executing a plan: stage by stage, each with its own time budget, guards decided by
//! probes, and a [`StageError`] that says what failed, the command, the tail of its
//! output and what to do next.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cmd::Cmd;
use crate::config::{OnPending, Pipeline, Provider};
use crate::exec::{ExecError, Executor, Failure, Output};
use crate::plan::{Action, Guard, Plan, Stage, Step};
use crate::report::{ms, Event, Outcome};
use crate::tools::{helm, kind, kubectl, minikube};
use crate::{preflight, smoke};

/// Why a run stopped.
#[derive(Clone, Debug)]
pub struct StageError {
    pub stage: Stage,
    pub message: String,
    pub command: Option<String>,
    pub exit_code: Option<i32>,
    pub tail: Vec<String>,
    pub hint: Option<String>,
    pub interrupted: bool,
    pub timed_out: bool,
}

impl StageError {
    pub fn new(stage: Stage, message: impl Into<String>) -> StageError {
        StageError {
            stage,
            message: message.into(),
            command: None,
            exit_code: None,
            tail: vec![],
            hint: None,
            interrupted: false,
            timed_out: false,
        }
    }

    pub fn hint(mut self, h: impl Into<String>) -> StageError {
        self.hint = Some(h.into());
        self
    }

    pub fn from_exec(stage: Stage, what: &str, e: ExecError) -> StageError {
        StageError {
            stage,
            message: format!("{what}: {e}"),
            exit_code: match e.failure {
                Failure::Exit(c) => Some(c),
                _ => None,
            },
            interrupted: e.failure == Failure::Interrupted,
            timed_out: matches!(e.failure, Failure::Timeout(_)),
            command: Some(e.command),
            tail: e.tail,
            hint: e.hint,
        }
    }

    /// The process exit code: 130 for Ctrl-C, else the stage's own.
    pub fn code(&self) -> i32 {
        if self.interrupted {
            130
        } else {
            self.stage.exit_code()
        }
    }
}

pub struct Runner<'a> {
    pub ex: &'a Executor,
    pub pipeline: &'a Pipeline,
    pub plan: &'a Plan,
    probes: Mutex<HashMap<String, Output>>,
    forwards: smoke::Forwards,
}

impl<'a> Runner<'a> {
    pub fn new(ex: &'a Executor, pipeline: &'a Pipeline, plan: &'a Plan) -> Runner<'a> {
        Runner {
            ex,
            pipeline,
            plan,
            probes: Mutex::new(HashMap::new()),
            forwards: smoke::Forwards::default(),
        }
    }

    /// Run every stage of the plan in order; stop at the first failure.
    pub fn execute(&self) -> Result<(), StageError> {
        let mut stages: Vec<Stage> = self.plan.steps.iter().map(|s| s.stage).collect();
        stages.dedup();
        for stage in stages {
            let steps: Vec<&Step> = self
                .plan
                .steps
                .iter()
                .filter(|s| s.stage == stage)
                .collect();
            self.ex.reporter.emit(Event::StageStarted { stage });
            // Probes are cached within a stage: what a guard saw stays true until the
            // stage's own commands run after it.
            self.probes.lock().unwrap().clear();
            let started = Instant::now();
            let budget = stage.budget(&self.pipeline.timeouts);
            let deadline = started + budget;
            let mut result = if stage == Stage::Build && steps.len() > 1 {
                self.parallel_by_image(&steps, deadline)
            } else {
                steps.iter().try_for_each(|s| self.step(s, deadline))
            };
            if let Err(e) = &mut result {
                if e.timed_out && Instant::now() + Duration::from_millis(500) >= deadline {
                    e.hint = Some(format!(
                        "the {} stage's time budget ({}) ran out; raise [timeouts] {} in pipeline.toml if the work is just slow",
                        stage.name(),
                        humantime::format_duration(budget),
                        stage.name()
                    ));
                }
            }
            let failed = result.is_err();
            if let Err(e) = &result {
                self.ex.reporter.emit(Event::Error {
                    stage,
                    message: e.message.clone(),
                    command: e.command.clone(),
                    exit_code: e.exit_code,
                    output_tail: e.tail.clone(),
                    hint: e.hint.clone(),
                });
            }
            self.ex.reporter.emit(Event::StageFinished {
                stage,
                result: if failed { Outcome::Failed } else { Outcome::Ok },
                duration_ms: ms(started.elapsed()),
                commands: self.ex.reporter.commands_in(stage),
            });
            result?;
        }
        Ok(())
    }

    /// Images build in parallel; each image's own steps stay in order.
    fn parallel_by_image(&self, steps: &[&Step], deadline: Instant) -> Result<(), StageError> {
        let mut groups: Vec<(String, Vec<&Step>)> = vec![];
        for s in steps {
            let image =
                s.id.split_once('/')
                    .map_or(s.id.as_str(), |(_, n)| n)
                    .to_string();
            match groups.iter_mut().find(|(n, _)| *n == image) {
                Some((_, g)) => g.push(s),
                None => groups.push((image, vec![s])),
            }
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .map(|(_, g)| {
                    scope.spawn(move || g.iter().try_for_each(|s| self.step(s, deadline)))
                })
                .collect();
            let results: Vec<_> = handles
                .into_iter()
                .map(|h| h.join().expect("build thread"))
                .collect();
            results.into_iter().collect()
        })
    }

    fn step(&self, step: &Step, deadline: Instant) -> Result<(), StageError> {
        let stage = step.stage;
        if self.ex.cancelled() {
            return Err(StageError {
                interrupted: true,
                ..StageError::new(stage, "interrupted")
            });
        }
        if let Some(g) = &step.skip_if {
            if let Some(reason) = self.guard(stage, g, deadline)? {
                self.ex.reporter.emit(Event::StepSkipped {
                    stage,
                    step: step.id.clone(),
                    reason,
                });
                return Ok(());
            }
        }
        self.ex.reporter.emit(Event::StepStarted {
            stage,
            step: step.id.clone(),
            title: step.title.clone(),
        });
        let started = Instant::now();
        match &step.action {
            Action::Run { cmd } => {
                self.ex
                    .run(stage, cmd, Some(deadline))
                    .map_err(|e| StageError::from_exec(stage, &step.title, e))
                    .map_err(|e| with_hint(e, hint_for_step(step)))?;
            }
            Action::Preflight(pf) => preflight::run(self.ex, pf, deadline)?,
            Action::ReleaseGate {
                release,
                status,
                on_pending,
                rollback,
            } => self.gate(stage, release, status, *on_pending, rollback, deadline)?,
            Action::Rollout {
                release,
                namespace,
                context,
                discover,
                workloads,
                timeout,
                rollback,
            } => {
                let r = self.rollout(
                    stage,
                    release,
                    namespace,
                    context,
                    discover,
                    workloads.as_deref(),
                    *timeout,
                    deadline,
                );
                self.rollback_on_err(stage, r, rollback.as_ref(), deadline)?
            }
            Action::Health {
                release,
                namespace,
                context,
                discover,
                rollback,
            } => {
                let r = self.health(stage, release, namespace, context, discover, deadline);
                self.rollback_on_err(stage, r, rollback.as_ref(), deadline)?
            }
            Action::Smoke(check) => smoke::run_check(self.ex, &self.forwards, check, deadline)?,
        }
        self.ex.reporter.emit(Event::StepFinished {
            stage,
            step: step.id.clone(),
            duration_ms: ms(started.elapsed()),
        });
        Ok(())
    }

    /// Run a probe once per plan execution (until a command changes something).
    fn probe(&self, stage: Stage, cmd: &Cmd, deadline: Instant) -> Result<Output, StageError> {
        let key = cmd.display();
        if let Some(o) = self.probes.lock().unwrap().get(&key) {
            return Ok(o.clone());
        }
        let out = self
            .ex
            .probe(stage, cmd, Some(deadline))
            .map_err(|e| StageError::from_exec(stage, "probe", e))?;
        self.probes.lock().unwrap().insert(key, out.clone());
        Ok(out)
    }

    /// `Some(reason)` when the guarded step can be skipped.
    fn guard(
        &self,
        stage: Stage,
        g: &Guard,
        deadline: Instant,
    ) -> Result<Option<String>, StageError> {
        Ok(match g {
            Guard::ClusterExists { name, probe } => {
                let out = self.probe(stage, probe, deadline)?;
                if !out.ok() {
                    return Err(StageError::new(
                        stage,
                        format!("`{}` failed (exit {})", probe.display(), out.code),
                    )
                    .hint("is Docker running? `docker info` should answer"));
                }
                kind::parse_clusters(&out.stdout)
                    .contains(name)
                    .then(|| format!("kind cluster {name} exists"))
            }
            Guard::MinikubeRunning { profile, probe } => {
                let out = self.probe(stage, probe, deadline)?;
                minikube::parse_running(&out.stdout)
                    .then(|| format!("minikube profile {profile} is running"))
            }
            Guard::ImageBuilt { reference, probe } => {
                let out = self.probe(stage, probe, deadline)?;
                out.ok()
                    .then(|| format!("{reference} is already built ({})", short_id(&out.stdout)))
            }
            Guard::ImageOnCluster {
                reference,
                provider,
                cluster,
                local_id,
            } => {
                let local = self.probe(stage, local_id, deadline)?;
                if !local.ok() {
                    return Ok(None);
                }
                let id = local.stdout.trim().to_string();
                match provider {
                    Provider::Kind => {
                        let nodes = self.probe(stage, &kind::get_nodes(cluster), deadline)?;
                        let nodes = kind::parse_nodes(&nodes.stdout);
                        if nodes.is_empty() {
                            return Ok(None);
                        }
                        for n in &nodes {
                            let o = self.probe(stage, &kind::node_image(n, reference), deadline)?;
                            if !o.ok()
                                || kind::parse_image_id(&o.stdout).as_deref() != Some(id.as_str())
                            {
                                return Ok(None);
                            }
                        }
                        Some(format!(
                            "{reference} ({}) is already on all {} node(s) of {cluster}",
                            short_id(&id),
                            nodes.len()
                        ))
                    }
                    Provider::Minikube => {
                        let o = self.probe(stage, &minikube::image_ls(cluster), deadline)?;
                        minikube::lists_image_id(&o.stdout, &id).then(|| {
                            format!(
                                "{reference} ({}) is already in minikube {cluster}",
                                short_id(&id)
                            )
                        })
                    }
                    Provider::Existing => None,
                }
            }
            Guard::ReleaseCurrent {
                release,
                digest,
                probe,
            } => {
                let out = self.probe(stage, probe, deadline)?;
                helm::parse_status(&out.stdout)
                    .filter(|s| s.status == "deployed" && s.digest() == Some(digest))
                    .map(|s| format!("release {release} revision {} already has these chart files, values and images (digest {digest}); --force redeploys", s.version))
            }
        })
    }

    fn gate(
        &self,
        stage: Stage,
        release: &str,
        status: &Cmd,
        on_pending: OnPending,
        rollback: &Cmd,
        deadline: Instant,
    ) -> Result<(), StageError> {
        let out = self.probe(stage, status, deadline)?;
        if !out.ok() {
            if helm::is_not_found(&out.stderr) {
                self.ex.reporter.emit(Event::Note {
                    stage,
                    message: format!("release {release} does not exist yet: it will be installed"),
                });
                return Ok(());
            }
            return Err(StageError {
                command: Some(status.display()),
                exit_code: Some(out.code),
                tail: crate::exec::last_lines(
                    &self.ex.redact(&format!("{}\n{}", out.stdout, out.stderr)),
                    crate::exec::TAIL_LINES,
                ),
                ..StageError::new(stage, format!("cannot read the state of release {release}"))
            }
            .hint(
                "check that the cluster answers: `kubectl --context CONTEXT get --raw /readyz`",
            ));
        }
        let Some(s) = helm::parse_status(&out.stdout) else {
            return Ok(());
        };
        if !s.is_pending() {
            return Ok(());
        }
        match on_pending {
            OnPending::Fail => Err(StageError::new(
                stage,
                format!("release {release} is stuck in {} at revision {} (a helm run was interrupted or is still running)", s.status, s.version),
            )
            .hint(if s.version > 1 {
                format!("roll it back with `{}`, or set on_pending = \"rollback\" for this release", rollback.display())
            } else {
                format!("the first install never finished: remove it with `helm uninstall {release} {}` and deploy again", ctx_ns_flags(rollback))
            })),
            OnPending::Rollback => {
                self.ex.reporter.emit(Event::Note { stage, message: format!("release {release} is {} at revision {}: rolling back", s.status, s.version) });
                self.probes.lock().unwrap().clear();
                self.ex.run(stage, rollback, Some(deadline)).map_err(|e| StageError::from_exec(stage, &format!("roll back pending release {release}"), e))?;
                Ok(())
            }
        }
    }

    fn rollback_on_err(
        &self,
        stage: Stage,
        r: Result<(), StageError>,
        rollback: Option<&Cmd>,
        deadline: Instant,
    ) -> Result<(), StageError> {
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
    ) -> Result<Vec<kubectl::Workload>, StageError> {
        let out = self.ex.run(stage, discover, Some(deadline)).map_err(|e| {
            StageError::from_exec(stage, &format!("list the workloads of {release}"), e)
        })?;
        Ok(kubectl::parse_workloads(&out.stdout, release))
    }

    #[allow(clippy::too_many_arguments)]
    fn rollout(
        &self,
        stage: Stage,
        release: &str,
        ns: &str,
        ctx: &str,
        discover: &Cmd,
        only: Option<&[String]>,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<(), StageError> {
        let found = self.discover(stage, release, discover, deadline)?;
        let targets: Vec<kubectl::Workload> = match only {
            None => found,
            Some(ids) => {
                let mut v = vec![];
                for id in ids {
                    let id = id.to_ascii_lowercase();
                    match found.iter().find(|w| w.id() == id) {
                        Some(w) => v.push(w.clone()),
                        None => {
                            return Err(StageError::new(stage, format!("workload {id} of release {release} was not found in namespace {ns}"))
                                .hint(format!("found: {}", found.iter().map(|w| w.id()).collect::<Vec<_>>().join(", "))))
                        }
                    }
                }
                v
            }
        };
        if targets.is_empty() {
            self.ex.reporter.emit(Event::Note {
                stage,
                message: format!(
                    "release {release} has no Deployment, StatefulSet or DaemonSet to wait for"
                ),
            });
        }
        for w in &targets {
            let left = deadline.saturating_duration_since(Instant::now());
            let cmd = kubectl::rollout_status(ctx, ns, &w.id(), timeout.min(left));
            if let Err(e) = self.ex.run(stage, &cmd, Some(deadline)) {
                let interrupted = e.failure == Failure::Interrupted;
                let mut err =
                    StageError::from_exec(stage, &format!("{} did not roll out", w.id()), e);
                if !interrupted {
                    err.hint = Some(format!(
                        "see `kubectl --context {ctx} -n {ns} describe {}` and `kubectl --context {ctx} -n {ns} get events --sort-by=.lastTimestamp`",
                        w.id()
                    ));
                    self.diagnose(stage, ctx, ns, w, &mut err, deadline);
                }
                return Err(err);
            }
            self.ex.reporter.emit(Event::Note {
                stage,
                message: format!("{} rolled out", w.id()),
            });
        }
        Ok(())
    }

    /// Add the pods' reasons (ErrImageNeverPull, CrashLoopBackOff, …) to an error.
    fn diagnose(
        &self,
        stage: Stage,
        ctx: &str,
        ns: &str,
        w: &kubectl::Workload,
        err: &mut StageError,
        deadline: Instant,
    ) {
        let deadline = deadline.max(Instant::now() + Duration::from_secs(20));
        let Ok(out) = self.ex.run(
            stage,
            &kubectl::get_pods(ctx, ns, &w.selector_arg()),
            Some(deadline),
        ) else {
            return;
        };
        let pods = kubectl::parse_pods(&out.stdout);
        let mut hints = vec![];
        for p in pods.iter().filter(|p| !p.ready && !p.terminating) {
            let why = if p.reasons.is_empty() {
                p.phase.clone()
            } else {
                p.reasons.join(", ")
            };
            err.tail.push(format!(
                "pod {}: {why}{}",
                p.name,
                p.messages
                    .first()
                    .map(|m| format!(" — {m}"))
                    .unwrap_or_default()
            ));
            for r in &p.reasons {
                if let Some(h) = kubectl::hint_for(r) {
                    if !hints.contains(&h) {
                        hints.push(h);
                    }
                }
            }
            if !err.message.contains(&why) {
                err.message.push_str(&format!(" (pod {}: {why})", p.name));
            }
        }
        if !hints.is_empty() {
            err.hint = Some(hints.join("; "));
        }
    }

    fn health(
        &self,
        stage: Stage,
        release: &str,
        ns: &str,
        ctx: &str,
        discover: &Cmd,
        deadline: Instant,
    ) -> Result<(), StageError> {
        let workloads = self.discover(stage, release, discover, deadline)?;
        let mut problems = vec![];
        let mut hints: Vec<&str> = vec![];
        let mut total = 0;
        for w in &workloads {
            let out = self
                .ex
                .run(
                    stage,
                    &kubectl::get_pods(ctx, ns, &w.selector_arg()),
                    Some(deadline),
                )
                .map_err(|e| {
                    StageError::from_exec(stage, &format!("list the pods of {}", w.id()), e)
                })?;
            for p in kubectl::parse_pods(&out.stdout)
                .iter()
                .filter(|p| !p.terminating)
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
                    self.ex.reporter.emit(Event::Note {
                        stage,
                        message: format!(
                            "pod {} is Ready but restarted {} time(s)",
                            p.name, p.restarts
                        ),
                    });
                }
            }
        }
        if !problems.is_empty() {
            hints.dedup();
            let mut e = StageError::new(
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
        self.ex.reporter.emit(Event::Note {
            stage,
            message: format!("{total} pod(s) of {release} Ready"),
        });
        Ok(())
    }
}

fn short_id(id: &str) -> String {
    let id = id.trim().trim_start_matches("sha256:");
    format!("sha256:{}", &id[..id.len().min(12)])
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

fn with_hint(mut e: StageError, hint: Option<String>) -> StageError {
    if e.hint.is_none() {
        e.hint = hint;
    }
    e
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
