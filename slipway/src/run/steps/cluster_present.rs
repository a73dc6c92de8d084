//! `status` and `down`: does the cluster exist?

use super::{lock, Cx};
use crate::model::Error;
use crate::plan::ClusterPresent;

pub fn run(cx: &Cx, s: &ClusterPresent) -> Result<(), Error> {
    let Some(probe) = &s.probe else {
        return Ok(());
    };
    let out = cx.probe(probe)?;
    if s.verdict(cx.stage, cx.cluster, &out)? {
        return Ok(());
    }
    *lock(&cx.shared.cluster_absent) = true;
    cx.note(format!(
        "{} does not exist: nothing to uninstall",
        s.describe
    ));
    Ok(())
}
