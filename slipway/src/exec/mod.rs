//! The one executor every external command goes through: spawning in its own process
//! group, stdin (secrets resolved only here), output capture in constant memory,
//! deadlines, Ctrl-C (a second one escalates), retries with one backoff, secret
//! redaction, and a `command` event per run. It knows commands, not plans.

mod capture;
pub mod net;
mod shared;
mod signals;
mod unix_http;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use capture::{Capture, Lines};
use rustix::process::Signal;
pub use signals::Signals;

pub use crate::model::Output;

use crate::model::mutation::Target;
use crate::model::{
    last_lines, ms, Cmd, Event, SecretInput, SecretSource, Sink, Stage, Stdin, Vars, TAIL_LINES,
};

/// After a child exits, how long its output readers may take to drain.
const DRAIN: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Exited with this code.
    Exit(i32),
    /// Killed after running this long.
    Timeout(Duration),
    /// Ctrl-C / SIGTERM reached slipway.
    Interrupted,
    /// Could not start (usually: not on PATH).
    Spawn(String),
    /// Not started: it changes a cluster the context guard did not approve.
    Refused(String),
}

/// A failed command, already redacted, with what the user needs to act on it.
#[derive(Clone, Debug)]
pub struct ExecError {
    pub command: String,
    pub failure: Failure,
    pub tail: Vec<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for ExecError {
    /// What happened, without the command (shown on its own line).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.failure {
            Failure::Exit(c) => write!(f, "exited with code {c}"),
            Failure::Timeout(d) => {
                write!(f, "timed out after {:.1}s and was stopped", d.as_secs_f64())
            }
            Failure::Interrupted => write!(f, "was interrupted"),
            Failure::Spawn(e) => write!(f, "could not start: {e}"),
            Failure::Refused(e) => write!(f, "was refused: {e}"),
        }
    }
}

impl std::error::Error for ExecError {}

impl ExecError {
    /// As the one error type, for `stage`, with what was being done.
    pub fn into_error(self, stage: Stage, what: &str) -> crate::model::Error {
        crate::model::Error {
            stage: Some(stage),
            message: format!("{what}: {self}"),
            child_exit: match self.failure {
                Failure::Exit(c) => Some(c),
                _ => None,
            },
            interrupted: self.failure == Failure::Interrupted,
            timed_out: matches!(self.failure, Failure::Timeout(_)),
            command: Some(self.command),
            tail: self.tail,
            hint: self.hint,
        }
    }
}

/// Delay before retry `attempt` (1-based): 1s, 2s, 4s, … capped at `max`.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(16)).min(max)
}

pub struct Executor {
    pub root: PathBuf,
    pub events: Arc<dyn Sink>,
    pub vars: Vars,
    signals: Signals,
    commands: Mutex<BTreeMap<Stage, usize>>,
    /// Programs resolved to a binary other than PATH's (tools slipway provisioned).
    tools: Mutex<BTreeMap<String, PathBuf>>,
    /// Clusters the context guard approved: a command that changes any other
    /// (see [`crate::model::mutation`]) is refused.
    approved: Mutex<std::collections::BTreeSet<Target>>,
    /// Identical reads at the same time, one process ([`Executor::read_shared`]).
    shared: shared::Shared<Result<Output, ExecError>>,
}

/// Signal the process group `pid` leads (each child is spawned leading its own).
fn signal_group(pid: u32, sig: Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

impl Executor {
    pub fn new(root: PathBuf, events: Arc<dyn Sink>, vars: Vars, signals: Signals) -> Executor {
        Executor {
            root,
            events,
            vars,
            signals,
            commands: Mutex::new(BTreeMap::new()),
            tools: Mutex::new(BTreeMap::new()),
            approved: Mutex::new(Default::default()),
            shared: Default::default(),
        }
    }

    /// Let commands change `target` from now on (the context guard decided so).
    pub fn approve(&self, target: Target) {
        self.approved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target);
    }

    /// Why `cmd` may not run: it changes a cluster the guard did not approve.
    fn refusal(&self, cmd: &Cmd) -> Option<ExecError> {
        let target = cmd.mutation()?;
        let approved = self.approved.lock().unwrap_or_else(|e| e.into_inner());
        if approved.contains(&target) {
            return None;
        }
        let list: Vec<String> = approved.iter().map(Target::to_string).collect();
        Some(ExecError {
            command: self.redact(&cmd.display()),
            failure: Failure::Refused(format!(
                "it changes {target}, which the context guard did not approve ({})",
                if list.is_empty() {
                    "it approved nothing".to_string()
                } else {
                    format!("it approved {}", list.join(", "))
                }
            )),
            tail: vec![],
            hint: Some("a command that changes a cluster runs only for the context preflight's context guard checked: pass --kube-context for the cluster you mean (with --allow-context for one slipway does not manage)".into()),
        })
    }

    /// Run `program` from `path` from now on (a tool slipway provisioned), without
    /// touching anyone's PATH.
    pub fn use_tool(&self, program: &str, path: PathBuf) {
        self.tools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(program.to_string(), path);
    }

    /// The binary `program` runs: a provisioned tool, else PATH's.
    pub fn locate(&self, program: &str) -> Option<PathBuf> {
        let chosen = self
            .tools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(program)
            .cloned();
        chosen.or_else(|| which::which(program).ok())
    }

    fn program(&self, program: &str) -> std::ffi::OsString {
        self.tools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(program)
            .map_or_else(|| program.into(), |p| p.clone().into_os_string())
    }

    /// Start a daemon that outlives slipway (the Docker engine): its own session,
    /// output appended to `log`, never waited for or signalled. Returns its pid.
    pub fn start_daemon(
        &self,
        stage: Stage,
        cmd: &Cmd,
        log: &std::path::Path,
    ) -> Result<u32, ExecError> {
        let shown = self.redact(&cmd.display());
        let fail = |e: String| ExecError {
            command: shown.clone(),
            failure: Failure::Spawn(e),
            tail: vec![],
            hint: None,
        };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| fail(format!("cannot open {}: {e}", log.display())))?;
        let err = out.try_clone().map_err(|e| fail(e.to_string()))?;
        let mut c = Command::new(self.program(&cmd.program));
        c.args(&cmd.args)
            .envs(&cmd.env)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: setsid(2) is async-signal-safe; the child leaves slipway's session
        // so neither a terminal hangup nor slipway's exit reaches it.
        unsafe {
            c.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = c.spawn().map_err(|e| fail(e.to_string()))?;
        self.count(stage);
        self.events.emit(Event::Command {
            stage,
            command: format!("{shown} &"),
            exit_code: None,
            duration_ms: 0,
        });
        Ok(child.id())
    }

    /// The signals this executor stops at (for [`net::Client`]).
    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    pub fn cancelled(&self) -> bool {
        self.signals.cancelled()
    }

    pub fn redact(&self, s: &str) -> String {
        self.events.redactor().redact(s)
    }

    /// How many commands ran in a stage.
    pub fn commands_in(&self, stage: Stage) -> usize {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&stage)
            .copied()
            .unwrap_or(0)
    }

    fn count(&self, stage: Stage) {
        *self
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(stage)
            .or_default() += 1;
    }

    /// Sleep in small steps so Ctrl-C is noticed; false if cancelled.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.cancelled() {
                return false;
            }
            thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
        }
        !self.cancelled()
    }

    /// The value of one secret source, registered with the redactor before use.
    pub fn secret_value(&self, s: &SecretSource) -> Result<String, String> {
        let v = match s {
            SecretSource::Env { var } => self.vars.get(var).map(String::from).ok_or_else(|| {
                format!("${var} is not set (export it or add it to the env file)")
            })?,
            SecretSource::EnvFile { path, var } => crate::model::vars::read_env_file(path)?
                .remove(var)
                .ok_or_else(|| format!("{var} is no longer in {}", path.display()))?,
            SecretSource::RegistryAuth {
                host,
                username,
                var,
            } => {
                let password = self.secret_value(&SecretSource::Env { var: var.clone() })?;
                use base64::Engine as _;
                self.events.redactor().add(
                    &base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}")),
                );
                crate::model::docker_config_json(host, username, &password)
            }
        };
        self.events.redactor().add(&v);
        Ok(v)
    }

    fn stdin_bytes(&self, s: &Stdin) -> Result<Option<Vec<u8>>, String> {
        Ok(match s {
            Stdin::None => None,
            Stdin::Text { text } => Some(text.clone().into_bytes()),
            Stdin::Secret(input) => Some(self.secret_manifest(input)?.into_bytes()),
            Stdin::Value { source } => Some(self.secret_value(source)?.into_bytes()),
            Stdin::File { path } => Some(
                std::fs::read(self.root.join(path))
                    .map_err(|e| format!("reading {}: {e}", path.display()))?,
            ),
        })
    }

    fn secret_manifest(&self, input: &SecretInput) -> Result<String, String> {
        let mut err = None;
        let m = input.manifest(|src| match self.secret_value(src) {
            Ok(v) => v,
            Err(e) => {
                err.get_or_insert(e);
                String::new()
            }
        });
        match err {
            Some(e) => Err(format!("secret {}: {e}", input.name)),
            None => Ok(m),
        }
    }

    fn command(&self, cmd: &Cmd) -> Command {
        let mut c = Command::new(self.program(&cmd.program));
        // The tools slipway chose (provisioned ones are not on PATH), for the scripts
        // it runs: `SLIPWAY_TOOL_KIND=/path/to/kind`.
        for (tool, path) in self.tools.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            c.env(format!("SLIPWAY_TOOL_{}", tool.to_uppercase()), path);
        }
        for k in &cmd.clear_env {
            c.env_remove(k);
        }
        c.args(&cmd.args)
            .envs(&cmd.env)
            .current_dir(cmd.cwd.clone().unwrap_or_else(|| self.root.clone()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: a terminal Ctrl-C reaches slipway only, and slipway
            // decides how each child is stopped (helm gets SIGINT and time).
            .process_group(0);
        c
    }

    /// Run to completion; a non-zero exit is data, not an error. Errors are spawn
    /// failures, timeouts and interruption.
    pub fn probe(
        &self,
        stage: Stage,
        cmd: &Cmd,
        deadline: Option<Instant>,
    ) -> Result<Output, ExecError> {
        self.run_once(stage, cmd, deadline)
    }

    /// [`Executor::run`] for a read that steps make at the same time (every
    /// release's tracker reading its namespace): callers share one process, each
    /// getting the answer of a run that started after it asked.
    pub fn read_shared(
        &self,
        stage: Stage,
        cmd: &Cmd,
        deadline: Option<Instant>,
    ) -> Result<Output, ExecError> {
        let key = format!("{stage}\0{}", cmd.display());
        self.shared.read(&key, || self.run(stage, cmd, deadline))
    }

    /// Run, retrying per `cmd.retries` with [`backoff`], and require exit code 0.
    pub fn run(
        &self,
        stage: Stage,
        cmd: &Cmd,
        deadline: Option<Instant>,
    ) -> Result<Output, ExecError> {
        let mut attempt = 0;
        loop {
            let out = self.run_once(stage, cmd, deadline)?;
            if out.ok() {
                return Ok(out);
            }
            let wait = backoff(attempt + 1, Duration::from_secs(16));
            if attempt >= cmd.retries || deadline.is_some_and(|d| Instant::now() + wait > d) {
                let text = if cmd.secret_output {
                    String::new()
                } else {
                    format!("{}\n{}", out.stdout, out.stderr)
                };
                return Err(ExecError {
                    command: self.redact(&cmd.display()),
                    failure: Failure::Exit(out.code),
                    tail: last_lines(&self.redact(&text), TAIL_LINES),
                    hint: None,
                });
            }
            attempt += 1;
            self.events.emit(Event::Note {
                stage,
                step: None,
                message: format!(
                    "`{}` failed (exit {}); retry {attempt}/{} in {}s",
                    self.redact(&cmd.display()),
                    out.code,
                    cmd.retries,
                    wait.as_secs()
                ),
            });
            if !self.sleep(wait) {
                return Err(self.interrupted(cmd));
            }
        }
    }

    fn interrupted(&self, cmd: &Cmd) -> ExecError {
        ExecError {
            command: self.redact(&cmd.display()),
            failure: Failure::Interrupted,
            tail: vec![],
            hint: None,
        }
    }

    fn run_once(
        &self,
        stage: Stage,
        cmd: &Cmd,
        deadline: Option<Instant>,
    ) -> Result<Output, ExecError> {
        let shown = self.redact(&cmd.display());
        if self.cancelled() {
            return Err(self.interrupted(cmd));
        }
        if let Some(refused) = self.refusal(cmd) {
            return Err(refused);
        }
        let spawn_err = |e: String, hint: Option<String>| ExecError {
            command: shown.clone(),
            failure: Failure::Spawn(e),
            tail: vec![],
            hint,
        };
        let stdin = self.stdin_bytes(&cmd.stdin).map_err(|e| {
            spawn_err(
                e,
                Some(
                    "set the variable, or run `cargo xtask preflight` to list every missing one"
                        .into(),
                ),
            )
        })?;
        let mut command = self.command(cmd);
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                spawn_err(
                    format!("`{}` is not on PATH", cmd.program),
                    Some(format!(
                        "install {} (see README.md, Prerequisites) or run `cargo xtask preflight`",
                        cmd.program
                    )),
                )
            } else {
                spawn_err(e.to_string(), None)
            }
        })?;
        self.count(stage);
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let pick = |yes: bool, mode: Lines| if yes { mode } else { Lines::Verbose };
        let out_lines = pick(cmd.stream, Lines::Answer);
        let err_lines = pick(cmd.progress, Lines::Progress);
        let stdout = Capture::start(
            stage,
            child.stdout.take(),
            Arc::clone(&self.events),
            out_lines,
        );
        let stderr = Capture::start(
            stage,
            child.stderr.take(),
            Arc::clone(&self.events),
            err_lines,
        );
        let limit = deadline.map_or(cmd.timeout, |d| {
            cmd.timeout.min(d.saturating_duration_since(started))
        });
        let status = self.wait(
            stage,
            &shown,
            &mut child,
            started + limit,
            cmd.interrupt_grace,
        );
        // Whatever the child left in its group goes with it.
        signal_group(child.id(), Signal::KILL);
        let drained = Instant::now() + DRAIN;
        let stdout = stdout.finish(drained);
        let stderr = stderr.finish(drained);
        let duration = started.elapsed();
        let code = match status {
            Waited::Exited(c) => Some(c),
            _ => None,
        };
        self.events.emit(Event::Command {
            stage,
            command: shown.clone(),
            exit_code: code,
            duration_ms: ms(duration),
        });
        let tail = || {
            if cmd.secret_output {
                vec![]
            } else {
                last_lines(&self.redact(&format!("{stdout}\n{stderr}")), TAIL_LINES)
            }
        };
        match status {
            Waited::Exited(code) => Ok(Output { code, stdout, stderr }),
            Waited::TimedOut => Err(ExecError {
                command: shown,
                failure: Failure::Timeout(limit),
                tail: tail(),
                hint: Some("raise the timeout in pipeline.toml ([timeouts] or the release's `timeout`), or look at why the tool hangs (output above)".into()),
            }),
            Waited::Interrupted => Err(ExecError {
                command: shown,
                failure: Failure::Interrupted,
                tail: tail(),
                hint: None,
            }),
        }
    }

    fn wait(
        &self,
        stage: Stage,
        shown: &str,
        child: &mut Child,
        end: Instant,
        grace: Duration,
    ) -> Waited {
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Waited::Exited(status_code(st));
            }
            if self.cancelled() {
                // SIGINT first: helm uses it to mark the release failed, not pending.
                signal_group(child.id(), Signal::INT);
                self.reap_within(stage, shown, child, grace);
                return Waited::Interrupted;
            }
            if Instant::now() >= end {
                signal_group(child.id(), Signal::TERM);
                self.reap_within(stage, shown, child, Duration::from_secs(5));
                return Waited::TimedOut;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Give a signalled child `grace` to exit, saying so when that is long; a
    /// further Ctrl-C ends the wait at once. Then SIGKILL.
    fn reap_within(&self, stage: Stage, shown: &str, child: &mut Child, grace: Duration) {
        let signals_then = self.signals.count();
        let end = Instant::now() + grace;
        let mut said = false;
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if self.signals.count() > signals_then.max(1) {
                break;
            }
            if !said && self.cancelled() && grace > Duration::from_secs(5) {
                said = true;
                self.events.emit(Event::Note {
                    stage,
                    step: None,
                    message: format!(
                        "waiting up to {}s for `{shown}` to stop cleanly (Ctrl-C again to kill it now)",
                        grace.as_secs()
                    ),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        signal_group(child.id(), Signal::KILL);
        let _ = child.wait();
    }

    /// Start a long-running command (a port-forward). It is stopped when the
    /// returned handle drops, whatever the reason.
    pub fn spawn_background(&self, stage: Stage, cmd: &Cmd) -> Result<Background, ExecError> {
        if let Some(refused) = self.refusal(cmd) {
            return Err(refused);
        }
        let shown = self.redact(&cmd.display());
        let mut command = self.command(cmd);
        command.stdin(Stdio::null());
        let mut child = command.spawn().map_err(|e| ExecError {
            command: shown.clone(),
            failure: Failure::Spawn(if e.kind() == std::io::ErrorKind::NotFound {
                format!("`{}` is not on PATH", cmd.program)
            } else {
                e.to_string()
            }),
            tail: vec![],
            hint: None,
        })?;
        self.count(stage);
        self.events.emit(Event::Command {
            stage,
            command: format!("{shown} &"),
            exit_code: None,
            duration_ms: 0,
        });
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            let log = Arc::clone(&log);
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.push(line.clone());
                    let excess = l.len().saturating_sub(TAIL_LINES);
                    l.drain(..excess);
                    drop(l);
                    let _ = tx.send(line);
                }
            });
        }
        Ok(Background {
            child,
            lines: rx,
            log,
            command: shown,
        })
    }
}

enum Waited {
    Exited(i32),
    TimedOut,
    Interrupted,
}

fn status_code(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// A background child; dropping it stops its whole process group.
pub struct Background {
    child: Child,
    pub lines: mpsc::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
    pub command: String,
}

impl Background {
    pub fn exited(&mut self) -> Option<i32> {
        self.child.try_wait().ok().flatten().map(status_code)
    }

    pub fn output_tail(&self) -> Vec<String> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log[log.len().saturating_sub(TAIL_LINES)..].to_vec()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        signal_group(self.child.id(), Signal::TERM);
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                signal_group(self.child.id(), Signal::KILL);
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        signal_group(self.child.id(), Signal::KILL);
        let _ = self.child.wait();
    }
}
