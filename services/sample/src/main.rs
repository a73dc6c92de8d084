//! The sample service slipway deploys by default, and the template to copy.
//!
//! Endpoints: `GET /healthz` (liveness), `GET /readyz` (readiness: unready while
//! required config is missing and as soon as shutdown starts), `GET /version`,
//! `GET /metrics` (Prometheus text), `POST /api/echo` (proves the ConfigMap and the
//! Secret arrived: greeting from config, and whether the secret is present with a
//! short hash of it — never its value).
//!
//! Configuration (environment): `LISTEN_ADDR` (0.0.0.0), `PORT` (8080), `GREETING`
//! (required), `API_TOKEN` (the secret; optional but reported), `IMAGE_TAG`,
//! `GIT_COMMIT`, `SHUTDOWN_DELAY_SECONDS` (2: keep serving while endpoints drain),
//! `SHUTDOWN_TIMEOUT_SECONDS` (20: bound for in-flight requests).

mod app;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

#[tokio::main]
async fn main() {
    // `sample check URL`: an HTTP probe for images with no shell or curl (the chart's
    // `helm test` hook and `docker run` health checks use it).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("check") {
        let url = args
            .get(2)
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1:8080/healthz");
        std::process::exit(match app::check(url, Duration::from_secs(5)).await {
            Ok(status) => {
                println!("{url}: {status}");
                if (200..300).contains(&status) {
                    0
                } else {
                    1
                }
            }
            Err(e) => {
                eprintln!("{url}: {e}");
                1
            }
        });
    }
    let config = app::Config::from_env(|k| std::env::var(k).ok());
    let addr: SocketAddr = format!("{}:{}", config.listen_addr, config.port)
        .parse()
        .unwrap_or_else(|e| {
            app::log("error", &format!("invalid LISTEN_ADDR/PORT: {e}"));
            std::process::exit(2);
        });
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            app::log("error", &format!("cannot listen on {addr}: {e}"));
            std::process::exit(1);
        }
    };
    let state = app::State::new(config);
    let delay = env_secs("SHUTDOWN_DELAY_SECONDS", 2);
    let timeout = env_secs("SHUTDOWN_TIMEOUT_SECONDS", 20);
    app::log("info", &format!("listening on {addr}"));
    let code = app::serve(listener, state, shutdown_signal(), delay, timeout).await;
    std::process::exit(code);
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => app::log("info", "SIGTERM received"),
        _ = int.recv() => app::log("info", "SIGINT received"),
    }
}
