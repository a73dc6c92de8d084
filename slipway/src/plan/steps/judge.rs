//! End a `during_rollout` probe and judge it, in a job that probes but has no smoke
//! stage (`deploy`): any failed request fails the run.

use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::Cmd;

#[derive(Clone, Debug, Serialize)]
pub struct Judge {
    pub check: String,
}

impl StepKind for Judge {
    fn commands(&self) -> Vec<&Cmd> {
        vec![]
    }

    fn render(&self, s: &mut String, _v: &mut View, _step: &Step) {
        let _ = writeln!(
            s,
            "# end check {}'s probe: any request that failed during the upgrade fails the run",
            self.check
        );
    }
}
