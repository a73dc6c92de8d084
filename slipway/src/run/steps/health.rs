//! Every pod of the release Ready, none crash-looping; on failure, the rollback.

use super::Cx;
use crate::model::Error;
use crate::plan::Health;

pub fn run(cx: &Cx, s: &Health) -> Result<(), Error> {
    let r = check(cx, s);
    cx.rollback_on_err(r, s.rollback.as_ref())
}

fn check(cx: &Cx, s: &Health) -> Result<(), Error> {
    let stage = cx.stage;
    // The pods the rollout read last, while fresh; else read now. A reused read that
    // shows a problem is read again first: it can predate the last pod's readiness
    // (the rollout judged the workloads' counts, read at the same time).
    let mut reused = cx.reuse_last_read(&s.release);
    loop {
        let (workloads, all_pods) = std::thread::scope(|scope| {
            let pods = scope.spawn(|| match &reused {
                Some(read) => Health::reused_pods(stage, &read.pods),
                None => cx.all_pods(&s.pods),
            });
            let workloads = cx.discover(&s.release, &s.discover);
            let pods = pods
                .join()
                .unwrap_or_else(|_| Err(Error::new(stage, "reading the pods panicked")));
            (workloads, pods)
        });
        let mut v = s.verdict(&workloads?, &all_pods?);
        for n in std::mem::take(&mut v.notes) {
            cx.note(n);
        }
        if !v.problems.is_empty() && reused.is_some() {
            reused = None;
            continue;
        }
        if v.problems.is_empty() {
            if let Some(r) = reused {
                cx.note(r.said());
            }
            cx.note(format!("{} pod(s) of {} Ready", v.total, s.release));
            return Ok(());
        }
        return Err(unhealthy(cx, s, v));
    }
}

/// The error for pods that are not Ready or are crash-looping.
fn unhealthy(cx: &Cx, s: &Health, v: crate::plan::steps::health::Verdict) -> Error {
    let mut hints = v.hints;
    hints.dedup();
    let mut e = Error::new(
        cx.stage,
        format!(
            "{} of {} pod(s) of release {} are unhealthy",
            v.problems.len(),
            v.total,
            s.release
        ),
    );
    e.tail = v.problems;
    e.hint = Some(if hints.is_empty() {
        format!(
            "look at `kubectl --context {} -n {} describe pods`",
            s.context, s.namespace
        )
    } else {
        hints.join("; ")
    });
    e
}
