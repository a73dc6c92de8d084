//! Tools slipway provisions itself: where each pinned tool's official release binary
//! is published (with its checksum), and slipway's own build recipes for when it
//! cannot be downloaded (the Go module proxy builds kind, helm and kubectl; the kind
//! node image is built from Debian's packages and the Go module proxy).
//!
//! The recipes are shell scripts embedded in slipway (`slipway/recipes/`), written
//! to `<cache>/recipes/<name>-<hash>/` before they run, so a repo that uses slipway
//! as a library or binary needs no copy of them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::registry::{Provision, ToolId};
use super::Cmd;

/// The SHA-256 pinned in the source for `tool` `version` on linux/`arch` (see
/// [`Provision::sha256`]).
pub fn pinned_sha256(tool: ToolId, version: &str, arch: &str) -> Option<&'static str> {
    tool.tool()
        .provision?
        .sha256
        .iter()
        .find(|(v, a, _)| *v == version && *a == arch)
        .map(|p| p.2)
}

/// Is `s` a SHA-256 in hex?
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The version slipway provisions of `tool` unless `[tools]` pins another.
pub fn default_version(tool: ToolId) -> Option<&'static str> {
    Some(tool.tool().provision?.default)
}

/// slipway's cache root: `$XDG_CACHE_HOME/slipway`, else `~/.cache/slipway`.
pub fn cache_root() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|b| b.join("slipway"))
}

/// Where a provisioned tool lives: `<cache>/toolchain/bin/<tool>-<version>` (the
/// layout `scripts/toolchain.sh` shares).
pub fn tool_path(cache: &Path, tool: ToolId, version: &str) -> PathBuf {
    cache
        .join("toolchain")
        .join("bin")
        .join(format!("{tool}-{version}"))
}
pub use super::recipe::{recipe_named, Recipe, MINIKUBE, NODE_IMAGE, REGISTRY, TOOLCHAIN};

/// The local registry's version (CNCF distribution, see [`REGISTRY`]) and where
/// its recipe leaves the binary: kind's `delivery = "auto"` uses the registry when
/// this file exists.
pub const REGISTRY_VERSION: &str = "v3.1.2";

pub fn registry_binary(cache: &Path) -> PathBuf {
    cache
        .join("registry")
        .join(REGISTRY_VERSION)
        .join("registry")
}

/// minikube's offline base image (see [`MINIKUBE`]).
pub fn offline_minikube_base() -> String {
    format!("slipway-local/minikube-base:{OFFLINE_NODE_K8S}")
}

/// The Kubernetes version of the offline node image, and its name.
pub const OFFLINE_NODE_K8S: &str = "v1.34.4";

pub fn offline_node_image() -> String {
    format!("slipway-local/kind-node:{OFFLINE_NODE_K8S}")
}

/// How long a recipe may run (a cold node image takes ~12 minutes on 2 cores).
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// `bash <dir>/<entry> ARGS…`, with the env the recipe reads.
pub fn recipe_cmd(recipe: &Recipe, cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Cmd {
    let mut c = Cmd::new(
        "bash",
        std::iter::once(
            recipe
                .dir(cache)
                .join(recipe.entry)
                .to_string_lossy()
                .into_owned(),
        )
        .chain(args.iter().map(|a| a.to_string())),
    )
    .timeout(BUILD_TIMEOUT)
    .progress();
    c.env
        .insert("SLIPWAY_CACHE".into(), cache.to_string_lossy().into_owned());
    for (k, v) in env {
        c.env.insert(k.to_string(), v.to_string());
    }
    c
}

/// The recipe that builds `tool` (`None`: slipway does not provision it).
pub fn recipe_for(tool: ToolId, version: &str) -> Option<&'static Recipe> {
    Some((tool.tool().provision?.build)(version).recipe)
}

/// The build of `tool` at `version` with its recipe (Go module proxy).
/// `None` for tools no recipe builds.
pub fn build(tool: ToolId, version: &str, cache: &Path) -> Option<Cmd> {
    let b = (tool.tool().provision?.build)(version);
    Some(recipe_cmd(b.recipe, cache, &[b.arg], &[(b.var, version)]))
}

/// An official release binary (its SHA-256 comes from [`Provision::sha256`] or the pipeline, never
/// from where the binary comes from).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Download {
    pub url: String,
    /// For an archive: the member that is the binary (`tar -xzf`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

/// Go's name for this machine's architecture.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The official release of `tool` at `version` for linux/`arch`. `mirror`, when set,
/// serves the same paths: `https://HOST/PATH` becomes `MIRROR/HOST/PATH` (an
/// `https://` mirror: configuration refuses any other).
pub fn download(tool: ToolId, version: &str, arch: &str, mirror: Option<&str>) -> Option<Download> {
    let Provision {
        release: Some(r), ..
    } = tool.tool().provision?
    else {
        return None;
    };
    let fill = |t: &str| t.replace("{version}", version).replace("{arch}", arch);
    let url = fill(r.url);
    let via = |u: String| match mirror {
        Some(m) => format!(
            "{}/{}",
            m.trim_end_matches('/'),
            u.trim_start_matches("https://")
        ),
        None => u,
    };
    Some(Download {
        url: via(url),
        member: r.member.map(fill),
    })
}

/// `curl` fetching `url`: into `out`, or to stdout (a checksum file).
pub fn curl(url: &str, out: Option<&Path>) -> Cmd {
    let mut c = Cmd::new("curl", ["--fail", "--silent", "--show-error", "--location"]).args([
        "--connect-timeout",
        "10",
        "--retry",
        "2",
    ]);
    if let Some(o) = out {
        c = c.args(["--output".to_string(), o.to_string_lossy().into_owned()]);
    }
    c.arg(url).timeout(Duration::from_secs(600))
}

/// The hex digest in a published checksum file (`<hex>` or `<hex>  <name>`).
pub fn parse_sha256(text: &str) -> Option<String> {
    let w = text.split_whitespace().next()?.to_ascii_lowercase();
    (w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit())).then_some(w)
}

/// Does `docker pull`'s error say the registry cannot be reached or does not have
/// the image (as opposed to, say, a full disk)?
pub fn is_unreachable_pull(stderr: &str) -> bool {
    const SIGNS: &[&str] = &[
        "dial tcp",
        "no such host",
        "i/o timeout",
        "tls handshake timeout",
        "connection refused",
        "network is unreachable",
        "client.timeout exceeded",
        "server misbehaving",
        "pull access denied",
        "repository does not exist",
        "manifest unknown",
        "not found: manifest",
        "toomanyrequests",
        "temporary failure in name resolution",
    ];
    let s = stderr.to_ascii_lowercase();
    SIGNS.iter().any(|m| s.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_release_urls_and_a_mirror() {
        let d = download(ToolId::Kubectl, "v1.34.13", "amd64", None).unwrap();
        assert_eq!(
            d.url,
            "https://dl.k8s.io/release/v1.34.13/bin/linux/amd64/kubectl"
        );
        let h = download(
            ToolId::Helm,
            "v4.3.1",
            "arm64",
            Some("https://127.0.0.1:9/"),
        )
        .unwrap();
        assert_eq!(
            h.url,
            "https://127.0.0.1:9/get.helm.sh/helm-v4.3.1-linux-arm64.tar.gz"
        );
        assert_eq!(
            pinned_sha256(ToolId::Kind, "v0.30.0", "amd64"),
            Some("517ab7fc89ddeed5fa65abf71530d90648d9638ef0c4cde22c2c11f8097b8889")
        );
        assert_eq!(pinned_sha256(ToolId::Kind, "v0.29.0", "amd64"), None);
        assert!(ToolId::provisioned().all(|(_, p)| p.sha256.iter().all(|d| is_sha256(d.2))));
        assert_eq!(h.member.as_deref(), Some("linux-arm64/helm"));
        assert!(download(ToolId::Docker, "v1", "amd64", None).is_none());
    }

    #[test]
    fn checksum_files_in_both_published_shapes() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_sha256(&hex).as_deref(), Some(hex.as_str()));
        assert_eq!(
            parse_sha256(&format!("{}  kind-linux-amd64\n", hex.to_uppercase())).as_deref(),
            Some(hex.as_str())
        );
        assert_eq!(parse_sha256("<html>404</html>"), None);
        assert_eq!(parse_sha256(""), None);
    }

    #[test]
    fn pull_failures_that_mean_offline() {
        assert!(is_unreachable_pull("Error response from daemon: Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host"));
        assert!(is_unreachable_pull("Error response from daemon: pull access denied for slipway-local/kind-node, repository does not exist or may require 'docker login'"));
        assert!(!is_unreachable_pull(
            "failed to register layer: write /var/lib/docker/x: no space left on device"
        ));
    }

    #[test]
    fn recipes_are_embedded_whole_and_hashed_by_content() {
        assert!(TOOLCHAIN.files[0].1.contains("build_kubectl"));
        assert_eq!(NODE_IMAGE.files.len(), 9);
        assert_eq!(MINIKUBE.all_files().count(), 6 + 9);
        assert!(NODE_IMAGE.files.iter().all(|(_, t)| !t.is_empty()));
        assert_eq!(TOOLCHAIN.hash().len(), 12);
        assert_ne!(TOOLCHAIN.hash(), NODE_IMAGE.hash());
        let c = build(ToolId::Helm, "v3.22.0", Path::new("/c")).unwrap();
        assert_eq!(c.args[1], "helm3");
        assert_eq!(c.env["SLIPWAY_HELM3_VERSION"], "v3.22.0");
        assert!(c.args[0].starts_with("/c/recipes/toolchain-"));
        let mk = build(ToolId::Minikube, "v1.38.1", Path::new("/c")).unwrap();
        assert!(mk.args[0].contains("/c/recipes/minikube-"), "{:?}", mk.args);
        assert_eq!(mk.args[1], "build");
        assert_eq!(mk.env["SLIPWAY_MINIKUBE_VERSION"], "v1.38.1");
        assert!(build(ToolId::Docker, "v1", Path::new("/c")).is_none());
    }
}
