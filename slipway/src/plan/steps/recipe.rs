//! One of slipway's recipes (`slipway/recipes/`), written to its cache directory
//! first.

use serde::Serialize;

use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;
use crate::model::Cmd;

#[derive(Clone, Debug, Serialize)]
pub struct Recipe {
    pub recipe: String,
    pub cmd: Cmd,
}

impl StepKind for Recipe {
    fn commands(&self) -> Vec<&Cmd> {
        vec![&self.cmd]
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(
            s,
            &self.cmd,
            "slipway's recipe, written to this directory first",
        )
    }
}
