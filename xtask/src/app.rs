//! Wiring for one invocation: find and load the pipeline, build the plan, run it, and
//! turn the outcome into output and an exit code.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{Cli, Command, Global, RunFlags};
use crate::config::{self, LoadOptions, Pipeline};
use crate::exec::{install_signal_flag, Executor};
use crate::plan::{self, CheckKind, Job, Plan, PlanOptions};
use crate::report::{self, Event, Mode, Outcome, Redactor, Reporter};
use crate::run::{Runner, StageError};
use crate::{ops, plan::Action};

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

fn load(g: &Global, profile: Option<String>) -> Result<Pipeline, i32> {
    let file = find_config(g.config.clone());
    config::load(&LoadOptions {
        file,
        profile,
        vars: None,
    })
    .map_err(|errs| {
        eprintln!("{errs}");
        2
    })
}

fn plan_options(job: Job, g: &Global, f: &RunFlags) -> PlanOptions {
    PlanOptions {
        force: f.force,
        context: g.kube_context.clone(),
        namespace: g.namespace.clone(),
        allow_context: f.allow_context,
        ..PlanOptions::new(job)
    }
}

pub fn main(cli: Cli) -> i32 {
    let g = cli.global;
    console::set_colors_enabled_stderr(report::colors_for_stderr(g.color));
    console::set_colors_enabled(false); // stdout carries plans and JSON: never colored

    let (profile, ci) = match &cli.command {
        Command::Ci(_) => (g.profile.clone().or_else(|| Some("ci".into())), true),
        _ => (g.profile.clone(), false),
    };
    if let Command::Completions { shell } = cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut cmd, "cargo-xtask", &mut std::io::stdout());
        return 0;
    }
    let pipeline = match load(&g, profile) {
        Ok(p) => p,
        Err(code) => return code,
    };

    if let Command::Plan { job, flags } = &cli.command {
        let opts = plan_options((*job).into(), &g, flags);
        return match plan::build(&pipeline, &opts) {
            Ok(p) if g.output == report::OutputFormat::Json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&p).expect("plan serializes")
                );
                0
            }
            Ok(p) => {
                print!("{}", p.to_text());
                0
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        };
    }

    let mut mode = Mode::detect(g.output);
    if ci && mode == Mode::Tty {
        mode = Mode::Plain;
    }
    let reporter = Arc::new(Reporter::new(mode, g.verbose, g.quiet, Redactor::default()));
    let cancel = install_signal_flag();
    let root = pipeline.root.clone();
    let ex = Executor::new(root, Arc::clone(&reporter), pipeline.vars.clone(), cancel);

    let (job, flags) = match &cli.command {
        Command::DeployLocal(f) | Command::Ci(f) => (Some(Job::DeployLocal), f.clone()),
        Command::Build(f) => (Some(Job::Build), f.clone()),
        Command::Load(f) => (Some(Job::Load), f.clone()),
        Command::Deploy(f) => (Some(Job::Deploy), f.clone()),
        Command::Smoke => (Some(Job::Smoke), RunFlags::default()),
        Command::Preflight { job } => (Some(Job::from(*job)), RunFlags::default()),
        _ => (None, RunFlags::default()),
    };
    let job_name = match &cli.command {
        Command::Preflight { .. } => "preflight".to_string(),
        _ => job
            .map(|j| {
                serde_json::to_value(j)
                    .unwrap()
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_else(|| command_name(&cli.command)),
    };
    reporter.emit(Event::RunStarted {
        project: pipeline.project.name.clone(),
        job: job_name,
        profile: pipeline.profile.clone(),
        context: g
            .kube_context
            .clone()
            .unwrap_or_else(|| pipeline.cluster.kube_context()),
    });

    let mut footer = vec![];
    let result: Result<(), StageError> = match (&cli.command, job) {
        (Command::Status, _) => ops::status(&ex, &pipeline, &g.kube_context, &g.namespace),
        (Command::Down { cluster }, _) => {
            ops::down(&ex, &pipeline, &g.kube_context, &g.namespace, *cluster)
        }
        (Command::Preflight { job }, _) => {
            let mut opts = plan_options((*job).into(), &g, &flags);
            opts.job = (*job).into();
            run_job(&ex, &pipeline, Job::Preflight, opts, &mut footer)
        }
        (_, Some(job)) => run_job(
            &ex,
            &pipeline,
            job,
            plan_options(job, &g, &flags),
            &mut footer,
        ),
        _ => Ok(()),
    };

    let code = match &result {
        Ok(()) => 0,
        Err(e) => {
            print_error(&reporter, e);
            match &cli.command {
                Command::Status | Command::Down { .. } if !e.interrupted => ops::OPS_EXIT,
                _ => e.code(),
            }
        }
    };
    reporter.summary(&footer);
    reporter.emit(Event::RunFinished {
        result: if code == 0 {
            Outcome::Ok
        } else {
            Outcome::Failed
        },
        exit_code: code,
        duration_ms: report::ms(reporter.elapsed()),
    });
    code
}

fn command_name(c: &Command) -> String {
    match c {
        Command::Status => "status",
        Command::Down { .. } => "down",
        _ => "run",
    }
    .into()
}

/// Plan the job and run it. `preflight --job X` plans X but runs only its checks.
fn run_job(
    ex: &Executor,
    p: &Pipeline,
    run: Job,
    opts: PlanOptions,
    footer: &mut Vec<String>,
) -> Result<(), StageError> {
    let mut plan = plan::build(p, &opts)
        .map_err(|e| StageError::new(plan::Stage::Preflight, format!("{e:#}")))?;
    if run == Job::Preflight {
        plan.steps.retain(|s| s.stage == plan::Stage::Preflight);
    }
    let r = Runner::new(ex, p, &plan).execute();
    if r.is_ok() && run == Job::DeployLocal {
        *footer = reach(p, &plan);
    }
    r
}

/// How to reach what was deployed.
fn reach(p: &Pipeline, plan: &Plan) -> Vec<String> {
    let mut out = vec![];
    for m in &p.cluster.kind.port_mappings {
        if p.cluster.provider == config::Provider::Kind {
            out.push(format!(
                "reach: http://{}:{} (kind node port {})",
                m.listen_address, m.host_port, m.container_port
            ));
        }
    }
    for s in &plan.steps {
        if let Action::Smoke(c) = &s.action {
            if let CheckKind::Http { service, port, .. } = &c.check {
                let line = format!("reach {service}: kubectl --context {} -n {} port-forward service/{service} 8080:{port}", c.context, c.namespace);
                if !out.contains(&line) {
                    out.push(line);
                }
            }
        }
    }
    out
}

fn print_error(r: &Reporter, e: &StageError) {
    use console::style;
    let mut s = format!(
        "{} {}",
        style(format!("error[{}]:", e.stage.name())).red().bold(),
        e.message
    );
    if let Some(c) = &e.command {
        s.push_str(&format!("\n  command: {c}"));
    }
    if let Some(code) = e.exit_code {
        s.push_str(&format!("\n  exit code: {code}"));
    }
    if !e.tail.is_empty() {
        s.push_str(&format!("\n  output (last {} lines):", e.tail.len()));
        for l in &e.tail {
            s.push_str(&format!("\n    | {l}"));
        }
    }
    if let Some(h) = &e.hint {
        s.push_str(&format!("\n  {} {h}", style("hint:").cyan().bold()));
    }
    let code = if e.interrupted {
        130
    } else {
        e.stage.exit_code()
    };
    s.push_str(&format!(
        "\n  {}",
        style(format!(
            "slipway stopped in stage {} (exit code {code})",
            e.stage.name()
        ))
        .dim()
    ));
    r.line(&s);
}
