//! The diagnosis bundle: on every failed run, one directory with everything needed to
//! understand it, for a person, a script or an AI assistant (k8sgpt's result format):
//!
//! - `summary.json` — job, profile, context, stage, exit code, and `results`
//!   (`kind`, `name`, `error[].Text`, `details`, `parentObject`) as k8sgpt writes them;
//! - `error.txt` — the error as printed;
//! - `events.jsonl` — every event of the run (each command slipway ran, with its exit
//!   code and duration, every check and note);
//! - the evidence the failing stage gathered (container logs, pods and events as
//!   JSON).
//!
//! Everything passes through the run's redactor: no secret reaches the bundle.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::model::{Error, Event, Redactor, Sink, Stage};

/// A sink that keeps every event (for the bundle) and passes it on.
pub struct Recording {
    inner: Arc<dyn Sink>,
    events: Mutex<Vec<Event>>,
}

impl Recording {
    pub fn new(inner: Arc<dyn Sink>) -> Recording {
        Recording {
            inner,
            events: Mutex::new(vec![]),
        }
    }
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Sink for Recording {
    fn emit(&self, ev: Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ev.clone());
        self.inner.emit(ev);
    }
    fn child_output(&self, stage: Stage, line: &str) {
        self.inner.child_output(stage, line);
    }
    fn redactor(&self) -> &Redactor {
        self.inner.redactor()
    }
}

pub struct Run<'a> {
    pub project: &'a str,
    pub job: &'a str,
    pub profile: &'a str,
    pub context: &'a str,
}

/// A file name safe to write: letters, digits, `.`, `-` and `_`.
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `<root>/target/slipway/diagnosis/<UTC time>-<job>/`, written; its path.
pub fn write(
    root: &Path,
    run: &Run,
    err: &Error,
    events: &[Event],
    redactor: &Redactor,
) -> std::io::Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(':', "");
    let dir = root
        .join("target/slipway/diagnosis")
        .join(format!("{stamp}-{}", safe(run.job)));
    std::fs::create_dir_all(&dir)?;
    let put = |name: &str, text: &str| std::fs::write(dir.join(safe(name)), redactor.redact(text));

    let (kind, name, parent) = subject(err);
    let evidence: Vec<(&String, &String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Evidence { name, text } => Some((name, text)),
            _ => None,
        })
        .collect();
    let summary = json!({
        "tool": "slipway",
        "project": run.project,
        "job": run.job,
        "profile": run.profile,
        "context": run.context,
        "stage": err.stage.map(Stage::name),
        "exit_code": err.exit_code(),
        "status": "ProblemDetected",
        "problems": 1,
        "results": [{
            "kind": kind,
            "name": name,
            "error": [{"Text": err.message, "KubernetesDoc": "", "Sensitive": []}],
            "details": err.hint.clone().unwrap_or_default(),
            "parentObject": parent,
            "command": err.command,
            "output_tail": err.tail,
        }],
        "files": evidence.iter().map(|(n, _)| safe(n)).collect::<Vec<_>>(),
    });
    put(
        "summary.json",
        &serde_json::to_string_pretty(&summary).unwrap_or_default(),
    )?;
    let mut text = err.message.clone();
    if let Some(c) = &err.command {
        text.push_str(&format!("\ncommand: {c}"));
    }
    for l in &err.tail {
        text.push_str(&format!("\n| {l}"));
    }
    if let Some(h) = &err.hint {
        text.push_str(&format!("\nhint: {h}"));
    }
    put("error.txt", &(text + "\n"))?;
    let lines: String = events
        .iter()
        .filter(|e| !matches!(e, Event::Evidence { .. }))
        .filter_map(|e| serde_json::to_string(e).ok())
        .map(|l| l + "\n")
        .collect();
    put("events.jsonl", &lines)?;
    for (name, text) in &evidence {
        put(name, text)?;
    }
    Ok(dir)
}

/// What the error is about, as k8sgpt names it: (kind, name, parent object).
fn subject(err: &Error) -> (String, String, String) {
    let m = &err.message;
    // "deployment/web cannot roll out: container web of pod web-1: …"
    let workload = m.split_whitespace().next().filter(|w| w.contains('/'));
    let pod = m
        .split("pod ")
        .nth(1)
        .and_then(|r| r.split([':', ' ', ',']).next())
        .filter(|p| !p.is_empty());
    match (pod, workload) {
        (Some(p), w) => (
            "Pod".into(),
            p.to_string(),
            w.map(|w| {
                let (k, n) = w.split_once('/').unwrap_or(("", w));
                let mut k = k.to_string();
                if let Some(f) = k.get_mut(0..1) {
                    f.make_ascii_uppercase();
                }
                format!("{k}/{n}")
            })
            .unwrap_or_default(),
        ),
        (None, Some(w)) => ("Workload".into(), w.to_string(), String::new()),
        (None, None) => (
            "Stage".into(),
            err.stage.map(Stage::name).unwrap_or("config").to_string(),
            String::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_holds_the_summary_events_and_evidence_masked() {
        let dir = tempfile::tempdir().unwrap();
        let r = Redactor::default();
        r.add("s3cr3t-value-123");
        let e = Error::new(
            Stage::Rollout,
            "deployment/web cannot roll out: container web of pod web-1 crashed 2 times",
        )
        .hint("read the logs");
        let events = vec![
            Event::Note {
                stage: Stage::Rollout,
                message: "saw s3cr3t-value-123".into(),
            },
            Event::Evidence {
                name: "logs-web-1-web-previous.txt".into(),
                text: "token=s3cr3t-value-123\n".into(),
            },
        ];
        let run = Run {
            project: "p",
            job: "deploy-local",
            profile: "local-kind",
            context: "kind-x",
        };
        let out = write(dir.path(), &run, &e, &events, &r).unwrap();
        assert!(out.starts_with(dir.path().join("target/slipway/diagnosis")));
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["exit_code"], 16);
        assert_eq!(summary["results"][0]["kind"], "Pod");
        assert_eq!(summary["results"][0]["name"], "web-1");
        assert_eq!(summary["results"][0]["parentObject"], "Deployment/web");
        let all: String = [
            "summary.json",
            "error.txt",
            "events.jsonl",
            "logs-web-1-web-previous.txt",
        ]
        .iter()
        .map(|f| std::fs::read_to_string(out.join(f)).unwrap())
        .collect();
        assert!(all.contains("crashed 2 times") && all.contains("saw "));
        assert!(
            !all.contains("s3cr3t-value-123"),
            "a secret reached the bundle"
        );
    }
}
