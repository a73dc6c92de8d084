//! What a person sees (tiers 1 and 2): the terminal output of a first deploy, a
//! no-change deploy, a failure and a Ctrl-C — through a pseudo-terminal (`script(1)`),
//! rendered by a terminal emulator (`vt100`) so spinners leave only what stays on the
//! screen — and the default plan, kept as insta snapshots. Timings, temporary paths,
//! content tags and digests are masked by insta filters; everything else is compared
//! as written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::json;
use slipway::config::{self, LoadOptions, Vars};
use slipway::model::Job;
use slipway::plan::{self, LocalFacts, PlanOptions};

use crate::fake_tools::argv_matches;
use crate::plan_snapshots::assert_plan;
use crate::support::{repo, Sandbox};

/// A terminal run's output: the exit code and the screen as it is left.
pub(crate) struct Screen {
    pub(crate) code: Option<i32>,
    pub(crate) text: String,
}

/// `slipway ARGS` in the sandbox on a pseudo-terminal (stdout and stderr both on
/// it), as a person runs it: not CI, no colour (NO_COLOR), 100 columns.
pub(crate) fn tty_command(s: &Sandbox, args: &[&str]) -> Command {
    tty_command_sized(s, args, None)
}

/// [`tty_command`] on a terminal of `(rows, columns)` (`stty` sets the size before
/// slipway starts): what redraws lines in place needs to know where they wrap.
pub(crate) fn tty_command_sized(s: &Sandbox, args: &[&str], size: Option<(u16, u16)>) -> Command {
    let base = s.command(args);
    let mut c = Command::new("script");
    let mut line = shell_words::join(
        std::iter::once(env!("CARGO_BIN_EXE_slipway")).chain(args.iter().copied()),
    );
    if let Some((rows, cols)) = size {
        line = format!("stty rows {rows} cols {cols} && exec {line}");
    }
    c.args(["--quiet", "--return", "--command", &line, "/dev/null"])
        .current_dir(&s.project)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in base.get_envs() {
        if let (Some(v), false) = (v, k == "CI") {
            c.env(k, v);
        }
    }
    c.env("TERM", "xterm")
        .env("COLUMNS", "100")
        .env("LINES", "50");
    c
}

/// What the bytes a terminal received leave on its screen.
pub(crate) fn screen_of(bytes: &[u8]) -> String {
    screen_of_sized(bytes, 2000, 400)
}

/// [`screen_of`] on a screen of `rows` and `cols`.
pub(crate) fn screen_of_sized(bytes: &[u8], rows: u16, cols: u16) -> String {
    let mut p = vt100::Parser::new(rows, cols, 0);
    p.process(bytes);
    let text = p.screen().contents();
    text.trim_end().to_string()
}

fn tty(s: &Sandbox, args: &[&str]) -> Screen {
    let o = tty_command(s, args).output().expect("script(1) runs");
    Screen {
        code: o.status.code(),
        text: screen_of(&o.stdout),
    }
}

/// Masks what varies between runs and machines.
macro_rules! assert_screen {
    ($name:expr, $text:expr) => {
        insta::with_settings!({filters => vec![
            // A duration and the padding before it (right-aligned in a column).
            (r" +\d+\.\ds\b", " <t>"),
            (r"\b\d+ ms\b", "<ms>"),
            (r"/tmp/\.tmp\w+", "<sandbox>"),
            (r"\bc-[0-9a-f]{12}\b", "<content-tag>"),
            (r"sha256:[0-9a-f]{12,64}\b", "sha256:<id>"),
            (r"digest [0-9a-f]{16}(\.[0-9a-f]+)?\b", "digest <digest>"),
            (r"diagnosis/[0-9TZ:.-]+-", "diagnosis/<time>-"),
            (r"\bage \d+\w+( \d+\w+)? *", "age <age> "),
            // Secrets' keyed digests in helm's description (the key is random).
            (r"\b([a-z0-9.-]+)=[0-9a-f]{16}\b", "$1=<keyed-digest>"),
            // Where a Ctrl-C lands (a read, or the wait between two) words the
            // error and decides whether it has a command and output.
            (r"error\[(\w+)\]: [^\n]*interrupted[^\n]*", "error[$1]: <interrupted>"),
            (r"\n  command: kubectl [^\n]*(\n  output \(last \d+ lines?\):(\n    \|[^\n]*)*)?", ""),
            (r"127\.0\.0\.1:\d+", "127.0.0.1:<port>"),
        ]}, {
            insta::assert_snapshot!($name, $text);
        })
    };
}
pub(crate) use assert_screen;

#[test]
fn a_first_deploy_then_a_no_change_deploy_then_status() {
    let s = Sandbox::new();
    let first = tty(&s, &["deploy-local"]);
    assert_eq!(first.code, Some(0), "{}", first.text);
    assert_screen!("first_deploy", &first.text);
    let again = tty(&s, &["deploy-local"]);
    assert_eq!(again.code, Some(0), "{}", again.text);
    // One line per stage, each message once, no check's attempts when it took one.
    for stage in ["preflight", "render", "build", "deploy", "smoke"] {
        let lines = again
            .text
            .lines()
            .filter(|l| l.starts_with(&format!("✓ {stage} ")))
            .count();
        assert_eq!(lines, 1, "{stage}:\n{}", again.text);
    }
    assert_eq!(
        again.text.matches("is already built").count(),
        1,
        "{}",
        again.text
    );
    assert!(!again.text.contains("attempt"), "{}", again.text);
    assert_screen!("no_change_deploy", &again.text);
    // A read-only command prints its answer, not a stage table.
    let status = tty(&s, &["status"]);
    assert_eq!(status.code, Some(0), "{}", status.text);
    assert!(status.text.starts_with("release web"), "{}", status.text);
    assert!(!status.text.contains("total"), "{}", status.text);
    assert!(!status.text.contains("✓ status"), "{}", status.text);
    assert_screen!("status", &status.text);
}

#[test]
fn a_failed_upgrade_says_what_it_left_and_what_to_run_next() {
    let s = Sandbox::new();
    assert_eq!(tty(&s, &["deploy-local"]).code, Some(0));
    s.rule(json!({"tool": "helm", "match": ["upgrade"], "stderr": "Error: UPGRADE FAILED: the chart says no\n", "exit": 1}));
    let o = tty(&s, &["deploy-local", "--force"]);
    assert_eq!(o.code, Some(15), "{}", o.text);
    let tail: Vec<&str> = o.text.lines().rev().take(3).collect();
    assert_eq!(
        tail,
        vec![
            "next: fix what the error says, then `slipway deploy-local` again",
            "  release web: revision 1 deployed, not changed by this run",
            "left in the cluster:",
        ],
        "{}",
        o.text
    );
    assert_screen!("failed_upgrade", &o.text);
}

/// Workloads of release web as `kubectl get … -o json` shows them mid-rollout: one
/// of two pods ready.
fn half_rolled_out() -> String {
    json!({"items": [{
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "apps", "generation": 2,
                     "annotations": {"meta.helm.sh/release-name": "web"}},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
                   "readyReplicas": 1, "availableReplicas": 1}
    }]})
    .to_string()
}

#[test]
fn ctrl_c_during_the_rollout_says_the_revision_helm_recorded_and_both_ways_on() {
    let s = Sandbox::new();
    assert_eq!(tty(&s, &["deploy-local"]).code, Some(0));
    s.rule(json!({"tool": "kubectl", "match": ["daemonsets,jobs"], "stdout": half_rolled_out()}));
    let reads = s.count("daemonsets,jobs");
    let mut c = tty_command(&s, &["deploy-local", "--force"])
        .spawn()
        .expect("script(1) runs");
    let mut out = c.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut b = vec![];
        let _ = out.read_to_end(&mut b);
        b
    });
    // Two reads of the workloads: the tracker has seen one of two pods ready.
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.count("daemonsets,jobs") < reads + 2 {
        assert!(Instant::now() < deadline, "the rollout never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ctrl-C as a terminal sends it: the interrupt character on the terminal.
    c.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let status = c.wait().unwrap();
    let text = screen_of(&reader.join().unwrap());
    assert_eq!(status.code(), Some(130), "{text}");
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    assert_eq!(
        tail,
        vec![
            "next: `slipway deploy-local` again to resume the checks (the upgrade is recorded and is skipped), or `slipway rollback web` to return to revision 1",
            "  release web: revision 2 deployed (helm recorded it); pods 1/2 ready",
            "left in the cluster:",
        ],
        "{text}"
    );
    assert_screen!("ctrl_c_during_rollout", &text);
}

/// `plan` on a terminal: the default text.
#[test]
fn the_plan_on_a_terminal() {
    let s = Sandbox::new();
    let o = tty(&s, &["plan"]);
    assert_eq!(o.code, Some(0), "{}", o.text);
    assert_screen!("plan_on_a_terminal", &o.text);
}

// ---------------------------------------------------------------- the default plan

fn sample_plan(file: &Path, profile: Option<&str>, local: Option<LocalFacts>) -> plan::Plan {
    let p = config::load(&LoadOptions {
        file: file.to_path_buf(),
        profile: profile.map(String::from),
        vars: Some(Vars::new(BTreeMap::new(), BTreeMap::new())),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let opts = PlanOptions {
        now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        local,
        ..PlanOptions::new(Job::DeployLocal)
    };
    plan::build(&p, &opts).unwrap()
}

/// The machine of issue 27: every tool on PATH at a remembered version that will
/// do, the cluster's context in the kubeconfig.
fn provisioned_machine() -> LocalFacts {
    let bin = PathBuf::from("/home/me/.cache/slipway/toolchain/bin");
    let mut f = LocalFacts::default();
    for (tool, v) in [
        ("docker", "28.2.2"),
        ("kind", "0.30.0"),
        ("helm", "4.3.1"),
        ("kubectl", "1.34.13"),
        ("minikube", "1.38.1"),
    ] {
        let path = if tool == "docker" {
            PathBuf::from("/usr/bin/docker")
        } else {
            bin.join(tool)
        };
        f.on_path.insert(tool.into(), (path, Some(v.into())));
    }
    f.contexts = BTreeSet::from(["kind-slipway".to_string(), "minikube-slipway".to_string()]);
    f
}

/// The sample's default plan fits on two screens (80 lines) on a machine with its
/// tools and cluster, and on one where nothing was read; it keeps every command
/// that is always run, and names the rest on one line each.
#[test]
fn the_samples_default_plan_fits_two_screens() {
    let file = repo().join("pipeline.toml");
    for (what, local) in [
        ("provisioned", Some(provisioned_machine())),
        ("nothing read", None),
    ] {
        let p = sample_plan(&file, Some("local-kind"), local);
        let text = p.to_text();
        let lines = text.lines().count();
        assert!(lines <= 80, "{what}: {lines} lines\n{text}");
        let verbose = p.to_text_verbose().lines().count();
        assert!(
            verbose > lines,
            "{what}: --verbose shows more ({verbose} lines)"
        );
        for always in [
            "docker info",
            "helm upgrade --install sample",
            "get pods --output json",
            "port-forward --address 127.0.0.1 service/sample",
            "if missing: ",
        ] {
            assert!(text.contains(always), "{what}: no `{always}`\n{text}");
        }
        for hidden in ["curl ", "toolchain.sh", "kind-node-image.sh", "logs {POD}"] {
            assert!(!text.contains(hidden), "{what}: `{hidden}` shown\n{text}");
        }
    }
    let p = sample_plan(&file, Some("local-kind"), Some(provisioned_machine()));
    let text = p.to_text();
    assert!(
        text.contains("# kind 0.30.0 at /home/me/.cache/slipway/toolchain/bin/kind will do"),
        "{text}"
    );
    assert!(
        !text.contains("kind version"),
        "a remembered version is not asked: {text}"
    );
    assert!(
        !text.contains("kind create cluster --name slipway --config - '--wait=180s' <<<"),
        "{text}"
    );
    assert_plan!(text);
}

/// Nothing on PATH, nothing cached: provisioning will run, so it is shown in full.
#[test]
fn a_tool_that_will_be_provisioned_is_shown_in_full() {
    let mut f = provisioned_machine();
    f.on_path.remove("kind");
    let p = sample_plan(
        &repo().join("pipeline.toml"),
        Some("local-kind"),
        Some(f.clone()),
    );
    let text = p.to_text();
    assert!(text.contains("# kind >= 0.20.0"), "{text}");
    assert!(text.contains("toolchain.sh kind"), "{text}");
    // Cached and recorded in the manifest: used (its SHA-256 checked by the run).
    let v = serde_json::to_value(&p).unwrap();
    let cached = v["steps"][0]["action"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tool"] == "kind")
        .and_then(|t| t["supply"]["path"].as_str())
        .map(PathBuf::from)
        .expect("kind's place in slipway's cache");
    f.cached.insert(cached.clone(), Some("0.30.0".into()));
    let p = sample_plan(&repo().join("pipeline.toml"), Some("local-kind"), Some(f));
    let text = p.to_text();
    assert!(!text.contains("toolchain.sh kind"), "{text}");
    assert!(
        text.contains(&format!(
            "# kind 0.30.0 at {} (slipway's cache, SHA-256 checked against its manifest first): not on PATH",
            cached.display()
        )),
        "{text}"
    );
}

#[test]
fn minikubes_default_plan() {
    let p = sample_plan(
        &repo().join("pipeline.toml"),
        Some("local-minikube"),
        Some(provisioned_machine()),
    );
    assert_plan!(p.to_text());
}

#[test]
fn an_examples_default_plan() {
    let p = sample_plan(
        &repo().join("examples/multi/pipeline.toml"),
        None,
        Some(provisioned_machine()),
    );
    let text = p.to_text();
    assert!(text.lines().count() <= 80, "{text}");
    assert_plan!(text);
}

// ------------------------------------------------- the plan lists what the run spawns

/// Every command as the plan's text names it: lines, backquoted commands and what
/// follows "if missing: ", split into words (a here-string or heredoc left out).
fn planned_commands(text: &str) -> Vec<Vec<String>> {
    let mut out = vec![];
    let mut add = |s: &str| {
        if let Ok(mut words) = shell_words::split(s.trim()) {
            if let Some(i) = words.iter().position(|w| w == "<<<" || w.starts_with("<<")) {
                words.truncate(i);
            }
            while words.first().is_some_and(|w| {
                w.contains('=')
                    && !w.starts_with('-')
                    && w.split('=')
                        .next()
                        .unwrap()
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_')
            }) {
                words.remove(0);
            }
            if !words.is_empty() {
                out.push(words);
            }
        }
    };
    for line in text.lines() {
        if !line.starts_with('#') {
            add(line.split("  # ").next().unwrap());
        }
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 1 {
                add(part);
            }
        }
        if let Some((_, rest)) = line.split_once("if missing: ") {
            add(rest
                .split(" from ")
                .next()
                .unwrap()
                .split("; ")
                .next()
                .unwrap());
        }
    }
    out
}

/// What the fakes ran since call `from`: each tool and its argv.
fn spawned_since(s: &Sandbox, from: usize) -> Vec<(String, Vec<String>)> {
    let calls = s.calls();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut out = vec![];
    for c in calls
        .iter()
        .skip(from)
        .filter(|c| c.get("signal").is_none())
    {
        if let Some(argv) = c.get("argv").and_then(|a| a.as_array()) {
            out.push((text(&c["tool"]), argv.iter().map(text).collect()));
        }
    }
    out
}

/// Every command a first and a no-change `deploy-local` spawn is in the default
/// text of the `plan` made just before it (only `{PLACEHOLDER}`s differ).
#[test]
fn every_command_a_run_spawns_is_in_its_default_plan() {
    let s = Sandbox::new();
    for round in ["first", "no change"] {
        let plan = s.run(&["plan"]);
        assert_eq!(plan.code, 0, "{}", plan.stderr);
        let planned = planned_commands(&plan.stdout);
        let before = s.calls().len();
        let o = s.run(&["deploy-local"]);
        assert_eq!(o.code, 0, "{round}: {}", o.stderr);
        let spawned = spawned_since(&s, before);
        assert!(spawned.len() > 5, "{round}: {spawned:?}");
        for (tool, argv) in &spawned {
            let found = planned.iter().any(|p| {
                Path::new(&p[0])
                    .file_name()
                    .is_some_and(|n| n == tool.as_str())
                    && argv_matches(&p[1..], argv)
            });
            assert!(
                found,
                "{round}: ran `{tool} {}`, which the plan does not show:\n{}",
                argv.join(" "),
                plan.stdout
            );
        }
    }
}
