//! Secrets never reach a sink (tier 2): not stdout or stderr in any output mode, not
//! the JUnit report, not the diagnosis bundle — neither as they are, nor a line of a
//! multi-line one, nor escaped for XML or JSON, nor in base64. The bundle is private
//! (0700 / 0600) and holds no environment values. A pipeline that would put a
//! secret's value on a command line is refused (exit 2) with where it would go.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::{Sandbox, CANARY};

/// Every character XML and JSON escape, and a backslash.
const ODD: &str = "odd&<tok>\"en'q\\x-9f1e";
/// A key as a multi-line value (its lines reach slipway one by one).
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4QM2bS1GB4t7NXp98C3SC6dVMvDu\n-----END PRIVATE KEY-----\n";
/// A plain environment value of a pod (the bundle leaves it out).
const ENV_VALUE: &str = "plain-env-value-5c2d";
/// What helm keeps of a release's values (the bundle leaves it out).
const HELM_VALUE: &str = "helm-config-value-77ab";

/// A sandbox whose Secret also reads `ODD` and `PEM`.
fn sandbox() -> Sandbox {
    let mut s = Sandbox::new();
    let p = s.project.join("pipeline.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let text = text.replace(
        "from_env = { API_TOKEN = \"FIXTURE_TOKEN\" }",
        "from_env = { API_TOKEN = \"FIXTURE_TOKEN\", ODD = \"FIXTURE_ODD\", TLS_KEY = \"FIXTURE_PEM\" }",
    );
    std::fs::write(&p, text).unwrap();
    s.set_env("FIXTURE_ODD", ODD);
    s.set_env("FIXTURE_PEM", PEM);
    s
}

/// Every form of every secret that must never be seen.
fn forms() -> Vec<String> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let json = |s: &str| {
        serde_json::to_string(s)
            .unwrap()
            .trim_matches('"')
            .to_string()
    };
    let xml = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;")
    };
    let mut v = vec![];
    for s in [CANARY, ODD, PEM] {
        v.extend([s.to_string(), b64(s), json(s), xml(s)]);
    }
    // Each line of the key, and what is unique to the odd one in any encoding.
    v.extend(PEM.lines().filter(|l| l.len() >= 8).map(String::from));
    v.push("9f1e".into());
    v
}

fn assert_clean(what: &str, text: &str) {
    for f in forms() {
        assert!(!text.contains(&f), "{what} leaked {f:?}:\n{text}");
    }
}

/// A tool's output that shows each secret in the forms tools print them.
fn leak() -> String {
    use base64::Engine as _;
    let mut s = String::new();
    for v in [CANARY, ODD, PEM] {
        s.push_str(&format!(
            "value: {v}\ndata: {}\njson: {}\n",
            base64::engine::general_purpose::STANDARD.encode(v),
            serde_json::to_string(v).unwrap()
        ));
    }
    s
}

/// Every file of every diagnosis bundle: (path, text); asserts they are private.
fn bundle_files(project: &Path) -> Vec<(PathBuf, String)> {
    let root = project.join("target/slipway/diagnosis");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root), 0o700, "{}", root.display());
    let mut files = vec![];
    for b in std::fs::read_dir(&root).unwrap() {
        let b = b.unwrap().path();
        assert_eq!(mode(&b), 0o700, "{}", b.display());
        for f in std::fs::read_dir(&b).unwrap() {
            let f = f.unwrap().path();
            assert_eq!(mode(&f), 0o600, "{}", f.display());
            files.push((f.clone(), std::fs::read_to_string(&f).unwrap()));
        }
    }
    assert!(!files.is_empty(), "no bundle was written");
    files
}

/// A failing deploy that prints every secret (-v, plain and JSON, JUnit by flag and
/// by SLIPWAY_JUNIT): nothing leaks to output, the report or the bundle, and helm's
/// record of the release's values stays out of the bundle.
#[test]
fn a_failing_deploy_leaks_no_secret_to_output_junit_or_bundle() {
    let helm_status = json!({"name": "web", "info": {"status": "failed", "notes": HELM_VALUE},
        "config": {"greeting": HELM_VALUE}, "manifest": format!("value: {HELM_VALUE}")});
    for (i, args) in [
        vec!["deploy-local", "-v"],
        vec!["deploy-local", "-v", "--output", "json"],
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = sandbox();
        let junit = s.dir.path().join("report.xml");
        let mut args: Vec<String> = args.into_iter().map(String::from).collect();
        if i == 0 {
            args.extend(["--junit".into(), junit.display().to_string()]);
        } else {
            s.set_env("SLIPWAY_JUNIT", &junit.display().to_string());
        }
        s.rule(json!({"tool": "helm", "match": ["upgrade"], "stdout": leak(), "stderr": leak(), "exit": 1}));
        // The deploy's own read of the release is answered as usual; the bundle's not.
        s.rule(json!({"tool": "helm", "match": ["status"], "times": 1, "then_simulate": true}));
        s.rule(json!({"tool": "helm", "match": ["status"], "stdout": helm_status.to_string()}));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = s.run(&args);
        assert_eq!(o.code, 15, "{}", o.all());
        assert!(
            o.all().contains("********"),
            "masked, not dropped:\n{}",
            o.all()
        );
        assert_clean("stdout/stderr", &o.all());
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains("<failure"), "{xml}");
        assert_clean("the JUnit report", &xml);
        let files = bundle_files(&s.project);
        assert!(
            files
                .iter()
                .any(|(p, _)| p.to_string_lossy().contains("helm-status")),
            "{files:?}"
        );
        for (p, text) in files {
            assert_clean(&p.display().to_string(), &text);
            assert!(!text.contains(HELM_VALUE), "{}: {text}", p.display());
        }
    }
}

/// A smoke check whose answer carries every secret: the check's detail reaches the
/// JUnit report masked before XML escaping (an escaped secret is not masked after),
/// and reaches no output or bundle file either.
#[test]
fn a_failing_check_leaks_no_secret_to_junit_output_or_bundle() {
    for json_output in [false, true] {
        let mut s = sandbox();
        let body = leak();
        s.set_env(
            "FAKE_HTTP",
            &json!({"GET /healthz": {"status": 500, "body": body}}).to_string(),
        );
        let junit = s.dir.path().join("checks.xml");
        let mut args = vec!["deploy-local", "-v"];
        if json_output {
            args.extend(["--output", "json"]);
        }
        let path = junit.display().to_string();
        args.extend(["--junit", path.as_str()]);
        let o = s.run(&args);
        assert_eq!(o.code, 18, "{}", o.all());
        assert_clean("stdout/stderr", &o.all());
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains("GET /healthz -&gt; 500"), "{xml}");
        assert!(
            xml.contains("value: ********"),
            "masked, not dropped: {xml}"
        );
        assert_clean("the JUnit report", &xml);
        for (p, text) in bundle_files(&s.project) {
            assert_clean(&p.display().to_string(), &text);
        }
    }
}

/// A rollout that fails with the secrets in a container's logs and an env value in
/// the pod's spec: the bundle is private, masked and holds no env value.
#[test]
fn the_diagnosis_bundle_is_private_masked_and_holds_no_env_values() {
    let s = sandbox();
    let crash = json!({"items": [{"metadata": {"name": "web-0", "labels": {"app.kubernetes.io/instance": "web"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{{\"env\": \"{ENV_VALUE}\"}}")}},
        "spec": {"containers": [{"name": "web", "env": [{"name": "GREETING", "value": ENV_VALUE}, {"name": "ODD", "value": ODD}]}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "web", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}]}}]});
    s.rule(json!({"tool": "kubectl", "match": ["get", "pods"], "stdout": crash.to_string()}));
    s.rule(json!({"tool": "kubectl", "match": ["logs"], "stdout": leak()}));
    let o = s.run(&["deploy-local", "-v"]);
    assert_eq!(o.code, 16, "{}", o.all());
    assert_clean("stdout/stderr", &o.all());
    let files = bundle_files(&s.project);
    let pods = files
        .iter()
        .find(|(p, _)| p.to_string_lossy().ends_with("pods.json"))
        .unwrap_or_else(|| panic!("no pods evidence: {files:?}"));
    assert!(pods.1.contains("GREETING"), "{}", pods.1);
    for (p, text) in &files {
        assert_clean(&p.display().to_string(), text);
        assert!(!text.contains(ENV_VALUE), "{}: {text}", p.display());
    }
}

/// `logs` streams a container's output line by line: a multi-line secret's lines
/// are masked each, in plain and JSON output.
#[test]
fn logs_mask_every_line_of_a_multi_line_secret() {
    let s = sandbox();
    let o = s.run(&["deploy-local"]);
    assert_eq!(o.code, 0, "{}", o.all());
    s.rule(json!({"tool": "kubectl", "match": ["logs"], "stdout": leak()}));
    for args in [vec!["logs"], vec!["logs", "--output", "json"]] {
        let o = s.run(&args);
        assert_eq!(o.code, 0, "{}", o.all());
        assert!(o.stdout.contains("value: ********"), "{}", o.all());
        assert_clean("logs", &o.all());
    }
}

/// A pipeline whose commands would carry a secret's value — from a secret's
/// env_file through `set_string`, in `build_args`, through a dotenv alias — is
/// refused before anything runs, `plan` included, and says where.
#[test]
fn a_secret_value_on_a_command_line_is_refused_by_value() {
    let cases: [(&str, &str, &str, &str); 3] = [
        (
            // A secret read from an env file that also feeds `${VAR}`.
            "[releases.web.set_string]\n",
            "[releases.web.set_string]\n\"db.password\" = \"${DB_PASSWORD}\"\n",
            "DB_PASSWORD=\"odd&<tok>\\\"en'q-9f1e\"\n",
            "db.password=********",
        ),
        (
            "[images.web.pre_build]",
            "[images.web.build_args]\nTOKEN = \"${FIXTURE_TOKEN}\"\n[images.web.pre_build]",
            "",
            "TOKEN=********",
        ),
        (
            "[releases.web.set_string]\n",
            "[releases.web.set_string]\n\"config.alias\" = \"${ALIAS}\"\n",
            "ALIAS=${FIXTURE_TOKEN}\n",
            "config.alias=********",
        ),
    ];
    for (i, (anchor, with, dotenv, shown)) in cases.into_iter().enumerate() {
        let s = Sandbox::new();
        let p = s.project.join("pipeline.toml");
        let mut text = std::fs::read_to_string(&p)
            .unwrap()
            .replacen(anchor, with, 1);
        if i == 0 {
            text = text.replace(
                "from_env = { API_TOKEN = \"FIXTURE_TOKEN\" }",
                "from_env = { API_TOKEN = \"FIXTURE_TOKEN\" }\nenv_file = \".env\"",
            );
        }
        std::fs::write(&p, text).unwrap();
        std::fs::write(s.project.join(".env"), dotenv).unwrap();
        for args in [
            vec!["deploy-local"],
            vec!["plan"],
            vec!["plan", "--output", "json"],
        ] {
            let o = s.run(&args);
            assert_eq!(o.code, 2, "case {i}, {args:?}:\n{}", o.all());
            let step = if i == 1 {
                "step build/web"
            } else {
                "step helm/web"
            };
            let all = o.all();
            assert!(all.contains(step), "case {i}: {all}");
            assert!(all.contains(shown), "case {i}: {all}");
            assert!(
                all.contains("holds the value of release web, secret web-secrets"),
                "case {i}: {all}"
            );
            assert_clean(&format!("case {i}"), &o.all());
        }
        assert!(
            !s.ran("helm") && !s.ran("docker build") && !s.ran("kind create"),
            "case {i}: something ran: {:?}",
            s.argv_lines()
        );
    }
}

/// `dev`'s log stream: a container that prints every secret (a multi-line one's
/// lines arrive one by one) shows each masked, in JSON events and plain lines.
#[test]
fn the_dev_log_stream_masks_every_line_of_a_multi_line_secret() {
    use std::io::Read as _;
    for json_output in [true, false] {
        let s = sandbox();
        s.rule(json!({"tool": "kubectl", "match": ["logs"], "stdout": leak()}));
        let mut args = vec!["dev"];
        if json_output {
            args.extend(["--output", "json"]);
        }
        let mut child = s
            .command(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the stream was read (its command ran and had time to be shown).
        let end = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !s.ran("logs") && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert!(
            s.ran("logs"),
            "the log stream never started: {:?}",
            s.argv_lines()
        );
        std::thread::sleep(std::time::Duration::from_secs(3));
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let (mut out, mut err) = (String::new(), String::new());
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        child.wait().unwrap();
        let all = format!("{out}\n{err}");
        assert!(
            all.contains("value: ********"),
            "the stream was shown:\n{all}"
        );
        assert_clean("dev", &all);
    }
}
