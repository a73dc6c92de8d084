//! Set-up a run does for itself: a tool PATH lacks (or has too old) is provisioned
//! into slipway's cache — the official release, checksum verified, else built with
//! slipway's recipe from the Go module proxy — and used for every call; a Docker
//! engine that is installed but stopped is started. Recipes are written out from
//! the binary before they run.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::exec::{Executor, Failure};
use crate::model::{Cmd, Error, Event, Stage};
use crate::plan::{DockerStart, Fetch, Supply, ToolCheck};
use crate::providers::NodeImage;
use crate::tools::{docker, provision};

/// Write a recipe's files to its directory (content-addressed: an existing one is
/// already right).
pub fn materialize(recipe: &provision::Recipe, cache: &Path) -> Result<PathBuf, String> {
    let dir = recipe.dir(cache);
    if dir.join(recipe.entry).is_file() {
        return Ok(dir);
    }
    let parent = dir.parent().ok_or("recipe directory has no parent")?;
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let tmp = tempfile::tempdir_in(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    for (name, text) in recipe.all_files() {
        let f = tmp.path().join(name);
        if let Some(d) = f.parent() {
            std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        std::fs::write(&f, text).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    let tmp = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another run wrote it first: fine.
        if !dir.join(recipe.entry).is_file() {
            return Err(format!("{}: {e}", dir.display()));
        }
    }
    Ok(dir)
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Put an executable at `to` whole or not at all: `fill` writes a temporary file
/// beside it, which is made executable and renamed into place.
fn place_executable(
    to: &Path,
    fill: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = to.parent().ok_or("no parent directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".{}.partial", std::process::id()));
    fill(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, to).map_err(|e| format!("{}: {e}", to.display()))
}

fn interrupted() -> Error {
    Error::interrupted(Some(Stage::Preflight), "preflight was interrupted")
}

/// How a provisioning attempt ended.
pub enum Got {
    /// The binary is at the supply's path; how it got there.
    Yes(String),
    /// It could not be provisioned: why, for each way tried, and what would help.
    No(String, &'static str),
}

fn note(ex: &Executor, message: String) {
    ex.events.emit(Event::Note {
        stage: Stage::Preflight,
        message,
    });
}

/// The official release, checksum verified. `Err` says why not (no network here,
/// a checksum that does not match, …).
fn download(ex: &Executor, tool: &str, d: &Fetch, to: &Path) -> Result<(), String> {
    if ex.locate("curl").is_none() {
        return Err("curl is not on PATH".into());
    }
    if let Some(dir) = d.file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let short = |e: crate::exec::ExecError| {
        e.tail
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| e.to_string())
    };
    let sum = ex
        .run(Stage::Preflight, &d.checksum, None)
        .map_err(|e| format!("checksum: {}", short(e)))?;
    let want = provision::parse_sha256(&sum.stdout)
        .ok_or_else(|| "the published checksum is not a SHA-256".to_string())?;
    ex.run(Stage::Preflight, &d.fetch, None)
        .map_err(|e| format!("download: {}", short(e)))?;
    let got = sha256_file(&d.file).map_err(|e| e.to_string())?;
    if got != want {
        let _ = std::fs::remove_file(&d.file);
        return Err(format!(
            "{tool}'s SHA-256 is {got}, but its release publishes {want}: not installed"
        ));
    }
    let binary = match (&d.unpack, &d.unpacked) {
        (Some(u), Some(at)) => {
            ex.run(Stage::Preflight, u, None)
                .map_err(|e| format!("unpack: {}", short(e)))?;
            at.clone()
        }
        _ => d.file.clone(),
    };
    place_executable(to, |tmp| std::fs::copy(&binary, tmp).map(drop))
}

/// Provision `t` per its supply: download, else build. Progress goes out as notes.
pub fn get(ex: &Executor, t: &ToolCheck, s: &Supply) -> Result<Got, Error> {
    let started = Instant::now();
    let mut why = vec![];
    if let Some(d) = &s.download {
        note(
            ex,
            format!("{}: downloading {} (official release)", t.tool, s.version),
        );
        match download(ex, &t.tool, d, &s.path) {
            Ok(()) => {
                return Ok(Got::Yes(format!(
                    "downloaded, SHA-256 verified, in {}s",
                    started.elapsed().as_secs()
                )))
            }
            Err(e) => {
                if ex.cancelled() {
                    return Err(interrupted());
                }
                note(ex, format!("{}: no download ({e})", t.tool));
                why.push(format!("download: {e}"));
            }
        }
    }
    let Some(build) = &s.build else {
        why.push("slipway has no build recipe for it".into());
        return Ok(Got::No(
            why.join("; "),
            "or let this machine download it (a proxy, or [tools] mirror)",
        ));
    };
    if ex.locate("go").is_none() {
        why.push("building it needs Go (`go` is not on PATH)".into());
        return Ok(Got::No(
            why.join("; "),
            "or install Go (https://go.dev/dl/) and slipway builds it",
        ));
    }
    let Some(cache) = provision::cache_root() else {
        why.push("no cache directory (HOME is not set)".into());
        return Ok(Got::No(why.join("; "), "or set HOME"));
    };
    materialize(provision::recipe_for(&t.tool), &cache).map_err(|e| {
        Error::new(
            Stage::Preflight,
            format!("cannot write slipway's build recipe: {e}"),
        )
    })?;
    note(
        ex,
        format!(
            "{}: building {} from the Go module proxy (minutes the first time; cached in {})",
            t.tool,
            s.version,
            s.path
                .parent()
                .map(Path::display)
                .map(|d| d.to_string())
                .unwrap_or_default()
        ),
    );
    match ex.run(Stage::Preflight, build, None) {
        Ok(_) if s.path.is_file() => Ok(Got::Yes(format!(
            "built from the Go module proxy in {}s",
            started.elapsed().as_secs()
        ))),
        Ok(_) => {
            why.push(format!("the build did not leave {}", s.path.display()));
            Ok(Got::No(why.join("; "), "or read the build's output above"))
        }
        Err(e) if e.failure == Failure::Interrupted => Err(interrupted()),
        Err(e) => {
            why.push(format!(
                "build: {} ({})",
                e,
                e.tail.last().map(String::as_str).unwrap_or("")
            ));
            Ok(Got::No(
                why.join("; "),
                "or check that Go's module proxy answers (GOPROXY) and rerun",
            ))
        }
    }
}

/// Use a tool slipway provisioned earlier wherever PATH has none (no process runs).
pub fn adopt_provisioned(ex: &Executor, pins: &crate::config::Tools) {
    let Some(cache) = provision::cache_root() else {
        return;
    };
    for (tool, default) in provision::DEFAULTS {
        let version = pins.pinned(tool).unwrap_or(default);
        let path = provision::tool_path(&cache, tool, version);
        if which::which(tool).is_err() && path.is_file() {
            ex.use_tool(tool, path);
        }
    }
}

/// The version check of `t`, run from `path`.
pub fn version_cmd(t: &ToolCheck, path: &Path) -> Cmd {
    let mut c = t.version.clone();
    c.program = path.to_string_lossy().into_owned();
    c
}

/// Can a stopped engine be started here: root, dockerd installed, and no systemd
/// (which would own it)? `Err` is the fix to print instead.
pub fn can_start_docker(ex: &Executor) -> Result<(), String> {
    // Tests give both answers on any machine through these two variables (and only
    // they): SLIPWAY_TEST_EUID stands for geteuid(2), SLIPWAY_TEST_SYSTEMD ("1"/"0")
    // for whether systemd runs this host.
    let root = match ex.vars.get("SLIPWAY_TEST_EUID") {
        Some(uid) => uid.trim() == "0",
        // SAFETY: geteuid(2) has no preconditions.
        None => (unsafe { libc::geteuid() }) == 0,
    };
    let systemd = match ex.vars.get("SLIPWAY_TEST_SYSTEMD") {
        Some(v) => v == "1",
        None => Path::new("/run/systemd/system").is_dir(),
    };
    if systemd {
        return Err("start it: `sudo systemctl start docker`".into());
    }
    if !root {
        return Err("start it as root (`sudo dockerd &`), or run slipway as root to let it start the engine".into());
    }
    if ex.locate("dockerd").is_none() {
        return Err("install a Docker engine (Debian: `apt-get install docker.io`); slipway starts an installed `dockerd` itself".into());
    }
    if ex.locate("runc").is_none() {
        return Err("dockerd is installed but runc is not (Debian: `apt-get install runc`)".into());
    }
    Ok(())
}

/// Start dockerd in the background and wait until `docker info` answers.
pub fn start_docker(ex: &Executor, ds: &DockerStart, info: &Cmd) -> Result<String, String> {
    let runc = ex.locate("runc").ok_or("runc is not on PATH")?;
    place_executable(&ds.wrapper, |tmp| {
        std::fs::write(tmp, docker::runtime_wrapper(&runc))
    })?;
    std::fs::write(&ds.config, docker::daemon_config(&ds.wrapper))
        .map_err(|e| format!("{}: {e}", ds.config.display()))?;
    let pid = ex
        .start_daemon(Stage::Preflight, &ds.dockerd, &ds.log)
        .map_err(|e| e.to_string())?;
    note(
        ex,
        format!(
            "docker: no engine answered; started dockerd (pid {pid}, log {})",
            ds.log.display()
        ),
    );
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if let Ok(o) = ex.probe(Stage::Preflight, info, Some(end)) {
            if o.ok() {
                return Ok(format!(
                    "started by slipway (pid {pid}; runtime {} drops the capabilities this host cannot grant; log {})",
                    docker::RUNTIME,
                    ds.log.display()
                ));
            }
        }
        if !ex.sleep(Duration::from_millis(500)) {
            return Err("interrupted".into());
        }
    }
    let tail = std::fs::read_to_string(&ds.log).unwrap_or_default();
    Err(format!(
        "dockerd did not answer within 60 s; its log ends: {}",
        tail.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
    ))
}

/// Make sure the cluster's node image is here. `Ok(true)`: it had to be built
/// offline, so the cluster is created from that (`NodeImage::create`).
pub fn node_image(ex: &Executor, n: &NodeImage, deadline: Instant) -> Result<bool, Error> {
    let stage = Stage::Cluster;
    let stop = |e: crate::exec::ExecError, what: &str| {
        if e.failure == Failure::Interrupted {
            Error::interrupted(Some(stage), "interrupted")
        } else {
            e.into_error(stage, what)
        }
    };
    let present = ex
        .probe(stage, &n.inspect, Some(deadline))
        .map_err(|e| stop(e, "look for the node image"))?;
    if present.ok() {
        return Ok(false);
    }
    if n.image != n.offline {
        let pulled = ex
            .probe(stage, &n.pull, None)
            .map_err(|e| stop(e, "pull the node image"))?;
        if pulled.ok() {
            return Ok(false);
        }
        if !provision::is_unreachable_pull(&pulled.stderr) {
            let mut e = Error::new(stage, format!("cannot pull the node image {}", n.image));
            e.command = Some(n.pull.display());
            e.child_exit = Some(pulled.code);
            e.tail = pulled
                .stderr
                .lines()
                .rev()
                .take(5)
                .map(String::from)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            e.hint =
                Some("fix what `docker pull` says (disk space, credentials), then rerun".into());
            return Err(e);
        }
        let why = pulled
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        ex.events.emit(Event::Note {
            stage,
            message: format!(
                "{} cannot be pulled ({why}): building slipway's offline node image {} instead",
                n.image, n.offline
            ),
        });
    } else {
        ex.events.emit(Event::Note {
            stage,
            message: format!("{} is not here: building it", n.offline),
        });
    }
    let cache = provision::cache_root()
        .ok_or_else(|| Error::new(stage, "no cache directory (HOME is not set)".to_string()))?;
    let recipe = provision::recipe_named(&n.recipe)
        .ok_or_else(|| Error::new(stage, format!("slipway has no recipe named {}", n.recipe)))?;
    materialize(recipe, &cache).map_err(|e| {
        Error::new(
            stage,
            format!("cannot write slipway's {} recipe: {e}", recipe.name),
        )
    })?;
    ex.events.emit(Event::Note {
        stage,
        message: "node image: about 12 minutes the first time on 2 cores (Go builds, debootstrap); cached afterwards".into(),
    });
    let started = Instant::now();
    ex.run(stage, &n.build, None).map_err(|e| {
        stop(e, &format!("build the offline node image {}", n.offline)).or_hint(Some(
            "the recipe needs Go (and its module proxy) and Debian's packages (debootstrap); its output above names the phase that failed".into(),
        ))
    })?;
    ex.events.emit(Event::Note {
        stage,
        message: format!(
            "{} ready after {}s; the cluster is created from it",
            n.offline,
            started.elapsed().as_secs()
        ),
    });
    Ok(n.image != n.offline)
}
