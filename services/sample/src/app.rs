//! Router, state, metrics and the shutdown sequence (testable without a process).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State as AxState};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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

/// One JSON log line on stdout.
pub fn log(level: &str, msg: &str) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({"ts_ms": ts, "level": level, "msg": msg})
    );
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen_addr: String,
    pub port: u16,
    pub greeting: Option<String>,
    pub api_token: Option<String>,
    pub image_tag: String,
    pub git_commit: String,
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
        }
    }

    /// Why the service cannot serve its functional endpoint, if it cannot.
    pub fn missing(&self) -> Option<String> {
        self.greeting.is_none().then(|| {
            "required configuration GREETING is not set (it comes from the ConfigMap)".to_string()
        })
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
    config: Config,
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
        State(Arc::new(Inner {
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

    pub fn in_flight(&self) -> u64 {
        self.0.in_flight.load(Ordering::SeqCst)
    }
}

pub fn router(state: State) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .route("/api/echo", post(echo))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Count, time and log every request, and track the in-flight count for shutdown.
async fn observe(AxState(st): AxState<State>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    st.0.in_flight.fetch_add(1, Ordering::SeqCst);
    st.0.in_flight_gauge.inc();
    let resp = next.run(req).await;
    st.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    st.0.in_flight_gauge.dec();
    let status = resp.status().as_u16();
    // Unknown paths share one label so scanners cannot blow up the series count.
    let route = match path.as_str() {
        "/healthz" | "/readyz" | "/version" | "/metrics" | "/api/echo" => path.clone(),
        _ => "other".into(),
    };
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
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({"ts_ms": ts, "level": "info", "msg": "request", "method": method, "path": path, "status": status, "duration_ms": took.as_secs_f64() * 1000.0})
    );
    resp
}

async fn readyz(AxState(st): AxState<State>) -> Response {
    if st.0.shutting_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match st.0.config.missing() {
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
}

async fn version(AxState(st): AxState<State>) -> Json<VersionInfo> {
    Json(VersionInfo {
        name: env!("CARGO_PKG_NAME").into(),
        version: env!("CARGO_PKG_VERSION").into(),
        commit: st.0.config.git_commit.clone(),
        image_tag: st.0.config.image_tag.clone(),
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
        secret_sha256: token.map(|t| {
            Sha256::digest(t.as_bytes())
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect()
        }),
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
}
