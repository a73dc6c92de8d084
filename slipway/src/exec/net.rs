//! The one network client: every request slipway makes itself rather than through a
//! command — a smoke check's HTTP request, a rollout probe (over TCP or `kubectl
//! proxy`'s unix socket), whether the local registry answers, whether a port
//! accepts connections. Audited here, once:
//!
//! - **a deadline** for the whole exchange (connect, send, receive);
//! - **cancellation**: Ctrl-C or SIGTERM reaching slipway ([`Signals`]) ends the wait
//!   at once (the request itself stops at its deadline, in the background);
//! - **redaction**: a URL's user and password and its query's values never reach an
//!   error (the run's redactor masks the secrets it knows, later, as everywhere);
//! - no proxy from the environment and no redirects: every target is one slipway
//!   chose (a port-forward, a NodePort, the local registry).
//!
//! [`agent`] is the one HTTP agent builder.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::unix_http;
use super::Signals;

/// How often a wait looks at the signals.
const POLL: Duration = Duration::from_millis(50);

/// Where a request goes.
#[derive(Clone, Debug)]
pub enum Target {
    /// `http://…` (the URL).
    Url(String),
    /// A unix socket, and the request's path and query there.
    Socket {
        socket: std::path::PathBuf,
        path: String,
    },
}

/// One request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub target: Target,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The most of the body read.
    pub limit: usize,
    /// With this status, the body is not read (a probe that only wants the status).
    pub enough: Option<u16>,
}

impl Request {
    pub fn new(method: &str, target: Target) -> Request {
        Request {
            method: method.to_string(),
            target,
            headers: vec![],
            body: vec![],
            limit: 4096,
            enough: None,
        }
    }
}

/// What came back: the status and (up to the request's limit) the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// Requests within `timeout` each, given up when `signals` says so.
#[derive(Clone)]
pub struct Client {
    timeout: Duration,
    signals: Signals,
}

/// The one HTTP agent: a deadline for the whole exchange, every status an answer
/// (not an error), no redirects, no proxy from the environment.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .proxy(None)
        .max_redirects(0)
        .build()
        .into()
}

/// `url` fit for an error message: its user and password, and its query's values,
/// replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (auth_end, _) = rest
        .char_indices()
        .find(|(_, c)| matches!(c, '/' | '?' | '#'))
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = query
                .split_once('#')
                .map_or((query, None), |(q, f)| (q, Some(f)));
            let masked: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) => format!("{k}=***"),
                    None => kv.to_string(),
                })
                .collect();
            let mut t = format!("{path}?{}", masked.join("&"));
            if let Some(f) = fragment {
                t.push('#');
                t.push_str(f);
            }
            t
        }
        None => tail.to_string(),
    };
    if scheme.is_empty() && !url.contains("://") {
        format!("{authority}{tail}")
    } else {
        format!("{scheme}://{authority}{tail}")
    }
}

impl Client {
    pub fn new(timeout: Duration, signals: &Signals) -> Client {
        Client {
            timeout,
            signals: signals.clone(),
        }
    }

    /// Send `req`; `Err` says why there is no answer (masked: see [`redact_url`]).
    pub fn send(&self, req: &Request) -> Result<Response, String> {
        let timeout = self.timeout;
        let req = req.clone();
        let raw = match &req.target {
            Target::Url(u) => u.clone(),
            Target::Socket { path, .. } => path.clone(),
        };
        self.wait(move || match &req.target {
            Target::Url(url) => over_tcp(&req, url, timeout),
            Target::Socket { socket, path } => {
                let enough = req.enough.unwrap_or(0);
                unix_http::request(socket, &req.method, path, enough, timeout).map(|a| Response {
                    status: a.status,
                    body: a.body,
                })
            }
        })
        .map_err(|e| e.replace(&raw, &redact_url(&raw)))
    }

    /// Does `host:port` accept a TCP connection within the timeout?
    pub fn connects(&self, host: &str, port: u16) -> bool {
        let (host, timeout) = (host.to_string(), self.timeout);
        self.wait(move || {
            let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                .map_err(|e| e.to_string())?
                .next()
                .ok_or("no address")?;
            std::net::TcpStream::connect_timeout(&addr, timeout)
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .is_ok()
    }

    /// Run `f` on a thread of its own and wait for it: at most the timeout (and a
    /// little), and not once the signals say stop.
    fn wait<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        if self.signals.cancelled() {
            return Err("interrupted".into());
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        let end = Instant::now() + self.timeout + Duration::from_secs(1);
        loop {
            match rx.recv_timeout(POLL) {
                Ok(r) => return r,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err("no answer".into()),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if self.signals.cancelled() {
                return Err("interrupted".into());
            }
            if Instant::now() >= end {
                return Err(format!("timed out after {} ms", self.timeout.as_millis()));
            }
        }
    }
}

fn over_tcp(req: &Request, url: &str, timeout: Duration) -> Result<Response, String> {
    let mut r = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(url);
    for (k, v) in &req.headers {
        r = r.header(k, v);
    }
    let r = r
        .body(req.body.clone())
        .map_err(|e| format!("bad request: {e}"))?;
    let mut resp = agent(timeout).run(r).map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    if req.enough == Some(status) {
        return Ok(Response {
            status,
            body: String::new(),
        });
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(req.limit as u64)
        .read_to_string()
        .unwrap_or_default();
    Ok(Response { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_query_values_are_masked_in_urls() {
        assert_eq!(
            redact_url("http://user:hunter2@reg.local:5000/v2/?token=abc&x=1#f"),
            "http://***@reg.local:5000/v2/?token=***&x=***#f"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8080/healthz"),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(redact_url("/api/v1/x?watch"), "/api/v1/x?watch");
    }

    #[test]
    fn an_error_never_shows_the_password_of_its_url() {
        let c = Client::new(Duration::from_millis(500), &Signals::default());
        // Port 9 on localhost: nothing listens (or the port is refused).
        let e = c
            .send(&Request::new(
                "GET",
                Target::Url("http://admin:s3cr3t-pw@127.0.0.1:9/?key=s3cr3t-key".into()),
            ))
            .unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn a_signal_ends_the_wait_before_the_deadline() {
        // A server that accepts and never answers.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let signals = Signals::default();
        let c = Client::new(Duration::from_secs(30), &signals);
        let s = signals.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            s.raise();
        });
        let started = Instant::now();
        let e = c.send(&Request::new("GET", Target::Url(url))).unwrap_err();
        assert_eq!(e, "interrupted");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        drop(l);
    }

    #[test]
    fn a_request_stops_at_its_deadline() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        let c = Client::new(Duration::from_millis(300), &Signals::default());
        let started = Instant::now();
        assert!(c.send(&Request::new("GET", Target::Url(url))).is_err());
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        drop(l);
    }
}
