//! Reporting: every event goes through one [`Reporter`], which renders it for a
//! terminal (spinners and a timing summary), for plain logs (one timestamped line per
//! event: not a TTY, or `CI` set) or as JSON lines on stdout. Every event is masked
//! by the secret [`Redactor`] as it arrives, on its raw text, before it is styled or
//! encoded; text that is not an event ([`Reporter::line`]) is masked the same way.

pub mod bundle;
mod ci_host;
pub mod junit;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use console::{pad_str, style, Alignment, StyledObject};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::model::{Event, Outcome, Redactor, ReleaseStatus, Sink, Stage};

pub mod critical;
mod left;
pub mod table;

/// A check that took this long says how long, even when it passed at once.
const SLOW_CHECK_MS: u64 = 5_000;

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

/// The per-service table while a run goes: drawn below the stage spinners, the
/// lines printed above both.
struct Live {
    bars: MultiProgress,
    table_bar: ProgressBar,
    table: Arc<Mutex<table::Table>>,
    /// The table's clock (its events' times and the running cells' elapsed).
    origin: Instant,
}

#[derive(Default)]
struct State {
    spinners: BTreeMap<Stage, ProgressBar>,
    /// A terminal's table of services (a run of [`table::TABLE_AT`] or more).
    live: Option<Live>,
    rows: Vec<StageRow>,
    commands: BTreeMap<Stage, usize>,
    notes: BTreeMap<Stage, Vec<String>>,
    /// When each running stage and step began (offsets from the run's start), and
    /// what finished: the critical path is made of these.
    stage_began: BTreeMap<Stage, Duration>,
    steps_began: BTreeMap<(Stage, String), Duration>,
    steps_done: BTreeMap<Stage, Vec<critical::Span>>,
    timeline: critical::Timeline,
    /// Checks that passed quietly, per stage (a terminal counts them).
    passed: BTreeMap<Stage, usize>,
    /// The job that runs (from `run_started`).
    job: Option<String>,
    /// Where the run stopped and whether it was interrupted (from `error`).
    stopped: Option<(Option<Stage>, bool)>,
    left: left::Left,
}

pub struct Reporter {
    pub mode: Mode,
    /// The CI system whose log conventions plain output follows (groups, annotations).
    host: ci_host::Host,
    pub verbose: bool,
    pub quiet: bool,
    redactor: Redactor,
    started: Mutex<Instant>,
    state: Mutex<State>,
}

/// Does the live table say what this event says, for a service?
fn owned(st: &State, ev: &Event) -> bool {
    st.live
        .as_ref()
        .is_some_and(|l| l.table.lock().unwrap_or_else(|e| e.into_inner()).owns(ev))
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Reporter {
    pub fn new(mode: Mode, verbose: bool, quiet: bool, redactor: Redactor) -> Reporter {
        Reporter {
            mode,
            host: match mode {
                Mode::Plain => ci_host::Host::detect(),
                _ => ci_host::Host::None,
            },
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
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.stage_began.clear();
        st.steps_began.clear();
        st.steps_done.clear();
        st.timeline = critical::Timeline::default();
    }

    /// The run's critical path so far, for a run of `total` wall time.
    pub fn critical_path(&self, total: Duration) -> Vec<critical::Item> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        critical::path(&st.timeline, total)
    }

    /// Print a line to stderr without tearing a spinner (masked first).
    pub fn line(&self, text: &str) {
        self.put(&self.redactor.redact(text));
    }

    /// Print a line made of masked text.
    fn put(&self, text: &str) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match (&state.live, state.spinners.values().next()) {
            (Some(live), _) => live.bars.suspend(|| to_stderr(text)),
            (None, Some(pb)) => pb.suspend(|| to_stderr(text)),
            (None, None) => to_stderr(text),
        }
    }

    /// The run's services, known before its first stage: a run of
    /// [`table::TABLE_AT`] or more on a terminal shows them as a table, one row each,
    /// below the stage lines (not with `--quiet`: the result is all it says).
    pub fn services(&self, services: Vec<table::Service>) {
        self.close_table();
        if self.mode != Mode::Tty || self.quiet || services.len() < table::TABLE_AT {
            return;
        }
        let table = Arc::new(Mutex::new(table::Table::new(services)));
        let origin = Instant::now();
        let t = table.clone();
        let draw = move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            // What fits under the stage's spinner, a line to spare; a line no
            // wider than the terminal (one row each, so the rows counted fit).
            let (height, width) = console::Term::stderr().size();
            let lines: Vec<String> = t
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .live_lines(origin.elapsed(), usize::from(height).saturating_sub(3))
                .iter()
                .map(|l| {
                    console::truncate_str(l, usize::from(width).saturating_sub(1), "…").into_owned()
                })
                .collect();
            let _ = w.write_str(&lines.join("\n"));
        };
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{table}")
            .unwrap()
            .with_key("table", draw);
        let table_bar = bars.add(ProgressBar::hidden().with_style(style));
        table_bar.enable_steady_tick(Duration::from_millis(200));
        self.state.lock().unwrap_or_else(|e| e.into_inner()).live = Some(Live {
            bars,
            table_bar,
            table,
            origin,
        });
    }

    /// The live table ends: cleared, then printed once more as lines that stay.
    fn close_table(&self) {
        let Some(live) = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .take()
        else {
            return;
        };
        live.table_bar.finish_and_clear();
        let _ = live.bars.clear();
        let lines = live
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines(live.origin.elapsed());
        self.put(&lines.join("\n"));
    }

    /// Feed the live table an event.
    fn to_table(&self, ev: &Event) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = &st.live {
            let at = live.origin.elapsed();
            live.table
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .apply(ev, at);
        }
    }

    /// An answer on stdout, with the spinners out of its way (on a terminal both
    /// streams share the screen).
    fn answer(&self, text: &str) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match (&state.live, state.spinners.values().next()) {
            (Some(live), _) => live.bars.suspend(|| to_stdout(text)),
            (None, Some(pb)) => pb.suspend(|| to_stdout(text)),
            (None, None) => to_stdout(text),
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
        self.to_table(&ev);
        if let (Event::Error { .. } | Event::RunFinished { .. }, Mode::Tty) = (&ev, self.mode) {
            // The table, as the run left it, above the error and the result.
            self.close_table();
        }
        if let Event::Output { text } = &ev {
            self.answer(text);
            return;
        }
        if let (Event::ReleaseStatus(r), Mode::Tty | Mode::Plain) = (&ev, self.mode) {
            self.answer(&status_text(r));
            return;
        }
        if let (Event::Error { .. }, Mode::Tty | Mode::Plain) = (&ev, self.mode) {
            self.error_block(&ev);
            return;
        }
        match self.mode {
            Mode::Json => {
                let at = self.elapsed();
                if let Event::RunFinished { .. } = ev {
                    // Before the end: the steps that made up the wall time.
                    let steps = self.critical_path(at);
                    let v = serde_json::json!({
                        "event": "critical_path",
                        "total_ms": at.as_millis() as u64,
                        "steps": steps,
                        "ts": now(),
                        "elapsed_ms": at.as_millis() as u64,
                    });
                    to_stdout(&format!("{v}\n"));
                }
                let mut v = serde_json::to_value(&ev).unwrap_or_default();
                if let serde_json::Value::Object(m) = &mut v {
                    m.insert("ts".into(), now().into());
                    m.insert("elapsed_ms".into(), (at.as_millis() as u64).into());
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
                if let (Event::StageStarted { stage }, false) = (&ev, self.quiet) {
                    if let Some(open) = self.host.open(*stage) {
                        self.put(&open);
                    }
                }
                if let Some(text) = self.plain(&ev) {
                    self.put(&format!("{} {text}", now()));
                }
                if let (Event::StageFinished { stage, .. }, false) = (&ev, self.quiet) {
                    if let Some(close) = self.host.close(*stage) {
                        self.put(&close);
                    }
                }
            }
            Mode::Tty => self.tty(&ev),
        }
        if let Event::RunFinished {
            result: Outcome::Failed,
            ..
        } = &ev
        {
            self.left();
        }
    }

    /// After a failure or an interruption: the state the run left each release in
    /// and the next command (not for read-only jobs, nor as JSON: the events say it).
    fn left(&self) {
        if self.mode == Mode::Json {
            return;
        }
        let lines = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let (Some(job), Some((stage, interrupted))) = (&st.job, st.stopped) else {
                return;
            };
            if left::read_only(job) {
                return;
            }
            st.left.lines(&left::me(), job, stage, interrupted)
        };
        for l in lines {
            let l = self.redactor.redact(&l);
            match self.mode {
                Mode::Plain => self.put(&format!("{} [run] {l}", now())),
                _ => self.put(&l),
            }
        }
    }

    /// A read-only job (`status`, `logs`) that has not failed: its answer is all.
    fn answer_only(&self) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.job.as_deref().is_some_and(left::read_only) && st.stopped.is_none()
    }

    fn record(&self, ev: &Event) {
        // Each message once per stage: two images skipped for the same reason, or a
        // note repeated by a retry, say it once.
        fn note_once(st: &mut State, stage: Stage, text: String) {
            let notes = st.notes.entry(stage).or_default();
            if !notes.contains(&text) {
                notes.push(text);
            }
        }
        let at = self.elapsed();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // What the table says for a service, a stage's line does not repeat.
        let owned = owned(&st, ev);
        match ev {
            Event::StageStarted { stage } => {
                st.stage_began.insert(*stage, at);
            }
            Event::StepStarted { stage, step, .. } => {
                st.steps_began.insert((*stage, step.clone()), at);
            }
            Event::StepFinished {
                stage,
                step,
                duration_ms,
            } => {
                let start = st
                    .steps_began
                    .remove(&(*stage, step.clone()))
                    .unwrap_or_else(|| at.saturating_sub(Duration::from_millis(*duration_ms)));
                st.steps_done
                    .entry(*stage)
                    .or_default()
                    .push(critical::Span {
                        name: step.clone(),
                        start,
                        end: at,
                    });
            }
            _ => {}
        }
        if let Event::StageFinished {
            stage, duration_ms, ..
        } = ev
        {
            let start = st
                .stage_began
                .remove(stage)
                .unwrap_or_else(|| at.saturating_sub(Duration::from_millis(*duration_ms)));
            let steps = st.steps_done.remove(stage).unwrap_or_default();
            st.timeline.stages.push((
                critical::Span {
                    name: stage.name().to_string(),
                    start,
                    end: at,
                },
                steps,
            ));
        }
        match ev {
            Event::Command {
                stage, duration_ms, ..
            } => {
                *st.commands.entry(*stage).or_default() += 1;
                // A command outside a running stage: a guard probe read ahead.
                if st.stage_began.is_empty() {
                    let began = at.saturating_sub(Duration::from_millis(*duration_ms));
                    st.timeline.between.push(began);
                }
            }
            Event::StepSkipped { stage, reason, .. } if !owned => {
                note_once(&mut st, *stage, format!("skipped: {reason}"))
            }
            Event::Note { stage, message, .. } if !owned => {
                note_once(&mut st, *stage, message.clone())
            }
            Event::RunStarted { job, .. } => st.job = Some(job.clone()),
            Event::Error {
                stage,
                slipway_exit,
                ..
            } => st.stopped = Some((*stage, *slipway_exit == crate::model::exit::INTERRUPTED)),
            Event::ReleaseSeen(r) => st.left.see(r),
            Event::Check {
                stage, ok: true, ..
            } => *st.passed.entry(*stage).or_default() += 1,
            Event::Delivered { stage, .. } if !owned => {
                if let Some(t) = ev.delivered_text() {
                    note_once(&mut st, *stage, t)
                }
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
            Event::Note { stage, message, .. } | Event::Progress { stage, message } => {
                format!("[{}] {message}", stage.name())
            }
            Event::ReleaseSeen(_) => return None,
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

    /// A running stage's spinner: its name, what it does now, its elapsed time.
    fn start_spinner(&self, stage: Stage) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Above the table, when there is one (in it before it draws anything).
        let pb = match &st.live {
            Some(live) => live.bars.insert(0, ProgressBar::hidden()),
            None => ProgressBar::new_spinner(),
        };
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:.dim}",
            )
            .unwrap(),
        );
        pb.set_prefix(format!("{:<9}", stage.name()));
        pb.enable_steady_tick(Duration::from_millis(100));
        st.spinners.insert(stage, pb);
    }

    fn tty(&self, ev: &Event) {
        let owned = owned(&self.state.lock().unwrap_or_else(|e| e.into_inner()), ev);
        match ev {
            Event::StageStarted { stage } if !self.quiet => self.start_spinner(*stage),
            Event::StepStarted { stage, title, .. } => self.spinner_says(*stage, title),
            Event::StageFinished {
                stage,
                result,
                duration_ms,
                commands,
            } => {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(pb) = st.spinners.remove(stage) {
                    pb.finish_and_clear();
                    if let Some(live) = &st.live {
                        live.bars.remove(&pb);
                    }
                }
                drop(st);
                if self.quiet && *result != Outcome::Failed {
                    return;
                }
                if *result == Outcome::Ok && self.answer_only() {
                    return;
                }
                let _ = commands;
                self.put(&self.stage_line(*stage, *result, *duration_ms));
            }
            // Skips, notes and progress show on the stage's spinner as they come; the
            // stage's line says each skip and note once when it ends.
            Event::StepSkipped { stage, reason, .. } if !self.quiet => {
                self.spinner_says(*stage, &format!("skipped: {reason}"))
            }
            Event::Note { stage, message, .. } | Event::Progress { stage, message }
                if !self.quiet =>
            {
                self.spinner_says(*stage, message)
            }
            Event::Delivered { stage, .. } if !self.quiet => {
                if let Some(t) = ev.delivered_text() {
                    self.spinner_says(*stage, &t)
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
            // A check that passed at once and fast is counted on its stage's line;
            // one that failed, needed more attempts or was slow has a line of its own.
            Event::Check {
                name,
                ok,
                attempts,
                duration_ms,
                detail,
                ..
            } if !ok
                || (!self.quiet
                    && !owned
                    && (self.verbose || *attempts > 1 || *duration_ms >= SLOW_CHECK_MS)) =>
            {
                let effort = if *attempts > 1 || *duration_ms >= SLOW_CHECK_MS {
                    format!(
                        " {}",
                        st(format!(
                            "({attempts} attempt{}, {})",
                            if *attempts == 1 { "" } else { "s" },
                            secs(Duration::from_millis(*duration_ms))
                        ))
                        .dim()
                    )
                } else {
                    String::new()
                };
                self.put(&format!(
                    "  {} {name}: {detail}{effort}",
                    if *ok {
                        st("✓").green()
                    } else {
                        st("✗").red()
                    },
                ))
            }
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

    /// A finished stage on a terminal, its line of the summary: the mark, the stage,
    /// its time and what it has to say (its skips and notes, each once; else how
    /// many checks passed), further notes below it.
    fn stage_line(&self, stage: Stage, result: Outcome, duration_ms: u64) -> String {
        let (notes, passed) = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            // With a table: its services' skips, in one line.
            let mut notes: Vec<String> = st
                .live
                .as_ref()
                .and_then(|l| {
                    l.table
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .stage_note(stage)
                })
                .into_iter()
                .collect();
            notes.extend(
                st.rows
                    .iter()
                    .rev()
                    .find(|r| r.stage == stage)
                    .map(|r| r.notes.clone())
                    .unwrap_or_default(),
            );
            (notes, st.passed.get(&stage).copied().unwrap_or(0))
        };
        let mark = match result {
            Outcome::Ok => st("✓").green(),
            Outcome::Failed => st("✗").red(),
        };
        let mut notes = notes.into_iter();
        let first = notes.next().or_else(|| {
            (passed > 0).then(|| {
                format!(
                    "{passed} check{} passed",
                    if passed == 1 { "" } else { "s" }
                )
            })
        });
        let mut line = format!(
            "{mark} {:<9} {:>7}",
            st(stage.name()).bold(),
            secs(Duration::from_millis(duration_ms)),
        );
        if let Some(f) = first {
            line.push_str(&format!("  {}", st(f).dim()));
        }
        for n in notes {
            line.push_str(&format!("\n  {:<9} {:>7}  {}", "", "", st(n).dim()));
        }
        line
    }

    /// How the run ends. On a terminal the finished stages' lines were the summary:
    /// the total and how to reach what was deployed follow them. In logs, the table:
    /// each stage, its duration, result and what it skipped. A read-only job that
    /// succeeded (`status`, `logs`) has printed its answer, and that is all.
    pub fn summary(&self, footer: &[String]) {
        if self.mode == Mode::Json || self.quiet || self.answer_only() {
            return;
        }
        if self.mode == Mode::Tty {
            self.close_table();
            std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).rows);
            let mut out = format!("  {:<9} {:>7}", "total", secs(self.elapsed()));
            for f in footer {
                out.push_str(&format!("\n  {}", self.redactor.redact(f)));
            }
            self.put(&out);
            return;
        }
        let rows = std::mem::take(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()).rows);
        if rows.is_empty() {
            return;
        }
        self.job_summary(&rows);
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
        let total = self.elapsed();
        out.push_str(&format!("  {:<9} {:>7}\n", "total", secs(total)));
        out.push_str(&format!(
            "  {}\n",
            st(critical::line(&self.critical_path(total), total)).dim()
        ));
        for f in footer {
            out.push_str(&format!("  {}\n", self.redactor.redact(f)));
        }
        self.put(out.trim_end());
    }

    /// On GitHub Actions, the stage table in the job's summary page too.
    fn job_summary(&self, rows: &[StageRow]) {
        let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
            return;
        };
        if self.host != ci_host::Host::GitHub {
            return;
        }
        let (job, failed) = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (
                st.job.clone().unwrap_or_else(|| "run".into()),
                st.stopped.is_some(),
            )
        };
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.stage,
                    r.result == Outcome::Ok,
                    r.duration.as_secs_f64(),
                    r.notes.clone(),
                )
            })
            .collect();
        let failed = failed || rows.iter().any(|r| !r.1);
        let md = ci_host::summary_markdown(&job, !failed, &rows, self.elapsed().as_secs_f64());
        let written = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(md.as_bytes()));
        if let Err(e) = written {
            self.put(&format!(
                "{} [run] note: could not append to GITHUB_STEP_SUMMARY ({}): {e}",
                now(),
                std::path::Path::new(&path).display()
            ));
        }
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
        for a in self.host.annotations(*stage, message, hint.as_deref()) {
            self.put(&a);
        }
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
            if let Some(s) = &p.synced {
                out.push_str(&format!(
                    "      synced by dev ({s}): runs files its image does not hold; the next deploy-local rolls out the image\n"
                ));
            }
        }
    }
    out
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
