//! A smoke check: retried until it passes or its deadline; a `during_rollout` probe
//! of the check is ended and judged first.

use super::{lock, Cx};
use crate::model::Error;
use crate::plan::SmokeCheck;
use crate::run::{smoke, watch};

pub fn run(cx: &Cx, check: &SmokeCheck) -> Result<(), Error> {
    let running = lock(&cx.shared.watches).remove(&check.name);
    let judged = running.map_or(Ok(()), |r| watch::finish(cx.ex, &check.name, r));
    smoke::run_check(cx.ex, &cx.shared.forwards, check, cx.deadline)?;
    judged
}
