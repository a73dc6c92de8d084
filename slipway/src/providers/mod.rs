//! Cluster providers: everything a kind of cluster knows — its settings, the tool that
//! manages it, how to create it and tell it is up, how to get an image onto its nodes
//! and check it is there, how to delete it, and which kube context it owns.
//!
//! Providers build commands and read their output; they never run anything. Adding a
//! provider (say k3d) is one file here plus one registration: a variant of
//! [`ProviderKind`] and its arm in [`get`] (and, if it has settings, a field of
//! [`Cluster`] for its `[cluster.NAME]` table).

pub mod existing;
#[cfg(test)]
pub mod k3d;
pub mod kind;
pub mod minikube;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use strum::{Display, EnumIter, IntoStaticStr};

use crate::model::Cmd;
pub use crate::tools::registry::ToolId;

#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Deserialize,
    Serialize,
    Display,
    EnumIter,
    IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum ProviderKind {
    #[default]
    Kind,
    Minikube,
    Existing,
    #[cfg(test)]
    K3d,
}

impl ProviderKind {
    /// Its name in pipeline.toml (`provider = "…"`, the `[cluster.NAME]` table).
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The registry: one arm per provider.
pub fn get(kind: ProviderKind) -> &'static dyn Provider {
    match kind {
        ProviderKind::Kind => &kind::Kind,
        ProviderKind::Minikube => &minikube::Minikube,
        ProviderKind::Existing => &existing::Existing,
        #[cfg(test)]
        ProviderKind::K3d => &k3d::K3d,
    }
}

/// `[cluster]` in pipeline.toml.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Cluster {
    #[serde(default)]
    pub provider: ProviderKind,
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
    pub kind: kind::Settings,
    #[serde(default)]
    pub minikube: minikube::Settings,
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
            provider: ProviderKind::Kind,
            name: default_cluster_name(),
            context: None,
            create: true,
            kind: kind::Settings::default(),
            minikube: minikube::Settings::default(),
        }
    }
}

impl Cluster {
    pub fn provider(&self) -> &'static dyn Provider {
        get(self.provider)
    }

    /// The kube context every kubectl and helm call is pinned to.
    pub fn kube_context(&self) -> String {
        self.provider()
            .managed_context(self)
            .or_else(|| self.context.clone())
            .unwrap_or_default()
    }
}

/// How this machine reaches the cluster's NodePorts.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "how", rename_all = "snake_case")]
pub enum HostAccess {
    /// Node ports published on this machine (kind's `port_mappings`):
    /// `(node port, address, host port)`.
    Mapped { ports: Vec<(u16, String, u16)> },
    /// The node's own address, printed by `address` (`minikube ip`).
    NodeAddress { address: Box<Cmd> },
}

impl HostAccess {
    /// Where this machine reaches `node_port` (`node_address`: what `address` printed,
    /// for [`HostAccess::NodeAddress`]); `None` when kind does not publish it.
    pub fn target(&self, node_address: Option<&str>, node_port: u16) -> Option<(String, u16)> {
        match (self, node_address) {
            (_, Some(addr)) => Some((addr.to_string(), node_port)),
            (HostAccess::Mapped { ports }, None) => ports
                .iter()
                .find(|(node, _, _)| *node == node_port)
                .map(|(_, addr, host)| (addr.clone(), *host)),
            (HostAccess::NodeAddress { .. }, None) => None,
        }
    }
}

/// A registry beside the cluster that its nodes pull from.
#[derive(Clone, Debug, Serialize)]
pub struct LocalRegistry {
    /// What image references start with (`localhost:5001`).
    pub host: String,
    /// Starts the registry and wires it into the nodes (idempotent); `None` without
    /// a cache directory for slipway's recipe.
    pub wire: Option<Cmd>,
    /// Reads the registry the cluster advertises (KEP-1755).
    pub advertised: Cmd,
    /// `down --cluster`: remove the registry's container and its data volume, so
    /// nothing slipway started for the cluster outlives it.
    pub remove: Vec<Cmd>,
}

/// How a provider brings its cluster up: a probe that says whether it already is,
/// and the command that creates or checks it.
pub struct Ensure {
    pub title: String,
    pub cmd: Cmd,
    /// When it says the cluster is up, `cmd` is skipped.
    pub probe: Option<Cmd>,
    /// The node image `cmd` needs, and the offline way when it cannot be pulled.
    pub node: Option<NodeImage>,
}

/// A Debian package a build recipe needs: the program that shows it is installed, and
/// the packages that bring it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Package {
    pub program: String,
    pub packages: Vec<String>,
}

/// What a build recipe installs with apt-get when allowed (`--install-packages`), as
/// it declares ([`crate::tools::provision::Recipe::packages`]).
pub fn recipe_packages(recipe: &crate::tools::provision::Recipe) -> Vec<Package> {
    recipe
        .packages
        .iter()
        .map(|(program, packages)| Package {
            program: program.to_string(),
            packages: packages.iter().map(|s| s.to_string()).collect(),
        })
        .collect()
}

/// A cluster's node image: present, else pulled, else (when the registry cannot be
/// reached) built offline with slipway's recipe and the cluster created from that.
#[derive(Clone, Debug, Serialize)]
pub struct NodeImage {
    pub image: String,
    pub inspect: Cmd,
    pub pull: Cmd,
    /// The offline image's name (never the public one's).
    pub offline: String,
    pub build: Cmd,
    /// The recipe `build` runs (see [`crate::tools::provision::recipe_named`]).
    pub recipe: String,
    /// The cluster's creation from the offline image.
    pub create: Cmd,
    /// The Debian packages `build` needs (see [`Package`]).
    pub packages: Vec<Package>,
    /// `--install-packages`: `build` may apt-get install missing ones itself;
    /// otherwise the run fails with the command to install them.
    pub install_packages: bool,
    /// The user's pin (the key and its value) that the offline image would not honour:
    /// when set and the image cannot be pulled, the run fails with the pull's error
    /// instead of falling back. Only the default falls back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned: Option<String>,
}

/// How to check that every node holds an image: list the nodes (if the provider
/// has several), then ask each one (`{NODE}` is filled in per node).
#[derive(Clone, Debug, Serialize)]
pub struct ImageProbe {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Cmd>,
    pub per_node: Cmd,
}

pub trait Provider: Sync {
    /// The kube context of the cluster this provider creates and manages; `None`
    /// when it manages none (`existing`).
    fn managed_context(&self, c: &Cluster) -> Option<String>;

    /// The tool that manages the cluster, if any (declared in
    /// [`crate::tools::registry`]).
    fn tool(&self) -> Option<ToolId>;

    /// Its load command can exit 0 without loading (`minikube image load`): the load
    /// is checked on the nodes afterwards.
    fn load_unverified(&self) -> bool {
        false
    }

    /// Docker is needed to run the cluster itself (not only to build images).
    fn needs_docker(&self) -> bool {
        false
    }

    /// `context` is the kube context the run uses (`--kube-context` may override the
    /// pipeline's; for a managed cluster the guard keeps them equal).
    fn ensure(&self, c: &Cluster, context: &str, budget: Duration) -> Ensure;

    /// From the `ensure` probe's exit code and stdout: is the cluster up? `Err` when
    /// the answer cannot be read.
    fn is_up(&self, c: &Cluster, code: i32, stdout: &str) -> Result<bool, String>;

    /// How NodePort Services are reached from this machine (`None`: not at all, or
    /// not known, as for a remote cluster).
    fn host_access(&self, _c: &Cluster) -> Option<HostAccess> {
        None
    }

    /// The host of a registry wired into the nodes that images are pushed to instead
    /// of loaded (kind's `delivery = "registry"`).
    fn registry_host(&self, _c: &Cluster) -> Option<String> {
        None
    }

    /// That registry, with how to wire it in and how to read what the cluster
    /// advertises.
    fn local_registry(&self, _c: &Cluster, _context: &str) -> Option<LocalRegistry> {
        None
    }

    /// The command that puts a local image onto the cluster's nodes (`None`: images
    /// travel through a registry).
    fn load(&self, c: &Cluster, reference: &str, budget: Duration) -> Option<(String, Cmd)>;

    fn image_probe(&self, c: &Cluster, reference: &str) -> Option<ImageProbe>;

    /// After a push to the local registry: make every node pull the image now, so
    /// pods start without a pull and `imagePullPolicy: Never` charts keep working;
    /// each node's answer names the image ID it holds (see `holds_image`).
    fn registry_pull(&self, _c: &Cluster, _reference: &str) -> Option<ImageProbe> {
        None
    }

    /// Node names from the `nodes` probe.
    fn node_names(&self, stdout: &str) -> Vec<String> {
        stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// Does a node's answer show the image with this local image ID?
    fn holds_image(&self, stdout: &str, id: &str) -> bool;

    fn delete(&self, c: &Cluster) -> Option<Cmd>;

    /// Human name of the cluster, for messages ("kind cluster slipway").
    fn describe(&self, c: &Cluster) -> String;

    /// Does the managed context, as the kubeconfig has it, point at the cluster this
    /// provider made? `Err` says what it points at instead.
    fn owns(&self, c: &Cluster, target: &crate::tools::k8s::ContextTarget) -> Result<(), String> {
        let _ = (c, target);
        Err("slipway manages no cluster for this provider".into())
    }
}

/// An API server on this machine: loopback.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_with_settings_name_their_table_as_pipeline_toml_names_them() {
        assert_eq!(ProviderKind::Kind.name(), kind::NAME);
        assert_eq!(ProviderKind::Minikube.name(), minikube::NAME);
        assert_eq!(ProviderKind::K3d.to_string(), "k3d");
    }
}
