//! Smoke checks at run time: retries with backoff until each check's deadline,
//! port-forwards started on a free local port, shared between checks, and always
//! torn down. What one attempt does is the check kind's (see [`crate::checks`]).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::checks::Io;
use crate::exec::{Background, Executor, Failure};
use crate::model::{ms, Cmd, Error, Event, Stage};
use crate::plan::SmokeCheck;

const STAGE: Stage = Stage::Smoke;
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest excerpt of what an attempt saw, in events and errors (cut after masking).
const DETAIL_CHARS: usize = 400;

/// Port-forwards shared by the checks of one run: one per planned port-forward
/// command, restarted if it dies (it dies with its pod), and all stopped when this
/// is dropped — after success, failure or Ctrl-C alike.
#[derive(Default)]
pub struct Forwards(Mutex<HashMap<String, (Background, u16)>>);

impl Forwards {
    fn local_port(&self, ex: &Executor, template: &Cmd, deadline: Instant) -> Result<u16, String> {
        let key = template.display();
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((bg, local)) = all.get_mut(&key) {
            if bg.exited().is_none() {
                return Ok(*local);
            }
        }
        all.remove(&key);
        let (bg, local) = start_forward(ex, template, deadline)?;
        all.insert(key, (bg, local));
        Ok(local)
    }

    /// The port-forwards' commands and last output lines, for an error report.
    fn report(&self, c: &SmokeCheck) -> Option<(String, Vec<String>)> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        c.commands
            .iter()
            .find_map(|t| all.get(&t.display()))
            .map(|(bg, _)| (bg.command.clone(), bg.output_tail()))
    }
}

/// What a check kind may ask for during one attempt.
struct Attempting<'a> {
    ex: &'a Executor,
    forwards: &'a Forwards,
    deadline: Instant,
    interrupted: bool,
}

impl Io for Attempting<'_> {
    fn run(&mut self, cmd: &Cmd) -> Result<(i32, String, String), String> {
        match self.ex.probe(STAGE, cmd, Some(self.deadline)) {
            Ok(o) => Ok((o.code, o.stdout, o.stderr)),
            Err(e) => {
                self.interrupted |= e.failure == Failure::Interrupted;
                Err(format!("`{}` {e}", e.command))
            }
        }
    }

    fn forward(&mut self, cmd: &Cmd) -> Result<u16, String> {
        let r = self.forwards.local_port(self.ex, cmd, self.deadline);
        self.interrupted |= self.ex.cancelled();
        r
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn signals(&self) -> crate::exec::Signals {
        self.ex.signals().clone()
    }

    fn cleanup(&mut self, cmd: &Cmd) -> Result<(i32, String, String), String> {
        let deadline = Instant::now() + crate::checks::CLEANUP;
        match self.ex.probe(STAGE, cmd, Some(deadline)) {
            Ok(o) => Ok((o.code, o.stdout, o.stderr)),
            Err(e) => {
                self.interrupted |= e.failure == Failure::Interrupted;
                Err(format!("`{}` {e}", e.command))
            }
        }
    }
}

/// Mask first, then shorten (so a secret cannot survive the cut half-masked).
fn shown(ex: &Executor, detail: &str) -> String {
    let masked = ex.redact(detail).replace('\n', " ");
    if masked.chars().count() <= DETAIL_CHARS {
        return masked;
    }
    let cut: String = masked.chars().take(DETAIL_CHARS).collect();
    format!("{cut}…")
}

pub fn run_check(
    ex: &Executor,
    forwards: &Forwards,
    c: &SmokeCheck,
    stage_deadline: Instant,
) -> Result<(), Error> {
    let started = Instant::now();
    let deadline = stage_deadline.min(started + c.deadline);
    let kind = c.spec.kind();
    let mut attempts = 0u32;
    let mut wait = c.interval;
    let check = |ok: bool, attempts: u32, detail: String| {
        ex.events.emit(Event::Check {
            stage: STAGE,
            name: c.name.clone(),
            ok,
            attempts,
            duration_ms: ms(started.elapsed()),
            detail,
        })
    };
    let interrupted =
        || Error::interrupted(Some(STAGE), format!("smoke check {} interrupted", c.name));
    let mut last = String::new();
    let mut before: String;
    loop {
        attempts += 1;
        let mut io = Attempting {
            ex,
            forwards,
            deadline,
            interrupted: false,
        };
        let a = kind.attempt(&c.commands, &mut io);
        if io.interrupted || ex.cancelled() {
            return Err(interrupted());
        }
        if a.ok {
            check(true, attempts, shown(ex, &a.detail));
            return Ok(());
        }
        before = std::mem::replace(&mut last, a.detail);
        if a.settled || Instant::now() + wait >= deadline {
            break;
        }
        if !ex.sleep(wait) {
            return Err(interrupted());
        }
        wait = (wait * 2).min(MAX_BACKOFF);
    }
    // An attempt the deadline cut short says little; the one before it says why.
    let cut = Instant::now() + Duration::from_millis(50) >= deadline;
    let detail = if cut && !before.is_empty() && before != last {
        shown(ex, &format!("{last}; the attempt before: {before}"))
    } else {
        shown(ex, &last)
    };
    check(false, attempts, detail.clone());
    let mut e = Error::new(
        STAGE,
        format!(
            "smoke check {} failed after {attempts} attempt(s) in {:.1}s: {detail}",
            c.name,
            started.elapsed().as_secs_f64()
        ),
    );
    if let Some((command, tail)) = forwards.report(c) {
        e.command = Some(command);
        e.tail = tail.iter().map(|l| ex.redact(l)).collect();
    }
    e.hint = Some(kind.hint(&c.target()));
    Err(e)
}

/// A port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Start the planned port-forward on a free port and wait until it says it is
/// forwarding.
fn start_forward(
    ex: &Executor,
    template: &Cmd,
    deadline: Instant,
) -> Result<(Background, u16), String> {
    let local = free_port().map_err(|e| format!("no free local port: {e}"))?;
    forward_on(ex, template, local, deadline).map(|bg| (bg, local))
}

/// Start a planned port-forward on `local` and wait (until `deadline`, at most 20 s)
/// for kubectl to say it forwards.
pub fn forward_on(
    ex: &Executor,
    template: &Cmd,
    local: u16,
    deadline: Instant,
) -> Result<Background, String> {
    let cmd = template.fill(&[("LOCAL_PORT", &local.to_string())]);
    let mut bg = ex
        .spawn_background(STAGE, &cmd)
        .map_err(|e| format!("`{}` {e}", e.command))?;
    let ready_by = deadline.min(Instant::now() + Duration::from_secs(20));
    loop {
        if ex.cancelled() {
            return Err("interrupted".into());
        }
        match bg.lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) if line.contains("Forwarding from") => return Ok(bg),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let code = bg.exited();
                return Err(format!(
                    "`{}` exited ({}): {}",
                    bg.command,
                    code.map_or("?".into(), |c| c.to_string()),
                    bg.output_tail().join(" | ")
                ));
            }
        }
        if let Some(code) = bg.exited() {
            // Give the readers a moment to deliver the last lines.
            std::thread::sleep(Duration::from_millis(50));
            return Err(format!(
                "`{}` exited with {code}: {}",
                bg.command,
                bg.output_tail().join(" | ")
            ));
        }
        if Instant::now() >= ready_by {
            return Err(format!("`{}` did not report ready within 20s", bg.command));
        }
    }
}

/// A read-only probe's stdout; its failure as a located error: `{prefix}cannot {what}`
/// with the command, its exit code and its (masked) stderr.
pub(super) fn read(
    ex: &Executor,
    stage: Stage,
    cmd: &Cmd,
    deadline: Instant,
    prefix: &str,
    what: &str,
) -> Result<String, Error> {
    let out = ex
        .probe(stage, cmd, Some(deadline))
        .map_err(|e| e.into_error(stage, what))?;
    if !out.ok() {
        return Err(Error {
            command: Some(ex.redact(&cmd.display())),
            child_exit: Some(out.code),
            tail: crate::model::last_lines(&ex.redact(&out.stderr), crate::model::TAIL_LINES),
            ..Error::new(stage, format!("{prefix}cannot {what}"))
        });
    }
    Ok(out.stdout)
}

/// The releases' NodePort Services, from this machine: one check per port, passed
/// when its URL accepts a TCP connection (retried for up to 15 s: kube-proxy's rules
/// can trail the pods' readiness). A NodePort kind does not publish is a note with
/// the `port_mappings` line that would.
pub fn node_ports(
    ex: &Executor,
    np: &crate::plan::NodePorts,
    stage_deadline: Instant,
) -> Result<(), Error> {
    use crate::providers::HostAccess;
    let (namespace, services, access) = (&np.namespace, &np.services, &np.access);
    let read = |cmd: &Cmd, what: &str| read(ex, STAGE, cmd, stage_deadline, "", what);
    let json = read(services, &format!("read the Services in {namespace}"))?;
    let ports = np.ports(STAGE, &json)?;
    if ports.is_empty() {
        return Ok(());
    }
    let node_address = match access {
        HostAccess::NodeAddress { address } => {
            Some(read(address, "read the node's address")?.trim().to_string())
        }
        HostAccess::Mapped { .. } => None,
    };
    let mut failed = vec![];
    for np in ports {
        let target = access.target(node_address.as_deref(), np.node_port);
        let name = format!("url {}:{}", np.service, np.port);
        let Some((host, port)) = target else {
            ex.events.emit(Event::Note {
                stage: STAGE,
                step: None,
                message: format!(
                    "service {} port {} is NodePort {}, which this machine cannot reach: add {{ container_port = {}, host_port = PORT }} to cluster.kind.port_mappings (or use `kubectl port-forward`)",
                    np.service, np.port, np.node_port, np.node_port
                ),
            });
            continue;
        };
        let url = format!("http://{host}:{port}");
        let started = Instant::now();
        let end = (started + Duration::from_secs(15)).min(stage_deadline);
        let mut attempts = 0;
        let ok = loop {
            attempts += 1;
            let connected = crate::exec::net::Client::new(Duration::from_secs(2), ex.signals())
                .connects(&host, port);
            if connected || Instant::now() >= end {
                break connected;
            }
            if !ex.sleep(Duration::from_millis(250)) {
                return Err(Error::interrupted(Some(STAGE), "smoke check interrupted"));
            }
        };
        let detail = if ok {
            format!(
                "{url} (service {}, NodePort {}) accepts connections",
                np.service, np.node_port
            )
        } else {
            format!(
                "{url} (service {}, NodePort {}) refused or timed out for {:.0}s",
                np.service,
                np.node_port,
                started.elapsed().as_secs_f64()
            )
        };
        ex.events.emit(Event::Check {
            stage: STAGE,
            name,
            ok,
            attempts,
            duration_ms: ms(started.elapsed()),
            detail: detail.clone(),
        });
        if !ok {
            failed.push(detail);
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(Error::new(STAGE, format!("NodePort not reachable from this machine: {}", failed.join("; ")))
        .hint("check the Service's pods are Ready (`cargo xtask status`); for kind, that the port is in cluster.kind.port_mappings when the cluster was created (a mapping added later needs `cargo xtask down --cluster` and a new cluster)"))
}
