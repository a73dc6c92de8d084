//! Tier 3: `dev` syncs the sample's new binary into its running pods on a real kind
//! cluster. The sample's image is `FROM scratch` (no shell, no tar) with a read-only
//! root filesystem. A covered edit serves new code with no new ReplicaSet; a broken
//! compile keeps the old process serving; a change outside the rule takes the full
//! round and names the file; `status` shows the synced pods; the next deploy-local
//! rolls out the real image. Cluster slipway-e2e-sync (profile e2e-sync, host port
//! 18127), deleted afterwards. The test edits the sample's source and puts it back.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::e2e_kind::{expect_ok, get, ready, slipway_in};
use crate::support::repo;

const PORT: u16 = 18127;
const PROFILE: &str = "e2e-sync";
const CONTEXT: &str = "kind-slipway-e2e-sync";
const APP: &str = "services/sample/src/app.rs";
const UNCOVERED: &str = "scripts/build-static.sh";
const HEALTHZ: &str = r#".route("/healthz", get(|| async { "ok\n" }))"#;

/// Files the test edits, put back as they were however it ends.
struct Restore(Vec<(PathBuf, String)>);

impl Drop for Restore {
    fn drop(&mut self) {
        for (p, text) in &self.0 {
            let _ = std::fs::write(p, text);
        }
    }
}

struct Dev {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Dev {
    fn start() -> Dev {
        let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["--profile", PROFILE, "dev"])
            .current_dir(repo())
            .env("CI", "1")
            .env("CARGO_TARGET_DIR", repo().join("target/nested"))
            .env("SAMPLE_API_TOKEN", "e2e-token-value-1234")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let o = Arc::clone(&out);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut o = o.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            });
        }
        Dev { child, out }
    }

    /// Wait until `needle` has been printed `n` times; what it printed.
    fn wait(&self, needle: &str, n: usize, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            let out = self.out.lock().unwrap().clone();
            if out.matches(needle).count() >= n {
                return out;
            }
            assert!(
                Instant::now() < end,
                "dev never printed {needle:?} ({n}x):\n{out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        unsafe { libc_kill(self.child.id() as i32, 2) };
        let end = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// The sample's ReplicaSets.
fn replica_sets() -> String {
    let o = Command::new("kubectl")
        .args([
            "--context",
            CONTEXT,
            "-n",
            "slipway-sample",
            "get",
            "rs",
            "-o",
            "name",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Twenty answers in a row of `want` from /healthz (both pods, through the NodePort).
fn healthz_says(want: &str) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(30);
    let (mut streak, mut last) = (0, String::new());
    while Instant::now() < end {
        match get(PORT, "/healthz") {
            Ok((200, body)) if body.trim() == want => streak += 1,
            other => {
                streak = 0;
                last = format!("{other:?}");
            }
        }
        if streak >= 20 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("/healthz does not say {want:?}: {last}"))
}

#[test]
#[cfg_attr(
    not(slipway_ci),
    ignore = "tier 3: needs Docker, kind, helm, kubectl and the node image; runs in CI (CI=true) or with --ignored"
)]
fn dev_syncs_new_code_into_a_scratch_image_without_a_rollout() {
    if let Err(why) = ready() {
        panic!("e2e prerequisites missing: {why} (.ci/run provides them)");
    }
    let _one = crate::support::real_cluster_lock();
    let app = repo().join(APP);
    let uncovered = repo().join(UNCOVERED);
    let source = std::fs::read_to_string(&app).unwrap();
    assert!(
        source.contains(HEALTHZ),
        "the sample's /healthz route moved"
    );
    let _restore = Restore(vec![
        (app.clone(), source.clone()),
        (
            uncovered.clone(),
            std::fs::read_to_string(&uncovered).unwrap(),
        ),
    ]);
    let started = Instant::now();
    let mut dev = Dev::start();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dev.wait("Ctrl-C to stop", 1, Duration::from_secs(1800));
        healthz_says("ok").unwrap();
        let before = replica_sets();

        // A covered edit: compiled, synced, restarted in place; no new ReplicaSet.
        let t = Instant::now();
        std::fs::write(
            &app,
            source.replace(HEALTHZ, &HEALTHZ.replace("ok\\n", "ok synced\\n")),
        )
        .unwrap();
        let out = dev.wait("synced 2 pod(s) in", 1, Duration::from_secs(900));
        healthz_says("ok synced").unwrap();
        eprintln!(
            "edit -> new code serving: {:.1}s",
            t.elapsed().as_secs_f64()
        );
        assert_eq!(replica_sets(), before, "a sync makes no new ReplicaSet");
        assert!(!out.contains("full round"), "{out}");
        let st = slipway_in(PROFILE, &["status"], &[]);
        expect_ok(&st, "status");
        assert_eq!(
            st.stdout.matches("synced by dev (").count(),
            2,
            "{}",
            st.stdout
        );

        // A broken compile: nothing copied, the old process keeps serving.
        std::fs::write(
            &app,
            format!(
                "{}\nfn broken( {{\n",
                std::fs::read_to_string(&app).unwrap()
            ),
        )
        .unwrap();
        dev.wait(
            "the compile failed: nothing was copied",
            1,
            Duration::from_secs(900),
        );
        healthz_says("ok synced").unwrap();

        // A change outside the rule: the full round, naming the file.
        std::fs::write(
            &app,
            source.replace(HEALTHZ, &HEALTHZ.replace("ok\\n", "ok synced\\n")),
        )
        .unwrap();
        dev.wait("synced 2 pod(s) in", 2, Duration::from_secs(900));
        let mut script = std::fs::read_to_string(&uncovered).unwrap();
        script.push_str("# e2e-sync: an edit no sync rule covers\n");
        std::fs::write(&uncovered, script).unwrap();
        dev.wait(
            &format!("full round: {UNCOVERED} is not covered by a sync rule"),
            1,
            Duration::from_secs(60),
        );
        dev.wait("Ctrl-C to stop", 5, Duration::from_secs(900));
        healthz_says("ok synced").unwrap();
    }));
    dev.stop();
    // deploy-local converges: the real image (not the dev variant), no synced pod.
    let synced_ok = result.is_ok();
    let converged = std::panic::catch_unwind(|| {
        if !synced_ok {
            return None;
        }
        let r = slipway_in(PROFILE, &["deploy-local"], &[]);
        expect_ok(&r, "deploy-local after dev");
        // The replaced pods may still be going (the sample drains on SIGTERM): within
        // a minute only the real image's pods are left, none of them synced.
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let st = slipway_in(PROFILE, &["status"], &[]);
            let pods: Vec<&str> = st
                .stdout
                .lines()
                .filter(|l| l.contains("slipway/sample:"))
                .collect();
            let converged = pods.len() == 2
                && pods
                    .iter()
                    .all(|l| l.contains(" Ready ") && !l.contains("-sync-"))
                && !st.stdout.contains("synced by dev");
            if converged {
                break;
            }
            assert!(Instant::now() < end, "{}", st.stdout);
            std::thread::sleep(Duration::from_secs(2));
        }
        Some(())
    });
    let _ = slipway_in(PROFILE, &["down", "--cluster"], &[]);
    eprintln!(
        "e2e_sync wall time: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    if let Err(e) = converged {
        std::panic::resume_unwind(e);
    }
}
