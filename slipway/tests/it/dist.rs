//! The binary install for teams without Rust: install.sh verifies what it installs
//! against SHA256SUMS, refuses a tampered archive and plain HTTP (tier 2: no Docker,
//! no network), its defaults and `cargo binstall`'s metadata name the archives
//! `cargo xtask dist` writes; and (tier 3) the dist artifacts install and run in a
//! Debian container with no Rust, no Go and no cargo, and the CI image runs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::support::repo;

/// The target install.sh picks on this machine.
fn target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-gnu",
        _ => "x86_64-unknown-linux-gnu",
    }
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn archive() -> String {
    format!("slipway-{VERSION}-{}.tar.gz", target())
}

/// A directory laid out as `cargo xtask dist` leaves target/dist: the archive (holding
/// `binary` as slipway-VERSION-TARGET/slipway) and SHA256SUMS.
fn dist_dir(at: &Path, binary: &Path) -> PathBuf {
    let dist = at.join("dist");
    let stage = at.join("stage");
    let dir = format!("slipway-{VERSION}-{}", target());
    std::fs::create_dir_all(stage.join(&dir)).unwrap();
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::copy(binary, stage.join(&dir).join("slipway")).unwrap();
    let ok = Command::new("tar")
        .arg("-czf")
        .arg(dist.join(archive()))
        .arg("-C")
        .arg(&stage)
        .arg(&dir)
        .status()
        .unwrap();
    assert!(ok.success());
    let bytes = std::fs::read(dist.join(archive())).unwrap();
    std::fs::write(
        dist.join("SHA256SUMS"),
        format!("{:x}  {}\n", Sha256::digest(&bytes), archive()),
    )
    .unwrap();
    dist
}

/// install.sh run by a POSIX shell (dash when installed), offline.
fn install_sh(home: &Path, args: &[&str]) -> Output {
    let shell = which::which("dash").unwrap_or_else(|_| "sh".into());
    Command::new(shell)
        .arg(repo().join("install.sh"))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("TMPDIR", home)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn install_sh_installs_from_a_directory_and_says_what_it_did() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = dist_dir(tmp.path(), Path::new(env!("CARGO_BIN_EXE_slipway")));
    let o = install_sh(tmp.path(), &["--from", dist.to_str().unwrap()]);
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    let bin = tmp.path().join(".local/bin/slipway");
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let version = Command::new(&bin).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    assert!(
        version.starts_with(&format!("slipway {VERSION} (")),
        "{version}"
    );
    assert!(
        all.contains(&format!("verified {} (SHA-256 ", archive())),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "installed {version} to {} (from {})",
            bin.display(),
            dist.display()
        )),
        "{all}"
    );
    assert!(all.contains("is not on your PATH"), "{all}");

    // --prefix, and --version naming the archive explicitly.
    let prefix = tmp.path().join("opt");
    let o = install_sh(
        tmp.path(),
        &[
            "--from",
            dist.to_str().unwrap(),
            "--prefix",
            prefix.to_str().unwrap(),
            "--version",
            VERSION,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(prefix.join("bin/slipway").is_file());
}

#[test]
fn install_sh_refuses_a_tampered_archive_and_installs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = dist_dir(tmp.path(), Path::new(env!("CARGO_BIN_EXE_slipway")));
    // Another binary under the same name, after SHA256SUMS was written.
    let evil = tmp.path().join("evil");
    std::fs::write(&evil, "#!/bin/sh\necho pwned\n").unwrap();
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    dist_dir(tmp.path(), &evil);
    std::fs::write(dist.join("SHA256SUMS"), &sums).unwrap();
    // What was installed before stays.
    let bin = tmp.path().join(".local/bin/slipway");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, "the old one").unwrap();

    let o = install_sh(tmp.path(), &["--from", dist.to_str().unwrap()]);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("{} does not match SHA256SUMS", archive()))
            && all.contains("refusing to install it"),
        "{all}"
    );
    assert_eq!(std::fs::read_to_string(&bin).unwrap(), "the old one");
    assert_eq!(std::fs::read_dir(bin.parent().unwrap()).unwrap().count(), 1);

    // No SHA256SUMS entry for the archive: refused too.
    std::fs::write(dist.join("SHA256SUMS"), "").unwrap();
    let o = install_sh(
        tmp.path(),
        &["--from", dist.to_str().unwrap(), "--version", VERSION],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("has no entry for"), "{}", text(&o));
}

#[test]
fn install_sh_refuses_plain_http() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        vec!["--mirror", "http://127.0.0.1:9/slipway"],
        vec!["--mirror", "ftp://127.0.0.1:9/slipway"],
    ] {
        let o = install_sh(tmp.path(), &args);
        let all = text(&o);
        assert_eq!(o.status.code(), Some(1), "{all}");
        assert!(
            all.contains("only https:// URLs are fetched"),
            "{args:?}: {all}"
        );
    }
    assert!(!tmp.path().join(".local/bin/slipway").exists());
}

/// install.sh's default version is this crate's, its default releases URL is the one
/// `cargo binstall` reads, and both name the archive `cargo xtask dist` writes.
#[test]
fn install_sh_and_binstall_name_the_archives_dist_writes() {
    let script = std::fs::read_to_string(repo().join("install.sh")).unwrap();
    let default = |var: &str| {
        let start = format!("{var}=\"${{{var}:-");
        let line = script
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("install.sh sets no default {var}"));
        line[start.len()..line.len() - 2].to_string()
    };
    assert_eq!(
        default("SLIPWAY_VERSION"),
        VERSION,
        "install.sh's default version"
    );
    let releases = default("SLIPWAY_RELEASES_URL");
    assert!(releases.starts_with("https://"), "{releases}");

    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo().join("slipway/Cargo.toml")).unwrap())
            .unwrap();
    let b = &manifest["package"]["metadata"]["binstall"];
    let render = |t: &str| {
        t.replace("{ version }", VERSION)
            .replace("{ target }", target())
            .replace("{ bin }", "slipway")
            .replace("{ binary-ext }", "")
    };
    assert_eq!(
        render(b["pkg-url"].as_str().unwrap()),
        format!("{releases}/v{VERSION}/{}", archive())
    );
    assert_eq!(
        render(b["bin-dir"].as_str().unwrap()),
        format!("slipway-{VERSION}-{}/slipway", target())
    );
    assert_eq!(b["pkg-fmt"].as_str(), Some("tgz"));
    // xtask's dist names its archives the same way (xtask/src/dist.rs).
    let dist = std::fs::read_to_string(repo().join("xtask/src/dist.rs")).unwrap();
    assert!(
        dist.contains(r#"format!("slipway-{version}-{target}.tar.gz")"#),
        "xtask dist's archive name changed: update install.sh, binstall and this test"
    );
}

// ---------------------------------------------------------------- tier 3

fn require_docker() {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "docker is required for this test: .ci/run provides it (README.md, Running the tests)"
    );
}

/// `cargo xtask ARGS` from the repository root; its output, whatever the outcome.
fn xtask(args: &[&str]) -> (Output, f64) {
    let started = Instant::now();
    // dist's release build in slipway's cache: a clean clone reuses the compiled
    // dependencies of the last run (only slipway itself is compiled again).
    let build = slipway::tools::provision::cache_root()
        .expect("HOME is set")
        .join("dist-build");
    let o = Command::new(env!("CARGO"))
        .arg("xtask")
        .args(args)
        .env("SLIPWAY_DIST_BUILD_DIR", build)
        .current_dir(repo())
        .output()
        .unwrap();
    (o, started.elapsed().as_secs_f64())
}

/// A container removed when dropped, whatever the test outcome.
struct Container(String);

impl Container {
    fn exec(&self, script: &str) -> Output {
        Command::new("docker")
            .args(["exec", "-w", "/src", &self.0, "sh", "-c", script])
            .output()
            .unwrap()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "bin" && e.file_name() != "target" {
                copy_tree(&e.path(), &dest);
            }
        } else if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The sample's pipeline and what it reads (no build output).
fn sample_project(to: &Path) {
    let r = repo();
    std::fs::create_dir_all(to).unwrap();
    for f in ["pipeline.toml", "Cargo.toml", "Cargo.lock", ".env.example"] {
        std::fs::copy(r.join(f), to.join(f)).unwrap();
    }
    for d in ["helm", "scripts", "services/sample"] {
        copy_tree(&r.join(d), &to.join(d));
    }
}

/// `cargo xtask ci-image` builds the dist artifacts, the offline Debian base and the
/// CI image; `dist --reproduce` gives the same bytes again. In a container of that
/// base (no Rust, no Go, no cargo, no network), install.sh installs the artifacts, and
/// slipway answers --version, plans the sample's pipeline and runs its preflight,
/// which names the missing tools and fails as preflight does (not a crash). The CI
/// image runs slipway.
#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs a Docker engine, cargo, and Debian's mirror for the first base image (minutes cold); runs in CI (CI=true) or with --ignored"
)]
fn the_binary_installs_and_runs_where_there_is_no_rust() {
    require_docker();
    let (o, took) = xtask(&["ci-image"]);
    let log = text(&o);
    assert!(o.status.success(), "cargo xtask ci-image failed:\n{log}");
    eprintln!("cargo xtask ci-image: {took:.0}s\n{log}");
    let ci_image_took = took;
    let (o, took) = xtask(&["dist", "--reproduce"]);
    let log = text(&o);
    assert!(o.status.success(), "cargo xtask dist --reproduce:\n{log}");
    assert!(log.contains("dist: reproducible"), "{log}");
    eprintln!("cargo xtask dist --reproduce: {took:.0}s");

    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let dist = target_dir.join("dist");
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    assert!(sums.contains(&archive()), "{sums}");
    let size = std::fs::metadata(dist.join(archive())).unwrap().len();
    eprintln!("{}: {size} bytes", archive());
    assert!(size < 8 << 20, "the archive is {size} bytes");
    // The numbers docs/benchmarks.md quotes, printed by .ci/run.
    let binary = dist_binary_size(&log);
    std::fs::write(
        repo().join("target/e2e-report-dist.txt"),
        format!(
            "{}: {size} bytes (binary {binary}); cargo xtask ci-image (dist, base image, CI image) {ci_image_took:.0} s; cargo xtask dist --reproduce {took:.0} s: same bytes\n",
            archive()
        ),
    )
    .unwrap();

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    sample_project(&src);
    let mount = |from: &Path, to: &str, ro: bool| {
        format!("{}:{to}{}", from.display(), if ro { ":ro" } else { "" })
    };
    let id = Command::new("docker")
        .args(["run", "-d", "--network", "none", "-v"])
        .arg(mount(&dist, "/dist", true))
        .arg("-v")
        .arg(mount(&repo().join("install.sh"), "/install.sh", true))
        .arg("-v")
        .arg(mount(&src, "/src", false))
        .args(["slipway-local/rootfs-ci:bookworm", "sleep", "600"])
        .output()
        .unwrap();
    assert!(id.status.success(), "{}", text(&id));
    let c = Container(String::from_utf8_lossy(&id.stdout).trim().to_string());

    let none = c.exec("command -v cargo || command -v rustc || command -v go || command -v docker || command -v kind");
    assert!(!none.status.success(), "the base has {}", text(&none));

    let o = c.exec("sh /install.sh --from /dist");
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    assert!(
        all.contains("installed slipway ") && all.contains("to /root/.local/bin/slipway"),
        "{all}"
    );

    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    let commit = String::from_utf8_lossy(&commit.stdout).trim().to_string();
    let o = c.exec("/root/.local/bin/slipway --version");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("slipway {VERSION} (commit {commit})"),
        "{}",
        text(&o)
    );

    let o = c.exec("/root/.local/bin/slipway plan");
    let plan = text(&o);
    assert!(o.status.success(), "{plan}");
    for needle in [
        "kind create cluster",
        "docker build",
        "helm upgrade --install",
    ] {
        assert!(plan.contains(needle), "plan lacks {needle}:\n{plan}");
    }

    let o = c.exec("/root/.local/bin/slipway preflight");
    let pre = text(&o);
    eprintln!("preflight in the container:\n{pre}");
    assert_eq!(
        o.status.code(),
        Some(slipway::model::Stage::Preflight.exit_code()),
        "{pre}"
    );
    assert!(!pre.contains("panicked"), "{pre}");
    // Plain output (no terminal): each failed check is "check TOOL: FAILED …".
    for tool in ["docker", "kind", "helm", "kubectl"] {
        assert!(
            pre.lines()
                .any(|l| l.contains(&format!("check {tool}: FAILED"))
                    && l.contains("not found on PATH")),
            "preflight does not name {tool}:\n{pre}"
        );
    }
    assert!(pre.contains(" preflight checks failed"), "{pre}");

    // The CI image: slipway and its self-check, offline.
    let image = format!("slipway-local/slipway-ci:{VERSION}");
    let o = Command::new("docker")
        .args(["run", "--rm", "--network", "none", &image])
        .output()
        .unwrap();
    let check = text(&o);
    assert!(o.status.success(), "{check}");
    assert!(
        check.starts_with(&format!("slipway {VERSION} (commit {commit})")),
        "{check}"
    );
    assert!(check.contains("/usr/local/bin/slipway"), "{check}");
    assert!(
        check
            .lines()
            .any(|l| l.trim_start().starts_with("docker ") && l.contains("missing")),
        "{check}"
    );
    let o = Command::new("docker")
        .args(["run", "--rm", "--network", "none", &image, "sh", "-c"])
        .arg("command -v cargo || command -v rustc || command -v go || command -v docker || command -v curl")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "/usr/bin/curl",
        "the CI image holds curl (slipway's downloads) and no toolchain"
    );
}

/// The binary's size as `cargo xtask dist` prints it ("slipway binary N KiB"), or
/// "not printed".
fn dist_binary_size(log: &str) -> String {
    log.lines()
        .find_map(|l| {
            let i = l.find("slipway binary ")?;
            let n: String = l[i + "slipway binary ".len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            (!n.is_empty()).then(|| format!("{n} KiB"))
        })
        .unwrap_or_else(|| "not printed".into())
}
