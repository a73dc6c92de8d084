//! Tier 2 against fakes as strict as the tools: a cluster that converges over several
//! reads (the stale-status guard), Services of every type (the NodePort check), and
//! tools that answer JSON only when asked for it.

use std::process::Command;

use crate::support::{Out, Sandbox};

fn ok(s: &Sandbox, args: &[&str]) -> Out {
    let o = s.run(args);
    assert_eq!(o.code, 0, "`{}` failed:\n{}", args.join(" "), o.all());
    o
}

/// Add lines to the fixture release's `set_string` table.
fn set_string(s: &Sandbox, lines: &str) {
    let cfg = s.project.join("pipeline.toml");
    let t = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        t.replacen(
            "[releases.web.set_string]\n",
            &format!("[releases.web.set_string]\n{lines}\n"),
            1,
        ),
    )
    .unwrap();
}

/// After `helm upgrade` the controller has not yet seen the new generation: its first
/// reads show the previous observedGeneration with a status that looks complete, and
/// the pods are not Ready yet. The rollout is not done until the controller has seen
/// the new generation, so slipway reads again; it never takes the stale status for
/// the new one.
#[test]
fn a_cluster_that_converges_over_several_reads_is_waited_for() {
    let mut s = Sandbox::new();
    s.set_env("FAKE_CONVERGE", "3");
    let o = ok(&s, &["deploy-local"]);
    let reads = s.count("get deployments,statefulsets,daemonsets,jobs,horizontalpodautoscalers");
    assert!(
        reads >= 4,
        "the rollout stage took a stale status for the new generation ({reads} read(s)):\n{}",
        o.stderr
    );
    let pods = s.count("get pods --output json");
    assert!(pods >= 4, "{pods} pod read(s):\n{}", o.stderr);
    // An upgrade is waited for the same way (the counts start again).
    let before = s.count("daemonsets,jobs,horizontalpodautoscalers");
    ok(&s, &["deploy-local", "--force"]);
    let again = s.count("daemonsets,jobs,horizontalpodautoscalers") - before;
    assert!(again >= 4, "{again} read(s) after the upgrade");
}

/// The release's Service as NodePort, published on a host port (kind's
/// port_mappings): the NodePort check connects from this machine and passes; without
/// a mapping it is a note; a LoadBalancer Service gets no NodePort check.
#[test]
fn services_of_every_type() {
    // NodePort, mapped to a host port something listens on.
    let s = Sandbox::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    set_string(
        &s,
        "\"service.type\" = \"NodePort\"\n\"service.nodePort\" = \"30080\"",
    );
    let cfg = s.project.join("pipeline.toml");
    let mut t = std::fs::read_to_string(&cfg).unwrap();
    t.push_str(&format!(
        "\n[cluster.kind]\nport_mappings = [{{ container_port = 30080, host_port = {port} }}]\n"
    ));
    std::fs::write(&cfg, t).unwrap();
    let o = ok(&s, &["deploy-local"]);
    assert!(
        o.stderr.contains(&format!(
            "http://127.0.0.1:{port} (service web, NodePort 30080) accepts connections"
        )),
        "{}",
        o.stderr
    );
    drop(listener);
    // Nothing listens there any more: the same check fails the smoke stage.
    let o = s.run(&["smoke"]);
    assert_eq!(o.code, 18, "{}", o.all());
    assert!(o.stderr.contains("refused or timed out"), "{}", o.stderr);

    // NodePort without a mapping: a note with the line that would publish it.
    let s = Sandbox::new();
    set_string(
        &s,
        "\"service.type\" = \"NodePort\"\n\"service.nodePort\" = \"30081\"",
    );
    let o = ok(&s, &["deploy-local"]);
    assert!(
        o.stderr
            .contains("service web port 80 is NodePort 30081, which this machine cannot reach"),
        "{}",
        o.stderr
    );

    // LoadBalancer: no NodePort check and no note.
    let s = Sandbox::new();
    set_string(&s, "\"service.type\" = \"LoadBalancer\"");
    let o = ok(&s, &["deploy-local"]);
    assert!(
        !o.stderr.contains("check url web:80") && !o.stderr.contains("cannot reach"),
        "{}",
        o.stderr
    );
}

/// The fakes print JSON only when asked (`--output json`, `-o json`, `--format
/// {{json .}}`), text otherwise, as the tools do: a caller that forgot to ask would
/// fail to parse what it gets.
#[test]
fn the_fakes_answer_json_only_when_asked() {
    let s = Sandbox::new();
    ok(&s, &["deploy-local"]);
    let run = |tool: &str, args: &[&str]| -> String {
        let o = Command::new(s.bin.join(tool))
            .args(args)
            .env("FAKE_LOG", &s.log)
            .env("FAKE_STATE", &s.state)
            .env("PATH", format!("{}:/usr/bin:/bin", s.bin.display()))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let ctx = ["--context", "kind-fx", "--namespace", "apps"];
    for (tool, args) in [
        ("kubectl", vec!["get", "pods"]),
        ("kubectl", vec!["get", "services"]),
        (
            "kubectl",
            vec!["get", "deployments,statefulsets,daemonsets"],
        ),
        ("kubectl", vec!["config", "view"]),
        ("kubectl", vec!["version", "--client"]),
        ("helm", vec!["status", "web"]),
        ("helm", vec!["history", "web"]),
        ("docker", vec!["info"]),
    ] {
        let mut plain: Vec<&str> = args.clone();
        if tool == "kubectl" && args[0] == "get" {
            plain.extend(ctx);
        }
        if tool == "helm" {
            plain.extend(["--namespace", "apps"]);
        }
        let text = run(tool, &plain);
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_err(),
            "{tool} {args:?} printed JSON unasked: {text}"
        );
        let mut asked = plain.clone();
        if tool == "docker" {
            asked.extend(["--format", "{{json .}}"]);
        } else {
            asked.extend(["--output", "json"]);
        }
        let json = run(tool, &asked);
        assert!(
            serde_json::from_str::<serde_json::Value>(&json).is_ok(),
            "{tool} {asked:?}: {json}"
        );
    }
}
