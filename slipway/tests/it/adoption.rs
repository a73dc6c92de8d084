//! Both ways another repository adopts slipway, each from a scratch repository
//! outside this one: the `slipway` binary in a repository that is not Rust, and a
//! Rust repository's own xtask that depends on the slipway library by path and adds
//! a subcommand of its own.

use std::path::Path;
use std::process::Command;

use crate::support::{repo, Sandbox, CANARY};

/// A small repository of another team: a Python service, its Dockerfile and chart,
/// and a pipeline.toml. The service's directory is where commands are run from, so
/// slipway has to find the nearest pipeline.toml above it.
fn scratch_repo(root: &Path) {
    let w = |p: &str, text: &str| {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    };
    w("services/api/app.py", "print('hello')\n");
    w(
        "services/api/Dockerfile",
        "FROM python:3.12-slim\nCOPY app.py /app.py\nCMD [\"python\", \"/app.py\"]\n",
    );
    w(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: api\nversion: 0.1.0\n",
    );
    w("chart/values.yaml", "image: {}\n");
    w(
        "pipeline.toml",
        r#"[project]
name = "teamapp"
namespace = "team"

[cluster]
name = "team"

[images.api]
context = "services/api"

[releases.api]
chart = "chart"
[releases.api.set_string]
"image.repository" = "${images.api.repository}"
"image.tag" = "${images.api.tag}"
[releases.api.secrets.api-secrets]
from_env = { TOKEN = "FIXTURE_TOKEN" }

[smoke.up]
service = "api"
port = 8000
path = "/"
"#,
    );
}

fn assert_plan_and_preflight(out_plan: &std::process::Output, out_pre: &std::process::Output) {
    let plan = String::from_utf8_lossy(&out_plan.stdout);
    assert!(
        out_plan.status.success(),
        "plan failed:\n{plan}\n{}",
        String::from_utf8_lossy(&out_plan.stderr)
    );
    assert!(plan.contains("# slipway plan: teamapp"), "{plan}");
    assert!(plan.contains("docker build --tag api:c-"), "{plan}");
    assert!(plan.contains("kind load docker-image api:c-"), "{plan}");
    assert!(
        plan.contains("helm upgrade --install api chart --kube-context kind-team --namespace team"),
        "{plan}"
    );
    assert!(!plan.contains(CANARY), "{plan}");
    let pre = String::from_utf8_lossy(&out_pre.stderr);
    assert_eq!(out_pre.status.code(), Some(0), "preflight failed:\n{pre}");
    assert!(pre.contains("check context guard: passed"), "{pre}");
    assert!(
        pre.contains("kind-team is the local cluster slipway manages"),
        "{pre}"
    );
    assert!(pre.contains("secret api-secrets/TOKEN: passed"), "{pre}");
}

/// Path 2: the `slipway` binary, run from a subdirectory of a Python repository.
#[test]
fn the_slipway_binary_works_in_a_repository_that_is_not_rust() {
    let s = Sandbox::new();
    let team = s.dir.path().join("team-repo");
    scratch_repo(&team);
    let run = |args: &[&str]| {
        let mut c = s.command(args);
        c.current_dir(team.join("services/api"));
        c.output().unwrap()
    };
    assert_plan_and_preflight(&run(&["plan"]), &run(&["preflight"]));
}

/// Path 1: a Rust repository's own xtask: `slipway = { path = … }`, slipway's
/// commands flattened next to its own `hello`, a main of a few lines.
#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "builds a scratch Rust workspace against slipway (about a minute); runs in CI (CI=true) or with --ignored"
)]
fn a_rust_repository_adds_slipway_to_its_own_xtask() {
    let s = Sandbox::new();
    let team = s.dir.path().join("team-repo");
    scratch_repo(&team);
    let w = |p: &str, text: String| {
        let f = team.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    };
    w(
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = [\"xtask\"]\n".into(),
    );
    w(
        ".cargo/config.toml",
        "[alias]\nxtask = \"run --quiet --package xtask --\"\n".into(),
    );
    w(
        "xtask/Cargo.toml",
        format!(
            "[package]\nname = \"xtask\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\nclap = {{ version = \"4\", features = [\"derive\", \"env\"] }}\nslipway = {{ path = {:?} }}\n",
            repo().join("slipway")
        ),
    );
    w(
        "xtask/src/main.rs",
        r#"use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    global: slipway::cli::Global,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    #[command(flatten)]
    Slipway(slipway::cli::Command),
    /// The team's own chore
    Hello,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Slipway(c) => slipway::cli::run(cli.global, c),
        Cmd::Hello => {
            println!("hello from the team's xtask");
            std::process::ExitCode::SUCCESS
        }
    }
}
"#
        .into(),
    );
    // The same dependency versions as this repository, resolved offline.
    std::fs::copy(repo().join("Cargo.lock"), team.join("Cargo.lock")).unwrap();
    let target = repo().join("target/scratch-xtask");
    let build = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet", "--package", "xtask"])
        .current_dir(&team)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "the scratch xtask does not build:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let exe = target.join("debug/xtask");
    let run = |args: &[&str]| {
        let c = s.command(args);
        let mut c2 = Command::new(&exe);
        c2.args(args)
            .current_dir(team.join("services/api"))
            .env_clear();
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                c2.env(k, v);
            }
        }
        c2.output().unwrap()
    };
    assert_plan_and_preflight(&run(&["plan"]), &run(&["preflight"]));
    let hello = run(&["hello"]);
    assert_eq!(
        String::from_utf8_lossy(&hello.stdout).trim(),
        "hello from the team's xtask"
    );
}
