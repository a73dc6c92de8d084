//! minikube: one profile; images go in with `minikube image load`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Cluster, Ensure, ImageProbe, Provider, ToolReq};
use crate::model::Cmd;
use crate::tools::minikube as tool;

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

pub struct Minikube;

impl Provider for Minikube {
    fn managed_context(&self, c: &Cluster) -> Option<String> {
        Some(c.name.clone())
    }

    fn tool(&self) -> Option<ToolReq> {
        Some(ToolReq {
            tool: "minikube".into(),
            min: "1.30.0".into(),
            why: "`image load` and `image ls --format json`".into(),
            version: tool::version(),
        })
    }

    fn needs_docker(&self) -> bool {
        true
    }

    fn ensure(&self, c: &Cluster, _context: &str, budget: Duration) -> Ensure {
        Ensure {
            title: format!("start minikube profile {}", c.name),
            cmd: tool::start(
                &c.name,
                &tool::Start {
                    driver: &c.minikube.driver,
                    kubernetes_version: c.minikube.kubernetes_version.as_deref(),
                    cpus: c.minikube.cpus,
                    memory: c.minikube.memory.as_deref(),
                },
                budget,
            ),
            probe: Some(tool::status(&c.name)),
            node: None,
        }
    }

    fn is_up(&self, _c: &Cluster, _code: i32, stdout: &str) -> Result<bool, String> {
        // Non-zero exit codes are a bitmask of what is stopped; the JSON says it all.
        Ok(tool::parse_running(stdout))
    }

    fn load(&self, c: &Cluster, reference: &str, budget: Duration) -> Option<(String, Cmd)> {
        Some((
            format!("load {reference} into minikube profile {}", c.name),
            tool::image_load(&c.name, reference, budget),
        ))
    }

    fn image_probe(&self, c: &Cluster, _reference: &str) -> Option<ImageProbe> {
        Some(ImageProbe {
            nodes: None,
            per_node: tool::image_ls(&c.name),
        })
    }

    fn holds_image(&self, stdout: &str, id: &str) -> bool {
        tool::lists_image_id(stdout, id)
    }

    fn delete(&self, c: &Cluster) -> Option<Cmd> {
        Some(tool::delete(&c.name))
    }

    fn describe(&self, c: &Cluster) -> String {
        format!("minikube profile {}", c.name)
    }

    fn owns(&self, c: &Cluster, t: &crate::tools::kubectl::ContextTarget) -> Result<(), String> {
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
