//! A plain command.

use super::Cx;
use crate::model::Error;
use crate::plan::Run;

pub fn run(cx: &Cx, s: &Run) -> Result<(), Error> {
    cx.run_step_cmd(&s.cmd, cx.deadline)
}
