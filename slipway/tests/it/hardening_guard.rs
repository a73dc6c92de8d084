//! Tier 1 and 2: every command that changes a cluster goes through the context guard
//! (derived from the plan's commands, not from a list of jobs), helm never inherits
//! what would point it at another cluster, a job check's Job is deleted even after
//! the check ran out of time, a rotated secret reaches the pods, and a readiness
//! probe that can never pass fails within its grace.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strum::IntoEnumIterator;

use crate::support::{repo, Sandbox};
use slipway::config::{self, LoadOptions, Vars};
use slipway::model::mutation::Target;
use slipway::model::Job;
use slipway::plan::{self, Action, PlanOptions};

fn append(s: &Sandbox, toml: &str) {
    let file = s.project.join("pipeline.toml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(toml);
    std::fs::write(file, text).unwrap();
}

fn state(s: &Sandbox) -> Value {
    serde_json::from_str(&std::fs::read_to_string(s.state.join("state.json")).unwrap()).unwrap()
}

/// Commands that change a cluster, as the fakes saw them.
fn mutating(s: &Sandbox) -> Vec<String> {
    s.argv_lines()
        .into_iter()
        .filter(|l| {
            [
                "kind create",
                "kind load",
                "docker push",
                "docker run",
                " apply",
                " create",
                "helm upgrade",
            ]
            .iter()
            .any(|m| l.contains(m))
        })
        .collect()
}

/// Every planned command of every job, for the repo's pipeline and the fake-tool
/// fixture, each profile: a command that changes a cluster (by its tool and verb)
/// makes the plan carry a context guard, and changes only what that guard approves
/// (the plan's context, the registries it pushes to). No command picks another
/// kubeconfig, and helm never inherits HELM_KUBE*.
#[test]
fn every_planned_mutation_is_covered_by_the_guard() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/app/pipeline.toml");
    let cases: Vec<(std::path::PathBuf, Vec<Option<&str>>)> = vec![
        (
            repo().join("pipeline.toml"),
            vec![
                None,
                Some("local-kind"),
                Some("local-kind-registry"),
                Some("local-minikube"),
                Some("ci"),
                Some("remote"),
            ],
        ),
        (
            fixture,
            vec![
                None,
                Some("local-minikube"),
                Some("existing"),
                Some("remote"),
                Some("remote-login"),
                Some("in-cluster"),
                Some("zero-downtime"),
                Some("two-images"),
            ],
        ),
    ];
    let mut mutations = 0;
    for (file, profiles) in cases {
        for profile in profiles {
            let mut env = BTreeMap::new();
            env.insert("FIXTURE_TOKEN".to_string(), "x".repeat(16));
            env.insert("SAMPLE_API_TOKEN".to_string(), "x".repeat(16));
            env.insert("FIXTURE_REGISTRY_PASSWORD".to_string(), "x".repeat(16));
            let p = config::load(&LoadOptions {
                file: file.clone(),
                profile: profile.map(String::from),
                vars: Some(Vars::new(env, BTreeMap::new())),
            })
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for job in Job::iter() {
                for (with_cluster, context) in [(false, None), (true, None), (false, Some("other"))]
                {
                    let opts = PlanOptions {
                        with_cluster,
                        context: context.map(String::from),
                        ..PlanOptions::new(job)
                    };
                    let Ok(plan) = plan::build(&p, &opts) else {
                        continue;
                    };
                    let case = format!("{} {profile:?} {job} {context:?}", file.display());
                    let guard = plan.steps.iter().find_map(|s| match &s.action {
                        Action::Preflight(pf) => Some(pf.guard.clone()),
                        _ => None,
                    });
                    for c in plan.commands() {
                        assert!(
                            !c.env.contains_key("KUBECONFIG")
                                && !c.args.iter().any(|a| a.starts_with("--kubeconfig")),
                            "{case}: `{}` picks its own kubeconfig",
                            c.display()
                        );
                        if c.program == "helm" {
                            for v in slipway::tools::helm::CLUSTER_ENV {
                                assert!(
                                    c.clear_env.iter().any(|x| x == v),
                                    "{case}: `{}` inherits {v}",
                                    c.display()
                                );
                            }
                        }
                        let Some(t) = c.mutation() else { continue };
                        mutations += 1;
                        let Some(Some(g)) = &guard else {
                            panic!(
                                "{case}: `{}` changes {t}, but the plan has no context guard",
                                c.display()
                            );
                        };
                        assert_eq!(g.context, plan.context, "{case}");
                        if context.is_none() {
                            assert!(
                                t == Target::Context(plan.context.clone()) || g.also.contains(&t),
                                "{case}: `{}` changes {t}, which the guard does not approve",
                                c.display()
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(mutations > 100, "only {mutations} mutating commands seen");
}

/// `smoke --kube-context other` with a job check would create a Job in `other`: the
/// guard refuses it (nothing is created) unless --allow-context. Smoke checks that
/// only read need no guard.
#[test]
fn smoke_job_checks_in_another_context_need_the_guard() {
    let mut s = Sandbox::new();
    s.set_env("FAKE_CONTEXTS", "other");
    let o = s.run(&[
        "smoke",
        "--profile",
        "in-cluster",
        "--kube-context",
        "other",
    ]);
    assert_eq!(o.code, 10, "{}", o.all());
    assert!(
        o.stderr.contains("context guard") && o.stderr.contains("smoke would change other"),
        "{}",
        o.stderr
    );
    assert!(mutating(&s).is_empty(), "{:?}", mutating(&s));
    // Told so, it creates the Job there.
    let o = s.run(&[
        "smoke",
        "--profile",
        "in-cluster",
        "--kube-context",
        "other",
        "--allow-context",
    ]);
    assert!(
        s.ran("kubectl --context other --namespace apps create --filename -"),
        "{}",
        o.all()
    );
    // HTTP and kubectl checks change nothing: no guard, whatever the context.
    let s = {
        let mut s = Sandbox::new();
        s.set_env("FAKE_CONTEXTS", "other");
        s
    };
    let o = s.run(&["smoke", "--kube-context", "other"]);
    assert!(!o.stderr.contains("context guard"), "{}", o.stderr);
    assert_ne!(o.code, 10, "{}", o.all());
}

/// A job check that ran out of time still deletes its Job: the delete has its own
/// budget beyond the check's.
#[test]
fn a_timed_out_job_checks_job_is_deleted() {
    let mut s = Sandbox::new();
    append(
        &s,
        "[profiles.slow-job]\nsmoke.inside = { type = \"job\", image = \"${images.web.ref}\", args = [\"check\"], deadline = \"2s\" }\n",
    );
    assert_eq!(s.run(&["deploy-local", "--profile", "slow-job"]).code, 0);
    s.set_env("FAKE_JOB", "running");
    let o = s.run(&["smoke", "--profile", "slow-job"]);
    assert_eq!(o.code, 18, "{}", o.all());
    assert!(o.stderr.contains("still running"), "{}", o.stderr);
    let jobs = &state(&s)["jobs"];
    assert_eq!(jobs, &json!({}), "the Job is left in the cluster: {jobs}");
}

/// `load` with registry delivery applies the registry's ConfigMap to the context:
/// for a context slipway does not manage it is refused before anything runs.
#[test]
fn registry_delivery_load_to_another_context_is_refused() {
    let mut s = Sandbox::new();
    append(
        &s,
        "[profiles.via-registry]\ncluster.kind.delivery = \"registry\"\n",
    );
    s.set_env("FAKE_CONTEXTS", "other");
    let o = s.run(&[
        "load",
        "--profile",
        "via-registry",
        "--kube-context",
        "other",
    ]);
    assert_eq!(o.code, 10, "{}", o.all());
    assert!(o.stderr.contains("context guard"), "{}", o.stderr);
    assert!(mutating(&s).is_empty(), "{:?}", mutating(&s));
}

/// helm reads HELM_KUBEAPISERVER, HELM_KUBETOKEN, HELM_KUBECONTEXT… from its
/// environment and would talk to another server than the guard checked: no helm
/// child sees them.
#[test]
fn helm_never_inherits_helm_kube_variables() {
    let mut s = Sandbox::new();
    let vars = [
        ("HELM_KUBEAPISERVER", "https://elsewhere.example:6443"),
        ("HELM_KUBETOKEN", "token-for-elsewhere"),
        ("HELM_KUBEASUSER", "admin"),
        ("HELM_KUBEASGROUPS", "system:masters"),
        ("HELM_KUBECAFILE", "/tmp/ca.pem"),
        ("HELM_KUBEINSECURE_SKIP_TLS_VERIFY", "true"),
        ("HELM_KUBETLS_SERVER_NAME", "elsewhere"),
        ("HELM_KUBECONTEXT", "prod"),
        ("HELM_NAMESPACE", "kube-system"),
    ];
    for (k, v) in vars {
        s.set_env(k, v);
    }
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let helm: Vec<Value> = s
        .calls()
        .into_iter()
        .filter(|c| c["tool"] == "helm" && c.get("env").is_some())
        .collect();
    assert!(helm.len() >= 3, "{helm:?}");
    for c in helm {
        for (k, _) in vars {
            assert!(
                c["env"].get(k).is_none(),
                "helm {} inherited {k}",
                c["argv"]
            );
        }
    }
}

/// The pods and events of a release whose readiness probe gets `status` forever.
fn unready_probe(s: &Sandbox, message: &str) {
    let pods = json!({"items": [{"metadata": {"name": "web-0", "labels": {"app.kubernetes.io/instance": "web"}, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "web", "image": "web:1", "readinessProbe": {"httpGet": {"path": "/healthzz", "port": 8080}, "periodSeconds": 2}}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}}]});
    let workloads = json!({"items": [{"kind": "Deployment",
        "metadata": {"name": "web", "generation": 1, "annotations": {"meta.helm.sh/release-name": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/instance": "web"}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0, "readyReplicas": 0}}]});
    let events = json!({"items": [{"involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{web}"},
        "reason": "Unhealthy", "type": "Warning", "count": 1, "lastTimestamp": "2026-01-01T00:00:05Z",
        "message": message}]});
    s.rule(json!({"tool": "kubectl", "match": ["get", "pods"], "stdout": pods.to_string()}));
    s.rule(json!({"tool": "kubectl", "match": ["get", "deployments,statefulsets,daemonsets"], "stdout": workloads.to_string()}));
    s.rule(json!({"tool": "kubectl", "match": ["get", "events"], "stdout": events.to_string()}));
}

/// deploy-local with the release's timeout at `timeout` and its readiness probe
/// answered as `message` says: the outcome and how long it took.
fn deploy_with_probe(message: &str, timeout: &str) -> (crate::support::Out, Duration) {
    let s = Sandbox::new();
    append(
        &s,
        &format!("[profiles.probed]\nreleases.web.timeout = \"{timeout}\"\n"),
    );
    unready_probe(&s, message);
    let started = Instant::now();
    let o = s.run(&["deploy-local", "--profile", "probed"]);
    assert_eq!(o.code, 16, "{}", o.all());
    (o, started.elapsed())
}

/// A readiness probe answered 404 on every attempt fails the rollout within its grace
/// (10 s here: 3 periods of 2 s, at least 10 s), not at the release's 2-minute
/// timeout, naming the probe's path and port.
#[test]
fn a_readiness_probe_answered_404_fails_within_its_grace() {
    let (o, took) = deploy_with_probe(
        "Readiness probe failed: HTTP probe failed with statuscode: 404",
        "2m",
    );
    assert!(
        o.stderr.contains("readiness-probe-unserved")
            && o.stderr.contains("path /healthzz")
            && o.stderr.contains("port 8080")
            && o.stderr.contains("statuscode: 404"),
        "{}",
        o.stderr
    );
    assert!(took < Duration::from_secs(75), "took {took:?}");
}

/// 503 can recover: the rollout waits it out to the release's timeout.
#[test]
fn a_readiness_probe_answered_503_is_waited_for() {
    let (o, took) = deploy_with_probe(
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
        "15s",
    );
    assert!(
        !o.stderr.contains("readiness-probe-unserved"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("statuscode: 503"), "{}", o.stderr);
    assert!(took >= Duration::from_secs(15), "took {took:?}");
}

/// A Secret's value is part of the release: changing it upgrades the release and
/// restarts its workloads (pods read Secrets when they start), saying which Secret
/// changed and never its value; unchanged, the next run skips again.
#[test]
fn a_rotated_secret_reaches_the_pods() {
    let mut s = Sandbox::new();
    assert_eq!(s.run(&["deploy-local"]).code, 0);
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(s.count("helm upgrade"), 1, "nothing changed: {}", o.stderr);
    let rotated = "rotated-token-value-1234567890";
    s.set_env("FIXTURE_TOKEN", rotated);
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(s.count("helm upgrade"), 2, "{}", o.stderr);
    assert!(
        s.ran("kubectl --context kind-fx --namespace apps rollout restart deployment/web"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("secret web-secrets changed"),
        "{}",
        o.stderr
    );
    assert!(!o.all().contains(rotated), "{}", o.all());
    let log = std::fs::read_to_string(&s.log).unwrap();
    let argv_with_value = s
        .calls()
        .iter()
        .filter(|c| c["argv"].to_string().contains(rotated))
        .count();
    assert_eq!(argv_with_value, 0, "the value is in an argv: {log}");
    // The digest key is private to the user.
    let key = s.project.join("target/slipway/secret-digest.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Unchanged since: skipped, nothing restarted.
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert_eq!(s.count("helm upgrade"), 2, "{}", o.stderr);
    assert_eq!(s.count("rollout restart"), 1, "{}", o.stderr);
}
