//! A plain command: build, push, load, a Secret's apply, `helm dependency build`.

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::Cmd;

#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub cmd: Cmd,
}

impl StepKind for Run {
    fn commands(&self) -> Vec<&Cmd> {
        vec![&self.cmd]
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(s, &self.cmd, "")
    }
}
