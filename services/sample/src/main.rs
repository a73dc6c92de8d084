//! The sample service slipway deploys by default, and the template to copy. One
//! binary plays every role of the example deployments (the team systems in the seed
//! documents), chosen with `ROLE`:
//!
//! - `api` (the default): `GET /healthz` (liveness), `GET /readyz` (readiness:
//!   unready while required config is missing and as soon as shutdown starts),
//!   `GET /version`, `GET /metrics` (Prometheus text), `POST /api/echo` (proves the
//!   ConfigMap and the Secret arrived: greeting from config, and whether the secret is
//!   present with a short hash of it — never its value). With `RUNNER_IMAGE` set
//!   (csv-analyst), also `POST /runs` `{"input": "<csv>"}`: creates a Job in the pod's
//!   namespace running `RUNNER_IMAGE` with `ROLE=runner`, waits for it and answers
//!   `{"run_id", "job", "status": "succeeded" | "failed" | "timeout"}`; `GET /runs`
//!   lists this pod's runs. Readiness then also needs the service-account token.
//! - `frontend` (todo chatbot, PyBase): `GET /` (an HTML page naming the role and
//!   image tag), `/healthz`, `/readyz` (ready only while `UPSTREAM_URL`'s `/readyz`
//!   answers 200), `/version`, `/metrics`, and `/api/*` passed to `UPSTREAM_URL`.
//! - `worker` (PyBase's Celery workers): no Service; `/healthz` and `/readyz` (Redis
//!   answers PING) on `PORT` for probes. Loops `BRPOP $QUEUE 5` and "processes" each
//!   item (logs it, sleeps its payload's `work_ms`, `SET result:<id> done`). SIGTERM
//!   lets the current item finish, then it exits (give the pod a long
//!   terminationGracePeriodSeconds).
//! - `dispatcher` (agentsmith): the `api` plus `POST /tasks` (any JSON body; LPUSH onto
//!   `$QUEUE`, answers 202 `{"id", "queued": true}`) and `GET /tasks/<id>`
//!   (`{"id", "status": "queued" | "done"}`, 404 when unknown). Ready when GREETING,
//!   REDIS_URL and CONFIG_FILE are there and Redis answers PING; `/version` adds
//!   `config_sha` (CONFIG_FILE's SHA-256, 12 hex characters).
//! - `runner` (csv-analyst's runner image): one-shot, no server. Reads `RUN_ID` and
//!   `RUN_INPUT` (a CSV text with a header row), or the arguments `RUN_ID [INPUT]`;
//!   prints one JSON line `{"run_id", "status": "succeeded", "rows", "columns",
//!   "sums"}` and exits 0, or `{"run_id", "status": "failed", "error"}` and exits 1.
//!
//! Every server role answers `/version` with `role` (except `api`, whose answer is
//! unchanged). `sample check URL` is an HTTP probe for images with no shell or curl.
//!
//! Configuration (environment): `ROLE` (api), `LISTEN_ADDR` (0.0.0.0), `PORT` (8080),
//! `GREETING` (required by api and dispatcher), `API_TOKEN` (the secret; optional but
//! reported), `IMAGE_TAG`, `GIT_COMMIT`, `SHUTDOWN_DELAY_SECONDS` (2: keep serving
//! while endpoints drain), `SHUTDOWN_TIMEOUT_SECONDS` (20: bound for in-flight
//! requests). frontend: `UPSTREAM_URL` (required; `http://host[:port][/base]`).
//! dispatcher and worker: `REDIS_URL` (required; `redis://[[user]:password@]host[:port][/db]`
//! or `host:port`), `REDIS_PASSWORD` (when the URL has none), `QUEUE` (tasks);
//! dispatcher: `CONFIG_FILE` (required). api runs: `RUNNER_IMAGE`,
//! `RUNNER_PULL_POLICY` (IfNotPresent), `RUN_TIMEOUT_SECONDS` (60), and the pod's
//! `KUBERNETES_SERVICE_HOST`/`_PORT` and service account.

mod app;
mod frontend;
mod kube;
mod resp;
mod runner;
mod tasks;
mod upstream;

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
    let role = match app::Role::parse(std::env::var("ROLE").ok().as_deref()) {
        Ok(r) => r,
        Err(e) => {
            app::log("error", &e);
            std::process::exit(2);
        }
    };
    if role == app::Role::Runner {
        std::process::exit(runner::main(args.get(1..).unwrap_or_default()));
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
    if role == app::Role::Worker {
        app::log("info", &format!("worker probes on {addr}"));
        std::process::exit(app::serve_worker(listener, state, shutdown_signal()).await);
    }
    let delay = env_secs("SHUTDOWN_DELAY_SECONDS", 2);
    let timeout = env_secs("SHUTDOWN_TIMEOUT_SECONDS", 20);
    if role == app::Role::Api {
        app::log("info", &format!("listening on {addr}"));
    } else {
        app::log("info", &format!("{} listening on {addr}", role.name()));
    }
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
