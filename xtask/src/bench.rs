//! `cargo xtask bench`: slipway against Skaffold and against what a Makefile does on
//! every `make deploy`, on the same real kind cluster, the same chart and values, the
//! same sample, alternating round by round in one run. Each side has its own release
//! and namespace, so no tool sees another's upgrade. Scenarios:
//!
//! - **no-change redeploy**: nothing changed since the last deploy;
//! - **one-line edit → new pods serving**: a string in the sample's source changes;
//!   the clock stops when the Service answers `/version` from the new image;
//! - **cold deploy**: the cluster is up, the release is not installed and no image of
//!   the source exists (a fresh edit): build, load, install, until it serves;
//! - **dev loop**: `slipway dev` and `skaffold dev` each running; a one-line edit →
//!   new pods serving, timed from the file write (one loop at a time: both would
//!   react to the same edit; the baseline has no loop);
//! - **values change**: one chart value changes; the clock stops when the tool
//!   returns (each waits for its rollout);
//! - **two images**: the umbrella example, both images changed at once;
//! - **dev loop with sync**: `slipway dev` with `[images.sample.sync]` (profile
//!   `<profile>-dev-sync`): a one-line edit of `/healthz`'s answer → every answer is the
//!   new one, timed from the file write; the compile, copy and restart come from the
//!   loop's own line. Skaffold's `sync` copies files with `tar` in the container, which
//!   the sample's `FROM scratch` image does not have, so it cannot sync here: its side
//!   is `skaffold dev`'s rebuild loop on the same edit;
//! - **delivery**: `kind load` against the local registry for a one-layer change to
//!   a 200 MB image (see [`delivery`]); slipway's two delivery modes, not the tools.
//!
//! Skaffold v2.16.1 is built from the Go module proxy once (`xtask/recipes/skaffold.sh`,
//! cached) and runs with `inputDigest` tags and a helm deploy. Its artifact is a
//! custom build (the static binary, then `docker build`) that declares the same
//! inputs slipway's content tag hashes, so its tag covers the source and `skaffold
//! dev` rebuilds on a source edit (with a `before` hook, Skaffold computes the tag
//! before the hook runs and deploys the previous binary). It runs with
//! Helm 3: with Helm 4 it stops at once (`helm version --client`: "unknown flag:
//! --client"). It builds with the docker CLI without BuildKit (this engine has no
//! buildx). The baseline has no `sleep`: it polls the port-forward. Prints a table of medians (min–max) with ratios and writes
//! `target/bench.json`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use xshell::{cmd, Shell};

use slipway::config::{self, LoadOptions};
use slipway::model::Job;
use slipway::plan::{self, Action, PlanOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Measured rounds of each scenario and side
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Leave Skaffold out (no Go build of it)
    #[arg(long)]
    no_skaffold: bool,
    /// Only the delivery scenario (kind load vs the local registry)
    #[arg(long)]
    delivery_only: bool,
    /// Only the concurrent-builds measurement (serial vs parallel `docker build`)
    #[arg(long)]
    builds_only: bool,
    /// Only these scenarios (repeatable): no-change, edit, cold, dev, dev-sync, values,
    /// two-images
    #[arg(long, value_parser = ["no-change", "edit", "cold", "dev", "dev-sync", "values", "two-images"])]
    scenario: Vec<String>,
    /// The many-services scenarios instead (repeatable: `--services 1 --services
    /// 10`): cold, no-change and one-changed deploys of a generated fixture of N
    /// services, slipway against Skaffold, first output and peak memory (see
    /// bench_forty.rs)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=200))]
    services: Vec<u16>,
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

/// (median, min, max) of `samples`.
pub fn stats_of(samples: &[f64]) -> (f64, f64, f64) {
    let s = stats(samples);
    (s.median, s.min, s.max)
}

fn timed(f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

const SIDES: [&str; 3] = ["slipway", "skaffold", "baseline"];
const EDITED: &str = "services/sample/src/main.rs";
const EDIT_MARK: &str = "\"listening on {addr}";

/// The sample's source with a changed string; put back when dropped. Each run's
/// edits are its own (a nonce), so no image a previous run built can match them.
struct Edit {
    path: PathBuf,
    original: String,
    nonce: String,
}

impl Edit {
    fn new(root: &Path) -> anyhow::Result<Edit> {
        let path = root.join(EDITED);
        let original = std::fs::read_to_string(&path)?;
        if !original.contains(EDIT_MARK) {
            bail!("{EDITED} no longer contains {EDIT_MARK}: update the benchmark's edit");
        }
        Ok(Edit {
            path,
            original,
            nonce: nonce(),
        })
    }

    fn apply(&self, n: usize) -> anyhow::Result<()> {
        let text = self.original.replacen(
            EDIT_MARK,
            &format!("\"[bench edit {}-{n}] listening on {{addr}}", self.nonce),
            1,
        );
        Ok(std::fs::write(&self.path, text)?)
    }
}

impl Drop for Edit {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.original);
    }
}

/// This run's own mark in its edits.
fn nonce() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    )
}

/// The sample's `/healthz` answer changed (`ok sync-NONCE-N`), for the sync scenario;
/// put back when dropped.
struct HealthzEdit(Edit);

const HEALTHZ_EDITED: &str = "services/sample/src/app.rs";
const HEALTHZ_MARK: &str = r#"get(|| async { "ok\n" })"#;

impl HealthzEdit {
    fn new(root: &Path) -> anyhow::Result<HealthzEdit> {
        let path = root.join(HEALTHZ_EDITED);
        let original = std::fs::read_to_string(&path)?;
        if !original.contains(HEALTHZ_MARK) {
            bail!(
                "{HEALTHZ_EDITED} no longer contains {HEALTHZ_MARK}: update the benchmark's edit"
            );
        }
        Ok(HealthzEdit(Edit {
            path,
            original,
            nonce: nonce(),
        }))
    }

    /// Write the `n`th edit; the answer it makes.
    fn apply(&self, n: usize) -> anyhow::Result<String> {
        let body = format!("ok sync-{}-{n}", self.0.nonce);
        let text = self.0.original.replacen(
            HEALTHZ_MARK,
            &format!(r#"get(|| async {{ "{body}\n" }})"#),
            1,
        );
        std::fs::write(&self.0.path, text)?;
        Ok(body)
    }
}

/// One tool's release: its name, namespace and Service.
struct Target {
    release: String,
    ns: String,
}

pub fn run(g: &slipway::cli::Global, a: Args) -> anyhow::Result<()> {
    if !a.services.is_empty() {
        let ns: Vec<usize> = a.services.iter().map(|n| usize::from(*n)).collect();
        return crate::bench_forty::run(&ns, a.no_skaffold);
    }
    let root = crate::root();
    if a.builds_only {
        let (t, _) =
            crate::bench_builds::table(&crate::bench_builds::measure(&root, a.rounds.max(1))?);
        println!("{t}");
        return Ok(());
    }
    let profile = g.profile.clone().unwrap_or_else(|| "e2e".into());
    let sh = Shell::new()?;
    sh.change_dir(&root);
    sh.set_var("CI", "1");
    if std::env::var_os("SAMPLE_API_TOKEN").is_none() {
        sh.set_var("SAMPLE_API_TOKEN", "bench-token-value");
    }
    let token = sh.var("SAMPLE_API_TOKEN")?;
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

    // The chart, values and cluster come from slipway's own plan.
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
    let base = baseline_inputs(&p)?;
    let repository = base
        .reference
        .rsplit_once(':')
        .map(|(r, _)| r.to_string())
        .context("image reference has no tag")?;

    let skaffold = if a.no_skaffold || a.delivery_only {
        None
    } else {
        let out = cmd!(sh, "bash xtask/recipes/skaffold.sh").read()?;
        Some(PathBuf::from(out.lines().last().unwrap_or("").trim()))
    };
    // Skaffold's helm: Helm 3 (see the module docs).
    let helm3 = std::env::var_os("SLIPWAY_HELM3_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/slipway/toolchain/helm3"))
        })
        .context("HOME is not set")?;
    let skaffold_path = format!(
        "{}:{}",
        helm3.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let exe = std::env::current_exe()?;
    let targets = [
        Target {
            release: "sample".into(),
            ns: base.ns.clone(),
        },
        Target {
            release: "sample-skaffold".into(),
            ns: "slipway-bench-skaffold".into(),
        },
        Target {
            release: "sample-baseline".into(),
            ns: "slipway-bench-baseline".into(),
        },
    ];
    let bench_dir = root.join("target/bench");
    std::fs::create_dir_all(&bench_dir)?;
    let skaffold_yaml = bench_dir.join("skaffold.yaml");
    let skaffold_build = bench_dir.join("skaffold-build.sh");
    std::fs::write(&skaffold_build, SKAFFOLD_BUILD)?;
    let inputs: Vec<String> = pipeline
        .images
        .first()
        .context("the pipeline has no image")?
        .inputs()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let write_skaffold_yaml = |greeting: &str| -> anyhow::Result<()> {
        let t = &targets[1];
        std::fs::write(
            &skaffold_yaml,
            SkaffoldYaml {
                root: &root,
                artifacts: vec![(String::new(), repository.clone())],
                build: &skaffold_build,
                inputs: &inputs,
                release: &t.release,
                ns: &t.ns,
                chart: "helm/sample",
                values: side_values(&base.values, greeting)
                    .into_iter()
                    .map(|(_, k, v)| (k, v))
                    .collect(),
            }
            .render_for_cluster(),
        )?;
        Ok(())
    };
    let mut seq = 0u64;

    // The critical path of slipway's last deploy-local (its NDJSON `critical_path`
    // event): where each scenario's time went, printed under the table.
    let last_path: std::cell::RefCell<Option<String>> = Default::default();
    let slipway = |greeting: &str| -> anyhow::Result<()> {
        let out = cmd!(sh, "{exe} --profile {profile} --output json deploy-local")
            .env("SAMPLE_GREETING", greeting)
            .quiet()
            .read()?;
        *last_path.borrow_mut() = critical_line(out.lines());
        Ok(())
    };
    let build_binary = || -> anyhow::Result<()> {
        cmd!(
            sh,
            "scripts/build-static.sh sample services/sample/bin/sample"
        )
        .quiet()
        .ignore_stderr()
        .run()?;
        Ok(())
    };
    let run_skaffold = |greeting: &str| -> anyhow::Result<()> {
        let Some(bin) = &skaffold else { return Ok(()) };
        write_skaffold_yaml(greeting)?;
        cmd!(
            sh,
            "{bin} run -f {skaffold_yaml} --kube-context {context} --update-check=false --interactive=false --status-check=true --tail=false --port-forward=off --label skaffold.dev/run-id=bench"
        )
        .env("PATH", &skaffold_path)
        .env("SKAFFOLD_UPDATE_CHECK", "false")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()?;
        Ok(())
    };
    let mut baseline = |greeting: &str| -> anyhow::Result<()> {
        let t = &targets[2];
        // A Makefile tags each build so that a changed binary rolls the pods.
        seq += 1;
        let reference = format!("{repository}:baseline-{}-{seq}", std::process::id());
        build_binary()?;
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
        let args = baseline_helm_args(&base, &t.release, &t.ns, &reference, greeting);
        cmd!(sh, "helm {args...} --wait")
            .quiet()
            .ignore_stdout()
            .run()?;
        let deploy = format!("deployment/{}", t.release);
        let ns = &t.ns;
        cmd!(
            sh,
            "kubectl --context {context} -n {ns} rollout status {deploy} --timeout=180s"
        )
        .quiet()
        .ignore_stdout()
        .run()?;
        // The port-forward runs in the background, as a Makefile's `&` does; then
        // curl until it answers (no sleep).
        let mut pf = std::process::Command::new("kubectl")
            .args(["--context", &context, "-n", ns, "port-forward"])
            .arg(format!("service/{}", t.release))
            .arg("18199:80")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let r = (|| -> anyhow::Result<()> {
            let end = Instant::now() + Duration::from_secs(30);
            loop {
                let ok = cmd!(sh, "curl -fsS http://127.0.0.1:18199/healthz")
                    .quiet()
                    .ignore_stdout()
                    .ignore_stderr()
                    .run()
                    .is_ok();
                if ok {
                    break;
                }
                if Instant::now() > end {
                    bail!("the baseline's port-forward never answered");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
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
    let proxy_dir =
        std::env::temp_dir().join(format!("slipway-bench-proxy-{}", std::process::id()));
    let proxy_socket = proxy_dir.join("proxy.sock");
    // What `/version` says through the API server's service proxy, asked through one
    // `kubectl proxy` (a kubectl per poll would load the 2 cores it measures).
    let image_tag = |t: &Target| -> String {
        let (ns, svc) = (&t.ns, &t.release);
        let path = format!("/api/v1/namespaces/{ns}/services/{svc}:80/proxy/version");
        http_get(&proxy_socket, &path)
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v["image_tag"].as_str().map(String::from))
            .unwrap_or_default()
    };
    // Every answer of `path` through the Service is `body` (ten in a row: both pods).
    let answers_only = |t: &Target, path: &str, body: &str| -> anyhow::Result<()> {
        let (ns, svc) = (&t.ns, &t.release);
        let url = format!("/api/v1/namespaces/{ns}/services/{svc}:80/proxy/{path}");
        let end = Instant::now() + Duration::from_secs(300);
        let mut streak = 0;
        while streak < 10 {
            if Instant::now() > end {
                bail!("{} never answered {body:?} on /{path}", t.release);
            }
            match http_body(&proxy_socket, &url) {
                Some(b) if b.trim() == body => streak += 1,
                _ => {
                    streak = 0;
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Ok(())
    };
    let serving_new = |t: &Target, before: &str| -> anyhow::Result<()> {
        let end = Instant::now() + Duration::from_secs(180);
        while image_tag(t) == before {
            if Instant::now() > end {
                bail!("{} never served the new image", t.release);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    };

    let clusters = cmd!(sh, "kind get clusters")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    let created = !clusters.lines().any(|l| l.trim() == cluster);
    let greeting0 = "hello from slipway";
    eprintln!("[bench] warm-up: slipway deploy-local --profile {profile} (creates cluster {cluster} if missing)");
    slipway(greeting0)?;
    // kubectl proxy carries the deployer's credentials: it serves on a unix socket
    // in a new directory only this user can enter, never on a TCP port (which every
    // local user could reach). A directory already there is refused (create_dir).
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&proxy_dir)
            .with_context(|| format!("create {}", proxy_dir.display()))?;
    }
    // Removed when the benchmark returns, after the proxy (declared before it).
    let _proxy_dir = RemoveDirOnDrop(proxy_dir.clone());
    let mut c = std::process::Command::new("kubectl");
    c.args(["--context", &context, "proxy"])
        .arg(format!("--unix-socket={}", proxy_socket.display()));
    // Stopped when the benchmark returns (dropped).
    let mut _proxy = DevLoop::start("kubectl proxy", c)?;
    _proxy.wait_for("Starting to serve", Duration::from_secs(30))?;
    for t in &targets[1..] {
        let manifest = secret_manifest(&t.ns, &token);
        cmd!(sh, "kubectl --context {context} apply --server-side -f -")
            .stdin(manifest)
            .quiet()
            .ignore_stdout()
            .run()?;
    }

    // Every scenario, unless some are named.
    let want = |s: &str| a.scenario.is_empty() || a.scenario.iter().any(|x| x == s);
    let only = |s: &str| a.scenario.len() == 1 && a.scenario[0] == s;
    let mut results: Vec<Scenario> = vec![];
    // The sync rounds' own split (compile, copy + restart, smoke), from the loop.
    let mut sync_split: Vec<String> = vec![];
    // kind load vs the local registry for a one-layer change (see `delivery`).
    let mut delivered: Option<[Vec<f64>; 2]> = None;
    // slipway's own share of each dev round (see `own_share`).
    let mut dev_share: Vec<f64> = vec![];
    let result = (|| -> anyhow::Result<()> {
        if a.delivery_only {
            delivered = Some(delivery(&sh, &root, &cluster, a.rounds.max(1))?);
            return Ok(());
        }
        if !only("dev-sync") {
            eprintln!("[bench] warm-up: baseline and skaffold");
            baseline(greeting0)?;
            run_skaffold(greeting0)?;
        }

        let edit = Edit::new(&root)?;
        let mut n = 0;
        let mut r: [Vec<f64>; 3] = Default::default();
        for i in 1..=a.rounds.max(1) {
            if !want("no-change") {
                break;
            }
            r[0].push(timed(|| slipway(greeting0))?);
            if skaffold.is_some() {
                r[1].push(timed(|| run_skaffold(greeting0))?);
            }
            r[2].push(timed(|| baseline(greeting0))?);
            eprintln!("[bench] no-change round {i}: {}", round_line(&r));
        }
        if want("no-change") {
            results.push(("no-change redeploy", r, last_path.take()));
        }

        let mut r: [Vec<f64>; 3] = Default::default();
        for i in 1..=a.rounds.max(1) {
            if !want("edit") {
                break;
            }
            for side in 0..3 {
                if side == 1 && skaffold.is_none() {
                    continue;
                }
                n += 1;
                let before = image_tag(&targets[side]);
                let t = Instant::now();
                edit.apply(n)?;
                match side {
                    0 => slipway(greeting0)?,
                    1 => run_skaffold(greeting0)?,
                    _ => baseline(greeting0)?,
                }
                serving_new(&targets[side], &before)?;
                r[side].push(t.elapsed().as_secs_f64());
            }
            eprintln!("[bench] edit round {i}: {}", round_line(&r));
        }
        if want("edit") {
            results.push(("one-line edit -> new pods serving", r, last_path.take()));
        }

        // Cold: the cluster is up, the release is not installed and no image of
        // this source exists (a fresh edit): build, load, install, serve.
        let mut r: [Vec<f64>; 3] = Default::default();
        for i in 1..=a.rounds.max(1) {
            if !want("cold") {
                break;
            }
            for side in 0..3 {
                if side == 1 && skaffold.is_none() {
                    continue;
                }
                let t = &targets[side];
                if side == 0 {
                    cmd!(sh, "{exe} --profile {profile} down -q")
                        .quiet()
                        .run()?;
                } else {
                    let (rel, ns) = (&t.release, &t.ns);
                    cmd!(
                        sh,
                        "helm uninstall {rel} -n {ns} --kube-context {context} --wait"
                    )
                    .quiet()
                    .ignore_stdout()
                    .run()?;
                }
                n += 1;
                edit.apply(n)?;
                let began = Instant::now();
                match side {
                    0 => slipway(greeting0)?,
                    1 => run_skaffold(greeting0)?,
                    _ => baseline(greeting0)?,
                }
                serving_new(t, "")?;
                r[side].push(began.elapsed().as_secs_f64());
            }
            eprintln!("[bench] cold round {i}: {}", round_line(&r));
        }
        if want("cold") {
            results.push((
                "cold deploy (cluster up, no release, no image)",
                r,
                last_path.take(),
            ));
        }

        // The dev loops: `slipway dev` and `skaffold dev` each watch the source; an
        // edit -> new pods serving, timed from the write. One loop runs at a time
        // (both would react to the same edit).
        let mut r: [Vec<f64>; 3] = Default::default();
        let mut shares: Vec<f64> = vec![];
        let mut dev_path: Option<String> = None;
        let mut dev_rounds = |side: usize, mut dev: DevLoop, idle: &str| -> anyhow::Result<()> {
            dev.wait_for(idle, Duration::from_secs(600))?;
            for i in 1..=a.rounds.max(1) {
                n += 1;
                let before = image_tag(&targets[side]);
                let began = Instant::now();
                edit.apply(n)?;
                serving_new(&targets[side], &before)?;
                r[side].push(began.elapsed().as_secs_f64());
                let round = dev.wait_for(idle, Duration::from_secs(120))?;
                let share = own_share(&round);
                shares.extend(share);
                if side == 0 {
                    dev_path = critical_line(&round);
                }
                eprintln!(
                    "[bench] {} round {i}: {:.2}s{}",
                    dev.name,
                    r[side][i - 1],
                    share.map_or(String::new(), |s| format!(" (slipway's own share {s:.2}s)"))
                );
            }
            Ok(())
        };
        let mut c = std::process::Command::new(&exe);
        c.args(["--profile", &profile, "--output", "json", "dev"])
            .current_dir(&root)
            .env("CI", "1")
            // The Shell's variables are not this process's: without .env the loop's
            // child would miss the sample's secret.
            .env("SAMPLE_API_TOKEN", &token)
            .env("SAMPLE_GREETING", greeting0);
        if want("dev") {
            dev_rounds(0, DevLoop::start("slipway dev", c)?, "watching")?;
        }
        if let Some(bin) = skaffold
            .as_ref()
            .filter(|_| want("dev") || want("dev-sync"))
        {
            write_skaffold_yaml(greeting0)?;
            let mut c = std::process::Command::new(bin);
            c.arg("dev")
                .arg("-f")
                .arg(&skaffold_yaml)
                .args([
                    "--kube-context",
                    &context,
                    "--update-check=false",
                    "--status-check=true",
                    "--tail=false",
                    "--port-forward=off",
                    "--cleanup=false",
                    "--trigger=notify",
                ])
                .current_dir(&root)
                .env("PATH", &skaffold_path)
                .env("SKAFFOLD_UPDATE_CHECK", "false");
            dev_rounds(
                1,
                DevLoop::start("skaffold dev", c)?,
                "Watching for changes",
            )?;
        }
        // Skaffold cannot sync into the sample's scratch image (its sync needs `tar`
        // in the container): its side of the sync scenario is this rebuild loop.
        let skaffold_dev = r[1].clone();
        if want("dev") {
            results.push(("dev loop: edit -> new pods serving", r, dev_path));
            dev_share = shares;
        }

        if want("dev-sync") {
            let sync_profile = format!("{profile}-dev-sync");
            let healthz = HealthzEdit::new(&root)?;
            let mut r: [Vec<f64>; 3] = Default::default();
            r[1] = skaffold_dev;
            let mut c = std::process::Command::new(&exe);
            c.args(["--profile", &sync_profile, "--output", "json", "dev"])
                .current_dir(&root)
                .env("CI", "1")
                .env("SAMPLE_API_TOKEN", &token)
                .env("SAMPLE_GREETING", greeting0);
            let mut dev = DevLoop::start("slipway dev (sync)", c)?;
            dev.wait_for("watching", Duration::from_secs(600))?;
            for i in 1..=a.rounds.max(1) {
                n += 1;
                let began = Instant::now();
                let body = healthz.apply(n)?;
                answers_only(&targets[0], "healthz", &body)?;
                r[0].push(began.elapsed().as_secs_f64());
                let round = dev.wait_for("watching", Duration::from_secs(300))?;
                let said = |needle: &str| {
                    round.iter().find_map(|l| {
                        let v: serde_json::Value = serde_json::from_str(l).ok()?;
                        let m = v["message"].as_str()?;
                        m.contains(needle).then(|| m.to_string())
                    })
                };
                if let Some(full) = said("full round") {
                    bail!("the sync scenario took the full round: {full}");
                }
                let split = said(" pod(s) in ").unwrap_or_default();
                eprintln!(
                    "[bench] slipway dev (sync) round {i}: {:.2}s ({split})",
                    r[0][i - 1]
                );
                sync_split.push(split);
            }
            drop(dev);
            drop(healthz);
            results.push((
                "dev loop with sync: edit -> new code serving (Skaffold: its rebuild loop)",
                r,
                None,
            ));
        }
        drop(edit);

        if !a.scenario.is_empty() && !want("values") && !want("two-images") {
            return Ok(());
        }
        let mut r: [Vec<f64>; 3] = Default::default();
        for i in 1..=a.rounds.max(1) {
            if !want("values") {
                break;
            }
            let greeting = format!("bench greeting {i}");
            r[0].push(timed(|| slipway(&greeting))?);
            if skaffold.is_some() {
                r[1].push(timed(|| run_skaffold(&greeting))?);
            }
            r[2].push(timed(|| baseline(&greeting))?);
            eprintln!("[bench] values round {i}: {}", round_line(&r));
        }
        if want("values") {
            results.push(("values change", r, last_path.take()));
        }
        if !want("two-images") {
            return Ok(());
        }

        // Two images changed at once: the umbrella example (examples/multi), whose
        // api and worker images are both built from the sample's source. The clock
        // stops when both Services answer from their new images.
        let multi = multi_inputs(&root, &profile, &opts)?;
        let multi_targets = [
            Target {
                release: multi.release.clone(),
                ns: multi.ns.clone(),
            },
            Target {
                release: "multi-skaffold".into(),
                ns: targets[1].ns.clone(),
            },
            Target {
                release: "multi-baseline".into(),
                ns: targets[2].ns.clone(),
            },
        ];
        let services = |t: &Target| -> [Target; 2] {
            ["api", "worker"].map(|a| Target {
                release: format!("{}-{a}", t.release),
                ns: t.ns.clone(),
            })
        };
        let multi_file = root.join("examples/multi/pipeline.toml");
        let multi_yaml = bench_dir.join("skaffold-multi.yaml");
        std::fs::write(
            &multi_yaml,
            SkaffoldYaml {
                root: &root,
                artifacts: ["api.", "worker."]
                    .iter()
                    .map(|p| p.to_string())
                    .zip(multi.repositories.iter().cloned())
                    .collect(),
                build: &skaffold_build,
                inputs: &inputs,
                release: &multi_targets[1].release,
                ns: &multi_targets[1].ns,
                chart: &multi.chart,
                values: multi_values(&multi.values)
                    .into_iter()
                    .map(|(_, k, v)| (k, v))
                    .collect(),
            }
            .render_for_cluster(),
        )?;
        let mut multi_seq = 0u64;
        let mut multi_side = |side: usize| -> anyhow::Result<()> {
            match side {
                0 => {
                    let out = cmd!(
                        sh,
                        "{exe} --config {multi_file} --profile {profile} --output json deploy-local"
                    )
                    .quiet()
                    .read()?;
                    *last_path.borrow_mut() = critical_line(out.lines());
                }
                1 => {
                    let Some(bin) = &skaffold else { return Ok(()) };
                    cmd!(
                        sh,
                        "{bin} run -f {multi_yaml} --kube-context {context} --update-check=false --interactive=false --status-check=true --tail=false --port-forward=off"
                    )
                    .env("PATH", &skaffold_path)
                    .env("SKAFFOLD_UPDATE_CHECK", "false")
                    .quiet()
                    .ignore_stdout()
                    .ignore_stderr()
                    .run()?;
                }
                _ => {
                    multi_seq += 1;
                    let t = &multi_targets[2];
                    let tag = format!("baseline-{}-{multi_seq}", std::process::id());
                    build_binary()?;
                    let mut refs = vec![];
                    for repo in &multi.repositories {
                        let r = format!("{repo}:{tag}");
                        cmd!(sh, "docker build -q -t {r} services/sample")
                            .quiet()
                            .ignore_stdout()
                            .ignore_stderr()
                            .run()?;
                        refs.push(r);
                    }
                    cmd!(sh, "kind load docker-image {refs...} --name {cluster}")
                        .quiet()
                        .ignore_stdout()
                        .ignore_stderr()
                        .run()?;
                    let (rel, ns, chart) = (&t.release, &t.ns, &multi.chart);
                    let mut sets = vec![];
                    for (f, k, v) in multi_values(&multi.values) {
                        sets.extend([f, format!("{k}={v}")]);
                    }
                    for (alias, repo) in ["api", "worker"].iter().zip(&multi.repositories) {
                        sets.extend([
                            "--set-string".to_string(),
                            format!("{alias}.image.repository={repo}"),
                            "--set-string".to_string(),
                            format!("{alias}.image.tag={tag}"),
                        ]);
                    }
                    cmd!(sh, "helm upgrade --install {rel} {chart} --kube-context {context} --namespace {ns} {sets...} --wait --timeout=3m")
                        .quiet()
                        .ignore_stdout()
                        .run()?;
                }
            }
            Ok(())
        };
        eprintln!("[bench] warm-up: the umbrella example on each side");
        for side in 0..3 {
            if side == 1 && skaffold.is_none() {
                continue;
            }
            multi_side(side)?;
        }
        let edit = Edit::new(&root)?;
        let mut r: [Vec<f64>; 3] = Default::default();
        for i in 1..=a.rounds.max(1) {
            for side in 0..3 {
                if side == 1 && skaffold.is_none() {
                    continue;
                }
                n += 1;
                let svcs = services(&multi_targets[side]);
                let before: Vec<String> = svcs.iter().map(&image_tag).collect();
                let began = Instant::now();
                edit.apply(n)?;
                multi_side(side)?;
                for (t, b) in svcs.iter().zip(&before) {
                    serving_new(t, b)?;
                }
                r[side].push(began.elapsed().as_secs_f64());
            }
            eprintln!("[bench] two-images round {i}: {}", round_line(&r));
        }
        drop(edit);
        results.push((
            "two images changed at once -> both serving",
            r,
            last_path.take(),
        ));
        delivered = Some(delivery(&sh, &root, &cluster, a.rounds.max(1))?);
        for t in &multi_targets {
            let (rel, ns) = (&t.release, &t.ns);
            let _ = cmd!(sh, "helm uninstall {rel} -n {ns} --kube-context {context}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run();
        }
        Ok(())
    })();
    // Leave the sample as it was: source restored (Edit's drop), binary rebuilt.
    let _ = build_binary();
    for t in &targets[1..] {
        let ns = &t.ns;
        let _ = cmd!(
            sh,
            "kubectl --context {context} delete namespace {ns} --wait=false"
        )
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run();
    }
    if created {
        let _ = cmd!(sh, "{exe} --profile {profile} down --cluster -q")
            .quiet()
            .run();
    }
    result?;
    // How many builds at once: the bound in slipway/src/plan/stages/build_waves.rs.
    let builds = if a.delivery_only {
        None
    } else {
        eprintln!("[bench] concurrent docker builds (serial, at once, in lanes)");
        Some(crate::bench_builds::table(&crate::bench_builds::measure(
            &root,
            a.rounds.max(1),
        )?))
    };

    let mut table = vec![];
    let mut head = vec![format!(
        "| scenario ({} rounds) | slipway | Skaffold 2.16.1 | Makefile baseline | Skaffold / slipway | baseline / slipway |",
        a.rounds.max(1)
    )];
    head.push("| --- | --- | --- | --- | --- | --- |".into());
    if !results.is_empty() {
        table.append(&mut head);
    }
    let mut json = vec![];
    for (name, r, _) in &results {
        let cell = |v: &Vec<f64>| {
            if v.is_empty() {
                "not run".to_string()
            } else {
                let s = stats(v);
                format!("{:.2} s ({:.2}–{:.2})", s.median, s.min, s.max)
            }
        };
        let ratio = |v: &Vec<f64>| {
            if v.is_empty() || r[0].is_empty() {
                "–".to_string()
            } else {
                format!("{:.1}x", stats(v).median / stats(&r[0]).median)
            }
        };
        table.push(format!(
            "| {name} | {} | {} | {} | {} | {} |",
            cell(&r[0]),
            cell(&r[1]),
            cell(&r[2]),
            ratio(&r[1]),
            ratio(&r[2])
        ));
        let side_json = |v: &Vec<f64>| {
            if v.is_empty() {
                serde_json::Value::Null
            } else {
                let s = stats(v);
                serde_json::json!({"median": s.median, "min": s.min, "max": s.max, "samples": v})
            }
        };
        json.push(serde_json::json!({
            "scenario": name,
            "slipway_s": side_json(&r[0]),
            "skaffold_s": side_json(&r[1]),
            "baseline_s": side_json(&r[2]),
        }));
    }
    if !dev_share.is_empty() {
        let st = stats(&dev_share);
        table.push(format!(
            "\nslipway dev, its own share of a round (all but the build and rollout stages: compiler, docker build, pods' readiness): {:.2} s ({:.2}–{:.2})",
            st.median, st.min, st.max
        ));
    }
    if !sync_split.is_empty() {
        table.push(format!(
            "\nslipway dev with sync, each round as the loop split it: {}",
            sync_split.join("; ")
        ));
    }
    let paths: Vec<(&str, &String)> = results
        .iter()
        .filter_map(|(name, _, path)| Some((*name, path.as_ref()?)))
        .collect();
    if !paths.is_empty() {
        table.push(
            "\nslipway's critical path in the last round of each scenario (its `critical_path` event):"
                .into(),
        );
        for (name, line) in &paths {
            table.push(format!("- {name}: {line}"));
        }
    }
    if let Some([load, push]) = &delivered {
        let (l, p) = (stats(load), stats(push));
        table.push(format!(
            "\n| one-layer change to a {BIG_MB} MB image ({} rounds) | `kind load` | registry push + node pull | load / registry |\n| --- | --- | --- | --- |\n| image on the node | {:.2} s ({:.2}–{:.2}) | {:.2} s ({:.2}–{:.2}) | {:.1}x |",
            load.len(), l.median, l.min, l.max, p.median, p.min, p.max, l.median / p.median
        ));
    }
    if let Some((t, _)) = &builds {
        table.push(t.clone());
    }
    println!("{}", table.join("\n"));
    let out = root.join("target/bench.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&serde_json::json!({
            "rounds": a.rounds.max(1),
            "skaffold": skaffold.as_ref().map(|_| "v2.16.1"),
            "scenarios": json,
            "delivery_one_layer_change": delivered.as_ref().map(|[load, push]| {
                let (l, p) = (stats(load), stats(push));
                serde_json::json!({
                    "image_mb": BIG_MB,
                    "kind_load_s": {"median": l.median, "min": l.min, "max": l.max, "samples": load},
                    "registry_push_and_pull_s": {"median": p.median, "min": p.min, "max": p.max, "samples": push},
                })
            }),
            "concurrent_builds_s": builds.as_ref().map(|(_, j)| j),
            "slipway_dev_sync_rounds": sync_split,
            "slipway_critical_path": paths
                .iter()
                .map(|(n, l)| (n.to_string(), serde_json::Value::from(l.as_str())))
                .collect::<serde_json::Map<_, _>>(),
            "slipway_dev_own_share_s": (!dev_share.is_empty()).then(|| {
                let st = stats(&dev_share);
                serde_json::json!({"median": st.median, "min": st.min, "max": st.max, "samples": dev_share})
            }),
        }))?,
    )?;
    eprintln!("[bench] wrote {}", out.display());
    Ok(())
}

/// A scenario's name, its times (slipway, Skaffold, the baseline) and the critical
/// path of slipway's last round in it.
type Scenario = (&'static str, [Vec<f64>; 3], Option<String>);

/// The size of the layer that does not change in the delivery scenario.
const BIG_MB: u64 = 200;

/// How images reach kind's nodes, on one change to a large image: a
/// [`BIG_MB`] MB layer that stays and the sample's binary plus a small file that
/// change. `kind load` copies the whole image into every node; with the local
/// registry (`delivery = "registry"`, wired by slipway's recipe) `docker push` sends
/// the changed layer and each node's containerd pulls only that (`ctr images pull`
/// through the registry's hosts.toml, what the kubelet asks for when a pod starts).
/// The clock stops when the image is on every node either way.
fn delivery(
    sh: &Shell,
    root: &Path,
    cluster: &str,
    rounds: usize,
) -> anyhow::Result<[Vec<f64>; 2]> {
    let dir = root.join("target/bench/big");
    std::fs::create_dir_all(&dir)?;
    let big = dir.join("big.bin");
    if std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0) != BIG_MB << 20 {
        // Random bytes: a layer no compression shrinks.
        let (of, count) = (format!("of={}", big.display()), format!("count={BIG_MB}"));
        cmd!(sh, "dd if=/dev/urandom {of} bs=1M {count} status=none").run()?;
    }
    std::fs::copy(root.join("services/sample/bin/sample"), dir.join("sample"))?;
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY big.bin /big.bin\nCOPY sample /sample\nCOPY stamp /stamp\n",
    )?;
    eprintln!("[bench] delivery: the local registry on cluster {cluster} (scripts/registry.sh)");
    cmd!(sh, "bash scripts/registry.sh")
        .env("CLUSTER", cluster)
        .quiet()
        .ignore_stderr()
        .run()?;
    let nodes = cmd!(sh, "kind get nodes --name {cluster}").quiet().read()?;
    let nodes: Vec<&str> = nodes.split_whitespace().collect();
    let nonce = std::process::id();
    let build = |n: usize| -> anyhow::Result<(String, String)> {
        std::fs::write(dir.join("stamp"), format!("{nonce}-{n}\n"))?;
        let tag = format!("r{nonce}-{n}");
        let (local, pushed) = (
            format!("slipway-bench/big:{tag}"),
            format!("localhost:5001/slipway-bench/big:{tag}"),
        );
        cmd!(sh, "docker build -q -t {local} -t {pushed} {dir}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()?;
        Ok((local, pushed))
    };
    let load = |local: &str| -> anyhow::Result<()> {
        cmd!(sh, "kind load docker-image {local} --name {cluster}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()?;
        Ok(())
    };
    let push = |pushed: &str| -> anyhow::Result<()> {
        cmd!(sh, "docker push -q {pushed}")
            .quiet()
            .ignore_stdout()
            .run()?;
        for node in &nodes {
            cmd!(sh, "docker exec {node} ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d {pushed}")
                .quiet()
                .ignore_stdout()
                .run()?;
        }
        Ok(())
    };
    let mut made = vec![];
    // Warm-up: the big layer reaches the registry and the nodes both ways once.
    let (l0, p0) = build(0)?;
    load(&l0)?;
    push(&p0)?;
    made.push((l0, p0));
    let mut r: [Vec<f64>; 2] = Default::default();
    for i in 1..=rounds {
        let (local, pushed) = build(i)?;
        // Alternate which goes first, so neither always meets a warmer cache.
        if i % 2 == 1 {
            r[0].push(timed(|| load(&local))?);
            r[1].push(timed(|| push(&pushed))?);
        } else {
            r[1].push(timed(|| push(&pushed))?);
            r[0].push(timed(|| load(&local))?);
        }
        eprintln!(
            "[bench] delivery round {i}: kind load {:.2}s, registry {:.2}s",
            r[0][i - 1],
            r[1][i - 1]
        );
        made.push((local, pushed));
    }
    // The nodes and Docker keep none of it.
    for (local, pushed) in &made {
        for node in &nodes {
            let full = format!("docker.io/{local}");
            let _ = cmd!(
                sh,
                "docker exec {node} ctr -n k8s.io images rm {full} {pushed}"
            )
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
        }
        let _ = cmd!(sh, "docker rmi {local} {pushed}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
    }
    cmd!(sh, "bash scripts/registry.sh stop")
        .env("CLUSTER", cluster)
        .quiet()
        .ignore_stderr()
        .run()?;
    Ok(r)
}

/// A tool's dev loop in the background (its own process group), every line it
/// prints on a channel; stopped with SIGINT (then SIGKILL) when dropped.
struct DevLoop {
    name: &'static str,
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl DevLoop {
    fn start(name: &'static str, mut c: std::process::Command) -> anyhow::Result<DevLoop> {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        c.process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().with_context(|| format!("starting {name}"))?;
        let (tx, lines) = std::sync::mpsc::channel();
        let pipes: Vec<Box<dyn std::io::Read + Send>> = vec![
            Box::new(child.stdout.take().context("stdout")?),
            Box::new(child.stderr.take().context("stderr")?),
        ];
        for p in pipes {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in std::io::BufReader::new(p).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        Ok(DevLoop { name, child, lines })
    }

    /// Wait until it prints a line containing `needle`; the lines before it.
    fn wait_for(&mut self, needle: &str, within: Duration) -> anyhow::Result<Vec<String>> {
        let end = Instant::now() + within;
        let mut seen: Vec<String> = vec![];
        while Instant::now() < end {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) if l.contains(needle) => return Ok(seen),
                Ok(l) => seen.push(l),
                Err(_) => {
                    if let Ok(Some(st)) = self.child.try_wait() {
                        bail!("{} exited ({st}):\n{}", self.name, last(&seen));
                    }
                }
            }
        }
        bail!("{} never printed {needle:?}:\n{}", self.name, last(&seen))
    }
}

/// The last 20 lines, for an error.
fn last(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The one line a terminal run ends with (`critical path 1.05s of 1.05s: …`), from
/// the last `critical_path` event among slipway's NDJSON `lines`.
fn critical_line<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> Option<String> {
    let v = lines
        .into_iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.as_ref()).ok())
        .filter(|v| v["event"] == "critical_path")
        .last()?;
    let items: Vec<slipway::report::critical::Item> = v["steps"]
        .as_array()?
        .iter()
        .map(|s| slipway::report::critical::Item {
            name: s["name"].as_str().unwrap_or("?").to_string(),
            ms: s["ms"].as_u64().unwrap_or(0),
        })
        .collect();
    let total = Duration::from_millis(v["total_ms"].as_u64()?);
    Some(slipway::report::critical::line(&items, total))
}

/// slipway's own share of a `dev` round (its NDJSON events): the round's duration
/// less what the compiler, `docker build` and the pods' readiness took (the build and
/// rollout stages).
fn own_share(lines: &[String]) -> Option<f64> {
    let mut total = None;
    let mut theirs = 0u64;
    for l in lines {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
            continue;
        };
        match v["event"].as_str() {
            Some("stage_finished") if matches!(v["stage"].as_str(), Some("build" | "rollout")) => {
                theirs += v["duration_ms"].as_u64().unwrap_or(0)
            }
            Some("run_finished") => total = v["duration_ms"].as_u64(),
            _ => {}
        }
    }
    total.map(|t| t.saturating_sub(theirs) as f64 / 1000.0)
}

impl Drop for DevLoop {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = std::process::Command::new("kill")
            .args(["-INT", "--", &group])
            .status();
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .status();
        let _ = self.child.wait();
    }
}

/// A directory removed (with what is in it) when this is dropped.
struct RemoveDirOnDrop(PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The body of a GET over the unix socket `socket` (`kubectl proxy --unix-socket`; a
/// new connection each time), if it is 200.
fn http_get(socket: &Path, path: &str) -> Option<String> {
    let body = http_body(socket, path)?;
    // /version's body is one JSON object.
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    Some(body[start..=end].to_string())
}

/// A 200 answer's body through kubectl proxy's socket, whole (de-chunked when the
/// service proxy answers chunked).
fn http_body(socket: &Path, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    // kubectl proxy answers only to localhost names in Host (--accept-hosts). One
    // write: the request does not reach the server in pieces.
    let req = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.split_whitespace().nth(1).filter(|c| *c == "200")?;
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Some(body.to_string());
    }
    // A chunk stream that does not parse is returned as it came.
    Some(dechunk(body).unwrap_or_else(|| body.to_string()))
}

fn dechunk(body: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

fn round_line(r: &[Vec<f64>; 3]) -> String {
    SIDES
        .iter()
        .zip(r)
        .filter_map(|(n, v)| v.last().map(|t| format!("{n} {t:.2}s")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Secret the chart reads, for the other sides' namespaces (slipway makes its own).
fn secret_manifest(ns: &str, token: &str) -> String {
    let docs = [
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "sample-credentials", "namespace": ns},
            "stringData": {"API_TOKEN": token}}),
    ];
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs}).to_string()
}

/// What the baseline and Skaffold are given, taken from slipway's own plan.
struct Baseline {
    reference: String,
    ns: String,
    /// The helm upgrade's argv.
    helm_args: Vec<String>,
    /// Its `--set`/`--set-string` values, as (flag, key, value).
    values: Vec<(String, String, String)>,
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
            Action::Upgrade(u) => Some(u.cmd.clone()),
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
    let mut values = vec![];
    let mut it = helm.args.iter();
    while let Some(a) = it.next() {
        if a == "--set" || a == "--set-string" {
            let kv = it.next().context("--set without a value")?;
            let (k, v) = kv.split_once('=').context("--set without =")?;
            values.push((a.clone(), k.to_string(), v.to_string()));
        }
    }
    Ok(Baseline {
        reference,
        ns,
        helm_args: helm.args,
        values,
    })
}

/// What the two-images scenario deploys: slipway's plan of examples/multi.
struct Multi {
    release: String,
    ns: String,
    /// The chart, relative to the repository root.
    chart: String,
    /// The api's and the worker's image repositories.
    repositories: Vec<String>,
    values: Vec<(String, String, String)>,
}

fn multi_inputs(root: &Path, profile: &str, opts: &PlanOptions) -> anyhow::Result<Multi> {
    let pipeline = config::load(&LoadOptions {
        file: root.join("examples/multi/pipeline.toml"),
        profile: Some(profile.to_string()),
        vars: None,
    })
    .map_err(|e| anyhow!("{e}"))?;
    let p = plan::build(&pipeline, opts).map_err(|e| anyhow!("{e}"))?;
    let b = baseline_inputs(&p)?;
    let repositories = ["api", "worker"]
        .iter()
        .map(|n| {
            p.images
                .iter()
                .find(|i| i.name == *n)
                .map(|i| i.repository.clone())
                .with_context(|| format!("examples/multi has no image {n}"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Multi {
        release: b.helm_args[2].clone(),
        ns: b.ns,
        chart: format!("examples/multi/{}", b.helm_args[3]),
        repositories,
        values: b.values,
    })
}

/// The umbrella's values without the image references (each side sets its own).
fn multi_values(values: &[(String, String, String)]) -> Vec<(String, String, String)> {
    values
        .iter()
        .filter(|(_, k, _)| !k.ends_with("image.repository") && !k.ends_with("image.tag"))
        .cloned()
        .collect()
}

/// The values every side deploys with: slipway's, except the image, the greeting and
/// a ClusterIP Service (only slipway's release holds the kind-mapped NodePort).
fn side_values(
    values: &[(String, String, String)],
    greeting: &str,
) -> Vec<(String, String, String)> {
    values
        .iter()
        .filter(|(_, k, _)| {
            !matches!(
                k.as_str(),
                "image.repository" | "image.tag" | "service.nodePort"
            )
        })
        .map(|(f, k, v)| match k.as_str() {
            "service.type" => (f.clone(), k.clone(), "ClusterIP".into()),
            "config.greeting" => (f.clone(), k.clone(), greeting.into()),
            _ => (f.clone(), k.clone(), v.clone()),
        })
        .collect()
}

fn baseline_helm_args(
    b: &Baseline,
    release: &str,
    ns: &str,
    reference: &str,
    greeting: &str,
) -> Vec<String> {
    let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
    let mut args: Vec<String> = vec!["upgrade".into(), "--install".into(), release.into()];
    // The chart and the context, as slipway runs them.
    args.push(b.helm_args[3].clone());
    let ctx = b
        .helm_args
        .iter()
        .skip_while(|a| *a != "--kube-context")
        .nth(1)
        .cloned()
        .unwrap_or_default();
    args.extend([
        "--kube-context".into(),
        ctx,
        "--namespace".into(),
        ns.into(),
    ]);
    for (f, k, v) in side_values(&b.values, greeting) {
        args.extend([f, format!("{k}={v}")]);
    }
    args.extend([
        "--set-string".into(),
        format!("image.repository={repo}"),
        "--set-string".into(),
        format!("image.tag={tag}"),
        "--timeout=3m".into(),
    ]);
    args
}

/// A skaffold.yaml (schema v4beta13, Skaffold 2.16): local artifacts with
/// `inputDigest` tags, each built by a custom command (`build`: the static binary,
/// then `docker build`) that declares the same inputs slipway's content tag hashes —
/// so `skaffold dev` rebuilds on a source edit and the tag covers the source, not
/// only the prebuilt binary — and one helm release with slipway's values.
struct SkaffoldYaml<'a> {
    root: &'a Path,
    /// Per artifact: the values prefix its image goes under (`""`, `"api."`) and
    /// its repository.
    artifacts: Vec<(String, String)>,
    build: &'a Path,
    inputs: &'a [String],
    release: &'a str,
    ns: &'a str,
    /// The chart, relative to the root.
    chart: &'a str,
    /// `setValues` (key, value).
    values: Vec<(String, String)>,
}

impl SkaffoldYaml<'_> {
    /// [`Self::render`], for the cluster as slipway leaves it (see
    /// [`skaffold_for_cluster`]).
    fn render_for_cluster(&self) -> String {
        skaffold_for_cluster(self.render(), registry_built())
    }

    fn render(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
        let mut deps = String::new();
        for i in self.inputs {
            deps.push_str(&format!("            - {}\n", q(i)));
        }
        let (mut artifacts, mut templates, mut set) = (String::new(), String::new(), String::new());
        for (prefix, repo) in &self.artifacts {
            artifacts.push_str(&format!(
                "    - image: {repo}\n      context: {}\n      custom:\n        buildCommand: {}\n        dependencies:\n          paths:\n{deps}",
                q(&self.root.display().to_string()),
                q(&format!("bash {}", self.build.display())),
            ));
            let s = repo.replace(['/', '-', '.'], "_");
            templates.push_str(&format!(
                "          {prefix}image.repository: \"{{{{.IMAGE_REPO_{s}}}}}\"\n          {prefix}image.tag: \"{{{{.IMAGE_TAG_{s}}}}}\"\n"
            ));
        }
        for (k, v) in &self.values {
            set.push_str(&format!("          {}: {}\n", q(k), q(v)));
        }
        format!(
            "apiVersion: skaffold/v4beta13
kind: Config
build:
  tagPolicy:
    inputDigest: {{}}
  local:
    push: false
    useDockerCLI: true
    useBuildkit: false
  artifacts:
{artifacts}deploy:
  statusCheck: true
  helm:
    releases:
      - name: {release}
        chartPath: {chart}
        namespace: {ns}
        createNamespace: true
        skipBuildDependencies: true
        setValueTemplates:
{templates}        setValues:
{set}",
            release = self.release,
            ns = self.ns,
            chart = q(&self.root.join(self.chart).display().to_string()),
        )
    }
}

/// Skaffold on a kind cluster that advertises a local registry (KEP-1755, which
/// slipway writes when its registry is built and kind's `delivery = "auto"` takes
/// it): Skaffold then names its images after that registry and neither loads them
/// into the nodes nor pushes them with `push: false`, so `Never` pods never start.
/// Its own best path there is to push and let the pods pull: `push: true` and
/// `IfNotPresent`. Without the registry the YAML is left as it is (`kind load`).
pub(crate) fn skaffold_for_cluster(yaml: String, registry_advertised: bool) -> String {
    if !registry_advertised {
        return yaml;
    }
    yaml.replace("    push: false\n", "    push: true\n")
        // Every image's policy, prefixed ones too (`api.image.pullPolicy`).
        .replace("pullPolicy\": \"Never\"", "pullPolicy\": \"IfNotPresent\"")
        .replace("pullPolicy: Never", "pullPolicy: IfNotPresent")
}

/// Whether slipway's runs on the bench's kind clusters take the local registry (and
/// so advertise it to Skaffold): the same fact kind's `delivery = "auto"` decides by.
pub(crate) fn registry_built() -> bool {
    slipway::run::facts::registry_built().is_some()
}

/// Skaffold's custom build command: what slipway's pre-build and build do.
const SKAFFOLD_BUILD: &str = "#!/usr/bin/env bash
set -euo pipefail
scripts/build-static.sh sample services/sample/bin/sample 2>/dev/null
docker build -q -t \"$IMAGE\" services/sample >/dev/null
# Skaffold's custom-build contract: with push on (a cluster advertising a local
# registry), the build pushes its image itself.
if [ \"${PUSH_IMAGE:-false}\" = true ]; then docker push -q \"$IMAGE\" >/dev/null; fi
";

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of_this_repo() -> plan::Plan {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let pipeline = config::load(&LoadOptions {
            file: root.join("pipeline.toml"),
            profile: Some("e2e".into()),
            vars: Some(config::Vars::new(Default::default(), Default::default())),
        })
        .unwrap();
        plan::build(&pipeline, &PlanOptions::new(Job::DeployLocal)).unwrap()
    }

    /// On a cluster that advertises the local registry, Skaffold pushes and its pods
    /// pull; elsewhere its YAML is unchanged.
    #[test]
    fn skaffold_pushes_where_the_cluster_advertises_a_registry() {
        let y = "  local:\n    push: false\n    useDockerCLI: true\n        setValues:\n          \"image.pullPolicy\": \"Never\"\n          \"api.image.pullPolicy\": \"Never\"\n          image.pullPolicy: Never\n".to_string();
        assert_eq!(skaffold_for_cluster(y.clone(), false), y);
        let r = skaffold_for_cluster(y, true);
        assert!(r.contains("    push: true\n"), "{r}");
        assert!(!r.contains("Never"), "{r}");
        assert_eq!(r.matches("IfNotPresent").count(), 3, "{r}");
    }

    /// The baseline and Skaffold deploy what slipway's plan deploys, in releases of
    /// their own, with a ClusterIP Service.
    #[test]
    fn the_other_sides_deploy_slipways_values_in_their_own_release() {
        let p = plan_of_this_repo();
        let b = baseline_inputs(&p).unwrap();
        assert_eq!(b.ns, "slipway-sample");
        assert!(
            b.reference.starts_with("slipway/sample:c-"),
            "{}",
            b.reference
        );
        let args = baseline_helm_args(&b, "sample-baseline", "bench-ns", "slipway/sample:x1", "hi");
        let joined = args.join(" ");
        assert!(joined.starts_with("upgrade --install sample-baseline helm/sample --kube-context kind-slipway-e2e --namespace bench-ns"), "{joined}");
        for want in [
            "replicaCount=2",
            "service.type=ClusterIP",
            "config.greeting=hi",
            "image.tag=x1",
            "image.pullPolicy=Never",
            "secret.existingSecret=sample-credentials",
        ] {
            assert!(joined.contains(want), "{want} in {joined}");
        }
        assert!(!joined.contains("nodePort"), "{joined}");

        let y = SkaffoldYaml {
            root: Path::new("/r"),
            artifacts: vec![(String::new(), "slipway/sample".into())],
            build: Path::new("/r/target/bench/build.sh"),
            inputs: &["services/sample/src".to_string()],
            release: "sample-skaffold",
            ns: "ns",
            chart: "helm/sample",
            values: side_values(&b.values, "hi")
                .into_iter()
                .map(|(_, k, v)| (k, v))
                .collect(),
        }
        .render();
        assert!(
            y.contains("buildCommand: \"bash /r/target/bench/build.sh\""),
            "{y}"
        );
        assert!(y.contains("- \"services/sample/src\""), "{y}");
        assert!(
            y.contains("image.tag: \"{{.IMAGE_TAG_slipway_sample}}\""),
            "{y}"
        );
        assert!(y.contains("\"config.greeting\": \"hi\""), "{y}");
        assert!(y.contains("\"service.type\": \"ClusterIP\""), "{y}");
        assert!(y.contains("chartPath: \"/r/helm/sample\""), "{y}");
    }

    /// `http_get` against a server that answers only to a localhost Host, as
    /// `kubectl proxy` does, with a chunked body.
    #[test]
    fn http_get_reads_a_chunked_answer_of_a_localhost_only_server() {
        use std::io::{Read, Write};
        let dir = std::env::temp_dir().join(format!("slipway-bench-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let sock = dir.join("s.sock");
        let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            // The whole request head, however many reads it takes.
            let mut req = String::new();
            let mut buf = [0u8; 1024];
            while !req.contains("\r\n\r\n") {
                let n = c.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                req.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            let answer = if req.contains("host: 127.0.0.1") {
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{\"image_tag\":\"x\"}\r\n0\r\n\r\n"
            } else {
                "HTTP/1.1 403 Forbidden\r\n\r\nForbidden"
            };
            c.write_all(answer.as_bytes()).unwrap();
        });
        let got = http_get(&sock, "/version");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got.as_deref(), Some("{\"image_tag\":\"x\"}"));
    }

    /// The critical path under the table is the last `critical_path` event's, in the
    /// line a terminal run ends with; other lines and events are passed over.
    #[test]
    fn critical_line_renders_the_last_critical_path_event() {
        let lines = [
            r#"{"event":"critical_path","total_ms":9000,"steps":[{"name":"build/old","ms":9000}]}"#,
            "not json",
            r#"{"event":"stage_finished","stage":"build","duration_ms":700}"#,
            r#"{"event":"critical_path","total_ms":1200,"steps":[{"name":"preflight","ms":100},{"name":"rollout","ms":1100}]}"#,
            r#"{"event":"run_finished","duration_ms":1200}"#,
        ];
        assert_eq!(
            critical_line(lines).as_deref(),
            Some("critical path 1.20s of 1.20s: preflight 0.10s → rollout 1.10s")
        );
        assert_eq!(critical_line(&lines[1..3]), None);
    }

    /// A plain-text answer (the sync scenario's `/healthz`), chunked or not, comes
    /// back whole: the JSON-only reader made that scenario wait forever.
    #[test]
    fn http_body_reads_plain_text_chunked_or_not() {
        use std::io::{Read, Write};
        for (answer, want) in [
            ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nok sy\r\n6\r\nnc-1-2\r\n0\r\n\r\n", "ok sync-1-2"),
            ("HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nok sync-1-2\n", "ok sync-1-2\n"),
        ] {
            let dir = std::env::temp_dir().join(format!("slipway-bench-body-{}-{}", std::process::id(), want.len()));
            std::fs::create_dir(&dir).unwrap();
            let sock = dir.join("s.sock");
            let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
            let t = std::thread::spawn(move || {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).unwrap();
                c.write_all(answer.as_bytes()).unwrap();
            });
            let got = http_body(&sock, "/healthz");
            t.join().unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            assert_eq!(got.as_deref(), Some(want));
        }
    }

    #[test]
    fn the_edit_still_finds_its_mark() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let text = std::fs::read_to_string(root.join(EDITED)).unwrap();
        assert!(text.contains(EDIT_MARK));
        // The sync scenario's edit: once, in the /healthz route, and the profile it
        // runs with has a sync rule that covers the edited file.
        let text = std::fs::read_to_string(root.join(HEALTHZ_EDITED)).unwrap();
        assert_eq!(text.matches(HEALTHZ_MARK).count(), 1);
        assert!(text.contains(&format!(".route(\"/healthz\", {HEALTHZ_MARK})")));
        let p = slipway::config::load(&slipway::config::LoadOptions {
            file: root.join("pipeline.toml"),
            profile: Some("e2e-dev-sync".into()),
            vars: None,
        })
        .unwrap();
        let sync = p.images[0]
            .sync
            .as_ref()
            .expect("e2e-dev-sync has a sync rule");
        assert!(sync
            .covers
            .iter()
            .any(|c| std::path::Path::new(HEALTHZ_EDITED).starts_with(c)));
    }
}
