//! The typed pipeline: what `pipeline.toml` means once parsed, merged with its profile,
//! interpolated and validated. Every struct here is strict (`deny_unknown_fields`) so a
//! typo is an error, never a silently ignored key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// A duration written as a string in pipeline.toml: "90s", "5m", "1h 30m".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
}

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        humantime::format_duration(d.0).to_string()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map(Dur).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?} ({e}); write it like \"90s\", \"5m\" or \"1h 30m\""
            ))
        })
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    #[default]
    Kind,
    Minikube,
    Existing,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Kind => "kind",
            Provider::Minikube => "minikube",
            Provider::Existing => "existing",
        })
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    #[serde(default)]
    pub provider: Provider,
    /// kind cluster name or minikube profile.
    #[serde(default = "default_cluster_name")]
    pub name: String,
    /// Kube context. Derived for kind (`kind-<name>`) and minikube (`<name>`);
    /// required for `existing`.
    #[serde(default)]
    pub context: Option<String>,
    /// Create the cluster when it does not exist (kind, minikube).
    #[serde(default = "yes")]
    pub create: bool,
    #[serde(default)]
    pub kind: KindSettings,
    #[serde(default)]
    pub minikube: MinikubeSettings,
}

fn default_cluster_name() -> String {
    "slipway".into()
}
fn yes() -> bool {
    true
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            provider: Provider::Kind,
            name: default_cluster_name(),
            context: None,
            create: true,
            kind: KindSettings::default(),
            minikube: MinikubeSettings::default(),
        }
    }
}

impl Cluster {
    /// The kube context every kubectl and helm call is pinned to.
    pub fn kube_context(&self) -> String {
        match (&self.context, self.provider) {
            (Some(c), _) => c.clone(),
            (None, Provider::Kind) => format!("kind-{}", self.name),
            (None, Provider::Minikube) => self.name.clone(),
            (None, Provider::Existing) => String::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KindSettings {
    /// Node image for `kind create cluster --image` (default: kind's own).
    #[serde(default)]
    pub node_image: Option<String>,
    /// Host ports mapped into the control-plane node (for NodePort services).
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// Disable kind's default CNI (kindnet); the node image then has to bring one.
    #[serde(default)]
    pub disable_default_cni: bool,
    /// How long `kind create cluster --wait` waits for the control plane.
    #[serde(default = "kind_wait")]
    pub wait: Dur,
}

fn kind_wait() -> Dur {
    Dur::secs(180)
}

impl Default for KindSettings {
    fn default() -> Self {
        KindSettings {
            node_image: None,
            port_mappings: vec![],
            disable_default_cni: false,
            wait: kind_wait(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    pub container_port: u16,
    pub host_port: u16,
    #[serde(default = "loopback")]
    pub listen_address: String,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn loopback() -> String {
    "127.0.0.1".into()
}
fn tcp() -> String {
    "TCP".into()
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MinikubeSettings {
    #[serde(default = "docker")]
    pub driver: String,
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    #[serde(default)]
    pub cpus: Option<u32>,
    #[serde(default)]
    pub memory: Option<String>,
}

fn docker() -> String {
    "docker".into()
}

impl Default for MinikubeSettings {
    fn default() -> Self {
        MinikubeSettings {
            driver: docker(),
            kubernetes_version: None,
            cpus: None,
            memory: None,
        }
    }
}

/// With a registry, images are pushed there instead of loaded into the cluster.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Prefix for image references, e.g. "registry.example.com/team".
    pub url: String,
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct PreBuild {
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default = "pre_build_timeout")]
    pub timeout: Dur,
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
#[serde(deny_unknown_fields)]
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
    /// Pass `--atomic` (helm rolls back a failed upgrade; implies --wait).
    #[serde(default)]
    pub atomic: bool,
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
}

fn release_timeout() -> Dur {
    Dur::secs(300)
}

impl Release {
    pub fn release_name(&self) -> &str {
        self.release.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// Secret key -> environment variable (also looked up in the env file).
    #[serde(default)]
    pub from_env: BTreeMap<String, String>,
    /// Every entry of this dotenv file becomes a key of the Secret.
    #[serde(default)]
    pub env_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckType {
    #[default]
    Http,
    Kubectl,
}

/// A smoke check. One flat struct: `type` says which keys apply, and validation
/// rejects keys of the other type.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    #[serde(skip_deserializing)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: CheckType,
    /// Release whose namespace the check runs in (default: the only release).
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    // http
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub expect_status: Option<u16>,
    #[serde(default)]
    pub body_contains: Option<String>,
    /// JSON fields that must equal the given values; keys are dotted paths.
    #[serde(default)]
    pub json: BTreeMap<String, toml::Value>,
    // kubectl
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub condition: Option<String>,
    // both
    #[serde(default = "check_deadline")]
    pub deadline: Dur,
    #[serde(default = "check_interval")]
    pub interval: Dur,
}

fn check_deadline() -> Dur {
    Dur::secs(60)
}
fn check_interval() -> Dur {
    Dur::secs(1)
}

/// Budget for each stage; a command's own timeout is capped by what its stage has left.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    pub preflight: Dur,
    pub cluster: Dur,
    pub build: Dur,
    pub load: Dur,
    pub secrets: Dur,
    pub deploy: Dur,
    pub rollout: Dur,
    pub health: Dur,
    pub smoke: Dur,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            preflight: Dur::secs(60),
            cluster: Dur::secs(600),
            build: Dur::secs(1800),
            load: Dur::secs(600),
            secrets: Dur::secs(120),
            deploy: Dur::secs(900),
            rollout: Dur::secs(600),
            health: Dur::secs(120),
            smoke: Dur::secs(300),
        }
    }
}
