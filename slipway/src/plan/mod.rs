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
pub mod dev;
pub mod digest;
mod exposed;
mod local;
mod render;
mod stages;
pub mod steps;
pub use steps::deliver as delivery;

pub use steps::guard::{
    Always, ClusterUp, ImageBuilt, ImageOnCluster, ImagesBuilt, NamespaceExists,
    RegistryAdvertised, ReleaseCurrent, Rendered, SecretCurrent,
};
pub use steps::{
    Action, Capacity, ClusterPresent, ContextCheck, ContextGuard, CreateCluster, DeleteCluster,
    Delivery, DockerStart, Fetch, Guard, GuardRule, Health, Judge, NodePorts, Preflight, Recipe,
    ReleaseGate, Render, Rollout, Rotate, Run, SecretVar, SmokeCheck, Status, StepKind, Supply,
    ToolCheck, Track, Uninstall, Upgrade, VerifyLoaded, Watch,
};
pub mod sync;
pub use stages::build_waves::BUILD_CONCURRENCY;
pub use stages::{requests_file, CAPACITY};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::{self, Pipeline, Provider};
use crate::model::{Cmd, Error, Job, Stage};

use crate::tools::helm;

/// How many groups (builds, loads, releases) run at a time unless `--jobs` says.
pub const DEFAULT_PARALLEL: u16 = 8;
pub use brief::View;
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
    /// The cluster's settings, for the verdicts that need its provider (is it up,
    /// which nodes, does a node hold an image).
    #[serde(skip)]
    pub cluster_spec: crate::providers::Cluster,
    /// The pipeline's root: the render stamps and the secret digest key are under it.
    #[serde(skip)]
    pub root: PathBuf,
    /// Per release (by its helm name), the releases it needs: their deploy groups
    /// run first.
    #[serde(skip)]
    pub needs: BTreeMap<String, Vec<String>>,
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
    let helm = (runs_helm && !p.releases.is_empty()).then(|| pl.helm_plan());
    // The job's stages, and the smoke stage when it only judges probes.
    let mut stages = o.job.stages().to_vec();
    for s in &pl.steps {
        if !stages.contains(&s.stage) {
            stages.push(s.stage);
        }
    }
    let on_failure = if runs_helm { pl.on_failure() } else { vec![] };
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
        cluster_spec: p.cluster.clone(),
        root: p.root.clone(),
        needs: p
            .releases
            .iter()
            .map(|r| {
                let needs = r.needs.iter().filter_map(|n| p.release(n));
                let names = needs.map(|n| n.release_name().to_string()).collect();
                (r.release_name().to_string(), names)
            })
            .collect(),
        selection: p.selection.clone(),
        parallel: o.parallel,
        local: o.local.clone(),
    };
    exposed::refuse_secrets(&plan, &p.secret_sources())?;
    Ok(plan)
}

impl<'a> Planner<'a> {
    /// Which helm the plan's helm commands are for, and what that decided per release.
    fn helm_plan(&self) -> HelmPlan {
        HelmPlan {
            dialect: self.o.helm.clone(),
            decisions: self
                .p
                .releases
                .iter()
                .map(|r| {
                    (
                        r.release_name().to_string(),
                        self.o.helm.decisions(&Planner::helm_flags(r)),
                    )
                })
                .collect(),
        }
    }

    /// Each release's `helm status` and `helm history`, for the diagnosis bundle.
    fn on_failure(&self) -> Vec<Cmd> {
        self.p
            .releases
            .iter()
            .flat_map(|r| {
                let ns = self.namespace(r);
                let rel = r.release_name();
                [
                    helm::status(rel, &ns, &self.context),
                    helm::history(rel, &ns, &self.context),
                ]
            })
            .collect()
    }

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
                Action::Judge(Judge { check }),
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
