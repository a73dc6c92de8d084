//! A plain command: build, push, load, a Secret's apply, `helm dependency build`.

use serde::Serialize;

use super::{line, StepKind};
use crate::model::Cmd;

#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub cmd: Cmd,
}

impl StepKind for Run {
    fn commands(&self) -> Vec<&Cmd> {
        vec![&self.cmd]
    }

    fn render(&self, s: &mut String) {
        line(s, &self.cmd, "")
    }
}
