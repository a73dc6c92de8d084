//! `during_rollout` checks: a Service probed while the deploy stage upgrades the
//! releases, then judged by the check's smoke step.
//!
//! The route matters. A NodePort this machine reaches goes through kube-proxy, as
//! clients do: a pod that stops serving before kube-proxy's rules drop it fails
//! requests there. Otherwise the requests go through the API server's service proxy,
//! which picks a pod it sees ready for each request (a port-forward would pin one
//! pod). Measured on kind with pods that exit at once on SIGTERM: 4–5 failed
//! requests of ~40 through the NodePort, 0 through the service proxy. So the
//! service proxy's count is a lower bound, and the report says which route it took.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::exec::net::{self, Target};
use crate::exec::{Background, Executor};
use crate::model::{ms, Error, Event, Stage};
use crate::plan::Watch;
use crate::providers::HostAccess;

/// Each request's own deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Failed requests described in the report (the count covers all of them).
const SHOWN_FAILURES: usize = 3;

/// What the probe saw.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// The route the requests took.
    pub via: String,
    pub requests: u32,
    pub failures: u32,
    /// The first few failures: when (since the probe started) and what.
    pub failed: Vec<(Duration, String)>,
    /// The longest time between two answers with the expected status.
    pub longest_gap: Duration,
    last_ok: Option<Duration>,
    pub window: Duration,
}

impl Tally {
    /// One request's outcome, `at` from the start of the probe.
    pub fn record(&mut self, at: Duration, outcome: Result<(), String>) {
        self.requests += 1;
        self.window = at;
        match outcome {
            Ok(()) => {
                if let Some(prev) = self.last_ok {
                    self.longest_gap = self.longest_gap.max(at.saturating_sub(prev));
                }
                self.last_ok = Some(at);
            }
            Err(e) => {
                self.failures += 1;
                if self.failed.len() < SHOWN_FAILURES {
                    self.failed.push((at, e));
                }
            }
        }
    }

    /// A probe that ends while failing: the gap runs to its end.
    pub fn close(&mut self, at: Duration) {
        self.window = at;
        if let Some(prev) = self.last_ok {
            if self.failures > 0 {
                self.longest_gap = self.longest_gap.max(at.saturating_sub(prev));
            }
        }
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "during the upgrade ({:.1} s): {} requests through {}, {} failed, longest gap between good answers {} ms",
            self.window.as_secs_f64(),
            self.requests,
            self.via,
            self.failures,
            self.longest_gap.as_millis()
        );
        for (at, e) in &self.failed {
            s.push_str(&format!("; at +{:.1} s: {e}", at.as_secs_f64()));
        }
        s
    }
}

/// A probe in progress (or the reason there is none).
pub enum Running {
    Probing {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<Tally>>,
        // `kubectl proxy`, when it is the route: dropped (and so stopped, its
        // socket's directory removed) after the thread has ended.
        _proxy: Option<Proxy>,
    },
    /// Nothing answered before the upgrade (a first install): there is no
    /// downtime to measure.
    NotServing(String),
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::Probing { stop, thread, .. } = self {
            stop.store(true, Ordering::SeqCst);
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// `kubectl proxy` serving on a socket in a directory only this user can enter; the
/// process is stopped, then the directory removed, when this is dropped.
pub struct Proxy {
    _process: Background,
    _dir: tempfile::TempDir,
}

/// One request: `Ok` when it got the expected status.
fn ask(client: &net::Client, target: &Target, w: &Watch) -> Result<(), String> {
    let mut req = net::Request::new(&w.method, target.clone());
    req.enough = Some(w.expect_status);
    let a = client.send(&req).map_err(|e| format!("no answer: {e}"))?;
    if a.status == w.expect_status {
        return Ok(());
    }
    let body: String = a.body.trim().chars().take(120).collect();
    Err(format!("status {} ({body})", a.status))
}

/// Does this line of `kubectl proxy`'s say it serves on `socket`?
fn serves_on(line: &str, socket: &Path) -> bool {
    line.strip_prefix("Starting to serve on ")
        .is_some_and(|at| Path::new(at.trim()) == socket)
}

/// The longest socket path a `sockaddr_un` holds (108 bytes with its NUL on Linux).
const MAX_SOCKET_PATH: usize = 107;

/// Where the requests go, a description of the route and `kubectl proxy` when that
/// is the route.
type Route = (Target, String, Option<Proxy>);

/// The NodePort from this machine, or `kubectl proxy`; `Ok(Err(why))` when there
/// is no Service yet.
fn route(ex: &Executor, w: &Watch, deadline: Instant) -> Result<Result<Route, String>, Error> {
    let stage = Stage::Deploy;
    let prefix = format!("check {}: ", w.check);
    let read = |cmd: &crate::model::Cmd, what: &str| {
        super::smoke::read(ex, stage, cmd, deadline, &prefix, what)
    };
    let json = read(&w.services, "read the Services")?;
    let node_port = match crate::tools::k8s::node_port_of(&json, &w.service, w.port) {
        Ok(np) => np,
        Err(e) if e.ends_with("does not exist yet") => return Ok(Err(e)),
        Err(e) => {
            return Err(Error::new(
                stage,
                format!("check {}: cannot read the Services: {e}", w.check),
            ))
        }
    };
    if let (Some(np), Some(access)) = (node_port, &w.access) {
        let address = match access {
            HostAccess::NodeAddress { address } => {
                Some(read(address, "read the node's address")?.trim().to_string())
            }
            HostAccess::Mapped { .. } => None,
        };
        if let Some((host, port)) = access.target(address.as_deref(), np) {
            let url = format!("http://{host}:{port}{}", w.path);
            let via =
                format!("NodePort {np} from this machine ({host}:{port}, through kube-proxy)");
            return Ok(Ok((Target::Url(url), via, None)));
        }
    }
    let fail = |msg: String, tail: Vec<String>| Error {
        tail,
        ..Error::new(
            stage,
            format!("check {}: the service proxy did not start: {msg}", w.check),
        )
    };
    // The socket lives in a new directory only this user can enter: nobody else
    // can connect to it, so nobody else gets the deployer's credentials.
    let dir = super::private::temp_dir("slipway-proxy-").map_err(|e| fail(e, vec![]))?;
    let socket = dir.path().join("proxy.sock");
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(fail(
            format!(
                "its socket's path {} is longer than a unix socket's path may be ({MAX_SOCKET_PATH} bytes)",
                socket.display()
            ),
            vec![],
        )
        .hint("point TMPDIR at a directory with a shorter path"));
    }
    let cmd = w.proxy.fill(&[("SOCKET", &socket.to_string_lossy())]);
    let mut bg = ex
        .spawn_background(stage, &cmd)
        .map_err(|e| fail(format!("`{}` {e}", e.command), vec![]))?;
    let ready_by = deadline.min(Instant::now() + Duration::from_secs(15));
    loop {
        if ex.cancelled() {
            return Err(Error::interrupted(Some(stage), "interrupted"));
        }
        match bg.lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                if serves_on(&line, &socket) {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(fail("it exited".into(), bg.output_tail()));
            }
        }
        if let Some(code) = bg.exited() {
            std::thread::sleep(Duration::from_millis(50));
            return Err(fail(format!("it exited with {code}"), bg.output_tail()));
        }
        if Instant::now() >= ready_by {
            return Err(fail(
                "it did not say where it serves within 15 s".into(),
                bg.output_tail(),
            ));
        }
    }
    let target = Target::Socket {
        socket,
        path: w.proxy_path.clone(),
    };
    ex.events.emit(Event::Note {
        stage,
        step: None,
        message: format!(
            "check {}: service {} is not a NodePort this machine reaches, so it is probed through the API server's service proxy, which sends each request to a pod the API server sees ready: failures clients would see while kube-proxy catches up are not counted (publish a NodePort to measure those)",
            w.check, w.service
        ),
    });
    let via = "the API server's service proxy".to_string();
    let proxy = Proxy {
        _process: bg,
        _dir: dir,
    };
    Ok(Ok((target, via, Some(proxy))))
}

/// Find the route, ask once, and keep asking in the background if the Service
/// answered.
pub fn start(ex: &Executor, w: &Watch, deadline: Instant) -> Result<Running, Error> {
    let (target, via, proxy) = match route(ex, w, deadline)? {
        Ok(r) => r,
        Err(why) => return Ok(Running::NotServing(why)),
    };
    let client = net::Client::new(REQUEST_TIMEOUT, ex.signals());
    if let Err(e) = ask(&client, &target, w) {
        return Ok(Running::NotServing(e));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = Arc::clone(&stop);
        let w = w.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut tally = Tally {
                via,
                ..Tally::default()
            };
            tally.record(Duration::ZERO, Ok(()));
            let mut next = t0 + w.every;
            while !stop.load(Ordering::SeqCst) {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep((next - now).min(Duration::from_millis(20)));
                    continue;
                }
                next += w.every;
                let at = t0.elapsed();
                tally.record(at, ask(&client, &target, &w));
            }
            tally.close(t0.elapsed());
            tally
        })
    };
    Ok(Running::Probing {
        stop,
        thread: Some(thread),
        _proxy: proxy,
    })
}

/// End the probe and judge it: a check event either way, an error if any request
/// failed.
pub fn finish(ex: &Executor, name: &str, mut running: Running) -> Result<(), Error> {
    let stage = Stage::Smoke;
    let started = Instant::now();
    let check = format!("{name} during the upgrade");
    let tally = match &mut running {
        Running::NotServing(why) => {
            ex.events.emit(Event::Note {
                stage,
                step: None,
                message: format!(
                    "check {name}: nothing answered before the upgrade ({why}), so there was no running release to keep serving: not measured"
                ),
            });
            return Ok(());
        }
        Running::Probing { stop, thread, .. } => {
            stop.store(true, Ordering::SeqCst);
            thread.take().map(|t| t.join()).transpose().map_err(|_| {
                Error::new(stage, format!("check {check}: the probe's thread panicked"))
            })?
        }
    };
    let Some(tally) = tally else {
        return Ok(());
    };
    let ok = tally.failures == 0;
    let detail = tally.summary();
    ex.events.emit(Event::Check {
        stage,
        name: check.clone(),
        ok,
        attempts: tally.requests,
        duration_ms: ms(tally.window.max(started.elapsed())),
        detail: detail.clone(),
    });
    if ok {
        return Ok(());
    }
    let mut e = Error::new(
        stage,
        format!(
            "check {check}: {} of {} requests failed while the releases upgraded",
            tally.failures, tally.requests
        ),
    );
    e.tail = vec![detail];
    e.hint = Some(
        "pods stopped serving before the Service stopped sending them requests, or no pod was ready: give the container a preStop pause or a shutdown delay, keep maxUnavailable at 0, and check the readiness probe".into(),
    );
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_tally_counts_failures_and_the_longest_gap() {
        let mut t = Tally {
            via: "the service proxy".into(),
            ..Tally::default()
        };
        t.record(MS(0), Ok(()));
        t.record(MS(100), Ok(()));
        t.record(MS(200), Err("status 503 (no endpoints)".into()));
        t.record(MS(300), Err("no answer: connection refused".into()));
        t.record(MS(400), Ok(()));
        t.record(MS(500), Ok(()));
        t.close(MS(550));
        assert_eq!((t.requests, t.failures), (6, 2));
        assert_eq!(t.longest_gap, MS(300));
        assert_eq!(t.window, MS(550));
        let s = t.summary();
        assert!(s.contains("6 requests through the service proxy"), "{s}");
        assert!(s.contains("2 failed"), "{s}");
        assert!(s.contains("longest gap between good answers 300 ms"), "{s}");
        assert!(s.contains("at +0.2 s: status 503 (no endpoints)"), "{s}");
    }

    #[test]
    fn a_probe_that_ends_failing_counts_the_gap_to_its_end() {
        let mut t = Tally::default();
        t.record(MS(0), Ok(()));
        t.record(MS(100), Err("status 502 ()".into()));
        t.close(MS(900));
        assert_eq!(t.longest_gap, MS(900));
        let mut clean = Tally::default();
        clean.record(MS(0), Ok(()));
        clean.record(MS(120), Ok(()));
        clean.close(MS(2000));
        assert_eq!(clean.longest_gap, MS(120), "no failure: the end is no gap");
    }

    #[test]
    fn only_the_first_failures_are_described() {
        let mut t = Tally::default();
        for i in 0..10 {
            t.record(MS(i * 100), Err(format!("fail {i}")));
        }
        assert_eq!(t.failures, 10);
        assert_eq!(t.failed.len(), SHOWN_FAILURES);
    }

    #[test]
    fn kubectl_proxy_is_ready_when_it_names_its_socket() {
        let sock = Path::new("/tmp/slipway-proxy-x1/proxy.sock");
        assert!(serves_on(
            "Starting to serve on /tmp/slipway-proxy-x1/proxy.sock",
            sock
        ));
        assert!(!serves_on("Starting to serve on 127.0.0.1:8001", sock));
        assert!(!serves_on("W1204 some warning", sock));
    }
}
