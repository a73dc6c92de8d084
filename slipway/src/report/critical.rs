//! A run's critical path: the steps that made up its wall time, in order. Stages run
//! one after another; within a stage, steps may overlap (images build at the same
//! time, smoke checks run together), so the path through a stage is found backwards
//! from its end: the step that finished last, then the one that finished last before
//! that one started, and so on. Time no step covers is named for what it was —
//! slipway's start (config, plan), guard probes read ahead between stages, a stage's
//! own guards — so the items sum to the wall time.

use std::time::Duration;

/// One timed interval, as offsets from the run's start.
#[derive(Clone, Debug)]
pub struct Span {
    pub name: String,
    pub start: Duration,
    pub end: Duration,
}

/// What the reporter saw, per stage: the stage's span and its steps' spans.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub stages: Vec<(Span, Vec<Span>)>,
    /// Commands that ran outside any stage (guard probes read ahead), by start.
    pub between: Vec<Duration>,
}

/// An item of the path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Item {
    pub name: String,
    pub ms: u64,
}

/// The path through `t` for a run of `total` wall time.
pub fn path(t: &Timeline, total: Duration) -> Vec<Item> {
    let mut items: Vec<(String, Duration)> = vec![];
    let mut cursor = Duration::ZERO;
    for (i, (stage, steps)) in t.stages.iter().enumerate() {
        if stage.start > cursor {
            let n = t
                .between
                .iter()
                .filter(|c| **c >= cursor && **c < stage.start)
                .count();
            let name = match (i, n) {
                (0, _) => "start: config, plan, lock".to_string(),
                (_, 0) => format!("between stages, before {}", stage.name),
                (_, n) => format!("{n} guard probe(s) read ahead"),
            };
            items.push((name, stage.start - cursor));
        }
        let mut chain: Vec<(String, Duration)> = vec![];
        let mut at = stage.end;
        let mut used = vec![false; steps.len()];
        loop {
            let slack = Duration::from_millis(1);
            let next = steps
                .iter()
                .enumerate()
                .filter(|(j, s)| !used[*j] && s.end <= at + slack && s.start + slack >= stage.start)
                .max_by_key(|(_, s)| s.end);
            let Some((j, s)) = next else { break };
            used[j] = true;
            if at > s.end {
                chain.push((format!("{}: guards", stage.name), at - s.end));
            }
            chain.push((s.name.clone(), s.end.saturating_sub(s.start)));
            at = s.start.min(at);
        }
        if at > stage.start {
            chain.push((format!("{}: guards", stage.name), at - stage.start));
        }
        chain.reverse();
        items.extend(chain);
        cursor = stage.end.max(cursor);
    }
    if total > cursor {
        items.push(("finish: summary".into(), total - cursor));
    }
    // Adjacent items of one name (a stage's guards on both sides of a skipped step).
    let mut merged: Vec<Item> = vec![];
    for (name, d) in items {
        let ms = d.as_millis() as u64;
        if ms == 0 {
            continue;
        }
        match merged.last_mut() {
            Some(last) if last.name == name => last.ms += ms,
            _ => merged.push(Item { name, ms }),
        }
    }
    merged
}

/// One line: the items of at least 2 % of the total (and 10 ms), the rest summed.
pub fn line(items: &[Item], total: Duration) -> String {
    let total_ms = total.as_millis() as u64;
    let floor = (total_ms / 50).max(10);
    let secs = |ms: u64| format!("{:.2}s", ms as f64 / 1000.0);
    let mut parts = vec![];
    let (mut rest, mut rest_ms) = (0, 0);
    for i in items {
        if i.ms >= floor {
            parts.push(format!("{} {}", i.name, secs(i.ms)));
        } else {
            rest += 1;
            rest_ms += i.ms;
        }
    }
    if rest > 0 {
        parts.push(format!("{rest} more {}", secs(rest_ms)));
    }
    let sum: u64 = items.iter().map(|i| i.ms).sum();
    format!(
        "critical path {} of {}: {}",
        secs(sum),
        secs(total_ms),
        parts.join(" → ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(name: &str, a: u64, b: u64) -> Span {
        Span {
            name: name.into(),
            start: Duration::from_millis(a),
            end: Duration::from_millis(b),
        }
    }

    #[test]
    fn overlapping_steps_count_once_and_gaps_are_named() {
        let t = Timeline {
            stages: vec![
                (
                    span("preflight", 100, 200),
                    vec![span("preflight", 100, 200)],
                ),
                (
                    span("smoke", 500, 1000),
                    vec![
                        span("smoke/a", 510, 900),
                        span("smoke/b", 520, 990),
                        span("smoke/c", 505, 600),
                    ],
                ),
            ],
            between: vec![Duration::from_millis(250), Duration::from_millis(260)],
        };
        let p = path(&t, Duration::from_millis(1050));
        let names: Vec<&str> = p.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "start: config, plan, lock",
                "preflight",
                "2 guard probe(s) read ahead",
                "smoke: guards",
                "smoke/b",
                "smoke: guards",
                "finish: summary"
            ]
        );
        assert_eq!(p.iter().map(|i| i.ms).sum::<u64>(), 1050);
        let l = line(&p, Duration::from_millis(1050));
        // Items under 2 % of the total are summed at the end.
        assert_eq!(
            l,
            "critical path 1.05s of 1.05s: start: config, plan, lock 0.10s → preflight 0.10s → 2 guard probe(s) read ahead 0.30s → smoke/b 0.47s → finish: summary 0.05s → 2 more 0.03s"
        );
    }
}
