//! Preflight: every check runs, each prints one line (✓/✗, what was found, how to fix
//! it), and the stage fails once at the end with the full list.

use std::path::Path;
use std::time::Instant;

use crate::exec::{Executor, Failure};
use crate::model::mutation::Target;
use crate::model::{Error, Event, Redactor, Stage};
use crate::plan::{ContextGuard, GuardRule, Preflight, ToolCheck};
use crate::providers::Cluster;
use crate::tools::registry::ToolId;
use crate::tools::{docker, helm};

/// What preflight found that later stages depend on.
#[derive(Debug, Default)]
pub struct Found {
    /// The helm version (when the job uses helm and it is supported).
    pub helm: Option<semver::Version>,
}

struct Checks<'a> {
    ex: &'a Executor,
    failed: Vec<String>,
}

impl Checks<'_> {
    fn pass(&self, name: &str, detail: String) {
        self.ex.events.emit(Event::Check {
            stage: Stage::Preflight,
            name: name.into(),
            ok: true,
            attempts: 1,
            duration_ms: 0,
            detail,
        });
    }

    fn fail(&mut self, name: &str, found: String, fix: &str) {
        let detail = format!("{found} — fix: {fix}");
        self.ex.events.emit(Event::Check {
            stage: Stage::Preflight,
            name: name.into(),
            ok: false,
            attempts: 1,
            duration_ms: 0,
            detail: detail.clone(),
        });
        self.failed.push(format!("{name}: {detail}"));
    }
}

/// Free bytes on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

/// Does the managed context point at the cluster slipway made? `Ok(None)` when it
/// does (or does not exist yet: the cluster stage creates it), `Ok(Some(what it
/// points at))` when not.
fn owned(
    ex: &Executor,
    cluster: &Cluster,
    g: &ContextGuard,
    deadline: Instant,
) -> Result<Option<String>, String> {
    let Some(cmd) = &g.kubeconfig else {
        return Ok(None);
    };
    if ex.locate(&cmd.program).is_none() {
        // The tool check reports it already.
        return Ok(None);
    }
    let out = ex
        .probe(Stage::Preflight, cmd, Some(deadline))
        .map_err(|e| format!("`{}` {e}", e.command))?;
    if !out.ok() {
        return Err(format!("`{}` exited with {}", cmd.display(), out.code));
    }
    Ok(match g.target(&out)? {
        None => None,
        Some(t) => cluster.provider().owns(cluster, &t).err(),
    })
}

/// The context guard's check: may this job change `g.context`?
fn guard(
    ex: &Executor,
    cluster: &Cluster,
    c: &mut Checks,
    g: &ContextGuard,
    deadline: Instant,
) -> bool {
    let job = g.job;
    let name = "context guard";
    let first = format!("first change: `{}`", ex.redact(&g.first_change));
    let before = c.failed.len();
    match (g.rule, &g.managed, g.allowed) {
        (GuardRule::Any, _, _) => c.pass(name, format!("{job} may change {}: it is how slipway deploys to clusters it does not manage", g.context)),
        (GuardRule::Pipeline, _, _) => c.pass(name, format!("{} is the pipeline's own context (cluster.context)", g.context)),
        (GuardRule::Managed, Some(m), _) if *m == g.context => match owned(ex, cluster, g, deadline) {
            Ok(None) => c.pass(name, format!("{} is the local cluster slipway manages", g.context)),
            Ok(Some(why)) if g.allowed => c.pass(name, format!("{}: {why}; allowed by --allow-context", g.context)),
            Ok(Some(why)) => c.fail(name, format!("{job} would change {}, but in your kubeconfig that context points at {why}, not the cluster slipway made ({first})", g.context), "delete or rename that context (`kubectl config delete-context`), or pass --allow-context if you mean it"),
            Err(e) => c.fail(name, e, "check that `kubectl config view -o json` works"),
        },
        (GuardRule::Managed, _, true) => c.pass(name, format!("{} is not a cluster slipway manages; allowed by --allow-context", g.context)),
        (GuardRule::Managed, Some(m), false) => c.fail(name, format!("{job} would change {}, which is not the local cluster it manages ({m}) ({first})", g.context), "drop --kube-context, or pass --allow-context if you mean it"),
        (GuardRule::Managed, None, false) if job.guarded() => c.fail(name, format!("{job} only changes local clusters slipway manages; {} belongs to provider \"existing\" ({first})", g.context), "use `cargo xtask deploy` for remote clusters, or pass --allow-context"),
        (GuardRule::Managed, None, false) => c.fail(name, format!("{job} would change {}, which is not the pipeline's context ({first})", g.context), "drop --kube-context, or pass --allow-context if you mean it"),
    }
    c.failed.len() == before
}

/// What is wrong with a tool, and how to fix it.
type Problem = (String, String);

/// Start the Docker engine; its wait does not count against preflight's budget.
fn start_docker(
    ex: &Executor,
    ds: &crate::plan::DockerStart,
    info: &crate::model::Cmd,
    deadline: &mut Instant,
) -> Result<String, String> {
    let took = Instant::now();
    let r = super::provision::start_docker(ex, ds, info);
    *deadline += took.elapsed();
    r
}

/// The version of the tool at `path` (remembered per binary), or what went wrong and
/// how to fix it. The `String` says whether it was remembered.
fn version_of(
    ex: &Executor,
    t: &ToolCheck,
    path: &Path,
    cache: Option<&super::tool_cache::Cache>,
    deadline: Instant,
) -> Result<Result<(semver::Version, &'static str), Problem>, Error> {
    if let Some(v) = cache.and_then(|c| c.lookup(path)) {
        return Ok(Ok((v, ", remembered")));
    }
    let stage = Stage::Preflight;
    let cmd = super::provision::version_cmd(t, path);
    let out = match ex.probe(stage, &cmd, Some(deadline)) {
        Ok(o) => o,
        Err(e) if e.failure == Failure::Interrupted => {
            return Err(Error::interrupted(Some(stage), "preflight was interrupted"))
        }
        Err(e) => {
            return Ok(Err((
                format!(
                    "{} at {} did not report a version: {e}",
                    t.tool,
                    path.display()
                ),
                "reinstall it".into(),
            )))
        }
    };
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let v = t.found(&out);
    let first = |t: &str| {
        t.lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    match v {
        Some(v) => {
            if let Some(c) = cache {
                c.store(path, &v);
            }
            Ok(Ok((v, "")))
        }
        None if t.tool == ToolId::Helm => Ok(Err((
            format!(
                "{} does not answer `{}` as Helm 3 and 4 do (Helm 2 or not helm?): {}",
                path.display(),
                t.version.display(),
                first(&text)
            ),
            format!(
                "install Helm 4 (or Helm 3 >= {}); README.md, Prerequisites",
                helm::MIN_VERSION
            ),
        ))),
        None => Ok(Err((
            format!(
                "cannot read a version from `{}`: {}",
                cmd.display(),
                first(&text)
            ),
            "check the tool works".into(),
        ))),
    }
}

pub fn run(
    ex: &Executor,
    cluster: &Cluster,
    pf: &Preflight,
    deadline: Instant,
) -> Result<Found, Error> {
    let stage = Stage::Preflight;
    let mut r = Run {
        c: Checks { ex, failed: vec![] },
        ex,
        pf,
        deadline,
        cache: super::tool_cache::Cache::user(),
        found: Found::default(),
        have_docker: false,
    };
    for t in &pf.tools {
        r.tool(t)?;
    }
    r.docker_daemon();
    r.temp_disk();
    r.kube_context();
    let (mut c, deadline) = (r.c, r.deadline);
    if let Some(g) = &pf.guard {
        if guard(ex, cluster, &mut c, g, deadline) {
            // From here on the executor runs commands that change this context (and
            // the registries the plan pushes to), and refuses any other.
            ex.approve(Target::Context(g.context.clone()));
            for t in &g.also {
                ex.approve(t.clone());
            }
        }
    }
    secret_vars(ex, &mut c, pf)?;
    if ex.cancelled() {
        return Err(Error::interrupted(Some(stage), "preflight was interrupted"));
    }
    if c.failed.is_empty() {
        return Ok(r.found);
    }
    let n = c.failed.len();
    let mut e = Error::new(
        stage,
        format!(
            "{n} preflight check{} failed",
            if n == 1 { "" } else { "s" }
        ),
    );
    e.tail = c.failed;
    e.hint =
        Some("fix each ✗ above, then rerun; `cargo xtask preflight` runs only these checks".into());
    Err(e)
}

/// One preflight run's state: the checks so far, what later stages need, and the
/// deadline (provisioning and starting Docker do not count against it).
struct Run<'a> {
    c: Checks<'a>,
    ex: &'a Executor,
    pf: &'a Preflight,
    deadline: Instant,
    cache: Option<super::tool_cache::Cache>,
    found: Found,
    have_docker: bool,
}

impl Run<'_> {
    /// PATH's tool first: used as it is when its version will do; then slipway's
    /// cache, provisioning into it when the pinned version is absent.
    fn tool(&mut self, t: &ToolCheck) -> Result<(), Error> {
        let (ex, deadline) = (self.ex, self.deadline);
        let min = semver::Version::parse(&t.min).unwrap_or_else(|_| semver::Version::new(0, 0, 0));
        let problem = match which::which(t.tool.name()) {
            Err(_) => (
                "not found on PATH".to_string(),
                format!("install {} >= {} (README.md, Prerequisites)", t.tool, t.min),
            ),
            Ok(path) => match version_of(ex, t, &path, self.cache.as_ref(), deadline)? {
                Ok((v, how)) if v >= min => {
                    self.c.pass(
                        t.tool.name(),
                        format!("{v} at {} (>= {min}{how})", path.display()),
                    );
                    self.have_docker |= t.tool == ToolId::Docker;
                    if t.tool == ToolId::Helm {
                        self.found.helm = Some(v);
                    }
                    return Ok(());
                }
                Ok((v, _)) => (
                    format!(
                        "{v} at {} is older than {min}, needed for {}",
                        path.display(),
                        t.why
                    ),
                    format!(
                        "upgrade {} to {min} or later (Helm 4 is the tested default)",
                        t.tool
                    ),
                ),
                Err(p) => p,
            },
        };
        let Some(s) = &t.supply else {
            let fix = if t.tool != ToolId::Docker && !self.pf.provision {
                format!("{}; or drop --no-provision (and SLIPWAY_NO_PROVISION, [tools] provision = false) to let slipway provision it", problem.1)
            } else {
                problem.1
            };
            self.c.fail(t.tool.name(), problem.0, &fix);
            return Ok(());
        };
        let Some(how) = self.supplied(t, s, &problem)? else {
            return Ok(());
        };
        self.check_supplied(t, s, &min, &how)
    }

    /// The tool from slipway's cache: there and verified, or provisioned now. A cached
    /// binary counts only while its SHA-256 is the one recorded when slipway put it
    /// there; otherwise it is provisioned again. `None`: failed (and said so).
    fn supplied(
        &mut self,
        t: &ToolCheck,
        s: &crate::plan::Supply,
        problem: &Problem,
    ) -> Result<Option<String>, Error> {
        let (ex, stage) = (self.ex, Stage::Preflight);
        let cached = s.path.is_file()
            && match super::tool_cache::Manifest::user().map(|m| m.verify(&s.path)) {
                Some(Ok(())) => true,
                Some(Err(e)) => {
                    ex.events.emit(Event::Note {
                        stage,
                        step: None,
                        message: format!("{}: {e}: not used; provisioning it again", t.tool),
                    });
                    if let Err(e) = std::fs::remove_file(&s.path) {
                        self.c.fail(
                            t.tool.name(),
                            format!(
                                "{} failed its check and cannot be removed: {e}",
                                s.path.display()
                            ),
                            &format!("delete {} and rerun", s.path.display()),
                        );
                        return Ok(None);
                    }
                    false
                }
                None => false,
            };
        if cached {
            return Ok(Some("slipway's cache, SHA-256 verified".to_string()));
        }
        ex.events.emit(Event::Note {
            stage,
            step: None,
            message: format!(
                "{}: {}; provisioning {} into slipway's cache",
                t.tool, problem.0, s.version
            ),
        });
        let took = Instant::now();
        let got = super::provision::get(ex, t, s)?;
        // Provisioning has its own timeouts; the checks keep their budget.
        self.deadline += took.elapsed();
        Ok(match got {
            super::provision::Got::Yes(how) => Some(format!("provisioned: {how}")),
            super::provision::Got::No(why, help) => {
                self.c.fail(
                    t.tool.name(),
                    format!(
                        "{}; slipway could not provision {}: {why}",
                        problem.0, s.version
                    ),
                    &format!("{} {help}", problem.1),
                );
                None
            }
        })
    }

    /// The cached tool's version will do: the executor uses it from now on.
    fn check_supplied(
        &mut self,
        t: &ToolCheck,
        s: &crate::plan::Supply,
        min: &semver::Version,
        how: &str,
    ) -> Result<(), Error> {
        let ex = self.ex;
        match version_of(ex, t, &s.path, self.cache.as_ref(), self.deadline)? {
            Ok((v, _)) if v >= *min => {
                ex.use_tool(t.tool.name(), s.path.clone());
                self.c.pass(
                    t.tool.name(),
                    format!("{v} at {} ({how})", s.path.display()),
                );
                if t.tool == ToolId::Helm {
                    self.found.helm = Some(v);
                }
            }
            Ok((v, _)) => self.c.fail(
                t.tool.name(),
                format!(
                    "{} in slipway's cache reports {v}, older than {min}",
                    s.path.display()
                ),
                &format!(
                    "delete {} and rerun, or pin a newer version in [tools]",
                    s.path.display()
                ),
            ),
            Err((found, _)) => self.c.fail(
                t.tool.name(),
                format!(
                    "{} in slipway's cache does not work: {found}",
                    s.path.display()
                ),
                &format!("delete {} and rerun", s.path.display()),
            ),
        }
        Ok(())
    }

    /// The Docker daemon answers (started when it is stopped and may be), with
    /// enough free space in its data root.
    fn docker_daemon(&mut self) {
        let (ex, pf, stage) = (self.ex, self.pf, Stage::Preflight);
        let (Some(info), true) = (&pf.docker_daemon, self.have_docker) else {
            return;
        };
        match ex.probe(stage, info, Some(self.deadline)) {
            Ok(o) if o.ok() => self.docker_disk(&o),
            Ok(o) => {
                let (what, fix) = docker::daemon_problem(&o.stderr);
                match (&pf.docker_start, docker::is_not_running(&o.stderr)) {
                    (Some(ds), true) => match super::provision::can_start_docker(ex) {
                        Ok(()) => match start_docker(ex, ds, info, &mut self.deadline) {
                            Ok(how) => self.c.pass("docker daemon", how),
                            Err(e) => self.c.fail(
                                "docker daemon",
                                format!("{what}; slipway started dockerd, but {e}"),
                                "read dockerd's log (named above) and start the engine by hand",
                            ),
                        },
                        Err(fix) => self.c.fail("docker daemon", what, &fix),
                    },
                    _ => self.c.fail("docker daemon", what, &fix),
                }
            }
            Err(e) => self.c.fail(
                "docker daemon",
                e.to_string(),
                "start the Docker daemon and check that `docker info` answers",
            ),
        }
    }

    fn docker_disk(&mut self, info: &crate::exec::Output) {
        let min_free = self.pf.min_free_gib << 30;
        let root = Preflight::docker_root(info);
        self.c.pass(
            "docker daemon",
            format!(
                "answers (data root {})",
                root.as_deref().unwrap_or("unknown")
            ),
        );
        match root
            .as_deref()
            .map(Path::new)
            .filter(|p| p.exists())
            .and_then(|p| free_bytes(p).map(|b| (p, b)))
        {
            Some((p, b)) if b >= min_free => self
                .c
                .pass("docker disk", format!("{} free in {}", gib(b), p.display())),
            Some((p, b)) => self.c.fail(
                "docker disk",
                format!("only {} free in {}", gib(b), p.display()),
                &format!(
                    "free at least {} GiB (`docker system prune`)",
                    self.pf.min_free_gib
                ),
            ),
            None => self.c.pass(
                "docker disk",
                "data root is not on this filesystem (remote daemon); not checked".into(),
            ),
        }
    }

    fn temp_disk(&mut self) {
        let min_free = self.pf.min_free_gib << 30;
        let tmp = std::env::temp_dir();
        match free_bytes(&tmp) {
            Some(b) if b >= min_free => self
                .c
                .pass("temp disk", format!("{} free in {}", gib(b), tmp.display())),
            Some(b) => self.c.fail(
                "temp disk",
                format!("only {} free in {}", gib(b), tmp.display()),
                &format!(
                    "free at least {} GiB or point TMPDIR elsewhere",
                    self.pf.min_free_gib
                ),
            ),
            None => self.c.fail(
                "temp disk",
                format!("cannot stat {}", tmp.display()),
                "set TMPDIR to a writable directory",
            ),
        }
    }

    /// For `existing`: the context is in the kubeconfig and its API server is ready.
    fn kube_context(&mut self) {
        let (ex, stage, deadline, c) = (self.ex, Stage::Preflight, self.deadline, &mut self.c);
        let Some(cc) = &self.pf.context else { return };
        if ex.locate("kubectl").is_none() {
            return;
        }
        match ex.probe(stage, &cc.list, Some(deadline)) {
            Ok(o) if o.stdout.lines().any(|l| l.trim() == cc.context) => {
                match ex.probe(stage, &cc.ready, Some(deadline)) {
                    Ok(r) if r.ok() => c.pass(
                        "kube context",
                        format!("{} exists and its API server is ready", cc.context),
                    ),
                    Ok(r) => c.fail(
                        "kube context",
                        format!(
                            "{} does not answer: {}",
                            cc.context,
                            r.stderr.lines().last().unwrap_or("").trim()
                        ),
                        "check the cluster is up and your credentials",
                    ),
                    Err(e) => c.fail(
                        "kube context",
                        format!("{} does not answer: {e}", cc.context),
                        "check the cluster is up and your credentials",
                    ),
                }
            }
            Ok(_) => c.fail(
                "kube context",
                format!("context {:?} is not in your kubeconfig", cc.context),
                "set cluster.context or pass --kube-context (see `kubectl config get-contexts`)",
            ),
            Err(e) => c.fail("kube context", e.to_string(), "check kubectl works"),
        }
    }
}

/// Every variable the release secrets read is set, long enough to be masked.
fn secret_vars(ex: &Executor, c: &mut Checks, pf: &Preflight) -> Result<(), Error> {
    for v in &pf.secret_vars {
        let name = format!("secret {}/{}", v.secret, v.key);
        if ex.cancelled() {
            return Err(Error::interrupted(
                Some(Stage::Preflight),
                "preflight was interrupted",
            ));
        }
        match ex.secret_value(&v.source) {
            Ok(val) if val.len() >= Redactor::MIN_LEN => c.pass(&name, "set (value hidden)".into()),
            Ok(_) => c.fail(
                &name,
                format!(
                    "value is shorter than {} characters and could not be masked in logs",
                    Redactor::MIN_LEN
                ),
                "use a longer value",
            ),
            Err(e) => c.fail(
                &name,
                e,
                "export the variable or add it to the env file named in [project] env_file",
            ),
        }
    }
    Ok(())
}
