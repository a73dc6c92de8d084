//! slipway-sync: the first process of a dev variant of an image (`slipway dev` with
//! `[images.NAME.sync]`). It runs the image's own command as its child and listens on
//! an abstract unix socket (no file, so a read-only root filesystem is fine) for
//! files and restart requests, which `slipway dev` sends through
//! `kubectl exec -i POD -- /.slipway/sync put [--restart] PATH < file`. No shell, no
//! tar: the image may be `FROM scratch`.
//!
//! - `slipway-sync -- PROGRAM ARGS...`: run PROGRAM; SIGTERM/SIGINT are passed on and
//!   the exit status is PROGRAM's; orphans are reaped (it is PID 1).
//! - `slipway-sync put [--restart] PATH`: send stdin as PATH's new content. The file
//!   PROGRAM names is kept in memory (a memfd, run through `/proc/self/fd`), so it can
//!   be replaced under a read-only root filesystem; any other PATH is written in place
//!   (a temporary file renamed over it). With `--restart`, PROGRAM is stopped (SIGTERM,
//!   then SIGKILL after 10 s, or `--grace-ms N`) and started again before the answer
//!   comes back.
//! - `slipway-sync restart`: only the restart.
//!
//! std only, one file: slipway's build script compiles it with `rustc` alone.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

/// The socket's abstract name (in the pod's network namespace).
const SOCKET: &[u8] = b"slipway-sync";
const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
const WNOHANG: i32 = 1;
/// How long a stopped child has before SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn signal(sig: i32, handler: extern "C" fn(i32)) -> usize;
    fn memfd_create(name: *const std::ffi::c_char, flags: u32) -> i32;
}

static TERM: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: i32) {
    TERM.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--") if args.len() > 1 => supervise(&args[1..]),
        Some("put") => {
            let mut restart = false;
            let mut grace = GRACE;
            let mut rest = &args[1..];
            loop {
                match rest {
                    [flag, more @ ..] if flag == "--restart" => {
                        restart = true;
                        rest = more;
                    }
                    [flag, ms, more @ ..] if flag == "--grace-ms" => {
                        let Ok(ms) = ms.parse() else { return usage() };
                        grace = Duration::from_millis(ms);
                        rest = more;
                    }
                    _ => break,
                }
            }
            match rest {
                [path] => client(&Request::Put {
                    path: path.clone(),
                    restart,
                    grace,
                }),
                _ => usage(),
            }
        }
        Some("restart") if args.len() == 1 => client(&Request::Restart),
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: slipway-sync -- PROGRAM [ARGS...] | put [--restart] [--grace-ms N] PATH < FILE | restart");
    ExitCode::from(2)
}

#[derive(Debug, PartialEq)]
enum Request {
    Put {
        path: String,
        restart: bool,
        grace: Duration,
    },
    Restart,
}

impl Request {
    /// The request's header line (a put's content follows it, `len` bytes).
    fn header(&self, len: usize) -> String {
        match self {
            Request::Put {
                path,
                restart,
                grace,
            } => format!("put\t{path}\t{len}\t{restart}\t{}\n", grace.as_millis()),
            Request::Restart => "restart\n".into(),
        }
    }

    fn parse(line: &str) -> Option<(Request, usize)> {
        let f: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
        match f.as_slice() {
            ["put", path, len, restart, grace] => Some((
                Request::Put {
                    path: path.to_string(),
                    restart: *restart == "true",
                    grace: Duration::from_millis(grace.parse().ok()?),
                },
                len.parse().ok()?,
            )),
            ["restart"] => Some((Request::Restart, 0)),
            _ => None,
        }
    }
}

/// `put` / `restart`: send the request to the supervisor and print its answer.
fn client(req: &Request) -> ExitCode {
    let mut body = vec![];
    if let Request::Put { .. } = req {
        if let Err(e) = std::io::stdin().read_to_end(&mut body) {
            eprintln!("slipway-sync: reading stdin: {e}");
            return ExitCode::from(1);
        }
    }
    let answer = (|| -> std::io::Result<String> {
        let mut s = UnixStream::connect_addr(&SocketAddr::from_abstract_name(SOCKET)?)?;
        s.write_all(req.header(body.len()).as_bytes())?;
        s.write_all(&body)?;
        s.flush()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)?;
        Ok(answer)
    })();
    match answer {
        Ok(a) if a.starts_with("ok") => {
            println!("{}", a.trim_end());
            ExitCode::SUCCESS
        }
        Ok(a) => {
            eprintln!("slipway-sync: {}", a.trim_end());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("slipway-sync: no supervisor answered on @slipway-sync (is this the image's dev variant?): {e}");
            ExitCode::from(1)
        }
    }
}

/// What the listener hands the supervisor: a restart, answered once the new child runs.
struct Restart {
    answer: Sender<String>,
    /// How long the old process has after SIGTERM before SIGKILL.
    grace: Duration,
}

/// Run PROGRAM, restart it on request, pass signals on; PROGRAM's exit status.
fn supervise(argv: &[String]) -> ExitCode {
    unsafe {
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
    }
    let program = argv[0].clone();
    let (tx, rx) = mpsc::channel::<Restart>();
    let (mem_tx, mem_rx) = mpsc::channel::<OwnedFd>();
    match SocketAddr::from_abstract_name(SOCKET).and_then(|a| UnixListener::bind_addr(&a)) {
        Ok(listener) => {
            let program = program.clone();
            std::thread::spawn(move || listen(listener, &program, tx, mem_tx));
        }
        Err(e) => {
            eprintln!("slipway-sync: cannot listen on @slipway-sync ({e}); running without sync")
        }
    }
    supervise_loop(argv, rx, mem_rx)
}

fn supervise_loop(argv: &[String], rx: Receiver<Restart>, mem_rx: Receiver<OwnedFd>) -> ExitCode {
    let mut program_fd: Option<OwnedFd> = None;
    let mut child = match start(argv, program_fd.as_ref()) {
        Ok(pid) => pid,
        Err(e) => {
            eprintln!("slipway-sync: cannot start {}: {e}", argv[0]);
            return ExitCode::from(127);
        }
    };
    let mut stopping = false;
    let mut restarting: Option<(Restart, Instant)> = None;
    loop {
        if TERM.swap(false, Ordering::SeqCst) {
            stopping = true;
            unsafe { kill(child, SIGTERM) };
        }
        while let Ok(fd) = mem_rx.try_recv() {
            program_fd = Some(fd);
        }
        if restarting.is_none() && !stopping {
            if let Ok(r) = rx.try_recv() {
                unsafe { kill(child, SIGTERM) };
                restarting = Some((r, Instant::now()));
            }
        }
        if let Some((r, at)) = &restarting {
            if at.elapsed() > r.grace {
                unsafe { kill(child, SIGKILL) };
            }
        }
        // Reap every child (orphans too: this is PID 1).
        loop {
            let mut status = 0;
            let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid != child {
                continue;
            }
            match restarting.take() {
                Some((r, at)) if !stopping => match start(argv, program_fd.as_ref()) {
                    Ok(pid) => {
                        child = pid;
                        let _ = r.answer.send(format!(
                            "ok restarted {} (pid {pid}; the old one stopped in {} ms)",
                            argv[0],
                            at.elapsed().as_millis()
                        ));
                    }
                    Err(e) => {
                        let _ = r
                            .answer
                            .send(format!("error: cannot start {}: {e}", argv[0]));
                        return ExitCode::from(127);
                    }
                },
                _ => return ExitCode::from(exit_status(status)),
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A wait status as a shell reports it: the exit code, or 128 + the signal.
fn exit_status(status: i32) -> u8 {
    if status & 0x7f == 0 {
        ((status >> 8) & 0xff) as u8
    } else {
        128u8.wrapping_add((status & 0x7f) as u8)
    }
}

/// Start PROGRAM (from its in-memory copy when one was sent); its pid.
fn start(argv: &[String], program_fd: Option<&OwnedFd>) -> std::io::Result<i32> {
    let mut cmd = match program_fd {
        Some(fd) => {
            let mut c = Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            c.arg0(&argv[0]);
            c
        }
        None => Command::new(&argv[0]),
    };
    cmd.args(&argv[1..]);
    let child = cmd.spawn()?;
    Ok(child.id() as i32)
}

/// Take requests, one connection at a time.
fn listen(listener: UnixListener, program: &str, tx: Sender<Restart>, mem_tx: Sender<OwnedFd>) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let answer =
            serve(&mut conn, program, &tx, &mem_tx).unwrap_or_else(|e| format!("error: {e}"));
        let _ = conn.write_all(answer.as_bytes());
        let _ = conn.write_all(b"\n");
    }
}

fn serve(
    conn: &mut UnixStream,
    program: &str,
    tx: &Sender<Restart>,
    mem_tx: &Sender<OwnedFd>,
) -> Result<String, String> {
    let mut reader = BufReader::new(conn.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let (req, len) = Request::parse(&line).ok_or_else(|| format!("bad request {line:?}"))?;
    let mut body = vec![0u8; len];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("reading {len} bytes: {e}"))?;
    let (restart, grace, mut said) = match req {
        Request::Restart => (true, GRACE, String::new()),
        Request::Put {
            path,
            restart,
            grace,
        } => {
            if path == program {
                mem_tx.send(in_memory(&body)?).map_err(|e| e.to_string())?;
                (
                    restart,
                    grace,
                    format!("{path}: {len} bytes held in memory"),
                )
            } else {
                write_atomically(&path, &body)?;
                (restart, grace, format!("{path}: {len} bytes written"))
            }
        }
    };
    if restart {
        let (answer, done) = mpsc::channel();
        tx.send(Restart { answer, grace })
            .map_err(|e| e.to_string())?;
        let a = done.recv().map_err(|e| e.to_string())?;
        if !said.is_empty() {
            said.push_str("; ");
        }
        said.push_str(a.trim_start_matches("ok "));
        if a.starts_with("error") {
            return Err(said);
        }
    }
    Ok(format!("ok {said}"))
}

/// The bytes in an anonymous in-memory file the child can be run from.
fn in_memory(body: &[u8]) -> Result<OwnedFd, String> {
    let name = CString::new("slipway-sync-program").unwrap_or_default();
    // No MFD_CLOEXEC: the child runs it through /proc/self/fd.
    let fd = unsafe { memfd_create(name.as_ptr(), 0) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut f = std::fs::File::from(fd);
    f.write_all(body).map_err(|e| format!("memfd: {e}"))?;
    Ok(OwnedFd::from(f))
}

/// Write a file whole or not at all: a temporary file beside it, renamed over it.
fn write_atomically(path: &str, body: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let target = std::path::Path::new(path);
    let mode = std::fs::metadata(target)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    let tmp = target.with_file_name(format!(
        ".{}.slipway-sync",
        target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file")
    ));
    let write = || -> std::io::Result<()> {
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "{path}: {e} (a read-only root filesystem takes only the image's own command; mount a writable volume for other files)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_survive_their_header() {
        let put = Request::Put {
            path: "/sample".into(),
            restart: true,
            grace: Duration::from_millis(250),
        };
        assert_eq!(Request::parse(&put.header(42)), Some((put, 42)));
        assert_eq!(
            Request::parse(&Request::Restart.header(0)),
            Some((Request::Restart, 0))
        );
        assert_eq!(Request::parse("rm\t/\n"), None);
    }

    #[test]
    fn exit_statuses_read_as_a_shell_reads_them() {
        assert_eq!(exit_status(3 << 8), 3);
        assert_eq!(exit_status(SIGTERM), 128 + 15);
    }
}
