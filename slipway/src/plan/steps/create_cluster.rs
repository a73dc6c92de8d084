//! Create the cluster; first make sure its node image is there (pulled, or built
//! offline when the registry cannot be reached).

use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::Cmd;

#[derive(Clone, Debug, Serialize)]
pub struct CreateCluster {
    pub cmd: Cmd,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<crate::providers::NodeImage>,
}

impl StepKind for CreateCluster {
    fn commands(&self) -> Vec<&Cmd> {
        let mut v = vec![&self.cmd];
        if let Some(n) = &self.node {
            v.extend([&n.inspect, &n.pull, &n.build, &n.create]);
        }
        v
    }

    fn render(&self, s: &mut String, v: &mut View, step: &Step) {
        if !v.verbose {
            let known =
                step.skip_if.is_some() && v.local.is_some_and(|f| f.knows_context(&v.context));
            return crate::plan::brief::create_cluster(s, &self.cmd, self.node.as_ref(), known);
        }
        let Some(n) = &self.node else {
            return v.line(s, &self.cmd, "");
        };
        v.line(s, &n.inspect, "the node image is here, or");
        v.line(s, &n.pull, "it is pulled; then:");
        v.line(s, &self.cmd, "");
        let _ = writeln!(
            s,
            "#   if the pull fails because the registry cannot be reached: build {} offline, create from it",
            n.offline
        );
        v.line(
            s,
            &n.build,
            "slipway's recipe, written to this directory first",
        );
        v.line(s, &n.create, "");
    }
}

/// Does a line of `kind create cluster` / `minikube start` output say an image pull
/// failed for a network or registry reason?
pub fn is_pull_failure(line: &str) -> bool {
    // kind's own words around docker's; docker's are the ones slipway reads itself.
    let l = line.to_ascii_lowercase();
    [
        "failed to pull image",
        "error pulling image",
        "error response from daemon: get",
    ]
    .iter()
    .any(|p| l.contains(p))
        // A network sign counts only on a line about pulling (a kubelet's refused
        // health check is not a pull).
        || (l.contains("pull") && crate::tools::provision::is_unreachable_pull(line))
}

#[cfg(test)]
mod tests {
    /// kind's output names a pull that failed for a network reason; a kubelet that
    /// does not answer its health check is not one (it got the pull hint once).
    #[test]
    fn only_a_failed_pull_gets_the_pull_hint() {
        assert!(super::is_pull_failure(
            "ERROR: failed to create cluster: failed to pull image \"kindest/node:v1.34.0\""
        ));
        assert!(super::is_pull_failure(
            "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host"
        ));
        assert!(!super::is_pull_failure(
            "error: error execution phase wait-control-plane: failed while waiting for the kubelet to start: The HTTP call equal to 'curl -sSL http://127.0.0.1:10248/healthz' returned error: Get \"http://127.0.0.1:10248/healthz\": dial tcp 127.0.0.1:10248: connect: connection refused"
        ));
    }
}
