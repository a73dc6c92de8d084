//! Reporting: every event goes through one [`Reporter`], which renders it for a
//! terminal (spinners and a timing summary), for plain logs (one timestamped line per
//! event: not a TTY, or `CI` set) or as JSON lines on stdout. Everything it prints
//! passes through the secret [`Redactor`] first.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use console::style;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::plan::Stage;

/// Masks secret values wherever text is about to leave the process.
#[derive(Clone, Default)]
pub struct Redactor(Arc<RwLock<Vec<String>>>);

impl Redactor {
    /// Values shorter than this are not masked (masking "a" would mangle all output);
    /// preflight warns about them.
    pub const MIN_LEN: usize = 4;

    pub fn add(&self, secret: &str) {
        if secret.len() >= Self::MIN_LEN {
            let mut v = self.0.write().unwrap();
            if !v.iter().any(|s| s == secret) {
                v.push(secret.to_string());
                // Longest first, so a secret containing another is masked whole.
                v.sort_by_key(|s| std::cmp::Reverse(s.len()));
            }
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let v = self.0.read().unwrap();
        let mut out = text.to_string();
        for s in v.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), crate::cmd::MASK);
            }
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A terminal: spinners, colors (unless disabled), a summary table.
    Tty,
    /// Plain timestamped lines (CI logs, pipes).
    Plain,
    /// One JSON object per line on stdout.
    Json,
}

impl Mode {
    pub fn detect(format: OutputFormat) -> Mode {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0");
        match format {
            OutputFormat::Json => Mode::Json,
            OutputFormat::Human if std::io::stderr().is_terminal() && !ci => Mode::Tty,
            OutputFormat::Human => Mode::Plain,
        }
    }
}

/// Decide color for stderr: `--color`, then NO_COLOR, then whether stderr is a TTY.
pub fn colors_for_stderr(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
}

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        project: String,
        job: String,
        profile: String,
        context: String,
    },
    StageStarted {
        stage: Stage,
    },
    StepStarted {
        stage: Stage,
        step: String,
        title: String,
    },
    StepSkipped {
        stage: Stage,
        step: String,
        reason: String,
    },
    StepFinished {
        stage: Stage,
        step: String,
        duration_ms: u64,
    },
    Command {
        stage: Stage,
        command: String,
        exit_code: Option<i32>,
        duration_ms: u64,
    },
    Check {
        stage: Stage,
        name: String,
        ok: bool,
        attempts: u32,
        duration_ms: u64,
        detail: String,
    },
    Note {
        stage: Stage,
        message: String,
    },
    Error {
        stage: Stage,
        message: String,
        command: Option<String>,
        exit_code: Option<i32>,
        output_tail: Vec<String>,
        hint: Option<String>,
    },
    StageFinished {
        stage: Stage,
        result: Outcome,
        duration_ms: u64,
        commands: usize,
    },
    RunFinished {
        result: Outcome,
        exit_code: i32,
        duration_ms: u64,
    },
}

struct StageRow {
    stage: Stage,
    result: Outcome,
    duration: Duration,
    commands: usize,
    notes: Vec<String>,
}

#[derive(Default)]
struct State {
    spinners: BTreeMap<Stage, ProgressBar>,
    rows: Vec<StageRow>,
    commands: BTreeMap<Stage, usize>,
    notes: BTreeMap<Stage, Vec<String>>,
}

pub struct Reporter {
    pub mode: Mode,
    pub verbose: bool,
    pub quiet: bool,
    redactor: Redactor,
    started: Instant,
    state: Mutex<State>,
}

pub fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Reporter {
    pub fn new(mode: Mode, verbose: bool, quiet: bool, redactor: Redactor) -> Reporter {
        Reporter {
            mode,
            verbose,
            quiet,
            redactor,
            started: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Print a line to stderr without tearing a spinner.
    pub fn line(&self, text: &str) {
        let text = self.redactor.redact(text);
        let st = self.state.lock().unwrap();
        match st.spinners.values().next() {
            Some(pb) => pb.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// A line of a child's output (shown with -v).
    pub fn child_output(&self, stage: Stage, line: &str) {
        if !self.verbose || self.mode == Mode::Json {
            return;
        }
        match self.mode {
            Mode::Tty => self.line(&format!("    {}", style(line).dim())),
            _ => self.line(&format!("{} [{}]   | {line}", now(), stage.name())),
        }
    }

    pub fn emit(&self, ev: Event) {
        self.record(&ev);
        match self.mode {
            Mode::Json => {
                let mut v = serde_json::to_value(&ev).expect("event serializes");
                if let serde_json::Value::Object(m) = &mut v {
                    m.insert("ts".into(), now().into());
                }
                let line = self.redactor.redact(&v.to_string());
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            Mode::Plain => {
                if let Some(text) = self.plain(&ev) {
                    self.line(&format!("{} {text}", now()));
                }
            }
            Mode::Tty => self.tty(&ev),
        }
    }

    fn record(&self, ev: &Event) {
        let mut st = self.state.lock().unwrap();
        match ev {
            Event::Command { stage, .. } => *st.commands.entry(*stage).or_default() += 1,
            Event::StepSkipped { stage, reason, .. } => st
                .notes
                .entry(*stage)
                .or_default()
                .push(format!("skipped: {reason}")),
            Event::Note { stage, message } => {
                st.notes.entry(*stage).or_default().push(message.clone())
            }
            Event::StageFinished {
                stage,
                result,
                duration_ms,
                commands,
            } => {
                let notes = st.notes.remove(stage).unwrap_or_default();
                st.rows.push(StageRow {
                    stage: *stage,
                    result: *result,
                    duration: Duration::from_millis(*duration_ms),
                    commands: *commands,
                    notes,
                })
            }
            _ => {}
        }
    }

    pub fn commands_in(&self, stage: Stage) -> usize {
        self.state
            .lock()
            .unwrap()
            .commands
            .get(&stage)
            .copied()
            .unwrap_or(0)
    }

    fn plain(&self, ev: &Event) -> Option<String> {
        Some(match ev {
            Event::RunStarted {
                project,
                job,
                profile,
                context,
            } => {
                format!("[run] {job} {project}: profile {profile}, kube context {context}")
            }
            Event::StageStarted { stage } => format!("[{}] started", stage.name()),
            Event::StepStarted { stage, title, .. } => format!("[{}] {title}", stage.name()),
            Event::StepSkipped { stage, reason, .. } => {
                format!("[{}] skipped: {reason}", stage.name())
            }
            Event::StepFinished { .. } => return None,
            Event::Command {
                stage,
                command,
                exit_code,
                duration_ms,
            } => {
                if !self.verbose {
                    return None;
                }
                format!(
                    "[{}] $ {command} (exit {}, {duration_ms} ms)",
                    stage.name(),
                    exit_code.map_or("-".into(), |c| c.to_string())
                )
            }
            Event::Check {
                stage,
                name,
                ok,
                attempts,
                duration_ms,
                detail,
            } => format!(
                "[{}] check {name}: {} after {attempts} attempt(s), {duration_ms} ms: {detail}",
                stage.name(),
                if *ok { "passed" } else { "FAILED" }
            ),
            Event::Note { stage, message } => format!("[{}] {message}", stage.name()),
            Event::Error { .. } => return None, // printed by the caller as a block
            Event::StageFinished {
                stage,
                result,
                duration_ms,
                commands,
            } => format!(
                "[{}] {} in {:.1}s ({commands} command{})",
                stage.name(),
                match result {
                    Outcome::Ok => "finished",
                    Outcome::Failed => "FAILED",
                },
                *duration_ms as f64 / 1000.0,
                if *commands == 1 { "" } else { "s" }
            ),
            Event::RunFinished {
                result,
                exit_code,
                duration_ms,
            } => format!(
                "[run] {} in {:.1}s (exit {exit_code})",
                if *result == Outcome::Ok {
                    "succeeded"
                } else {
                    "failed"
                },
                *duration_ms as f64 / 1000.0
            ),
        })
    }

    fn tty(&self, ev: &Event) {
        match ev {
            Event::StageStarted { stage } => {
                if self.quiet {
                    return;
                }
                let pb = ProgressBar::new_spinner();
                pb.set_style(
                    ProgressStyle::with_template(
                        "{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:.dim}",
                    )
                    .unwrap(),
                );
                pb.set_prefix(format!("{:<9}", stage.name()));
                pb.enable_steady_tick(Duration::from_millis(100));
                self.state.lock().unwrap().spinners.insert(*stage, pb);
            }
            Event::StepStarted { stage, title, .. } => {
                if let Some(pb) = self.state.lock().unwrap().spinners.get(stage) {
                    pb.set_message(self.redactor.redact(title));
                }
            }
            Event::StageFinished {
                stage,
                result,
                duration_ms,
                commands,
            } => {
                let pb = self.state.lock().unwrap().spinners.remove(stage);
                if let Some(pb) = pb {
                    pb.finish_and_clear();
                }
                if self.quiet && *result != Outcome::Failed {
                    return;
                }
                let mark = match result {
                    Outcome::Ok => style("✓").green(),
                    Outcome::Failed => style("✗").red(),
                };
                self.line(&format!(
                    "{mark} {:<9} {:>7}  {}",
                    style(stage.name()).bold(),
                    secs(Duration::from_millis(*duration_ms)),
                    style(format!(
                        "{commands} command{}",
                        if *commands == 1 { "" } else { "s" }
                    ))
                    .dim()
                ));
            }
            Event::StepSkipped { reason, .. } if !self.quiet => self.line(&format!(
                "  {} {}",
                style("·").dim(),
                style(format!("skipped: {reason}")).dim()
            )),
            Event::Note { message, .. } if !self.quiet => {
                self.line(&format!("  {} {message}", style("·").dim()))
            }
            Event::Check {
                name,
                ok,
                attempts,
                duration_ms,
                detail,
                ..
            } if !self.quiet || !ok => self.line(&format!(
                "  {} {name}: {detail} {}",
                if *ok {
                    style("✓").green()
                } else {
                    style("✗").red()
                },
                style(format!("({attempts} attempt(s), {duration_ms} ms)")).dim()
            )),
            Event::Command {
                command,
                exit_code,
                duration_ms,
                ..
            } if self.verbose => self.line(&format!(
                "  {} {} {}",
                style("$").dim(),
                command,
                style(format!(
                    "(exit {}, {duration_ms} ms)",
                    exit_code.map_or("-".into(), |c| c.to_string())
                ))
                .dim()
            )),
            _ => {}
        }
    }

    /// The closing table: each stage, its duration, result and what it skipped.
    pub fn summary(&self, footer: &[String]) {
        if self.mode == Mode::Json || self.quiet {
            return;
        }
        let rows = std::mem::take(&mut self.state.lock().unwrap().rows);
        if rows.is_empty() {
            return;
        }
        let mut out = String::from("\nsummary\n");
        for r in &rows {
            let result = match r.result {
                Outcome::Ok => style("ok").green().to_string(),
                Outcome::Failed => style("FAILED").red().bold().to_string(),
            };
            out.push_str(&format!(
                "  {:<9} {:>7}  {:<7} {} command{}\n",
                r.stage.name(),
                secs(r.duration),
                result,
                r.commands,
                if r.commands == 1 { "" } else { "s" }
            ));
            for n in &r.notes {
                out.push_str(&format!("  {:<9} {:>7}  {}\n", "", "", style(n).dim()));
            }
        }
        out.push_str(&format!("  {:<9} {:>7}\n", "total", secs(self.elapsed())));
        for f in footer {
            out.push_str(&format!("  {f}\n"));
        }
        self.line(out.trim_end());
    }
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_masks_longest_first_and_ignores_tiny_values() {
        let r = Redactor::default();
        r.add("hunter2");
        r.add("hunter2-extended");
        r.add("ab");
        assert_eq!(
            r.redact("x hunter2-extended y hunter2 ab"),
            "x ******** y ******** ab"
        );
    }
}
