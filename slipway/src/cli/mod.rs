//! The command line: clap types and one dispatch ([`run`]). Global options have
//! environment fallbacks (SLIPWAY_*), so a CI job can set them once.
//!
//! A Rust repository's own xtask flattens [`Global`] and [`Command`] into its own
//! clap types and calls [`run`]; see README.md, "Use slipway in your repository".

mod dispatch;
mod init;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use dispatch::{main, run};

use crate::model::Job;
use crate::report::{ColorChoice, OutputFormat};

/// slipway's version, as in its Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit this binary was built from (12 hex digits), or "unknown" (a build
/// outside a git checkout without `SLIPWAY_COMMIT`; see build.rs).
pub const COMMIT: &str = env!("SLIPWAY_COMMIT");
/// `--version`: "0.2.0 (commit 0123456789ab)" or "0.2.0 (unknown commit)".
pub const VERSION_LINE: &str = env!("SLIPWAY_VERSION_LINE");

#[derive(Parser, Debug)]
#[command(
    name = "slipway",
    version = VERSION_LINE,
    about = "slipway: take services from source to a healthy, smoke-tested release on a local kind or minikube cluster",
    after_help = crate::model::exit::help()
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Profile from [profiles] in pipeline.toml (default: project.default_profile)
    #[arg(long, global = true, env = "SLIPWAY_PROFILE")]
    pub profile: Option<String>,
    /// Pipeline file (default: pipeline.toml here or in the nearest parent directory)
    #[arg(long, global = true, env = "SLIPWAY_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Kube context to pin every kubectl and helm call to (overrides the pipeline)
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_KUBE_CONTEXT",
        value_name = "CONTEXT"
    )]
    pub kube_context: Option<String>,
    /// Namespace for every release (overrides the pipeline)
    #[arg(long, short = 'n', global = true, env = "SLIPWAY_NAMESPACE")]
    pub namespace: Option<String>,
    /// Also write a JUnit XML report here: a test case per stage and per check
    #[arg(long, global = true, env = "SLIPWAY_JUNIT", value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Never provision a missing tool or start a stopped Docker engine: fail
    /// preflight instead
    #[arg(long, global = true, env = "SLIPWAY_NO_PROVISION", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_provision: bool,
    /// Let slipway's build recipes install the Debian packages they need (gcc,
    /// libc6-dev, debootstrap) with apt-get; without it a missing one fails the run
    /// with the command to install it
    #[arg(long, global = true, env = "SLIPWAY_INSTALL_PACKAGES", value_parser = clap::builder::BoolishValueParser::new())]
    pub install_packages: bool,
    /// Only this release or `[groups]` name, and the releases it needs (repeatable;
    /// every job: deploy-local, dev, smoke, status, logs, down …)
    #[arg(long, global = true, value_name = "NAME")]
    pub only: Vec<String>,
    /// Fail, instead of warning, when the selected workloads' resource requests do
    /// not fit the nodes' allocatable (the capacity preflight)
    #[arg(long, global = true, env = "SLIPWAY_STRICT", value_parser = clap::builder::BoolishValueParser::new())]
    pub strict: bool,
    /// At most this many builds, loads or releases at a time (releases also wait
    /// for those they `need`)
    #[arg(long, global = true, env = "SLIPWAY_JOBS", default_value_t = crate::plan::DEFAULT_PARALLEL, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Show each command and its output
    #[arg(long, short, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Only errors and the result
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// human: spinners on a terminal, timestamped lines otherwise; json: one event per line on stdout
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_OUTPUT",
        value_enum,
        default_value = "human"
    )]
    pub output: OutputArg,
    /// Color on stderr (auto honours NO_COLOR and whether stderr is a terminal)
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_COLOR",
        value_enum,
        default_value = "auto"
    )]
    pub color: ColorArg,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputArg {
    Human,
    Json,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

impl From<OutputArg> for OutputFormat {
    fn from(o: OutputArg) -> OutputFormat {
        match o {
            OutputArg::Human => OutputFormat::Human,
            OutputArg::Json => OutputFormat::Json,
        }
    }
}

impl From<ColorArg> for ColorChoice {
    fn from(c: ColorArg) -> ColorChoice {
        match c {
            ColorArg::Auto => ColorChoice::Auto,
            ColorArg::Always => ColorChoice::Always,
            ColorArg::Never => ColorChoice::Never,
        }
    }
}

/// `--job`: a [`Job`] by its name (strum), with the names as possible values.
fn job_parser() -> impl clap::builder::TypedValueParser<Value = Job> {
    use clap::builder::TypedValueParser as _;
    use strum::IntoEnumIterator;
    clap::builder::PossibleValuesParser::new(Job::iter().map(Job::name))
        .try_map(|s| s.parse::<Job>())
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunFlags {
    /// Rebuild, reload and redeploy even when nothing changed
    #[arg(long, env = "SLIPWAY_FORCE", value_parser = clap::builder::BoolishValueParser::new())]
    pub force: bool,
    /// Let a command that changes the cluster use a kube context that is not the
    /// local cluster slipway manages
    #[arg(long, env = "SLIPWAY_ALLOW_CONTEXT", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_context: bool,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Preflight, render, cluster, build, load, secrets, deploy, rollout, health, smoke
    DeployLocal(RunFlags),
    /// Run the smoke checks against what is deployed now
    Smoke {
        /// Let job checks create their Jobs in a kube context that is not the local
        /// cluster slipway manages (or the pipeline's own)
        #[arg(long, env = "SLIPWAY_ALLOW_CONTEXT", value_parser = clap::builder::BoolishValueParser::new())]
        allow_context: bool,
    },
    /// Check tools, Docker, disk, kube context and secret variables
    Preflight {
        /// Check what this job needs
        #[arg(long, default_value = "deploy-local", value_parser = job_parser())]
        job: Job,
    },
    /// Print every command a job would run, probes included, without running anything
    Plan {
        /// The job to plan
        #[arg(long, default_value = "deploy-local", value_parser = job_parser())]
        job: Job,
        #[command(flatten)]
        flags: RunFlags,
        /// For `--job down`: plan deleting the cluster too
        #[arg(long)]
        cluster: bool,
    },
    /// Build (and tag) the images
    Build(RunFlags),
    /// Build the images and load them into the cluster (or push them, with a registry)
    Load(RunFlags),
    /// Secrets, helm upgrade, rollout and pod health, using images already loaded
    Deploy(RunFlags),
    /// Release status and revision, workloads, pods, restarts and images
    Status,
    /// Uninstall the releases and the secrets slipway created
    Down {
        /// Also delete the kind cluster / minikube profile slipway manages
        #[arg(long)]
        cluster: bool,
        #[command(flatten)]
        flags: RunFlags,
    },
    /// helm rollback (to the previous revision, or --to), then rollout, pod health and
    /// smoke checks as after a deploy
    Rollback {
        /// The release to roll back (default: every release, last deployed first)
        release: Option<String>,
        /// The revision to return to (see `helm history`; default: the previous one)
        #[arg(long, value_name = "REVISION", value_parser = clap::value_parser!(u32).range(1..))]
        to: Option<u32>,
        #[command(flatten)]
        flags: RunFlags,
    },
    /// What the release's containers print, each line prefixed with pod and container
    Logs {
        /// A release (default: every release) or one workload, as `deployment/NAME`
        target: Option<String>,
        /// Keep streaming until Ctrl-C
        #[arg(short, long)]
        follow: bool,
        /// Lines per container to start with
        #[arg(long, default_value_t = 50)]
        tail: u32,
    },
    /// deploy-local, then again on every change: watches each image's inputs, the
    /// charts, values and pipeline.toml; rebuilds only changed images, upgrades only
    /// changed releases; streams the releases' logs and keeps a port-forward per
    /// service. Ctrl-C leaves the cluster as it is
    Dev {
        #[command(flatten)]
        flags: RunFlags,
        /// On Ctrl-C, uninstall the releases (`down`) before exiting
        #[arg(long)]
        cleanup: bool,
    },
    /// The CI entrypoint: deploy-local with the `ci` profile unless one is given,
    /// plain timestamped output
    Ci(RunFlags),
    /// What a bug report needs: slipway's version and commit, where each tool comes
    /// from (PATH or slipway's cache) and its version, the Docker engine, the cache
    /// directory and the configuration files. Reads only; missing tools are listed
    SelfCheck,
    /// Write a first pipeline.toml (and .env.example) for this repository from its
    /// Dockerfiles, Helm charts and scripts, or from a skaffold.yaml; prints what it
    /// decided and why
    Init {
        /// Convert this Skaffold configuration instead of reading the repository
        #[arg(long, value_name = "SKAFFOLD_YAML")]
        from: Option<PathBuf>,
        /// Replace an existing pipeline.toml / .env.example
        #[arg(long)]
        force: bool,
        /// Print the file instead of writing it
        #[arg(long)]
        dry_run: bool,
    },
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Not for people: run by the runtime wrapper of a dockerd slipway started, with
    /// runc's arguments after `--`. Drops from the OCI spec the capabilities this
    /// host's bounding set lacks; prints nothing.
    #[command(name = "__oci-capfilter", hide = true)]
    OciCapfilter {
        /// The bounding set to judge by, in hex (default: CapBnd of this process)
        #[arg(long, hide = true)]
        cap_bnd: Option<String>,
        /// runc's arguments
        #[arg(last = true)]
        runc_args: Vec<String>,
    },
}
