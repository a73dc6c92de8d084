//! Preflight: the checks, each a pass or a failure with its fix; the helm found is
//! kept for the caller (it re-plans for that helm).

use super::{lock, Cx};
use crate::model::Error;
use crate::plan::Preflight;

pub fn run(cx: &Cx, pf: &Preflight) -> Result<(), Error> {
    let found = crate::run::preflight::run(cx.ex, cx.cluster, pf, cx.deadline)?;
    *lock(&cx.shared.helm_found) = found.helm;
    Ok(())
}
