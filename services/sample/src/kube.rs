//! csv-analyst's in-cluster runs (`ROLE=api` with `RUNNER_IMAGE` set): `POST /runs`
//! creates a batch/v1 Job in the pod's own namespace running `RUNNER_IMAGE` with
//! `ROLE=runner`, polls its status until it succeeds, fails or `RUN_TIMEOUT_SECONDS`
//! pass, and answers the outcome; `GET /runs` lists the runs this pod made.
//!
//! The API server is reached with the pod's service-account token over HTTPS that
//! trusts only the service account's `ca.crt` (ureq + rustls, blocking, so every call
//! runs in `spawn_blocking`). The Role needs `jobs` and `jobs/status`: create, get,
//! delete.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{log, now_ms, State};

pub const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Inputs go to the runner as an environment variable of the Job's pod.
pub const MAX_INPUT: usize = 64 << 10;
/// Runs remembered for `GET /runs` (the oldest are forgotten first).
const KEEP_RUNS: usize = 200;

#[derive(Clone, Debug, PartialEq)]
pub struct RunsConfig {
    pub image: String,
    pub pull_policy: String,
    pub timeout: Duration,
    /// This pod (`POD_NAME`, `POD_UID` from the downward API): the owner of the Jobs
    /// it makes, so they go when it goes (an uninstall leaves none behind).
    pub owner: Option<(String, String)>,
}

impl RunsConfig {
    /// `None` unless `RUNNER_IMAGE` is set.
    pub fn from_env(get: &impl Fn(&str) -> Option<String>) -> Option<RunsConfig> {
        let image = get("RUNNER_IMAGE").filter(|v| !v.is_empty())?;
        Some(RunsConfig {
            image,
            pull_policy: get("RUNNER_PULL_POLICY")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "IfNotPresent".into()),
            timeout: Duration::from_secs(
                get("RUN_TIMEOUT_SECONDS")
                    .and_then(|v| v.parse().ok())
                    .filter(|&s: &u64| s > 0)
                    .unwrap_or(60),
            ),
            owner: get("POD_NAME")
                .filter(|v| !v.is_empty())
                .zip(get("POD_UID").filter(|v| !v.is_empty())),
        })
    }

    /// What is wrong with the configuration, if anything.
    pub fn problem(&self) -> Option<String> {
        (!matches!(
            self.pull_policy.as_str(),
            "Always" | "IfNotPresent" | "Never"
        ))
        .then(|| {
            format!(
                "RUNNER_PULL_POLICY {:?} is not Always, IfNotPresent or Never",
                self.pull_policy
            )
        })
    }
}

/// The Job that runs one input through the runner image.
pub fn job_manifest(name: &str, run_id: &str, input: &str, cfg: &RunsConfig) -> Value {
    let labels = json!({
        "app.kubernetes.io/name": "sample-runner",
        "app.kubernetes.io/component": "runner",
        "app.kubernetes.io/managed-by": "sample",
        "sample.slipway.dev/run-id": run_id,
    });
    let mut metadata = json!({"name": name, "labels": labels});
    if let Some((pod, uid)) = &cfg.owner {
        metadata["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Pod", "name": pod, "uid": uid}]);
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 300,
            // A backstop past the API's own deadline (which deletes the Job), for a
            // Job whose API pod went away while waiting for it.
            "activeDeadlineSeconds": cfg.timeout.as_secs() + 30,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    // Numeric ids: the kubelet can verify runAsNonRoot without a passwd.
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "runner",
                        "image": cfg.image,
                        "imagePullPolicy": cfg.pull_policy,
                        "env": [
                            {"name": "ROLE", "value": "runner"},
                            {"name": "RUN_ID", "value": run_id},
                            {"name": "RUN_INPUT", "value": input},
                        ],
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "16Mi"},
                            "limits": {"cpu": "500m", "memory": "64Mi"},
                        },
                    }],
                },
            },
        },
    })
}

/// `succeeded` / `failed` once the Job has finished, from its status.
pub fn job_outcome(job: &Value) -> Option<&'static str> {
    let st = &job["status"];
    for c in st["conditions"].as_array().into_iter().flatten() {
        if c["status"] == "True" {
            match c["type"].as_str() {
                Some("Complete" | "SuccessCriteriaMet") => return Some("succeeded"),
                Some("Failed" | "FailureTarget") => return Some("failed"),
                _ => {}
            }
        }
    }
    if st["succeeded"].as_u64().unwrap_or(0) > 0 {
        Some("succeeded")
    } else if st["failed"].as_u64().unwrap_or(0) > 0 {
        Some("failed")
    } else {
        None
    }
}

/// The in-cluster API client: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`,
/// the token (read again for each call: the kubelet rotates it) and the namespace.
#[derive(Clone)]
pub struct Kube {
    pub base: String,
    pub namespace: String,
    token_path: PathBuf,
    agent: ureq::Agent,
}

impl Kube {
    pub fn in_cluster(
        get: &impl Fn(&str) -> Option<String>,
        sa_dir: &Path,
    ) -> Result<Kube, String> {
        let host = get("KUBERNETES_SERVICE_HOST")
            .filter(|v| !v.is_empty())
            .ok_or("KUBERNETES_SERVICE_HOST is not set: POST /runs works only in a pod")?;
        let port = get("KUBERNETES_SERVICE_PORT")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "443".into());
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let read = |f: &str| {
            std::fs::read(sa_dir.join(f)).map_err(|e| {
                format!(
                    "{}: {e} (is a service account token mounted?)",
                    sa_dir.join(f).display()
                )
            })
        };
        let namespace = String::from_utf8_lossy(&read("namespace")?)
            .trim()
            .to_string();
        let ca = read("ca.crt")?;
        read("token")?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&ca)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(format!(
                "{}: no certificate in it",
                sa_dir.join("ca.crt").display()
            ));
        }
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .user_agent("sample")
            .build()
            .into();
        Ok(Kube {
            base: format!("https://{host}:{port}"),
            namespace,
            token_path: sa_dir.join("token"),
            agent,
        })
    }

    fn jobs_path(&self) -> String {
        format!("/apis/batch/v1/namespaces/{}/jobs", self.namespace)
    }

    /// One API call (blocking): the status code and the JSON answer.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let token = std::fs::read_to_string(&self.token_path)
            .map_err(|e| format!("{}: {e}", self.token_path.display()))?;
        let auth = format!("Bearer {}", token.trim());
        let url = format!("{}{path}", self.base);
        let sent = match method {
            "POST" => self
                .agent
                .post(&url)
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .send(body.map(Value::to_string).unwrap_or_default()),
            "DELETE" => self
                .agent
                .delete(&url)
                .header("authorization", &auth)
                .call(),
            _ => self.agent.get(&url).header("authorization", &auth).call(),
        };
        let mut resp = sent.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{method} {url}: reading the answer: {e}"))?;
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !(200..300).contains(&status) {
            let msg = v["message"]
                .as_str()
                .map_or_else(|| v.to_string(), String::from);
            return Err(format!("{method} {path}: {status}: {msg}"));
        }
        Ok((status, v))
    }

    pub fn create_job(&self, job: &Value) -> Result<(), String> {
        self.call("POST", &self.jobs_path(), Some(job)).map(|_| ())
    }

    pub fn job_status(&self, name: &str) -> Result<Option<&'static str>, String> {
        let (_, v) = self.call("GET", &format!("{}/{name}/status", self.jobs_path()), None)?;
        Ok(job_outcome(&v))
    }

    pub fn delete_job(&self, name: &str) -> Result<(), String> {
        let path = format!("{}/{name}?propagationPolicy=Background", self.jobs_path());
        self.call("DELETE", &path, None).map(|_| ())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("task failed: {e}"))?
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub job: String,
    /// running, succeeded, failed, timeout or error.
    pub status: String,
    pub started_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The runs part of the API's state.
pub struct Runs {
    pub cfg: RunsConfig,
    pub kube: Result<Kube, String>,
    pub records: Mutex<Vec<RunRecord>>,
}

impl Runs {
    pub fn new(cfg: RunsConfig, kube: Result<Kube, String>) -> Arc<Runs> {
        if let Err(e) = &kube {
            log("warn", &format!("runs unavailable: {e}"));
        }
        Arc::new(Runs {
            cfg,
            kube,
            records: Mutex::new(Vec::new()),
        })
    }

    /// Why `POST /runs` cannot work, if it cannot (a readiness condition).
    pub fn missing(&self) -> Option<String> {
        self.cfg
            .problem()
            .or_else(|| self.kube.as_ref().err().cloned())
    }

    fn update(&self, run_id: &str, f: impl FnOnce(&mut RunRecord)) -> Option<RunRecord> {
        let mut recs = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let r = recs.iter_mut().find(|r| r.run_id == run_id)?;
        f(r);
        Some(r.clone())
    }
}

#[derive(Deserialize)]
pub struct RunRequest {
    pub input: Option<String>,
}

fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({"error": msg.into()}))).into_response()
}

pub async fn post_runs(AxState(st): AxState<State>, body: Option<Json<RunRequest>>) -> Response {
    let Some(runs) = st.0.runs.clone() else {
        return err(
            StatusCode::NOT_FOUND,
            "runs are not enabled (RUNNER_IMAGE is not set)",
        );
    };
    if let Some(why) = runs.missing() {
        return err(StatusCode::SERVICE_UNAVAILABLE, why);
    }
    let Ok(kube) = runs.kube.clone() else {
        return err(StatusCode::SERVICE_UNAVAILABLE, "no Kubernetes client");
    };
    let Some(input) = body.and_then(|Json(b)| b.input) else {
        return err(
            StatusCode::BAD_REQUEST,
            r#"want a JSON body {"input": "<csv text with a header row>"}"#,
        );
    };
    if input.len() > MAX_INPUT {
        return err(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("input is over {MAX_INPUT} bytes"),
        );
    }
    let run_id = crate::app::new_id();
    let job = format!("sample-run-{run_id}");
    let manifest = job_manifest(&job, &run_id, &input, &runs.cfg);
    {
        let mut recs = runs.records.lock().unwrap_or_else(|e| e.into_inner());
        if recs.len() >= KEEP_RUNS {
            recs.remove(0);
        }
        recs.push(RunRecord {
            run_id: run_id.clone(),
            job: job.clone(),
            status: "running".into(),
            started_ms: now_ms(),
            finished_ms: None,
            error: None,
        });
    }
    let k = kube.clone();
    if let Err(e) = blocking(move || k.create_job(&manifest)).await {
        log(
            "error",
            &format!("run {run_id}: cannot create Job {job}: {e}"),
        );
        runs.update(&run_id, |r| {
            r.status = "error".into();
            r.error = Some(e.clone());
            r.finished_ms = Some(now_ms());
        });
        return (
            StatusCode::BAD_GATEWAY,
            Json(json!({"run_id": run_id, "job": job, "status": "error", "error": e})),
        )
            .into_response();
    }
    log(
        "info",
        &format!("run {run_id}: created Job {job} in {}", kube.namespace),
    );
    let deadline = tokio::time::Instant::now() + runs.cfg.timeout;
    let mut last_error = None;
    let status = loop {
        let (k, name) = (kube.clone(), job.clone());
        match blocking(move || k.job_status(&name)).await {
            Ok(Some(outcome)) => break outcome,
            Ok(None) => {}
            Err(e) => {
                log("warn", &format!("run {run_id}: Job status: {e}"));
                last_error = Some(e);
            }
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            let (k, name) = (kube.clone(), job.clone());
            if let Err(e) = blocking(move || k.delete_job(&name)).await {
                log("warn", &format!("run {run_id}: deleting Job {job}: {e}"));
            }
            break "timeout";
        }
        tokio::time::sleep((deadline - now).min(Duration::from_millis(500))).await;
    };
    log("info", &format!("run {run_id}: Job {job} {status}"));
    runs.update(&run_id, |r| {
        r.status = status.into();
        r.finished_ms = Some(now_ms());
        if status == "timeout" {
            r.error = last_error.clone();
        }
    });
    let mut answer = json!({"run_id": run_id, "job": job, "status": status});
    if let (Some(e), "timeout") = (last_error, status) {
        answer["error"] = json!(e);
    }
    Json(answer).into_response()
}

pub async fn get_runs(AxState(st): AxState<State>) -> Response {
    let Some(runs) = st.0.runs.clone() else {
        return err(
            StatusCode::NOT_FOUND,
            "runs are not enabled (RUNNER_IMAGE is not set)",
        );
    };
    let recs = runs
        .records
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let namespace = runs.kube.as_ref().map(|k| k.namespace.clone()).ok();
    Json(json!({"namespace": namespace, "runner_image": runs.cfg.image, "runs": recs}))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RunsConfig {
        RunsConfig::from_env(&|k: &str| match k {
            "RUNNER_IMAGE" => Some("csv-runner:dev".into()),
            "RUNNER_PULL_POLICY" => Some("Never".into()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn config_from_env() {
        assert_eq!(RunsConfig::from_env(&|_: &str| None), None);
        assert_eq!(
            RunsConfig::from_env(&|k: &str| (k == "RUNNER_IMAGE").then(String::new)),
            None
        );
        let c = RunsConfig::from_env(&|k: &str| match k {
            "RUNNER_IMAGE" => Some("r:1".into()),
            "RUN_TIMEOUT_SECONDS" => Some("0".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (c.pull_policy.as_str(), c.timeout.as_secs()),
            ("IfNotPresent", 60)
        );
        assert_eq!(c.problem(), None);
        let mut bad = c.clone();
        bad.pull_policy = "never".into();
        assert!(bad.problem().unwrap().contains("RUNNER_PULL_POLICY"));
    }

    #[test]
    fn jobs_belong_to_the_pod_that_made_them() {
        assert!(job_manifest("j", "r", "", &cfg())["metadata"]
            .get("ownerReferences")
            .is_none());
        let owned = RunsConfig {
            owner: Some(("api-7d9c".into(), "0f3a-uid".into())),
            ..cfg()
        };
        let j = job_manifest("j", "r", "", &owned);
        assert_eq!(
            j["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "Pod", "name": "api-7d9c", "uid": "0f3a-uid"}])
        );
        let from_env = RunsConfig::from_env(&|k: &str| match k {
            "RUNNER_IMAGE" => Some("r:1".into()),
            "POD_NAME" => Some("api-7d9c".into()),
            "POD_UID" => Some("0f3a-uid".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(from_env.owner, owned.owner);
    }

    #[test]
    fn job_manifest_runs_the_runner_role_as_non_root() {
        let j = job_manifest("sample-run-abc", "abc", "a,b\n1,2\n", &cfg());
        assert_eq!(j["apiVersion"], "batch/v1");
        assert_eq!(j["kind"], "Job");
        assert_eq!(j["metadata"]["name"], "sample-run-abc");
        assert_eq!(j["metadata"]["labels"]["sample.slipway.dev/run-id"], "abc");
        assert_eq!(j["spec"]["backoffLimit"], 0);
        assert_eq!(j["spec"]["ttlSecondsAfterFinished"], 300);
        assert_eq!(j["spec"]["activeDeadlineSeconds"], 90);
        let pod = &j["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 65532);
        let c = &pod["containers"][0];
        assert_eq!(c["image"], "csv-runner:dev");
        assert_eq!(c["imagePullPolicy"], "Never");
        assert_eq!(
            c["env"],
            json!([
                {"name": "ROLE", "value": "runner"},
                {"name": "RUN_ID", "value": "abc"},
                {"name": "RUN_INPUT", "value": "a,b\n1,2\n"},
            ])
        );
        assert_eq!(
            j["spec"]["template"]["metadata"]["labels"],
            j["metadata"]["labels"]
        );
    }

    #[test]
    fn job_outcome_from_status() {
        assert_eq!(job_outcome(&json!({})), None);
        assert_eq!(job_outcome(&json!({"status": {"active": 1}})), None);
        assert_eq!(
            job_outcome(&json!({"status": {"succeeded": 1}})),
            Some("succeeded")
        );
        assert_eq!(
            job_outcome(&json!({"status": {"failed": 1}})),
            Some("failed")
        );
        let cond = |t: &str, s: &str| json!({"status": {"conditions": [{"type": "Suspended", "status": "True"}, {"type": t, "status": s}]}});
        assert_eq!(job_outcome(&cond("Complete", "True")), Some("succeeded"));
        assert_eq!(
            job_outcome(&cond("SuccessCriteriaMet", "True")),
            Some("succeeded")
        );
        assert_eq!(job_outcome(&cond("FailureTarget", "True")), Some("failed"));
        assert_eq!(job_outcome(&cond("Failed", "True")), Some("failed"));
        assert_eq!(job_outcome(&cond("Failed", "False")), None);
    }

    #[test]
    fn in_cluster_client_needs_the_service_account() {
        let env = |k: &str| match k {
            "KUBERNETES_SERVICE_HOST" => Some("10.96.0.1".to_string()),
            "KUBERNETES_SERVICE_PORT" => Some("443".to_string()),
            _ => None,
        };
        let dir = std::env::temp_dir().join(format!("sample-sa-{}", crate::app::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = Kube::in_cluster(&env, &dir).err().unwrap();
        assert!(e.contains("namespace"), "{e}");
        std::fs::write(dir.join("namespace"), "csv-analyst\n").unwrap();
        std::fs::write(dir.join("token"), "t").unwrap();
        std::fs::write(dir.join("ca.crt"), "not a certificate").unwrap();
        let e = Kube::in_cluster(&env, &dir).err().unwrap();
        assert!(e.contains("ca.crt: no certificate"), "{e}");
        let e = Kube::in_cluster(&|_: &str| None, &dir).err().unwrap();
        assert!(e.contains("KUBERNETES_SERVICE_HOST"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A fake API server over HTTPS (the test CA's certificate for 127.0.0.1): Jobs
    /// whose input says NEVER stay active, the others succeed on the second status read.
    /// Returns its port and the requests it saw ("METHOD path auth body").
    fn fake_api_server() -> (u16, Arc<Mutex<Vec<String>>>) {
        // The Job named in `path` was created with an input that says NEVER.
        fn never(seen: &[String], path: &str) -> bool {
            let name = path
                .trim_end_matches("/status")
                .rsplit('/')
                .next()
                .unwrap_or("");
            seen.iter().any(|r| {
                r.starts_with("POST ")
                    && r.contains(&format!(r#""name":"{name}""#))
                    && r.contains("NEVER")
            })
        }
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        use std::io::{Read, Write};
        let pem = |s: &str| -> Vec<u8> {
            match ureq::tls::parse_pem(s.as_bytes()).next().unwrap().unwrap() {
                ureq::tls::PemItem::Certificate(c) => c.der().to_vec(),
                ureq::tls::PemItem::PrivateKey(k) => k.der().to_vec(),
                _ => panic!("unexpected PEM item"),
            }
        };
        let cert = CertificateDer::from(pem(include_str!("testdata/server.crt")));
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pem(include_str!(
            "testdata/server.key"
        ))));
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then the body by content-length.
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break Some(i);
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let Some(head_end) = head_end else { continue };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let len: usize = header("content-length").parse().unwrap_or(0);
                while buf.len() < head_end + 4 + len {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = String::from_utf8_lossy(&buf[head_end + 4..]).to_string();
                let mut words = head.split_whitespace();
                let (method, path) = (
                    words.next().unwrap_or("").to_string(),
                    words.next().unwrap_or("").to_string(),
                );
                let reads = {
                    let mut l = log.lock().unwrap();
                    l.push(format!(
                        "{method} {path} {} {body}",
                        header("authorization")
                    ));
                    l.iter()
                        .filter(|r| r.starts_with(&format!("{method} {path} ")))
                        .count()
                };
                let (code, answer) = match method.as_str() {
                    "POST" => (201, json!({"kind": "Job"})),
                    "GET" if reads < 2 || never(&log.lock().unwrap(), &path) => {
                        (200, json!({"status": {"active": 1}}))
                    }
                    "GET" => (
                        200,
                        json!({"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}),
                    ),
                    "DELETE" => (200, json!({"status": "Success"})),
                    _ => (404, json!({"message": "no such thing"})),
                };
                let answer = answer.to_string();
                let _ = write!(
                    s,
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = s.flush();
                s.conn.send_close_notify();
                let _ = s.flush();
            }
        });
        (port, seen)
    }

    fn sa_dir(ca: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sample-sa-{}", crate::app::new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("namespace"), "csv-analyst\n").unwrap();
        std::fs::write(dir.join("token"), "tok-123\n").unwrap();
        std::fs::write(dir.join("ca.crt"), ca).unwrap();
        dir
    }

    /// POST /runs through a real HTTPS API server that only the service account's CA
    /// vouches for: the Job is created with the token, polled until it succeeds, and
    /// listed by GET /runs; a Job that never finishes times out and is deleted; a
    /// server the CA does not vouch for is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_create_and_poll_jobs_over_https() {
        use crate::app::{router, Config, State};
        use axum::body::Body;
        use http_body_util::BodyExt;
        use tower::ServiceExt;

        let (port, seen) = fake_api_server();
        let env = move |k: &str| match k {
            "KUBERNETES_SERVICE_HOST" => Some("127.0.0.1".to_string()),
            "KUBERNETES_SERVICE_PORT" => Some(port.to_string()),
            "GREETING" => Some("hi".into()),
            "RUNNER_IMAGE" => Some("runner:dev".into()),
            "RUNNER_PULL_POLICY" => Some("Never".into()),
            "RUN_TIMEOUT_SECONDS" => Some("2".into()),
            _ => None,
        };
        let dir = sa_dir(include_str!("testdata/ca.crt"));
        let kube = Kube::in_cluster(&env, &dir).unwrap();
        assert_eq!(kube.base, format!("https://127.0.0.1:{port}"));
        assert_eq!(kube.namespace, "csv-analyst");
        let st = State::with_kube(Config::from_env(env), Some(Ok(kube)));
        let call = |method: &str, path: &str, body: &str| {
            let req = axum::http::Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let app = router(st.clone());
            async move {
                let resp = app.oneshot(req).await.unwrap();
                let code = resp.status();
                let b = resp.into_body().collect().await.unwrap().to_bytes();
                let v = serde_json::from_slice::<Value>(&b)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&b).into()));
                (code, v)
            }
        };
        assert_eq!(
            call("GET", "/readyz", "").await,
            (StatusCode::OK, json!("ready\n"))
        );
        let (code, v) = call("POST", "/runs", r#"{"input": "a,b\n1,2\n"}"#).await;
        assert_eq!(code, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "succeeded", "{v}");
        let job = v["job"].as_str().unwrap().to_string();
        assert_eq!(job, format!("sample-run-{}", v["run_id"].as_str().unwrap()));
        {
            let seen = seen.lock().unwrap();
            let post = &seen[0];
            assert!(
                post.starts_with(
                    "POST /apis/batch/v1/namespaces/csv-analyst/jobs Bearer tok-123 {"
                ),
                "{post}"
            );
            let sent: Value = serde_json::from_str(post.splitn(5, ' ').nth(4).unwrap()).unwrap();
            assert_eq!(sent["metadata"]["name"], job);
            assert_eq!(
                sent["spec"]["template"]["spec"]["containers"][0]["env"][2]["value"],
                "a,b\n1,2\n"
            );
            let status_path =
                format!("GET /apis/batch/v1/namespaces/csv-analyst/jobs/{job}/status ");
            assert_eq!(
                seen.iter().filter(|r| r.starts_with(&status_path)).count(),
                2
            );
        }

        // Never finishes (the fake keeps Jobs whose input says NEVER active): a
        // timeout after RUN_TIMEOUT_SECONDS, and the Job is deleted.
        let started = std::time::Instant::now();
        let (code, v) = call("POST", "/runs", r#"{"input": "NEVER\n1\n"}"#).await;
        assert_eq!(
            (code, v["status"].as_str()),
            (StatusCode::OK, Some("timeout")),
            "{v}"
        );
        assert!(started.elapsed() >= Duration::from_secs(2));
        let slow = v["job"].as_str().unwrap().to_string();
        let delete = format!("DELETE /apis/batch/v1/namespaces/csv-analyst/jobs/{slow}?propagationPolicy=Background ");
        assert!(seen.lock().unwrap().iter().any(|r| r.starts_with(&delete)));

        let (code, v) = call("GET", "/runs", "").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(v["namespace"], "csv-analyst");
        assert_eq!(v["runs"][0]["job"], job);
        assert_eq!(v["runs"][0]["status"], "succeeded");
        assert_eq!(
            (
                v["runs"][1]["job"].as_str(),
                v["runs"][1]["status"].as_str()
            ),
            (Some(slow.as_str()), Some("timeout"))
        );

        // A server whose certificate the service account's CA did not sign.
        let other = sa_dir(include_str!("testdata/other-ca.crt"));
        let untrusting = Kube::in_cluster(&env, &other).unwrap();
        let st2 = State::with_kube(Config::from_env(env), Some(Ok(untrusting)));
        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/runs")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"input":"a\n1\n"}"#))
            .unwrap();
        let resp = router(st2).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["status"], "error");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("certificate"),
            "{v}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&other).unwrap();
    }
}
