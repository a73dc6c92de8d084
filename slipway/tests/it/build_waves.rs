//! Tier 2: images built once and at the same time (issue #21). A pre-build several
//! images share runs once; independent images build at the same time, never more
//! than `BUILD_CONCURRENCY` at once; two images of one context never build at once.
//! The fake docker's builds take a fixed time (a rule's `sleep`) and the fakes log
//! when each started, which proves overlap and the bound.

use serde_json::{json, Value};

use crate::support::Sandbox;

/// Each fake `docker build` takes at least this long.
const BUILD_SECS: f64 = 1.5;

/// A sandbox whose pipeline has, besides the fixture's `web`, the images `names`
/// each in `context` (created with a Dockerfile), with `pre_build` if given.
fn with_images(s: &Sandbox, images: &[(&str, &str, Option<&str>)]) {
    let mut text = String::new();
    for (name, context, pre_build) in images {
        let dir = s.project.join(context);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), format!("FROM scratch\n# {name}\n")).unwrap();
        std::fs::write(dir.join("main.txt"), *name).unwrap();
        text.push_str(&format!("\n[images.{name}]\ncontext = {context:?}\n"));
        if let Some(cmd) = pre_build {
            text.push_str(&format!(
                "[images.{name}.pre_build]\ncommand = [\"sh\", \"-c\", {cmd:?}]\n"
            ));
        }
    }
    s.append_config(&text);
    s.rule(json!({"tool": "docker", "match": ["build", "--tag"], "sleep": BUILD_SECS, "then_simulate": true}));
}

/// When each `docker build` started, by image tag's repository, in start order.
fn build_starts(s: &Sandbox) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = s
        .calls()
        .iter()
        .filter(|c| c["tool"] == "docker" && c["argv"][0] == "build")
        .map(|c| {
            let argv: Vec<&str> = c["argv"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let tag = argv[argv.iter().position(|a| *a == "--tag").unwrap() + 1];
            let repo = tag.split(':').next().unwrap().to_string();
            (repo, c["started"].as_f64().unwrap())
        })
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    v
}

fn build(s: &Sandbox) -> crate::support::Out {
    let o = s.run(&["build", "--output", "json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    o
}

/// Independent images (one context each) build at the same time, at most
/// BUILD_CONCURRENCY at once: of any BUILD_CONCURRENCY + 1 builds, two are in one
/// lane, so the later started at least a build's time after the earlier.
#[test]
fn independent_images_build_at_once_up_to_the_bound() {
    let n = slipway::plan::BUILD_CONCURRENCY;
    assert!(n >= 2, "a bound of {n} builds nothing at the same time");
    let s = Sandbox::new();
    let names: Vec<String> = (0..n).map(|i| format!("svc{i}")).collect();
    let images: Vec<(&str, &str, Option<&str>)> = names
        .iter()
        .map(|name| (name.as_str(), name.as_str(), None))
        .collect();
    with_images(&s, &images);
    build(&s);
    let starts = build_starts(&s);
    assert_eq!(starts.len(), n + 1, "{starts:?}");
    // The first BUILD_CONCURRENCY began together (each lasts BUILD_SECS)...
    assert!(
        starts[n - 1].1 - starts[0].1 < BUILD_SECS * 0.8,
        "the first {n} builds did not overlap: {starts:?}"
    );
    // ...and no more than that at once.
    for w in starts.windows(n + 1) {
        assert!(
            w[n].1 - w[0].1 >= BUILD_SECS * 0.95,
            "more than {n} builds at once: {starts:?}"
        );
    }
}

/// Two images of one build context never build at the same time, while an image of
/// another context builds beside them.
#[test]
fn one_context_builds_one_image_at_a_time() {
    let s = Sandbox::new();
    with_images(
        &s,
        &[
            ("api", "shared", None),
            ("worker", "./shared/", None),
            ("other", "other", None),
        ],
    );
    build(&s);
    let starts = build_starts(&s);
    let at = |repo: &str| starts.iter().find(|(r, _)| r == repo).unwrap().1;
    assert!(
        (at("api") - at("worker")).abs() >= BUILD_SECS * 0.95,
        "api and worker (one context) built at once: {starts:?}"
    );
    assert!(
        (at("api") - at("other")).abs() < BUILD_SECS * 0.8,
        "another context did not build beside them: {starts:?}"
    );
}

/// A pre-build two images share (the same command: one cargo workspace) runs once,
/// before either image builds; the plan says so; nothing changed, it is skipped.
#[test]
fn a_shared_pre_build_runs_once() {
    let s = Sandbox::new();
    let cmd = "echo ran >> prebuilds.log";
    with_images(
        &s,
        &[
            ("api", "svc/api", Some(cmd)),
            ("worker", "svc/worker", Some(cmd)),
        ],
    );
    let o = build(&s);
    let log = s.project.join("prebuilds.log");
    let ran = |log: &std::path::Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(ran(&log), 1, "{}", o.all());
    let events: Vec<Value> = o
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step_started" && e["stage"] == "build")
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert_eq!(
        started
            .iter()
            .filter(|s| s.starts_with("pre-build/"))
            .count(),
        2,
        "the fixture's own pre-build and the shared one: {started:?}"
    );
    assert!(started.contains(&"pre-build/api"), "{started:?}");
    assert!(!started.contains(&"pre-build/worker"), "{started:?}");
    let plan = s.run(&["plan", "--job", "build"]);
    assert!(
        plan.stdout
            .contains("# pre-build api, worker (one step: the same command)"),
        "{}",
        plan.all()
    );
    // Nothing changed: every image of it is built, so the shared pre-build is skipped.
    let again = build(&s);
    assert_eq!(ran(&log), 1, "{}", again.all());
    assert!(
        again.stdout.contains("are already built"),
        "{}",
        again.stdout
    );
}

/// The `delivered` events of a run's NDJSON.
fn delivered(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "delivered")
        .collect()
}

/// A load says which way the image went and the archive's bytes (the image's size),
/// in the NDJSON event and in the plain summary.
#[test]
fn a_load_reports_its_path_and_the_archives_bytes() {
    let s = Sandbox::new();
    s.rule(json!({"tool": "docker", "match": ["{{.Size}}"], "stdout": "5300000\n"}));
    let o = s.run(&["load", "--output", "json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let d = delivered(&o.stdout);
    assert_eq!(d.len(), 1, "{}", o.stdout);
    assert_eq!(d[0]["image"], "web");
    assert_eq!(d[0]["path"], "kind-load");
    assert_eq!(d[0]["bytes"], 5_300_000);
    assert!(d[0]["reference"].as_str().unwrap().starts_with("web:c-"));
    assert!(d[0]["duration_ms"].is_u64());
    // Nothing changed: nothing moves, and no event says it did.
    let again = s.run(&["load", "--output", "json"]);
    assert!(delivered(&again.stdout).is_empty(), "{}", again.stdout);
    let s = Sandbox::new();
    s.rule(json!({"tool": "docker", "match": ["{{.Size}}"], "stdout": "5300000\n"}));
    let plain = s.run(&["load"]);
    assert!(
        plain
            .stderr
            .contains("[load] web: kind-load, 5.3 MB moved in "),
        "{}",
        plain.all()
    );
}

/// A registry on this machine that answers `/v2/`, one manifest and its config: two
/// layers, the first (diff ID `aaaa…`) 1000 bytes compressed, the second 7 MB.
fn tiny_registry() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut first = String::new();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            if r.read_line(&mut first).is_err() {
                continue;
            }
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).map_or(true, |n| n == 0) || l == "\r\n" {
                    break;
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
            let body = if path == "/v2/" {
                "{}".to_string()
            } else if path.contains("/manifests/sha256:feed") {
                json!({
                    "schemaVersion": 2,
                    "config": {"digest": "sha256:c0f1", "size": 700},
                    "layers": [
                        {"digest": "sha256:l1", "size": 1000},
                        {"digest": "sha256:l2", "size": 7_000_000}
                    ]
                })
                .to_string()
            } else if path.ends_with("/blobs/sha256:c0f1") {
                json!({"rootfs": {"diff_ids": [
                    format!("sha256:{}", "a".repeat(64)),
                    format!("sha256:{}", "b".repeat(64))
                ]}})
                .to_string()
            } else {
                let _ = conn.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// A sandbox whose cluster advertises a registry on this machine (KEP-1755) that
/// answers (so it is not wired again), and a profile `via-registry` naming it with
/// `delivery = DELIVERY` (`auto`: the default, left unset).
fn advertised_registry(delivery: &str) -> (Sandbox, u16) {
    let port = tiny_registry();
    let s = Sandbox::new();
    s.rule(json!({
        "tool": "kubectl",
        "match": ["configmap/local-registry-hosting"],
        "stdout": format!("host: \"localhost:{port}\"\n")
    }));
    let delivery = match delivery {
        "auto" => String::new(),
        d => format!("cluster.kind.delivery = \"{d}\"\n"),
    };
    s.append_config(&format!(
        "\n[profiles.via-registry]\n{delivery}cluster.kind.registry = \"localhost:{port}\"\n"
    ));
    (s, port)
}

/// A push to the local registry says which layers it sent and their bytes, read
/// back from the registry's manifest: only the changed layer counts.
#[test]
fn a_registry_push_reports_the_pushed_layers_bytes() {
    let (s, port) = advertised_registry("registry");
    s.rule(json!({
        "tool": "docker",
        "match": ["push"],
        "stdout": format!(
            "The push refers to repository [localhost:{port}/web]\n{a}: Preparing\n{b}: Preparing\n{a}: Pushed\n{b}: Layer already exists\nc-1: digest: sha256:feed size: 739\n",
            a = "a".repeat(12),
            b = "b".repeat(12)
        )
    }));
    let o = s.run(&["load", "--profile", "via-registry", "--output", "json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let d = delivered(&o.stdout);
    assert_eq!(d.len(), 1, "{}", o.stdout);
    assert_eq!(d[0]["path"], "registry-push");
    assert_eq!(d[0]["layers_sent"], 1);
    assert_eq!(d[0]["layers"], 2);
    assert_eq!(d[0]["bytes"], 1000, "{}", d[0]);
}

/// kind's default `delivery = "auto"`: `kind load` while the local registry is not
/// built, saying so; once its binary is in slipway's cache, a push to the registry
/// and a pull into every node right after it (so `imagePullPolicy: Never` charts
/// keep working), each node's pull naming the image ID; nothing again when the nodes
/// hold it.
#[test]
fn auto_delivery_takes_the_registry_once_it_is_built_and_every_node_pulls() {
    let (s, port) = advertised_registry("auto");
    let before = s.run(&["load", "--profile", "via-registry", "--output", "json"]);
    assert_eq!(before.code, 0, "{}", before.all());
    let d = delivered(&before.stdout);
    assert_eq!(d.len(), 1, "{}", before.stdout);
    assert_eq!(d[0]["path"], "kind-load");
    assert!(
        d[0]["why"]
            .as_str()
            .unwrap_or("")
            .contains("no local registry yet"),
        "{}",
        d[0]
    );
    assert!(
        !s.ran("docker push") && !s.ran(" ctr "),
        "{:?}",
        s.argv_lines()
    );

    // The registry's binary, where its recipe leaves it.
    let bin = s.dir.path().join(".cache/slipway/registry/v3.1.2");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("registry"), "").unwrap();
    let plan = s.run(&["plan", "--profile", "via-registry"]);
    assert!(
        plan.stdout
            .contains("# delivery registry-push: auto: the local registry is built"),
        "{}",
        plan.all()
    );
    let after = s.run(&["load", "--profile", "via-registry", "--output", "json"]);
    assert_eq!(after.code, 0, "{}", after.all());
    let d = delivered(&after.stdout);
    assert_eq!(d.len(), 1, "{}", after.stdout);
    assert_eq!(d[0]["path"], "registry-push");
    assert_eq!(d[0]["why"], "auto: the local registry is built");
    let reference = d[0]["reference"].as_str().unwrap().to_string();
    assert!(
        reference.starts_with(&format!("localhost:{port}/web:c-")),
        "{reference}"
    );
    let pulls: Vec<String> = s
        .argv_lines()
        .into_iter()
        .filter(|l| l.contains(" ctr ") && l.contains(" pull "))
        .collect();
    assert_eq!(
        pulls,
        vec![format!(
            "docker exec fx-control-plane ctr --namespace k8s.io images pull --hosts-dir /etc/containerd/certs.d {reference}"
        )],
    );
    assert!(
        after
            .stdout
            .lines()
            .any(|l| l.contains("\"pull/web\"") && l.contains("step_finished")),
        "{}",
        after.stdout
    );
    // The nodes hold it now: neither the push nor the pull runs again.
    let again = s.run(&["load", "--profile", "via-registry", "--output", "json"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(delivered(&again.stdout).is_empty(), "{}", again.stdout);
    assert_eq!(s.count(" ctr "), 1, "{:?}", s.argv_lines());
}

/// A node that cannot pull after the push fails the load stage (exit 13), naming the
/// registry path and what to look at.
#[test]
fn a_node_that_cannot_pull_from_the_local_registry_fails_the_load() {
    let (s, _) = advertised_registry("registry");
    s.rule(json!({
        "tool": "docker",
        "match": ["ctr"],
        "stderr": "ctr: failed to resolve reference: connection refused\n",
        "exit": 1
    }));
    let o = s.run(&["load", "--profile", "via-registry"]);
    assert_eq!(o.code, 13, "{}", o.all());
    assert!(
        o.stderr.contains("could not pull") && o.stderr.contains("docker logs slipway-registry"),
        "{}",
        o.all()
    );
}
