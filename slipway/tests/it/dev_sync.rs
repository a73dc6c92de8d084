//! Tier 2: `dev`'s sync rounds (`[images.NAME.sync]`) against the fake tools. A change
//! under `covers` is synced into the running pods (`kubectl exec -i … put`) with no
//! build, load or helm upgrade; a change outside falls back to the full round, naming
//! the file; a broken compile copies nothing; `status` shows the synced pods.

use std::time::{Duration, Instant};

use crate::coverage_gaps::{spawn_reading, wait_in};
use crate::signals::sigint;
use crate::support::Sandbox;

const SYNC: &str = r#"
[images.web.sync]
covers = ["app/main.txt"]
files = [{ from = "app/artifact.txt", to = "/srv/artifact.txt" }, { from = "app/main.txt", to = "/web" }]
command = ["/web", "serve"]
"#;

/// The `n`th occurrence of `needle` in the dev loop's output has appeared.
fn wait_count(buf: &std::sync::Arc<std::sync::Mutex<String>>, needle: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while buf.lock().unwrap().matches(needle).count() < n {
        assert!(
            Instant::now() < deadline,
            "never printed {needle:?} {n} times:\n{}",
            buf.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_covered_change_is_synced_and_anything_else_takes_the_full_round() {
    let s = Sandbox::new();
    s.append_config(SYNC);
    let (mut c, buf) = spawn_reading(&s, &["dev", "--output", "json"]);
    wait_in(&buf, "Ctrl-C to stop");
    // The first round deploys the dev variant, built from the image.
    let lines = s.argv_lines();
    let variant = lines
        .iter()
        .find(|l| l.starts_with("docker build --tag web:c-") && l.contains("-sync-"))
        .unwrap_or_else(|| panic!("no dev variant build: {lines:#?}"))
        .clone();
    let variant_tag = variant
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_start_matches("web:")
        .to_string();
    let dockerfile = s
        .calls()
        .into_iter()
        .find(|c| {
            c["tool"] == "docker"
                && c["argv"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "-"))
        })
        .map(|c| c["stdin"].as_str().unwrap_or_default().to_string())
        .unwrap();
    assert!(dockerfile.starts_with("FROM web:c-"), "{dockerfile}");
    assert!(
        dockerfile.contains(r#"ENTRYPOINT ["/.slipway/sync","--","/web","serve"]"#),
        "{dockerfile}"
    );
    assert!(s.ran(&format!("image.tag={variant_tag}")), "{lines:#?}");
    let upgrades = s.count("helm upgrade --install web");
    let builds = s.count("docker build");
    let loads = s.count("kind load");

    // A covered change: compiled, copied into both pods, restarted; nothing rebuilt.
    std::fs::write(s.project.join("app/main.txt"), "v2\n").unwrap();
    wait_in(&buf, "synced 2 pod(s)");
    let calls = s.calls();
    let puts: Vec<&serde_json::Value> = calls
        .iter()
        .filter(|c| {
            c["tool"] == "kubectl"
                && c["argv"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "exec"))
        })
        .collect();
    let argv = |c: &serde_json::Value| {
        c["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut got: Vec<String> = puts.iter().map(|c| argv(c)).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "--context kind-fx --namespace apps exec -i web-0 -c web -- /.slipway/sync put --restart --grace-ms 10000 /web",
            "--context kind-fx --namespace apps exec -i web-0 -c web -- /.slipway/sync put /srv/artifact.txt",
            "--context kind-fx --namespace apps exec -i web-1 -c web -- /.slipway/sync put --restart --grace-ms 10000 /web",
            "--context kind-fx --namespace apps exec -i web-1 -c web -- /.slipway/sync put /srv/artifact.txt",
        ]
    );
    // Each file goes on stdin, the restart last.
    for c in &puts {
        let a = argv(c);
        let want = if a.ends_with("/web") {
            "v2\n"
        } else {
            "built\n"
        };
        assert_eq!(c["stdin"].as_str(), Some(want), "{a}");
    }
    assert_eq!(
        s.count("helm upgrade --install web"),
        upgrades,
        "no helm upgrade"
    );
    assert_eq!(s.count("docker build"), builds, "no image build");
    assert_eq!(s.count("kind load"), loads, "no load");
    assert!(
        s.ran("kubectl --context kind-fx --namespace apps annotate pod web-0 --overwrite"),
        "{:#?}\n{}",
        s.argv_lines(),
        buf.lock().unwrap()
    );

    // status says the pods run synced files.
    let st = s.run(&["status"]);
    assert!(
        st.stdout.contains("synced by dev (") && st.stdout.contains("app/main.txt"),
        "{}{}",
        st.stdout,
        st.stderr
    );

    // A broken compile: nothing copied, the pods keep what they run.
    let prebuild = s.project.join("prebuild.sh");
    let good = std::fs::read_to_string(&prebuild).unwrap();
    std::fs::write(
        &prebuild,
        "echo 'error[E0308]: mismatched types' >&2\nexit 101\n",
    )
    .unwrap();
    let execs = s.count(" exec -i ");
    std::fs::write(s.project.join("app/main.txt"), "v3 broken\n").unwrap();
    wait_in(&buf, "the compile failed: nothing was copied");
    assert_eq!(
        s.count(" exec -i "),
        execs,
        "a broken compile copies nothing"
    );
    std::fs::write(&prebuild, good).unwrap();

    // A change outside the rule: the full round, with the file named.
    std::fs::write(
        s.project.join("app/Dockerfile"),
        "FROM scratch\nCOPY main.txt /\nCOPY artifact.txt /srv/\n",
    )
    .unwrap();
    wait_in(
        &buf,
        "full round: app/Dockerfile is not covered by a sync rule",
    );
    wait_count(&buf, "Ctrl-C to stop", 4);
    assert!(
        s.count("helm upgrade --install web") > upgrades,
        "the full round upgrades: {:#?}",
        s.argv_lines()
    );
    sigint(&c);
    let _ = c.wait();
}
