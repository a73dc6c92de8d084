//! The typed pipeline: what `pipeline.toml` means once parsed, merged with its profile,
//! interpolated and validated. Unknown keys are found by `serde_ignored` while each
//! section is decoded, so a typo is an error, never a silently ignored key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checks::Spec;
pub use crate::model::helm::{Apply, WaitStrategy};
pub use crate::model::Dur;
use crate::model::Stage;
pub use crate::providers::kind::{PortMapping, Settings as KindSettings};
pub use crate::providers::minikube::Settings as MinikubeSettings;
use crate::providers::ToolId;
pub use crate::providers::{Cluster, ProviderKind as Provider};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Project {
    /// Names the pipeline in reports and labels what slipway creates.
    pub name: String,
    /// Profile used when neither --profile nor SLIPWAY_PROFILE is given.
    #[serde(default = "default_profile")]
    pub default_profile: String,
    /// Dotenv file read for `${VAR}` interpolation and secrets (missing is fine).
    #[serde(default = "default_env_file")]
    pub env_file: PathBuf,
    /// Namespace for releases that do not name one.
    #[serde(default = "default_namespace")]
    pub namespace: String,
}

pub fn default_profile_name() -> String {
    default_profile()
}

fn default_profile() -> String {
    "local-kind".into()
}
fn default_env_file() -> PathBuf {
    ".env".into()
}
fn default_namespace() -> String {
    "default".into()
}

/// `[tools]`: the versions slipway provisions into its cache when a tool is missing
/// or too old. A version pinned here is also the least one accepted from PATH.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tools {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub helm: Option<String>,
    #[serde(default)]
    pub kubectl: Option<String>,
    #[serde(default)]
    pub minikube: Option<String>,
    /// Provision missing tools and start a stopped Docker engine (default true;
    /// `--no-provision` or `SLIPWAY_NO_PROVISION=1` turn it off).
    #[serde(default = "yes")]
    pub provision: bool,
    /// Fetch official releases from `MIRROR/HOST/PATH` instead of `https://HOST/PATH`
    /// (an `https://` URL).
    #[serde(default)]
    pub mirror: Option<String>,
    /// The SHA-256 of the release artifact slipway downloads for a tool's version on
    /// this machine (helm: the `.tar.gz`), for versions slipway's source pins none of.
    #[serde(default)]
    pub sha256: std::collections::BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

impl Tools {
    /// No `[tools]` table: the built-in versions, provisioning on.
    pub fn default_on() -> Tools {
        Tools {
            provision: true,
            ..Tools::default()
        }
    }

    /// The version pinned for `tool`, if any.
    pub fn pinned(&self, tool: ToolId) -> Option<&str> {
        self.pins()
            .into_iter()
            .find(|(t, _)| *t == tool)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Each key of `[tools]` that pins a tool's version, and its value.
    pub fn pins(&self) -> [(ToolId, &Option<String>); 4] {
        [
            (ToolId::Kind, &self.kind),
            (ToolId::Helm, &self.helm),
            (ToolId::Kubectl, &self.kubectl),
            (ToolId::Minikube, &self.minikube),
        ]
    }
}

/// With a registry, images are pushed there instead of loaded into the cluster.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Registry {
    /// Prefix for image references, e.g. "registry.example.com/team".
    pub url: String,
    /// With `password_env`: `docker login` before pushing (the password on stdin).
    #[serde(default)]
    pub username: Option<String>,
    /// The variable that holds the registry password (never in argv or logs).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Create a `kubernetes.io/dockerconfigjson` Secret of this name, with the login,
    /// in each release's namespace, for the chart's `imagePullSecrets`.
    #[serde(default)]
    pub pull_secret: Option<String>,
}

impl Registry {
    /// The registry's host (what `docker login` takes): the url up to its first `/`.
    pub fn host(&self) -> &str {
        self.url.split('/').next().unwrap_or(&self.url)
    }

    /// `(username, password variable)` when a login is configured.
    pub fn login(&self) -> Option<(String, String)> {
        self.username.clone().zip(self.password_env.clone())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagPolicy {
    /// A digest of the build inputs: unchanged sources give the same tag.
    #[default]
    Content,
    /// The git commit, with a `-dirty` suffix when the work tree has changes.
    Git,
    /// The UTC time of the run.
    Timestamp,
    /// The `tag` key, as written.
    Fixed,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Image {
    #[serde(skip_deserializing)]
    pub name: String,
    /// Repository part of the reference (default: the image's key).
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default = "dot")]
    pub context: PathBuf,
    /// Default: `<context>/Dockerfile`.
    #[serde(default)]
    pub dockerfile: Option<PathBuf>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub tag_policy: TagPolicy,
    #[serde(default)]
    pub tag: Option<String>,
    /// Files and directories hashed for the `content` tag (default: the context).
    #[serde(default)]
    pub inputs: Vec<PathBuf>,
    /// A command run before `docker build` (e.g. a cargo build of the binary the
    /// Dockerfile copies). Skipped together with the build when the image is cached.
    #[serde(default)]
    pub pre_build: Option<PreBuild>,
    /// `dev` only: files copied into the running pods instead of a rebuild.
    #[serde(default)]
    pub sync: Option<SyncRule>,
}

fn dot() -> PathBuf {
    ".".into()
}

impl Image {
    pub fn repository(&self) -> &str {
        self.repository.as_deref().unwrap_or(&self.name)
    }
    pub fn dockerfile(&self) -> PathBuf {
        self.dockerfile
            .clone()
            .unwrap_or_else(|| self.context.join("Dockerfile"))
    }
    pub fn inputs(&self) -> Vec<PathBuf> {
        if self.inputs.is_empty() {
            vec![self.context.clone(), self.dockerfile()]
        } else {
            let mut v = self.inputs.clone();
            v.push(self.dockerfile());
            v
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PreBuild {
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default = "pre_build_timeout")]
    pub timeout: Dur,
}

/// `[images.NAME.sync]`: when a `dev` round's change is only under `covers`, the
/// loop runs the image's `pre_build` (if any), copies each `files` entry into every
/// running pod of the releases that use the image, and restarts the image's command
/// in place: no image build, load or helm upgrade.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SyncRule {
    /// Paths (relative to the pipeline's directory) whose changes a sync covers.
    pub covers: Vec<PathBuf>,
    /// What is copied: a file on this machine and its path in the container.
    pub files: Vec<SyncFile>,
    /// Restart the image's command once the files are in (default true; false for
    /// files the process reads as it runs).
    #[serde(default = "yes")]
    pub restart: bool,
    /// How long the old process has after SIGTERM before SIGKILL, on a restart.
    #[serde(default = "restart_grace")]
    pub restart_grace: Dur,
    /// The image's command (default: its Dockerfile's ENTRYPOINT and CMD in exec form).
    #[serde(default)]
    pub command: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SyncFile {
    /// A file on this machine (relative to the pipeline's directory).
    pub from: PathBuf,
    /// Its absolute path in the container.
    pub to: String,
}

fn restart_grace() -> Dur {
    Dur::secs(10)
}

fn pre_build_timeout() -> Dur {
    Dur::secs(900)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnPending {
    /// Stop and tell the user how to recover.
    #[default]
    Fail,
    /// `helm rollback` to the last deployed revision, then upgrade.
    Rollback,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Release {
    #[serde(skip_deserializing)]
    pub name: String,
    /// Helm release name (default: the release's key).
    #[serde(default)]
    pub release: Option<String>,
    pub chart: PathBuf,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub values: Vec<PathBuf>,
    /// `--set` values; may reference `${images.NAME.repository|tag|ref}`.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// `--set-string` values (use for image tags, which may look like numbers).
    #[serde(default)]
    pub set_string: BTreeMap<String, String>,
    #[serde(default)]
    pub set_file: BTreeMap<String, PathBuf>,
    /// Kubernetes Secrets slipway creates in the namespace before the upgrade.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSpec>,
    /// Upper bound for helm and for each workload's rollout.
    #[serde(default = "release_timeout")]
    pub timeout: Dur,
    /// Pass `--wait` to helm (slipway's rollout stage waits either way).
    #[serde(default)]
    pub wait: bool,
    /// helm rolls back a failed upgrade (`--atomic` on Helm 3, `--rollback-on-failure`
    /// on Helm 4; implies `--wait`).
    #[serde(default)]
    pub atomic: bool,
    /// Helm 4's wait strategy when helm waits (`wait` or `atomic`): `watcher` or
    /// `legacy`. Helm 3 always waits the legacy way.
    #[serde(default)]
    pub wait_strategy: WaitStrategy,
    /// Helm 4's apply method: `server-side` (default), `client-side` or `auto` (the
    /// release's stored method). Helm 3 always applies client-side.
    #[serde(default)]
    pub apply: Apply,
    /// Helm 4: take over fields another manager (e.g. `kubectl set image`) changed,
    /// instead of failing the upgrade. Default: on with server-side apply; only
    /// allowed with it.
    #[serde(default)]
    pub force_conflicts: Option<bool>,
    /// A container that restarted this many times while slipway waits for the
    /// rollout is crash-looping: fail with its logs instead of waiting on.
    #[serde(default = "crash_limit")]
    pub crash_limit: u32,
    /// When the rollout or pod health stage fails, `helm rollback` the release.
    #[serde(default)]
    pub rollback_on_failure: bool,
    /// What to do with a release stuck in pending-install/upgrade/rollback.
    #[serde(default)]
    pub on_pending: OnPending,
    /// Workloads to wait for, as `kind/name` (default: every Deployment, StatefulSet
    /// and DaemonSet of the release).
    #[serde(default)]
    pub workloads: Option<Vec<String>>,
    /// Releases (their keys) that must be deployed and rolled out before this one
    /// is upgraded (helmfile's `needs`); `down` removes this one first.
    #[serde(default)]
    pub needs: Vec<String>,
}

fn crash_limit() -> u32 {
    2
}

fn release_timeout() -> Dur {
    Dur::secs(300)
}

impl Release {
    pub fn release_name(&self) -> &str {
        self.release.as_deref().unwrap_or(&self.name)
    }
    /// Does helm 4 get `--force-conflicts`?
    pub fn force_conflicts(&self) -> bool {
        self.force_conflicts
            .unwrap_or(self.apply == Apply::ServerSide)
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct SecretSpec {
    /// Secret key -> environment variable (also looked up in the env file).
    #[serde(default)]
    pub from_env: BTreeMap<String, String>,
    /// Every entry of this dotenv file becomes a key of the Secret.
    #[serde(default)]
    pub env_file: Option<PathBuf>,
}

/// A smoke check: where it runs and how long it may retry, plus its kind's keys
/// (see [`crate::checks`]).
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    /// Release whose namespace the check runs in (default: the only release).
    pub release: Option<String>,
    pub namespace: Option<String>,
    pub deadline: Dur,
    pub interval: Dur,
    pub spec: Spec,
}

/// The keys every check kind has, whatever its `type`.
#[derive(Clone, Debug, Deserialize)]
pub struct CheckCommon {
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default = "check_deadline")]
    pub deadline: Dur,
    #[serde(default = "check_interval")]
    pub interval: Dur,
}

pub const CHECK_COMMON_KEYS: &[&str] = &["type", "release", "namespace", "deadline", "interval"];

fn check_deadline() -> Dur {
    Dur::secs(60)
}
fn check_interval() -> Dur {
    Dur::secs(1)
}

/// Budget for each stage (`[timeouts] STAGE = "…"`); a command's own timeout is
/// capped by what its stage has left.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Timeouts(pub BTreeMap<Stage, Dur>);

impl Timeouts {
    pub fn budget(&self, s: Stage) -> Duration {
        self.0.get(&s).map_or_else(|| s.default_budget(), |d| d.0)
    }
}
