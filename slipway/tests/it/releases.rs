//! Tier 2, releases: Helm 3 and Helm 4 against a fake helm that rejects the other major's flags
//! (as cobra does), an unsupported helm, the remembered tool versions, `rollback`,
//! the render stage and `logs`.

use crate::support::{Out, Sandbox};

fn ok(s: &Sandbox, args: &[&str]) -> Out {
    let o = s.run(args);
    assert_eq!(o.code, 0, "`{}` failed:\n{}", args.join(" "), o.all());
    o
}

fn upgrade_argv(s: &Sandbox) -> String {
    s.argv_lines()
        .into_iter()
        .rfind(|l| l.starts_with("helm upgrade"))
        .expect("helm upgrade ran")
}

/// Make the fixture's release atomic.
fn atomic(s: &Sandbox) {
    let cfg = s.project.join("pipeline.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replacen("[releases.web]\n", "[releases.web]\natomic = true\n", 1),
    )
    .unwrap();
}

#[test]
fn helm_4_gets_its_own_flags() {
    let mut s = Sandbox::new();
    s.set_env("FAKE_HELM_VERSION", "v4.3.1");
    let o = ok(&s, &["deploy-local"]);
    let up = upgrade_argv(&s);
    assert!(up.contains("--server-side=true --force-conflicts"), "{up}");
    assert!(!up.contains("--atomic"), "{up}");
    assert!(
        o.stderr
            .contains("helm 4.3.1, release web: server-side apply"),
        "the run says which helm and what it decided:\n{}",
        o.stderr
    );
    // An atomic release: Helm 4 calls it --rollback-on-failure and waits with the
    // configured strategy.
    atomic(&s);
    ok(&s, &["deploy-local"]);
    let up = upgrade_argv(&s);
    assert!(up.contains("--wait=watcher --rollback-on-failure"), "{up}");
}

#[test]
fn helm_3_is_detected_and_the_plan_follows_it() {
    let mut s = Sandbox::new();
    s.set_env("FAKE_HELM_VERSION", "v3.22.0");
    // Nothing remembered yet: the plan assumes Helm 4, preflight finds Helm 3 and the
    // run re-plans (the fake rejects Helm 4's flags, so a stale plan would fail).
    let before = s.run(&["plan"]);
    assert!(
        before.stdout.contains("# helm 4 (assumed"),
        "{}",
        before.stdout
    );
    let o = ok(&s, &["deploy-local"]);
    let up = upgrade_argv(&s);
    assert!(
        !up.contains("--server-side") && !up.contains("--force-conflicts"),
        "{up}"
    );
    assert!(
        o.stderr
            .contains("helm 3.22.0, release web: client-side apply"),
        "{}",
        o.stderr
    );
    // Now the version is remembered: `plan` (which runs nothing) shows Helm 3's argv.
    let after = ok(&s, &["plan"]);
    assert!(after.stdout.contains("# helm 3.22.0\n"), "{}", after.stdout);
    assert!(!after.stdout.contains("--server-side="), "{}", after.stdout);
    atomic(&s);
    ok(&s, &["deploy-local"]);
    let up = upgrade_argv(&s);
    assert!(up.contains("--wait --atomic"), "{up}");
}

#[test]
fn tool_versions_are_asked_once_per_binary() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let o = ok(&s, &["deploy-local"]);
    assert_eq!(s.count("helm version"), 1, "{:?}", s.argv_lines());
    assert_eq!(s.count("kind version"), 1, "{:?}", s.argv_lines());
    assert!(o.stderr.contains(", remembered)"), "{}", o.stderr);
    // A replaced binary is asked again.
    let helm = s.bin.join("helm");
    std::fs::remove_file(&helm).unwrap();
    std::fs::copy(
        crate::support::repo().join("slipway/tests/it/support/fake_tool.py"),
        &helm,
    )
    .unwrap();
    ok(&s, &["deploy-local"]);
    assert_eq!(s.count("helm version"), 2, "{:?}", s.argv_lines());
}

#[test]
fn unsupported_helm_is_refused_at_preflight() {
    for (version, says) in [("v2.17.0", "Helm 2 or not helm?"), ("v3.12.3", "3.12.3 at")] {
        let mut s = Sandbox::new();
        s.set_env("FAKE_HELM_VERSION", version);
        let o = s.run(&["deploy-local"]);
        assert_eq!(o.code, 10, "{version}:\n{}", o.all());
        assert!(o.stderr.contains(says), "{version}:\n{}", o.stderr);
        assert!(
            o.stderr.contains("install Helm 4") || o.stderr.contains("upgrade helm to 3.13.0"),
            "{}",
            o.stderr
        );
        assert!(!s.ran("kind create"), "nothing ran after preflight");
    }
}

#[test]
fn rollback_returns_to_the_previous_revision_and_checks_it() {
    for version in ["v4.3.1", "v3.22.0"] {
        let mut s = Sandbox::new();
        s.set_env("FAKE_HELM_VERSION", version);
        ok(&s, &["deploy-local"]);
        ok(&s, &["deploy-local", "--force"]);
        let o = ok(&s, &["rollback"]);
        let rb: Vec<String> = s
            .argv_lines()
            .into_iter()
            .filter(|l| l.starts_with("helm rollback"))
            .collect();
        assert_eq!(rb.len(), 1, "{rb:?}");
        assert!(
            rb[0].starts_with("helm rollback web --kube-context kind-fx --namespace apps"),
            "{}",
            rb[0]
        );
        assert_eq!(
            rb[0].contains("--force-conflicts"),
            version.starts_with("v4"),
            "{}",
            rb[0]
        );
        for stage in ["rollback", "rollout", "health", "smoke"] {
            assert!(
                o.stderr.contains(&format!("[{stage}] finished")),
                "{stage}:\n{}",
                o.stderr
            );
        }
        // A check that expects the current build's image is skipped, and says why.
        assert!(
            o.stderr.contains("which a rollback does not deploy"),
            "{}",
            o.stderr
        );
        // --to names a revision; an unknown release is a usage error.
        ok(&s, &["rollback", "web", "--to", "1"]);
        assert!(
            s.ran("helm rollback web --kube-context kind-fx --namespace apps 1"),
            "{:?}",
            s.argv_lines()
        );
        let bad = s.run(&["rollback", "nope"]);
        assert_eq!(bad.code, 2, "{}", bad.all());
        assert!(bad.stderr.contains("no release \"nope\""), "{}", bad.stderr);
    }
}

#[test]
fn force_conflicts_without_server_side_is_a_located_error() {
    let s = Sandbox::new();
    let cfg = s.project.join("pipeline.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replacen(
        "[releases.web]\n",
        "[releases.web]\napply = \"auto\"\nforce_conflicts = true\n",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let o = s.run(&["plan"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("pipeline.toml:18:1: error"),
        "located: {}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("force_conflicts needs apply = \"server-side\""),
        "{}",
        o.stderr
    );
}

#[test]
fn a_chart_that_does_not_render_fails_before_anything_is_built() {
    let s = Sandbox::new();
    s.rule(serde_json::json!({"tool": "helm", "match": ["template", "web chart"], "exit": 1,
        "stderr": "Error: values don't meet the specifications of the schema(s) in the following chart(s):\nweb:\n- replicaCount: Invalid type. Expected: integer, given: string\n"}));
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 21, "{}", o.all());
    let first = o
        .stderr
        .lines()
        .find(|l| l.contains("error[render]"))
        .unwrap_or_default();
    assert!(
        first.contains("release web: chart chart does not render with the pipeline's values: replicaCount: Invalid type"),
        "the first error line locates it: {first}\n{}",
        o.stderr
    );
    assert!(o.stderr.contains("[releases.web]"), "{}", o.stderr);
    for never in ["kind create", "docker build", "helm upgrade", "kubectl"] {
        assert!(
            !s.argv_lines().iter().any(|l| l.starts_with(never)
                && !l.contains("version")
                && !l.contains("config view")),
            "`{never}` ran: {:?}",
            s.argv_lines()
        );
    }
    // Fixed: it renders, and a rerun with the same inputs does not render again.
    s.clear_rules();
    ok(&s, &["deploy-local"]);
    let o = ok(&s, &["deploy-local"]);
    assert_eq!(s.count("helm template"), 2, "{:?}", s.argv_lines());
    assert!(
        o.stderr.contains("web rendered with these inputs before"),
        "{}",
        o.stderr
    );
    // A source edit rebuilds the image and upgrades the release, but a new image tag
    // renders as the old one did: no `helm template` again.
    std::fs::write(s.project.join("app/main.txt"), "edited\n").unwrap();
    let o = ok(&s, &["deploy-local"]);
    assert_eq!(s.count("helm template"), 2, "{:?}", s.argv_lines());
    assert!(
        o.stderr.contains("web rendered with these inputs before"),
        "{}",
        o.stderr
    );
    assert_eq!(s.count("helm upgrade"), 2, "{:?}", s.argv_lines());
    // A values change renders again.
    std::fs::write(s.project.join("chart/values.yaml"), "replicaCount: 3\n").unwrap();
    ok(&s, &["deploy-local"]);
    assert_eq!(s.count("helm template"), 3, "{:?}", s.argv_lines());
}

#[test]
fn logs_stream_each_release_or_one_workload() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    s.rule(serde_json::json!({"tool": "kubectl", "match": ["logs", "--selector=app.kubernetes.io/instance=web"],
        "stdout": "[pod/web-0/web] listening on 0.0.0.0:8080\n[pod/web-1/web] GET /healthz 200\n"}));
    let o = ok(&s, &["logs"]);
    assert!(
        o.stdout.contains(
            "[pod/web-0/web] listening on 0.0.0.0:8080\n[pod/web-1/web] GET /healthz 200\n"
        ),
        "stdout:\n{}",
        o.stdout
    );
    assert!(s.ran("kubectl --context kind-fx --namespace apps logs --selector=app.kubernetes.io/instance=web --all-containers --prefix --tail=50"), "{:?}", s.argv_lines());
    ok(&s, &["logs", "deployment/web", "-f", "--tail", "5"]);
    assert!(
        s.ran(
            "logs deployment/web --all-containers --prefix --tail=5 --max-log-requests=20 --follow"
        ),
        "{:?}",
        s.argv_lines()
    );
    let bad = s.run(&["logs", "nope"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    // `plan --job logs` lists it, running nothing.
    let plan = ok(&s, &["plan", "--job", "logs"]);
    assert!(
        plan.stdout
            .contains("logs '--selector=app.kubernetes.io/instance=web' --all-containers"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_failed_hook_job_is_named_with_its_output() {
    let s = Sandbox::new();
    s.rule(serde_json::json!({"tool": "helm", "match": ["upgrade"], "exit": 1,
        "stderr": "Error: UPGRADE FAILED: pre-upgrade hooks failed: 1 error occurred:\n\t* job web-pre-upgrade failed: BackoffLimitExceeded\n"}));
    let jobs = serde_json::json!({"items": [{"kind": "Job", "metadata": {"name": "web-pre-upgrade", "annotations": {"helm.sh/hook": "pre-upgrade"}},
        "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}},
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}}]});
    s.rule(serde_json::json!({"tool": "kubectl", "match": ["get", "daemonsets,jobs"], "stdout": jobs.to_string()}));
    let pods = serde_json::json!({"items": [{"metadata": {"name": "web-pre-upgrade-x1", "labels": {"batch.kubernetes.io/controller-uid": "u1"}},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "migrate", "state": {"terminated": {"reason": "Error", "exitCode": 1}}}]}}]});
    s.rule(serde_json::json!({"tool": "kubectl", "match": ["get", "pods"], "stdout": pods.to_string()}));
    s.rule(serde_json::json!({"tool": "kubectl", "match": ["logs", "web-pre-upgrade-x1"], "stdout": "migration 0042 failed: relation exists\n"}));
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 15, "{}", o.all());
    let first = o
        .stderr
        .lines()
        .find(|l| l.contains("error[deploy]"))
        .unwrap_or_default();
    assert!(
        first.contains("hook job/web-pre-upgrade failed: BackoffLimitExceeded"),
        "{first}\n{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("| migration 0042 failed: relation exists"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("hook Job failed"), "{}", o.stderr);
}

#[test]
fn a_node_image_that_cannot_be_pulled_gets_the_offline_hint() {
    let s = Sandbox::new();
    s.rule(serde_json::json!({"tool": "kind", "match": ["create", "cluster"], "exit": 1,
        "stderr": "ERROR: failed to create cluster: failed to pull image \"kindest/node:v1.34.0\": command \"docker pull kindest/node:v1.34.0\" failed with error: exit status 1\nError response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such host\n"}));
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 11, "{}", o.all());
    assert!(
        o.stderr.contains("could not be pulled") && o.stderr.contains("offline node image"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("privileged"), "{}", o.stderr);
}

/// Guard probes run at once before the stages when the cluster is up, each once; once
/// a guarded step runs (an input changed), later guards ask again.
#[test]
fn guard_probes_are_read_ahead_once_and_asked_again_after_a_change() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let before = s.argv_lines().len();
    let o = ok(&s, &["deploy-local"]);
    let second: Vec<String> = s.argv_lines()[before..].to_vec();
    let count = |needle: &str| second.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("helm status web"), 1, "{second:?}");
    assert_eq!(count("docker image inspect"), 1, "{second:?}");
    assert_eq!(count("crictl inspecti"), 1, "{second:?}");
    assert!(
        !second.iter().any(|l| l.starts_with("docker build")
            || l.starts_with("kind load")
            || l.starts_with("helm upgrade")),
        "{second:?}"
    );
    assert!(
        o.stderr.contains("already on all 1 node(s)"),
        "{}",
        o.stderr
    );
    // An input changes: the image is rebuilt, and the load and upgrade are not skipped on
    // what was read before the build.
    std::fs::write(s.project.join("app/main.txt"), "changed\n").unwrap();
    let before = s.argv_lines().len();
    ok(&s, &["deploy-local"]);
    let third: Vec<String> = s.argv_lines()[before..].to_vec();
    for step in ["docker build", "kind load", "helm upgrade"] {
        assert!(
            third.iter().any(|l| l.starts_with(step)),
            "{step} did not run: {third:?}"
        );
    }
}

#[test]
fn junit_report_has_a_case_per_stage_and_check() {
    let mut s = Sandbox::new();
    let o = ok(&s, &["deploy-local", "--junit", "reports/slipway.xml"]);
    let xml = std::fs::read_to_string(s.project.join("reports/slipway.xml")).unwrap();
    assert!(
        xml.contains("<testsuite name=\"slipway deploy-local\" tests=\""),
        "{xml}"
    );
    assert!(xml.contains("failures=\"0\""), "{xml}");
    for stage in crate::fake_tools::STAGES {
        assert!(
            xml.contains(&format!(
                "classname=\"deploy-local.stages\" name=\"{stage}\""
            )),
            "{stage}: {xml}"
        );
    }
    assert!(xml.contains("name=\"check healthz\""), "{xml}");
    assert!(!xml.contains(crate::support::CANARY), "{xml}");
    assert!(o.stderr.contains("[run] succeeded"));
    // A failing smoke check is a failure of its case and of its stage.
    s.set_env(
        "FAKE_HTTP",
        &serde_json::json!({"GET /healthz": {"status": 500, "body": "boom"}}).to_string(),
    );
    let f = s.run(&["smoke", "--junit", "reports/smoke.xml"]);
    assert_eq!(f.code, 18, "{}", f.all());
    let xml = std::fs::read_to_string(s.project.join("reports/smoke.xml")).unwrap();
    assert!(xml.contains("failures=\"2\""), "{xml}");
    assert!(
        xml.contains("<failure message=\"GET /healthz -&gt; 500"),
        "{xml}"
    );
}

#[test]
fn a_docker_daemon_that_does_not_answer_is_named_with_its_fix() {
    for (stderr, says, fix) in [
        ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n", "no Docker daemon answers", "dockerd"),
        ("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock\n", "may not use its socket", "docker group"),
    ] {
        let s = Sandbox::new();
        s.rule(serde_json::json!({"tool": "docker", "match": ["info"], "stderr": stderr, "exit": 1}));
        let o = s.run(&["deploy-local"]);
        assert_eq!(o.code, 10, "{}", o.all());
        assert!(o.stderr.contains(says) && o.stderr.contains(fix), "{}", o.stderr);
    }
}

/// `rollback` changes the cluster: the context guard applies to it as to deploy-local.
#[test]
fn rollback_is_guarded_like_deploy_local() {
    let mut s = Sandbox::new();
    s.set_env("FAKE_CONTEXTS", "prod");
    ok(&s, &["deploy-local"]);
    // A second revision, so there is one to return to.
    ok(&s, &["deploy-local", "--force"]);
    let o = s.run(&["rollback", "--kube-context", "prod"]);
    assert_eq!(o.code, 10, "{}", o.all());
    assert!(o.stderr.contains("context guard"), "{}", o.stderr);
    assert!(!s.ran("helm rollback"));
    // Told so, it goes ahead.
    let o = ok(
        &s,
        &["rollback", "--kube-context", "prod", "--allow-context"],
    );
    assert!(
        s.ran("helm rollback web --kube-context prod"),
        "{}",
        o.all()
    );
}
