//! Planning: a validated pipeline becomes an ordered list of steps with their exact
//! argv, env, stdin and timeouts. No side effects: planning reads the pipeline's
//! files (to hash them) and nothing else, so `plan` runs with an empty PATH and
//! tests can assert on plans without running anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cmd::{Cmd, SecretInput, SecretKey, SecretSource, Stdin};
use crate::config::{self, OnPending, Pipeline, Provider, TagPolicy};
use crate::digest::{self, Hasher};
use crate::tools::{docker, helm, kind, kubectl, minikube};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Preflight,
    Cluster,
    Build,
    Load,
    Secrets,
    Deploy,
    Rollout,
    Health,
    Smoke,
}

impl Stage {
    pub const ALL: [Stage; 9] = [
        Stage::Preflight,
        Stage::Cluster,
        Stage::Build,
        Stage::Load,
        Stage::Secrets,
        Stage::Deploy,
        Stage::Rollout,
        Stage::Health,
        Stage::Smoke,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Preflight => "preflight",
            Stage::Cluster => "cluster",
            Stage::Build => "build",
            Stage::Load => "load",
            Stage::Secrets => "secrets",
            Stage::Deploy => "deploy",
            Stage::Rollout => "rollout",
            Stage::Health => "health",
            Stage::Smoke => "smoke",
        }
    }

    /// slipway's exit code when this stage fails (documented in README.md).
    pub fn exit_code(self) -> i32 {
        10 + Stage::ALL.iter().position(|s| *s == self).unwrap() as i32
    }

    pub fn budget(self, t: &config::Timeouts) -> Duration {
        match self {
            Stage::Preflight => t.preflight,
            Stage::Cluster => t.cluster,
            Stage::Build => t.build,
            Stage::Load => t.load,
            Stage::Secrets => t.secrets,
            Stage::Deploy => t.deploy,
            Stage::Rollout => t.rollout,
            Stage::Health => t.health,
            Stage::Smoke => t.smoke,
        }
        .0
    }
}

/// Which job a plan is for; each runs a contiguous subset of the stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Job {
    DeployLocal,
    Build,
    Load,
    Deploy,
    Smoke,
    Preflight,
}

impl Job {
    pub fn stages(self) -> &'static [Stage] {
        use Stage::*;
        match self {
            Job::DeployLocal => &[
                Preflight, Cluster, Build, Load, Secrets, Deploy, Rollout, Health, Smoke,
            ],
            Job::Build => &[Preflight, Build],
            Job::Load => &[Preflight, Cluster, Build, Load],
            Job::Deploy => &[Preflight, Secrets, Deploy, Rollout, Health],
            Job::Smoke => &[Preflight, Smoke],
            Job::Preflight => &[Preflight],
        }
    }
}

#[derive(Clone, Debug)]
pub struct PlanOptions {
    pub job: Job,
    /// Rebuild, reload and redeploy even when nothing changed.
    pub force: bool,
    /// `--kube-context`: overrides the pipeline's context.
    pub context: Option<String>,
    /// `--namespace`: overrides every release's namespace.
    pub namespace: Option<String>,
    /// Let deploy-local use a context that is not the local cluster it manages.
    pub allow_context: bool,
    /// The time a `timestamp` tag is taken from.
    pub now: SystemTime,
}

impl PlanOptions {
    pub fn new(job: Job) -> PlanOptions {
        PlanOptions {
            job,
            force: false,
            context: None,
            namespace: None,
            allow_context: false,
            now: SystemTime::now(),
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
}

#[derive(Clone, Debug, Serialize)]
pub struct ImagePlan {
    pub name: String,
    pub repository: String,
    pub tag: String,
    pub reference: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub stage: Stage,
    pub id: String,
    pub title: String,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_if: Option<Guard>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // a plan holds a handful of these
pub enum Action {
    Preflight(Preflight),
    Run {
        cmd: Cmd,
    },
    /// Look at the release before upgrading: stop (or roll back) if it is stuck pending.
    ReleaseGate {
        release: String,
        status: Cmd,
        on_pending: OnPending,
        rollback: Cmd,
    },
    /// Wait for each workload of the release to roll out.
    Rollout {
        release: String,
        namespace: String,
        context: String,
        discover: Cmd,
        workloads: Option<Vec<String>>,
        #[serde(with = "crate::cmd::secs")]
        timeout: Duration,
        rollback: Option<Cmd>,
    },
    /// Every pod of the release Ready, none crash-looping.
    Health {
        release: String,
        namespace: String,
        context: String,
        discover: Cmd,
        rollback: Option<Cmd>,
    },
    Smoke(SmokeCheck),
}

/// A condition under which a step is skipped, with the probe that decides it.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Guard {
    /// kind: the cluster is listed by `kind get clusters`.
    ClusterExists { name: String, probe: Cmd },
    /// minikube: the profile's host and API server are running.
    MinikubeRunning { profile: String, probe: Cmd },
    /// The image reference already exists locally (content-addressed tags only).
    ImageBuilt { reference: String, probe: Cmd },
    /// Every node of the cluster holds the image with the local image ID.
    ImageOnCluster {
        reference: String,
        provider: Provider,
        cluster: String,
        local_id: Cmd,
    },
    /// The deployed revision carries this digest and is `deployed`.
    ReleaseCurrent {
        release: String,
        digest: String,
        probe: Cmd,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Preflight {
    pub tools: Vec<ToolCheck>,
    pub docker_daemon: Option<Cmd>,
    /// Minimum free space, in GiB, for Docker's data root and the temp dir.
    pub min_free_gib: u64,
    /// For `existing`: the context must exist and answer.
    pub context: Option<ContextCheck>,
    /// For deploy-local: the context must be the local cluster slipway manages.
    pub guard: Option<ContextGuard>,
    /// Variables the release secrets read; all must be set.
    pub secret_vars: Vec<SecretVar>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ToolCheck {
    pub tool: String,
    pub min: String,
    pub why: String,
    pub version: Cmd,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContextCheck {
    pub context: String,
    pub list: Cmd,
    pub ready: Cmd,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContextGuard {
    pub context: String,
    /// The context of the cluster slipway manages, if any.
    pub managed: Option<String>,
    pub allowed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SecretVar {
    pub secret: String,
    pub key: String,
    pub source: SecretSource,
}

#[derive(Clone, Debug, Serialize)]
pub struct SmokeCheck {
    pub name: String,
    pub namespace: String,
    pub context: String,
    #[serde(with = "crate::cmd::secs")]
    pub deadline: Duration,
    #[serde(with = "millis")]
    pub interval: Duration,
    pub check: CheckKind,
}

mod millis {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckKind {
    Http {
        service: String,
        port: u16,
        method: String,
        path: String,
        body: Option<String>,
        headers: BTreeMap<String, String>,
        expect_status: u16,
        body_contains: Option<String>,
        json: BTreeMap<String, serde_json::Value>,
    },
    /// Passes when the command succeeds (resource exists / condition met).
    Kubectl { cmd: Cmd },
}

/// Tools a job needs, with the minimum version and why that minimum.
fn tool_requirements(
    p: &Pipeline,
    stages: &[Stage],
) -> Vec<(&'static str, &'static str, &'static str, Cmd)> {
    let has = |s: Stage| stages.contains(&s);
    let mut out = vec![];
    let images = !p.images.is_empty() && (has(Stage::Build) || has(Stage::Load));
    if images || (p.cluster.provider == Provider::Minikube && has(Stage::Cluster)) {
        out.push((
            "docker",
            "20.10.0",
            "BuildKit builds and `--format {{json .}}` output",
            docker::version(),
        ));
    }
    let cluster_tool = has(Stage::Cluster) || (has(Stage::Load) && !p.images.is_empty());
    match p.cluster.provider {
        Provider::Kind if cluster_tool => out.push((
            "kind",
            "0.20.0",
            "`--config -` on stdin and image-ID checks in `kind load`",
            kind::version(),
        )),
        Provider::Minikube if cluster_tool => out.push((
            "minikube",
            "1.30.0",
            "`image load` and `image ls --format json`",
            minikube::version(),
        )),
        _ => {}
    }
    if has(Stage::Deploy) {
        out.push((
            "helm",
            "3.13.0",
            "`uninstall --ignore-not-found` and the release description in `status -o json`",
            helm::version(),
        ));
    }
    if has(Stage::Secrets) || has(Stage::Rollout) || has(Stage::Smoke) || has(Stage::Deploy) {
        out.push((
            "kubectl",
            "1.24.0",
            "`apply --server-side` and `rollout status --timeout`",
            kubectl::version(),
        ));
    }
    out
}

struct Planner<'a> {
    p: &'a Pipeline,
    o: &'a PlanOptions,
    context: String,
    images: Vec<ImagePlan>,
    steps: Vec<Step>,
}

/// Turn a pipeline into the plan for one job.
pub fn build(p: &Pipeline, o: &PlanOptions) -> anyhow::Result<Plan> {
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
        .collect::<anyhow::Result<_>>()?;
    for stage in o.job.stages() {
        match stage {
            Stage::Preflight => pl.preflight(),
            Stage::Cluster => pl.cluster(),
            Stage::Build => pl.build(),
            Stage::Load => pl.load(),
            Stage::Secrets => pl.secrets()?,
            Stage::Deploy => pl.deploy()?,
            Stage::Rollout => pl.rollout(),
            Stage::Health => pl.health(),
            Stage::Smoke => pl.smoke(),
        }
    }
    Ok(Plan {
        project: p.project.name.clone(),
        job: o.job,
        profile: p.profile.clone(),
        provider: p.cluster.provider,
        cluster: p.cluster.name.clone(),
        context: pl.context,
        images: pl.images,
        steps: pl.steps,
    })
}

impl Planner<'_> {
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
        });
    }

    fn budget(&self, s: Stage) -> Duration {
        s.budget(&self.p.timeouts)
    }

    fn rel(&self, path: &Path) -> String {
        path.display().to_string()
    }

    fn image_plan(&self, img: &config::Image) -> anyhow::Result<ImagePlan> {
        let root = &self.p.root;
        let tag = match img.tag_policy {
            TagPolicy::Fixed => img.tag.clone().unwrap_or_default(),
            TagPolicy::Timestamp => {
                let t = humantime::format_rfc3339_seconds(self.o.now).to_string();
                t.chars().filter(char::is_ascii_digit).collect()
            }
            TagPolicy::Git => digest::git_tag(root, &img.inputs()).ok_or_else(|| {
                anyhow::anyhow!(
                    "image `{}`: tag_policy \"git\" but {} is not in a git work tree",
                    img.name,
                    root.display()
                )
            })?,
            TagPolicy::Content => {
                let mut h = Hasher::default();
                for input in img.inputs() {
                    h.tree(root, &input).map_err(|e| {
                        anyhow::anyhow!(
                            "image `{}`: cannot hash input {}: {e}",
                            img.name,
                            input.display()
                        )
                    })?;
                }
                h.part("target", img.target.as_deref().unwrap_or("").as_bytes());
                for (k, v) in &img.build_args {
                    h.part(k, v.as_bytes());
                }
                if let Some(pb) = &img.pre_build {
                    h.part("pre_build", pb.command.join("\0").as_bytes());
                }
                format!("c-{}", &h.hex()[..12])
            }
        };
        let repository = match &self.p.registry {
            Some(r) => format!("{}/{}", r.url.trim_end_matches('/'), img.repository()),
            None => img.repository().to_string(),
        };
        Ok(ImagePlan {
            name: img.name.clone(),
            reference: format!("{repository}:{tag}"),
            repository,
            tag,
        })
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

    fn managed_context(&self) -> Option<String> {
        match self.p.cluster.provider {
            Provider::Existing => None,
            _ => Some(self.p.cluster.kube_context()),
        }
    }

    fn preflight(&mut self) {
        let stages = self.o.job.stages();
        let tools = tool_requirements(self.p, stages)
            .into_iter()
            .map(|(tool, min, why, version)| ToolCheck {
                tool: tool.into(),
                min: min.into(),
                why: why.into(),
                version,
            })
            .collect::<Vec<_>>();
        let docker_daemon = tools.iter().any(|t| t.tool == "docker").then(docker::info);
        let touches_cluster = stages.iter().any(|s| *s >= Stage::Secrets);
        let context =
            (touches_cluster && self.p.cluster.provider == Provider::Existing).then(|| {
                ContextCheck {
                    context: self.context.clone(),
                    list: kubectl::contexts(),
                    ready: kubectl::readyz(&self.context),
                }
            });
        let guard = (self.o.job == Job::DeployLocal).then(|| ContextGuard {
            context: self.context.clone(),
            managed: self.managed_context(),
            allowed: self.o.allow_context,
        });
        let secret_vars = if stages.contains(&Stage::Secrets) {
            self.secret_inputs()
                .into_iter()
                .flat_map(|s| {
                    s.keys.into_iter().map(move |k| SecretVar {
                        secret: s.name.clone(),
                        key: k.key,
                        source: k.source,
                    })
                })
                .collect()
        } else {
            vec![]
        };
        self.push(
            Stage::Preflight,
            "preflight".into(),
            "check tools, Docker, disk, kube context and secret variables".into(),
            Action::Preflight(Preflight {
                tools,
                docker_daemon,
                min_free_gib: 2,
                context,
                guard,
                secret_vars,
            }),
            None,
        );
    }

    fn cluster(&mut self) {
        let c = &self.p.cluster;
        let budget = self.budget(Stage::Cluster);
        match c.provider {
            Provider::Kind if c.create => self.push(
                Stage::Cluster,
                format!("cluster/{}", c.name),
                format!("create kind cluster {}", c.name),
                Action::Run {
                    cmd: kind::create(&c.name, &c.kind, budget),
                },
                Some(Guard::ClusterExists {
                    name: c.name.clone(),
                    probe: kind::get_clusters(),
                }),
            ),
            Provider::Minikube if c.create => self.push(
                Stage::Cluster,
                format!("cluster/{}", c.name),
                format!("start minikube profile {}", c.name),
                Action::Run {
                    cmd: minikube::start(&c.name, &c.minikube, budget),
                },
                Some(Guard::MinikubeRunning {
                    profile: c.name.clone(),
                    probe: minikube::status(&c.name),
                }),
            ),
            _ => self.push(
                Stage::Cluster,
                format!("cluster/{}", self.context),
                format!("check that context {} answers", self.context),
                Action::Run {
                    cmd: kubectl::readyz(&self.context),
                },
                None,
            ),
        }
    }

    fn build(&mut self) {
        let budget = self.budget(Stage::Build);
        for (img, ip) in self.p.images.iter().zip(self.images.clone()) {
            let cached = (img.tag_policy == TagPolicy::Content && !self.o.force).then(|| {
                Guard::ImageBuilt {
                    reference: ip.reference.clone(),
                    probe: docker::image_id(&ip.reference),
                }
            });
            if let Some(pb) = &img.pre_build {
                let mut cmd =
                    Cmd::new(&pb.command[0], &pb.command[1..]).timeout(pb.timeout.0.min(budget));
                cmd.env = pb.env.clone();
                self.push(
                    Stage::Build,
                    format!("pre-build/{}", img.name),
                    format!("pre-build {}", img.name),
                    Action::Run { cmd },
                    cached.clone(),
                );
            }
            let labels = vec![
                (
                    "org.opencontainers.image.title".to_string(),
                    img.name.clone(),
                ),
                (
                    "dev.slipway.project".to_string(),
                    self.p.project.name.clone(),
                ),
            ];
            let cmd = docker::build(&docker::Build {
                reference: &ip.reference,
                dockerfile: &img.dockerfile(),
                context: &img.context,
                target: img.target.as_deref(),
                build_args: &img.build_args,
                labels: &labels,
                timeout: budget,
            });
            self.push(
                Stage::Build,
                format!("build/{}", img.name),
                format!("build {}", ip.reference),
                Action::Run { cmd },
                cached,
            );
        }
    }

    fn load(&mut self) {
        let budget = self.budget(Stage::Load);
        let c = &self.p.cluster;
        for ip in self.images.clone() {
            let guard = (!self.o.force && c.provider != Provider::Existing).then(|| {
                Guard::ImageOnCluster {
                    reference: ip.reference.clone(),
                    provider: c.provider,
                    cluster: c.name.clone(),
                    local_id: docker::image_id(&ip.reference),
                }
            });
            let (title, cmd) = match c.provider {
                Provider::Kind => (
                    format!("load {} into kind cluster {}", ip.reference, c.name),
                    kind::load(&c.name, &ip.reference, budget),
                ),
                Provider::Minikube => (
                    format!("load {} into minikube profile {}", ip.reference, c.name),
                    minikube::image_load(&c.name, &ip.reference, budget),
                ),
                Provider::Existing if self.p.registry.is_some() => (
                    format!("push {}", ip.reference),
                    docker::push(&ip.reference, budget),
                ),
                Provider::Existing => continue,
            };
            self.push(
                Stage::Load,
                format!("load/{}", ip.name),
                title,
                Action::Run { cmd },
                guard,
            );
        }
    }

    fn namespace(&self, r: &config::Release) -> String {
        self.o
            .namespace
            .clone()
            .unwrap_or_else(|| self.p.namespace_of(r))
    }

    fn secret_inputs(&self) -> Vec<SecretInput> {
        let mut out = vec![];
        for r in &self.p.releases {
            for (name, spec) in &r.secrets {
                let mut keys: Vec<SecretKey> = spec
                    .from_env
                    .iter()
                    .map(|(k, var)| SecretKey {
                        key: k.clone(),
                        source: SecretSource::Env { var: var.clone() },
                    })
                    .collect();
                if let Some(f) = &spec.env_file {
                    let path = self.p.path(f);
                    // Only the names are read here; values are read when the step runs.
                    for var in config::interp::read_env_file(&path)
                        .unwrap_or_default()
                        .into_keys()
                    {
                        keys.push(SecretKey {
                            key: var.clone(),
                            source: SecretSource::EnvFile {
                                path: path.clone(),
                                var,
                            },
                        });
                    }
                }
                out.push(SecretInput {
                    name: name.clone(),
                    namespace: self.namespace(r),
                    labels: BTreeMap::from([
                        ("app.kubernetes.io/managed-by".into(), "slipway".into()),
                        ("slipway.dev/project".into(), self.p.project.name.clone()),
                        ("slipway.dev/release".into(), r.release_name().to_string()),
                    ]),
                    keys,
                });
            }
        }
        out
    }

    fn secrets(&mut self) -> anyhow::Result<()> {
        let mut namespaces: Vec<String> =
            self.p.releases.iter().map(|r| self.namespace(r)).collect();
        namespaces.dedup();
        let budget = self.budget(Stage::Secrets);
        for ns in namespaces {
            let cmd = kubectl::apply(
                &self.context,
                Stdin::Text {
                    text: kubectl::namespace_manifest(&ns),
                },
            )
            .timeout(budget.min(Duration::from_secs(60)));
            self.push(
                Stage::Secrets,
                format!("namespace/{ns}"),
                format!("ensure namespace {ns}"),
                Action::Run { cmd },
                None,
            );
        }
        for s in self.secret_inputs() {
            let id = format!("secret/{}/{}", s.namespace, s.name);
            let title = format!(
                "apply secret {} ({} key{})",
                s.name,
                s.keys.len(),
                if s.keys.len() == 1 { "" } else { "s" }
            );
            let mut cmd = kubectl::apply(&self.context, Stdin::Secret(s))
                .timeout(budget.min(Duration::from_secs(60)));
            cmd.secret_output = true;
            self.push(Stage::Secrets, id, title, Action::Run { cmd }, None);
        }
        Ok(())
    }

    fn deploy(&mut self) -> anyhow::Result<()> {
        let root = self.p.root.clone();
        for r in &self.p.releases {
            let ns = self.namespace(r);
            let rel = r.release_name().to_string();
            let chart = self.p.path(&r.chart);
            let chart_yaml = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap_or_default();
            if chart_yaml.lines().any(|l| l.starts_with("dependencies:")) {
                let cmd = helm::dependency_build(&self.rel(&r.chart), self.budget(Stage::Deploy));
                self.push(
                    Stage::Deploy,
                    format!("deps/{rel}"),
                    format!("helm dependency build {}", r.chart.display()),
                    Action::Run { cmd },
                    None,
                );
            }
            let set: Vec<(String, String)> = r
                .set
                .iter()
                .map(|(k, v)| (k.clone(), self.resolve(v)))
                .collect();
            let set_string: Vec<(String, String)> = r
                .set_string
                .iter()
                .map(|(k, v)| (k.clone(), self.resolve(v)))
                .collect();
            let set_file: Vec<(String, String)> = r
                .set_file
                .iter()
                .map(|(k, v)| (k.clone(), self.rel(v)))
                .collect();
            let values: Vec<String> = r.values.iter().map(|v| self.rel(v)).collect();

            let mut h = Hasher::default();
            h.part("release", rel.as_bytes())
                .part("namespace", ns.as_bytes());
            let hash_err = |what: &Path, e: std::io::Error| {
                anyhow::anyhow!("release `{}`: cannot read {}: {e}", r.name, what.display())
            };
            h.tree(&root, &r.chart).map_err(|e| hash_err(&r.chart, e))?;
            for v in r.values.iter().chain(r.set_file.values()) {
                h.tree(&root, v).map_err(|e| hash_err(v, e))?;
            }
            for (flag, pairs) in [
                ("set", &set),
                ("set_string", &set_string),
                ("set_file", &set_file),
            ] {
                for (k, v) in pairs {
                    h.part(flag, format!("{k}={v}").as_bytes());
                }
            }
            h.part(
                "flags",
                format!("wait={} atomic={}", r.wait, r.atomic).as_bytes(),
            );
            let digest = h.hex()[..16].to_string();

            let status = helm::status(&rel, &ns, &self.context);
            self.push(
                Stage::Deploy,
                format!("gate/{rel}"),
                format!("check release {rel} is not stuck pending"),
                Action::ReleaseGate {
                    release: rel.clone(),
                    status: status.clone(),
                    on_pending: r.on_pending,
                    rollback: helm::rollback(&rel, &ns, &self.context, r.timeout.0),
                },
                None,
            );
            let cmd = helm::upgrade(&helm::Upgrade {
                release: &rel,
                chart: &self.rel(&r.chart),
                namespace: &ns,
                context: &self.context,
                values,
                set,
                set_string,
                set_file,
                wait: r.wait,
                atomic: r.atomic,
                timeout: r.timeout.0,
                digest: &digest,
            });
            let guard = (!self.o.force).then(|| Guard::ReleaseCurrent {
                release: rel.clone(),
                digest: digest.clone(),
                probe: status,
            });
            self.push(
                Stage::Deploy,
                format!("helm/{rel}"),
                format!("helm upgrade --install {rel}"),
                Action::Run { cmd },
                guard,
            );
        }
        Ok(())
    }

    fn rollback_for(&self, r: &config::Release) -> Option<Cmd> {
        r.rollback_on_failure.then(|| {
            helm::rollback(
                r.release_name(),
                &self.namespace(r),
                &self.context,
                r.timeout.0,
            )
        })
    }

    fn rollout(&mut self) {
        for r in &self.p.releases {
            let ns = self.namespace(r);
            let rel = r.release_name().to_string();
            self.push(
                Stage::Rollout,
                format!("rollout/{rel}"),
                format!("wait for the workloads of {rel} to roll out"),
                Action::Rollout {
                    release: rel.clone(),
                    namespace: ns.clone(),
                    context: self.context.clone(),
                    discover: kubectl::get_workloads(&self.context, &ns),
                    workloads: r.workloads.clone(),
                    timeout: r.timeout.0,
                    rollback: self.rollback_for(r),
                },
                None,
            );
        }
    }

    fn health(&mut self) {
        for r in &self.p.releases {
            let ns = self.namespace(r);
            let rel = r.release_name().to_string();
            self.push(
                Stage::Health,
                format!("health/{rel}"),
                format!("check every pod of {rel} is Ready and not restarting"),
                Action::Health {
                    release: rel.clone(),
                    namespace: ns.clone(),
                    context: self.context.clone(),
                    discover: kubectl::get_workloads(&self.context, &ns),
                    rollback: self.rollback_for(r),
                },
                None,
            );
        }
    }

    fn smoke(&mut self) {
        for c in &self.p.smoke {
            let ns = match (&self.o.namespace, &c.namespace) {
                (Some(o), None) => o.clone(),
                _ => self.p.check_namespace(c),
            };
            let check = match c.kind {
                config::CheckType::Http => CheckKind::Http {
                    service: c.service.clone().unwrap_or_default(),
                    port: c.port.unwrap_or(80),
                    method: c.method.clone().unwrap_or_else(|| "GET".into()),
                    path: self.resolve(c.path.as_deref().unwrap_or("/")),
                    body: c.body.as_deref().map(|b| self.resolve(b)),
                    headers: c.headers.clone(),
                    expect_status: c.expect_status.unwrap_or(200),
                    body_contains: c.body_contains.as_deref().map(|b| self.resolve(b)),
                    json: c
                        .json
                        .iter()
                        .map(|(k, v)| {
                            let j = match v {
                                toml::Value::String(s) => {
                                    serde_json::Value::String(self.resolve(s))
                                }
                                other => {
                                    serde_json::to_value(other).unwrap_or(serde_json::Value::Null)
                                }
                            };
                            (k.clone(), j)
                        })
                        .collect(),
                },
                config::CheckType::Kubectl => {
                    let resource = c.resource.clone().unwrap_or_default();
                    let cmd = match &c.condition {
                        Some(cond) => kubectl::wait_condition(
                            &self.context,
                            &ns,
                            &resource,
                            cond,
                            Duration::from_secs(10),
                        ),
                        None => kubectl::get_resource(&self.context, &ns, &resource),
                    };
                    CheckKind::Kubectl { cmd }
                }
            };
            self.push(
                Stage::Smoke,
                format!("smoke/{}", c.name),
                format!("smoke check {}", c.name),
                Action::Smoke(SmokeCheck {
                    name: c.name.clone(),
                    namespace: ns,
                    context: self.context.clone(),
                    deadline: c.deadline.0,
                    interval: c.interval.0,
                    check,
                }),
                None,
            );
        }
    }
}

impl Guard {
    /// One line for the plan: when the step is skipped, and how that is decided.
    pub fn describe(&self) -> String {
        match self {
            Guard::ClusterExists { name, probe } => {
                format!("skipped if `{}` lists {name}", probe.display())
            }
            Guard::MinikubeRunning { profile, probe } => {
                format!("skipped if `{}` says {profile} is running", probe.display())
            }
            Guard::ImageBuilt { reference, probe } => format!(
                "skipped if {reference} is already built (`{}`)",
                probe.display()
            ),
            Guard::ImageOnCluster {
                reference,
                provider,
                cluster,
                local_id,
            } => {
                let how = match provider {
                    Provider::Kind => format!("`kind get nodes --name {cluster}`, then `docker exec NODE crictl inspecti {reference}`"),
                    _ => format!("`minikube image ls --format json --profile {cluster}`"),
                };
                format!(
                    "skipped if every node already holds the image ID of `{}` ({how})",
                    local_id.display()
                )
            }
            Guard::ReleaseCurrent { digest, probe, .. } => {
                format!(
                    "skipped if `{}` shows revision deployed with digest {digest}",
                    probe.display()
                )
            }
        }
    }
}

impl Plan {
    /// The plan as a shell script: grouped by stage, each command pasteable.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# slipway plan: {} — job {}, profile {}",
            self.project,
            serde_json::to_value(self.job)
                .unwrap()
                .as_str()
                .unwrap_or(""),
            self.profile
        );
        let _ = writeln!(
            s,
            "# provider {}, cluster {}, kube context {}",
            self.provider,
            self.cluster,
            if self.context.is_empty() {
                "(none)"
            } else {
                &self.context
            }
        );
        for i in &self.images {
            let _ = writeln!(s, "# image {} -> {}", i.name, i.reference);
        }
        let mut stage = None;
        for step in &self.steps {
            if stage != Some(step.stage) {
                stage = Some(step.stage);
                let _ = write!(
                    s,
                    "\n## {} (exit code {} on failure)\n",
                    step.stage.name(),
                    step.stage.exit_code()
                );
            }
            let _ = writeln!(s, "# {}", step.title);
            if let Some(g) = &step.skip_if {
                let _ = writeln!(s, "#   {}", g.describe());
            }
            match &step.action {
                Action::Run { cmd } => {
                    let _ = writeln!(s, "{}", cmd.script());
                }
                Action::Preflight(pf) => {
                    for t in &pf.tools {
                        let _ = writeln!(
                            s,
                            "{}  # {} >= {}: {}",
                            t.version.display(),
                            t.tool,
                            t.min,
                            t.why
                        );
                    }
                    if let Some(d) = &pf.docker_daemon {
                        let _ = writeln!(s, "{}  # the daemon answers; >= {} GiB free in its data root and the temp dir", d.display(), pf.min_free_gib);
                    }
                    if let Some(c) = &pf.context {
                        let _ = writeln!(s, "{}  # lists {}", c.list.display(), c.context);
                        let _ = writeln!(s, "{}", c.ready.display());
                    }
                    if let Some(g) = &pf.guard {
                        let managed = g
                            .managed
                            .as_deref()
                            .unwrap_or("(none: provider \"existing\")");
                        let _ = writeln!(
                            s,
                            "# guard: deploy-local only targets {managed}; context is {}{}",
                            g.context,
                            if g.allowed {
                                " (--allow-context given)"
                            } else {
                                ""
                            }
                        );
                    }
                    for v in &pf.secret_vars {
                        let from = match &v.source {
                            SecretSource::Env { var } => format!("${var}"),
                            SecretSource::EnvFile { path, var } => {
                                format!("{var} in {}", path.display())
                            }
                        };
                        let _ =
                            writeln!(s, "# secret {}/{} needs {from} to be set", v.secret, v.key);
                    }
                }
                Action::ReleaseGate {
                    status,
                    on_pending,
                    rollback,
                    ..
                } => {
                    let _ = writeln!(s, "{}", status.display());
                    let what = match on_pending {
                        OnPending::Fail => "stop with a hint".to_string(),
                        OnPending::Rollback => format!("run `{}`", rollback.display()),
                    };
                    let _ = writeln!(s, "#   if pending-install/upgrade/rollback: {what}");
                }
                Action::Rollout {
                    release,
                    namespace,
                    context,
                    discover,
                    workloads,
                    timeout,
                    rollback,
                } => {
                    match workloads {
                        Some(ws) => {
                            for w in ws {
                                let _ = writeln!(
                                    s,
                                    "{}",
                                    kubectl::rollout_status(context, namespace, w, *timeout)
                                        .display()
                                );
                            }
                        }
                        None => {
                            let _ = writeln!(s, "{}  # Deployments/StatefulSets/DaemonSets annotated meta.helm.sh/release-name={release}", discover.display());
                            let _ = writeln!(
                                s,
                                "{}",
                                kubectl::rollout_status(context, namespace, "KIND/NAME", *timeout)
                                    .display()
                            );
                        }
                    }
                    if let Some(rb) = rollback {
                        let _ = writeln!(s, "#   on failure: {}", rb.display());
                    }
                }
                Action::Health {
                    discover,
                    context,
                    namespace,
                    rollback,
                    ..
                } => {
                    let _ = writeln!(s, "{}", discover.display());
                    let _ = writeln!(
                        s,
                        "{}  # each pod Ready, none crash-looping",
                        kubectl::get_pods(context, namespace, "SELECTOR").display()
                    );
                    if let Some(rb) = rollback {
                        let _ = writeln!(s, "#   on failure: {}", rb.display());
                    }
                }
                Action::Smoke(c) => match &c.check {
                    CheckKind::Http {
                        service,
                        port,
                        method,
                        path,
                        expect_status,
                        body_contains,
                        json,
                        ..
                    } => {
                        let pf = kubectl::port_forward(&c.context, &c.namespace, service, 0, *port)
                            .display()
                            .replace(&format!(" 0:{port}"), &format!(" PORT:{port}"));
                        let _ = writeln!(s, "{pf} &");
                        let mut expect = format!("status {expect_status}");
                        if let Some(b) = body_contains {
                            expect.push_str(&format!(", body contains {b:?}"));
                        }
                        for (k, v) in json {
                            expect.push_str(&format!(", .{k} == {v}"));
                        }
                        let _ = writeln!(s, "# {method} http://127.0.0.1:PORT{path} -> expect {expect}; retry every {} until {}", humantime::format_duration(c.interval), humantime::format_duration(c.deadline));
                    }
                    CheckKind::Kubectl { cmd } => {
                        let _ = writeln!(
                            s,
                            "{}  # retried until {}",
                            cmd.display(),
                            humantime::format_duration(c.deadline)
                        );
                    }
                },
            }
        }
        s
    }
}
