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

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

use super::dispatch::{execute, find_config, plan_options, Done};
use super::{Command, Global, RunFlags};
use crate::config::Pipeline;
use crate::exec::{Background, Executor, Signals};
use crate::model::{exit, Cmd, Event, Job, Sink, Stage};
use crate::plan::dev::{DevPlan, Forward, Watched, FIRST_LOCAL_PORT};
use crate::plan::Plan;
use crate::report::Reporter;

/// A burst of file events is over after this long without another.
const QUIET: Duration = Duration::from_millis(250);
/// How often the loop looks at its streams and forwards while it waits.
const TICK: Duration = Duration::from_millis(100);
/// A stream or forward that ended is started again at most this often.
const RESTART_AFTER: Duration = Duration::from_secs(3);

pub fn run(g: &Global, flags: &RunFlags, cleanup: bool, reporter: &Arc<Reporter>) -> ExitCode {
    let signals = Signals::install();
    let sink: Arc<dyn Sink> = reporter.clone();
    let say = |message: String| sink.emit(Event::Dev { message });
    let round_cmd = Command::DeployLocal(flags.clone());
    let (tx, rx) = mpsc::channel();
    let mut watching = Watching::new(tx);
    let mut streams = Streams::default();
    let mut round = 0u32;
    let mut changed: Vec<String> = vec![];
    // Watch before the first round, so an edit made while it runs starts the next.
    if let Ok(pipeline) = crate::config::load(&crate::config::LoadOptions {
        file: find_config(g.config.clone()),
        profile: g.profile.clone(),
        vars: None,
    }) {
        if let Ok(plan) = crate::plan::build(&pipeline, &plan_options(Job::Dev, g, flags)) {
            if let Some(dev) = &plan.dev {
                watching.set(&pipeline.root, &dev.watch, &say);
            }
        }
    }
    loop {
        round += 1;
        if round > 1 {
            say(format!("round {round}: {}", changed.join("; ")));
        }
        reporter.restart_clock();
        let started = Instant::now();
        let done = execute(
            g,
            &round_cmd,
            Job::Dev,
            flags,
            reporter,
            Some(signals.clone()),
        );
        if signals.cancelled() {
            break;
        }
        let Done {
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
                let file = find_config(g.config.clone());
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
        say(format!(
            "watching {} path(s); Ctrl-C to stop{}",
            watching.count(),
            if cleanup {
                " and uninstall the releases"
            } else {
                " (the cluster stays as it is)"
            }
        ));
        match wait_for_change(&rx, &mut watching, &mut streams, &signals, &sink) {
            Some(c) => changed = c,
            None => break,
        }
    }
    drop(streams);
    drop(watching);
    if !cleanup {
        say("stopped; the cluster and releases stay as they are (`down` removes them)".into());
        return ExitCode::SUCCESS;
    }
    say("--cleanup: uninstalling the releases".into());
    reporter.restart_clock();
    let down = Command::Down {
        cluster: false,
        flags: flags.clone(),
    };
    // A fresh counter: the Ctrl-C that ended the loop must not interrupt the cleanup.
    let code = execute(
        g,
        &down,
        Job::Down,
        flags,
        reporter,
        Some(Signals::install()),
    )
    .code;
    ExitCode::from(code.clamp(0, 255) as u8)
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
) -> Option<Vec<String>> {
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
            return Some(
                hits.into_iter()
                    .map(|(path, w)| {
                        let mut affects: Vec<String> =
                            w.images.iter().map(|i| format!("image {i}")).collect();
                        affects.extend(w.releases.iter().map(|r| format!("release {r}")));
                        format!("{path} changed ({})", affects.join(", "))
                    })
                    .collect(),
            );
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
            crate::run::adopt_provisioned(&ex, &pipeline.tools);
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
                start_forward(ex, entry, say);
                if moved && entry.bg.is_some() {
                    say(format!(
                        "port-forward 127.0.0.1:{} -> service/{}: moved to the new revision's pods (its pod was replaced)",
                        entry.local, f.service
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
