//! Reporting: every event goes through one [`Reporter`], which renders it for a
//! terminal (spinners and a timing summary), for plain logs (one timestamped line per
//! event: not a TTY, or `CI` set) or as JSON lines on stdout. Every event is masked
//! by the secret [`Redactor`] as it arrives, on its raw text, before it is styled or
//! encoded; text that is not an event ([`Reporter::line`]) is masked the same way.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use console::{pad_str, style, Alignment, StyledObject};
use indicatif::{ProgressBar, ProgressStyle};

use crate::model::{Event, Outcome, Redactor, ReleaseStatus, Sink, Stage};

/// Styled for stderr: colored only when stderr's colors are enabled (`--color`).
fn st<D>(d: D) -> StyledObject<D> {
    style(d).for_stderr()
}

/// Write to stderr; a closed stderr ends nothing.
fn to_stderr(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{text}");
}

/// Write to stdout; a closed stdout (`| head`) ends nothing.
fn to_stdout(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    started: Mutex<Instant>,
    state: Mutex<State>,
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
            started: Mutex::new(Instant::now()),
            state: Mutex::new(State::default()),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Start timing anew (`dev`: each round's summary counts from its own start).
    pub fn restart_clock(&self) {
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Print a line to stderr without tearing a spinner (masked first).
    pub fn line(&self, text: &str) {
        self.put(&self.redactor.redact(text));
    }

    /// Print a line made of masked text.
    fn put(&self, text: &str) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.spinners.values().next() {
            Some(pb) => pb.suspend(|| to_stderr(text)),
            None => to_stderr(text),
        }
    }

    /// A line of a child's output (shown with -v).
    fn child_line(&self, stage: Stage, line: &str) {
        if !self.verbose || self.mode == Mode::Json {
            return;
        }
        let line = self.redactor.redact(line);
        match self.mode {
            Mode::Tty => self.put(&format!("    {}", st(line).dim())),
            _ => self.put(&format!("{} [{}]   | {line}", now(), stage.name())),
        }
    }

    fn render(&self, ev: Event) {
        if let Event::Evidence { .. } = ev {
            return; // for the diagnosis bundle only
        }
        let ev = self.redactor.event(ev);
        self.record(&ev);
        if let Event::Output { text } = &ev {
            to_stdout(text);
            return;
        }
        if let (Event::ReleaseStatus(r), Mode::Tty | Mode::Plain) = (&ev, self.mode) {
            to_stdout(&status_text(r));
            return;
        }
        if let (Event::Error { .. }, Mode::Tty | Mode::Plain) = (&ev, self.mode) {
            self.error_block(&ev);
            return;
        }
        match self.mode {
            Mode::Json => {
                let mut v = serde_json::to_value(&ev).unwrap_or_default();
                if let serde_json::Value::Object(m) = &mut v {
                    m.insert("ts".into(), now().into());
                }
                to_stdout(&format!("{v}\n"));
            }
            Mode::Plain => {
                // --quiet: only errors (above), failed checks and the result.
                let wanted = !self.quiet
                    || matches!(
                        ev,
                        Event::RunFinished { .. }
                            | Event::Bundle { .. }
                            | Event::Check { ok: false, .. }
                    );
                if !wanted {
                    return;
                }
                if let Some(text) = self.plain(&ev) {
                    self.put(&format!("{} {text}", now()));
                }
            }
            Mode::Tty => self.tty(&ev),
        }
    }

    fn record(&self, ev: &Event) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
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
            Event::Delivered { stage, .. } => st
                .notes
                .entry(*stage)
                .or_default()
                .extend(ev.delivered_text()),
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
            Event::Delivered { stage, .. } => {
                format!("[{}] {}", stage.name(), ev.delivered_text()?)
            }
            Event::Bundle { path } => format!("[run] diagnosis bundle: {path}"),
            Event::Dev { message } => format!("[dev] {message}"),
            Event::Log { release, line } => format!("[log {release}] {line}"),
            Event::Error { .. }
            | Event::Output { .. }
            | Event::ReleaseStatus(_)
            | Event::Evidence { .. } => return None,
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

    /// The text beside a stage's spinner.
    fn spinner_says(&self, stage: Stage, text: &str) {
        if let Some(pb) = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spinners
            .get(&stage)
        {
            pb.set_message(text.to_string());
        }
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
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .spinners
                    .insert(*stage, pb);
            }
            Event::StepStarted { stage, title, .. } => self.spinner_says(*stage, title),
            Event::StageFinished {
                stage,
                result,
                duration_ms,
                commands,
            } => {
                let pb = self
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .spinners
                    .remove(stage);
                if let Some(pb) = pb {
                    pb.finish_and_clear();
                }
                if self.quiet && *result != Outcome::Failed {
                    return;
                }
                let mark = match result {
                    Outcome::Ok => st("✓").green(),
                    Outcome::Failed => st("✗").red(),
                };
                self.put(&format!(
                    "{mark} {:<9} {:>7}  {}",
                    st(stage.name()).bold(),
                    secs(Duration::from_millis(*duration_ms)),
                    st(format!(
                        "{commands} command{}",
                        if *commands == 1 { "" } else { "s" }
                    ))
                    .dim()
                ));
            }
            Event::StepSkipped { reason, .. } if !self.quiet => self.put(&format!(
                "  {} {}",
                st("·").dim(),
                st(format!("skipped: {reason}")).dim()
            )),
            Event::Note { stage, message } if !self.quiet => {
                // Long work (a tool or node image build) reports its phases: the
                // spinner shows the latest one next to the stage's elapsed time.
                self.spinner_says(*stage, message);
                self.put(&format!("  {} {message}", st("·").dim()))
            }
            Event::Delivered { .. } if !self.quiet => {
                if let Some(t) = ev.delivered_text() {
                    self.put(&format!("  {} {t}", st("·").dim()))
                }
            }
            Event::Bundle { path } => {
                self.put(&format!("{} {path}", st("diagnosis bundle:").cyan().bold()))
            }
            Event::Dev { message } if !self.quiet => {
                self.put(&format!("{} {message}", st("▸").cyan().bold()))
            }
            Event::Log { release, line } if !self.quiet => {
                self.put(&format!("{} {line}", st(format!("{release} |")).dim()))
            }
            Event::Check {
                name,
                ok,
                attempts,
                duration_ms,
                detail,
                ..
            } if !self.quiet || !ok => self.put(&format!(
                "  {} {name}: {detail} {}",
                if *ok {
                    st("✓").green()
                } else {
                    st("✗").red()
                },
                st(format!("({attempts} attempt(s), {duration_ms} ms)")).dim()
            )),
            Event::Command {
                command,
                exit_code,
                duration_ms,
                ..
            } if self.verbose => self.put(&format!(
                "  {} {} {}",
                st("$").dim(),
                command,
                st(format!(
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
        let rows = std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).rows);
        if rows.is_empty() {
            return;
        }
        // Widths are measured without color codes (console::pad_str).
        let cell = |s: &str, w: usize, a: Alignment| pad_str(s, w, a, None).into_owned();
        let mut out = String::from("\nsummary\n");
        for r in &rows {
            let result = match r.result {
                Outcome::Ok => st("ok").green().to_string(),
                Outcome::Failed => st("FAILED").red().bold().to_string(),
            };
            out.push_str(&format!(
                "  {} {}  {} {} command{}\n",
                cell(r.stage.name(), 9, Alignment::Left),
                cell(&secs(r.duration), 7, Alignment::Right),
                cell(&result, 7, Alignment::Left),
                r.commands,
                if r.commands == 1 { "" } else { "s" }
            ));
            for n in &r.notes {
                out.push_str(&format!("  {:<9} {:>7}  {}\n", "", "", st(n).dim()));
            }
        }
        out.push_str(&format!("  {:<9} {:>7}\n", "total", secs(self.elapsed())));
        for f in footer {
            out.push_str(&format!("  {}\n", self.redactor.redact(f)));
        }
        self.put(out.trim_end());
    }

    /// An error, once: what failed, the command, its exit code and output, a hint
    /// and where slipway stopped.
    fn error_block(&self, ev: &Event) {
        let Event::Error {
            stage,
            message,
            command,
            exit_code,
            output_tail,
            hint,
            slipway_exit,
        } = ev
        else {
            return;
        };
        let mut s = match stage {
            Some(s) => format!("{} {message}", st(format!("error[{s}]:")).red().bold()),
            // Pipeline-file diagnostics carry their own `file:line:col: error:`.
            None if message.contains("error:") => message.clone(),
            None => format!("{} {message}", st("error:").red().bold()),
        };
        if let Some(c) = command {
            s.push_str(&format!("\n  command: {c}"));
        }
        if let Some(code) = exit_code {
            s.push_str(&format!("\n  exit code: {code}"));
        }
        if !output_tail.is_empty() && command.is_none() {
            s.push_str("\n  details:");
            for l in output_tail {
                s.push_str(&format!("\n    {l}"));
            }
        } else if !output_tail.is_empty() {
            s.push_str(&format!("\n  output (last {} lines):", output_tail.len()));
            for l in output_tail {
                s.push_str(&format!("\n    | {l}"));
            }
        }
        if let Some(h) = hint {
            s.push_str(&format!("\n  {} {h}", st("hint:").cyan().bold()));
        }
        if let Some(stage) = stage {
            s.push_str(&format!(
                "\n  {}",
                st(format!(
                    "slipway stopped in stage {stage} (exit code {slipway_exit})"
                ))
                .dim()
            ));
        }
        self.put(&s);
    }
}

impl Sink for Reporter {
    fn emit(&self, ev: Event) {
        self.render(ev);
    }

    fn child_output(&self, stage: Stage, line: &str) {
        self.child_line(stage, line);
    }

    fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

/// A command-line error from clap, printed as clap renders it; its exit code.
pub fn clap_error(e: &clap::Error) -> i32 {
    let text = if console::colors_enabled_stderr() {
        e.render().ansi().to_string()
    } else {
        e.render().to_string()
    };
    if e.use_stderr() {
        to_stderr(text.trim_end());
        crate::model::exit::USAGE
    } else {
        to_stdout(&text);
        crate::model::exit::OK
    }
}

/// `status` for people: the release, then each workload and its pods.
fn status_text(r: &ReleaseStatus) -> String {
    let mut out = format!(
        "release {} (namespace {}, context {}): {}{}\n",
        r.release,
        r.namespace,
        r.context,
        r.status,
        r.revision
            .map(|v| format!(", revision {v}"))
            .unwrap_or_default()
    );
    for w in &r.workloads {
        out.push_str(&format!(
            "  {:<32} {}/{} ready\n",
            w.workload, w.ready, w.desired
        ));
        for p in &w.pods {
            out.push_str(&format!(
                "    {:<40} {:<9} restarts {:<3} age {:<8} {}\n",
                p.name,
                if p.ready { "Ready" } else { p.phase.as_str() },
                p.restarts,
                p.age,
                p.images.join(", ")
            ));
        }
    }
    out
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
