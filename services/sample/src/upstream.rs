//! The frontend's upstream: its URL (`http://host[:port][/base]`) and one request
//! to it, made by ureq (the HTTP client the sample already has for the Kubernetes
//! API) on tokio's blocking pool, within a deadline.

use std::time::Duration;

/// Responses larger than this are refused (the upstream is our own API).
pub const MAX_RESPONSE: usize = 8 << 20;

/// `http://host[:port][/base]`: where an upstream lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `host:port` to connect to (IPv6 literals keep their brackets).
    pub addr: String,
    /// The `host` header: as written in the URL.
    pub host_header: String,
    /// The path (and query) part, always starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?}: only http:// URLs are supported (http://host[:port][/path])")
        })?;
        let (hostport, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if hostport.is_empty() || hostport.contains('@') {
            return Err(format!("{url:?}: no host, or a user part (not supported)"));
        }
        // `[::1]:8080`, `[::1]`, `host:8080`, `host`.
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: unclosed '['"))?;
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        let port: u16 = match port {
            None => 80,
            Some(p) => p.parse().map_err(|_| format!("{url:?}: bad port {p:?}"))?,
        };
        Ok(Url {
            addr: format!("{host}:{port}"),
            host_header: hostport.to_string(),
            path,
        })
    }

    /// This URL's base path joined with `path_and_query` (which starts with `/`).
    pub fn join(&self, path_and_query: &str) -> String {
        format!("{}{}", self.path.trim_end_matches('/'), path_and_query)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Send one request to `url`'s host for `path` (already joined) and read the answer
/// (every status is an answer; redirects are passed back, not followed).
pub async fn request(
    url: &Url,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    let addr = url.addr.clone();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", url.host_header))
        .header("user-agent", "sample");
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let req = req
        .body(body.to_vec())
        .map_err(|e| format!("{addr}: bad request: {e}"))?;
    let call = move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .proxy(None)
            .build()
            .into();
        // No body (and no content-length) only where a method has none.
        let bodiless = matches!(req.method().as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS");
        let mut resp = if bodiless && req.body().is_empty() {
            agent.run(req.map(|_| ()))
        } else {
            agent.run(req)
        }
        .map_err(|e| match e {
            ureq::Error::Timeout(_) => {
                format!("{addr}: no answer within {}s", timeout.as_secs())
            }
            e => format!("{addr}: {e}"),
        })?;
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE as u64)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => {
                    format!("answer from {addr} is over {MAX_RESPONSE} bytes")
                }
                e => format!("read from {addr}: {e}"),
            })?;
        Ok(Response {
            status: resp.status().as_u16(),
            content_type,
            body,
        })
    };
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| format!("{}: {e}", url.addr))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = Url::parse("http://todo-api").unwrap();
        assert_eq!(
            u,
            Url {
                addr: "todo-api:80".into(),
                host_header: "todo-api".into(),
                path: "/".into()
            }
        );
        let u = Url::parse("http://todo-api:8000/base/").unwrap();
        assert_eq!(u.addr, "todo-api:8000");
        assert_eq!(u.host_header, "todo-api:8000");
        assert_eq!(u.join("/api/x?y=1"), "/base/api/x?y=1");
        assert_eq!(
            Url::parse("http://h:81").unwrap().join("/readyz"),
            "/readyz"
        );
        assert_eq!(Url::parse("http://h?q=1").unwrap().path, "/?q=1");
        let v6 = Url::parse("http://[::1]:9000/p").unwrap();
        assert_eq!((v6.addr.as_str(), v6.path.as_str()), ("[::1]:9000", "/p"));
        assert_eq!(Url::parse("http://[::1]").unwrap().addr, "[::1]:80");
        for bad in [
            "https://h",
            "h:80",
            "http://",
            "http://h:port",
            "http://u:p@h",
            "http://[::1",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    /// A silent upstream ends at the deadline; a redirect comes back as it is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadline_and_no_redirect_following() {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}", silent.local_addr().unwrap())).unwrap();
        let t0 = std::time::Instant::now();
        let e = request(&url, "GET", "/", None, b"", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.contains("no answer within"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(5));

        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}", l.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut c, _) = l.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let _ = c.read(&mut b).await;
            let _ = c
                .write_all(b"HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
        });
        let r = request(&url, "POST", "/x", None, b"", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.content_type.as_deref(), r.body.as_slice()),
            (302, Some("text/plain"), &b"ok"[..])
        );
    }
}
