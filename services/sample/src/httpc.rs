//! A plain HTTP/1.1 client, one request per connection (`connection: close`): enough
//! for the frontend's proxy to its upstream and its readiness probe, with no
//! dependency. Only `http://` URLs.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// Send one request to `url.addr` for `path` (already joined) and read the answer.
pub async fn request(
    url: &Url,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(url.addr.as_str())
            .await
            .map_err(|e| format!("connect {}: {e}", url.addr))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nuser-agent: sample\r\n",
            url.host_header
        );
        if let Some(ct) = content_type {
            req.push_str(&format!("content-type: {ct}\r\n"));
        }
        if !body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS") {
            req.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut out = req.into_bytes();
        out.extend_from_slice(body);
        s.write_all(&out)
            .await
            .map_err(|e| format!("send to {}: {e}", url.addr))?;
        let mut buf = Vec::new();
        (&mut s)
            .take(MAX_RESPONSE as u64 + 1)
            .read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read from {}: {e}", url.addr))?;
        if buf.len() > MAX_RESPONSE {
            return Err(format!(
                "answer from {} is over {MAX_RESPONSE} bytes",
                url.addr
            ));
        }
        parse_response(&buf)
    };
    tokio::time::timeout(timeout, io)
        .await
        .map_err(|_| format!("{}: no answer within {}s", url.addr, timeout.as_secs()))?
}

/// Parse a whole HTTP/1.1 response (the connection was closed after it).
pub fn parse_response(buf: &[u8]) -> Result<Response, String> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("incomplete HTTP response head")?;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "HTTP head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP response: {status_line:?}"))?;
    let (mut content_type, mut length, mut chunked) = (None, None, false);
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(v.to_string()),
            "content-length" => length = v.parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let raw = &buf[end + 4..];
    let body = if chunked {
        dechunk(raw)?
    } else if let Some(n) = length {
        raw.get(..n)
            .ok_or_else(|| format!("body cut short: {} of {n} bytes", raw.len()))?
            .to_vec()
    } else {
        raw.to_vec()
    };
    Ok(Response {
        status,
        content_type,
        body,
    })
}

/// Decode a `transfer-encoding: chunked` body (extensions and trailers ignored).
pub fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunked body cut short")?;
        let size_field = std::str::from_utf8(&raw[..eol]).map_err(|_| "bad chunk size")?;
        let size_hex = size_field.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = raw.get(..size).ok_or("chunked body cut short")?;
        out.extend_from_slice(chunk);
        raw = raw
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or("chunk not followed by CRLF")?;
    }
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

    #[test]
    fn parses_responses() {
        let r = parse_response(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}trailing",
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert_eq!(r.body, b"{}");
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"Wikipedia ");
        assert_eq!(r.content_type, None);
        let r = parse_response(b"HTTP/1.0 503 Service Unavailable\r\n\r\nbye").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (503, &b"bye"[..]));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(dechunk(b"zz\r\n").is_err());
        assert!(dechunk(b"5\r\nab").is_err());
    }
}
