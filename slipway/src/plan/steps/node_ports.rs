//! The releases' NodePort Services, reached from this machine the way a user would
//! (kind's mapped ports, minikube's node address).

use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::{Cmd, Error, Stage};
use crate::providers::HostAccess;
use crate::tools::k8s;

#[derive(Clone, Debug, Serialize)]
pub struct NodePorts {
    pub namespace: String,
    pub releases: Vec<String>,
    pub services: Cmd,
    pub access: HostAccess,
}

impl StepKind for NodePorts {
    fn commands(&self) -> Vec<&Cmd> {
        match &self.access {
            HostAccess::NodeAddress { address } => vec![&self.services, address],
            HostAccess::Mapped { .. } => vec![&self.services],
        }
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(s, &self.services, "the releases' NodePort Services");
        match &self.access {
            HostAccess::NodeAddress { address } => v.line(
                s,
                address,
                "each at http://ADDRESS:NODEPORT, which must accept a connection",
            ),
            HostAccess::Mapped { ports } => {
                let mapped: Vec<String> = ports
                    .iter()
                    .map(|(node, addr, host)| format!("{node} -> http://{addr}:{host}"))
                    .collect();
                let _ = if mapped.is_empty() {
                    writeln!(s, "#   no NodePort is mapped to this machine: each is noted with the port_mappings line that would")
                } else {
                    writeln!(
                        s,
                        "#   each NodePort mapped to this machine ({}) must accept a connection; others are noted",
                        mapped.join(", ")
                    )
                };
            }
        }
    }
}

impl NodePorts {
    /// The releases' NodePorts, from what `services` printed.
    pub fn ports(&self, stage: Stage, json: &str) -> Result<Vec<k8s::NodePort>, Error> {
        k8s::parse_node_ports(json, &self.releases).map_err(|e| {
            Error::new(
                stage,
                format!("cannot read the Services in {}: {e}", self.namespace),
            )
        })
    }
}
