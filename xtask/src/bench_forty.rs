//! `cargo xtask bench --services N [--services M …]`: how slipway's cost grows with
//! the number of services (issue #24), against Skaffold on the same generated
//! fixture (`cargo xtask gen-fixture`), on one kind cluster of its own.
//!
//! Per N and side: **cold** (the cluster is up, the releases are not installed and
//! no image of the sources exists: every service's source gets a fresh nonce),
//! **no-change** (the same again), **one changed** (one leaf service's source
//! edited), the **first output** of a no-change run (time to the first byte on
//! stdout or stderr) and slipway's **peak memory** (its own VmHWM, read from /proc
//! while it runs; helm and kubectl are other processes). Each side has its own
//! namespace and its own edits (so neither finds the other's build in Docker's
//! cache). Skaffold runs with build and helm concurrency unbounded
//! (`concurrency: 0`) and the same `dependsOn`, inputDigest tags, Helm 3.
//! One round per scenario (a cold run at N = 40 takes minutes). Prints a table and
//! writes `target/bench-forty.json`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

/// The kind cluster the scenarios share.
const CLUSTER: &str = "slipway-forty";

/// What one run took.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
struct Run {
    wall: f64,
    first_output: f64,
    /// kB (VmHWM); 0 when not measured.
    peak_kb: u64,
}

/// Run `c`, timing it, its first output and its own peak memory.
fn measure(mut c: Command) -> anyhow::Result<Run> {
    let t = Instant::now();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn")?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let mut readers = vec![];
    let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    for mut pipe in [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ] {
        let tx = tx.clone();
        let out = out.clone();
        readers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut first = true;
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if first {
                    let _ = tx.send(Instant::now());
                    first = false;
                }
                out.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }));
    }
    let mut peak = 0u64;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        if let Some(s) = child.try_wait()? {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = t.elapsed().as_secs_f64();
    for r in readers {
        let _ = r.join();
    }
    drop(tx);
    let first = rx
        .iter()
        .min()
        .map_or(wall, |i| i.duration_since(t).as_secs_f64());
    if !status.success() {
        let text = String::from_utf8_lossy(&out.lock().unwrap()).into_owned();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        bail!(
            "{c:?} failed ({status}):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(Run {
        wall,
        first_output: first,
        peak_kb: peak,
    })
}

/// Each service's source gets `note` (a new image for every one).
fn stamp_all(dir: &Path, n: usize, note: &str) -> anyhow::Result<()> {
    for i in 0..n {
        let name = crate::fixture::name(i);
        std::fs::write(
            dir.join("services").join(&name).join("service.txt"),
            format!("{name}\n{note}\n"),
        )?;
    }
    Ok(())
}

/// The last service (a leaf: nothing needs it) gets `note`.
fn stamp_one(dir: &Path, n: usize, note: &str) -> anyhow::Result<()> {
    let name = crate::fixture::name(n - 1);
    let f = dir.join("services").join(&name).join("service.txt");
    let mut t = std::fs::read_to_string(&f)?;
    t.push_str(note);
    t.push('\n');
    Ok(std::fs::write(f, t)?)
}

#[derive(Default, serde::Serialize)]
struct Row {
    n: usize,
    cold: [Run; 2],
    no_change: [Run; 2],
    one_changed: [Run; 2],
}

pub fn run(ns: &[usize], no_skaffold: bool) -> anyhow::Result<()> {
    let root = crate::root();
    let sh = Shell::new()?;
    sh.change_dir(&root);
    let exe = std::env::current_exe()?;
    let binary = crate::fixture::sample_binary()?;
    let skaffold = if no_skaffold {
        None
    } else {
        let out = cmd!(sh, "bash xtask/recipes/skaffold.sh").read()?;
        Some(PathBuf::from(out.lines().last().unwrap_or("").trim()))
    };
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
    let helm3 = std::env::var_os("SLIPWAY_HELM3_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache/slipway/toolchain/helm3"));
    let path = format!(
        "{}:{}:{}",
        helm3.display(),
        home.join(".cache/slipway/toolchain/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let context = format!("kind-{CLUSTER}");
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    );
    let work = root.join("target/bench-forty");
    let slipway = |dir: &Path, args: &[&str]| {
        let mut c = Command::new(&exe);
        c.arg("--config")
            .arg(dir.join("pipeline.toml"))
            .args(args)
            .env("CI", "1")
            .env("PATH", &path);
        c
    };
    let skaffold_cmd = |dir: &Path, verb: &str| -> Option<Command> {
        let bin = skaffold.as_ref()?;
        let mut c = Command::new(bin);
        c.current_dir(dir)
            .args([verb, "-f", "skaffold.yaml", "--kube-context", &context])
            .args(["--update-check=false", "--interactive=false"])
            .env("PATH", &path)
            .env("SKAFFOLD_UPDATE_CHECK", "false");
        if verb == "run" {
            c.args([
                "--status-check=true",
                "--tail=false",
                "--port-forward=off",
                "--cache-artifacts=true",
            ]);
        }
        Some(c)
    };
    let mut rows: Vec<Row> = vec![];
    for &n in ns {
        let dir = work.join(format!("n{n}"));
        crate::fixture::generate(&dir, n, CLUSTER, &binary, &root.join("helm/sample"))?;
        // Skaffold's side, for the cluster as slipway leaves it (a local registry
        // advertised once it is built: see `bench::skaffold_for_cluster`).
        let sk = dir.join("skaffold.yaml");
        let yaml = std::fs::read_to_string(&sk)?;
        std::fs::write(
            &sk,
            crate::bench::skaffold_for_cluster(yaml, crate::bench::registry_built()),
        )?;
        eprintln!("[bench-forty] N = {n}: fixture in {}", dir.display());
        // The cluster (created on the first N) and a clean slate.
        measure(slipway(&dir, &["deploy-local", "-q", "--only", "svc01"]))?;
        measure(slipway(&dir, &["down", "-q"]))?;
        if let Some(c) = skaffold_cmd(&dir, "delete") {
            let _ = measure(c);
        }
        let mut row = Row {
            n,
            ..Row::default()
        };
        let sides: Vec<usize> = if skaffold.is_some() {
            vec![0, 1]
        } else {
            vec![0]
        };
        for &side in &sides {
            let run = |args: &[&str]| -> anyhow::Result<Run> {
                if side == 0 {
                    measure(slipway(&dir, args))
                } else {
                    measure(skaffold_cmd(&dir, "run").expect("skaffold"))
                }
            };
            let who = ["slipway", "skaffold"][side];
            stamp_all(&dir, n, &format!("cold {nonce} {who}"))?;
            eprintln!("[bench-forty] N = {n}, {who}: cold");
            row.cold[side] = run(&["deploy-local"])?;
            eprintln!("[bench-forty] N = {n}, {who}: no-change");
            row.no_change[side] = run(&["deploy-local"])?;
            stamp_one(&dir, n, &format!("one {nonce} {who}"))?;
            eprintln!("[bench-forty] N = {n}, {who}: one changed");
            row.one_changed[side] = run(&["deploy-local"])?;
        }
        eprintln!(
            "[bench-forty] N = {n}: {}",
            serde_json::to_string(&row).unwrap_or_default()
        );
        // Leave the cluster empty for the next N.
        measure(slipway(&dir, &["down", "-q"]))?;
        if let Some(c) = skaffold_cmd(&dir, "delete") {
            let _ = measure(c);
        }
        rows.push(row);
    }
    print_table(&rows, skaffold.is_some());
    std::fs::write(
        root.join("target/bench-forty.json"),
        serde_json::to_string_pretty(&rows.iter().map(|r| serde_json::json!({
            "n": r.n, "cold": r.cold, "no_change": r.no_change, "one_changed": r.one_changed,
        })).collect::<Vec<_>>())?,
    )?;
    eprintln!("[bench-forty] the cluster {CLUSTER} stays up: `kind delete cluster --name {CLUSTER}` removes it");
    Ok(())
}

fn print_table(rows: &[Row], skaffold: bool) {
    let ratio = |s: f64, k: f64| {
        if skaffold && s > 0.0 {
            format!("{:.1}×", k / s)
        } else {
            "-".into()
        }
    };
    println!("\n| scenario | N | slipway | Skaffold | Skaffold / slipway |");
    println!("|---|---:|---:|---:|---:|");
    for r in rows {
        for (name, runs) in [
            ("cold deploy", r.cold),
            ("no-change redeploy", r.no_change),
            ("one service changed", r.one_changed),
        ] {
            println!(
                "| {name} | {} | {:.1} s | {} | {} |",
                r.n,
                runs[0].wall,
                if skaffold {
                    format!("{:.1} s", runs[1].wall)
                } else {
                    "-".into()
                },
                ratio(runs[0].wall, runs[1].wall)
            );
        }
        println!(
            "| first output (no-change) | {} | {:.2} s | {} | {} |",
            r.n,
            r.no_change[0].first_output,
            if skaffold {
                format!("{:.2} s", r.no_change[1].first_output)
            } else {
                "-".into()
            },
            ratio(r.no_change[0].first_output, r.no_change[1].first_output)
        );
        let peak = |side: usize| {
            let kb = r.cold[side]
                .peak_kb
                .max(r.no_change[side].peak_kb)
                .max(r.one_changed[side].peak_kb);
            format!("{:.0} MB", kb as f64 / 1024.0)
        };
        println!(
            "| peak memory (the tool's own process) | {} | {} | {} | |",
            r.n,
            peak(0),
            if skaffold { peak(1) } else { "-".into() }
        );
    }
}
