//! minikube: one profile; images go in with `minikube image load`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Cluster, Ensure, ImageProbe, NodeImage, Provider, ToolId};
use crate::model::Cmd;
use crate::tools::minikube as tool;
use crate::tools::{docker, provision};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Settings {
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

impl Default for Settings {
    fn default() -> Self {
        Settings {
            driver: docker(),
            kubernetes_version: None,
            cpus: None,
            memory: None,
        }
    }
}

/// Its name in pipeline.toml (`provider`, the `[cluster.minikube]` table).
pub const NAME: &str = "minikube";

pub struct Minikube;

impl Provider for Minikube {
    fn managed_context(&self, c: &Cluster) -> Option<String> {
        Some(c.name.clone())
    }

    fn tool(&self) -> Option<ToolId> {
        Some(ToolId::Minikube)
    }

    fn needs_docker(&self) -> bool {
        true
    }

    /// `minikube image load` exits 0 when the image is not in Docker, when the tar is
    /// garbage and when the import on the node fails (minikube v1.38.1).
    fn host_access(&self, c: &Cluster) -> Option<super::HostAccess> {
        Some(super::HostAccess::NodeAddress {
            address: Box::new(tool::ip(&c.name)),
        })
    }

    fn load_unverified(&self) -> bool {
        true
    }

    fn ensure(&self, c: &Cluster, _context: &str, budget: Duration) -> Ensure {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = rustix::process::geteuid().is_root();
        let m = &c.minikube;
        let start = |offline_base: Option<&str>, k8s: Option<&str>| {
            tool::start(
                &c.name,
                &tool::Start {
                    driver: &m.driver,
                    kubernetes_version: k8s,
                    cpus: m.cpus,
                    memory: m.memory.as_deref(),
                    offline_base,
                    root,
                },
                budget,
            )
        };
        // The docker driver pulls minikube's base image; offline that fails. Look
        // first, and build slipway's offline base image when it cannot come (the
        // Kubernetes it carries is the one the cluster then runs).
        let node = (m.driver == "docker")
            .then(provision::cache_root)
            .flatten()
            .map(|cache| {
                let offline = provision::offline_minikube_base();
                NodeImage {
                    image: tool::KICBASE.into(),
                    inspect: docker::image_id(tool::KICBASE),
                    pull: docker::pull(tool::KICBASE),
                    build: provision::recipe_cmd(
                        &provision::MINIKUBE,
                        &cache,
                        &["image"],
                        &[
                            ("K8S_VERSION", provision::OFFLINE_NODE_K8S),
                            ("SLIPWAY_MINIKUBE_BASE", &offline),
                        ],
                    ),
                    recipe: provision::MINIKUBE.name.into(),
                    packages: super::recipe_packages(&provision::MINIKUBE),
                    install_packages: false,
                    create: start(Some(&offline), Some(provision::OFFLINE_NODE_K8S)),
                    // The offline base runs its own Kubernetes: a pinned other one
                    // fails rather than being replaced.
                    pinned: m
                        .kubernetes_version
                        .as_deref()
                        .filter(|v| *v != provision::OFFLINE_NODE_K8S)
                        .map(|v| format!("cluster.minikube.kubernetes_version = {v:?}")),
                    offline,
                }
            });
        Ensure {
            title: format!("start minikube profile {}", c.name),
            cmd: start(None, m.kubernetes_version.as_deref()),
            probe: Some(tool::status(&c.name)),
            node,
        }
    }

    fn is_up(&self, _c: &Cluster, code: i32, stdout: &str) -> Result<bool, String> {
        tool::status_up(code, stdout)
    }

    fn load(&self, c: &Cluster, reference: &str, budget: Duration) -> Option<(String, Cmd)> {
        Some((
            format!("load {reference} into minikube profile {}", c.name),
            tool::image_load(&c.name, reference, budget),
        ))
    }

    fn image_probe(&self, c: &Cluster, reference: &str) -> Option<ImageProbe> {
        Some(ImageProbe {
            nodes: None,
            // The docker driver's node is a container named after the profile: ask
            // its CRI directly (fast); other drivers through minikube.
            per_node: if c.minikube.driver == "docker" {
                docker::exec(&c.name, &["crictl", "inspecti", reference])
            } else {
                tool::image_ls(&c.name)
            },
        })
    }

    fn holds_image(&self, stdout: &str, id: &str) -> bool {
        crate::tools::kind::parse_image_id(stdout).as_deref() == Some(id.trim())
            || tool::lists_image_id(stdout, id)
    }

    fn delete(&self, c: &Cluster) -> Option<Cmd> {
        Some(tool::delete(&c.name))
    }

    fn describe(&self, c: &Cluster) -> String {
        format!("minikube profile {}", c.name)
    }

    fn owns(&self, c: &Cluster, t: &crate::tools::k8s::ContextTarget) -> Result<(), String> {
        // minikube marks the clusters it writes to the kubeconfig.
        if t.cluster == c.name && t.provider.as_deref() == Some("minikube.sigs.k8s.io") {
            Ok(())
        } else {
            Err(format!(
                "cluster {:?} at {} (not marked as minikube's)",
                t.cluster, t.server
            ))
        }
    }
}
