//! After a load whose tool says it worked whether or not it did (`minikube image
//! load`): every node must now hold the image's local ID. After a push to the local
//! registry the same step makes every node pull the image (`pull`), and each node's
//! pull must name that ID.

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::{short_id, StepKind};
use crate::model::{Cmd, Error, Stage};
use crate::providers::{Cluster, ImageProbe};

#[derive(Clone, Debug, Serialize)]
pub struct VerifyLoaded {
    pub reference: String,
    pub local_id: Cmd,
    pub probe: ImageProbe,
    /// The per-node command pulls from the local registry (not only looks).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
}

impl StepKind for VerifyLoaded {
    fn commands(&self) -> Vec<&Cmd> {
        probe_commands(&self.local_id, &self.probe)
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(s, &self.local_id, "the local image's ID");
        if let Some(n) = &self.probe.nodes {
            v.line(s, n, "the nodes");
        }
        let what = if self.pull {
            "each node pulls it from the local registry now, and must hold that ID"
        } else {
            "each node must hold that ID"
        };
        v.line(s, &self.probe.per_node, what);
    }
}

impl VerifyLoaded {
    /// What the nodes hold after the load (`found`: the image's ID and how many nodes
    /// hold it, when all do): a note, or the finding that the load did not load.
    pub fn verdict(
        &self,
        stage: Stage,
        cluster: &Cluster,
        found: Option<(String, usize)>,
    ) -> Result<String, Error> {
        let reference = &self.reference;
        match found {
            Some((id, nodes)) => Ok(format!(
                "{reference} ({}) is on all {nodes} node(s){}",
                short_id(&id),
                if self.pull { ", pulled from the local registry" } else { "" }
            )),
            None if self.pull => Err(Error::new(
                stage,
                format!(
                    "the nodes of {} could not pull {reference} from the local registry, though the push succeeded",
                    cluster.provider().describe(cluster)
                ),
            )
            .hint("each node pulls through /etc/containerd/certs.d/<registry>/hosts.toml: `docker logs slipway-registry` shows its requests; `--force` wires the registry into the nodes again; `cluster.kind.delivery = \"load\"` goes back to kind load")),
            None => Err(Error::new(
                stage,
                format!(
                    "{reference} is not on the nodes of {} after the load, though the load command succeeded",
                    cluster.provider().describe(cluster)
                ),
            )
            .hint("the load command exits 0 even when it fails (minikube image load does): check the image exists in Docker (`docker image inspect`) and that the node has disk space; rerun with --force")),
        }
    }
}

/// An image probe's commands: the local ID, the node list, the per-node check.
pub(crate) fn probe_commands<'a>(local_id: &'a Cmd, probe: &'a ImageProbe) -> Vec<&'a Cmd> {
    let mut v = vec![local_id];
    v.extend(probe.nodes.iter());
    v.push(&probe.per_node);
    v
}
