//! OCI runtime specs: drop, from a container's capabilities, those this host's
//! bounding set lacks (runc refuses a container that asks for one it cannot have).
//! The spec is edited as JSON: every other value (a container's argv included) is
//! left as it was, and a spec that needs no change is not rewritten at all.

use serde_json::Value;

/// Linux capabilities by number (`capability.h`), as OCI specs name them.
pub const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// `CapBnd` from `/proc/self/status`.
pub fn parse_cap_bnd(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Can a process with bounding set `bnd` grant `cap`? A name slipway does not know
/// is kept (runc judges it).
pub fn grantable(cap: &str, bnd: u64) -> bool {
    match CAPS.iter().position(|c| *c == cap) {
        Some(i) => (bnd >> i) & 1 == 1,
        None => true,
    }
}

/// Which file holds the spec, from runc's arguments: `--bundle DIR` (`-b`,
/// `--bundle=DIR`) → `DIR/config.json` (a whole spec), `--process FILE` (`-p`,
/// `--process=FILE`) → a process spec (`runc exec`).
pub fn spec_files(args: &[String]) -> Vec<(std::path::PathBuf, Kind)> {
    let mut out = vec![];
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let kind = match flag {
            "--bundle" | "-b" => Kind::Bundle,
            "--process" | "-p" => Kind::Process,
            _ => continue,
        };
        let Some(v) = inline.or_else(|| it.next().cloned()) else {
            continue;
        };
        let path = std::path::PathBuf::from(v);
        out.push(match kind {
            Kind::Bundle => (path.join("config.json"), kind),
            Kind::Process => (path, kind),
        });
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `config.json`: the capabilities are at `.process.capabilities`.
    Bundle,
    /// A process spec: at `.capabilities`.
    Process,
}

/// The spec without the capabilities `bnd` cannot grant, or `None` when nothing is to
/// be dropped (or it is not JSON: runc then says what is wrong with it).
pub fn filter(spec: &str, kind: Kind, bnd: u64) -> Option<String> {
    let mut v: Value = serde_json::from_str(spec).ok()?;
    let caps = match kind {
        Kind::Bundle => v.get_mut("process")?.get_mut("capabilities")?,
        Kind::Process => v.get_mut("capabilities")?,
    };
    let mut changed = false;
    for (_, set) in caps.as_object_mut()?.iter_mut() {
        let Some(list) = set.as_array_mut() else {
            continue;
        };
        let before = list.len();
        list.retain(|c| c.as_str().is_none_or(|c| grantable(c, bnd)));
        changed |= list.len() != before;
    }
    changed.then(|| serde_json::to_string(&v).expect("a JSON value serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_bounding_set_lacks_is_dropped_and_args_are_untouched() {
        let spec = r#"{"ociVersion":"1.2.0","process":{"args":["sh","-c","echo [1,] \"CAP_BPF\","],"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_BPF","CAP_NEW_ONE"],"effective":["CAP_SYS_RESOURCE"]}}}"#;
        // Everything but CAP_SYS_RESOURCE (24).
        let bnd = ((1u64 << 41) - 1) & !(1 << 24);
        let out: Value = serde_json::from_str(&filter(spec, Kind::Bundle, bnd).unwrap()).unwrap();
        assert_eq!(
            out["process"]["args"],
            serde_json::json!(["sh", "-c", "echo [1,] \"CAP_BPF\","])
        );
        assert_eq!(
            out["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_CHOWN", "CAP_BPF", "CAP_NEW_ONE"])
        );
        assert_eq!(
            out["process"]["capabilities"]["effective"],
            serde_json::json!([])
        );
        assert_eq!(filter(spec, Kind::Bundle, (1u64 << 41) - 1), None);
        assert_eq!(filter("not json", Kind::Process, 0), None);
        let p = r#"{"args":["x"],"capabilities":{"bounding":["CAP_KILL"]}}"#;
        assert!(filter(p, Kind::Process, 0)
            .unwrap()
            .contains("\"bounding\":[]"));
    }

    #[test]
    fn spec_files_in_every_spelling() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            spec_files(&a(&["--root", "/r", "create", "--bundle", "/b", "id"])),
            vec![("/b/config.json".into(), Kind::Bundle)]
        );
        assert_eq!(
            spec_files(&a(&["exec", "--process=/p.json", "id"])),
            vec![("/p.json".into(), Kind::Process)]
        );
        assert_eq!(
            spec_files(&a(&["run", "-b", "/b"])),
            vec![("/b/config.json".into(), Kind::Bundle)]
        );
        assert!(spec_files(&a(&["state", "id"])).is_empty());
    }

    #[test]
    fn cap_bnd_from_proc_status() {
        assert_eq!(
            parse_cap_bnd("Name:\tx\nCapBnd:\t000001fffeffffff\n"),
            Some(0x1fffeffffff)
        );
        assert_eq!(parse_cap_bnd("Name:\tx\n"), None);
    }
}
