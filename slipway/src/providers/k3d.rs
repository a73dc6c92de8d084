//! k3d (not shipped): a k3s cluster in Docker containers; images go in with
//! `k3d image import`. It exists to show, and test, what adding a provider takes:
//! this file, its tool's row in [`crate::tools::registry`], and its registration
//! (a [`super::ProviderKind`] variant and its arm in [`super::get`]).

use std::time::Duration;

use super::{Cluster, Ensure, ImageProbe, Provider, ToolId};
use crate::model::Cmd;
use crate::tools::{docker, PROBE};

fn k3d<'a>(args: impl IntoIterator<Item = &'a str>) -> Cmd {
    Cmd::new(ToolId::K3d.name(), args)
}

pub struct K3d;

impl Provider for K3d {
    fn managed_context(&self, c: &Cluster) -> Option<String> {
        Some(format!("k3d-{}", c.name))
    }

    fn tool(&self) -> Option<ToolId> {
        Some(ToolId::K3d)
    }

    fn needs_docker(&self) -> bool {
        true
    }

    fn ensure(&self, c: &Cluster, _context: &str, budget: Duration) -> Ensure {
        let wait = format!("{}s", budget.as_secs());
        Ensure {
            title: format!("create k3d cluster {}", c.name),
            cmd: k3d(["cluster", "create", &c.name, "--wait", "--timeout", &wait]).timeout(budget),
            probe: Some(k3d(["cluster", "get", &c.name]).timeout(PROBE)),
            node: None,
        }
    }

    /// `k3d cluster get NAME` exits 0 only when the cluster exists.
    fn is_up(&self, _c: &Cluster, code: i32, _stdout: &str) -> Result<bool, String> {
        Ok(code == 0)
    }

    fn load(&self, c: &Cluster, reference: &str, budget: Duration) -> Option<(String, Cmd)> {
        Some((
            format!("import {reference} into k3d cluster {}", c.name),
            k3d(["image", "import", reference, "--cluster", &c.name]).timeout(budget),
        ))
    }

    fn image_probe(&self, c: &Cluster, reference: &str) -> Option<ImageProbe> {
        Some(ImageProbe {
            nodes: None,
            per_node: docker::exec(
                &format!("k3d-{}-server-0", c.name),
                &["crictl", "inspecti", reference],
            ),
        })
    }

    fn holds_image(&self, stdout: &str, id: &str) -> bool {
        crate::tools::kind::parse_image_id(stdout).as_deref() == Some(id.trim())
    }

    fn delete(&self, c: &Cluster) -> Option<Cmd> {
        Some(k3d(["cluster", "delete", &c.name]).timeout(Duration::from_secs(300)))
    }

    fn describe(&self, c: &Cluster) -> String {
        format!("k3d cluster {}", c.name)
    }

    fn owns(&self, c: &Cluster, t: &crate::tools::k8s::ContextTarget) -> Result<(), String> {
        let host = crate::tools::kubectl::server_host(&t.server);
        if t.cluster == format!("k3d-{}", c.name) && (super::is_loopback(host) || host == "0.0.0.0")
        {
            Ok(())
        } else {
            Err(format!("cluster {:?} at {}", t.cluster, t.server))
        }
    }
}
