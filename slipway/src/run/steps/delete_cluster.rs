//! `down --cluster`.

use super::Cx;
use crate::model::Error;
use crate::plan::DeleteCluster;

pub fn run(cx: &Cx, s: &DeleteCluster) -> Result<(), Error> {
    let describe = &s.describe;
    match &s.delete {
        None => cx.note(format!(
            "{describe}: slipway does not manage that cluster; left as it is"
        )),
        Some(_) if cx.absent() => cx.note(format!("{describe} does not exist: nothing to delete")),
        Some(cmd) => {
            cx.run(cmd, &format!("delete {describe}"))?;
            cx.note(format!("deleted {describe}"));
        }
    }
    Ok(())
}
