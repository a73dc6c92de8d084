//! `ROLE=frontend` (the todo chatbot's and PyBase's frontends): `GET /` is a small
//! HTML page, and `/api/*` is passed to `UPSTREAM_URL` (method, query, content-type
//! and body; the answer's status, content-type and body come back).

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

use crate::app::{log, State};
use crate::upstream;

/// Request bodies passed upstream are at most this long.
const MAX_BODY: usize = 1 << 20;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn page(role: &str, image_tag: &str, upstream: &str) -> String {
    let (role, tag, up) = (escape(role), escape(image_tag), escape(upstream));
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>sample {role}</title></head>\n\
         <body><h1>sample: {role}</h1>\n<p>image tag: <code id=\"image-tag\">{tag}</code></p>\n\
         <p>API: <a href=\"/api/echo\">/api/*</a> &rarr; <code>{up}</code></p>\n</body></html>\n"
    )
}

pub async fn index(AxState(st): AxState<State>) -> Html<String> {
    let up = st.0.config.upstream.clone().unwrap_or_default();
    Html(page(st.0.config.role.name(), &st.0.config.image_tag, &up))
}

/// `/api/*` → the upstream, same path and query (below the upstream URL's own path).
pub async fn proxy(AxState(st): AxState<State>, req: Request) -> Response {
    let Some(up) = st.0.upstream.clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": "UPSTREAM_URL is not set or not valid"})),
        )
            .into_response();
    };
    let method = req.method().as_str().to_string();
    let pq = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = match to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let path = up.join(&pq);
    match upstream::request(&up, &method, &path, ct.as_deref(), &body, UPSTREAM_TIMEOUT).await {
        Ok(r) => {
            let mut resp = Response::new(Body::from(r.body));
            *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_GATEWAY);
            if let Some(v) = r.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                resp.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            resp
        }
        Err(e) => {
            log("warn", &format!("upstream {method} {path}: {e}"));
            (
                StatusCode::BAD_GATEWAY,
                Json(serde_json::json!({"error": format!("upstream: {e}")})),
            )
                .into_response()
        }
    }
}

/// The frontend is ready when its upstream's `/readyz` answers 200.
pub async fn upstream_ready(up: &upstream::Url) -> Result<(), String> {
    let path = up.join("/readyz");
    match upstream::request(up, "GET", &path, None, b"", Duration::from_secs(3)).await {
        Ok(r) if r.status == 200 => Ok(()),
        Ok(r) => Err(format!(
            "upstream {}{path} answered {}",
            up.host_header, r.status
        )),
        Err(e) => Err(format!("upstream {}{path}: {e}", up.host_header)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_names_role_and_tag_escaped() {
        let p = page("frontend", "c-1<script>", "http://todo-api:80");
        assert!(p.contains("<h1>sample: frontend</h1>"), "{p}");
        assert!(p.contains("c-1&lt;script&gt;"), "{p}");
        assert!(!p.contains("<script>"));
        assert!(p.contains("http://todo-api:80"));
    }
}
