//! `self-check`: what a bug report needs about this machine — slipway's version and
//! commit, where each tool comes from (PATH or slipway's cache) and its version, the
//! Docker engine, the cache directory and the configuration files. It only reads:
//! nothing is provisioned or started, and a missing tool is a line, not an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::exec::{Executor, Signals};
use crate::model::{Cmd, Event, Redactor, Sink, Stage, Vars};
use crate::tools::registry::ToolId;
use crate::tools::{docker, provision};

/// One binary of a tool, and what it says its version is.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Binary {
    pub path: PathBuf,
    /// The version it reports, or the first line it printed when that is not one.
    pub version: String,
    /// It ran and reported a version.
    pub works: bool,
}

/// A tool slipway runs: PATH's binary and slipway's cached one, either may be absent.
#[derive(Clone, Debug, Serialize)]
pub struct ToolInfo {
    pub tool: String,
    pub path: Option<Binary>,
    /// The version slipway provisions (a `[tools]` pin, else its default), for tools
    /// it can provision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisions: Option<String>,
    /// Where that version lives in slipway's cache, when it is there.
    pub cache: Option<Binary>,
}

impl ToolInfo {
    /// The binary a run uses: PATH's, else slipway's cache (preflight also turns to
    /// the cache when PATH's is older than the job needs).
    pub fn used(&self) -> Option<(&Binary, &'static str)> {
        self.path
            .as_ref()
            .map(|b| (b, "PATH"))
            .or(self.cache.as_ref().map(|b| (b, "slipway's cache")))
    }
}

/// Everything `self-check` reports.
#[derive(Clone, Debug, Serialize)]
pub struct SelfCheck {
    pub version: String,
    pub commit: String,
    /// This executable.
    pub binary: Option<PathBuf>,
    pub platform: String,
    /// slipway's cache directory (`$XDG_CACHE_HOME/slipway` or `~/.cache/slipway`).
    pub cache_dir: Option<PathBuf>,
    pub cache_exists: bool,
    /// The pipeline file that would be used, and whether it loads.
    pub pipeline: PathBuf,
    pub pipeline_state: String,
    /// The env file the pipeline names, when it loaded.
    pub env_file: Option<PathBuf>,
    pub kubeconfig: String,
    pub tools: Vec<ToolInfo>,
    /// What `docker info` says about the engine, when docker is there.
    pub docker_engine: Option<String>,
    /// Tools provisioning uses: curl downloads, go builds.
    pub helpers: Vec<ToolInfo>,
    /// SLIPWAY_* and the variables that change where tools connect, as set.
    pub environment: Vec<(String, String)>,
}

/// Events from the probes go nowhere: the report is the answer.
struct Quiet(Redactor);

impl Sink for Quiet {
    fn emit(&self, _: Event) {}
    fn child_output(&self, _: Stage, _: &str) {}
    fn redactor(&self) -> &Redactor {
        &self.0
    }
}

/// How long one tool may take to say its version.
const PROBE: Duration = Duration::from_secs(10);

fn version_cmd(tool: &str) -> Cmd {
    match ToolId::named(tool) {
        Some(id) => (id.tool().version)(),
        None if tool == "go" => Cmd::new("go", ["version"]),
        None => Cmd::new(tool, ["--version"]),
    }
}

/// The version `tool` at `path` reports (never an error: what went wrong is the text).
fn ask(ex: &Executor, tool: &str, path: &Path) -> Binary {
    let mut cmd = version_cmd(tool).timeout(PROBE);
    cmd.program = path.to_string_lossy().into_owned();
    let (version, works) = match ex.probe(Stage::Preflight, &cmd, Some(Instant::now() + PROBE)) {
        Err(e) => (format!("did not run: {e}"), false),
        Ok(o) => {
            let v = crate::plan::steps::preflight::reported_version(tool, &o);
            match v {
                Some(v) => (v.to_string(), true),
                None => {
                    let first = format!("{}\n{}", o.stdout, o.stderr)
                        .lines()
                        .map(str::trim)
                        .find(|l| !l.is_empty())
                        .unwrap_or("")
                        .chars()
                        .take(120)
                        .collect::<String>();
                    (format!("no version (exit {}): {first}", o.code), false)
                }
            }
        }
    };
    Binary {
        path: path.to_path_buf(),
        version,
        works,
    }
}

fn tool_info(ex: &Executor, tool: &str, pinned: Pinned, cache: Option<&Path>) -> ToolInfo {
    let path = which::which(tool).ok().map(|p| ask(ex, tool, &p));
    let id = ToolId::named(tool);
    let provisions =
        id.and_then(|id| pinned(id).or_else(|| provision::default_version(id).map(String::from)));
    let cached = match (cache, id, &provisions) {
        (Some(c), Some(id), Some(v)) => {
            Some(provision::tool_path(c, id, v)).filter(|p| p.is_file())
        }
        _ => None,
    };
    ToolInfo {
        tool: tool.into(),
        path,
        provisions,
        cache: cached.map(|p| ask(ex, tool, &p)),
    }
}

fn engine(ex: &Executor, docker: &ToolInfo) -> Option<String> {
    let (bin, _) = docker.used()?;
    let mut cmd = docker::info().timeout(PROBE);
    cmd.program = bin.path.to_string_lossy().into_owned();
    Some(
        match ex.probe(Stage::Preflight, &cmd, Some(Instant::now() + PROBE)) {
            Err(e) => format!("no answer: {e}"),
            Ok(o) if o.ok() => {
                let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_default();
                let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
                format!(
                    "answers: server {}, storage driver {}, data root {}",
                    s("ServerVersion"),
                    s("Driver"),
                    s("DockerRootDir")
                )
            }
            Ok(o) => {
                let (what, _) = docker::daemon_problem(&o.stderr);
                format!("does not answer: {what}")
            }
        },
    )
}

/// The version the pipeline's `[tools]` pins for a tool.
pub type Pinned<'a> = &'a dyn Fn(ToolId) -> Option<String>;

/// What loading the pipeline gave: how it loaded (`loads: project …, profile …`) and
/// its env file.
pub struct Loaded {
    pub state: String,
    pub env_file: PathBuf,
}

/// Gather the report. `pipeline` is the file a run here would use; `loaded` is what
/// loading it gave, or why it did not load; `pinned`, its `[tools]` pins.
pub fn gather(
    pipeline: &Path,
    loaded: Result<Loaded, String>,
    pinned: Pinned,
    version: &str,
    commit: &str,
) -> SelfCheck {
    let sink: Arc<dyn Sink> = Arc::new(Quiet(Redactor::default()));
    let ex = Executor::new(
        std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        sink,
        Vars::default(),
        Signals::default(),
    );
    let cache = provision::cache_root();
    let (pipeline_state, env_file) = match loaded {
        Ok(l) => (l.state, Some(l.env_file)),
        Err(why) => (why, None),
    };
    // The tools a pipeline can need, in the order a run meets them.
    let tools: Vec<ToolInfo> = ToolId::all()
        .map(|t| tool_info(&ex, t.name(), pinned, cache.as_deref()))
        .collect();
    let docker_engine = engine(&ex, &tools[0]);
    let helpers = ["curl", "go"]
        .iter()
        .map(|t| tool_info(&ex, t, pinned, cache.as_deref()))
        .collect();
    let kubeconfig = match std::env::var("KUBECONFIG") {
        Ok(k) if !k.is_empty() => format!("{k} (KUBECONFIG)"),
        _ => std::env::var_os("HOME")
            .map(|h| {
                let p = PathBuf::from(h).join(".kube/config");
                let there = if p.is_file() { "" } else { ", absent" };
                format!("{}{there}", p.display())
            })
            .unwrap_or_else(|| "none (HOME and KUBECONFIG are not set)".into()),
    };
    let mut environment: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("SLIPWAY_")
                || ["DOCKER_HOST", "DOCKER_CONTEXT", "XDG_CACHE_HOME", "CI"].contains(&k.as_str())
        })
        .collect();
    environment.sort();
    SelfCheck {
        version: version.into(),
        commit: commit.into(),
        binary: std::env::current_exe().ok(),
        platform: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cache_exists: cache.as_deref().is_some_and(Path::is_dir),
        cache_dir: cache,
        pipeline: pipeline.to_path_buf(),
        pipeline_state,
        env_file,
        kubeconfig,
        tools,
        docker_engine,
        helpers,
        environment,
    }
}

fn line(out: &mut String, t: &ToolInfo) {
    let show = |b: &Binary, from: &str| {
        format!(
            "{} at {} ({from}){}",
            b.version,
            b.path.display(),
            if b.works { "" } else { " — does not work" }
        )
    };
    let mut parts = vec![];
    if let Some(b) = &t.path {
        parts.push(show(b, "PATH"));
    }
    if let Some(b) = &t.cache {
        parts.push(show(b, "slipway's cache"));
    }
    if parts.is_empty() {
        parts.push(match &t.provisions {
            Some(v) => {
                format!("missing: not on PATH, not in slipway's cache (a run provisions {v})")
            }
            None => "missing: not on PATH".into(),
        });
    }
    out.push_str(&format!("  {:<11}{}\n", t.tool, parts.join("; ")));
}

impl SelfCheck {
    /// The report as text, for a terminal or a bug report.
    pub fn to_text(&self) -> String {
        let shown = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("unknown".to_string(), |p| p.display().to_string())
        };
        let mut out = format!("slipway {} (", self.version);
        if self.commit == "unknown" {
            out.push_str("unknown commit)\n");
        } else {
            out.push_str(&format!("commit {})\n", self.commit));
        }
        out.push_str(&format!("  {:<11}{}\n", "binary", shown(&self.binary)));
        out.push_str(&format!("  {:<11}{}\n", "platform", self.platform));
        out.push_str(&format!(
            "  {:<11}{}{}\n",
            "cache",
            shown(&self.cache_dir),
            if self.cache_exists { "" } else { " (absent)" }
        ));
        out.push_str(&format!(
            "  {:<11}{} ({})\n",
            "pipeline",
            self.pipeline.display(),
            self.pipeline_state
        ));
        if let Some(e) = &self.env_file {
            let there = if e.is_file() { "" } else { " (absent)" };
            out.push_str(&format!("  {:<11}{}{there}\n", "env file", e.display()));
        }
        out.push_str(&format!("  {:<11}{}\n", "kubeconfig", self.kubeconfig));
        out.push_str("tools (a run uses PATH's, else slipway's cache):\n");
        for t in &self.tools {
            line(&mut out, t);
        }
        if let Some(e) = &self.docker_engine {
            out.push_str(&format!("  {:<11}{e}\n", "engine"));
        }
        out.push_str("provisioning (curl downloads the tools, go builds them):\n");
        for t in &self.helpers {
            line(&mut out, t);
        }
        out.push_str("environment:\n");
        if self.environment.is_empty() {
            out.push_str(
                "  (no SLIPWAY_*, DOCKER_HOST, DOCKER_CONTEXT, XDG_CACHE_HOME or CI set)\n",
            );
        }
        for (k, v) in &self.environment {
            out.push_str(&format!("  {k}={v}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_a_line_not_an_error() {
        let t = ToolInfo {
            tool: "kind".into(),
            path: None,
            provisions: Some("v0.30.0".into()),
            cache: None,
        };
        let mut s = String::new();
        line(&mut s, &t);
        assert_eq!(
            s,
            "  kind       missing: not on PATH, not in slipway's cache (a run provisions v0.30.0)\n"
        );
        assert!(t.used().is_none());
        let b = Binary {
            path: "/c/kind-v0.30.0".into(),
            version: "0.30.0".into(),
            works: true,
        };
        let t = ToolInfo {
            cache: Some(b.clone()),
            ..t
        };
        assert_eq!(t.used(), Some((&b, "slipway's cache")));
    }
}
