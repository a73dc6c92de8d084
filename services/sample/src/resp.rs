//! A minimal Redis client (RESP2 over a tokio TcpStream): PING, AUTH, SELECT, LPUSH,
//! BRPOP, SET, GET. The `redis` crate (default-features=false, tokio-comp) adds 60 s
//! of CPU (+52 %) to the sample's cold release build: see the sample's README.md for
//! the measurement. This adds no dependency.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound for connecting and for each command (BRPOP gets its own block time on top).
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Where Redis is: from `REDIS_URL` (`redis://[[user]:password@]host[:port][/db]`,
/// or plain `host[:port]`) and `REDIS_PASSWORD` (used when the URL has none).
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

/// Never prints the password.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match (&self.username, &self.password) {
            (Some(u), Some(_)) => format!("{u}:***@"),
            (None, Some(_)) => ":***@".into(),
            (Some(u), None) => format!("{u}@"),
            (None, None) => String::new(),
        };
        write!(f, "redis://{auth}{}:{}/{}", self.host, self.port, self.db)
    }
}

impl Target {
    pub fn parse(url: &str, password_env: Option<&str>) -> Result<Target, String> {
        let bad = |why: &str| format!("REDIS_URL: {why} (want redis://[:password@]host:port)");
        let rest = if let Some(r) = url.strip_prefix("redis://") {
            r
        } else if url.contains("://") {
            return Err(bad("only redis:// is supported (no TLS)"));
        } else {
            url
        };
        let (auth, hostpart) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (hostport, db) = match hostpart.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, d)) => (h, d.parse().map_err(|_| bad(&format!("bad db {d:?}")))?),
            None => (hostpart, 0),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(bad("no host"));
        }
        let port = match port {
            None | Some("") => 6379,
            Some(p) => p.parse().map_err(|_| bad(&format!("bad port {p:?}")))?,
        };
        // `user:pass`, `:pass`, or a lone `pass` (what people mean by `redis://pass@h`).
        let (username, password) = match auth {
            None => (None, None),
            Some(a) => match a.split_once(':') {
                Some((u, p)) => (
                    Some(percent_decode(u)).filter(|u| !u.is_empty()),
                    Some(percent_decode(p)).filter(|p| !p.is_empty()),
                ),
                None => (None, Some(percent_decode(a)).filter(|p| !p.is_empty())),
            },
        };
        let password =
            password.or_else(|| password_env.filter(|p| !p.is_empty()).map(String::from));
        Ok(Target {
            host,
            port,
            username,
            password,
            db,
        })
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    /// `None` is the null bulk string (`$-1`).
    Bulk(Option<Vec<u8>>),
    /// `None` is the null array (`*-1`, e.g. BRPOP timing out).
    Array(Option<Vec<Value>>),
}

/// A command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

const MAX_BULK: i64 = 64 << 20;
const MAX_ITEMS: i64 = 1 << 20;

/// One reply from the front of `buf`: `Ok(None)` when more bytes are needed, else the
/// value and how many bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, String> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    if eol == 0 {
        return Err("empty reply line".into());
    }
    let line = std::str::from_utf8(&buf[1..eol]).map_err(|_| "reply line is not UTF-8")?;
    let next = eol + 2;
    let int = || {
        line.parse::<i64>()
            .map_err(|_| format!("bad length/integer {line:?} in reply"))
    };
    Ok(Some(match buf[0] {
        b'+' => (Value::Simple(line.into()), next),
        b'-' => (Value::Error(line.into()), next),
        b':' => (Value::Int(int()?), next),
        b'$' => match int()? {
            -1 => (Value::Bulk(None), next),
            n if (0..=MAX_BULK).contains(&n) => {
                let n = n as usize;
                if buf.len() < next + n + 2 {
                    return Ok(None);
                }
                if &buf[next + n..next + n + 2] != b"\r\n" {
                    return Err("bulk string not followed by CRLF".into());
                }
                (
                    Value::Bulk(Some(buf[next..next + n].to_vec())),
                    next + n + 2,
                )
            }
            n => return Err(format!("bad bulk length {n}")),
        },
        b'*' => match int()? {
            -1 => (Value::Array(None), next),
            n if (0..=MAX_ITEMS).contains(&n) => {
                let mut items = Vec::with_capacity(n.min(64) as usize);
                let mut at = next;
                for _ in 0..n {
                    match parse(&buf[at..])? {
                        Some((v, used)) => {
                            items.push(v);
                            at += used;
                        }
                        None => return Ok(None),
                    }
                }
                (Value::Array(Some(items)), at)
            }
            n => return Err(format!("bad array length {n}")),
        },
        other => {
            return Err(format!(
                "not a RESP reply (starts with {:?})",
                other as char
            ))
        }
    }))
}

/// One connection to Redis.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connect, AUTH when there is a password, SELECT when the db is not 0.
    pub async fn connect(t: &Target) -> Result<Conn, String> {
        let addr = format!("{}:{}", t.host, t.port);
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr.as_str()))
            .await
            .map_err(|_| format!("connect {addr}: timed out"))?
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut c = Conn {
            stream,
            buf: Vec::new(),
        };
        if let Some(p) = &t.password {
            let r = match &t.username {
                Some(u) => c.cmd(&[b"AUTH", u.as_bytes(), p.as_bytes()]).await?,
                None => c.cmd(&[b"AUTH", p.as_bytes()]).await?,
            };
            ok_status(r).map_err(|e| format!("AUTH: {e}"))?;
        }
        if t.db != 0 {
            let db = t.db.to_string();
            ok_status(c.cmd(&[b"SELECT", db.as_bytes()]).await?)
                .map_err(|e| format!("SELECT {db}: {e}"))?;
        }
        Ok(c)
    }

    /// Send a command and read its reply within `IO_TIMEOUT` (plus `extra`).
    pub async fn cmd_within(&mut self, args: &[&[u8]], extra: Duration) -> Result<Value, String> {
        let io = async {
            self.stream
                .write_all(&encode(args))
                .await
                .map_err(|e| format!("send: {e}"))?;
            loop {
                if let Some((v, used)) = parse(&self.buf)? {
                    self.buf.drain(..used);
                    return Ok(v);
                }
                let mut chunk = [0u8; 4096];
                let n = self
                    .stream
                    .read(&mut chunk)
                    .await
                    .map_err(|e| format!("read: {e}"))?;
                if n == 0 {
                    return Err("connection closed by Redis".to_string());
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::time::timeout(IO_TIMEOUT + extra, io)
            .await
            .map_err(|_| "Redis did not answer in time".to_string())?
    }

    pub async fn cmd(&mut self, args: &[&[u8]]) -> Result<Value, String> {
        self.cmd_within(args, Duration::ZERO).await
    }

    pub async fn ping(&mut self) -> Result<(), String> {
        match self.cmd(&[b"PING"]).await? {
            Value::Simple(s) if s == "PONG" => Ok(()),
            other => Err(format!("PING answered {}", show(&other))),
        }
    }

    pub async fn lpush(&mut self, key: &str, item: &[u8]) -> Result<i64, String> {
        match self.cmd(&[b"LPUSH", key.as_bytes(), item]).await? {
            Value::Int(n) => Ok(n),
            other => Err(format!("LPUSH answered {}", show(&other))),
        }
    }

    /// Block up to `secs` for an item; `None` when the wait timed out.
    pub async fn brpop(&mut self, key: &str, secs: u64) -> Result<Option<Vec<u8>>, String> {
        let s = secs.to_string();
        let r = self
            .cmd_within(
                &[b"BRPOP", key.as_bytes(), s.as_bytes()],
                Duration::from_secs(secs),
            )
            .await?;
        match r {
            Value::Array(None) => Ok(None),
            Value::Array(Some(mut kv)) if kv.len() == 2 => match kv.pop() {
                Some(Value::Bulk(Some(item))) => Ok(Some(item)),
                other => Err(format!("BRPOP answered an item {other:?}")),
            },
            other => Err(format!("BRPOP answered {}", show(&other))),
        }
    }

    /// SET, with `EX secs` when given.
    pub async fn set(&mut self, key: &str, value: &[u8], ex: Option<u64>) -> Result<(), String> {
        let secs = ex.map(|s| s.to_string());
        let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes(), value];
        if let Some(s) = &secs {
            args.extend([&b"EX"[..], s.as_bytes()]);
        }
        ok_status(self.cmd(&args).await?).map_err(|e| format!("SET {key}: {e}"))
    }

    pub async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self.cmd(&[b"GET", key.as_bytes()]).await? {
            Value::Bulk(v) => Ok(v),
            other => Err(format!("GET answered {}", show(&other))),
        }
    }
}

fn ok_status(v: Value) -> Result<(), String> {
    match v {
        Value::Simple(s) if s == "OK" => Ok(()),
        other => Err(show(&other)),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Error(e) => format!("error: {e}"),
        other => format!("{other:?}"),
    }
}

/// Connect and PING within 2 s: the readiness check of the roles that need Redis.
pub async fn ping(t: &Target) -> Result<(), String> {
    let io = async { Conn::connect(t).await?.ping().await };
    tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| "no PONG within 2s".to_string())?
}

/// An in-memory Redis for tests: PING, AUTH, SELECT, SET (EX ignored), GET, LPUSH,
/// BRPOP (polling), with a password when given.
#[cfg(test)]
pub mod fake {
    use super::*;
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    pub struct Data {
        pub strings: HashMap<Vec<u8>, Vec<u8>>,
        pub lists: HashMap<Vec<u8>, VecDeque<Vec<u8>>>,
        pub commands: Vec<String>,
    }

    /// Serve on 127.0.0.1; returns the address and the data.
    pub async fn start(password: Option<&str>) -> (String, Arc<Mutex<Data>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let data = Arc::new(Mutex::new(Data::default()));
        let (d, pw) = (data.clone(), password.map(|p| p.as_bytes().to_vec()));
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(client(s, d.clone(), pw.clone()));
            }
        });
        (addr, data)
    }

    async fn client(mut s: TcpStream, d: Arc<Mutex<Data>>, pw: Option<Vec<u8>>) {
        let mut buf = Vec::new();
        let mut authed = pw.is_none();
        loop {
            let (v, used) = loop {
                if let Ok(Some(x)) = parse(&buf) {
                    break x;
                }
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            buf.drain(..used);
            let Value::Array(Some(items)) = v else { return };
            let args: Vec<Vec<u8>> = items
                .into_iter()
                .map(|i| match i {
                    Value::Bulk(Some(b)) => b,
                    _ => vec![],
                })
                .collect();
            let name = String::from_utf8_lossy(&args[0]).to_uppercase();
            d.lock().unwrap().commands.push(name.clone());
            let reply: Vec<u8> = match name.as_str() {
                "AUTH" => {
                    if pw.as_deref() == args.last().map(Vec::as_slice) {
                        authed = true;
                        b"+OK\r\n".to_vec()
                    } else {
                        b"-WRONGPASS invalid password\r\n".to_vec()
                    }
                }
                _ if !authed => b"-NOAUTH Authentication required.\r\n".to_vec(),
                "PING" => b"+PONG\r\n".to_vec(),
                "SELECT" => b"+OK\r\n".to_vec(),
                "SET" => {
                    d.lock()
                        .unwrap()
                        .strings
                        .insert(args[1].clone(), args[2].clone());
                    b"+OK\r\n".to_vec()
                }
                "GET" => match d.lock().unwrap().strings.get(&args[1]) {
                    Some(v) => [format!("${}\r\n", v.len()).as_bytes(), v, b"\r\n"].concat(),
                    None => b"$-1\r\n".to_vec(),
                },
                "LPUSH" => {
                    let mut g = d.lock().unwrap();
                    let l = g.lists.entry(args[1].clone()).or_default();
                    l.push_front(args[2].clone());
                    format!(":{}\r\n", l.len()).into_bytes()
                }
                "BRPOP" => {
                    let secs: u64 = String::from_utf8_lossy(&args[2]).parse().unwrap();
                    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
                    loop {
                        let got = d
                            .lock()
                            .unwrap()
                            .lists
                            .get_mut(&args[1])
                            .and_then(|l| l.pop_back());
                        if let Some(item) = got {
                            break [b"*2\r\n".as_slice(), &encode(&[&args[1], &item])[4..]]
                                .concat();
                        }
                        if tokio::time::Instant::now() >= until {
                            break b"*-1\r\n".to_vec();
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                _ => b"-ERR unknown command\r\n".to_vec(),
            };
            if s.write_all(&reply).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        assert_eq!(
            encode(&[b"LPUSH", b"q", b"a b\r\n"]),
            b"*3\r\n$5\r\nLPUSH\r\n$1\r\nq\r\n$5\r\na b\r\n\r\n".to_vec()
        );
        assert_eq!(
            encode(&[b"GET", b""]),
            b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn parses_replies_whole_and_in_pieces() {
        let cases: &[(&[u8], Value)] = &[
            (b"+PONG\r\n", Value::Simple("PONG".into())),
            (
                b"-NOAUTH Authentication required.\r\n",
                Value::Error("NOAUTH Authentication required.".into()),
            ),
            (b":42\r\n", Value::Int(42)),
            (b"$-1\r\n", Value::Bulk(None)),
            (b"$0\r\n\r\n", Value::Bulk(Some(vec![]))),
            (
                b"$8\r\na\r\nb c d\r\n",
                Value::Bulk(Some(b"a\r\nb c d".to_vec())),
            ),
            (b"*-1\r\n", Value::Array(None)),
            (
                b"*2\r\n$5\r\ntasks\r\n$3\r\n{x}\r\n",
                Value::Array(Some(vec![
                    Value::Bulk(Some(b"tasks".to_vec())),
                    Value::Bulk(Some(b"{x}".to_vec())),
                ])),
            ),
        ];
        for (wire, want) in cases {
            // Every strict prefix needs more bytes; the whole is the value, and bytes
            // after it (the next reply) are left alone.
            for cut in 0..wire.len() {
                assert_eq!(parse(&wire[..cut]), Ok(None), "{wire:?} cut at {cut}");
            }
            let mut more = wire.to_vec();
            more.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(
                parse(&more),
                Ok(Some((want.clone(), wire.len()))),
                "{wire:?}"
            );
        }
        assert!(parse(b"?\r\n").is_err());
        assert!(parse(b"$3\r\nabcd\r\n").is_err());
        assert!(parse(b"$-5\r\n").is_err());
        assert!(parse(b":x\r\n").is_err());
        assert!(parse(b"\r\n").is_err());
    }

    #[test]
    fn parses_redis_urls() {
        let t = Target::parse("redis://:s3cret@redis:6380/2", None).unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.username.clone(),
                t.password.clone(),
                t.db
            ),
            ("redis", 6380, None, Some("s3cret".to_string()), 2)
        );
        let shown = format!("{t} {t:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let t = Target::parse("redis://app:p%40ss@10.0.0.5", Some("ignored")).unwrap();
        assert_eq!(t.username.as_deref(), Some("app"));
        assert_eq!(
            t.password.as_deref(),
            Some("p@ss"),
            "URL wins, percent-decoded"
        );
        assert_eq!(t.port, 6379);
        // The agentsmith secret's form: no scheme; password from REDIS_PASSWORD.
        let t = Target::parse("redis:6379", Some("envpw")).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("redis", 6379));
        assert_eq!(t.password.as_deref(), Some("envpw"));
        let t = Target::parse("redis://[::1]:7000", Some("")).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.password), ("[::1]", 7000, None));
        assert_eq!(
            Target::parse("redis://pw@h/", None)
                .unwrap()
                .password
                .as_deref(),
            Some("pw")
        );
        for bad in [
            "rediss://h:6379",
            "http://h",
            "redis://",
            "redis://h:x",
            "redis://h/db",
        ] {
            assert!(Target::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn client_commands_against_a_server() {
        let (addr, data) = fake::start(Some("pw")).await;
        let (host, port) = addr.rsplit_once(':').unwrap();
        let t = Target::parse(&format!("redis://{host}:{port}/1"), Some("pw")).unwrap();
        let mut c = Conn::connect(&t).await.unwrap();
        c.ping().await.unwrap();
        assert_eq!(c.lpush("q", b"one").await, Ok(1));
        assert_eq!(c.lpush("q", b"two").await, Ok(2));
        assert_eq!(
            c.brpop("q", 1).await,
            Ok(Some(b"one".to_vec())),
            "FIFO: LPUSH + BRPOP"
        );
        assert_eq!(c.brpop("q", 1).await, Ok(Some(b"two".to_vec())));
        assert_eq!(c.brpop("q", 1).await, Ok(None), "times out empty");
        c.set("k", b"v\r\n", Some(60)).await.unwrap();
        assert_eq!(c.get("k").await, Ok(Some(b"v\r\n".to_vec())));
        assert_eq!(c.get("missing").await, Ok(None));
        assert_eq!(
            data.lock().unwrap().commands[..3],
            ["AUTH".to_string(), "SELECT".into(), "PING".into()]
        );
        // Wrong or no password: the error names the command and Redis's answer.
        let bad = Target::parse(&format!("redis://:nope@{addr}"), None).unwrap();
        let e = Conn::connect(&bad).await.err().unwrap();
        assert!(e.contains("AUTH") && e.contains("WRONGPASS"), "{e}");
        let none = Target::parse(&addr, None).unwrap();
        let e = ping(&none).await.unwrap_err();
        assert!(e.contains("NOAUTH"), "{e}");
        assert!(ping(&Target::parse("127.0.0.1:1", None).unwrap())
            .await
            .is_err());
    }
}
