//! After a load that may not have loaded: every node must hold the image now.

use super::Cx;
use crate::model::Error;
use crate::plan::VerifyLoaded;

pub fn run(cx: &Cx, s: &VerifyLoaded) -> Result<(), Error> {
    let found = cx.image_on_nodes(&s.local_id, &s.probe, false)?;
    cx.note(s.verdict(cx.stage, cx.cluster, found)?);
    Ok(())
}
