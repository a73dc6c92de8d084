//! `type = "http"` (the default): a request to a Service through a
//! `kubectl port-forward` on a free local port, asserting status, body and JSON
//! fields.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Attempt, Io, Kind, Problem, Target};
use crate::exec::{net, Signals};
use crate::model::names::is_dns_label;
use crate::model::Cmd;
use crate::tools::kubectl;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Http {
    pub service: String,
    pub port: u16,
    #[serde(default = "get")]
    pub method: String,
    #[serde(default = "root")]
    pub path: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "ok_status")]
    pub expect_status: u16,
    #[serde(default)]
    pub body_contains: Option<String>,
    /// JSON fields that must equal the given values; keys are dotted paths
    /// (`items.0.name`) or JSON pointers (`/items/0/name`).
    #[serde(default)]
    pub json: BTreeMap<String, toml::Value>,
    /// Also probe the Service while the deploy stage upgrades the releases, through
    /// the API server's service proxy (which picks an endpoint per request), and fail
    /// the check if any of those requests did not get `expect_status`.
    #[serde(default)]
    pub during_rollout: bool,
}

fn get() -> String {
    "GET".into()
}
fn root() -> String {
    "/".into()
}
fn ok_status() -> u16 {
    200
}

/// A dotted path (`a.b.0`) or a JSON pointer (`/a/b/0`) as a JSON pointer.
pub fn pointer(key: &str) -> String {
    if key.starts_with('/') {
        return key.to_string();
    }
    key.split('.')
        .map(|seg| format!("/{}", seg.replace('~', "~0").replace('/', "~1")))
        .collect()
}

impl Kind for Http {
    fn validate(&self) -> Vec<Problem> {
        let mut out: Vec<Problem> = vec![];
        if !is_dns_label(&self.service) {
            out.push((
                "service".into(),
                format!(
                    "service {:?} is not a Service name (a DNS label: a-z, 0-9, -)",
                    self.service
                ),
                None,
            ));
        }
        if self.port == 0 {
            out.push(("port".into(), "port 0 is not a port".into(), None));
        }
        if !METHODS.contains(&self.method.as_str()) {
            out.push((
                "method".into(),
                format!(
                    "method {:?} must be one of {}",
                    self.method,
                    METHODS.join(", ")
                ),
                METHODS
                    .iter()
                    .find(|m| m.eq_ignore_ascii_case(&self.method))
                    .map(|m| format!("write {m:?}")),
            ));
        }
        if !self.path.starts_with('/') {
            out.push((
                "path".into(),
                format!("path {:?} must start with /", self.path),
                None,
            ));
        } else if self.path.contains(|c: char| c.is_control() || c == ' ') {
            out.push((
                "path".into(),
                format!(
                    "path {:?} has spaces or control characters; percent-encode them",
                    self.path
                ),
                None,
            ));
        }
        for (k, v) in &self.headers {
            if ureq::http::HeaderName::from_bytes(k.as_bytes()).is_err() {
                out.push((
                    format!("headers.{k}"),
                    format!("header name {k:?} is not a valid HTTP header name"),
                    None,
                ));
            }
            if ureq::http::HeaderValue::from_str(v).is_err() {
                out.push((
                    format!("headers.{k}"),
                    format!("header {k:?} has a value with CR, LF or other control characters"),
                    None,
                ));
            }
        }
        let declares_type = self
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"));
        if let (Some(b), false) = (&self.body, declares_type) {
            if !b.contains("${images.") && serde_json::from_str::<serde_json::Value>(b).is_err() {
                out.push((
                    "body".into(),
                    "body is sent as application/json but is not valid JSON".into(),
                    Some(
                        "fix the JSON, or set headers = { content-type = \"…\" } for another type"
                            .into(),
                    ),
                ));
            }
        }
        if self.during_rollout && !matches!(self.method.as_str(), "GET" | "HEAD") {
            out.push((
                "during_rollout".into(),
                format!(
                    "during_rollout repeats the request many times; method {} is not safe to repeat",
                    self.method
                ),
                Some("probe a GET endpoint (a health or version path) during the rollout".into()),
            ));
        }
        if !(100..=599).contains(&self.expect_status) {
            out.push((
                "expect_status".into(),
                format!(
                    "expect_status {} is not an HTTP status (100-599)",
                    self.expect_status
                ),
                None,
            ));
        }
        for (k, v) in &self.json {
            if k.is_empty() {
                out.push((
                    "json".into(),
                    "an empty key in `json` names no field".into(),
                    None,
                ));
            }
            if to_json(v).is_none() {
                out.push((
                    format!("json.{k}"),
                    format!("`json.{k}`: a TOML date/time can never equal a JSON value; write it as a string"),
                    None,
                ));
            }
        }
        out
    }

    fn templated(&mut self) -> Vec<(&'static str, &mut String)> {
        let mut v: Vec<(&'static str, &mut String)> = vec![("path", &mut self.path)];
        if let Some(b) = &mut self.body {
            v.push(("body", b));
        }
        if let Some(b) = &mut self.body_contains {
            v.push(("body_contains", b));
        }
        for val in self.json.values_mut() {
            if let toml::Value::String(s) = val {
                v.push(("json", s));
            }
        }
        v
    }

    fn commands(&self, t: &Target) -> Vec<Cmd> {
        vec![kubectl::port_forward(
            t.context,
            t.namespace,
            &self.service,
            "{LOCAL_PORT}",
            self.port,
        )]
    }

    fn attempt(&self, cmds: &[Cmd], io: &mut dyn Io) -> Attempt {
        match io.forward(&cmds[0]) {
            Ok(local) => self.request(local, io.remaining(), &io.signals()),
            Err(e) => Attempt {
                ok: false,
                settled: false,
                detail: e,
            },
        }
    }

    fn hint(&self, t: &Target) -> String {
        format!(
            "see what the service logs: `kubectl --context {} -n {} logs service/{}`; `cargo xtask smoke` reruns only the checks",
            t.context, t.namespace, self.service
        )
    }

    fn describe(&self) -> String {
        let mut expect = format!("status {}", self.expect_status);
        if let Some(b) = &self.body_contains {
            expect.push_str(&format!(", body contains {b:?}"));
        }
        for (k, v) in &self.json {
            let v = to_json(v).map_or_else(|| v.to_string(), |j| j.to_string());
            expect.push_str(&format!(", .{k} == {v}"));
        }
        let during = if self.during_rollout {
            "; every request to the Service while the releases upgrade must get the status too"
        } else {
            ""
        };
        format!(
            "{} http://127.0.0.1:{{LOCAL_PORT}}{} -> expect {expect}{during}",
            self.method, self.path
        )
    }

    fn service(&self) -> Option<(&str, u16)> {
        Some((&self.service, self.port))
    }
}

/// A TOML value as JSON (`None` for date/times, which JSON has no form of).
fn to_json(v: &toml::Value) -> Option<serde_json::Value> {
    Some(match v {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)?.into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(_) => return None,
        toml::Value::Array(a) => a.iter().map(to_json).collect::<Option<Vec<_>>>()?.into(),
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| Some((k.clone(), to_json(v)?)))
            .collect::<Option<serde_json::Map<_, _>>>()?
            .into(),
    })
}

impl Http {
    fn request(&self, local: u16, remaining: Duration, signals: &Signals) -> Attempt {
        let url = format!("http://127.0.0.1:{local}{}", self.path);
        let timeout = remaining.clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut req = net::Request::new(self.method.as_str(), net::Target::Url(url));
        req.headers = self.headers.clone().into_iter().collect();
        if self.body.is_some()
            && !self
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            req.headers
                .push(("content-type".into(), "application/json".into()));
        }
        req.body = self.body.clone().unwrap_or_default().into_bytes();
        req.limit = 1 << 20;
        let sent = format!("{} {}", self.method, self.path);
        let fail = |detail: String| Attempt {
            ok: false,
            detail,
            settled: false,
        };
        let started = Instant::now();
        let resp = match net::Client::new(timeout, signals).send(&req) {
            Ok(r) => r,
            Err(e) if e.starts_with("bad request") => return fail(format!("{sent}: {e}")),
            Err(e) => return fail(format!("{sent}: no response: {e}")),
        };
        let (status, text) = (resp.status, resp.body);
        let took = started.elapsed();
        // The whole body is part of the detail: the reporter masks it as a whole
        // before anything shortens it.
        let saw = format!(
            "{sent} -> {status} in {} ms: {}",
            took.as_millis(),
            text.trim()
        );
        if status != self.expect_status {
            return fail(format!("{saw} (expected status {})", self.expect_status));
        }
        if let Some(want) = &self.body_contains {
            if !text.contains(want.as_str()) {
                return fail(format!("{saw} (expected the body to contain {want:?})"));
            }
        }
        if !self.json.is_empty() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                return fail(format!("{saw} (expected a JSON body)"));
            };
            for (field, want) in &self.json {
                let got = v.pointer(&pointer(field));
                if got != to_json(want).as_ref() {
                    return fail(format!(
                        "{saw} (expected .{field} == {}, got {})",
                        to_json(want).map_or_else(|| want.to_string(), |j| j.to_string()),
                        got.map_or("nothing".into(), |g| g.to_string())
                    ));
                }
            }
        }
        Attempt {
            ok: true,
            settled: false,
            detail: saw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_become_pointers() {
        assert_eq!(pointer("a.b.0"), "/a/b/0");
        assert_eq!(pointer("/a/b"), "/a/b");
        assert_eq!(pointer("x/y"), "/x~1y");
        let v = serde_json::json!({"a": {"b": [7]}});
        assert_eq!(v.pointer(&pointer("a.b.0")), Some(&serde_json::json!(7)));
    }
}
