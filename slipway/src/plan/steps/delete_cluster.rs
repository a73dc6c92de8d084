//! `down --cluster`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::Cmd;

#[derive(Clone, Debug, Serialize)]
pub struct DeleteCluster {
    pub describe: String,
    pub delete: Option<Cmd>,
}

impl StepKind for DeleteCluster {
    fn commands(&self) -> Vec<&Cmd> {
        self.delete.iter().collect()
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        match &self.delete {
            Some(d) => v.line(s, d, ""),
            None => {
                let _ = writeln!(
                    s,
                    "# {}: not managed by slipway, left as it is",
                    self.describe
                );
            }
        }
    }
}
