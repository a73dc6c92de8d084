//! One dispatch: find and load the pipeline, build the plan, run it, and turn the
//! outcome into events and an exit code. The exit code comes from
//! [`crate::model::Error::exit_code`] and nowhere else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches};

use super::{Cli, Command, Global, RunFlags};
use crate::config::{self, LoadOptions};
use crate::exec::{Executor, Signals};
use crate::model::{exit, Error, Event, Job, Outcome, Redactor, Sink, Stage};
use crate::plan::{self, PlanOptions};
use crate::report::{self, Mode, Reporter};
use crate::run::{lock, Runner};

/// The whole program for a binary named `bin`: parse the command line, run, exit.
pub fn main(bin: &str) -> ExitCode {
    let cmd = Cli::command().bin_name(bin.to_string());
    let cli = match cmd
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(c) => c,
        Err(e) => return ExitCode::from(report::clap_error(&e) as u8),
    };
    run_as(bin, cli.global, cli.command)
}

/// pipeline.toml here or in the nearest parent directory.
fn find_config(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p;
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .map(|d| d.join("pipeline.toml"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("pipeline.toml"))
}

fn plan_options(job: Job, g: &Global, f: &RunFlags) -> PlanOptions {
    PlanOptions {
        force: f.force,
        context: g.kube_context.clone(),
        namespace: g.namespace.clone(),
        allow_context: f.allow_context,
        provision: !g.no_provision,
        install_packages: g.install_packages,
        parallel: usize::from(g.jobs),
        strict: g.strict,
        ..PlanOptions::new(job)
    }
}

/// What a command runs: which job, with which flags.
fn job_of(c: &Command) -> Option<(Job, RunFlags)> {
    Some(match c {
        Command::DeployLocal(f) | Command::Ci(f) => (Job::DeployLocal, f.clone()),
        Command::Build(f) => (Job::Build, f.clone()),
        Command::Load(f) => (Job::Load, f.clone()),
        Command::Deploy(f) => (Job::Deploy, f.clone()),
        Command::Smoke { allow_context } => (
            Job::Smoke,
            RunFlags {
                allow_context: *allow_context,
                ..RunFlags::default()
            },
        ),
        Command::Preflight { job } => (*job, RunFlags::default()),
        Command::Status => (Job::Status, RunFlags::default()),
        Command::Down { flags, .. } => (Job::Down, flags.clone()),
        Command::Rollback { flags, .. } => (Job::Rollback, flags.clone()),
        Command::Logs { .. } => (Job::Logs, RunFlags::default()),
        Command::Plan { job, flags, .. } => (*job, flags.clone()),
        Command::Dev { flags, .. } => (Job::Dev, flags.clone()),
        Command::Completions { .. }
        | Command::OciCapfilter { .. }
        | Command::SelfCheck
        | Command::Init { .. } => return None,
    })
}

/// Run one command with the global options; the process exit code. Completions are
/// for `cargo xtask` (the binary that hands its commands over here).
pub fn run(g: Global, command: Command) -> ExitCode {
    run_as("cargo-xtask", g, command)
}

/// [`run`] for the binary `bin` (the name shell completions complete).
fn run_as(bin: &str, g: Global, command: Command) -> ExitCode {
    if let Command::OciCapfilter { cap_bnd, runc_args } = &command {
        // A runtime shim: it must never fail a container for its own sake.
        let bnd = cap_bnd
            .as_deref()
            .and_then(|h| u64::from_str_radix(h.trim_start_matches("0x"), 16).ok());
        crate::run::oci_capfilter(runc_args, bnd);
        return ExitCode::SUCCESS;
    }
    console::set_colors_enabled_stderr(report::colors_for_stderr(g.color.into()));
    console::set_colors_enabled(false); // stdout carries plans and JSON: never colored

    let ci = matches!(command, Command::Ci(_));
    let mut mode = Mode::detect(g.output.into());
    if ci && mode == Mode::Tty {
        mode = Mode::Plain;
    }
    let reporter = Arc::new(Reporter::new(mode, g.verbose, g.quiet, Redactor::default()));

    if let Command::Completions { shell } = command {
        let mut buf = vec![];
        clap_complete::generate(shell, &mut Cli::command(), bin, &mut buf);
        reporter.emit(Event::Output {
            text: String::from_utf8_lossy(&buf).into_owned(),
        });
        return ExitCode::SUCCESS;
    }
    if let Command::SelfCheck = command {
        let file = find_config(g.config.clone());
        let loaded = if file.is_file() {
            config::load(&LoadOptions {
                file: file.clone(),
                profile: g.profile.clone(),
                vars: None,
            })
            .map_err(|e| {
                let n = e.0.len();
                format!(
                    "does not load: {n} problem{}; `slipway plan` lists them",
                    if n == 1 { "" } else { "s" }
                )
            })
        } else {
            Err(match std::env::current_dir() {
                Ok(d) if g.config.is_none() => format!(
                    "not found: no pipeline.toml in {} or a parent directory",
                    d.display()
                ),
                _ => "not found".into(),
            })
        };
        let pinned = |t: crate::tools::registry::ToolId| {
            let p = loaded.as_ref().ok()?;
            p.tools.pinned(t).map(String::from)
        };
        let report = crate::run::self_check::gather(
            &file,
            loaded
                .as_ref()
                .map(|p| crate::run::self_check::Loaded {
                    state: format!("loads: project {}, profile {}", p.project.name, p.profile),
                    env_file: p.path(&p.project.env_file),
                })
                .map_err(Clone::clone),
            &pinned,
            super::VERSION,
            super::COMMIT,
        );
        let text = if mode == Mode::Json {
            serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
        } else {
            report.to_text()
        };
        reporter.emit(Event::Output { text });
        return ExitCode::SUCCESS;
    }
    if let Command::Init {
        from,
        force,
        dry_run,
    } = &command
    {
        let code = super::init::run(&g, from.as_deref(), *force, *dry_run, &reporter);
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    if let Command::Dev { flags, cleanup } = &command {
        let rounds = DevRounds {
            g: &g,
            flags,
            reporter: &reporter,
        };
        let code = crate::dev::run(&rounds, reporter.clone(), *cleanup);
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let Some((job, flags)) = job_of(&command) else {
        return ExitCode::SUCCESS;
    };
    let done = execute(&g, &command, job, &flags, &reporter, None);
    ExitCode::from(done.code.clamp(0, 255) as u8)
}

/// `dev`'s rounds: each a deploy-local run, reported as any run is.
struct DevRounds<'a> {
    g: &'a Global,
    flags: &'a RunFlags,
    reporter: &'a Arc<Reporter>,
}

impl crate::dev::Rounds for DevRounds<'_> {
    fn config_file(&self) -> PathBuf {
        find_config(self.g.config.clone())
    }

    fn preview(&self) -> Option<(crate::config::Pipeline, plan::Plan)> {
        let mut pipeline = config::load(&LoadOptions {
            file: find_config(self.g.config.clone()),
            profile: self.g.profile.clone(),
            vars: None,
        })
        .ok()?;
        config::select(&mut pipeline, &self.g.only).ok()?;
        let plan = plan::build(&pipeline, &plan_options(Job::Dev, self.g, self.flags)).ok()?;
        Some((pipeline, plan))
    }

    fn round(&self, signals: &Signals) -> Done {
        self.reporter.restart_clock();
        let command = Command::DeployLocal(self.flags.clone());
        execute(
            self.g,
            &command,
            Job::Dev,
            self.flags,
            self.reporter,
            Some(signals.clone()),
        )
    }

    fn cleanup(&self) -> i32 {
        self.reporter.restart_clock();
        let down = Command::Down {
            cluster: false,
            flags: self.flags.clone(),
        };
        // A fresh counter: the Ctrl-C that ended the loop must not interrupt the cleanup.
        let signals = Signals::install();
        execute(
            self.g,
            &down,
            Job::Down,
            self.flags,
            self.reporter,
            Some(signals),
        )
        .code
    }
}

/// What one job's run left: its exit code and, once planned, the pipeline and plan.
type Done = crate::dev::Round;

/// Load the pipeline, plan `job`, run it and report it (a diagnosis bundle on
/// failure, `--junit` either way). `signals` are installed here unless given.
/// `--only`'s selection, and kind's `delivery = "auto"` decided: the registry when it
/// is built (a stat), else `kind load`.
fn narrow(pipeline: &mut config::Pipeline, only: &[String]) -> Result<(), Error> {
    config::select(pipeline, only)?;
    pipeline
        .cluster
        .kind
        .resolve_delivery(crate::run::facts::registry_built().is_some());
    Ok(())
}

fn execute(
    g: &Global,
    command: &Command,
    job: Job,
    flags: &RunFlags,
    reporter: &Arc<Reporter>,
    signals: Option<Signals>,
) -> Done {
    let mode = reporter.mode;
    let ci = matches!(command, Command::Ci(_));
    // Every event also goes to the diagnosis bundle a failed run leaves.
    let recording = Arc::new(report::bundle::Recording::new(reporter.clone()));
    let sink: Arc<dyn Sink> = recording.clone();
    let failed = |e: &Error| Done {
        code: fail(reporter, e, false),
        planned: None,
        events: vec![],
    };
    let profile = g.profile.clone().or_else(|| ci.then(|| "ci".to_string()));
    let pipeline = match config::load(&LoadOptions {
        file: find_config(g.config.clone()),
        profile,
        vars: None,
    }) {
        Ok(p) => p,
        Err(errs) => return failed(&Error::from(errs)),
    };
    let mut pipeline = pipeline;
    if let Err(e) = narrow(&mut pipeline, &g.only) {
        return failed(&e);
    }
    // Every value that feeds a Secret is masked in everything slipway prints, from
    // the first line on and in every command (smoke, status and down included).
    for v in pipeline.secret_values() {
        reporter.redactor().add(&v);
    }
    let mut opts = plan_options(job, g, flags);
    // helm's flags depend on its major: the version preflight remembered for this
    // binary, else the default major until preflight has seen it.
    if let Some(v) = crate::run::tool_cache::cached(crate::tools::registry::ToolId::Helm.name()) {
        opts.helm = crate::tools::helm::Dialect::detected(&v);
    }
    command_options(&mut opts, command);
    if let Command::Plan { .. } = &command {
        // What this machine already has decides what `plan` shows first.
        opts.local = Some(crate::run::facts::read());
        return match plan::build(&pipeline, &opts) {
            Ok(p) => print_plan(&p, mode, g.verbose, reporter, sink.as_ref()),
            Err(e) => failed(&e),
        };
    }

    // Until the plan is made, Ctrl-C ends slipway at once (nothing has started).
    let mut plan = match plan::build(&pipeline, &opts) {
        Ok(p) => p,
        Err(e) => return failed(&e),
    };
    if matches!(command, Command::Preflight { .. }) {
        plan.steps.retain(|s| s.stage == Stage::Preflight);
    }
    let signals = signals.unwrap_or_else(Signals::install);
    let context = plan.context.clone();
    if plan.steps.iter().any(|s| s.stage == Stage::Deploy) {
        reporter.services(table_services(&pipeline));
    }
    sink.emit(Event::RunStarted {
        project: pipeline.project.name.clone(),
        job: match command {
            Command::Preflight { .. } => "preflight".into(),
            _ => job.name().into(),
        },
        profile: pipeline.profile.clone(),
        context,
    });
    let ex = Executor::new(
        pipeline.root.clone(),
        sink.clone(),
        pipeline.vars.clone(),
        signals,
    );
    // Tools slipway provisioned earlier serve jobs without a preflight (status, logs)
    // too; preflight decides again for the jobs that have one.
    if opts.provision && pipeline.tools.provision {
        crate::run::adopt_provisioned(&ex, &|t| pipeline.tools.pinned(t).map(String::from));
    }
    let result = run_plan(
        &ex,
        &pipeline,
        &mut plan,
        &mut opts,
        job,
        command,
        sink.as_ref(),
    );
    let code = match result {
        Ok(()) => {
            reporter.summary(&plan.reach);
            let code = finish_on(reporter, recording.as_ref(), exit::OK);
            junit(g, reporter, job, &recording);
            code
        }
        Err(e) => {
            recording.emit(Event::error(&e));
            reporter.summary(&[]);
            if !e.interrupted {
                leave_bundle(&ex, &e, &pipeline, &plan, job, &recording, reporter);
            }
            let code = finish_on(reporter, recording.as_ref(), e.exit_code());
            junit(g, reporter, job, &recording);
            code
        }
    };
    Done {
        code,
        planned: Some((pipeline, plan)),
        events: recording.events(),
    }
}

/// A deploying run's services for a terminal's table: each release with the images
/// its values name and the checks that name it (a check without `release`: the
/// release of its name, else the only one); an image no release uses is a row of
/// its own.
fn table_services(p: &config::Pipeline) -> Vec<report::table::Service> {
    let mut rows: Vec<report::table::Service> = p
        .releases
        .iter()
        .map(|r| report::table::Service {
            name: r.name.clone(),
            release: Some(r.release_name().to_string()),
            ..Default::default()
        })
        .collect();
    for img in &p.images {
        let users = p.releases_using(&img.name);
        if users.is_empty() {
            rows.push(report::table::Service {
                name: img.name.clone(),
                images: vec![img.name.clone()],
                ..Default::default()
            });
        }
        for row in rows.iter_mut().filter(|s| users.contains(&s.name)) {
            row.images.push(img.name.clone());
        }
    }
    for c in &p.smoke {
        let release = c
            .release
            .clone()
            .or_else(|| p.release(&c.name).map(|r| r.name.clone()))
            .or_else(|| match &p.releases[..] {
                [only] => Some(only.name.clone()),
                _ => None,
            });
        if let Some(row) = rows.iter_mut().find(|s| Some(&s.name) == release.as_ref()) {
            row.checks.push(c.name.clone());
        }
    }
    rows
}

/// What a command adds to the plan's options (`down --cluster`, `rollback`'s
/// release and revision, `logs`' target).
fn command_options(opts: &mut PlanOptions, command: &Command) {
    if let Command::Down { cluster, .. } | Command::Plan { cluster, .. } = &command {
        opts.with_cluster = *cluster;
    }
    if let Command::Rollback { release, to, .. } = &command {
        opts.release = release.clone();
        opts.revision = *to;
    }
    if let Command::Logs {
        target,
        follow,
        tail,
    } = &command
    {
        match target {
            Some(t) if t.contains('/') => opts.workload = Some(t.clone()),
            t => opts.release = t.clone(),
        }
        opts.follow = *follow;
        opts.tail = *tail;
    }
}

/// `plan`: the plan's text (or JSON, masked), as output.
fn print_plan(
    p: &plan::Plan,
    mode: Mode,
    verbose: bool,
    reporter: &Reporter,
    sink: &dyn Sink,
) -> Done {
    let text = if mode == Mode::Json {
        // Masked on its strings before it is encoded (a plan holds no
        // secret value, which `plan::build` makes sure of).
        let mut v = serde_json::to_value(p).unwrap_or_default();
        reporter.redactor().json(&mut v);
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    } else if verbose {
        p.to_text_verbose()
    } else {
        p.to_text()
    };
    sink.emit(Event::Output { text });
    Done {
        code: exit::OK,
        planned: None,
        events: vec![],
    }
}

/// Preflight, then (replanned for the helm found) every other stage; a job that
/// changes a cluster holds the cluster's lock.
fn run_plan(
    ex: &Executor,
    pipeline: &config::Pipeline,
    plan: &mut plan::Plan,
    opts: &mut PlanOptions,
    job: Job,
    command: &Command,
    sink: &dyn Sink,
) -> Result<(), Error> {
    // Jobs that change a cluster run one at a time per cluster.
    let preflight_only = matches!(command, Command::Preflight { .. });
    let _lock = match job {
        Job::DeployLocal | Job::Dev | Job::Load | Job::Deploy | Job::Down | Job::Rollback
            if !preflight_only =>
        {
            Some(lock::acquire(ex, &plan.context)?)
        }
        _ => None,
    };
    let runner = Runner::new(ex, plan);
    runner.execute_stages(|s| s == Stage::Preflight)?;
    if let Some(v) = runner.helm_replan() {
        // Planned for another (or an assumed) helm: the same plan for the one found.
        opts.helm = crate::tools::helm::Dialect::detected(&v);
        *plan = plan::build(pipeline, opts)?;
        if preflight_only {
            plan.steps.retain(|s| s.stage == Stage::Preflight);
        }
    }
    if let Some(h) = &plan.helm {
        for (release, d) in &h.decisions {
            sink.emit(Event::Note {
                stage: Stage::Preflight,
                step: None,
                message: format!(
                    "{}, release {release}: {}",
                    h.dialect.describe(),
                    d.join("; ")
                ),
            });
        }
    }
    let runner = Runner::new(ex, plan);
    runner.prefetch(std::time::Instant::now() + std::time::Duration::from_secs(60));
    runner.execute_stages(|s| s != Stage::Preflight)
}

/// A failed run's diagnosis bundle: what helm says of each release (never fails
/// the run), then every event and the evidence, written and announced.
fn leave_bundle(
    ex: &Executor,
    e: &Error,
    pipeline: &config::Pipeline,
    plan: &plan::Plan,
    job: Job,
    recording: &report::bundle::Recording,
    reporter: &Reporter,
) {
    // What helm says of each release, for the bundle (never fails the run).
    if e.stage.is_some_and(|s| s >= Stage::Deploy) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for (i, c) in plan.on_failure.iter().enumerate() {
            if let Ok(out) = ex.probe(e.stage.unwrap_or(Stage::Deploy), c, Some(deadline)) {
                let what = c.args.get(..2).map(|a| a.join("-")).unwrap_or_default();
                recording.emit(Event::Evidence {
                    name: format!("helm-{what}-{i}.json"),
                    text: ex.redact(&format!("{}{}", out.stdout, out.stderr)),
                });
            }
        }
    }
    let run = report::bundle::Run {
        project: &pipeline.project.name,
        job: job.name(),
        profile: &pipeline.profile,
        context: &plan.context,
    };
    let events = recording.events();
    match report::bundle::write(&pipeline.root, &run, e, &events, reporter.redactor()) {
        Ok(dir) => reporter.emit(Event::Bundle {
            path: dir.display().to_string(),
        }),
        Err(err) => reporter.emit(Event::Note {
            stage: e.stage.unwrap_or(Stage::Preflight),
            step: None,
            message: format!("could not write the diagnosis bundle: {err}"),
        }),
    }
}

/// `--junit PATH`: the run as a JUnit report (after the run's last event).
fn junit(g: &Global, reporter: &Reporter, job: Job, recording: &report::bundle::Recording) {
    let Some(path) = &g.junit else { return };
    if let Err(e) = report::junit::write(path, job.name(), &recording.events(), reporter.redactor())
    {
        reporter.line(&format!(
            "could not write the JUnit report {}: {e}",
            path.display()
        ));
    }
}

/// Report the error once, then the summary and the end of the run.
fn fail(reporter: &Reporter, e: &Error, ran: bool) -> i32 {
    reporter.emit(Event::error(e));
    if ran {
        reporter.summary(&[]);
    }
    finish(reporter, e.exit_code())
}

fn finish(reporter: &Reporter, code: i32) -> i32 {
    finish_on(reporter, reporter, code)
}

/// The end of the run, as an event into `sink` (the recording one, once a run began).
fn finish_on(reporter: &Reporter, sink: &dyn Sink, code: i32) -> i32 {
    sink.emit(Event::RunFinished {
        result: if code == exit::OK {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
        exit_code: code,
        duration_ms: crate::model::ms(reporter.elapsed()),
    });
    code
}
