//! `cargo xtask`: slipway's commands (deploy-local, smoke, plan, …) exactly as the
//! `slipway` binary has them, plus this repository's own chores, written with xshell.
//! This is how any Rust repository adopts slipway: depend on the library, flatten its
//! command line next to your own subcommands, hand slipway's over to `slipway::cli::run`.

mod bench;
mod bench_builds;
mod bench_forty;
mod dist;
mod fixture;
mod fixture_gen;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, after_help = slipway::model::exit::help())]
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
    /// Benchmark a no-change redeploy: slipway against a Makefile-style baseline
    Bench(bench::Args),
    /// A generated monorepo of N services (images, releases in a three-layer `needs`
    /// DAG, smoke checks, and a skaffold.yaml for the same) in a temporary directory
    GenFixture(fixture::Args),
    /// Release artifacts: a static, stripped slipway per target as
    /// target/dist/slipway-VERSION-TARGET.tar.gz, and target/dist/SHA256SUMS
    /// (reproducible: --reproduce builds twice and compares)
    Dist(dist::Args),
    /// The CI image slipway-local/slipway-ci:VERSION (docker/ci.Dockerfile): dist, the
    /// offline Debian base (scripts/debian-image.sh ci), docker build; no pulls
    CiImage(dist::ImageArgs),
    /// Build kind, helm and kubectl from the Go module proxy (scripts/toolchain.sh)
    Toolchain,
    /// Build the offline kind node image (scripts/kind-node-image.sh)
    NodeImage,
    /// Build the local registry's binary and image (scripts/registry.sh build): from
    /// then on kind's `delivery = "auto"` sends images through it
    Registry,
    /// A real minikube offline: build it and its base image, start, verify, delete
    /// (scripts/minikube.sh)
    Minikube {
        /// Phases, in order: all (build, image, start), build, image, start, verify,
        /// stop, delete
        #[arg(default_value = "all")]
        phases: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let chore = match cli.command {
        Cmd::Slipway(c) => return slipway::cli::run(cli.global, c),
        Cmd::Bench(a) => bench::run(&cli.global, a),
        Cmd::GenFixture(a) => fixture::run(a),
        Cmd::Dist(a) => dist::run(a),
        Cmd::CiImage(a) => dist::image(a),
        Cmd::Toolchain => script("scripts/toolchain.sh", &[]),
        Cmd::NodeImage => script("scripts/kind-node-image.sh", &[]),
        Cmd::Registry => script("scripts/registry.sh", &["build".to_string()]),
        Cmd::Minikube { phases } => phases
            .iter()
            .try_for_each(|p| script("scripts/minikube.sh", std::slice::from_ref(p))),
    };
    match chore {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run one of the repository's scripts from its root.
fn script(path: &str, args: &[String]) -> anyhow::Result<()> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(root());
    xshell::cmd!(sh, "bash {path} {args...}").run()?;
    Ok(())
}

/// The repository root (xtask's parent).
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}
