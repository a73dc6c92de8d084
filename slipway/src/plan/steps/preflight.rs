//! Preflight: the tools (provisioned when missing), the Docker engine (started when
//! stopped and allowed), free space, the kube context and whether this job may
//! change it, and the variables the release secrets read.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::{Cmd, Job, Output, SecretSource};
use crate::tools::{self, docker, k8s};

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

impl StepKind for Preflight {
    fn commands(&self) -> Vec<&Cmd> {
        let pf = self;
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

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        let pf = self;
        for t in &pf.tools {
            t.render(s, v);
        }
        if let Some(d) = &pf.docker_daemon {
            v.line(
                s,
                d,
                &format!(
                    "the daemon answers; >= {} GiB free in its data root and the temp dir",
                    pf.min_free_gib
                ),
            );
        }
        if let Some(d) = &pf.docker_start {
            v.line(s,
                &d.dockerd,
                &format!(
                    "only if no daemon answers, DOCKER_HOST and docker contexts name no other engine, and slipway may start one (root, no systemd), announced as it starts; config {} (merged from {}), default runtime {}, log {}",
                    d.config.display(),
                    d.host_config.display(),
                    d.wrapper.display(),
                    d.log.display()
                ),
            );
        }
        if let Some(c) = &pf.context {
            v.line(s, &c.list, &format!("lists {}", c.context));
            v.line(s, &c.ready, "");
        }
        if let Some(g) = &pf.guard {
            g.render(s);
        }
        for v in &pf.secret_vars {
            let from = v.source.describe();
            let _ = writeln!(s, "# secret {}/{} needs {from} to be set", v.secret, v.key);
        }
    }
}

impl Preflight {
    /// Docker's data root, from what `docker_daemon` printed.
    pub fn docker_root(info: &Output) -> Option<String> {
        docker::parse_root_dir(&info.stdout)
    }
}

impl DockerStart {
    /// The capability bounding set, from `/proc/self/status` (what the runtime
    /// wrapper's filter may keep in a container's spec).
    pub fn cap_bnd(proc_status: &str) -> Option<u64> {
        tools::oci::parse_cap_bnd(proc_status)
    }
}

impl ToolCheck {
    fn render(&self, s: &mut String, v: &mut View) {
        let t = self;
        // By default, only provisioning that will run is shown in full.
        let provisions = !v.verbose && !crate::plan::brief::tool(s, t, v.local);
        if v.verbose {
            v.line(
                s,
                &t.version,
                &format!("{} >= {}: {}", t.tool, t.min, t.why),
            );
        }
        let Some(p) = t.supply.as_ref().filter(|_| v.verbose || provisions) else {
            return;
        };
        let _ = writeln!(
            s,
            "#   none that will do on PATH: use {} (slipway's cache), provisioning {} {} there first:",
            p.path.display(),
            t.tool,
            p.version
        );
        if let Some(d) = &p.download {
            v.line(
                s,
                &d.fetch,
                &format!(
                    "the official release; its SHA-256 must be {} ({})",
                    d.sha256, d.pinned_by
                ),
            );
            if let Some(u) = &d.unpack {
                v.line(s, u, "");
            }
        }
        if let Some(why) = &p.unpinned {
            let _ = writeln!(s, "#   no download: {why}");
        }
        if let Some(b) = &p.build {
            v.line(
                s,
                b,
                "else: build from the Go module proxy (slipway's recipe)",
            );
        }
    }

    /// The version `version` reported, read by the tool's own parser.
    pub fn found(&self, out: &Output) -> Option<semver::Version> {
        (self.tool.tool().parse)(out.ok(), &out.stdout, &out.stderr)
    }
}

/// The version a tool's version command reported, for `self-check` (which also asks
/// `go` and other helpers).
pub fn reported_version(tool: &str, o: &Output) -> Option<semver::Version> {
    use crate::tools::registry::ToolId;
    match ToolId::named(tool) {
        // kubectl's JSON says its version whatever its exit code.
        Some(id) if o.ok() || id == ToolId::Kubectl => {
            (id.tool().parse)(o.ok(), &o.stdout, &o.stderr)
        }
        Some(_) => None,
        None if tool == "go" => tools::parse_version(&o.stdout.replace(" go", " ")),
        None if o.ok() => tools::parse_version(&format!("{}\n{}", o.stdout, o.stderr)),
        None => None,
    }
}

impl ContextGuard {
    fn render(&self, s: &mut String) {
        let g = self;
        let managed = g
            .managed
            .as_deref()
            .unwrap_or("(none: provider \"existing\")");
        let allowed = if g.allowed {
            " (--allow-context given)"
        } else {
            ""
        };
        let read = g.kubeconfig.as_ref().map_or(String::new(), |k| {
            format!(" (its cluster checked in `{}`)", k.display())
        });
        let _ = match g.rule {
            GuardRule::Managed => writeln!(
                s,
                "# guard: {} only changes {managed}; context is {}{read}{allowed}",
                g.job, g.context,
            ),
            GuardRule::Pipeline => writeln!(
                s,
                "# guard: {} changes only the pipeline's context {}{allowed}",
                g.job, g.context,
            ),
            GuardRule::Any => writeln!(
                s,
                "# guard: {} changes the context it is given: {}",
                g.job, g.context,
            ),
        };
    }

    /// Where the context points, from what `kubeconfig` printed (`None`: the
    /// kubeconfig has no such context).
    pub fn target(&self, out: &Output) -> Result<Option<k8s::ContextTarget>, String> {
        k8s::parse_context(&out.stdout, &self.context)
    }
}
