//! `dev`: deploy-local in rounds. The first round runs at once; each later one when
//! a watched path changes (the plan's [`crate::plan::dev::DevPlan`] says which paths
//! and what each affects). A round is deploy-local's own steps, so only images whose
//! inputs changed are rebuilt and only releases whose chart, values or images changed
//! are upgraded, each skip saying why.
//!
//! Between rounds: a burst of file events is one change (debounced); a change during
//! a round is queued and starts the next round when this one ends (never two at
//! once); each release's logs stream with a prefix per pod and container (restarted
//! when the release rolls out); a port-forward per service keeps a fixed local port
//! and is started again when its pod goes. Ctrl-C stops the streams and forwards and
//! leaves the cluster as it is, or uninstalls the releases with `--cleanup`.
//!
//! A change that touches only what `[images.NAME.sync]` rules cover is a *sync round*
//! instead ([`sync`]): compile, copy the files into the running pods, restart the
//! process in place, smoke. Anything else runs the full round, naming the file that
//! forced it.
//!
//! The command line hands the loop its rounds ([`Rounds`]): loading, planning and
//! reporting a run stay there; the loop decides when a round runs and what lives
//! between rounds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

mod sync;

use crate::config::Pipeline;
use crate::exec::{Background, Executor, Signals};
use crate::model::{exit, Cmd, Event, Sink, Stage};
use crate::plan::dev::{DevPlan, Forward, Watched, FIRST_LOCAL_PORT};
use crate::plan::Plan;

/// A burst of file events is over after this long without another.
const QUIET: Duration = Duration::from_millis(250);
/// How often the loop looks at its streams and forwards while it waits.
const TICK: Duration = Duration::from_millis(100);
/// A stream or forward that ended is started again at most this often.
const RESTART_AFTER: Duration = Duration::from_secs(3);

/// What one round left: its exit code and, once planned, the pipeline and plan.
pub struct Round {
    pub code: i32,
    pub planned: Option<(Pipeline, Plan)>,
    /// Every event of the round.
    pub events: Vec<Event>,
}

/// What the loop asks of the command line, which loads, plans, runs and reports.
pub trait Rounds {
    /// The pipeline file (watched on its own while it does not load or plan).
    fn config_file(&self) -> PathBuf;
    /// The pipeline and the dev plan, nothing run (to watch before the first round).
    fn preview(&self) -> Option<(Pipeline, Plan)>;
    /// One round: deploy-local's steps under these signals, reported.
    fn round(&self, signals: &Signals) -> Round;
    /// `--cleanup`: uninstall the releases; the exit code.
    fn cleanup(&self) -> i32;
}

/// The loop, until Ctrl-C; the exit code.
pub fn run(rounds: &dyn Rounds, sink: Arc<dyn Sink>, cleanup: bool) -> i32 {
    let signals = Signals::install();
    let say = |message: String| sink.emit(Event::Dev { message });
    let (tx, rx) = mpsc::channel();
    let mut watching = Watching::new(tx);
    let mut streams = Streams::default();
    let mut round = 0u32;
    let mut changed: BTreeMap<String, Watched> = BTreeMap::new();
    // The last good full round's pipeline and plan: what a sync round syncs into.
    let mut last_good: Option<(Pipeline, Plan)> = None;
    // Watch before the first round, so an edit made while it runs starts the next.
    if let Some((pipeline, plan)) = rounds.preview() {
        if let Some(dev) = &plan.dev {
            watching.set(&pipeline.root, &dev.watch, &say);
            if !dev.sync.is_empty() {
                if let Err(e) = sync::write_helper() {
                    say(format!("{e}; every change runs the full round"));
                }
            }
        }
    }
    loop {
        round += 1;
        if round > 1 {
            say(format!("round {round}: {}", describe(&changed)));
        }
        let started = Instant::now();
        match try_sync(&last_good, &changed, &streams, &say) {
            Synced::Done | Synced::KeepServing => {
                say(watching_line(&watching, cleanup));
                match wait_for_change(&rx, &mut watching, &mut streams, &signals, &sink) {
                    Some(c) => changed = c,
                    None => break,
                }
                continue;
            }
            Synced::Full => {}
        }
        let done = rounds.round(&signals);
        if signals.cancelled() {
            break;
        }
        let Round {
            code,
            planned,
            events,
        } = done;
        match planned {
            Some((pipeline, plan)) => {
                let Some(dev) = plan.dev.clone() else { break };
                let root = pipeline.root.clone();
                watching.set(&root, &dev.watch, &say);
                if code == exit::OK {
                    last_good = Some((pipeline.clone(), plan.clone()));
                    streams.ensure_executor(&pipeline, &sink, &signals);
                    let deployed = deployed_releases(&events);
                    streams.after_round(&dev, &deployed, started, &say);
                    for line in status_lines(&plan, &dev, &events, &streams) {
                        say(line);
                    }
                } else {
                    say(format!(
                        "round {round} failed (above); the release keeps running what it ran before. Fix it and save: the next change starts round {}",
                        round + 1
                    ));
                }
            }
            None => {
                // The pipeline did not load or plan: wait for it (or its env file) to change.
                let file = rounds.config_file();
                let root = file
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                let name = file.file_name().map(PathBuf::from).unwrap_or_default();
                let watch = [Watched {
                    path: name.display().to_string(),
                    images: vec![],
                    releases: vec![],
                }];
                watching.set(&root, &watch, &say);
            }
        }
        say(watching_line(&watching, cleanup));
        match wait_for_change(&rx, &mut watching, &mut streams, &signals, &sink) {
            Some(c) => changed = c,
            None => break,
        }
    }
    drop(streams);
    drop(watching);
    if !cleanup {
        say("stopped; the cluster and releases stay as they are (`down` removes them)".into());
        return exit::OK;
    }
    say("--cleanup: uninstalling the releases".into());
    rounds.cleanup()
}

fn watching_line(watching: &Watching, cleanup: bool) -> String {
    format!(
        "watching {} path(s); Ctrl-C to stop{}",
        watching.count(),
        if cleanup {
            " and uninstall the releases"
        } else {
            " (the cluster stays as it is)"
        }
    )
}

/// The changed paths and what each affects.
fn describe(changed: &BTreeMap<String, Watched>) -> String {
    changed
        .iter()
        .map(|(path, w)| {
            let mut affects: Vec<String> = w.images.iter().map(|i| format!("image {i}")).collect();
            affects.extend(w.releases.iter().map(|r| format!("release {r}")));
            format!("{path} changed ({})", affects.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What became of a round's chance to be a sync round.
enum Synced {
    /// Synced and smoke-tested.
    Done,
    /// It failed where the pods keep running what they ran (a broken compile, a smoke
    /// check): fix and save.
    KeepServing,
    /// Run the full round.
    Full,
}

/// A sync round when the change is only what sync rules cover (and a full round has
/// deployed the dev variants); otherwise say which file forces the full round.
fn try_sync(
    last_good: &Option<(Pipeline, Plan)>,
    changed: &BTreeMap<String, Watched>,
    streams: &Streams,
    say: &dyn Fn(String),
) -> Synced {
    let Some((pipeline, plan)) = last_good else {
        return Synced::Full;
    };
    let Some(dev) = plan.dev.as_ref().filter(|d| !d.sync.is_empty()) else {
        return Synced::Full;
    };
    let Some(ex) = streams.ex.as_ref() else {
        return Synced::Full;
    };
    if changed.is_empty() {
        return Synced::Full;
    }
    // The last good round's preflight approved this context (its context guard).
    ex.approve(crate::model::mutation::Target::Context(
        plan.context.clone(),
    ));
    let syncs = match sync::decide(&dev.sync, changed) {
        Ok(s) => s,
        Err(why) => {
            say(format!("full round: {why}"));
            return Synced::Full;
        }
    };
    let images: Vec<&str> = syncs.iter().map(|s| s.image.as_str()).collect();
    say(format!(
        "sync round for image(s) {}: compile, copy into the running pods, restart in place (no build, load or upgrade)",
        images.join(", ")
    ));
    let started = Instant::now();
    match sync::round(ex, pipeline, plan, &syncs, say) {
        Ok(t) => {
            say(format!(
                "synced {} pod(s) in {:.2} s: compile {:.2} s, copy + restart {:.2} s (restart {:.2} s), smoke {:.2} s",
                t.pods,
                started.elapsed().as_secs_f64(),
                t.compile.as_secs_f64(),
                t.copy_and_restart.as_secs_f64(),
                t.restart.as_secs_f64(),
                t.smoke.as_secs_f64(),
            ));
            Synced::Done
        }
        Err(sync::Failed::Compile(e)) => {
            say(format!(
                "{e}\nthe compile failed: nothing was copied, the pods keep running what they ran before. Fix it and save"
            ));
            Synced::KeepServing
        }
        Err(sync::Failed::Smoke(e)) => {
            say(format!(
                "synced, and a smoke check failed against the restarted processes: {e}. Fix it and save"
            ));
            Synced::KeepServing
        }
        Err(sync::Failed::Sync(why)) => {
            say(format!("full round: the files could not be synced: {why}"));
            Synced::Full
        }
    }
}

/// Releases whose helm upgrade ran in this round (not skipped).
fn deployed_releases(events: &[Event]) -> BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StepFinished {
                stage: Stage::Deploy,
                step,
                ..
            } => step.strip_prefix("helm/").map(str::to_string),
            _ => None,
        })
        .collect()
}

/// One line per release after a good round: upgraded or unchanged, its pods, and
/// where its services are forwarded.
fn status_lines(plan: &Plan, dev: &DevPlan, events: &[Event], streams: &Streams) -> Vec<String> {
    let deployed = deployed_releases(events);
    let mut out = vec![];
    for f in &dev.logs {
        let rel = &f.release;
        let pods = events.iter().rev().find_map(|e| match e {
            Event::Note {
                stage: Stage::Health,
                message,
                ..
            } if message.ends_with(&format!(" of {rel} Ready")) => Some(message.clone()),
            _ => None,
        });
        let mut line = format!(
            "{rel}: {}",
            if deployed.contains(rel) {
                "upgraded in this round"
            } else {
                "unchanged"
            }
        );
        if let Some(p) = pods {
            line.push_str(&format!(", {p}"));
        }
        for fw in dev.forwards.iter().filter(|fw| &fw.release == rel) {
            if let Some(port) = streams.forward_port(fw) {
                line.push_str(&format!(
                    ", http://127.0.0.1:{port} -> service/{}:{}",
                    fw.service, fw.port
                ));
            }
        }
        out.push(line);
    }
    let images: Vec<String> = plan
        .images
        .iter()
        .map(|i| format!("{}={}", i.name, i.tag))
        .collect();
    if !images.is_empty() {
        out.push(format!("images: {}", images.join(", ")));
    }
    out
}

/// Wait for a change to a watched path (a debounced burst: the changed paths and
/// what they affect), keeping streams and forwards alive meanwhile. `None` on Ctrl-C.
fn wait_for_change(
    rx: &Receiver<notify::Result<notify::Event>>,
    watching: &mut Watching,
    streams: &mut Streams,
    signals: &Signals,
    sink: &Arc<dyn Sink>,
) -> Option<BTreeMap<String, Watched>> {
    let mut hits: BTreeMap<String, Watched> = BTreeMap::new();
    let mut last_hit: Option<Instant> = None;
    loop {
        if signals.cancelled() {
            return None;
        }
        match rx.recv_timeout(TICK) {
            Ok(Ok(ev)) => {
                watching.follow_new_dirs(&ev);
                for (path, w) in watching.matches(&ev) {
                    hits.insert(path, w.clone());
                    last_hit = Some(Instant::now());
                }
            }
            Ok(Err(_)) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return None,
        }
        streams.tend(sink);
        if last_hit.is_some_and(|t| t.elapsed() >= QUIET) {
            return Some(hits);
        }
    }
}

/// The file watcher and what it watches (paths made absolute against the root).
struct Watching {
    tx: mpsc::Sender<notify::Result<notify::Event>>,
    watcher: Option<notify::RecommendedWatcher>,
    watched: Vec<(PathBuf, Watched)>,
    /// The repository the watched paths are in (for its ignore files).
    repo: Option<PathBuf>,
}

impl Watching {
    fn new(tx: mpsc::Sender<notify::Result<notify::Event>>) -> Watching {
        Watching {
            tx,
            watcher: None,
            watched: vec![],
            repo: None,
        }
    }

    fn count(&self) -> usize {
        self.watched.len()
    }

    /// Watch these paths (again only if they differ from what is watched now).
    fn set(&mut self, root: &Path, watch: &[Watched], say: &dyn Fn(String)) {
        let want: Vec<(PathBuf, Watched)> = watch
            .iter()
            .map(|w| (root.join(&w.path), w.clone()))
            .collect();
        if self.watcher.is_some() && want == self.watched {
            return;
        }
        let tx = self.tx.clone();
        // A symlinked directory is not walked into (it may lead out of the
        // repository, or to `/`).
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut watcher = match notify::RecommendedWatcher::new(
            move |ev| {
                let _ = tx.send(ev);
            },
            config,
        ) {
            Ok(w) => w,
            Err(e) => {
                say(format!("cannot watch files: {e}"));
                return;
            }
        };
        self.repo = crate::model::repo::root(root);
        for (abs, w) in &want {
            // Nothing outside the repository is watched (a secrets file kept
            // elsewhere is watched through its own directory, not recursively).
            if abs.is_dir() {
                if let Some(real) = self
                    .repo
                    .as_deref()
                    .and_then(|r| crate::model::repo::escapes(r, abs))
                {
                    say(format!(
                        "not watching {}: it resolves to {}, outside the repository",
                        w.path,
                        real.display()
                    ));
                    continue;
                }
            }
            // A directory is watched dir by dir, as hashing walks it (not `target/`,
            // ignored or symlinked directories); a file through its directory, so an
            // editor that replaces the file (write + rename) is still seen.
            let targets = if abs.is_dir() {
                crate::plan::digest::watch_dirs(abs)
            } else {
                vec![abs.parent().map(Path::to_path_buf).unwrap_or_default()]
            };
            for target in targets {
                if let Err(e) = watcher.watch(&target, RecursiveMode::NonRecursive) {
                    say(format!("cannot watch {}: {e}", w.path));
                    break;
                }
            }
        }
        self.watcher = Some(watcher);
        self.watched = want;
    }

    /// A directory made under a watched one is watched too (with what it holds).
    fn follow_new_dirs(&mut self, ev: &notify::Event) {
        if !matches!(ev.kind, EventKind::Create(_)) {
            return;
        }
        for p in &ev.paths {
            let under_watched = self
                .watched
                .iter()
                .any(|(abs, _)| p.starts_with(abs) && abs.is_dir());
            let real_dir = p.symlink_metadata().is_ok_and(|m| m.is_dir());
            if !under_watched || !real_dir || self.ignored(p) {
                continue;
            }
            if let Some(w) = &mut self.watcher {
                for d in crate::plan::digest::watch_dirs(p) {
                    let _ = w.watch(&d, RecursiveMode::NonRecursive);
                }
            }
        }
    }

    /// Build output, VCS metadata, editors' temporary files and what `.gitignore` /
    /// `.dockerignore` leave out are never a change: the one ignore list hashing uses.
    fn ignored(&self, p: &Path) -> bool {
        match &self.repo {
            Some(repo) => crate::plan::digest::ignored(repo, p),
            None => crate::plan::digest::ignored(Path::new("/"), p),
        }
    }

    /// The watched entries an event touches, with the changed path shown relative.
    fn matches(&self, ev: &notify::Event) -> Vec<(String, &Watched)> {
        if matches!(ev.kind, EventKind::Access(_) | EventKind::Other) {
            return vec![];
        }
        let mut out = vec![];
        for p in &ev.paths {
            if self.ignored(p) {
                continue;
            }
            for (abs, w) in &self.watched {
                // A watched directory's own `.dockerignore` (a build context's) leaves
                // out what its digest leaves out; it does not hide sources that
                // another watched path (a pre-build's inputs) covers.
                if p == abs
                    || p.starts_with(abs)
                        && abs.is_dir()
                        && !crate::plan::digest::docker_ignored(abs, p)
                {
                    let rel = p
                        .strip_prefix(abs.parent().unwrap_or(abs))
                        .ok()
                        .and_then(|r| {
                            Path::new(&w.path)
                                .parent()
                                .map(|parent| parent.join(r).display().to_string())
                        })
                        .unwrap_or_else(|| p.display().to_string());
                    out.push((rel, w));
                }
            }
        }
        out
    }
}

/// The log streams and port-forwards that live between rounds.
#[derive(Default)]
struct Streams {
    ex: Option<Executor>,
    /// Per release: its log stream, the command (to start it again) and when.
    logs: BTreeMap<String, (Background, Cmd, Instant)>,
    forwards: BTreeMap<String, Forwarded>,
}

struct Forwarded {
    plan: Forward,
    local: u16,
    bg: Option<Background>,
    started: Instant,
}

impl Streams {
    /// The executor streams and forwards run under (one, made at the first good round).
    fn ensure_executor(&mut self, pipeline: &Pipeline, sink: &Arc<dyn Sink>, signals: &Signals) {
        if self.ex.is_none() {
            let ex = Executor::new(
                pipeline.root.clone(),
                sink.clone(),
                pipeline.vars.clone(),
                signals.clone(),
            );
            crate::run::adopt_provisioned(&ex, &|t| pipeline.tools.pinned(t).map(String::from));
            self.ex = Some(ex);
        }
    }

    fn forward_port(&self, f: &Forward) -> Option<u16> {
        self.forwards.get(&f.cmd.display()).map(|fw| fw.local)
    }

    /// After a good round: (re)start the log stream of each release that rolled out
    /// (all on the first round), and the port-forwards of those releases.
    fn after_round(
        &mut self,
        dev: &DevPlan,
        deployed: &BTreeSet<String>,
        started: Instant,
        say: &dyn Fn(String),
    ) {
        let Some(ex) = self.ex.as_ref() else { return };
        let since = format!("{}s", started.elapsed().as_secs() + 5);
        for f in &dev.logs {
            let restart = deployed.contains(&f.release) || !self.logs.contains_key(&f.release);
            if !restart {
                continue;
            }
            self.logs.remove(&f.release);
            let cmd = f.cmd.fill(&[("SINCE", &since)]);
            match ex.spawn_background(Stage::Logs, &cmd) {
                Ok(bg) => {
                    self.logs
                        .insert(f.release.clone(), (bg, cmd, Instant::now()));
                }
                Err(e) => say(format!("logs of {}: `{}` {e}", f.release, e.command)),
            }
        }
        for f in &dev.forwards {
            let key = f.cmd.display();
            let entry = self.forwards.entry(key).or_insert_with(|| Forwarded {
                plan: f.clone(),
                local: 0,
                bg: None,
                started: Instant::now(),
            });
            if deployed.contains(&f.release) || entry.bg.is_none() {
                // Its pods were replaced: bind to a new one. The round ended only
                // once every ready endpoint was a new pod, so the new one is.
                let moved = entry.bg.is_some();
                entry.bg = None;
                let at = Instant::now();
                start_forward(ex, entry, say);
                if moved && entry.bg.is_some() {
                    say(format!(
                        "port-forward 127.0.0.1:{} -> service/{}: moved to the new revision's pods in {:.2}s (its pod was replaced)",
                        entry.local,
                        f.service,
                        at.elapsed().as_secs_f64()
                    ));
                }
            }
        }
    }

    /// Pass on the streams' lines; start again what exited.
    fn tend(&mut self, sink: &Arc<dyn Sink>) {
        let Some(ex) = self.ex.as_ref() else { return };
        for (release, (bg, cmd, at)) in self.logs.iter_mut() {
            while let Ok(line) = bg.lines.try_recv() {
                sink.emit(Event::Log {
                    release: release.clone(),
                    line: ex.redact(&line),
                });
            }
            if bg.exited().is_some() && at.elapsed() >= RESTART_AFTER {
                // Its pods went (a rollout outside slipway, an eviction): follow anew.
                if let Ok(new) = ex.spawn_background(Stage::Logs, cmd) {
                    *bg = new;
                    *at = Instant::now();
                }
            }
        }
        let say = |message: String| sink.emit(Event::Dev { message });
        for fw in self.forwards.values_mut() {
            let mut lost = fw.bg.is_none();
            if let Some(bg) = fw.bg.as_mut() {
                while let Ok(line) = bg.lines.try_recv() {
                    if line.contains("lost connection") || line.contains("error") {
                        lost = true;
                    }
                }
                lost |= bg.exited().is_some();
            }
            if lost && fw.started.elapsed() >= RESTART_AFTER {
                fw.bg = None;
                say(format!(
                    "port-forward to service/{} lost its pod: starting it again on 127.0.0.1:{}",
                    fw.plan.service, fw.local
                ));
                start_forward(ex, fw, &say);
            }
        }
    }
}

/// Start (or start again) a port-forward on its local port: the first free one from
/// 8080 the first time, the same one afterwards.
fn start_forward(ex: &Executor, fw: &mut Forwarded, say: &dyn Fn(String)) {
    if fw.local == 0 {
        fw.local = (FIRST_LOCAL_PORT..FIRST_LOCAL_PORT + 100)
            .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .unwrap_or(0);
    }
    fw.started = Instant::now();
    let by = Instant::now() + Duration::from_secs(10);
    match crate::run::forward_on(ex, &fw.plan.cmd, fw.local, by) {
        Ok(bg) => fw.bg = Some(bg),
        Err(e) => say(format!(
            "port-forward to service/{} did not start: {e}",
            fw.plan.service
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(path: &str, images: &[&str], releases: &[&str]) -> Watched {
        Watched {
            path: path.into(),
            images: images.iter().map(|s| s.to_string()).collect(),
            releases: releases.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn event(kind: EventKind, path: &Path) -> notify::Event {
        notify::Event::new(kind).add_path(path.to_path_buf())
    }

    #[test]
    fn a_change_is_matched_to_what_it_affects_and_noise_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("svc/src")).unwrap();
        std::fs::write(root.join("svc/src/main.rs"), "").unwrap();
        std::fs::write(root.join("pipeline.toml"), "").unwrap();
        let (tx, _rx) = mpsc::channel();
        let mut w = Watching::new(tx);
        let said = std::cell::RefCell::new(vec![]);
        w.set(
            root,
            &[
                watched("svc/src", &["api"], &["app"]),
                watched("pipeline.toml", &[], &["app"]),
            ],
            &|m| said.borrow_mut().push(m),
        );
        assert!(said.borrow().is_empty(), "{:?}", said.borrow());
        assert_eq!(w.count(), 2);

        let modify = EventKind::Modify(notify::event::ModifyKind::Any);
        let hit = w.matches(&event(modify, &root.join("svc/src/main.rs")));
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].0, "svc/src/main.rs");
        assert_eq!(hit[0].1.images, vec!["api"]);

        let hit = w.matches(&event(modify, &root.join("pipeline.toml")));
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].0, "pipeline.toml");

        // A sibling of a watched file (its directory is watched) is not a change.
        assert!(w
            .matches(&event(modify, &root.join("README.md")))
            .is_empty());
        // Reads, editor swap files and build output are not changes.
        let read = EventKind::Access(notify::event::AccessKind::Any);
        assert!(w
            .matches(&event(read, &root.join("svc/src/main.rs")))
            .is_empty());
        assert!(w
            .matches(&event(modify, &root.join("svc/src/.main.rs.swp")))
            .is_empty());
        assert!(w
            .matches(&event(modify, &root.join("svc/src/target/x")))
            .is_empty());
    }

    /// The watcher ignores what `.gitignore` and `.dockerignore` leave out (the same
    /// rules hashing follows), and does not watch a directory that leads out of the
    /// repository (a symlink to `/`).
    #[test]
    fn ignored_files_and_links_out_of_the_repository_are_not_watched() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let root = root.as_path();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("svc/src")).unwrap();
        std::fs::write(root.join("svc/.gitignore"), "*.log\n").unwrap();
        std::fs::write(root.join("svc/.dockerignore"), "fixtures/\n").unwrap();
        std::fs::write(root.join("svc/src/main.rs"), "").unwrap();
        std::os::unix::fs::symlink("/", root.join("svc/root")).unwrap();
        let (tx, _rx) = mpsc::channel();
        let mut w = Watching::new(tx);
        let said = std::cell::RefCell::new(vec![]);
        w.set(
            root,
            &[
                watched("svc", &["api"], &["app"]),
                watched("svc/root", &["api"], &["app"]),
            ],
            &|m| said.borrow_mut().push(m),
        );
        assert_eq!(
            *said.borrow(),
            ["not watching svc/root: it resolves to /, outside the repository"]
        );
        let modify = EventKind::Modify(notify::event::ModifyKind::Any);
        assert_eq!(
            w.matches(&event(modify, &root.join("svc/src/main.rs")))
                .len(),
            1
        );
        for noise in ["svc/src/debug.log", "svc/fixtures/big.bin"] {
            assert!(
                w.matches(&event(modify, &root.join(noise))).is_empty(),
                "{noise}"
            );
        }
    }

    /// A build context whose `.dockerignore` leaves out everything but the pre-built
    /// binary (the sample's), with the pre-build's sources beneath it watched as
    /// inputs: an edit of a source is a change of those inputs, not of the context.
    #[test]
    fn a_contexts_dockerignore_does_not_hide_the_pre_builds_sources() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let root = root.as_path();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("svc/src")).unwrap();
        std::fs::create_dir_all(root.join("svc/bin")).unwrap();
        std::fs::write(root.join("svc/.dockerignore"), "*\n!bin/app\n").unwrap();
        std::fs::write(root.join("svc/src/main.rs"), "").unwrap();
        let (tx, _rx) = mpsc::channel();
        let mut w = Watching::new(tx);
        w.set(
            root,
            &[
                watched("svc", &["api"], &[]),
                watched("svc/src", &["api"], &[]),
            ],
            &|_| {},
        );
        let modify = EventKind::Modify(notify::event::ModifyKind::Any);
        let hits = w.matches(&event(modify, &root.join("svc/src/main.rs")));
        assert_eq!(
            hits.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["svc/src/main.rs"]
        );
        let hits = w.matches(&event(modify, &root.join("svc/bin/app")));
        assert_eq!(hits.len(), 1, "the context's own file is a change");
    }

    /// With real inotify: `target/` under a watched context gets no watch (no event
    /// comes from it), and a directory made after the watch started is watched.
    #[test]
    fn build_output_is_not_watched_and_new_directories_are() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let root = root.as_path();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("svc/src")).unwrap();
        std::fs::create_dir_all(root.join("svc/target/debug/deep")).unwrap();
        let (tx, rx) = mpsc::channel();
        let mut w = Watching::new(tx);
        w.set(root, &[watched("svc", &["api"], &["app"])], &|m| {
            panic!("{m}")
        });
        // Every event in a window, each passed through the watcher as dev does.
        let drain = |w: &mut Watching, ms: u64| {
            let mut paths = vec![];
            let until = Instant::now() + Duration::from_millis(ms);
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                if let Ok(Ok(ev)) = rx.recv_timeout(left) {
                    w.follow_new_dirs(&ev);
                    paths.extend(ev.paths.clone());
                }
            }
            paths
        };
        std::fs::write(root.join("svc/target/debug/deep/out.o"), "x").unwrap();
        let seen = drain(&mut w, 300);
        assert!(
            seen.iter()
                .all(|p| !p.starts_with(root.join("svc/target/debug"))),
            "{seen:?}"
        );
        std::fs::create_dir_all(root.join("svc/src/new")).unwrap();
        drain(&mut w, 300);
        std::fs::write(root.join("svc/src/new/mod.rs"), "x").unwrap();
        let seen = drain(&mut w, 500);
        assert!(seen.contains(&root.join("svc/src/new/mod.rs")), "{seen:?}");
    }

    #[test]
    fn only_releases_whose_upgrade_ran_count_as_deployed() {
        let events = vec![
            Event::StepFinished {
                stage: Stage::Deploy,
                step: "helm/api".into(),
                duration_ms: 5,
            },
            Event::StepSkipped {
                stage: Stage::Deploy,
                step: "helm/web".into(),
                reason: "unchanged".into(),
            },
            Event::StepFinished {
                stage: Stage::Deploy,
                step: "gate/api".into(),
                duration_ms: 1,
            },
        ];
        assert_eq!(
            deployed_releases(&events).into_iter().collect::<Vec<_>>(),
            vec!["api".to_string()]
        );
    }
}
