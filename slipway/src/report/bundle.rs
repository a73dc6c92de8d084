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
//! Everything passes through the run's redactor, on raw text before it is encoded:
//! no secret reaches the bundle. Environment values in the evidence (a pod's `env`,
//! its last applied configuration) and what helm keeps of a release's values and
//! manifests are left out. The bundle is the user's alone: its directories are 0700,
//! its files 0600.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

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
        // Masked as it arrives, so what is kept (the bundle, the JUnit report) never
        // held a secret, whatever encodes it later.
        let ev = self.inner.redactor().event(ev);
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
    let diagnosis = root.join("target/slipway/diagnosis");
    let dir = diagnosis.join(format!("{stamp}-{}", safe(run.job)));
    private_dir(&diagnosis)?;
    private_dir(&dir)?;
    // Texts given here are raw: each is masked before it is encoded or written.
    let put = |name: &str, text: &str| private_file(&dir.join(safe(name)), text);
    let events: Vec<Event> = events.iter().map(|e| redactor.event(e.clone())).collect();
    let mask = |s: &str| redactor.redact(s);
    let err = &Error {
        message: mask(&err.message),
        command: err.command.as_deref().map(mask),
        tail: err.tail.iter().map(|l| mask(l)).collect(),
        hint: err.hint.as_deref().map(mask),
        ..err.clone()
    };

    let (kind, name, parent) = subject(err);
    let evidence: Vec<(&String, &String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Evidence { name, text } => Some((name, text)),
            _ => None,
        })
        .collect();
    let mut summary = json!({
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
    redactor.json(&mut summary);
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
        put(name, &without_values(name, text))?;
    }
    Ok(dir)
}

/// A directory only its owner can read (created if missing, tightened if not).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Write a file only its owner can read; a link in its place is not followed.
fn private_file(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())
}

/// What helm keeps of a release that may hold secret values (the values given, the
/// rendered manifests, the chart's files, the notes).
const HELM_OMITTED: &[&str] = &["config", "manifest", "hooks", "chart", "notes"];
/// Where a left-out value was.
const OMITTED: &str = "(omitted from the diagnosis bundle)";

/// Evidence as JSON with what may hold a secret left out: every `env[].value` (a
/// pod's environment), the last applied configuration annotation, and, in helm's
/// answers, [`HELM_OMITTED`]. Text that is not JSON is kept (it is masked).
fn without_values(name: &str, text: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(text) else {
        return text.to_string();
    };
    fn walk(v: &mut Value, helm: bool) {
        match v {
            Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    let omit = (helm && HELM_OMITTED.contains(&k.as_str()))
                        || k == "kubectl.kubernetes.io/last-applied-configuration";
                    if omit {
                        *x = Value::String(OMITTED.into());
                        continue;
                    }
                    if k == "env" {
                        for e in x.as_array_mut().into_iter().flatten() {
                            if let Some(val) = e.get_mut("value") {
                                *val = Value::String(OMITTED.into());
                            }
                        }
                    }
                    walk(x, helm);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, helm)),
            _ => {}
        }
    }
    walk(&mut v, name.starts_with("helm-"));
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
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
                step: None,
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
