//! `cargo xtask dist`: release artifacts for people without a Rust toolchain.
//!
//! For each target, a static, stripped `slipway` (glibc with `crt-static`, as the
//! sample's image build does: no musl toolchain needed) packed as
//! `target/dist/slipway-VERSION-TARGET.tar.gz` (one directory `slipway-VERSION-TARGET/`
//! holding the binary), plus `target/dist/SHA256SUMS` in `sha256sum -c` form.
//!
//! Reproducible: the same commit gives the same bytes, wherever the checkout and the
//! target directory are. Paths are remapped (`--remap-path-prefix`: the build
//! directory, cargo's home; the checkout's own sources reach rustc as relative
//! paths) and checked to be absent from the binary, the commit and `SOURCE_DATE_EPOCH` come from git,
//! and the archive is written here with sorted entries, fixed owner, mode and mtime
//! (the commit's time) and a gzip header without a timestamp or name.
//! `--reproduce` builds a second time, cold, in another directory and compares.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use xshell::{cmd, Shell};

#[derive(clap::Args)]
pub struct Args {
    /// Targets to build (default: this machine's, plus x86_64-unknown-linux-musl when
    /// its standard library is installed)
    #[arg(long = "target", value_name = "TRIPLE")]
    targets: Vec<String>,
    /// Build again and fail unless every artifact is byte-for-byte the same: `warm`
    /// recompiles slipway itself (its dependencies are reused), `cold` builds
    /// everything again in a fresh directory elsewhere
    #[arg(long, value_name = "HOW", num_args = 0..=1, default_missing_value = "warm")]
    reproduce: Option<Again>,
    /// Where the artifacts go (default: target/dist under the cargo target directory)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// cargo's target directory for these builds (default: target/dist-build); one
    /// outside the checkout (say under ~/.cache) keeps the compiled dependencies for
    /// the next clone. Its path never reaches the binary
    #[arg(long, env = "SLIPWAY_DIST_BUILD_DIR", value_name = "DIR")]
    build_dir: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Again {
    Warm,
    Cold,
}

/// What one build produced.
struct Built {
    archive: PathBuf,
    binary_size: u64,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let root = crate::root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let out = a.out.clone().unwrap_or_else(|| target_dir.join("dist"));
    let source = Source::of(&sh)?;
    let targets = if a.targets.is_empty() {
        default_targets(&sh)?
    } else {
        a.targets.clone()
    };
    eprintln!(
        "dist: slipway {} (commit {}{}), SOURCE_DATE_EPOCH={}, targets {}",
        slipway::cli::VERSION,
        source.commit,
        if source.dirty {
            ", with uncommitted changes: the artifacts are not that commit's"
        } else {
            ""
        },
        source.epoch,
        targets.join(" ")
    );

    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    let build_dir = a
        .build_dir
        .clone()
        .unwrap_or_else(|| target_dir.join("dist-build"));
    let started = Instant::now();
    let mut built = vec![];
    for t in &targets {
        built.push(build(&sh, &root, &build_dir, &out, &source, t)?);
    }
    write_sums(&out, &built)?;
    for b in &built {
        eprintln!(
            "dist: {} ({} KiB; slipway binary {} KiB, static, stripped)",
            b.archive.display(),
            size(&b.archive)? / 1024,
            b.binary_size / 1024
        );
    }
    eprintln!(
        "dist: {} ({:.0}s)",
        out.join("SHA256SUMS").display(),
        started.elapsed().as_secs_f64()
    );

    if let Some(how) = a.reproduce {
        let again = tempfile::Builder::new()
            .prefix("slipway-dist-again.")
            .tempdir_in(&target_dir)?;
        let out2 = again.path().join("dist");
        std::fs::create_dir_all(&out2)?;
        let build2 = match how {
            Again::Cold => again.path().join("build"),
            Again::Warm => build_dir.clone(),
        };
        let started = Instant::now();
        let mut second = vec![];
        for t in &targets {
            if how == Again::Warm {
                cmd!(sh, "cargo clean --release -p slipway --target {t}")
                    .env("CARGO_TARGET_DIR", &build_dir)
                    .quiet()
                    .run()?;
            }
            second.push(build(&sh, &root, &build2, &out2, &source, t)?);
        }
        write_sums(&out2, &second)?;
        let first = std::fs::read_to_string(out.join("SHA256SUMS"))?;
        let twice = std::fs::read_to_string(out2.join("SHA256SUMS"))?;
        if first != twice {
            bail!(
                "not reproducible: a second ({how:?}) build in {} gave other bytes\nfirst:\n{first}second:\n{twice}",
                build2.display()
            );
        }
        eprintln!(
            "dist: reproducible: a second build ({}, {:.0}s) gave the same bytes:\n{first}",
            match how {
                Again::Warm => "slipway recompiled, dependencies reused",
                Again::Cold => "everything, in another directory",
            },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The CI image's name (docker/ci.Dockerfile).
pub fn image_name(version: &str) -> String {
    format!("slipway-local/slipway-ci:{version}")
}

#[derive(clap::Args)]
pub struct ImageArgs {
    /// Use the artifacts already in target/dist instead of running dist first
    #[arg(long)]
    no_dist: bool,
    /// cargo's target directory for dist's build (see `dist --build-dir`)
    #[arg(long, env = "SLIPWAY_DIST_BUILD_DIR", value_name = "DIR")]
    build_dir: Option<PathBuf>,
}

/// `cargo xtask ci-image`: dist, the offline Debian base (scripts/debian-image.sh ci)
/// and `docker build` of docker/ci.Dockerfile with install.sh, SHA256SUMS and this
/// machine's archive as its context. No registry is contacted.
pub fn image(a: ImageArgs) -> anyhow::Result<()> {
    let root = crate::root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    if !a.no_dist {
        run(Args {
            targets: vec![],
            reproduce: None,
            out: None,
            build_dir: a.build_dir.clone(),
        })?;
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dist = target_dir.join("dist");
    let started = Instant::now();
    let base = cmd!(sh, "bash scripts/debian-image.sh ci").read()?;
    let base = base.lines().last().unwrap_or("").trim().to_string();
    eprintln!(
        "ci-image: base {base} ready in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let archive = archive_name(slipway::cli::VERSION, &host(&sh)?);
    let ctx = tempfile::Builder::new()
        .prefix("slipway-ci-image.")
        .tempdir_in(&target_dir)?;
    for (from, name) in [
        (root.join("install.sh"), "install.sh"),
        (dist.join("SHA256SUMS"), "SHA256SUMS"),
        (dist.join(&archive), archive.as_str()),
    ] {
        std::fs::copy(&from, ctx.path().join(name))
            .with_context(|| format!("{} (run `cargo xtask dist` first)", from.display()))?;
    }
    let image = image_name(slipway::cli::VERSION);
    let file = root.join("docker/ci.Dockerfile");
    let context = ctx.path();
    let started = Instant::now();
    cmd!(
        sh,
        "docker build --quiet --build-arg BASE={base} --file {file} --tag {image} {context}"
    )
    .run()?;
    let format = "{{.Size}}";
    let size = cmd!(sh, "docker image inspect --format {format} {image}")
        .quiet()
        .read()?;
    let mb = size.trim().parse::<f64>().unwrap_or(0.0) / 1e6;
    eprintln!(
        "ci-image: {image} ({mb:.0} MB) built in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The commit being packed.
struct Source {
    /// 12 hex digits, or "unknown" outside a git checkout.
    commit: String,
    /// The commit's time (or `SOURCE_DATE_EPOCH` when set).
    epoch: u64,
    dirty: bool,
}

impl Source {
    fn of(sh: &Shell) -> anyhow::Result<Source> {
        let git = |args: &[&str]| -> Option<String> {
            cmd!(sh, "git {args...}")
                .quiet()
                .ignore_stderr()
                .read()
                .ok()
                .map(|s| s.trim().to_string())
        };
        let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(e) => e.trim().parse().context("SOURCE_DATE_EPOCH")?,
            Err(_) => git(&["log", "-1", "--format=%ct"])
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
        };
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Ok(Source {
            commit,
            epoch,
            dirty,
        })
    }
}

/// This machine's target, and the musl one when rustup has installed its std.
fn default_targets(sh: &Shell) -> anyhow::Result<Vec<String>> {
    let host = host(sh)?;
    let mut v = vec![host];
    let installed = cmd!(sh, "rustup target list --installed")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    for t in ["x86_64-unknown-linux-musl"] {
        if installed.lines().any(|l| l.trim() == t) && !v.iter().any(|h| h == t) {
            v.push(t.to_string());
        }
    }
    Ok(v)
}

fn host(sh: &Shell) -> anyhow::Result<String> {
    let vv = cmd!(sh, "rustc -vV").quiet().read()?;
    vv.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV names no host")
}

/// The file name of a target's archive (install.sh and binstall use the same).
pub fn archive_name(version: &str, target: &str) -> String {
    format!("slipway-{version}-{target}.tar.gz")
}

fn build(
    sh: &Shell,
    root: &Path,
    build_dir: &Path,
    out: &Path,
    source: &Source,
    target: &str,
) -> anyhow::Result<Built> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    // Every path that could end up in the binary (panic locations, file!()) is
    // remapped to one that does not depend on this machine.
    let mut flags = vec!["-C".to_string(), "target-feature=+crt-static".to_string()];
    // The workspace's own sources reach rustc as paths relative to the checkout, so
    // the checkout needs no remapping (and the flags, hence the compiled dependencies,
    // stay the same for every clone); the registry's sources and generated code do.
    // The last prefix that matches wins: the build directory may be in the checkout.
    let remapped: Vec<(PathBuf, &str)> =
        [(cargo_home, "/cargo"), (build_dir.to_path_buf(), "/build")]
            .into_iter()
            .filter(|(from, _)| !from.as_os_str().is_empty())
            .collect();
    for (from, to) in &remapped {
        flags.push(format!("--remap-path-prefix={}={to}", from.display()));
    }
    let started = Instant::now();
    eprintln!("dist: building {target} in {}", build_dir.display());
    // --target keeps RUSTFLAGS off build scripts and proc-macros (which must stay
    // dynamic); a target directory of its own keeps these flags from rebuilding the
    // usual one.
    cmd!(
        sh,
        "cargo build --release --locked -p slipway --bin slipway --target {target}"
    )
    .env("CARGO_TARGET_DIR", build_dir)
    .env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"))
    .env_remove("RUSTFLAGS")
    .env("SLIPWAY_COMMIT", &source.commit)
    .env("SOURCE_DATE_EPOCH", source.epoch.to_string())
    .run()?;
    let bin = build_dir.join(target).join("release/slipway");
    let binary = std::fs::read(&bin).with_context(|| bin.display().to_string())?;
    // No path of this machine is left in the binary.
    for from in remapped.iter().map(|(f, _)| f).chain([&root.to_path_buf()]) {
        let needle = from.as_os_str().as_encoded_bytes();
        if needle.len() > 1 && binary.windows(needle.len()).any(|w| w == needle) {
            bail!(
                "{} contains the local path {}: it would differ from a build elsewhere",
                bin.display(),
                from.display()
            );
        }
    }
    eprintln!(
        "dist: {target} built in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let name = archive_name(slipway::cli::VERSION, target);
    let dir = name.trim_end_matches(".tar.gz").to_string();
    let archive = out.join(&name);
    let tmp = out.join(format!(".{name}.partial"));
    pack(&tmp, &dir, &binary, source.epoch)?;
    std::fs::rename(&tmp, &archive)?;
    Ok(Built {
        archive,
        binary_size: binary.len() as u64,
    })
}

/// `DIR/` and `DIR/slipway` (0755, owner 0:0, mtime `epoch`), gzip with no name and
/// no timestamp: the same binary always makes the same bytes.
fn pack(to: &Path, dir: &str, binary: &[u8], epoch: u64) -> anyhow::Result<()> {
    let file = std::fs::File::create(to).with_context(|| to.display().to_string())?;
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(file, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let header = |kind: tar::EntryType, size: u64| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(epoch);
        h
    };
    let mut h = header(tar::EntryType::Directory, 0);
    tar.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
    let mut h = header(tar::EntryType::Regular, binary.len() as u64);
    tar.append_data(&mut h, format!("{dir}/slipway"), binary)?;
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()?.sync_all()?;
    Ok(())
}

/// `SHA256SUMS`: `<hex>  <file>` per archive in `out`, sorted by name.
fn write_sums(out: &Path, built: &[Built]) -> anyhow::Result<()> {
    let mut lines = vec![];
    for b in built {
        let bytes = std::fs::read(&b.archive)?;
        let name = b.archive.file_name().unwrap().to_string_lossy();
        lines.push(format!("{:x}  {name}\n", Sha256::digest(&bytes)));
    }
    // Archives of other targets built earlier stay listed.
    let sums = out.join("SHA256SUMS");
    if let Ok(old) = std::fs::read_to_string(&sums) {
        for l in old.lines() {
            let name = l.split_whitespace().nth(1).unwrap_or("");
            if !lines.iter().any(|n| n.ends_with(&format!("  {name}\n")))
                && out.join(name).is_file()
            {
                lines.push(format!("{l}\n"));
            }
        }
    }
    lines.sort_by_key(|l| l.split_whitespace().nth(1).unwrap_or("").to_string());
    std::fs::write(&sums, lines.concat())?;
    Ok(())
}

fn size(p: &Path) -> anyhow::Result<u64> {
    Ok(std::fs::metadata(p)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_binary_packs_to_the_same_bytes() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.tar.gz"), d.path().join("b.tar.gz"));
        pack(&a, "slipway-1.0.0-x", b"\x7fELF binary", 1_700_000_000).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        pack(&b, "slipway-1.0.0-x", b"\x7fELF binary", 1_700_000_000).unwrap();
        let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(
            a, b,
            "packing is independent of the time and the file's path"
        );
        // gzip: no mtime (bytes 4..8), no name flag, OS "unknown".
        assert_eq!(&a[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        assert_eq!(a[9], 255);
        // The entries: the directory, then the binary, owned by 0:0, 0755, at the epoch.
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(&a[..]));
        let entries: Vec<_> = t
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("slipway-1.0.0-x/".into(), 0o755, 0, 0, 1_700_000_000),
                ("slipway-1.0.0-x/slipway".into(), 0o755, 0, 0, 1_700_000_000),
            ]
        );
    }

    #[test]
    fn sums_are_sorted_and_keep_other_targets() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("slipway-1-z.tar.gz"), "z").unwrap();
        std::fs::write(
            d.path().join("SHA256SUMS"),
            format!(
                "{:x}  slipway-1-z.tar.gz\n{}  gone.tar.gz\n",
                Sha256::digest(b"z"),
                "0".repeat(64)
            ),
        )
        .unwrap();
        let a = d.path().join("slipway-1-a.tar.gz");
        std::fs::write(&a, "a").unwrap();
        write_sums(
            d.path(),
            &[Built {
                archive: a,
                binary_size: 1,
            }],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("SHA256SUMS")).unwrap(),
            format!(
                "{:x}  slipway-1-a.tar.gz\n{:x}  slipway-1-z.tar.gz\n",
                Sha256::digest(b"a"),
                Sha256::digest(b"z")
            )
        );
    }
}
