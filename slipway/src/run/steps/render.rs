//! `helm template`: a chart that does not render fails here; one that does is
//! remembered (its digest in the stamp file, its workloads' requests for the
//! capacity check).

use super::Cx;
use crate::exec::Failure;
use crate::model::Error;
use crate::plan::Render;

pub fn run(cx: &Cx, s: &Render) -> Result<(), Error> {
    let out = match cx.ex.run(cx.stage, &s.cmd, Some(cx.deadline)) {
        Ok(out) => out,
        Err(e) if e.failure == Failure::Interrupted => {
            return Err(e.into_error(cx.stage, "render"));
        }
        Err(e) => return Err(s.finding(e.into_error(cx.stage, &format!("render {}", s.release)))),
    };
    super::capacity::save(&cx.shared.root, &s.stamp, &out.stdout);
    // Best effort: without the stamp the next run only renders again.
    let stamp = cx.shared.root.join(&s.stamp);
    if let Some(dir) = stamp.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(stamp, &s.digest);
    Ok(())
}
