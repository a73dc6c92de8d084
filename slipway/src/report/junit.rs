//! `--junit PATH`: the run as a JUnit XML report, which CI systems render — one test
//! suite for the job, a test case per stage (failed with the error, skipped steps
//! listed) and per check (preflight and smoke), built from the run's events.

use std::fmt::Write as _;
use std::path::Path;

use crate::model::{Event, Outcome, Redactor};

/// XML text: the five entities escaped, control characters (not allowed in XML 1.0)
/// dropped.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o
}

fn secs(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// The report for a run's events, masked with the run's redactor on their raw text,
/// before it is escaped for XML (an escaped secret no longer looks like itself).
pub fn report(job: &str, events: &[Event], redactor: &Redactor) -> String {
    let events: Vec<Event> = events.iter().map(|e| redactor.event(e.clone())).collect();
    let events = events.as_slice();
    let mut cases = String::new();
    let (mut tests, mut failures, mut total_ms) = (0, 0, 0u64);
    let mut error: Option<(String, String)> = None;
    for e in events {
        if let Event::Error {
            message,
            output_tail,
            hint,
            ..
        } = e
        {
            let mut lines = output_tail.clone();
            if let Some(h) = hint {
                lines.push(format!("hint: {h}"));
            }
            let detail = lines.join("\n");
            error = Some((message.clone(), detail));
        }
        if let Event::RunFinished { duration_ms, .. } = e {
            total_ms = *duration_ms;
        }
    }
    let mut skipped: Vec<(String, String)> = vec![];
    for e in events {
        match e {
            Event::StepSkipped { stage, reason, .. } => {
                skipped.push((stage.name().to_string(), reason.clone()))
            }
            Event::Check {
                stage,
                name,
                ok,
                duration_ms,
                detail,
                ..
            } => {
                tests += 1;
                let _ = write!(
                    cases,
                    "    <testcase classname=\"{job}.{}\" name=\"check {}\" time=\"{}\">",
                    stage.name(),
                    esc(name),
                    secs(*duration_ms)
                );
                if !ok {
                    failures += 1;
                    let _ = write!(
                        cases,
                        "<failure message=\"{}\">{}</failure>",
                        esc(detail),
                        esc(detail)
                    );
                }
                cases.push_str("</testcase>\n");
            }
            Event::StageFinished {
                stage,
                result,
                duration_ms,
                ..
            } => {
                tests += 1;
                let _ = write!(
                    cases,
                    "    <testcase classname=\"{job}.stages\" name=\"{}\" time=\"{}\">",
                    stage.name(),
                    secs(*duration_ms)
                );
                let notes: Vec<String> = skipped
                    .iter()
                    .filter(|(s, _)| s == stage.name())
                    .map(|(_, r)| format!("skipped: {r}"))
                    .collect();
                if *result == Outcome::Failed {
                    failures += 1;
                    let (m, d) = error.clone().unwrap_or_default();
                    let _ = write!(
                        cases,
                        "<failure message=\"{}\">{}</failure>",
                        esc(&m),
                        esc(&format!("{m}\n{d}"))
                    );
                }
                if !notes.is_empty() {
                    let _ = write!(cases, "<system-out>{}</system-out>", esc(&notes.join("\n")));
                }
                cases.push_str("</testcase>\n");
            }
            _ => {}
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"slipway {job}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{}\">\n{cases}  </testsuite>\n</testsuites>\n",
        secs(total_ms)
    )
}

/// Write the report (its directory is created).
pub fn write(path: &Path, job: &str, events: &[Event], redactor: &Redactor) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, report(job, events, redactor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Stage;

    #[test]
    fn stages_and_checks_become_test_cases() {
        let r = Redactor::default();
        r.add("hunter2-secret-value");
        let events = vec![
            Event::Check {
                stage: Stage::Preflight,
                name: "helm".into(),
                ok: true,
                attempts: 1,
                duration_ms: 0,
                detail: "4.3.1".into(),
            },
            Event::StepSkipped {
                stage: Stage::Build,
                step: "build/web".into(),
                reason: "web:c-1 is already built".into(),
            },
            Event::StageFinished {
                stage: Stage::Build,
                result: Outcome::Ok,
                duration_ms: 120,
                commands: 1,
            },
            Event::Check {
                stage: Stage::Smoke,
                name: "echo <json>".into(),
                ok: false,
                attempts: 3,
                duration_ms: 1500,
                detail: "GET / -> 500 & token hunter2-secret-value".into(),
            },
            Event::Error {
                stage: Some(Stage::Smoke),
                message: "smoke check echo failed".into(),
                command: None,
                exit_code: None,
                output_tail: vec![],
                hint: Some("look at the logs".into()),
                slipway_exit: 18,
            },
            Event::StageFinished {
                stage: Stage::Smoke,
                result: Outcome::Failed,
                duration_ms: 1600,
                commands: 2,
            },
            Event::RunFinished {
                result: Outcome::Failed,
                exit_code: 18,
                duration_ms: 2000,
            },
        ];
        let x = report("deploy-local", &events, &r);
        assert!(x.contains("tests=\"4\" failures=\"2\""), "{x}");
        assert!(x.contains("name=\"check echo &lt;json&gt;\""), "{x}");
        assert!(
            x.contains("<system-out>skipped: web:c-1 is already built</system-out>"),
            "{x}"
        );
        assert!(
            x.contains("smoke check echo failed\nhint: look at the logs"),
            "{x}"
        );
        assert!(x.contains("500 &amp; token"), "{x}");
        assert!(!x.contains("hunter2-secret-value"), "masked");
    }

    /// A secret with every character XML escapes is masked before escaping: after
    /// it, `&amp;`… no longer looks like the secret.
    #[test]
    fn secrets_are_masked_before_xml_escaping() {
        let r = Redactor::default();
        let odd = "odd&<tok>\"en'q-9f1e";
        r.add(odd);
        let events = vec![
            Event::Check {
                stage: Stage::Smoke,
                name: format!("check {odd}"),
                ok: false,
                attempts: 1,
                duration_ms: 1,
                detail: format!("GET / -> 500: {odd}"),
            },
            Event::Error {
                stage: Some(Stage::Smoke),
                message: format!("failed: {odd}"),
                command: None,
                exit_code: None,
                output_tail: vec![odd.into()],
                hint: Some(odd.into()),
                slipway_exit: 18,
            },
            Event::StageFinished {
                stage: Stage::Smoke,
                result: Outcome::Failed,
                duration_ms: 1,
                commands: 1,
            },
        ];
        let x = report("deploy-local", &events, &r);
        assert!(!x.contains("9f1e"), "{x}");
        assert!(x.contains("GET / -&gt; 500: ********"), "{x}");
    }
}
