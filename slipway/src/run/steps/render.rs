//! `helm template`: a chart that does not render fails here; one that does is
//! remembered (its digest in the stamp file).

use super::Cx;
use crate::exec::Failure;
use crate::model::Error;
use crate::plan::Render;

pub fn run(cx: &Cx, s: &Render) -> Result<(), Error> {
    if let Err(e) = cx.ex.run(cx.stage, &s.cmd, Some(cx.deadline)) {
        if e.failure == Failure::Interrupted {
            return Err(e.into_error(cx.stage, "render"));
        }
        return Err(s.finding(e.into_error(cx.stage, &format!("render {}", s.release))));
    }
    // Best effort: without the stamp the next run only renders again.
    let stamp = cx.shared.root.join(&s.stamp);
    if let Some(dir) = stamp.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(stamp, &s.digest);
    Ok(())
}
