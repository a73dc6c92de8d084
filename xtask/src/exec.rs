//! The one executor every external command goes through: spawning in its own process
//! group, stdin (secrets resolved only here), output capture, timeouts, Ctrl-C,
//! retries, secret redaction, and a `command` event per run.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd::{Cmd, SecretInput, SecretSource, Stdin};
use crate::config::Vars;
use crate::plan::Stage;
use crate::report::{ms, Event, Reporter};

/// Lines of output shown when a command fails.
pub const TAIL_LINES: usize = 30;
/// Captured output kept per stream.
const CAPTURE_LIMIT: usize = 4 << 20;

#[derive(Clone, Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
}

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
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.failure {
            Failure::Exit(c) => write!(f, "`{}` exited with code {c}", self.command),
            Failure::Timeout(d) => write!(
                f,
                "`{}` timed out after {:.1}s and was stopped",
                self.command,
                d.as_secs_f64()
            ),
            Failure::Interrupted => write!(f, "`{}` was interrupted", self.command),
            Failure::Spawn(e) => write!(f, "could not run `{}`: {e}", self.command),
        }
    }
}

impl std::error::Error for ExecError {}

pub struct Executor {
    pub root: PathBuf,
    pub reporter: Arc<Reporter>,
    pub vars: Vars,
    cancel: Arc<AtomicBool>,
}

/// Set by SIGINT/SIGTERM; every wait loop watches it.
pub fn install_signal_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
    }
    flag
}

fn signal_group(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals the process group we created.
    unsafe {
        libc::kill(-(pid as libc::pid_t), sig);
    }
}

/// The last `n` non-blank lines of `text`.
pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl Executor {
    pub fn new(
        root: PathBuf,
        reporter: Arc<Reporter>,
        vars: Vars,
        cancel: Arc<AtomicBool>,
    ) -> Executor {
        Executor {
            root,
            reporter,
            vars,
            cancel,
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    pub fn redact(&self, s: &str) -> String {
        self.reporter.redactor().redact(s)
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
            SecretSource::EnvFile { path, var } => crate::config::interp::read_env_file(path)?
                .remove(var)
                .ok_or_else(|| format!("{var} is no longer in {}", path.display()))?,
        };
        self.reporter.redactor().add(&v);
        Ok(v)
    }

    fn stdin_bytes(&self, s: &Stdin) -> Result<Option<Vec<u8>>, String> {
        Ok(match s {
            Stdin::None => None,
            Stdin::Text { text } => Some(text.clone().into_bytes()),
            Stdin::Secret(input) => Some(self.secret_manifest(input)?.into_bytes()),
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
        let mut c = Command::new(&cmd.program);
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

    /// Run, retrying per `cmd.retries`, and require exit code 0.
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
            if attempt >= cmd.retries
                || deadline.is_some_and(|d| Instant::now() + Duration::from_secs(2) > d)
            {
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
            self.reporter.emit(Event::Note {
                stage,
                message: format!(
                    "`{}` failed (exit {}); retry {attempt}/{}",
                    self.redact(&cmd.display()),
                    out.code,
                    cmd.retries
                ),
            });
            if !self.sleep(Duration::from_secs(1 << attempt.min(4))) {
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
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let stdout = self.capture(stage, child.stdout.take());
        let stderr = self.capture(stage, child.stderr.take());
        let limit = deadline.map_or(cmd.timeout, |d| {
            cmd.timeout.min(d.saturating_duration_since(started))
        });
        let end = started + limit;
        let status = self.wait(&mut child, end, cmd.interrupt_grace);
        // Whatever the child left in its group goes with it.
        signal_group(child.id(), libc::SIGKILL);
        let stdout = String::from_utf8_lossy(&stdout.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
        let duration = started.elapsed();
        let code = match status {
            Waited::Exited(c) => Some(c),
            _ => None,
        };
        self.reporter.emit(Event::Command {
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

    /// Read a pipe to the end in a thread, echoing lines with -v.
    fn capture(
        &self,
        stage: Stage,
        pipe: Option<impl Read + Send + 'static>,
    ) -> thread::JoinHandle<Vec<u8>> {
        let reporter = Arc::clone(&self.reporter);
        thread::spawn(move || {
            let mut buf = Vec::new();
            let Some(pipe) = pipe else { return buf };
            let mut r = BufReader::new(pipe);
            let mut line = Vec::new();
            while let Ok(n) = r.read_until(b'\n', &mut line) {
                if n == 0 {
                    break;
                }
                reporter.child_output(stage, String::from_utf8_lossy(&line).trim_end());
                if buf.len() + line.len() > CAPTURE_LIMIT {
                    let cut = (buf.len() + line.len() - CAPTURE_LIMIT).min(buf.len());
                    buf.drain(..cut);
                }
                buf.extend_from_slice(&line);
                line.clear();
            }
            buf
        })
    }

    fn wait(&self, child: &mut Child, end: Instant, grace: Duration) -> Waited {
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Waited::Exited(exit_code(st));
            }
            if self.cancelled() {
                // SIGINT first: helm uses it to mark the release failed, not pending.
                signal_group(child.id(), libc::SIGINT);
                self.reap_within(child, grace);
                return Waited::Interrupted;
            }
            if Instant::now() >= end {
                signal_group(child.id(), libc::SIGTERM);
                self.reap_within(child, Duration::from_secs(5));
                return Waited::TimedOut;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn reap_within(&self, child: &mut Child, grace: Duration) {
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        signal_group(child.id(), libc::SIGKILL);
        let _ = child.wait();
    }

    /// Start a long-running command (a port-forward). It is stopped when the
    /// returned handle drops, whatever the reason.
    pub fn spawn_background(&self, stage: Stage, cmd: &Cmd) -> Result<Background, ExecError> {
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
        self.reporter.emit(Event::Command {
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
                    log.lock().unwrap().push(line.clone());
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

fn exit_code(st: std::process::ExitStatus) -> i32 {
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
        self.child.try_wait().ok().flatten().map(exit_code)
    }

    pub fn output_tail(&self) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(TAIL_LINES)..].to_vec()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        signal_group(self.child.id(), libc::SIGTERM);
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                signal_group(self.child.id(), libc::SIGKILL);
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        signal_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}
