//! Marks CI builds (`CI` set and not "false"/"0") with `cfg(slipway_ci)`: tests that
//! need real tools are ignored, with the reason, outside CI and required in CI.
//!
//! Embeds the commit the binary is built from as `SLIPWAY_COMMIT`: the variable of
//! that name when set (`cargo xtask dist` sets it; so can a packager building from a
//! tarball), else `git rev-parse` of the checkout, else "unknown".
//!
//! Embeds the sync helper (`slipway-sync/src/main.rs`, std only) compiled by `rustc`
//! alone as a static binary: `dev` puts it into the dev variant of an image with
//! `[images.NAME.sync]`. Compiled again only when its source changes; without its
//! source or a static libc the embedded helper is empty and `dev` says so.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(slipway_ci)");
    println!("cargo::rerun-if-env-changed=CI");
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if ci {
        println!("cargo::rustc-cfg=slipway_ci");
    }

    println!("cargo::rerun-if-env-changed=SLIPWAY_COMMIT");
    let commit = std::env::var("SLIPWAY_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_string())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo::rustc-env=SLIPWAY_COMMIT={commit}");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let line = if commit == "unknown" {
        format!("{version} (unknown commit)")
    } else {
        format!("{version} (commit {commit})")
    };
    println!("cargo::rustc-env=SLIPWAY_VERSION_LINE={line}");
    sync_helper();
}

/// `$OUT_DIR/slipway-sync`: the helper, static, or an empty file when it cannot be built.
fn sync_helper() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let bin = out.join("slipway-sync");
    let stamp = out.join("slipway-sync.source");
    let src = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("../slipway-sync/src/main.rs");
    println!("cargo::rerun-if-changed={}", src.display());
    let Ok(source) = std::fs::read_to_string(&src) else {
        let _ = std::fs::write(&bin, b"");
        return;
    };
    // Built before from this source (an empty file is a failed build: try again).
    let built = std::fs::metadata(&bin).is_ok_and(|m| m.len() > 0);
    if built && std::fs::read_to_string(&stamp).is_ok_and(|s| s == source) {
        return;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET").unwrap_or_default();
    let out_of = Command::new(rustc)
        .args(["--edition", "2021", "--crate-name", "slipway_sync", "-O"])
        .args(["-C", "target-feature=+crt-static", "-C", "strip=symbols"])
        .args(["--target", &target, "-o"])
        .arg(&bin)
        .arg(&src)
        .output();
    match out_of {
        Ok(o) if o.status.success() => {
            let _ = std::fs::write(&stamp, source);
        }
        failed => {
            let why = match failed {
                Ok(o) => String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .find(|l| l.contains("error"))
                    .unwrap_or("rustc failed")
                    .to_string(),
                Err(e) => e.to_string(),
            };
            println!("cargo::warning=the sync helper did not build (a static libc is needed): `dev` cannot sync files: {why}");
            let _ = std::fs::write(&bin, b"");
            let _ = std::fs::remove_file(&stamp);
        }
    }
}

fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let s = String::from_utf8(o.stdout).ok()?.trim().to_string();
    (o.status.success() && !s.is_empty()).then_some(s)
}

/// The checkout's commit (12 hex digits), rebuilt when HEAD moves; `None` outside a
/// git checkout (a crate tarball) or without git.
fn git_commit() -> Option<String> {
    // This crate's own checkout, not one it happens to be unpacked inside.
    git(&["ls-files", "--error-unmatch", "build.rs"])?;
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    // HEAD, the branch it names, and packed-refs (a missing file would rerun every
    // build, so only existing ones are watched).
    let abs = |p: String| -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join(p)
        }
    };
    let mut watch = vec![];
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        watch.push(abs(head));
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(r) = git(&["rev-parse", "--git-path", &branch]) {
            watch.push(abs(r));
        }
    }
    if let Some(packed) = git(&["rev-parse", "--git-path", "packed-refs"]) {
        watch.push(abs(packed));
    }
    for p in watch.iter().filter(|p| p.is_file()) {
        println!("cargo::rerun-if-changed={}", p.display());
    }
    Some(commit)
}
