//! `cargo xtask gen-fixture --services N --out DIR`: a monorepo of N services, for
//! the forty-services benchmark and tests (issue #24); see fixture_gen.rs for what it
//! holds. Nothing of it is committed: it is written into DIR (a temporary directory
//! by default).

use std::path::PathBuf;

pub use crate::fixture_gen::*;

#[derive(clap::Args)]
pub struct Args {
    /// How many services
    #[arg(long, default_value_t = 40)]
    pub services: usize,
    /// Where to write it (default: a new temporary directory)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The kind cluster the pipeline deploys to
    #[arg(long, default_value = "slipway-forty")]
    pub cluster: String,
    /// The sample's static binary (default: services/sample/bin/sample, built when
    /// missing)
    #[arg(long)]
    pub binary: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let out = match a.out {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("slipway-forty-")
            .tempdir()?
            .keep(),
    };
    let binary = match a.binary {
        Some(b) => b,
        None => sample_binary()?,
    };
    generate(
        &out,
        a.services,
        &a.cluster,
        &binary,
        &crate::root().join("helm/sample"),
    )?;
    println!("{}", out.display());
    Ok(())
}

/// The sample's static binary, built when missing.
pub fn sample_binary() -> anyhow::Result<PathBuf> {
    let root = crate::root();
    let bin = root.join("services/sample/bin/sample");
    if !bin.is_file() {
        let sh = xshell::Shell::new()?;
        sh.change_dir(&root);
        xshell::cmd!(
            sh,
            "bash scripts/build-static.sh sample services/sample/bin/sample"
        )
        .run()?;
    }
    Ok(bin)
}
