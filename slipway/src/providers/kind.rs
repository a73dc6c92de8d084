//! kind: a cluster of Docker containers; images go in with `kind load`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Cluster, Ensure, ImageProbe, LocalRegistry, NodeImage, Provider, ToolId};
use crate::model::{Cmd, Stdin};
use crate::tools::{docker, kind as tool, provision};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Settings {
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
    pub wait: crate::model::Dur,
    /// How images reach the nodes: `kind load` (the whole image, every time), a
    /// local registry wired into the nodes (only changed layers travel), or `auto`
    /// (the registry when it is built, else `kind load`).
    #[serde(default)]
    pub delivery: Delivery,
    /// Why `auto` became what it became (set by [`Settings::resolve_delivery`]).
    #[serde(skip)]
    pub delivery_why: Option<String>,
    /// With `delivery = "registry"`: the registry images are pushed to and pods pull
    /// from, `localhost:PORT` (slipway runs it as container `slipway-registry` when
    /// the cluster does not advertise one).
    #[serde(default = "default_registry")]
    pub registry: String,
}

/// `[cluster.kind] delivery`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, strum::Display)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Delivery {
    /// The local registry when its binary is built (a stat in slipway's cache), else
    /// `kind load`: the registry measures faster for every image size (a one-layer
    /// change: 0.2-0.5 s against 1.0-1.7 s for the 5 MB sample and 5-10 s for
    /// 200 MB), but building it the first time takes Go and minutes.
    #[default]
    Auto,
    /// `kind load docker-image`: every node gets the whole image.
    Load,
    /// `docker push` to the local registry, then every node pulls it (only the
    /// layers it lacks).
    Registry,
}

/// The container slipway runs the local registry as (`delivery = "registry"`), and
/// its data volume `<name>-data`.
pub const REGISTRY_CONTAINER: &str = "slipway-registry";

fn default_registry() -> String {
    "localhost:5001".into()
}

fn kind_wait() -> crate::model::Dur {
    crate::model::Dur::secs(180)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            node_image: None,
            port_mappings: vec![],
            disable_default_cni: false,
            wait: kind_wait(),
            delivery: Delivery::default(),
            delivery_why: None,
            registry: default_registry(),
        }
    }
}

impl Settings {
    /// Decide `delivery = "auto"` from one local fact: is the local registry's binary
    /// in slipway's cache (`registry_built`, what `cargo xtask registry` or any
    /// `delivery = "registry"` run leaves there)? Saying why, for the plan and the
    /// summary. Any other setting is kept as it is.
    pub fn resolve_delivery(&mut self, registry_built: bool) {
        if self.delivery != Delivery::Auto {
            return;
        }
        (self.delivery, self.delivery_why) = match registry_built {
            true => (
                Delivery::Registry,
                Some("auto: the local registry is built".into()),
            ),
            false => (
                Delivery::Load,
                Some("auto: no local registry yet; `delivery = \"registry\"` builds one".into()),
            ),
        };
    }
}

pub use crate::tools::kind::PortMapping;

/// Its name in pipeline.toml (`provider`, the `[cluster.kind]` table).
pub const NAME: &str = "kind";

pub struct Kind;

impl Provider for Kind {
    fn managed_context(&self, c: &Cluster) -> Option<String> {
        Some(format!("kind-{}", c.name))
    }

    fn tool(&self) -> Option<ToolId> {
        Some(ToolId::Kind)
    }

    fn needs_docker(&self) -> bool {
        true
    }

    fn ensure(&self, c: &Cluster, _context: &str, budget: Duration) -> Ensure {
        let s = &c.kind;
        let create = |image: Option<&str>, no_cni: bool| {
            let mut cmd = Cmd::new(
                "kind",
                ["create", "cluster", "--name", &c.name, "--config", "-"],
            );
            if let Some(img) = image {
                cmd = cmd.args(["--image", img]);
            }
            cmd.arg(format!("--wait={}s", s.wait.0.as_secs()))
                .stdin(Stdin::Text {
                    text: tool::cluster_config(no_cni, &s.port_mappings),
                })
                .timeout(budget)
                .grace(Duration::from_secs(30))
        };
        let cmd = create(s.node_image.as_deref(), s.disable_default_cni);
        // kind pulls its node image itself, and offline that fails after minutes of
        // retries: look first, and build slipway's offline image when it cannot come.
        let node = provision::cache_root().map(|cache| {
            let image = s
                .node_image
                .clone()
                .unwrap_or_else(|| tool::DEFAULT_NODE_IMAGE.to_string());
            let offline = match image.strip_prefix("slipway-local/kind-node:") {
                Some(_) => image.clone(),
                None => provision::offline_node_image(),
            };
            let k8s = offline
                .rsplit(':')
                .next()
                .unwrap_or(provision::OFFLINE_NODE_K8S);
            NodeImage {
                inspect: docker::image_id(&image),
                pull: docker::pull(&image),
                build: provision::recipe_cmd(
                    &provision::NODE_IMAGE,
                    &cache,
                    &[],
                    &[("K8S_VERSION", k8s), ("SLIPWAY_NODE_IMAGE", &offline)],
                ),
                recipe: provision::NODE_IMAGE.name.into(),
                packages: super::recipe_packages(&provision::NODE_IMAGE),
                install_packages: false,
                // The offline image brings its own CNI (a bridge), not kindnet.
                create: create(Some(&offline), true),
                // A node image the user names is theirs: another Kubernetes never
                // replaces it (slipway's own offline image, named, is built as asked).
                pinned: (s.node_image.is_some() && image != offline)
                    .then(|| format!("cluster.kind.node_image = {image:?}")),
                offline,
                image,
            }
        });
        Ensure {
            title: format!("create kind cluster {}", c.name),
            cmd,
            probe: Some(tool::get_clusters()),
            node,
        }
    }

    fn is_up(&self, c: &Cluster, code: i32, stdout: &str) -> Result<bool, String> {
        if code != 0 {
            return Err(format!("`kind get clusters` exited with {code}"));
        }
        Ok(tool::parse_clusters(stdout).contains(&c.name))
    }

    fn host_access(&self, c: &Cluster) -> Option<super::HostAccess> {
        Some(super::HostAccess::Mapped {
            ports: c
                .kind
                .port_mappings
                .iter()
                .map(|m| (m.container_port, m.listen_address.clone(), m.host_port))
                .collect(),
        })
    }

    fn registry_host(&self, c: &Cluster) -> Option<String> {
        (c.kind.delivery == Delivery::Registry).then(|| c.kind.registry.clone())
    }

    fn local_registry(&self, c: &Cluster, context: &str) -> Option<LocalRegistry> {
        let host = self.registry_host(c)?;
        let port = host.rsplit(':').next().unwrap_or("5001");
        let wire = provision::cache_root().map(|cache| {
            provision::recipe_cmd(
                &provision::REGISTRY,
                &cache,
                &[],
                &[
                    ("CLUSTER", c.name.as_str()),
                    ("REG_NAME", REGISTRY_CONTAINER),
                    ("REG_PORT", port),
                    ("REG_VERSION", provision::REGISTRY_VERSION),
                    ("KUBE_CONTEXT", context),
                ],
            )
            .timeout(Duration::from_secs(15 * 60))
        });
        Some(LocalRegistry {
            wire,
            advertised: crate::tools::kubectl::get_registry_hosting(context),
            remove: vec![
                docker::remove_container(REGISTRY_CONTAINER),
                docker::remove_volume(&format!("{REGISTRY_CONTAINER}-data")),
            ],
            host,
        })
    }

    fn load(&self, c: &Cluster, reference: &str, budget: Duration) -> Option<(String, Cmd)> {
        if c.kind.delivery == Delivery::Registry {
            return None;
        }
        Some((
            format!("load {reference} into kind cluster {}", c.name),
            tool::load(&c.name, reference, budget),
        ))
    }

    fn image_probe(&self, c: &Cluster, reference: &str) -> Option<ImageProbe> {
        Some(ImageProbe {
            nodes: Some(tool::get_nodes(&c.name)),
            per_node: docker::exec("{NODE}", &["crictl", "inspecti", reference]),
        })
    }

    fn registry_pull(&self, c: &Cluster, reference: &str) -> Option<ImageProbe> {
        (c.kind.delivery == Delivery::Registry).then(|| ImageProbe {
            nodes: Some(tool::get_nodes(&c.name)),
            per_node: tool::node_pull("{NODE}", reference),
        })
    }

    fn node_names(&self, stdout: &str) -> Vec<String> {
        tool::parse_clusters(stdout)
    }

    fn holds_image(&self, stdout: &str, id: &str) -> bool {
        tool::parse_image_id(stdout)
            .or_else(|| tool::parse_pulled_id(stdout))
            .as_deref()
            == Some(id.trim())
    }

    fn delete(&self, c: &Cluster) -> Option<Cmd> {
        Some(tool::delete(&c.name))
    }

    fn describe(&self, c: &Cluster) -> String {
        format!("kind cluster {}", c.name)
    }

    fn owns(&self, c: &Cluster, t: &crate::tools::k8s::ContextTarget) -> Result<(), String> {
        let host = crate::tools::kubectl::server_host(&t.server);
        if t.cluster == format!("kind-{}", c.name) && super::is_loopback(host) {
            Ok(())
        } else {
            Err(format!("cluster {:?} at {}", t.cluster, t.server))
        }
    }
}
