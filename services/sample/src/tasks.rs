//! The Redis queue roles (agentsmith's dispatcher, PyBase's workers):
//! `ROLE=dispatcher` adds `POST /tasks` (LPUSH a JSON item onto `QUEUE`) and
//! `GET /tasks/<id>` (reads `result:<id>`) to the API; `ROLE=worker` loops
//! `BRPOP QUEUE 5`, "processes" each item (logs it, waits its `work_ms`) and sets
//! `result:<id>` to `done`. Results expire after a day.

use std::future::Future;
use std::time::Duration;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::{log, new_id, now_ms, State};
use crate::resp::{Conn, Target};

/// How long `result:<id>` keys live.
const RESULT_TTL_SECS: u64 = 86400;
/// The longest a task may ask the worker to "work" (its payload's `work_ms`).
const MAX_WORK: Duration = Duration::from_secs(60);

pub fn result_key(id: &str) -> String {
    format!("result:{id}")
}

/// Task ids as the dispatcher makes them (and nothing that could spell another key).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The queue item for a task: its id, the posted JSON and when it was queued.
pub fn task_item(id: &str, payload: &Value, queued_ms: u128) -> Vec<u8> {
    json!({"id": id, "payload": payload, "queued_ms": queued_ms})
        .to_string()
        .into_bytes()
}

/// What the worker takes from an item: its id (a short hash of the item when it has
/// none, e.g. pushed by hand with redis-cli) and how long to "work".
pub fn item_id_and_work(item: &[u8]) -> (String, Duration) {
    let v: Value = serde_json::from_slice(item).unwrap_or(Value::Null);
    let id = v["id"]
        .as_str()
        .filter(|id| valid_id(id))
        .map(String::from)
        .unwrap_or_else(|| {
            Sha256::digest(item)
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect()
        });
    let work = Duration::from_millis(v["payload"]["work_ms"].as_u64().unwrap_or(0)).min(MAX_WORK);
    (id, work)
}

/// The Redis target, or the 503 to answer without one (boxed: a Response is large).
fn redis_target(st: &State) -> Result<Target, Box<Response>> {
    st.0.redis.clone().ok_or_else(|| {
        Box::new(
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "REDIS_URL is not set or not valid"})),
            )
                .into_response(),
        )
    })
}

fn unavailable(e: String) -> Response {
    log("error", &format!("redis: {e}"));
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": format!("redis: {e}")})),
    )
        .into_response()
}

/// `POST /tasks`: any JSON body; answers 202 `{"id": .., "queued": true}`.
pub async fn post_task(AxState(st): AxState<State>, body: Option<Json<Value>>) -> Response {
    let target = match redis_target(&st) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let Some(Json(payload)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "want a JSON body (content-type: application/json)"})),
        )
            .into_response();
    };
    let id = new_id();
    let item = task_item(&id, &payload, now_ms());
    let queue = st.0.config.queue.clone();
    let pushed = async {
        let mut c = Conn::connect(&target).await?;
        // Known (and queued) before a worker can take it, so GET never says unknown.
        c.set(&result_key(&id), b"queued", Some(RESULT_TTL_SECS))
            .await?;
        c.lpush(&queue, &item).await
    };
    match pushed.await {
        Ok(_) => {
            log("info", &format!("task {id} queued on {queue}"));
            (
                StatusCode::ACCEPTED,
                Json(json!({"id": id, "queued": true})),
            )
                .into_response()
        }
        Err(e) => unavailable(e),
    }
}

/// `GET /tasks/<id>`: `{"id": .., "status": "queued" | "done"}`, 404 when unknown.
pub async fn get_task(AxState(st): AxState<State>, Path(id): Path<String>) -> Response {
    if !valid_id(&id) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "bad task id"})),
        )
            .into_response();
    }
    let target = match redis_target(&st) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let got = async { Conn::connect(&target).await?.get(&result_key(&id)).await };
    match got.await {
        Ok(Some(v)) => {
            Json(json!({"id": id, "status": String::from_utf8_lossy(&v)})).into_response()
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({"id": id, "error": "unknown task (or its result expired)"})),
        )
            .into_response(),
        Err(e) => unavailable(e),
    }
}

/// Process one item: log it, "work", record the result.
async fn process(c: &mut Conn, item: &[u8]) -> Result<String, String> {
    let (id, work) = item_id_and_work(item);
    println!(
        "{}",
        json!({"ts_ms": now_ms(), "level": "info", "msg": "processing", "id": id,
               "item": String::from_utf8_lossy(item)})
    );
    tokio::time::sleep(work).await;
    c.set(&result_key(&id), b"done", Some(RESULT_TTL_SECS))
        .await?;
    Ok(id)
}

/// The worker loop: until `signal`, take items off the queue one at a time. A signal
/// that arrives while an item is being processed lets it finish (and an item that a
/// pending BRPOP hands over is processed too); then the loop ends. Returns the exit code.
pub async fn work(st: State, signal: impl Future<Output = ()> + Send + 'static) -> i32 {
    let Some(target) = st.0.redis.clone() else {
        log("error", "REDIS_URL is not set or not valid");
        return 2;
    };
    let queue = st.0.config.queue.clone();
    let s2 = st.clone();
    tokio::spawn(async move {
        signal.await;
        s2.begin_shutdown();
        log("info", "stopping: finishing the current item, then exiting");
    });
    log(
        "info",
        &format!("worker: taking items from {queue} at {target}"),
    );
    let mut conn: Option<Conn> = None;
    let mut done = 0u64;
    while !st.is_shutting_down() {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(&target).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    log("warn", &format!("redis: {e}; retrying in 1s"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let r = match c.brpop(&queue, 5).await {
            Ok(None) => Ok(()),
            Ok(Some(item)) => process(c, &item).await.map(|id| {
                done += 1;
                log("info", &format!("task {id} done"));
            }),
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            log("warn", &format!("redis: {e}; reconnecting"));
            conn = None;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    log("info", &format!("worker stopped after {done} item(s)"));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_items() {
        assert!(valid_id("t18c2f3a9b0-01"));
        for bad in ["", "a b", "x:y", "../x", &"a".repeat(65)] {
            assert!(!valid_id(bad), "{bad}");
        }
        let item = task_item("abc", &json!({"work_ms": 250, "n": 1}), 7);
        let v: Value = serde_json::from_slice(&item).unwrap();
        assert_eq!(
            v,
            json!({"id": "abc", "payload": {"work_ms": 250, "n": 1}, "queued_ms": 7})
        );
        assert_eq!(
            item_id_and_work(&item),
            ("abc".to_string(), Duration::from_millis(250))
        );
        // By hand (`redis-cli LPUSH tasks hello`): a stable short id, no work.
        let (id, work) = item_id_and_work(b"hello");
        assert_eq!((id.len(), work), (12, Duration::ZERO));
        assert_eq!(item_id_and_work(b"hello").0, id);
        let big = task_item("x", &json!({"work_ms": 10_000_000}), 0);
        assert_eq!(item_id_and_work(&big).1, MAX_WORK);
        assert_eq!(result_key("abc"), "result:abc");
    }
}
