//! Router, state, metrics and the shutdown sequence (testable without a process).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State as AxState};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::{frontend, kube, resp, tasks, upstream};

pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// One JSON log line on stdout.
pub fn log(level: &str, msg: &str) {
    println!(
        "{}",
        serde_json::json!({"ts_ms": now_ms(), "level": level, "msg": msg})
    );
}

/// A short id that is unique across pods and calls: 12 hex characters of a hash of the
/// host name, the process, the time and a counter.
pub fn new_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "{}/{}/{nanos}/{}",
        std::env::var("HOSTNAME").unwrap_or_default(),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    short_sha(seed.as_bytes())
}

/// The first 12 hex characters of a SHA-256.
pub fn short_sha(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the binary is run as (`ROLE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Api,
    Frontend,
    Worker,
    Dispatcher,
    Runner,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Api,
        Role::Frontend,
        Role::Worker,
        Role::Dispatcher,
        Role::Runner,
    ];

    /// `ROLE`'s value; unset or empty is `api`.
    pub fn parse(v: Option<&str>) -> Result<Role, String> {
        let v = v.unwrap_or("").trim();
        if v.is_empty() {
            return Ok(Role::Api);
        }
        Role::ALL
            .into_iter()
            .find(|r| r.name() == v)
            .ok_or_else(|| {
                format!("ROLE {v:?} is not one of api, frontend, worker, dispatcher, runner")
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Frontend => "frontend",
            Role::Worker => "worker",
            Role::Dispatcher => "dispatcher",
            Role::Runner => "runner",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen_addr: String,
    pub port: u16,
    pub greeting: Option<String>,
    pub api_token: Option<String>,
    pub image_tag: String,
    pub git_commit: String,
    pub role: Role,
    /// frontend: where `/api/*` goes and whose `/readyz` decides ours.
    pub upstream: Option<String>,
    /// dispatcher, worker.
    pub redis_url: Option<String>,
    pub redis_password: Option<String>,
    pub queue: String,
    /// dispatcher: the mounted config file (`config_sha` in /version).
    pub config_file: Option<String>,
    /// api: in-cluster runs, when `RUNNER_IMAGE` is set.
    pub runs: Option<kube::RunsConfig>,
}

impl Config {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Config {
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
        Config {
            listen_addr: nonempty("LISTEN_ADDR").unwrap_or_else(|| "0.0.0.0".into()),
            port: nonempty("PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(8080),
            greeting: nonempty("GREETING"),
            api_token: nonempty("API_TOKEN"),
            image_tag: nonempty("IMAGE_TAG").unwrap_or_else(|| "unknown".into()),
            git_commit: nonempty("GIT_COMMIT")
                .or_else(|| option_env!("GIT_COMMIT").map(String::from))
                .unwrap_or_else(|| "unknown".into()),
            role: Role::parse(get("ROLE").as_deref()).unwrap_or(Role::Api),
            upstream: nonempty("UPSTREAM_URL"),
            redis_url: nonempty("REDIS_URL"),
            redis_password: nonempty("REDIS_PASSWORD"),
            queue: nonempty("QUEUE").unwrap_or_else(|| "tasks".into()),
            config_file: nonempty("CONFIG_FILE"),
            runs: kube::RunsConfig::from_env(&nonempty),
        }
    }

    pub fn redis(&self) -> Result<resp::Target, String> {
        let url = self
            .redis_url
            .as_deref()
            .ok_or("required configuration REDIS_URL is not set")?;
        resp::Target::parse(url, self.redis_password.as_deref())
    }

    pub fn upstream(&self) -> Result<upstream::Url, String> {
        let url = self
            .upstream
            .as_deref()
            .ok_or("required configuration UPSTREAM_URL is not set")?;
        upstream::Url::parse(url).map_err(|e| format!("UPSTREAM_URL: {e}"))
    }

    /// The config file's contents (dispatcher).
    pub fn read_config_file(&self) -> Result<Vec<u8>, String> {
        let path = self.config_file.as_deref().ok_or(
            "required configuration CONFIG_FILE is not set (a file mounted from a ConfigMap)",
        )?;
        match std::fs::read(path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => {
                Err(format!("CONFIG_FILE {path} is empty"))
            }
            Ok(b) => Ok(b),
            Err(e) => Err(format!("CONFIG_FILE {path}: {e}")),
        }
    }

    /// Why the service cannot serve its functional endpoint, if it cannot (what the
    /// role needs: api GREETING; dispatcher GREETING, REDIS_URL and CONFIG_FILE;
    /// worker REDIS_URL; frontend UPSTREAM_URL).
    pub fn missing(&self) -> Option<String> {
        let greeting = || {
            self.greeting.is_none().then(|| {
                "required configuration GREETING is not set (it comes from the ConfigMap)"
                    .to_string()
            })
        };
        match self.role {
            Role::Api | Role::Runner => greeting(),
            Role::Dispatcher => greeting()
                .or_else(|| self.redis().err())
                .or_else(|| self.read_config_file().err()),
            Role::Worker => self.redis().err(),
            Role::Frontend => self.upstream().err(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReqLabels {
    method: String,
    path: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    path: String,
}

pub struct Inner {
    pub(crate) config: Config,
    pub(crate) redis: Option<resp::Target>,
    pub(crate) upstream: Option<upstream::Url>,
    pub(crate) runs: Option<Arc<kube::Runs>>,
    shutting_down: AtomicBool,
    in_flight: AtomicU64,
    registry: Registry,
    requests: Family<ReqLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    in_flight_gauge: Gauge,
}

#[derive(Clone)]
pub struct State(pub Arc<Inner>);

impl State {
    pub fn new(config: Config) -> State {
        let kube = config.runs.as_ref().map(|_| {
            kube::Kube::in_cluster(
                &|k: &str| std::env::var(k).ok(),
                std::path::Path::new(kube::SA_DIR),
            )
        });
        State::with_kube(config, kube)
    }

    /// `kube`: the in-cluster client for runs (when `config.runs` is set).
    pub fn with_kube(config: Config, kube: Option<Result<kube::Kube, String>>) -> State {
        let mut registry = Registry::with_prefix("sample");
        let requests = Family::<ReqLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let in_flight_gauge = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route",
            latency.clone(),
        );
        registry.register(
            "http_in_flight_requests",
            "Requests being served now",
            in_flight_gauge.clone(),
        );
        if let Some(why) = config.missing() {
            log("warn", &format!("not ready: {why}"));
        }
        let runs = config.runs.clone().map(|cfg| {
            kube::Runs::new(
                cfg,
                kube.unwrap_or_else(|| Err("no Kubernetes client".into())),
            )
        });
        State(Arc::new(Inner {
            redis: config.redis().ok(),
            upstream: config.upstream().ok(),
            runs,
            config,
            shutting_down: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            registry,
            requests,
            latency,
            in_flight_gauge,
        }))
    }

    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> u64 {
        self.0.in_flight.load(Ordering::SeqCst)
    }
}

/// The routes of the state's role: api (and dispatcher, which adds /tasks; api with
/// RUNNER_IMAGE adds /runs), frontend, or worker (probes only).
pub fn router(state: State) -> Router {
    let probes = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz));
    let routes = match state.0.config.role {
        Role::Worker => probes,
        Role::Frontend => probes
            .route("/", get(frontend::index))
            .route("/version", get(version))
            .route("/metrics", get(metrics))
            .route("/api/{*rest}", any(frontend::proxy)),
        Role::Api | Role::Dispatcher | Role::Runner => {
            let mut r = probes
                .route("/version", get(version))
                .route("/metrics", get(metrics))
                .route("/api/echo", post(echo));
            if state.0.config.role == Role::Dispatcher {
                r = r
                    .route("/tasks", post(tasks::post_task))
                    .route("/tasks/{id}", get(tasks::get_task));
            }
            if state.0.runs.is_some() {
                r = r.route("/runs", post(kube::post_runs).get(kube::get_runs));
            }
            r
        }
    };
    routes
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Count, time and log every request, and track the in-flight count for shutdown.
async fn observe(AxState(st): AxState<State>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    // Unknown paths share one label so scanners cannot blow up the series count.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |m| m.as_str().to_string());
    st.0.in_flight.fetch_add(1, Ordering::SeqCst);
    st.0.in_flight_gauge.inc();
    let resp = next.run(req).await;
    st.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    st.0.in_flight_gauge.dec();
    let status = resp.status().as_u16();
    let took = started.elapsed();
    st.0.requests
        .get_or_create(&ReqLabels {
            method: method.clone(),
            path: route.clone(),
            status,
        })
        .inc();
    st.0.latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            path: route,
        })
        .observe(took.as_secs_f64());
    println!(
        "{}",
        serde_json::json!({"ts_ms": now_ms(), "level": "info", "msg": "request", "method": method, "path": path, "status": status, "duration_ms": took.as_secs_f64() * 1000.0})
    );
    resp
}

async fn readyz(AxState(st): AxState<State>) -> Response {
    if st.0.shutting_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let why = match st.0.config.missing() {
        Some(why) => Some(why),
        None => match (&st.0.runs, st.0.config.role) {
            (Some(runs), _) if runs.missing().is_some() => runs.missing(),
            (_, Role::Dispatcher | Role::Worker) => match &st.0.redis {
                Some(t) => resp::ping(t)
                    .await
                    .err()
                    .map(|e| format!("Redis at {t}: {e}")),
                None => Some("REDIS_URL is not valid".into()),
            },
            (_, Role::Frontend) => match &st.0.upstream {
                Some(up) => frontend::upstream_ready(up).await.err(),
                None => Some("UPSTREAM_URL is not valid".into()),
            },
            _ => None,
        },
    };
    match why {
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
        None => "ready\n".into_response(),
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct VersionInfo {
    pub name: String,
    pub version: String,
    pub commit: String,
    pub image_tag: String,
    /// Every role but `api` (whose answer stays as it always was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// dispatcher: the first 12 hex characters of CONFIG_FILE's SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha: Option<String>,
}

async fn version(AxState(st): AxState<State>) -> Json<VersionInfo> {
    let c = &st.0.config;
    Json(VersionInfo {
        name: env!("CARGO_PKG_NAME").into(),
        version: env!("CARGO_PKG_VERSION").into(),
        commit: c.git_commit.clone(),
        image_tag: c.image_tag.clone(),
        role: (c.role != Role::Api).then(|| c.role.name().to_string()),
        config_sha: (c.role == Role::Dispatcher)
            .then(|| c.read_config_file().ok().map(|b| short_sha(&b)))
            .flatten(),
    })
}

async fn metrics(AxState(st): AxState<State>) -> Response {
    let mut body = String::new();
    if encode(&mut body, &st.0.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[derive(Deserialize, Debug, Default)]
pub struct EchoRequest {
    #[serde(default)]
    pub message: String,
    /// Hold the response this long (bounded): lets tests keep a request in flight.
    #[serde(default)]
    pub delay_ms: u64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct EchoResponse {
    pub echo: String,
    pub greeting: String,
    pub secret_present: bool,
    /// First 12 hex characters of the secret's SHA-256, to compare without revealing it.
    pub secret_sha256: Option<String>,
    pub image_tag: String,
}

async fn echo(AxState(st): AxState<State>, body: Option<Json<EchoRequest>>) -> Response {
    let Some(greeting) = st.0.config.greeting.clone() else {
        let why = st.0.config.missing().unwrap_or_default();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": why})),
        )
            .into_response();
    };
    let req = body.map(|Json(b)| b).unwrap_or_default();
    if req.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(req.delay_ms.min(30_000))).await;
    }
    let token = st.0.config.api_token.as_deref();
    Json(EchoResponse {
        echo: req.message,
        greeting,
        secret_present: token.is_some(),
        secret_sha256: token.map(|t| short_sha(t.as_bytes())),
        image_tag: st.0.config.image_tag.clone(),
    })
    .into_response()
}

/// Serve until `signal` fires; then turn unready, keep serving for `delay` (so the
/// endpoint is removed from Services before the listener closes), stop accepting and
/// wait up to `timeout` for in-flight requests. Returns the process exit code.
pub async fn serve(
    listener: TcpListener,
    state: State,
    signal: impl Future<Output = ()> + Send + 'static,
    delay: Duration,
    timeout: Duration,
) -> i32 {
    let (begun_tx, begun_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let st = state.clone();
    tokio::spawn(async move {
        signal.await;
        st.begin_shutdown();
        let _ = begun_tx.send(());
        log(
            "info",
            &format!(
                "shutting down: unready now, draining for {}s",
                delay.as_secs_f32()
            ),
        );
        tokio::time::sleep(delay).await;
        let _ = stop_tx.send(());
    });
    let server = axum::serve(listener, router(state.clone())).with_graceful_shutdown(async {
        let _ = stop_rx.await;
    });
    let mut server = tokio::spawn(async move { server.await });
    // Run until the server ends by itself or shutdown begins; from then on, the
    // graceful stop (which waits for every open connection) gets delay + timeout.
    let finished = tokio::select! {
        r = &mut server => Some(r),
        _ = begun_rx => None,
    };
    let result = match finished {
        Some(r) => Ok(r),
        None => tokio::time::timeout(delay + timeout, &mut server).await,
    };
    match result {
        Ok(Ok(Ok(()))) => {
            log("info", "stopped cleanly");
            0
        }
        Ok(Ok(Err(e))) => {
            log("error", &format!("server error: {e}"));
            1
        }
        Ok(Err(e)) => {
            log("error", &format!("server task failed: {e}"));
            1
        }
        Err(_) => {
            log(
                "warn",
                &format!(
                    "{} request(s) still in flight after {}s; exiting",
                    state.in_flight(),
                    timeout.as_secs()
                ),
            );
            0
        }
    }
}

/// The worker: its probes on `listener` while the queue loop runs; on `signal` the
/// loop finishes its current item, then the probe server stops. Returns the exit code.
pub async fn serve_worker(
    listener: TcpListener,
    state: State,
    signal: impl Future<Output = ()> + Send + 'static,
) -> i32 {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(state.clone())).with_graceful_shutdown(async {
        let _ = stop_rx.await;
    });
    let server = tokio::spawn(async move { server.await });
    let code = tasks::work(state, signal).await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    code
}

/// GET `url` (plain http://host:port/path) and return the status code.
pub async fn check(url: &str, timeout: Duration) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (hostport, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    // A name without a port is port 80, as in any URL (`http://api/healthz` through a
    // Service's DNS name).
    let addr = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr.as_str())
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let req = format!("GET {path} HTTP/1.1\r\nhost: {hostport}\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let head = String::from_utf8_lossy(&buf);
        head.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {:?}", head.lines().next()))
    };
    tokio::time::timeout(timeout, io)
        .await
        .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn config(greeting: Option<&str>, token: Option<&str>) -> Config {
        Config::from_env(|k| match k {
            "GREETING" => greeting.map(String::from),
            "API_TOKEN" => token.map(String::from),
            "IMAGE_TAG" => Some("c-123".into()),
            _ => None,
        })
    }

    async fn call(app: Router, method: &str, path: &str, body: &str) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn health_and_readiness() {
        let st = State::new(config(Some("hi"), None));
        assert_eq!(
            call(router(st.clone()), "GET", "/healthz", "").await,
            (StatusCode::OK, "ok\n".into())
        );
        assert_eq!(
            call(router(st.clone()), "GET", "/readyz", "").await.0,
            StatusCode::OK
        );
        st.begin_shutdown();
        let (code, body) = call(router(st.clone()), "GET", "/readyz", "").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("shutting down"));
        assert_eq!(
            call(router(st), "GET", "/healthz", "").await.0,
            StatusCode::OK,
            "liveness stays up while draining"
        );
    }

    #[tokio::test]
    async fn missing_config_means_unready_not_500() {
        let st = State::new(config(None, Some("tok")));
        let (code, body) = call(router(st.clone()), "GET", "/readyz", "").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("GREETING"), "{body}");
        let (code, body) = call(router(st), "POST", "/api/echo", "{}").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("GREETING"));
    }

    #[tokio::test]
    async fn version_reports_the_image_tag() {
        let (code, body) = call(
            router(State::new(config(Some("hi"), None))),
            "GET",
            "/version",
            "",
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        let v: VersionInfo = serde_json::from_str(&body).unwrap();
        assert_eq!(v.name, "sample");
        assert_eq!(v.image_tag, "c-123");
    }

    #[tokio::test]
    async fn echo_proves_config_and_secret_without_revealing_it() {
        let secret = "s3cret-canary-value";
        let (code, body) = call(
            router(State::new(config(Some("hello from config"), Some(secret)))),
            "POST",
            "/api/echo",
            r#"{"message":"ping"}"#,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        assert!(!body.contains(secret));
        let r: EchoResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(r.echo, "ping");
        assert_eq!(r.greeting, "hello from config");
        assert!(r.secret_present);
        assert_eq!(r.secret_sha256.as_deref().map(str::len), Some(12));

        let (_, body) = call(
            router(State::new(config(Some("g"), None))),
            "POST",
            "/api/echo",
            "{}",
        )
        .await;
        let r: EchoResponse = serde_json::from_str(&body).unwrap();
        assert!(!r.secret_present);
        assert_eq!(r.secret_sha256, None);
    }

    #[tokio::test]
    async fn metrics_count_requests() {
        let st = State::new(config(Some("hi"), None));
        call(router(st.clone()), "GET", "/healthz", "").await;
        call(router(st.clone()), "GET", "/nope", "").await;
        let (code, body) = call(router(st), "GET", "/metrics", "").await;
        assert_eq!(code, StatusCode::OK);
        assert!(
            body.contains(
                r#"sample_http_requests_total{method="GET",path="/healthz",status="200"} 1"#
            ),
            "{body}"
        );
        assert!(body.contains(r#"path="other",status="404""#), "{body}");
        assert!(body.contains("sample_http_request_duration_seconds_bucket"));
    }

    #[tokio::test]
    async fn check_probe_reports_status() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let st = State::new(config(None, None));
        tokio::spawn(async move { axum::serve(listener, router(st)).await });
        assert_eq!(
            check(&format!("http://{addr}/healthz"), Duration::from_secs(2)).await,
            Ok(200)
        );
        assert_eq!(
            check(&format!("http://{addr}/readyz"), Duration::from_secs(2)).await,
            Ok(503)
        );
        assert!(check("http://127.0.0.1:1/healthz", Duration::from_secs(2))
            .await
            .is_err());
    }

    /// A request in flight when shutdown starts still completes, readiness flips at
    /// once, and the server exits 0 within the bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn graceful_shutdown_finishes_in_flight_requests() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let st = State::new(config(Some("hi"), None));
        let (sig_tx, sig_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            st.clone(),
            async {
                let _ = sig_rx.await;
            },
            Duration::from_millis(300),
            Duration::from_secs(5),
        ));

        let slow = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let body = r#"{"message":"slow","delay_ms":800}"#;
            let req = format!("POST /api/echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut s, &mut out)
                .await
                .unwrap();
            out
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(st.in_flight(), 1);
        let started = Instant::now();
        sig_tx.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (code, _) = call(router(st.clone()), "GET", "/readyz", "").await;
        assert_eq!(
            code,
            StatusCode::SERVICE_UNAVAILABLE,
            "unready as soon as shutdown starts"
        );

        let resp = slow.await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.contains("\"echo\":\"slow\""));
        let code = tokio::time::timeout(Duration::from_secs(6), server)
            .await
            .expect("server stops within the bound")
            .unwrap();
        assert_eq!(code, 0);
        assert!(started.elapsed() < Duration::from_secs(6));
    }

    fn env_config(pairs: &[(&str, &str)]) -> Config {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    async fn serve_on_loopback(app: Router) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[test]
    fn roles_parse() {
        assert_eq!(Role::parse(None), Ok(Role::Api));
        assert_eq!(Role::parse(Some("")), Ok(Role::Api));
        for r in Role::ALL {
            assert_eq!(Role::parse(Some(r.name())), Ok(r));
        }
        assert!(Role::parse(Some("Worker"))
            .unwrap_err()
            .contains("not one of"));
    }

    #[tokio::test]
    async fn api_version_is_unchanged_and_runs_are_off_by_default() {
        let st = State::new(config(Some("hi"), None));
        let (_, body) = call(router(st.clone()), "GET", "/version", "").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["commit", "image_tag", "name", "version"]);
        assert_eq!(
            call(router(st), "POST", "/runs", r#"{"input":"a\n1\n"}"#)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn api_runs_outside_a_cluster_are_unready_and_refused() {
        let cfg = env_config(&[("GREETING", "hi"), ("RUNNER_IMAGE", "runner:dev")]);
        let st = State::with_kube(cfg, Some(Err("KUBERNETES_SERVICE_HOST is not set".into())));
        let (code, body) = call(router(st.clone()), "GET", "/readyz", "").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("KUBERNETES_SERVICE_HOST"), "{body}");
        let (code, body) = call(router(st.clone()), "POST", "/runs", r#"{"input":"a\n1\n"}"#).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let (code, body) = call(router(st), "GET", "/runs", "").await;
        assert_eq!(code, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["runner_image"], "runner:dev");
        assert_eq!(v["runs"], serde_json::json!([]));
    }

    /// The dispatcher queues, a worker takes the item and records it done, the
    /// dispatcher reports it; readiness follows Redis; /version hashes the config file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dispatcher_and_worker_through_redis() {
        let (redis, _data) = crate::resp::fake::start(Some("pw")).await;
        let dir = std::env::temp_dir().join(format!("sample-test-{}", new_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg_file = dir.join("agentsmith.yml");
        std::fs::write(&cfg_file, "agents: 3\n").unwrap();
        let url = format!("redis://{redis}");
        let cf = cfg_file.to_str().unwrap();
        let disp = State::new(env_config(&[
            ("ROLE", "dispatcher"),
            ("GREETING", "hi"),
            ("REDIS_URL", &url),
            ("REDIS_PASSWORD", "pw"),
            ("CONFIG_FILE", cf),
            ("QUEUE", "jobs"),
        ]));
        assert_eq!(
            call(router(disp.clone()), "GET", "/readyz", "").await.0,
            StatusCode::OK
        );
        let (_, body) = call(router(disp.clone()), "GET", "/version", "").await;
        let v: VersionInfo = serde_json::from_str(&body).unwrap();
        assert_eq!(v.role.as_deref(), Some("dispatcher"));
        assert_eq!(v.config_sha, Some(short_sha(b"agents: 3\n")));

        let (code, body) = call(router(disp.clone()), "POST", "/tasks", r#"{"work_ms":50}"#).await;
        assert_eq!(code, StatusCode::ACCEPTED, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["queued"], true);
        let id = v["id"].as_str().unwrap().to_string();
        let (code, body) = call(router(disp.clone()), "GET", &format!("/tasks/{id}"), "").await;
        assert_eq!(
            (code, body.contains(r#""status":"queued""#)),
            (StatusCode::OK, true),
            "{body}"
        );
        assert_eq!(
            call(router(disp.clone()), "GET", "/tasks/nosuchtask", "")
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(router(disp.clone()), "POST", "/tasks", "not json")
                .await
                .0,
            StatusCode::BAD_REQUEST
        );

        let worker = State::new(env_config(&[
            ("ROLE", "worker"),
            ("REDIS_URL", &format!("redis://:pw@{redis}")),
            ("QUEUE", "jobs"),
        ]));
        assert_eq!(
            call(router(worker.clone()), "GET", "/readyz", "").await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(router(worker.clone()), "GET", "/version", "").await.0,
            StatusCode::NOT_FOUND,
            "a worker serves probes only"
        );
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let w = tokio::spawn(tasks::work(worker.clone(), async {
            let _ = stop_rx.await;
        }));
        let mut status = String::new();
        for _ in 0..100 {
            status = call(router(disp.clone()), "GET", &format!("/tasks/{id}"), "")
                .await
                .1;
            if status.contains("done") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(status.contains(r#""status":"done""#), "{status}");

        // SIGTERM while an item is being worked on: it is finished, then the loop ends.
        let (_, body) = call(router(disp.clone()), "POST", "/tasks", r#"{"work_ms":700}"#).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let slow = v["id"].as_str().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop_tx.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            call(router(worker.clone()), "GET", "/readyz", "").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let code = tokio::time::timeout(Duration::from_secs(8), w)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(code, 0);
        let (_, body) = call(router(disp.clone()), "GET", &format!("/tasks/{slow}"), "").await;
        assert!(
            body.contains(r#""status":"done""#),
            "the item in hand was finished: {body}"
        );

        let (_, body) = call(router(disp.clone()), "GET", "/metrics", "").await;
        assert!(
            body.contains(r#"path="/tasks/{id}",status="200""#),
            "{body}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        // No Redis, no config file: unready, saying why.
        let down = State::new(env_config(&[
            ("ROLE", "dispatcher"),
            ("GREETING", "hi"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("CONFIG_FILE", cf),
        ]));
        let (code, body) = call(router(down), "GET", "/readyz", "").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("CONFIG_FILE"), "{body}");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&cfg_file, "x: 1\n").unwrap();
        let down = State::new(env_config(&[
            ("ROLE", "dispatcher"),
            ("GREETING", "hi"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("CONFIG_FILE", cf),
        ]));
        let (code, body) = call(router(down), "GET", "/readyz", "").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("Redis at redis://127.0.0.1:1/0"), "{body}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The frontend passes /api/* (method, path below the upstream's base, query,
    /// body) to a real upstream and follows its readiness.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frontend_proxies_to_its_upstream() {
        let api = State::new(config(Some("hello from the api"), None));
        let api_addr = serve_on_loopback(router(api.clone())).await;
        let front = |url: &str| {
            State::new(env_config(&[
                ("ROLE", "frontend"),
                ("UPSTREAM_URL", url),
                ("IMAGE_TAG", "f-9"),
            ]))
        };
        let st = front(&format!("http://{api_addr}"));
        let (code, page) = call(router(st.clone()), "GET", "/", "").await;
        assert_eq!(code, StatusCode::OK);
        assert!(
            page.contains("sample: frontend") && page.contains("f-9"),
            "{page}"
        );
        assert_eq!(
            call(router(st.clone()), "GET", "/readyz", "").await.0,
            StatusCode::OK
        );
        let (code, body) = call(
            router(st.clone()),
            "POST",
            "/api/echo",
            r#"{"message":"via"}"#,
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let r: EchoResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (r.echo.as_str(), r.greeting.as_str()),
            ("via", "hello from the api")
        );
        assert_eq!(
            call(router(st.clone()), "GET", "/api/echo", "").await.0,
            StatusCode::METHOD_NOT_ALLOWED,
            "the upstream's status comes back"
        );
        assert_eq!(
            call(router(st.clone()), "GET", "/api/echo", "").await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let (_, v) = call(router(st), "GET", "/version", "").await;
        assert!(v.contains(r#""role":"frontend""#), "{v}");

        // A base path and the query string reach the upstream.
        let seen = Router::new().route(
            "/{*p}",
            any(|uri: axum::http::Uri| async move { uri.to_string() }),
        );
        let seen_addr = serve_on_loopback(seen).await;
        let st = front(&format!("http://{seen_addr}/base/"));
        let (code, body) = call(router(st.clone()), "GET", "/api/todos?done=1", "").await;
        assert_eq!(
            (code, body.as_str()),
            (StatusCode::OK, "/base/api/todos?done=1")
        );

        // An unready upstream, or none: unready, and the proxy says 502.
        let unready = serve_on_loopback(router(State::new(config(None, None)))).await;
        let (code, body) = call(
            router(front(&format!("http://{unready}"))),
            "GET",
            "/readyz",
            "",
        )
        .await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("answered 503"), "{body}");
        let gone = front("http://127.0.0.1:1");
        assert_eq!(
            call(router(gone.clone()), "GET", "/readyz", "").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            call(router(gone), "GET", "/api/x", "").await.0,
            StatusCode::BAD_GATEWAY
        );
        let (code, body) = call(router(front("https://secure")), "GET", "/readyz", "").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("UPSTREAM_URL"), "{body}");
    }
}
