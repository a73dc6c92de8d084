//! `cargo xtask bench --builds-only` (and part of every full run): how many `docker
//! build`s should run at the same time on this machine. Three independent contexts
//! of two kinds, each built with `--no-cache` and a fresh build arg: `copy` (the
//! sample's kind: `FROM scratch`, one 8 MB file copied) and `run` (a RUN step that
//! gzips 150 MB, on the offline Debian rootfs image slipway's examples build, when
//! it is here). Per round: one build; two one after another and at once; three one
//! after another, at once, and in two lanes (what a bound of 2 does). The bound in
//! `slipway/src/plan/stages/build_waves.rs` is chosen from these numbers.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

/// The RUN kind's base (built offline by the examples' e2e); without it only the
/// copy kind runs.
const RUN_BASE: &str = "slipway-local/rootfs-redis:bookworm";

const MODES: [&str; 6] = [
    "1",
    "2 serial",
    "2 at once",
    "3 serial",
    "3 at once",
    "3 in 2 lanes",
];

fn docker_build(ctx: &Path, tag: &str, n: u64) -> anyhow::Result<()> {
    let ok = std::process::Command::new("docker")
        .args(["build", "-q", "--no-cache", "--build-arg"])
        .arg(format!("N={n}"))
        .args(["-t", tag])
        .arg(ctx)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("docker build")?
        .success();
    anyhow::ensure!(ok, "docker build of {} failed", ctx.display());
    Ok(())
}

fn contexts(root: &Path, kind: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut v = vec![];
    for i in 1..=3 {
        let dir = root.join(format!("target/bench/builds/{kind}-{i}"));
        std::fs::create_dir_all(&dir)?;
        let dockerfile = if kind == "copy" {
            let bin = dir.join("bin");
            if std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0) != 8_000_000 {
                let bytes: Vec<u8> = (0..8_000_000u32)
                    .map(|x| (x.wrapping_mul(2_654_435_761) >> 13) as u8 ^ i as u8)
                    .collect();
                std::fs::write(&bin, bytes)?;
            }
            format!("FROM scratch\nCOPY bin /bin{i}\nARG N=0\nLABEL n=$N\n")
        } else {
            format!("FROM {RUN_BASE}\nARG N=0\nRUN echo $N && head -c 150000000 /dev/zero | gzip -6 | sha256sum\nCOPY Dockerfile /d{i}\n")
        };
        std::fs::write(dir.join("Dockerfile"), dockerfile)?;
        v.push(dir);
    }
    Ok(v)
}

/// Each mode's times, per kind: `(kind, [samples per mode])`.
pub fn measure(root: &Path, rounds: usize) -> anyhow::Result<Vec<(String, Vec<Vec<f64>>)>> {
    let has_base = std::process::Command::new("docker")
        .args(["image", "inspect", RUN_BASE])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let kinds: &[&str] = if has_base {
        &["copy", "run"]
    } else {
        &["copy"]
    };
    let mut out = vec![];
    let mut n = std::process::id() as u64 * 1000;
    for kind in kinds {
        let ctx = contexts(root, kind)?;
        let tag = |i: usize| format!("slipway-bench/builds-{kind}-{i}");
        let mut next = || {
            n += 1;
            n
        };
        // Warm-up: the base image's layers and the contexts in the engine's cache.
        for (i, c) in ctx.iter().enumerate() {
            docker_build(c, &tag(i), next())?;
        }
        let mut samples: Vec<Vec<f64>> = vec![vec![]; MODES.len()];
        for round in 1..=rounds {
            for (m, mode) in MODES.iter().enumerate() {
                let ns: Vec<u64> = (0..3).map(|_| next()).collect();
                let b = |i: usize| docker_build(&ctx[i], &tag(i), ns[i]);
                let t = Instant::now();
                match *mode {
                    "1" => b(0)?,
                    "2 serial" => (0..2).try_for_each(b)?,
                    "3 serial" => (0..3).try_for_each(b)?,
                    "2 at once" | "3 at once" => {
                        let k = if *mode == "2 at once" { 2 } else { 3 };
                        std::thread::scope(|s| {
                            let hs: Vec<_> = (0..k).map(|i| s.spawn(move || b(i))).collect();
                            hs.into_iter().try_for_each(|h| {
                                h.join().unwrap_or_else(|_| anyhow::bail!("panicked"))
                            })
                        })?
                    }
                    _ => std::thread::scope(|s| {
                        let one = s.spawn(|| b(0).and_then(|_| b(2)));
                        let two = s.spawn(|| b(1));
                        one.join().unwrap_or_else(|_| anyhow::bail!("panicked"))?;
                        two.join().unwrap_or_else(|_| anyhow::bail!("panicked"))
                    })?,
                }
                samples[m].push(t.elapsed().as_secs_f64());
            }
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            eprintln!(
                "[bench] builds ({kind}) round {round}: {} (load {})",
                MODES
                    .iter()
                    .zip(&samples)
                    .map(|(m, s)| format!("{m} {:.2}s", s[round - 1]))
                    .collect::<Vec<_>>()
                    .join(", "),
                load.split_whitespace().next().unwrap_or("?")
            );
        }
        for i in 0..3 {
            let t = tag(i);
            let _ = std::process::Command::new("docker")
                .args(["image", "rm", &t])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        out.push((kind.to_string(), samples));
    }
    Ok(out)
}

/// The measurements as a Markdown table (medians, min–max) and as JSON.
pub fn table(m: &[(String, Vec<Vec<f64>>)]) -> (String, serde_json::Value) {
    let mut t = format!(
        "\n| concurrent `docker build`s ({} rounds) | {} |\n| --- |{}\n",
        m.first().map_or(0, |(_, s)| s[0].len()),
        MODES.join(" | "),
        " --- |".repeat(MODES.len())
    );
    let mut json = serde_json::Map::new();
    for (kind, samples) in m {
        let cells: Vec<String> = samples
            .iter()
            .map(|s| {
                let st = crate::bench::stats_of(s);
                format!("{:.2} s ({:.2}–{:.2})", st.0, st.1, st.2)
            })
            .collect();
        t.push_str(&format!("| {kind} | {} |\n", cells.join(" | ")));
        json.insert(
            kind.clone(),
            MODES
                .iter()
                .zip(samples)
                .map(|(m, s)| (m.to_string(), serde_json::json!(s)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
    }
    (t, json.into())
}
