//! Before an upgrade: a release stuck pending stops the run, or is rolled back.

use super::Cx;
use crate::model::Error;
use crate::plan::steps::release_gate::Gate;
use crate::plan::ReleaseGate;
use crate::run::seen;

pub fn run(cx: &Cx, s: &ReleaseGate) -> Result<(), Error> {
    let out = cx.probe(&s.status)?;
    let seen = || {
        if let Some((revision, status)) = ReleaseGate::seen(&out) {
            seen::status(cx.ex, &s.release, revision, &status);
        }
    };
    let gate = s.verdict(cx.stage, &out, &cx.redact());
    match gate {
        Err(e) => {
            seen();
            Err(e)
        }
        Ok(Gate::Proceed(note)) => {
            if let Some(n) = note {
                cx.note(n);
            }
            seen();
            Ok(())
        }
        Ok(Gate::RollBack(note)) => {
            seen();
            cx.note(note);
            cx.probes.clear();
            cx.probes.mark_stale();
            cx.ex
                .run(cx.stage, &s.rollback, Some(cx.deadline))
                .map_err(|e| {
                    e.into_error(
                        cx.stage,
                        &format!("roll back pending release {}", s.release),
                    )
                })?;
            Ok(())
        }
    }
}
