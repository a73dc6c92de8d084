//! Tier 2: `slipway --version` names the commit, and `self-check` reports where each
//! tool comes from — PATH, slipway's cache, or missing — without failing or starting
//! anything.

use std::os::unix::fs::symlink;

use serde_json::Value;

use crate::support::{repo, Sandbox};

#[test]
fn version_names_the_version_and_the_commit() {
    let s = Sandbox::new();
    let o = s.run(&["--version"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let line = o.stdout.trim();
    let want = format!("slipway {} (", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&want), "{line}");
    // Built from this checkout: its commit (build.rs), as `git rev-parse` says.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(h) => assert_eq!(line, format!("{want}commit {h})"), "{line}"),
        None => assert!(line.ends_with("unknown commit)"), "{line}"),
    }
}

#[test]
fn self_check_reports_path_cache_and_missing_tools_without_failing() {
    let s = Sandbox::new();
    // kind: only in slipway's cache; minikube: nowhere; helm on PATH and in the cache.
    s.remove_tool("kind");
    s.remove_tool("minikube");
    let bin = s.dir.path().join(".cache/slipway/toolchain/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = repo().join("slipway/tests/it/support/fake_tool.py");
    symlink(&fake, bin.join("kind-v0.30.0")).unwrap();
    symlink(&fake, bin.join("helm-v4.3.1")).unwrap();

    let o = s.run(&["self-check"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let text = &o.stdout;
    let line = |tool: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{tool} ")))
            .unwrap_or_else(|| panic!("no {tool} line:\n{text}"))
            .to_string()
    };
    assert!(
        text.starts_with(&format!("slipway {} (", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(
        line("docker").contains(&format!("27.3.1 at {}/docker (PATH)", s.bin.display())),
        "{text}"
    );
    assert!(
        line("kind").contains(&format!(
            "0.30.0 at {}/kind-v0.30.0 (slipway's cache)",
            bin.display()
        )),
        "{text}"
    );
    assert_eq!(
        line("minikube").trim(),
        "minikube   missing: not on PATH, not in slipway's cache (a run provisions v1.38.1)",
        "{text}"
    );
    let helm = line("helm");
    assert!(
        helm.contains("(PATH)") && helm.contains("4.3.1 at") && helm.contains("(slipway's cache)"),
        "{text}"
    );
    assert!(line("engine").contains("answers: server 27.3.1"), "{text}");
    assert!(
        line("cache").contains(&s.dir.path().join(".cache/slipway").display().to_string()),
        "{text}"
    );
    assert!(
        line("pipeline").contains("loads: project"),
        "the fixture's pipeline.toml, found from its directory:\n{text}"
    );
    // Nothing was provisioned, built or started: every call asked a version (or
    // `docker info`).
    let calls = s.calls();
    assert!(calls.len() >= 6, "{calls:?}");
    for c in &calls {
        assert!(
            ["version", "--version", "info"].contains(&c["argv"][0].as_str().unwrap_or("")),
            "self-check ran {} {}",
            c["tool"],
            c["argv"]
        );
    }

    // The same as JSON, for tools that read it.
    let o = s.run(&["--output", "json", "self-check"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let tools = v["tools"].as_array().unwrap();
    let minikube = tools.iter().find(|t| t["tool"] == "minikube").unwrap();
    assert!(minikube["path"].is_null() && minikube["cache"].is_null());
    let kind = tools.iter().find(|t| t["tool"] == "kind").unwrap();
    assert_eq!(kind["cache"]["version"], "0.30.0");
}

#[test]
fn self_check_without_any_tool_or_pipeline_still_answers() {
    let s = Sandbox::new();
    for t in crate::support::TOOLS {
        s.remove_tool(t);
    }
    let empty = s.dir.path().join("elsewhere");
    std::fs::create_dir_all(&empty).unwrap();
    // Only the sandbox's PATH (curl and python3 are left): the machine's own docker and
    // kubectl in /usr/bin would otherwise be found.
    let o = s
        .command(&["self-check"])
        .current_dir(&empty)
        .env("PATH", &s.bin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for t in crate::support::TOOLS {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{t} "))
                    && l.contains("missing: not on PATH")),
            "{t}:\n{text}"
        );
    }
    assert!(text.contains("not found: no pipeline.toml in"), "{text}");
    assert!(
        !text.contains("engine"),
        "no docker, no engine line:\n{text}"
    );
}

/// build.rs outside a git checkout (a crate tarball): the build still works and the
/// binary says "unknown commit"; SLIPWAY_COMMIT (what `cargo xtask dist` sets) wins.
#[test]
fn a_build_outside_a_checkout_says_unknown_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("build-script");
    let o = std::process::Command::new("rustc")
        .args(["--edition", "2021", "-o"])
        .arg(&exe)
        .arg(repo().join("slipway/build.rs"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let crate_dir = tmp.path().join("slipway-0.2.0");
    std::fs::create_dir_all(&crate_dir).unwrap();
    std::fs::copy(repo().join("slipway/build.rs"), crate_dir.join("build.rs")).unwrap();
    let run = |commit: Option<&str>| {
        let mut c = std::process::Command::new(&exe);
        c.env("CARGO_MANIFEST_DIR", &crate_dir)
            .env("CARGO_PKG_VERSION", "0.2.0")
            .env_remove("SLIPWAY_COMMIT")
            .env("GIT_CEILING_DIRECTORIES", tmp.path());
        if let Some(s) = commit {
            c.env("SLIPWAY_COMMIT", s);
        }
        let o = c.output().unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = run(None);
    assert!(
        out.contains("cargo::rustc-env=SLIPWAY_COMMIT=unknown\n")
            && out.contains("cargo::rustc-env=SLIPWAY_VERSION_LINE=0.2.0 (unknown commit)\n"),
        "{out}"
    );
    let out = run(Some("0123456789ab"));
    assert!(
        out.contains("cargo::rustc-env=SLIPWAY_VERSION_LINE=0.2.0 (commit 0123456789ab)\n"),
        "{out}"
    );
}
