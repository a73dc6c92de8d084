//! Start a `during_rollout` probe; it runs until its check's smoke step.

use super::{lock, Cx};
use crate::model::Error;
use crate::plan::Watch;
use crate::run::watch;

pub fn run(cx: &Cx, w: &Watch) -> Result<(), Error> {
    let running = watch::start(cx.ex, w, cx.deadline)?;
    lock(&cx.shared.watches).insert(w.check.clone(), running);
    Ok(())
}
