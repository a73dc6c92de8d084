//! Smoke checks: HTTP requests through a `kubectl port-forward` that slipway starts on
//! a free local port, waits for, and always tears down; and kubectl checks (a
//! resource exists or reaches a condition). Each retries with backoff until its
//! deadline and reports what was sent, what came back and how long it took.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::exec::{Background, Executor};
use crate::plan::{CheckKind, SmokeCheck, Stage};
use crate::report::{ms, Event};
use crate::run::StageError;
use crate::tools::kubectl;

const STAGE: Stage = Stage::Smoke;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What one attempt saw.
struct Attempt {
    ok: bool,
    detail: String,
}

/// Port-forwards shared by the checks of one run: one per context, namespace,
/// service and port, restarted if it dies (it dies with its pod), and all stopped
/// when this is dropped — after success, failure or Ctrl-C alike.
#[derive(Default)]
pub struct Forwards(Mutex<HashMap<String, (Background, u16)>>);

impl Forwards {
    fn key(c: &SmokeCheck, service: &str, port: u16) -> String {
        format!("{}/{}/{service}/{port}", c.context, c.namespace)
    }

    /// The local port of a running port-forward to the service, starting one if needed.
    fn local_port(
        &self,
        ex: &Executor,
        c: &SmokeCheck,
        service: &str,
        port: u16,
        deadline: Instant,
    ) -> Result<u16, String> {
        let key = Self::key(c, service, port);
        let mut all = self.0.lock().unwrap();
        if let Some((bg, local)) = all.get_mut(&key) {
            if bg.exited().is_none() {
                return Ok(*local);
            }
        }
        all.remove(&key);
        let (bg, local) = start_forward(ex, c, service, port, deadline)?;
        all.insert(key, (bg, local));
        Ok(local)
    }

    /// The port-forward's command and last output lines, for an error report.
    fn report(&self, c: &SmokeCheck, service: &str, port: u16) -> Option<(String, Vec<String>)> {
        let all = self.0.lock().unwrap();
        all.get(&Self::key(c, service, port))
            .map(|(bg, _)| (bg.command.clone(), bg.output_tail()))
    }
}

pub fn run_check(
    ex: &Executor,
    forwards: &Forwards,
    c: &SmokeCheck,
    stage_deadline: Instant,
) -> Result<(), StageError> {
    let started = Instant::now();
    let deadline = stage_deadline.min(started + c.deadline);
    let mut attempts = 0u32;
    let mut wait = c.interval;
    let mut last: String;
    loop {
        attempts += 1;
        let a = match &c.check {
            CheckKind::Kubectl { cmd } => match ex.probe(STAGE, cmd, Some(deadline)) {
                Ok(o) if o.ok() => Attempt {
                    ok: true,
                    detail: format!("`{}`: {}", ex.redact(&cmd.display()), o.stdout.trim()),
                },
                Ok(o) => Attempt {
                    ok: false,
                    detail: format!(
                        "`{}` exited {}: {}",
                        ex.redact(&cmd.display()),
                        o.code,
                        last_line(&o.stderr)
                    ),
                },
                Err(e) if e.failure == crate::exec::Failure::Interrupted => {
                    return Err(interrupted(c))
                }
                Err(e) => Attempt {
                    ok: false,
                    detail: e.to_string(),
                },
            },
            CheckKind::Http { service, port, .. } => {
                match forwards.local_port(ex, c, service, *port, deadline) {
                    Ok(local) => http_attempt(c, local, deadline),
                    Err(e) if ex.cancelled() => return Err(with_interrupt(e)),
                    Err(e) => Attempt {
                        ok: false,
                        detail: e,
                    },
                }
            }
        };
        if a.ok {
            ex.reporter.emit(Event::Check {
                stage: STAGE,
                name: c.name.clone(),
                ok: true,
                attempts,
                duration_ms: ms(started.elapsed()),
                detail: ex.redact(&a.detail),
            });
            return Ok(());
        }
        last = a.detail;
        if Instant::now() + wait >= deadline {
            break;
        }
        if !ex.sleep(wait) {
            return Err(interrupted(c));
        }
        wait = (wait * 2).min(MAX_BACKOFF);
    }
    let detail = ex.redact(&last);
    ex.reporter.emit(Event::Check {
        stage: STAGE,
        name: c.name.clone(),
        ok: false,
        attempts,
        duration_ms: ms(started.elapsed()),
        detail: detail.clone(),
    });
    let mut e = StageError::new(
        STAGE,
        format!(
            "smoke check {} failed after {attempts} attempt(s) in {:.1}s: {detail}",
            c.name,
            started.elapsed().as_secs_f64()
        ),
    );
    if let CheckKind::Http { service, port, .. } = &c.check {
        if let Some((command, tail)) = forwards.report(c, service, *port) {
            e.command = Some(command);
            e.tail = tail;
        }
    }
    e.hint = Some(match &c.check {
        CheckKind::Http { service, .. } => format!(
            "see what the service logs: `kubectl --context {} -n {} logs service/{service}`; `cargo xtask smoke` reruns only the checks",
            c.context, c.namespace
        ),
        CheckKind::Kubectl { .. } => "the resource or condition was not there before the deadline; raise `deadline` if it is just slow".into(),
    });
    Err(e)
}

fn interrupted(c: &SmokeCheck) -> StageError {
    StageError {
        interrupted: true,
        ..StageError::new(STAGE, format!("smoke check {} interrupted", c.name))
    }
}

fn with_interrupt(_: String) -> StageError {
    StageError {
        interrupted: true,
        ..StageError::new(STAGE, "interrupted while starting a port-forward")
    }
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// A port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Start `kubectl port-forward` and wait until it says it is forwarding.
fn start_forward(
    ex: &Executor,
    c: &SmokeCheck,
    service: &str,
    port: u16,
    deadline: Instant,
) -> Result<(Background, u16), String> {
    let local = free_port().map_err(|e| format!("no free local port: {e}"))?;
    let cmd = kubectl::port_forward(&c.context, &c.namespace, service, local, port);
    let mut bg = ex
        .spawn_background(STAGE, &cmd)
        .map_err(|e| e.to_string())?;
    let ready_by = deadline.min(Instant::now() + Duration::from_secs(20));
    loop {
        if ex.cancelled() {
            return Err("interrupted".into());
        }
        match bg.lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) if line.contains("Forwarding from") => return Ok((bg, local)),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let code = bg.exited();
                return Err(format!(
                    "port-forward to service/{service}:{port} exited ({}): {}",
                    code.map_or("?".into(), |c| c.to_string()),
                    bg.output_tail().join(" | ")
                ));
            }
        }
        if let Some(code) = bg.exited() {
            // Give the readers a moment to deliver the last lines.
            std::thread::sleep(Duration::from_millis(50));
            return Err(format!(
                "port-forward to service/{service}:{port} exited with {code}: {}",
                bg.output_tail().join(" | ")
            ));
        }
        if Instant::now() >= ready_by {
            return Err(format!(
                "port-forward to service/{service}:{port} did not report ready within 20s"
            ));
        }
    }
}

fn http_attempt(c: &SmokeCheck, local: u16, deadline: Instant) -> Attempt {
    let CheckKind::Http {
        method,
        path,
        body,
        headers,
        expect_status,
        body_contains,
        json,
        ..
    } = &c.check
    else {
        unreachable!()
    };
    let url = format!("http://127.0.0.1:{local}{path}");
    let timeout = deadline
        .saturating_duration_since(Instant::now())
        .clamp(Duration::from_millis(100), Duration::from_secs(5));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .proxy(None)
        .max_redirects(0)
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method.as_str())
        .uri(&url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    if body.is_some()
        && !headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"))
    {
        req = req.header("content-type", "application/json");
    }
    let sent = format!("{method} {path}");
    let started = Instant::now();
    let req = match req.body(body.clone().unwrap_or_default()) {
        Ok(r) => r,
        Err(e) => {
            return Attempt {
                ok: false,
                detail: format!("{sent}: bad request: {e}"),
            }
        }
    };
    let mut resp = match agent.run(req) {
        Ok(r) => r,
        Err(e) => {
            return Attempt {
                ok: false,
                detail: format!("{sent}: no response: {e}"),
            }
        }
    };
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .unwrap_or_default();
    let took = started.elapsed();
    let excerpt: String = text
        .chars()
        .take(160)
        .collect::<String>()
        .replace('\n', " ");
    let saw = format!("{sent} -> {status} in {} ms: {excerpt}", took.as_millis());
    if status != *expect_status {
        return Attempt {
            ok: false,
            detail: format!("{saw} (expected status {expect_status})"),
        };
    }
    if let Some(want) = body_contains {
        if !text.contains(want.as_str()) {
            return Attempt {
                ok: false,
                detail: format!("{saw} (expected the body to contain {want:?})"),
            };
        }
    }
    if !json.is_empty() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return Attempt {
                ok: false,
                detail: format!("{saw} (expected a JSON body)"),
            };
        };
        for (field, want) in json {
            let got = field.split('.').try_fold(&v, |cur, k| match cur {
                serde_json::Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => cur.get(k),
            });
            if got != Some(want) {
                return Attempt {
                    ok: false,
                    detail: format!(
                        "{saw} (expected .{field} == {want}, got {})",
                        got.map_or("nothing".into(), |g| g.to_string())
                    ),
                };
            }
        }
    }
    Attempt {
        ok: true,
        detail: saw,
    }
}
