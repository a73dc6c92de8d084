//! End a `during_rollout` probe and judge what it saw.

use super::{lock, Cx};
use crate::model::Error;
use crate::plan::Judge;
use crate::run::watch;

pub fn run(cx: &Cx, s: &Judge) -> Result<(), Error> {
    let running = lock(&cx.shared.watches).remove(&s.check);
    match running {
        Some(r) => watch::finish(cx.ex, &s.check, r),
        None => Ok(()),
    }
}
