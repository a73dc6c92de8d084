//! One of slipway's recipes (`slipway/recipes/`), written to its cache directory
//! first.

use serde::Serialize;

use super::{line, StepKind};
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

    fn render(&self, s: &mut String) {
        line(
            s,
            &self.cmd,
            "slipway's recipe, written to this directory first",
        )
    }
}
