//! The table a terminal shows for a run of many services (issue #24): one row per
//! service — its build, delivery, deploy, readiness, smoke checks and time — kept up
//! to date from the run's events. Pure: events in, rows and lines out; the reporter
//! draws the lines (live while the run goes, once more when it ends).
//!
//! A step belongs to a service by its id, `KIND/NAME`: `build/`, `pre-build/`,
//! `load/` and `verify-load/` name an image (a row of every release that uses it);
//! `gate/`, `helm/`, `ready/`, `rollout/`, `health/`, `render/` and `deps/` a
//! release; `smoke/`, `judge/` and `watch/` a check (the row of its release).

use std::collections::BTreeMap;
use std::time::Duration;

use console::{measure_text_width, pad_str, style, Alignment};

use crate::model::{Event, Outcome, Stage};

/// From this many services on, a terminal shows the table. With fewer, the stage
/// lines name each service's skips and notes in a few lines and read better than a
/// table; from four on they become a log of one line per service and stage.
pub const TABLE_AT: usize = 4;

/// A row: a release with the images it uses and the checks that name it, or an
/// image that no release uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// The helm release name (steps name releases by it); `None` for an image no
    /// release uses.
    pub release: Option<String>,
    pub images: Vec<String>,
    pub checks: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    Build,
    Deliver,
    Deploy,
    Ready,
    Smoke,
}

pub const COLUMNS: [Column; 5] = [
    Column::Build,
    Column::Deliver,
    Column::Deploy,
    Column::Ready,
    Column::Smoke,
];

impl Column {
    pub fn name(self) -> &'static str {
        match self {
            Column::Build => "build",
            Column::Deliver => "deliver",
            Column::Deploy => "deploy",
            Column::Ready => "ready",
            Column::Smoke => "smoke",
        }
    }
}

/// What a cell shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Nothing ran yet (or nothing will: a stage the run did not reach).
    Pending,
    Running(Duration),
    Done(Duration),
    /// Every step of the cell was skipped (already done with the same inputs).
    Skipped,
    Failed(Duration),
    /// A step it needs failed: not attempted.
    NotAttempted,
}

/// The steps of one cell so far.
#[derive(Clone, Debug, Default)]
struct Track {
    /// Running steps: their stage and start.
    running: BTreeMap<String, (Stage, Duration)>,
    /// The time its steps that ended took, together.
    took: Duration,
    ran: usize,
    skipped: usize,
    /// Whether the last step to end was skipped: a cell's last step is its main
    /// one (the upgrade after the gate, the build after its pre-build), so a
    /// skipped upgrade after a gate that ran is a skipped deploy.
    last_skipped: bool,
    failed: bool,
    not_attempted: bool,
}

impl Track {
    fn begin(&mut self, step: &str, stage: Stage, at: Duration) {
        self.running.insert(step.to_string(), (stage, at));
    }

    fn end(&mut self, step: &str, took: Duration) {
        self.running.remove(step);
        self.took += took;
        self.ran += 1;
        self.last_skipped = false;
    }

    fn skip(&mut self) {
        self.skipped += 1;
        self.last_skipped = true;
    }

    /// The time its steps took, those running until `now` (not the time it
    /// waited for other services between them).
    fn time(&self, now: Duration) -> Duration {
        self.took
            + self
                .running
                .values()
                .map(|(_, began)| now.saturating_sub(*began))
                .sum::<Duration>()
    }

    fn cell(&self, now: Duration) -> Cell {
        if self.failed {
            Cell::Failed(self.time(now))
        } else if self.not_attempted {
            Cell::NotAttempted
        } else if !self.running.is_empty() {
            Cell::Running(self.time(now))
        } else if self.skipped > 0 && (self.last_skipped || self.ran == 0) {
            Cell::Skipped
        } else if self.ran > 0 {
            Cell::Done(self.time(now))
        } else {
            Cell::Pending
        }
    }
}

/// A row as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub cells: Vec<Cell>,
    /// The time its steps took, column by column.
    pub time: Duration,
    /// Why it was not attempted, or which check failed.
    pub note: Option<String>,
}

/// The table: services, and what their steps did so far.
#[derive(Clone, Debug, Default)]
pub struct Table {
    services: Vec<Service>,
    cells: BTreeMap<(usize, Column), Track>,
    notes: BTreeMap<usize, String>,
    /// Per stage, the skips of services' steps: how many, and the reason of the
    /// first service's (in the table's order, whatever order they ran in) — the
    /// stage's line says those instead of one line each.
    skips: BTreeMap<Stage, (usize, usize, String)>,
}

impl Table {
    pub fn new(services: Vec<Service>) -> Table {
        Table {
            services,
            ..Table::default()
        }
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The rows a step id belongs to and its column (`None`: a service's step
    /// the table has no column for, such as its render).
    pub fn route(&self, step: &str) -> Option<(Vec<usize>, Option<Column>)> {
        let (kind, name) = step.split_once('/')?;
        let by = |f: &dyn Fn(&Service) -> bool| -> Vec<usize> {
            (0..self.services.len())
                .filter(|i| f(&self.services[*i]))
                .collect()
        };
        let image = |n: &str| by(&|s: &Service| s.images.iter().any(|i| i == n));
        let (rows, column) = match kind {
            "build" | "pre-build" => {
                let rows = image(name);
                // A dev variant's build: `build/NAME-sync`.
                let rows = match (rows.is_empty(), name.strip_suffix("-sync")) {
                    (true, Some(n)) => image(n),
                    _ => rows,
                };
                (rows, Some(Column::Build))
            }
            "load" | "verify-load" => (image(name), Some(Column::Deliver)),
            "gate" | "helm" | "ready" | "rollout" | "health" | "render" | "deps" => {
                let rows = by(&|s: &Service| s.release.as_deref() == Some(name));
                let column = match kind {
                    "gate" | "helm" => Some(Column::Deploy),
                    "ready" | "rollout" | "health" => Some(Column::Ready),
                    _ => None,
                };
                (rows, column)
            }
            "smoke" | "judge" | "watch" => {
                let rows = by(&|s: &Service| s.checks.iter().any(|c| c == name));
                (rows, (kind != "watch").then_some(Column::Smoke))
            }
            _ => return None,
        };
        (!rows.is_empty()).then_some((rows, column))
    }

    /// The rows of a check, by its name.
    fn check_rows(&self, name: &str) -> Vec<usize> {
        (0..self.services.len())
            .filter(|i| self.services[*i].checks.iter().any(|c| c == name))
            .collect()
    }

    /// Does the table say what this event says, for a service? Then the stage's
    /// line leaves it out (a warning excepted).
    pub fn owns(&self, ev: &Event) -> bool {
        match ev {
            Event::StepSkipped { step, .. } => self.route(step).is_some(),
            Event::Note {
                step: Some(step),
                message,
                ..
            } => self.route(step).is_some() && !message.starts_with("warning"),
            Event::Delivered { image, .. } => self.route(&format!("load/{image}")).is_some(),
            Event::Check { name, .. } => !self.check_rows(name).is_empty(),
            _ => false,
        }
    }

    /// Take in one event, received `at` (from the run's start).
    pub fn apply(&mut self, ev: &Event, at: Duration) {
        let mut each = |step: &str, f: &mut dyn FnMut(&mut Track)| {
            if let Some((rows, Some(col))) = self.route(step) {
                for r in rows {
                    f(self.cells.entry((r, col)).or_default());
                }
            }
        };
        match ev {
            Event::StepStarted { stage, step, .. } => {
                each(step, &mut |t| t.begin(step, *stage, at))
            }
            Event::StepFinished {
                step, duration_ms, ..
            } => each(step, &mut |t| {
                t.end(step, Duration::from_millis(*duration_ms))
            }),
            Event::StepSkipped {
                stage,
                step,
                reason,
            } => {
                let not_attempted = reason.starts_with("not attempted");
                each(step, &mut |t| {
                    if not_attempted {
                        t.not_attempted = true;
                    } else {
                        t.skip();
                    }
                });
                if let Some((rows, _)) = self.route(step) {
                    if not_attempted {
                        for r in rows {
                            self.notes.entry(r).or_insert_with(|| reason.clone());
                        }
                    } else {
                        let first = rows[0];
                        let s = self
                            .skips
                            .entry(*stage)
                            .or_insert((0, first, reason.clone()));
                        s.0 += 1;
                        if first < s.1 {
                            (s.1, s.2) = (first, reason.clone());
                        }
                    }
                }
            }
            Event::Check {
                name,
                ok: false,
                detail,
                ..
            } => {
                for r in self.check_rows(name) {
                    self.cells.entry((r, Column::Smoke)).or_default().failed = true;
                    self.notes
                        .entry(r)
                        .or_insert_with(|| format!("check {name}: {detail}"));
                }
            }
            // A stage that failed: its steps that did not finish failed (or were
            // stopped by the failure).
            Event::StageFinished {
                stage,
                result: Outcome::Failed,
                ..
            } => {
                for t in self.cells.values_mut() {
                    let stopped: Vec<String> = t
                        .running
                        .iter()
                        .filter(|(_, (s, _))| s == stage)
                        .map(|(step, _)| step.clone())
                        .collect();
                    for step in stopped {
                        if let Some((_, began)) = t.running.remove(&step) {
                            t.took += at.saturating_sub(began);
                            t.failed = true;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// What a stage's line says of the services' skips: the first reason and how
    /// many more.
    pub fn stage_note(&self, stage: Stage) -> Option<String> {
        let (n, _, first) = self.skips.get(&stage)?;
        Some(match n {
            1 => format!("skipped: {first}"),
            n => format!("skipped: {first} (and {} more)", n - 1),
        })
    }

    pub fn rows(&self, now: Duration) -> Vec<Row> {
        (0..self.services.len())
            .map(|r| {
                let tracks: Vec<Option<&Track>> =
                    COLUMNS.iter().map(|c| self.cells.get(&(r, *c))).collect();
                Row {
                    name: self.services[r].name.clone(),
                    cells: tracks
                        .iter()
                        .map(|t| t.map_or(Cell::Pending, |t| t.cell(now)))
                        .collect(),
                    time: tracks.iter().flatten().map(|t| t.time(now)).sum(),
                    note: self.notes.get(&r).cloned(),
                }
            })
            .collect()
    }

    /// The whole table: a header and one line per service, then what the marks
    /// mean.
    pub fn lines(&self, now: Duration) -> Vec<String> {
        let rows = self.rows(now);
        let mut out = vec![self.header()];
        out.extend(rows.iter().map(|r| self.line(r, now)));
        out.push(format!(
            "{}",
            style("· not run  = skipped (unchanged)  ✓ done  ✗ failed  – not attempted")
                .for_stderr()
                .dim()
        ));
        out
    }

    /// At most `max` lines while the run goes: every row when they fit, else the
    /// rows that are running or failed first, in their order, and how many are
    /// left out.
    pub fn live_lines(&self, now: Duration, max: usize) -> Vec<String> {
        let rows = self.rows(now);
        let mut out = vec![self.header()];
        let room = max.saturating_sub(1).max(1);
        if rows.len() <= room {
            out.extend(rows.iter().map(|r| self.line(r, now)));
            return out;
        }
        let rank = |r: &Row| {
            if r.cells.iter().any(|c| matches!(c, Cell::Running(_))) {
                0
            } else if r.note.is_some() || r.cells.iter().any(|c| matches!(c, Cell::Failed(_))) {
                1
            } else if r.cells.iter().all(|c| matches!(c, Cell::Pending)) {
                3
            } else {
                2
            }
        };
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|i| (rank(&rows[*i]), *i));
        let mut shown: Vec<usize> = order.into_iter().take(room.saturating_sub(1)).collect();
        shown.sort_unstable();
        out.extend(shown.iter().map(|i| self.line(&rows[*i], now)));
        out.push(format!(
            "{}",
            style(format!("… and {} more", rows.len() - shown.len()))
                .for_stderr()
                .dim()
        ));
        out
    }

    fn name_width(&self) -> usize {
        self.services
            .iter()
            .map(|s| measure_text_width(&s.name))
            .max()
            .unwrap_or(0)
            .max("service".len())
    }

    fn header(&self) -> String {
        let mut h = pad(&"service", self.name_width(), Alignment::Left);
        for c in COLUMNS {
            h.push_str("  ");
            h.push_str(&pad(&c.name(), CELL, Alignment::Left));
        }
        h.push_str("  ");
        h.push_str(&pad(&"time", TIME, Alignment::Right));
        format!("{}", style(h).for_stderr().bold())
    }

    fn line(&self, r: &Row, now: Duration) -> String {
        let mut l = pad(&r.name, self.name_width(), Alignment::Left);
        for c in &r.cells {
            l.push_str("  ");
            l.push_str(&pad(&cell_text(c, now), CELL, Alignment::Left));
        }
        l.push_str("  ");
        l.push_str(&pad(&secs(r.time), TIME, Alignment::Right));
        if let Some(n) = &r.note {
            l.push_str(&format!("  {}", style(n).for_stderr().dim()));
        }
        l.trim_end().to_string()
    }
}

/// Width of a cell: `✓ 123.4s`.
const CELL: usize = 8;
const TIME: usize = 6;

fn pad(s: &dyn std::fmt::Display, w: usize, a: Alignment) -> String {
    pad_str(&s.to_string(), w, a, None).into_owned()
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

fn cell_text(c: &Cell, now: Duration) -> String {
    let st = |s: String| style(s).for_stderr();
    match c {
        Cell::Pending => st("·".into()).dim().to_string(),
        Cell::Running(t) => {
            let frame = SPINNER[(now.as_millis() / 100) as usize % SPINNER.len()];
            st(format!("{frame} {}", secs(*t))).cyan().to_string()
        }
        Cell::Done(t) => format!("{} {}", st("✓".into()).green(), secs(*t)),
        Cell::Skipped => st("=".into()).dim().to_string(),
        Cell::Failed(t) => st(format!("✗ {}", secs(*t))).red().to_string(),
        Cell::NotAttempted => st("–".into()).dim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, images: &[&str], checks: &[&str]) -> Service {
        Service {
            name: name.into(),
            release: Some(name.into()),
            images: images.iter().map(|s| s.to_string()).collect(),
            checks: checks.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn table() -> Table {
        Table::new(vec![
            svc("a1", &["a1"], &["a1-up"]),
            svc("b1", &["b1", "shared"], &[]),
            svc("c1", &["shared"], &["c1"]),
            Service {
                name: "tool".into(),
                release: None,
                images: vec!["tool".into()],
                checks: vec![],
            },
        ])
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn started(stage: Stage, step: &str) -> Event {
        Event::StepStarted {
            stage,
            step: step.into(),
            title: step.into(),
        }
    }

    fn finished(stage: Stage, step: &str, took: u64) -> Event {
        Event::StepFinished {
            stage,
            step: step.into(),
            duration_ms: took,
        }
    }

    fn skipped(stage: Stage, step: &str, reason: &str) -> Event {
        Event::StepSkipped {
            stage,
            step: step.into(),
            reason: reason.into(),
        }
    }

    fn plain(lines: Vec<String>) -> Vec<String> {
        lines
            .iter()
            .map(|l| console::strip_ansi_codes(l).into_owned())
            .collect()
    }

    #[test]
    fn steps_go_to_their_service_and_column() {
        let t = table();
        assert_eq!(t.route("build/a1"), Some((vec![0], Some(Column::Build))));
        // An image two releases use is in both rows.
        assert_eq!(
            t.route("load/shared"),
            Some((vec![1, 2], Some(Column::Deliver)))
        );
        assert_eq!(t.route("build/a1-sync").unwrap().0, vec![0]);
        assert_eq!(t.route("gate/b1").unwrap().1, Some(Column::Deploy));
        assert_eq!(t.route("rollout/c1").unwrap().1, Some(Column::Ready));
        assert_eq!(t.route("ready/c1").unwrap().1, Some(Column::Ready));
        assert_eq!(t.route("health/c1").unwrap().1, Some(Column::Ready));
        // A check is in its release's row, whatever its name.
        assert_eq!(t.route("smoke/a1-up"), Some((vec![0], Some(Column::Smoke))));
        assert_eq!(t.route("render/a1"), Some((vec![0], None)));
        assert_eq!(t.route("build/tool").unwrap().0, vec![3]);
        for other in [
            "capacity",
            "cluster/fx",
            "namespace/apps",
            "node-ports/apps",
            "smoke/x",
        ] {
            assert_eq!(t.route(other), None, "{other}");
        }
    }

    #[test]
    fn cells_say_pending_running_done_skipped_and_the_row_its_time() {
        let mut t = table();
        t.apply(&started(Stage::Build, "build/a1"), ms(1000));
        let rows = t.rows(ms(2500));
        assert_eq!(rows[0].cells[0], Cell::Running(ms(1500)));
        assert_eq!(rows[0].cells[1], Cell::Pending);
        t.apply(&finished(Stage::Build, "build/a1", 2000), ms(3000));
        t.apply(
            &skipped(Stage::Load, "load/a1", "a1 is on the nodes"),
            ms(3100),
        );
        t.apply(&started(Stage::Deploy, "gate/a1"), ms(4000));
        t.apply(&finished(Stage::Deploy, "gate/a1", 100), ms(4100));
        // Waiting between its steps (for other services) is not its time.
        t.apply(&started(Stage::Deploy, "helm/a1"), ms(4600));
        t.apply(&finished(Stage::Deploy, "helm/a1", 400), ms(5000));
        let rows = t.rows(ms(9000));
        assert_eq!(
            rows[0].cells,
            vec![
                Cell::Done(ms(2000)),
                Cell::Skipped,
                Cell::Done(ms(500)),
                Cell::Pending,
                Cell::Pending
            ]
        );
        assert_eq!(rows[0].time, ms(2500));
        // The gate ran, the upgrade was skipped: the deploy was skipped.
        t.apply(&started(Stage::Deploy, "gate/b1"), ms(5000));
        t.apply(&finished(Stage::Deploy, "gate/b1", 100), ms(5100));
        t.apply(
            &skipped(Stage::Deploy, "helm/b1", "b1 is current"),
            ms(5100),
        );
        assert_eq!(t.rows(ms(9000))[1].cells[2], Cell::Skipped);
        let lines = plain(t.lines(ms(9000)));
        assert_eq!(
            lines[0],
            "service  build     deliver   deploy    ready     smoke       time"
        );
        assert_eq!(
            lines[1],
            "a1       ✓ 2.0s    =         ✓ 0.5s    ·         ·           2.5s"
        );
        assert_eq!(lines.len(), 6, "{lines:?}");
    }

    #[test]
    fn a_failure_a_not_attempted_dependant_and_a_failed_check() {
        let mut t = table();
        t.apply(&started(Stage::Deploy, "helm/b1"), ms(100));
        t.apply(&started(Stage::Deploy, "helm/a1"), ms(100));
        t.apply(&finished(Stage::Deploy, "helm/a1", 400), ms(500));
        let reason = "not attempted: deploy/c1 needs deploy/b1, which did not succeed";
        t.apply(&skipped(Stage::Deploy, "gate/c1", reason), ms(600));
        t.apply(
            &Event::StageFinished {
                stage: Stage::Deploy,
                result: Outcome::Failed,
                duration_ms: 700,
                commands: 3,
            },
            ms(700),
        );
        let rows = t.rows(ms(800));
        assert_eq!(rows[1].cells[2], Cell::Failed(ms(600)));
        assert_eq!(rows[0].cells[2], Cell::Done(ms(400)));
        assert_eq!(rows[2].cells[2], Cell::NotAttempted);
        assert_eq!(rows[2].note.as_deref(), Some(reason));
        // A not attempted step is not counted as a skip on the stage's line.
        assert_eq!(t.stage_note(Stage::Deploy), None);
        let lines = plain(t.lines(ms(800)));
        assert!(
            lines[3].starts_with("c1       ·         ·         –"),
            "{lines:?}"
        );
        assert!(lines[3].ends_with(reason), "{lines:?}");

        let mut t = table();
        t.apply(&started(Stage::Smoke, "smoke/a1-up"), ms(0));
        let failed = Event::Check {
            stage: Stage::Smoke,
            name: "a1-up".into(),
            ok: false,
            attempts: 3,
            duration_ms: 900,
            detail: "deployment/a1 not Available".into(),
        };
        assert!(t.owns(&failed));
        t.apply(&failed, ms(900));
        let rows = t.rows(ms(1000));
        assert!(matches!(rows[0].cells[4], Cell::Failed(_)), "{rows:?}");
        assert_eq!(
            rows[0].note.as_deref(),
            Some("check a1-up: deployment/a1 not Available")
        );
    }

    #[test]
    fn services_skips_make_one_note_per_stage_and_their_notes_are_the_tables() {
        let mut t = table();
        for s in ["b1", "a1", "c1"] {
            t.apply(
                &skipped(
                    Stage::Deploy,
                    &format!("helm/{s}"),
                    &format!("{s} is current"),
                ),
                ms(10),
            );
        }
        assert_eq!(
            t.stage_note(Stage::Deploy).as_deref(),
            Some("skipped: a1 is current (and 2 more)")
        );
        let note = |step: Option<&str>, message: &str| Event::Note {
            stage: Stage::Rollout,
            step: step.map(String::from),
            message: message.into(),
        };
        assert!(t.owns(&note(Some("rollout/a1"), "deployment/a1 rolled out")));
        assert!(!t.owns(&note(Some("rollout/a1"), "warning: a1 restarted")));
        assert!(!t.owns(&note(None, "deployment/a1 rolled out")));
        assert!(!t.owns(&note(Some("capacity"), "capacity: fits")));
        assert!(!t.owns(&skipped(
            Stage::Cluster,
            "cluster/fx",
            "kind cluster fx is up"
        )));
    }

    #[test]
    fn a_table_taller_than_the_terminal_shows_running_rows_first() {
        let services: Vec<Service> = (1..=10)
            .map(|i| svc(&format!("s{i:02}"), &[], &[]))
            .collect();
        let mut t = Table::new(services);
        t.apply(&started(Stage::Deploy, "helm/s09"), ms(0));
        let all = plain(t.live_lines(ms(100), 50));
        assert_eq!(all.len(), 11);
        let few = plain(t.live_lines(ms(100), 4));
        assert_eq!(few.len(), 4, "{few:?}");
        assert!(few[1].starts_with("s01"), "{few:?}");
        assert!(few[2].starts_with("s09"), "{few:?}");
        assert_eq!(few[3], "… and 8 more");
    }
}
