//! The command line. Global options have environment fallbacks (SLIPWAY_*), so a CI
//! job can set them once.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::plan::Job;
use crate::report::{ColorChoice, OutputFormat};

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    about = "slipway: take services from source to a healthy, smoke-tested release on a local kind or minikube cluster",
    after_help = "Exit codes: 0 ok, 2 bad pipeline file or usage, 10-18 the stage that failed (preflight, cluster, build, load, secrets, deploy, rollout, health, smoke), 20 status/down failed, 130 interrupted."
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
    pub output: OutputFormat,
    /// Color on stderr (auto honours NO_COLOR and whether stderr is a terminal)
    #[arg(
        long,
        global = true,
        env = "SLIPWAY_COLOR",
        value_enum,
        default_value = "auto"
    )]
    pub color: ColorChoice,
}

#[derive(Args, Debug, Clone, Default)]
pub struct RunFlags {
    /// Rebuild, reload and redeploy even when nothing changed
    #[arg(long, env = "SLIPWAY_FORCE")]
    pub force: bool,
    /// Let deploy-local use a kube context that is not the local cluster it manages
    #[arg(long, env = "SLIPWAY_ALLOW_CONTEXT")]
    pub allow_context: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Preflight, cluster, build, load, secrets, deploy, rollout, health, smoke
    DeployLocal(RunFlags),
    /// Run the smoke checks against what is deployed now
    Smoke,
    /// Check tools, Docker, disk, kube context and secret variables
    Preflight {
        /// Check what this job needs
        #[arg(long, value_enum, default_value = "deploy-local")]
        job: JobArg,
    },
    /// Print every command a job would run, in order, without running anything
    Plan {
        #[arg(long, value_enum, default_value = "deploy-local")]
        job: JobArg,
        #[command(flatten)]
        flags: RunFlags,
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
    },
    /// The CI entrypoint: deploy-local with the `ci` profile unless one is given,
    /// plain timestamped output
    Ci(RunFlags),
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum JobArg {
    DeployLocal,
    Build,
    Load,
    Deploy,
    Smoke,
    Preflight,
}

impl From<JobArg> for Job {
    fn from(j: JobArg) -> Job {
        match j {
            JobArg::DeployLocal => Job::DeployLocal,
            JobArg::Build => Job::Build,
            JobArg::Load => Job::Load,
            JobArg::Deploy => Job::Deploy,
            JobArg::Smoke => Job::Smoke,
            JobArg::Preflight => Job::Preflight,
        }
    }
}
