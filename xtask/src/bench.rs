//! `cargo xtask bench`: a no-change redeploy with slipway against what a Makefile
//! does on every `make deploy` (rebuild the binary, docker build, kind load,
//! `helm upgrade --install --wait`, rollout status, port-forward, `sleep 3`, curl),
//! on the same real kind cluster, alternating, in one run. Prints each round, the
//! medians with min/max and the ratio, and writes target/bench.json.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use xshell::{cmd, Shell};

use slipway::config::{self, LoadOptions};
use slipway::model::Job;
use slipway::plan::{self, Action, PlanOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Measured rounds of each side
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(samples: &[f64]) -> Stats {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Stats {
        median,
        min: s[0],
        max: s[n - 1],
    }
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

pub fn run(g: &slipway::cli::Global, a: Args) -> anyhow::Result<()> {
    let root = crate::root();
    let profile = g.profile.clone().unwrap_or_else(|| "e2e".into());
    let sh = Shell::new()?;
    sh.change_dir(&root);
    sh.set_var("CI", "1");
    if std::env::var_os("SAMPLE_API_TOKEN").is_none() {
        sh.set_var("SAMPLE_API_TOKEN", "bench-token-value");
    }
    if cmd!(sh, "curl --version")
        .quiet()
        .ignore_stdout()
        .run()
        .is_err()
    {
        cmd!(sh, "apt-get install -y -qq curl")
            .quiet()
            .ignore_stdout()
            .run()?;
    }

    // What the baseline runs comes from slipway's own plan: same image reference,
    // same helm arguments, same cluster.
    let pipeline = config::load(&LoadOptions {
        file: root.join("pipeline.toml"),
        profile: Some(profile.clone()),
        vars: None,
    })
    .map_err(|e| anyhow!("{e}"))?;
    let mut opts = PlanOptions::new(Job::DeployLocal);
    if let Some(v) = slipway::run::tool_cache::cached("helm") {
        opts.helm = slipway::tools::helm::Dialect::detected(&v);
    }
    let p = plan::build(&pipeline, &opts).map_err(|e| anyhow!("{e}"))?;
    let cluster = p.cluster.clone();
    let context = p.context.clone();
    let Baseline {
        reference,
        ns,
        helm_args,
    } = baseline_inputs(&p)?;

    let exe = std::env::current_exe()?;
    let slipway = |args: &[&str]| -> anyhow::Result<()> {
        cmd!(sh, "{exe} --profile {profile} {args...} -q")
            .quiet()
            .ignore_stdout()
            .run()?;
        Ok(())
    };
    let baseline = || -> anyhow::Result<()> {
        cmd!(
            sh,
            "scripts/build-static.sh sample services/sample/bin/sample"
        )
        .quiet()
        .ignore_stderr()
        .run()?;
        cmd!(sh, "docker build -q -t {reference} services/sample")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()?;
        cmd!(sh, "kind load docker-image {reference} --name {cluster}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()?;
        let helm_args = &helm_args;
        cmd!(sh, "helm {helm_args...} --wait")
            .quiet()
            .ignore_stdout()
            .run()?;
        cmd!(
            sh,
            "kubectl --context {context} -n {ns} rollout status deployment/sample --timeout=180s"
        )
        .quiet()
        .ignore_stdout()
        .run()?;
        // The port-forward runs in the background, as a Makefile's `&` does.
        let mut pf = std::process::Command::new("kubectl")
            .args([
                "--context",
                &context,
                "-n",
                &ns,
                "port-forward",
                "service/sample",
                "18199:80",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_secs(3));
        let r = (|| -> anyhow::Result<()> {
            cmd!(sh, "curl -fsS http://127.0.0.1:18199/healthz")
                .quiet()
                .ignore_stdout()
                .run()?;
            cmd!(sh, "curl -fsS http://127.0.0.1:18199/version")
                .quiet()
                .ignore_stdout()
                .run()?;
            Ok(())
        })();
        let _ = pf.kill();
        let _ = pf.wait();
        r
    };

    let clusters = cmd!(sh, "kind get clusters")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    let created = !clusters.lines().any(|l| l.trim() == cluster);
    eprintln!(
        "[bench] warm-up: deploy-local --profile {profile} (creates cluster {cluster} if missing)"
    );
    slipway(&["deploy-local"])?;
    let result = (|| -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
        eprintln!("[bench] warm-up: baseline");
        baseline()?;
        let (mut s, mut b) = (vec![], vec![]);
        for i in 1..=a.rounds.max(1) {
            let st = timed(|| slipway(&["deploy-local"]))?;
            let bt = timed(baseline)?;
            eprintln!(
                "[bench] round {i}: slipway no-change deploy-local {st:.2}s, baseline {bt:.2}s"
            );
            s.push(st);
            b.push(bt);
        }
        Ok((s, b))
    })();
    if created {
        let _ = slipway(&["down", "--cluster"]);
    }
    let (s, b) = result?;
    let (ss, bs) = (stats(&s), stats(&b));
    println!(
        "no-change redeploy, {} rounds: slipway median {:.2}s (min {:.2}, max {:.2}); baseline median {:.2}s (min {:.2}, max {:.2}); baseline/slipway = {:.1}x",
        s.len(), ss.median, ss.min, ss.max, bs.median, bs.min, bs.max, bs.median / ss.median
    );
    let json = serde_json::json!({
        "scenario": "no-change redeploy",
        "rounds": s.len(),
        "slipway_s": {"median": ss.median, "min": ss.min, "max": ss.max, "samples": s},
        "baseline_s": {"median": bs.median, "min": bs.min, "max": bs.max, "samples": b},
        "ratio_baseline_over_slipway": bs.median / ss.median,
    });
    let out = root.join("target/bench.json");
    std::fs::create_dir_all(out.parent().unwrap_or(&root))?;
    std::fs::write(&out, serde_json::to_string_pretty(&json)?)?;
    eprintln!("[bench] wrote {}", out.display());
    Ok(())
}

/// What the baseline script is given, taken from slipway's own plan.
struct Baseline {
    reference: String,
    ns: String,
    helm_args: Vec<String>,
}

fn baseline_inputs(p: &plan::Plan) -> anyhow::Result<Baseline> {
    let reference = p
        .images
        .first()
        .context("the pipeline has no image")?
        .reference
        .clone();
    let helm = p
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Upgrade { cmd, .. } => Some(cmd.clone()),
            _ => None,
        })
        .context("the plan has no helm upgrade")?;
    let ns = helm
        .args
        .iter()
        .skip_while(|a| *a != "--namespace")
        .nth(1)
        .cloned()
        .context("helm upgrade has no --namespace")?;
    let helm_args = helm
        .args
        .iter()
        .filter(|a| !a.starts_with("--description"))
        .cloned()
        .collect();
    Ok(Baseline {
        reference,
        ns,
        helm_args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's baseline is read off the plan of this repository's pipeline.
    #[test]
    fn the_baseline_comes_from_the_plan() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let pipeline = config::load(&LoadOptions {
            file: root.join("pipeline.toml"),
            profile: Some("e2e".into()),
            vars: Some(config::Vars::new(Default::default(), Default::default())),
        })
        .unwrap();
        let p = plan::build(&pipeline, &PlanOptions::new(Job::DeployLocal)).unwrap();
        let b = baseline_inputs(&p).unwrap();
        assert_eq!(b.ns, "slipway-sample");
        assert!(
            b.reference.starts_with("slipway/sample:c-"),
            "{}",
            b.reference
        );
        assert_eq!(
            &b.helm_args[..4],
            ["upgrade", "--install", "sample", "helm/sample"]
        );
    }
}
