//! One HTTP/1.1 request over a unix socket (`kubectl proxy --unix-socket`), with a
//! deadline for the whole exchange: ureq speaks only TCP. The request is one
//! `Connection: close` exchange; the response head is parsed by `httparse` (the
//! parser ureq itself uses), and of the body only the first bytes are read, to show
//! what a failed request got.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The most of a response read: its head and the start of its body.
const MAX_READ: usize = 16 * 1024;
/// The most of a body kept, for a failure's description.
const BODY_SHOWN: usize = 4096;

/// What came back.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// The start of the body (only read when the status is not `enough`).
    pub body: String,
}

/// `method path` over the socket, all of it within `timeout`. When the status is
/// `enough`, the body is not waited for.
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    enough: u16,
    timeout: Duration,
) -> Result<Answer, String> {
    let end = Instant::now() + timeout;
    let left = || {
        end.checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("timed out after {} ms", timeout.as_millis()))
    };
    let mut s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slipway\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).map_err(|e| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("timed out after {} ms", timeout.as_millis())
        }
        _ => e.to_string(),
    })?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut parsed: Option<(u16, usize, bool)> = None;
    loop {
        if let Some((status, at, _)) = parsed {
            if status == enough || buf.len() - at >= BODY_SHOWN {
                break;
            }
        }
        if buf.len() >= MAX_READ {
            break;
        }
        s.set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!("timed out after {} ms", timeout.as_millis()))
            }
            Err(e) => return Err(e.to_string()),
        }
        if parsed.is_none() {
            parsed = parse_head(&buf)?;
        }
    }
    let Some((status, at, chunked)) = parsed else {
        return Err(if buf.is_empty() {
            "the connection closed without an answer".into()
        } else {
            "the answer's head was cut short".into()
        });
    };
    let body = &buf[at..];
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let body = &body[..body.len().min(BODY_SHOWN)];
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

/// The status, where the body starts and whether it is chunked, once the head is
/// complete.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    match r.parse(buf) {
        Ok(httparse::Status::Complete(at)) => {
            let status = r.code.ok_or("an answer with no status")?;
            let chunked = r.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("transfer-encoding")
                    && String::from_utf8_lossy(h.value)
                        .to_ascii_lowercase()
                        .contains("chunked")
            });
            Ok(Some((status, at, chunked)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("not an HTTP answer: {e}")),
    }
}

/// The data of a chunked body, as far as it goes (it may be cut short).
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    while let Ok(httparse::Status::Complete((at, size))) = httparse::parse_chunk_size(b) {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size == 0 {
            break;
        }
        let data = &b[at..];
        let n = size.min(data.len());
        out.extend_from_slice(&data[..n]);
        if n < size {
            break;
        }
        b = data[n..].strip_prefix(b"\r\n").unwrap_or(&data[n..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A server on a socket in a fresh directory that answers each connection with
    /// `reply` after `delay`, recording the requests' heads.
    fn server(
        reply: &'static [u8],
        delay: Duration,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        std::sync::mpsc::Receiver<String>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let l = UnixListener::bind(&sock).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                let mut head = vec![];
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && c.read(&mut b).unwrap_or(0) == 1 {
                    head.push(b[0]);
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                std::thread::sleep(delay);
                let _ = c.write_all(reply);
            }
        });
        (dir, sock, rx)
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_get_reads_the_status_and_sends_one_closing_request() {
        let (_d, sock, rx) = server(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
            Duration::ZERO,
        );
        let a = request(&sock, "GET", "/api/v1/x/proxy/healthz", 200, SECOND).unwrap();
        assert_eq!(a.status, 200);
        let head = rx.recv().unwrap();
        assert!(
            head.starts_with("GET /api/v1/x/proxy/healthz HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nHost: localhost\r\n"), "{head}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    }

    #[test]
    fn another_status_brings_the_start_of_its_body_chunked_or_not() {
        let (_d, sock, _rx) = server(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 35\r\n\r\nno endpoints available for service\n",
            Duration::ZERO,
        );
        let a = request(&sock, "GET", "/", 200, SECOND).unwrap();
        assert_eq!(a.status, 503);
        assert_eq!(a.body, "no endpoints available for service\n");
        let (_d, sock, _rx) = server(
            b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            Duration::ZERO,
        );
        let a = request(&sock, "GET", "/", 200, SECOND).unwrap();
        assert_eq!((a.status, a.body.as_str()), (502, "hello world"));
    }

    #[test]
    fn a_slow_or_silent_or_absent_server_is_an_error_within_the_deadline() {
        let (_d, sock, _rx) = server(b"HTTP/1.1 200 OK\r\n\r\n", Duration::from_secs(5));
        let t = Instant::now();
        let e = request(&sock, "GET", "/", 200, Duration::from_millis(300)).unwrap_err();
        assert!(e.contains("timed out after 300 ms"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let (_d, sock, _rx) = server(b"", Duration::ZERO);
        let e = request(&sock, "GET", "/", 200, SECOND).unwrap_err();
        assert!(e.contains("closed without an answer"), "{e}");
        let (_d, sock, _rx) = server(b"SSH-2.0-nope\r\n\r\n", Duration::ZERO);
        let e = request(&sock, "GET", "/", 200, SECOND).unwrap_err();
        assert!(e.contains("not an HTTP answer"), "{e}");
        let gone = tempfile::tempdir().unwrap();
        assert!(request(&gone.path().join("none.sock"), "GET", "/", 200, SECOND).is_err());
    }
}
