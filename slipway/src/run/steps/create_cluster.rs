//! Create the cluster, from its node image (pulled, or built offline).

use std::time::Instant;

use super::Cx;
use crate::model::Error;
use crate::plan::CreateCluster;
use crate::run::provision;

pub fn run(cx: &Cx, s: &CreateCluster) -> Result<(), Error> {
    let mut deadline = cx.deadline;
    let cmd = match &s.node {
        Some(n) => {
            let took = Instant::now();
            let offline = provision::node_image(cx.ex, n, deadline)?;
            // A node image build has its own timeout, not the stage's.
            deadline += took.elapsed();
            if offline {
                &n.create
            } else {
                &s.cmd
            }
        }
        None => &s.cmd,
    };
    cx.run_step_cmd(cmd, deadline)
}
