//! `status` and `down`: does the cluster exist at all?

use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::{Cmd, Error, Output, Stage};
use crate::providers::Cluster;

#[derive(Clone, Debug, Serialize)]
pub struct ClusterPresent {
    pub describe: String,
    /// `None` for a cluster slipway does not manage (assumed present).
    pub probe: Option<Cmd>,
}

impl StepKind for ClusterPresent {
    fn commands(&self) -> Vec<&Cmd> {
        self.probe.iter().collect()
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        match &self.probe {
            Some(p) => v.line(s, p, &format!("{} exists", self.describe)),
            None => {
                let _ = writeln!(
                    s,
                    "# {}: not managed by slipway, assumed present",
                    self.describe
                );
            }
        }
    }
}

impl ClusterPresent {
    /// From the probe's output: is the cluster there? For `status`, a cluster that
    /// is not is the finding; for `down`, there is just nothing to remove.
    pub fn verdict(&self, stage: Stage, cluster: &Cluster, out: &Output) -> Result<bool, Error> {
        let describe = &self.describe;
        let up = cluster
            .provider()
            .is_up(cluster, out.code, &out.stdout)
            .map_err(|e| {
                Error::new(stage, format!("cannot tell whether {describe} exists: {e}"))
            })?;
        if !up && stage == Stage::Status {
            return Err(Error::new(stage, format!("{describe} does not exist"))
                .hint("create it with `cargo xtask deploy-local`"));
        }
        Ok(up)
    }
}
