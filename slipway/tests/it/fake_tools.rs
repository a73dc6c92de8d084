//! Tier 2: the built binary against fake docker/kind/minikube/helm/kubectl that record
//! argv, stdin and env and can be told to fail, hang or print given output.

use std::time::{Duration, Instant};

use crate::support::{alive, normalize, Sandbox, CANARY};
use serde_json::json;

/// A deploy-local's stages, in order.
pub(crate) const STAGES: [&str; 10] = [
    "preflight",
    "render",
    "cluster",
    "build",
    "load",
    "secrets",
    "deploy",
    "rollout",
    "health",
    "smoke",
];

fn ok(s: &Sandbox, args: &[&str]) -> crate::support::Out {
    let o = s.run(args);
    assert_eq!(o.code, 0, "`{}` failed:\n{}", args.join(" "), o.all());
    o
}

#[test]
fn kind_profile_runs_every_stage_in_order() {
    let s = Sandbox::new();
    let o = ok(&s, &["deploy-local"]);
    crate::assert_argv!(normalize(&s.argv_lines()));
    for stage in STAGES {
        assert!(
            o.stderr.contains(&format!("[{stage}] finished")),
            "{stage} missing:\n{}",
            o.stderr
        );
    }
    assert!(o.stderr.contains("check version: passed"), "{}", o.stderr);
    assert!(o.stderr.contains("[run] succeeded"));
}

#[test]
fn minikube_profile_sequence() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local", "--profile", "local-minikube"]);
    crate::assert_argv!(normalize(&s.argv_lines()));
}

#[test]
fn existing_profile_sequence() {
    let mut s = Sandbox::new();
    s.set_env("FAKE_CONTEXTS", "staging");
    let refused = s.run(&["deploy-local", "--profile", "existing"]);
    assert_eq!(
        refused.code,
        10,
        "deploy-local refuses a context it does not manage:\n{}",
        refused.all()
    );
    assert!(
        refused.stderr.contains("context guard"),
        "{}",
        refused.stderr
    );
    assert!(!s.ran("helm upgrade"));
    ok(
        &s,
        &["deploy-local", "--profile", "existing", "--allow-context"],
    );
    crate::assert_argv!(normalize(&s.argv_lines()));
}

#[test]
fn remote_profile_pushes_instead_of_loading() {
    let mut s = Sandbox::new();
    s.set_env("FAKE_CONTEXTS", "staging");
    ok(&s, &["load", "--profile", "remote"]);
    ok(&s, &["deploy", "--profile", "remote"]);
    crate::assert_argv!(normalize(&s.argv_lines()));
    assert!(!s.ran("kind load"));
}

/// A registry login: the password reaches `docker login` on stdin and the pull Secret
/// on kubectl's stdin, and nothing else: not argv, not the output, even when the login
/// fails and echoes what it read.
#[test]
fn a_registry_password_goes_only_to_stdin() {
    let pw = "fixture-registry-pw-4711";
    let mut s = Sandbox::new();
    s.set_env("FAKE_CONTEXTS", "staging");
    s.set_env("FIXTURE_REGISTRY_PASSWORD", pw);
    let load = ok(&s, &["load", "--profile", "remote-login"]);
    let deploy = ok(&s, &["deploy", "--profile", "remote-login"]);
    let calls = s.calls();
    let login = calls
        .iter()
        .find(|c| c["argv"][0] == "login")
        .unwrap_or_else(|| panic!("no docker login: {:?}", s.argv_lines()));
    assert_eq!(
        login["argv"],
        json!([
            "login",
            "registry.test",
            "--username",
            "ci-bot",
            "--password-stdin"
        ])
    );
    assert_eq!(login["stdin"], pw);
    let login_at = calls.iter().position(|c| c["argv"][0] == "login").unwrap();
    let push_at = calls.iter().position(|c| c["argv"][0] == "push").unwrap();
    assert!(login_at < push_at, "the login comes before the push");
    let secret = calls
        .iter()
        .filter_map(|c| c["stdin"].as_str())
        .find(|t| t.contains("kubernetes.io/dockerconfigjson"))
        .expect("a pull Secret was applied");
    let m: serde_json::Value = serde_json::from_str(secret).unwrap();
    assert_eq!(m["metadata"]["name"], "regcred");
    let cfg: serde_json::Value =
        serde_json::from_str(m["stringData"][".dockerconfigjson"].as_str().unwrap()).unwrap();
    assert_eq!(cfg["auths"]["registry.test"]["username"], "ci-bot");
    assert_eq!(cfg["auths"]["registry.test"]["password"], pw);
    for l in s.argv_lines() {
        assert!(!l.contains(pw), "the password is in argv: {l}");
    }
    for o in [&load, &deploy] {
        assert!(!o.all().contains(pw), "{}", o.all());
    }
    // A login that fails and prints what it was given: masked.
    s.rule(json!({"tool": "docker", "match": ["login"], "exit": 1, "echo_stdin": true}));
    let failed = s.run(&["load", "--profile", "remote-login", "--force"]);
    assert_eq!(failed.code, 13, "{}", failed.all());
    assert!(
        failed.stderr.contains("log in to registry.test as ci-bot"),
        "{}",
        failed.stderr
    );
    assert!(!failed.all().contains(pw), "{}", failed.all());
    // Unset: preflight names the variable, nothing runs.
    let mut unset = Sandbox::new();
    unset.set_env("FAKE_CONTEXTS", "staging");
    let o = unset.run(&["load", "--profile", "remote-login"]);
    assert_eq!(o.code, 10, "{}", o.all());
    assert!(
        o.stderr.contains("FIXTURE_REGISTRY_PASSWORD"),
        "{}",
        o.stderr
    );
    assert!(!unset.ran("docker login"));
}

/// A `job` check: the Job is created from the built image with the manifest on stdin,
/// read, its logs checked, and deleted; a pod that cannot start fails the check
/// within seconds, naming why, and its Job is deleted too.
#[test]
fn a_job_check_runs_once_and_cleans_up() {
    let mut s = Sandbox::new();
    let o = ok(&s, &["deploy-local", "--profile", "in-cluster"]);
    assert!(o.stderr.contains("check inside: passed"), "{}", o.stderr);
    let calls = s.calls();
    let create = calls
        .iter()
        .find(|c| {
            // (port-forward notes have no argv)
            c["tool"] == "kubectl"
                && c["argv"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|a| a == "create"))
        })
        .expect("a Job was created");
    let job: serde_json::Value = serde_json::from_str(create["stdin"].as_str().unwrap()).unwrap();
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    // The image this run built and loaded, by its content tag.
    let (repo, tag) = c["image"].as_str().unwrap().rsplit_once(':').unwrap();
    assert!(
        repo.ends_with("web") && tag.starts_with("c-") && tag.len() == 14,
        "{c}"
    );
    assert!(
        s.ran(&format!("kind load docker-image {repo}:{tag}")),
        "{:?}",
        s.argv_lines()
    );
    assert_eq!(c["args"], json!(["check", "http://web/healthz"]));
    assert!(
        s.ran("delete job/slipway-check-web-x7k2p"),
        "{:?}",
        s.argv_lines()
    );

    s.set_env("FAKE_JOB", "stuck");
    let created = s.count("create --filename -");
    let o = s.run(&["smoke", "--profile", "in-cluster"]);
    assert_eq!(o.code, 18, "{}", o.all());
    assert!(o.stderr.contains("ErrImageNeverPull"), "{}", o.stderr);
    // Settled at the first attempt: no second Job for the same missing image.
    assert_eq!(
        s.count("create --filename -"),
        created + 1,
        "{:?}",
        s.argv_lines()
    );
    assert_eq!(
        s.count("create --filename -"),
        s.count("delete job/"),
        "every Job created was deleted: {:?}",
        s.argv_lines()
    );
}

/// `during_rollout`: the Service is probed through `kubectl proxy` while the
/// releases upgrade; a first install is not measured (nothing served before it), a
/// clean upgrade passes with its count, and requests that fail during the upgrade
/// fail the run with what they got.
#[test]
fn a_during_rollout_check_counts_requests_through_the_service_proxy() {
    let mut s = Sandbox::new();
    let edit = |s: &Sandbox, text: &str| {
        std::fs::write(s.project.join("app/main.txt"), text).unwrap();
    };
    let o = ok(&s, &["deploy-local", "--profile", "zero-downtime"]);
    assert!(
        o.stderr.contains(
            "check steady: nothing answered before the upgrade (service web does not exist yet)"
        ),
        "{}",
        o.stderr
    );
    let proxy = "kubectl --context kind-fx proxy --unix-socket=";
    assert!(!s.ran(proxy), "no Service, no proxy: {:?}", s.argv_lines());
    // An upgrade that takes a second: about ten requests, all answered.
    s.rule(json!({"tool": "helm", "match": ["upgrade"], "sleep": 1, "then_simulate": true}));
    edit(&s, "second build\n");
    let o = ok(&s, &["deploy-local", "--profile", "zero-downtime"]);
    let line = o
        .stderr
        .lines()
        .find(|l| l.contains("check steady during the upgrade: passed"))
        .unwrap_or_else(|| panic!("no during-the-upgrade result:\n{}", o.stderr));
    let requests: u32 = line
        .split(" requests through ")
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {line}"));
    assert!(requests >= 8, "{line}");
    assert!(s.ran(proxy), "a ClusterIP Service: {:?}", s.argv_lines());
    assert!(
        line.contains("through the API server's service proxy"),
        "{line}"
    );
    assert!(line.contains(", 0 failed"), "{line}");
    // The Service has no ready endpoint for a moment during the upgrade.
    s.set_env("FAKE_PROXY_DOWN", "0.3-0.6");
    edit(&s, "third build\n");
    let o = s.run(&["deploy-local", "--profile", "zero-downtime"]);
    assert_eq!(o.code, 18, "{}", o.all());
    crate::support::assert_upgrade_requests_failed_with_503(&o.stderr);
    // The proxy is stopped whatever the outcome.
    for pid in s
        .calls()
        .iter()
        .filter_map(|c| c.get("proxy_pid").and_then(serde_json::Value::as_i64))
    {
        assert!(!alive(pid as i32), "kubectl proxy {pid} left running");
    }
}

/// `needs`: a release is upgraded only after those it needs are deployed and rolled
/// out; `down` removes it first; a cycle is a located config error.
#[test]
fn releases_deploy_after_what_they_need_and_go_down_first() {
    let s = Sandbox::new();
    let base = "[project]\nname = \"fixture\"\nnamespace = \"apps\"\n[cluster]\nprovider = \"kind\"\nname = \"fx\"\n";
    let rel = |name: &str, needs: &str| {
        format!("[releases.{name}]\nchart = \"chart\"\ntimeout = \"30s\"\nneeds = [{needs}]\n")
    };
    std::fs::write(
        s.project.join("needs.toml"),
        format!(
            "{base}{}{}{}",
            rel("api", "\"db\", \"cache\""),
            rel("db", ""),
            rel("cache", "")
        ),
    )
    .unwrap();
    let o = ok(
        &s,
        &["deploy-local", "--config", "needs.toml", "--output", "json"],
    );
    let ev = crate::e2e_kind::events(&o.stdout);
    let at = |event: &str, step: &str| {
        ev.iter()
            .position(|e| e["event"] == event && e["step"] == step)
            .unwrap_or_else(|| panic!("no {event} {step}:\n{}", o.stdout))
    };
    let api = at("step_started", "helm/api");
    for dep in ["db", "cache"] {
        assert!(
            at("step_finished", &format!("ready/{dep}")) < api,
            "api before {dep} was ready"
        );
    }
    let d = ok(&s, &["down", "--config", "needs.toml", "--output", "json"]);
    let order: Vec<String> = crate::e2e_kind::events(&d.stdout)
        .into_iter()
        .filter(|e| e["event"] == "step_started")
        .filter_map(|e| e["step"].as_str().map(String::from))
        .filter(|st| st.starts_with("uninstall/"))
        .collect();
    assert_eq!(order.len(), 3, "{order:?}");
    assert_eq!(order[0], "uninstall/api", "{order:?}");

    std::fs::write(
        s.project.join("cycle.toml"),
        format!("{base}{}{}", rel("api", "\"db\""), rel("db", "\"api\"")),
    )
    .unwrap();
    let c = s.run(&["plan", "--config", "cycle.toml"]);
    assert_eq!(c.code, 2, "{}", c.all());
    assert!(
        c.stderr.contains("releases need each other in a cycle: "),
        "{}",
        c.stderr
    );
    assert!(
        c.stderr.contains("cycle.toml:"),
        "the error is located: {}",
        c.stderr
    );
}

#[test]
fn kube_context_flag_is_refused_by_deploy_local_and_pinned_everywhere() {
    let mut s = Sandbox::new();
    s.set_env("FAKE_CONTEXTS", "prod");
    let o = s.run(&["deploy-local", "--kube-context", "prod"]);
    assert_eq!(o.code, 10);
    assert!(
        o.stderr
            .contains("not the local cluster it manages (kind-fx)"),
        "{}",
        o.stderr
    );
    // Every kubectl and helm call names its context.
    ok(&s, &["deploy-local"]);
    for l in s.argv_lines() {
        if l.starts_with("kubectl")
            && !l.contains(" version")
            && !l.contains("config get-contexts")
            && !l.contains("config view")
        {
            assert!(l.contains("--context kind-fx"), "unpinned: {l}");
        }
        if l.starts_with("helm") && !l.contains(" version") && !l.contains("dependency") {
            assert!(l.contains("--kube-context kind-fx"), "unpinned: {l}");
        }
    }
}

/// Each stage failing in turn: its exit code, the command and its output tail shown,
/// and nothing from a later stage run.
#[test]
fn every_stage_failure_stops_the_run_with_its_exit_code() {
    // Health's own read of the release's workloads names one whose pods crash; the
    // rollout's read (with Jobs) does not, so only the health stage sees it.
    let crash_workload = json!({"items": [{"kind": "Deployment",
        "metadata": {"name": "web-crash", "annotations": {"meta.helm.sh/release-name": "web", "meta.helm.sh/release-namespace": "shop"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web-crash"}}},
        "status": {"replicas": 1, "readyReplicas": 0}}]});
    let crash_pod = json!({"items": [{"metadata": {"name": "web-0", "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": "web-crash"}}, "spec": {"containers": [{"image": "web:x"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{"restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}}]}}]});
    let cases: Vec<(&str, i32, serde_json::Value, &str, &str)> = vec![
        (
            "preflight",
            10,
            json!({"tool": "helm", "match": ["version"], "stdout": "v3.2.0\n"}),
            "older than 3.13.0",
            "kind get clusters",
        ),
        (
            "cluster",
            11,
            json!({"tool": "kind", "match": ["create", "cluster"], "stderr": "boom-cluster\n", "exit": 1}),
            "boom-cluster",
            "docker build",
        ),
        (
            "build",
            12,
            json!({"tool": "docker", "match": ["build"], "stderr": "boom-build\n", "exit": 1}),
            "boom-build",
            "kind load",
        ),
        (
            "load",
            13,
            json!({"tool": "kind", "match": ["load", "docker-image"], "stderr": "boom-load\n", "exit": 1}),
            "boom-load",
            "apply",
        ),
        (
            "secrets",
            14,
            json!({"tool": "kubectl", "match": ["apply"], "stderr": "boom-secrets\n", "exit": 1}),
            "boom-secrets",
            "helm upgrade",
        ),
        (
            "deploy",
            15,
            json!({"tool": "helm", "match": ["upgrade"], "stderr": "boom-deploy\n", "exit": 1}),
            "boom-deploy",
            "port-forward",
        ),
        (
            "rollout",
            16,
            json!({"tool": "kubectl", "match": ["get", "deployments,statefulsets,daemonsets,jobs"], "stderr": "boom-rollout\n", "exit": 1}),
            "boom-rollout",
            "port-forward",
        ),
        (
            "health",
            17,
            json!([{"tool": "kubectl", "match": ["get", "pods"], "stdout": crash_pod.to_string()},
                {"tool": "kubectl", "match": ["daemonsets --output"], "stdout": crash_workload.to_string()}]),
            "CrashLoopBackOff",
            "port-forward",
        ),
    ];
    for (stage, code, rule, shown, not_run) in cases {
        let s = Sandbox::new();
        match rule {
            serde_json::Value::Array(rules) => rules.into_iter().for_each(|r| s.rule(r)),
            r => s.rule(r),
        }
        let o = s.run(&["deploy-local"]);
        assert_eq!(o.code, code, "{stage}: wrong exit code:\n{}", o.all());
        assert!(
            o.stderr.contains(&format!("error[{stage}]")),
            "{stage}: no error block:\n{}",
            o.stderr
        );
        assert!(
            o.stderr.contains(shown),
            "{stage}: output tail missing {shown:?}:\n{}",
            o.stderr
        );
        assert!(
            o.stderr.contains("hint:"),
            "{stage}: no hint:\n{}",
            o.stderr
        );
        assert!(
            o.stderr.contains(&format!("(exit code {code})")),
            "{stage}:\n{}",
            o.stderr
        );
        assert!(
            !s.ran(not_run),
            "{stage}: `{not_run}` ran after the failure"
        );
        if stage != "preflight" && stage != "health" {
            assert!(
                o.stderr.contains("command: "),
                "{stage}: the failed command is not shown:\n{}",
                o.stderr
            );
        }
    }
    // Smoke: the service answers 500.
    let mut s = Sandbox::new();
    s.set_env(
        "FAKE_HTTP",
        &json!({"GET /healthz": {"status": 500, "body": "boom-smoke"}}).to_string(),
    );
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 18, "{}", o.all());
    assert!(o.stderr.contains("GET /healthz -> 500"), "{}", o.stderr);
    assert!(o.stderr.contains("boom-smoke"));
    assert!(o.stderr.contains("expected status 200"));
}

#[test]
fn health_failure_explains_the_pods() {
    let s = Sandbox::new();
    let never = json!({"items": [{"metadata": {"name": "web-0", "labels": {"app.kubernetes.io/instance": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:missing"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{"name": "web", "restartCount": 0, "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "Container image \"web:missing\" is not present with pull policy of Never"}}}]}}]});
    s.rule(json!({"tool": "kubectl", "match": ["get", "pods"], "stdout": never.to_string()}));
    let started = Instant::now();
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 16, "{}", o.all());
    assert!(
        o.stderr.contains(
            "deployment/web cannot roll out: container web of pod web-0: ErrImageNeverPull"
        ),
        "the first line names the cause:\n{}",
        o.stderr
    );
    assert!(o.stderr.contains("[rule image-missing"), "{}", o.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "failed fast, not at the 30s release timeout"
    );
    assert!(
        o.stderr.contains("never loaded"),
        "the hint names the cause:\n{}",
        o.stderr
    );
    // The diagnosis bundle: printed last, with a k8sgpt-style summary.
    let line = o
        .stderr
        .lines()
        .find(|l| l.contains("diagnosis bundle: "))
        .unwrap_or_else(|| panic!("no bundle:\n{}", o.stderr));
    let dir = std::path::PathBuf::from(line.split("diagnosis bundle: ").nth(1).unwrap().trim());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["results"][0]["kind"], "Pod");
    assert_eq!(summary["results"][0]["name"], "web-0");
    assert_eq!(summary["results"][0]["parentObject"], "Deployment/web");
    assert_eq!(summary["exit_code"], 16);
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(
        events.contains("\"event\":\"command\""),
        "the commands slipway ran are in the bundle"
    );
    assert!(dir.join("web-pods.json").is_file());
    let status = std::fs::read_to_string(dir.join("helm-status-web-0.json")).unwrap();
    assert!(status.contains("\"status\": \"deployed\""), "{status}");
    let history = std::fs::read_to_string(dir.join("helm-history-web-1.json")).unwrap();
    assert!(history.contains("\"revision\": 1"), "{history}");
}

#[test]
fn a_hanging_tool_is_stopped_at_its_stage_timeout() {
    let s = Sandbox::new();
    s.rule(json!({"tool": "kubectl", "match": ["get", "deployments,statefulsets,daemonsets,jobs"], "sleep": 600}));
    let started = Instant::now();
    let o = s.run(&["deploy-local", "--profile", "hang"]);
    assert_eq!(o.code, 16, "{}", o.all());
    assert!(
        o.stderr.contains("timed out after 1.") || o.stderr.contains("timed out after 2.0s"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("the rollout stage's time budget (2s) ran out"),
        "{}",
        o.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the hang was not cut"
    );
    for pid in s.pids_of("daemonsets,jobs") {
        assert!(!alive(pid), "the hung kubectl (pid {pid}) is still running");
    }
}

#[test]
fn ctrl_c_during_helm_sends_sigint_and_exits_130() {
    let s = Sandbox::new();
    s.rule(json!({"tool": "helm", "match": ["upgrade"], "sleep": 60, "signal_delay": 0.3}));
    let mut child = s
        .command(&["deploy-local"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The fake installs its signal handler before it records the call.
    while !s.ran("helm upgrade") {
        assert!(Instant::now() < deadline, "helm upgrade never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    let signals: Vec<_> = s
        .calls()
        .into_iter()
        .filter(|c| c.get("signal").is_some())
        .collect();
    assert!(
        signals
            .iter()
            .any(|c| c["tool"] == "helm" && c["signal"] == "SIGINT"),
        "helm did not get SIGINT: {signals:?}"
    );
    for pid in s.pids_of("helm upgrade") {
        assert!(!alive(pid), "helm (pid {pid}) outlived slipway");
    }
    assert!(!s.ran("rollout status"));
    assert!(err.contains("interrupted"), "{err}");
}

/// The canary secret reaches kubectl on stdin and nowhere else: not in any argv, not
/// in stdout/stderr (even with -v or a failing tool that echoes it), not in events.
#[test]
fn canary_secret_never_leaks() {
    let s = Sandbox::new();
    let o = ok(&s, &["deploy-local", "-v"]);
    assert!(!o.all().contains(CANARY), "leaked to output");
    let j = ok(&s, &["deploy-local", "--output", "json", "--force"]);
    assert!(!j.all().contains(CANARY), "leaked to JSON events");
    let mut via_stdin = 0;
    for c in s.calls() {
        if let Some(argv) = c.get("argv") {
            assert!(!argv.to_string().contains(CANARY), "in argv: {argv}");
        }
        if c.get("stdin")
            .and_then(|x| x.as_str())
            .is_some_and(|x| x.contains(CANARY))
        {
            assert_eq!(c["tool"], "kubectl");
            via_stdin += 1;
        }
    }
    assert_eq!(
        via_stdin, 2,
        "the secret is applied through stdin once per run"
    );

    // A tool that echoes the secret manifest on failure, and one that prints it.
    let s = Sandbox::new();
    s.rule(
        json!({"tool": "kubectl", "match": ["apply"], "times": 2, "echo_stdin": true, "exit": 1}),
    );
    let o = s.run(&["deploy-local", "-v"]);
    assert_eq!(o.code, 14);
    assert!(
        !o.all().contains(CANARY),
        "leaked from a failing tool:\n{}",
        o.all()
    );
    let s = Sandbox::new();
    s.rule(json!({"tool": "helm", "match": ["upgrade"], "stderr": format!("Error: token {CANARY} rejected\n"), "exit": 1}));
    let o = s.run(&["deploy-local", "--output", "json"]);
    assert_eq!(o.code, 15);
    assert!(!o.all().contains(CANARY), "{}", o.all());
    assert!(
        o.all().contains("token ******** rejected"),
        "masked, not dropped:\n{}",
        o.all()
    );
}

#[test]
fn port_forwards_are_gone_after_success_and_after_failure() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let pids = s.port_forward_pids();
    assert_eq!(
        pids.len(),
        1,
        "the HTTP checks share one port-forward to their service: {pids:?}"
    );
    for p in pids {
        assert!(!alive(p), "port-forward {p} left running after success");
    }
    let mut s = Sandbox::new();
    s.set_env(
        "FAKE_HTTP",
        &json!({"POST /api/echo": {"status": 500, "body": "nope"}}).to_string(),
    );
    assert_eq!(s.run(&["deploy-local"]).code, 18);
    let pids = s.port_forward_pids();
    assert!(!pids.is_empty());
    for p in pids {
        assert!(!alive(p), "port-forward {p} left running after failure");
    }
}

#[test]
fn a_rerun_with_nothing_changed_skips_build_load_and_upgrade() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let before = s.argv_lines().len();
    let o = ok(&s, &["deploy-local"]);
    let second: Vec<String> = s.argv_lines()[before..].to_vec();
    for never in [
        "docker build",
        "kind create",
        "kind load",
        "helm upgrade",
        "sh prebuild",
    ] {
        assert!(
            !second.iter().any(|l| l.contains(never)),
            "second run ran `{never}`"
        );
    }
    assert!(o.stderr.contains("is already built"), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("is already on all 1 node(s) of kind cluster fx"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("already has these chart files, values and images"),
        "{}",
        o.stderr
    );
    // A changed input rebuilds; --force redoes everything.
    std::fs::write(s.project.join("app/main.txt"), "changed").unwrap();
    ok(&s, &["deploy-local"]);
    assert_eq!(s.count("docker build"), 2);
    assert_eq!(
        s.count("helm upgrade"),
        2,
        "a new tag is a new deploy digest"
    );
    ok(&s, &["deploy-local", "--force"]);
    assert_eq!(s.count("docker build"), 3);
    assert_eq!(s.count("kind load"), 3);
}

#[test]
fn pending_release_is_reported_or_rolled_back() {
    // The same on both helm majors (the fake rejects the other major's flags).
    for version in ["v4.3.1", "v3.22.0"] {
        let mut s = Sandbox::new();
        s.set_env("FAKE_HELM_VERSION", version);
        let pending = json!({"name": "web", "version": 3, "info": {"status": "pending-upgrade", "description": "Upgrade"}}).to_string();
        s.rule(json!({"tool": "helm", "match": ["status"], "stdout": pending, "times": 1}));
        let o = s.run(&["deploy-local"]);
        assert_eq!(o.code, 15, "{version}: {}", o.all());
        assert!(
            o.stderr.contains("stuck in pending-upgrade at revision 3"),
            "{}",
            o.stderr
        );
        assert!(
            o.stderr
                .contains("helm rollback web --kube-context kind-fx --namespace apps"),
            "{}",
            o.stderr
        );
        assert!(!s.ran("helm upgrade"));

        // Revisions 1 and 2 exist, the third is pending: helm rolls back to 2.
        let mut s = Sandbox::new();
        s.set_env("FAKE_HELM_VERSION", version);
        ok(&s, &["deploy-local"]);
        ok(&s, &["deploy-local", "--force"]);
        let before = s.argv_lines().len();
        s.rule(json!({"tool": "helm", "match": ["status"], "stdout": pending, "times": 1}));
        ok(&s, &["deploy-local", "--profile", "heal"]);
        let lines = s.argv_lines().split_off(before);
        let rb = lines
            .iter()
            .position(|l| l.starts_with("helm rollback web"))
            .expect("rolled back");
        let up = lines
            .iter()
            .position(|l| l.starts_with("helm upgrade"))
            .expect("then upgraded");
        assert!(rb < up);
    }
}

#[test]
fn plan_runs_with_an_empty_path() {
    let s = Sandbox::new();
    let o = s.command(&["plan"]).env("PATH", "").output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("helm upgrade --install web chart --kube-context kind-fx"),
        "{text}"
    );
    assert!(s.calls().is_empty(), "plan ran a tool");
    let j = s
        .command(&["plan", "--output", "json"])
        .env("PATH", "")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["context"], "kind-fx");
}

#[test]
fn preflight_names_every_missing_tool_in_one_run() {
    let s = Sandbox::new();
    let empty = s.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = s
        .command(&["preflight"])
        .env("PATH", &empty)
        .env_remove("FIXTURE_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(10), "{err}");
    for t in ["docker", "kind", "helm", "kubectl"] {
        assert!(
            err.contains(&format!("check {t}: FAILED")) && err.contains("not found on PATH"),
            "{t} not named:\n{err}"
        );
    }
    assert!(
        err.contains("$FIXTURE_TOKEN is not set"),
        "the missing secret variable is named too:\n{err}"
    );
    assert!(err.contains("5 preflight checks failed"), "{err}");
}

#[test]
fn status_and_down_are_idempotent() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let st = ok(&s, &["status"]);
    assert!(
        st.stdout
            .contains("release web (namespace apps, context kind-fx): deployed, revision 1"),
        "{}",
        st.stdout
    );
    assert!(
        st.stdout.contains("deployment/web") && st.stdout.contains("2/2 ready"),
        "{}",
        st.stdout
    );
    assert!(
        st.stdout.contains("web-0") && st.stdout.contains("restarts 0"),
        "{}",
        st.stdout
    );

    let d1 = ok(&s, &["down"]);
    assert!(
        d1.stderr.contains("uninstalled release web"),
        "{}",
        d1.stderr
    );
    assert!(
        d1.stderr.contains("deleted secret/web-secrets"),
        "{}",
        d1.stderr
    );
    let d2 = ok(&s, &["down"]);
    assert!(
        d2.stderr
            .contains("release web is not installed in apps: nothing to do"),
        "{}",
        d2.stderr
    );
    assert!(
        d2.stderr.contains("no secrets slipway created"),
        "{}",
        d2.stderr
    );
    let d3 = ok(&s, &["down", "--cluster"]);
    assert!(
        d3.stderr.contains("deleted kind cluster fx"),
        "{}",
        d3.stderr
    );
    let d4 = ok(&s, &["down", "--cluster"]);
    assert!(
        d4.stderr.contains("does not exist: nothing to delete"),
        "{}",
        d4.stderr
    );
    assert_eq!(s.count("kind delete"), 1);
}

#[test]
fn json_events_describe_every_stage() {
    let s = Sandbox::new();
    let o = ok(&s, &["deploy-local", "--output", "json"]);
    let events: Vec<serde_json::Value> = o
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let finished: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "stage_finished")
        .collect();
    let names: Vec<&str> = finished
        .iter()
        .map(|e| e["stage"].as_str().unwrap())
        .collect();
    assert_eq!(names, STAGES);
    for e in &finished {
        assert_eq!(e["result"], "ok");
        assert!(e["duration_ms"].is_u64() && e["commands"].is_u64());
    }
    assert_eq!(
        finished.iter().find(|e| e["stage"] == "build").unwrap()["commands"],
        3,
        "probe, pre-build, docker build"
    );
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["exit_code"], 0);
    assert!(events.iter().all(|e| e["ts"].is_string()));
}

#[test]
fn smoke_rechecks_a_running_release() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let before = s.argv_lines().len();
    let o = ok(&s, &["smoke"]);
    let ran = s.argv_lines()[before..].join("\n");
    assert!(
        ran.contains("port-forward")
            && !ran.contains("helm upgrade")
            && !ran.contains("docker build"),
        "{ran}"
    );
    assert!(o.stderr.contains("check echo: passed"), "{}", o.stderr);
}

#[test]
fn several_images_build_in_parallel_and_each_is_loaded() {
    let s = Sandbox::new();
    // Two images of one context never build at once (issue #21): profile two-images
    // builds both from `app`, so here the worker has a context of its own.
    let worker = s.project.join("worker");
    std::fs::create_dir_all(&worker).unwrap();
    for f in ["Dockerfile", "main.txt"] {
        std::fs::copy(s.project.join("app").join(f), worker.join(f)).unwrap();
    }
    s.append_config(
        "\n[profiles.two-contexts]\nimages.worker = { context = \"worker\", inputs = [\"worker/main.txt\"], repository = \"worker\" }\nreleases.web.set_string.\"worker.image\" = \"${images.worker.ref}\"\n",
    );
    s.rule(json!({"tool": "docker", "match": ["build"], "sleep": 1.5, "then_simulate": true}));
    ok(&s, &["deploy-local", "--profile", "two-contexts"]);
    let builds: Vec<f64> = s
        .calls()
        .iter()
        .filter(|c| c["tool"] == "docker" && c["argv"][0] == "build")
        .map(|c| c["t"].as_f64().unwrap())
        .collect();
    assert_eq!(builds.len(), 2, "{:?}", s.argv_lines());
    assert!(
        (builds[0] - builds[1]).abs() < 1.0,
        "the second build waited for the first: {builds:?}"
    );
    assert!(s.ran("kind load docker-image web:c-") && s.ran("kind load docker-image worker:c-"));
    assert!(
        s.ran("--set-string worker.image=worker:c-"),
        "the image reference reached helm"
    );
}

/// Every command a run spawns is in the plan's data: a fake-tool `deploy-local`,
/// `status` and `down --cluster` record each argv, and each one matches a command of
/// `plan --output json` for that job, where only `{PLACEHOLDER}`s (run-time values:
/// a free port, a workload, a node) may differ.
#[test]
fn every_spawned_argv_is_in_the_plan() {
    let s = Sandbox::new();
    for (run, plan) in [
        (
            vec!["deploy-local"],
            vec!["plan", "--job", "deploy-local", "--output", "json"],
        ),
        (
            vec!["status"],
            vec!["plan", "--job", "status", "--output", "json"],
        ),
        (
            vec!["down", "--cluster"],
            vec!["plan", "--job", "down", "--cluster", "--output", "json"],
        ),
    ] {
        let planned = ok(&s, &plan);
        let v: serde_json::Value = serde_json::from_str(&planned.stdout).unwrap();
        let mut cmds = vec![];
        collect_cmds(&v, &mut cmds);
        assert!(cmds.len() > 3, "{}", planned.stdout);
        let before = s.calls().len();
        ok(&s, &run);
        let spawned: Vec<(String, Vec<String>)> = s.calls()[before..]
            .iter()
            .filter(|c| c.get("signal").is_none() && c.get("argv").is_some())
            .map(|c| {
                (
                    c["tool"].as_str().unwrap().to_string(),
                    c["argv"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap().to_string())
                        .collect(),
                )
            })
            .collect();
        assert!(!spawned.is_empty());
        for (tool, argv) in &spawned {
            assert!(
                cmds.iter().any(|(p, a)| p == tool && argv_matches(a, argv)),
                "`{}` ran `{tool} {}`, which is not in its plan",
                run.join(" "),
                argv.join(" ")
            );
        }
    }
}

/// Every `{"program": …, "args": […]}` in a plan's JSON.
fn collect_cmds(v: &serde_json::Value, out: &mut Vec<(String, Vec<String>)>) {
    match v {
        serde_json::Value::Object(m) => {
            if let (Some(p), Some(serde_json::Value::Array(a))) = (m.get("program"), m.get("args"))
            {
                out.push((
                    p.as_str().unwrap_or("").to_string(),
                    a.iter()
                        .map(|x| x.as_str().unwrap_or("").to_string())
                        .collect(),
                ));
            }
            m.values().for_each(|x| collect_cmds(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_cmds(x, out)),
        _ => {}
    }
}

/// Does a planned argv (with `{PLACEHOLDER}`s) match a spawned one?
pub(crate) fn argv_matches(planned: &[String], spawned: &[String]) -> bool {
    planned.len() == spawned.len() && planned.iter().zip(spawned).all(|(p, s)| arg_matches(p, s))
}

fn arg_matches(planned: &str, spawned: &str) -> bool {
    let Some(start) = planned.find('{').filter(|_| planned.contains('}')) else {
        return planned == spawned;
    };
    let end = planned[start..].find('}').map(|e| start + e).unwrap();
    let name = &planned[start + 1..end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        return planned == spawned;
    }
    let (prefix, suffix) = (&planned[..start], &planned[end + 1..]);
    spawned.len() > prefix.len() + suffix.len()
        && spawned.starts_with(prefix)
        && spawned.ends_with(suffix)
        && !suffix.contains('{')
}

/// `status`/`down` failures say the exit code they end with (20), and end with it.
#[test]
fn down_failure_reports_and_exits_with_its_own_code() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    s.rule(json!({"tool": "helm", "match": ["uninstall"], "stderr": "Error: uninstall: boom\n", "exit": 1}));
    let o = s.run(&["down"]);
    assert_eq!(o.code, 20, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("slipway stopped in stage down (exit code 20)"),
        "{}",
        o.stderr
    );
    assert_eq!(
        o.stderr.matches("error[down]").count(),
        1,
        "the error is printed once:\n{}",
        o.stderr
    );
}

/// `--color always` colors stderr even when it is not a terminal; NO_COLOR and
/// `--color never` leave it plain.
#[test]
fn color_always_colors_stderr() {
    let mut s = Sandbox::new();
    s.rule(json!({"tool": "docker", "match": ["build"], "stderr": "boom\n", "exit": 1}));
    let o = s.run(&["build", "--color", "always"]);
    assert_eq!(o.code, 12);
    assert!(
        o.stderr.contains("\u{1b}["),
        "no color codes:\n{}",
        o.stderr
    );
    let o = s.run(&["build", "--color", "never"]);
    assert!(!o.stderr.contains("\u{1b}["), "{}", o.stderr);
    s.set_env("SLIPWAY_COLOR", "auto");
    let o = s.run(&["build"]);
    assert!(
        !o.stderr.contains("\u{1b}["),
        "NO_COLOR is set in the sandbox:\n{}",
        o.stderr
    );
}

/// A closed stdout (`slipway plan | head -c 0`) is a normal end, not a panic: the
/// pipe's reading end is closed before slipway starts, so its write certainly fails
/// with EPIPE (SIGPIPE is ignored in a Rust program), in text and in JSON.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let s = Sandbox::new();
    for args in [&["plan"][..], &["plan", "--output", "json"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = s
            .command(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// Two runs against one cluster: the second waits for the first, says so, and both
/// succeed; the lock is gone afterwards (a third run does not wait). The first run
/// holds the lock while its `docker build` waits for a file the test creates only
/// once the second run has said it is waiting.
#[test]
fn a_second_run_on_the_same_cluster_waits_for_the_first() {
    use std::io::BufRead;
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let gate = s.dir.path().join("first-may-go-on");
    s.rule(json!({"tool": "docker", "match": ["build"], "until": gate, "times": 1, "then_simulate": true}));
    let before = s.count("docker build");
    let first = s.command(&["deploy-local", "--force"]).spawn().unwrap();
    // The first run builds its image with the lock held.
    let deadline = Instant::now() + Duration::from_secs(180);
    while s.count("docker build") == before {
        assert!(Instant::now() < deadline, "the first run never built");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut second = s
        .command(&["deploy-local"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    let mut lines = std::io::BufReader::new(second.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        stderr += &line;
        stderr.push('\n');
        if line.contains("waiting for it to finish") {
            break;
        }
    }
    std::fs::write(&gate, "").unwrap();
    for line in lines {
        stderr += &line.unwrap();
        stderr.push('\n');
    }
    let second = second.wait().unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(second.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("another slipway run (pid") && stderr.contains("waiting for it to finish"),
        "{stderr}"
    );
    let third = ok(&s, &["deploy-local"]);
    assert!(
        !third.stderr.contains("another slipway run"),
        "{}",
        third.stderr
    );
}

/// The canary in the forms tools print it — raw, base64 (how Kubernetes shows Secret
/// data) and JSON-escaped — never reaches output or events, in commands that do not
/// apply the Secret too (`status`, `smoke`, `down`).
#[test]
fn canary_is_masked_in_every_form_and_every_command() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(CANARY);
    let escaped = serde_json::to_string(CANARY).unwrap();
    let escaped = escaped.trim_matches('"').to_string();
    let forms = [CANARY.to_string(), b64.clone(), escaped];
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let leak = format!(
        "data: {{\"API_TOKEN\": \"{b64}\"}}\ntoken={CANARY}\n{{\"t\": \"{}\"}}\n",
        forms[2]
    );
    // Each command meets a tool that fails printing the secret in every form.
    for (args, tool, verb) in [
        (vec!["status", "-v"], "helm", "status"),
        (vec!["status", "--output", "json", "-v"], "helm", "status"),
        (vec!["smoke", "-v"], "kubectl", "wait"),
        (vec!["smoke", "--output", "json"], "kubectl", "wait"),
        (vec!["down", "-v"], "helm", "uninstall"),
        (vec!["down", "--output", "json"], "helm", "uninstall"),
    ] {
        s.clear_rules();
        s.rule(json!({"tool": tool, "match": [verb], "stdout": leak, "stderr": leak, "exit": 1}));
        let o = s.run(&args);
        assert_ne!(o.code, 0, "`{}` should fail", args.join(" "));
        assert!(
            o.all().contains("********"),
            "`{}` shows the masked output:\n{}",
            args.join(" "),
            o.all()
        );
        for f in &forms {
            assert!(
                !o.all().contains(f.as_str()),
                "`{}` leaked {f}:\n{}",
                args.join(" "),
                o.all()
            );
        }
    }
    // A rollout that fails with the secret in the container's logs: the bundle has
    // the logs, masked.
    s.clear_rules();
    let crash = serde_json::json!({"items": [{"metadata": {"name": "web-0", "labels": {"app.kubernetes.io/instance": "web"}}, "spec": {"containers": [{"name": "web"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "web", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}]}}]});
    s.rule(json!({"tool": "kubectl", "match": ["get", "pods"], "stdout": crash.to_string()}));
    s.rule(json!({"tool": "kubectl", "match": ["logs"], "stdout": leak}));
    let o = s.run(&["deploy-local", "--force"]);
    assert_eq!(o.code, 16, "{}", o.all());
    let bundles = s.project.join("target/slipway/diagnosis");
    let mut files = 0;
    for b in std::fs::read_dir(&bundles).unwrap() {
        for f in std::fs::read_dir(b.unwrap().path()).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            files += 1;
            for form in &forms {
                assert!(
                    !text.contains(form.as_str()),
                    "the bundle leaked {form}:\n{text}"
                );
            }
        }
    }
    assert!(files >= 5, "bundles written: {files} files");
}

/// The managed context's name is not enough: if the kubeconfig's `kind-fx` points at
/// another cluster, deploy-local and down refuse it.
#[test]
fn a_managed_context_that_points_elsewhere_is_refused() {
    let mut s = Sandbox::new();
    s.set_env("FAKE_FOREIGN", "kind-fx");
    for args in [vec!["deploy-local"], vec!["down"]] {
        let o = s.run(&args);
        assert_eq!(o.code, 10, "{}", o.stderr);
        assert!(
            o.stderr.contains(
                "that context points at cluster \"prod-cluster\" at https://prod.example:6443"
            ),
            "{}",
            o.stderr
        );
    }
    assert!(!s.ran("helm upgrade") && !s.ran("helm uninstall"));
}

/// A pipeline that names a foreign context for a kind cluster is a pipeline error.
#[test]
fn a_kind_pipeline_cannot_name_another_context() {
    let mut s = Sandbox::new();
    s.set_env("KCTX", "prod-admin");
    let p = s.project.join("pipeline.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        text.replace(
            "name = \"fx\"",
            "name = \"fx\"\ncontext = \"${KCTX:-kind-fx}\"",
        ),
    )
    .unwrap();
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("provider \"kind\" manages context \"kind-fx\""),
        "{}",
        o.stderr
    );
    assert!(s.calls().is_empty(), "nothing ran");
}

/// `--quiet` in plain (CI) output: the result line only, and on failure the error
/// with its check, nothing else.
#[test]
fn quiet_plain_output_is_the_result_and_errors_only() {
    let s = Sandbox::new();
    let o = s.run(&["-q", "deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let lines: Vec<&str> = o.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("[run] succeeded"), "{}", lines[0]);

    s.rule(json!({"tool": "helm", "match": ["upgrade"], "exit": 1, "stderr": "Error: boom\n"}));
    let o = s.run(&["-q", "deploy-local", "--force"]);
    assert_eq!(o.code, 15, "{}", o.all());
    assert!(
        o.stderr.contains("error[deploy]") && o.stderr.contains("boom"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("[preflight] started"), "{}", o.stderr);
}
