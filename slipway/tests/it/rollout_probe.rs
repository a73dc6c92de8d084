//! `during_rollout` probes: `kubectl proxy` serves on a unix socket in a directory
//! only this user can enter (never a TCP port other local users reach), and a probe
//! is judged in every job that starts one — `deploy` included, which has no smoke
//! stage.

use serde_json::{json, Value};

use crate::support::Sandbox;

fn ok(s: &Sandbox, args: &[&str]) -> crate::support::Out {
    let o = s.run(args);
    assert_eq!(o.code, 0, "`{}` failed:\n{}", args.join(" "), o.all());
    o
}

fn touch_source(s: &Sandbox, text: &str) {
    std::fs::write(s.project.join("app/main.txt"), text).unwrap();
}

/// The proxy's argv and what the fake recorded about where it served.
fn proxies(s: &Sandbox) -> (Vec<String>, Vec<Value>) {
    let argv = s
        .argv_lines()
        .into_iter()
        .filter(|l| l.starts_with("kubectl") && l.contains(" proxy"))
        .collect();
    let served = s
        .calls()
        .into_iter()
        .filter(|c| c.get("proxy_pid").is_some())
        .collect();
    (argv, served)
}

#[test]
fn the_service_proxy_listens_on_a_private_unix_socket_only() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local", "--profile", "zero-downtime"]);
    s.rule(json!({"tool": "helm", "match": ["upgrade"], "sleep": 1, "then_simulate": true}));
    touch_source(&s, "second build\n");
    let o = ok(&s, &["deploy-local", "--profile", "zero-downtime"]);
    assert!(
        o.stderr.contains("check steady during the upgrade: passed"),
        "{}",
        o.stderr
    );
    let (argv, served) = proxies(&s);
    assert_eq!(argv.len(), 1, "{argv:?}");
    let line = &argv[0];
    assert!(line.contains(" proxy --unix-socket=/"), "{line}");
    assert!(
        line.contains("--accept-paths=^/api/v1/namespaces/apps/services/web:80/proxy(/.*)?$"),
        "{line}"
    );
    assert!(
        !line.contains("--port") && !line.contains("--address"),
        "no TCP listener: {line}"
    );
    assert_eq!(served.len(), 1, "{served:?}");
    assert!(served[0].get("port").is_none(), "{served:?}");
    assert_eq!(
        served[0]["socket_dir_mode"], 0o700,
        "the socket's directory is the user's alone: {served:?}"
    );
    let socket = std::path::PathBuf::from(served[0]["socket"].as_str().unwrap());
    assert!(
        !socket.parent().unwrap().exists(),
        "the socket's directory is removed after the run: {}",
        socket.display()
    );
}

/// The `deploy` job has no smoke stage: it judges the probe itself, so requests that
/// failed during the upgrade fail the run (exit 18, a smoke check's code).
#[test]
fn the_deploy_job_judges_its_during_rollout_probe() {
    let mut s = Sandbox::new();
    s.set_env("FAKE_CONTEXTS", "staging");
    let pipeline = s.project.join("pipeline.toml");
    let mut text = std::fs::read_to_string(&pipeline).unwrap();
    text.push_str(
        "[profiles.remote-zd]\ncluster.provider = \"existing\"\ncluster.context = \"staging\"\nregistry.url = \"registry.test/team\"\nsmoke.steady = { service = \"web\", port = 80, path = \"/healthz\", during_rollout = true, deadline = \"3s\", interval = \"100ms\" }\n",
    );
    std::fs::write(&pipeline, text).unwrap();
    ok(&s, &["load", "--profile", "remote-zd"]);
    ok(&s, &["deploy", "--profile", "remote-zd"]);
    s.rule(json!({"tool": "helm", "match": ["upgrade"], "sleep": 1, "then_simulate": true}));
    let o = ok(&s, &["deploy", "--profile", "remote-zd", "--force"]);
    assert!(
        o.stderr.contains("check steady during the upgrade: passed"),
        "{}",
        o.stderr
    );
    // Failing from 1 s after the proxy started (the first request, which decides
    // whether anything served before the upgrade, comes well before that) for 0.4 s
    // of an upgrade that takes 2.
    s.clear_rules();
    s.rule(json!({"tool": "helm", "match": ["upgrade"], "sleep": 2, "then_simulate": true}));
    s.set_env("FAKE_PROXY_DOWN", "1.0-1.4");
    let o = s.run(&["deploy", "--profile", "remote-zd", "--force"]);
    assert_eq!(o.code, 18, "{}", o.all());
    crate::support::assert_upgrade_requests_failed_with_503(&o.stderr);
    let plan = ok(&s, &["plan", "--job", "deploy", "--profile", "remote-zd"]);
    assert!(
        plan.stdout
            .contains("judge check steady's requests during the upgrade"),
        "{}",
        plan.stdout
    );
}
