//! `cargo xtask gen-fixture --services N --out DIR`: a monorepo of N services, for
//! the forty-services benchmark and tests (issue #24). Nothing of it is committed:
//! it is written into DIR (a temporary directory by default).
//!
//! What it holds:
//! - one workspace build: the sample's static binary (`services/sample/bin/sample`,
//!   built with `scripts/build-static.sh` when missing), hard-linked into every
//!   service's build context, so N images share one binary layer;
//! - a few shared sources: three Dockerfile variants (`api`, `edge`, `batch`), each
//!   image built from one of them with its own `service.txt`, so one service's
//!   change rebuilds only its image;
//! - one chart (a copy of `helm/sample`), N releases of it with one small pod each
//!   (10m CPU, 16Mi memory requested: 40 pods fit a 2-CPU machine);
//! - `needs` forming a DAG of three layers (with N ≥ 3): a quarter of the services
//!   are bases, half need one or two bases, the rest need one or two of the middle;
//! - a smoke check per service (its Deployment Available);
//! - `skaffold.yaml`: the same images and releases for Skaffold, its build and helm
//!   concurrency unbounded and the same `dependsOn`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct Args {
    /// How many services
    #[arg(long, default_value_t = 40)]
    pub services: usize,
    /// Where to write it (default: a new temporary directory)
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The kind cluster the pipeline deploys to
    #[arg(long, default_value = "slipway-forty")]
    pub cluster: String,
    /// The sample's static binary (default: services/sample/bin/sample, built when
    /// missing)
    #[arg(long)]
    pub binary: Option<PathBuf>,
}

/// The Dockerfile variants the images are built from ("a few shared sources").
pub const SOURCES: [&str; 3] = ["api", "edge", "batch"];

/// A generated service: its name, layer and the services it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub layer: usize,
    pub needs: Vec<String>,
}

/// Service `i`'s name (`svc01` …).
pub fn name(i: usize) -> String {
    format!("svc{:02}", i + 1)
}

/// The DAG: with n ≥ 3, layer 0 is the first quarter (at least one), layer 1 the
/// next half (at least one), layer 2 the rest (at least one). Each service after
/// layer 0 needs one or two services of the layer before it.
pub fn services(n: usize) -> Vec<Service> {
    let (l0, l1) = match n {
        0 => (0, 0),
        1 => (1, 0),
        2 => (1, 1),
        _ => {
            let l0 = n.div_ceil(4).max(1);
            let l1 = (n / 2).clamp(1, n - l0 - 1);
            (l0, l1)
        }
    };
    let layer_of = |i: usize| {
        if i < l0 {
            0
        } else if i < l0 + l1 {
            1
        } else {
            2
        }
    };
    let range = |layer: usize| match layer {
        0 => 0..l0,
        1 => l0..l0 + l1,
        _ => l0 + l1..n,
    };
    (0..n)
        .map(|i| {
            let layer = layer_of(i);
            let needs = if layer == 0 {
                vec![]
            } else {
                let prev = range(layer - 1);
                let k = i - range(layer).start;
                let mut v = vec![name(prev.start + k % prev.len())];
                let second = name(prev.start + (k + 1) % prev.len());
                if !v.contains(&second) && k % 2 == 1 {
                    v.push(second);
                }
                v
            };
            Service {
                name: name(i),
                layer,
                needs,
            }
        })
        .collect()
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let out = match a.out {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("slipway-forty-")
            .tempdir()?
            .keep(),
    };
    let binary = match a.binary {
        Some(b) => b,
        None => sample_binary()?,
    };
    generate(&out, a.services, &a.cluster, &binary)?;
    println!("{}", out.display());
    Ok(())
}

/// The sample's static binary, built when missing.
pub fn sample_binary() -> anyhow::Result<PathBuf> {
    let root = crate::root();
    let bin = root.join("services/sample/bin/sample");
    if !bin.is_file() {
        let sh = xshell::Shell::new()?;
        sh.change_dir(&root);
        xshell::cmd!(
            sh,
            "bash scripts/build-static.sh sample services/sample/bin/sample"
        )
        .run()?;
    }
    Ok(bin)
}

/// Write the fixture into `out` (created; an existing fixture there is replaced).
pub fn generate(out: &Path, n: usize, cluster: &str, binary: &Path) -> anyhow::Result<()> {
    if n == 0 {
        bail!("--services must be at least 1");
    }
    std::fs::create_dir_all(out)?;
    for stale in ["services", "chart"] {
        let _ = std::fs::remove_dir_all(out.join(stale));
    }
    let svcs = services(n);
    // The chart: a copy of the sample's.
    copy_dir(&crate::root().join("helm/sample"), &out.join("chart"))?;
    let mut toml = format!(
        "# Generated by `cargo xtask gen-fixture --services {n}`: {n} services, one chart,\n\
         # `needs` in three layers. Do not edit; generate again.\n\
         [project]\nname = \"forty\"\nnamespace = \"forty\"\n\n\
         [cluster]\nprovider = \"kind\"\nname = \"{cluster}\"\n\n\
         [cluster.kind]\n\
         node_image = \"${{SLIPWAY_KIND_NODE_IMAGE:-slipway-local/kind-node:v1.34.4}}\"\n\
         disable_default_cni = true\n\n\
         [timeouts]\ncluster = \"15m\"\ndeploy = \"20m\"\n\n\
         [groups]\nbases = [{bases}]\n\n",
        bases = svcs
            .iter()
            .filter(|s| s.layer == 0)
            .map(|s| format!("\"{}\"", s.name))
            .collect::<Vec<_>>()
            .join(", "),
    );
    for (i, s) in svcs.iter().enumerate() {
        let source = SOURCES[i % SOURCES.len()];
        let ctx = out.join("services").join(&s.name);
        std::fs::create_dir_all(&ctx)?;
        std::fs::hard_link(binary, ctx.join("sample"))
            .or_else(|_| std::fs::copy(binary, ctx.join("sample")).map(|_| ()))
            .with_context(|| format!("copying {}", binary.display()))?;
        std::fs::write(ctx.join("Dockerfile"), dockerfile(source))?;
        std::fs::write(ctx.join("service.txt"), format!("{}\n", s.name))?;
        let _ = writeln!(
            toml,
            "[images.{n}]\nrepository = \"forty/{n}\"\ncontext = \"services/{n}\"\n\n\
             [releases.{n}]\nchart = \"chart\"\ntimeout = \"5m\"\nneeds = [{needs}]\n\n\
             [releases.{n}.set]\nreplicaCount = \"1\"\n\"shutdown.delaySeconds\" = \"0\"\n\n\
             [releases.{n}.set_string]\n\
             \"image.repository\" = \"${{images.{n}.repository}}\"\n\
             \"image.tag\" = \"${{images.{n}.tag}}\"\n\
             \"image.pullPolicy\" = \"Never\"\n\
             fullnameOverride = \"{n}\"\n\
             \"config.greeting\" = \"hello from {n}\"\n\
             \"resources.requests.cpu\" = \"10m\"\n\
             \"resources.requests.memory\" = \"16Mi\"\n\
             \"resources.limits.memory\" = \"48Mi\"\n\n\
             [smoke.{n}]\ntype = \"kubectl\"\nrelease = \"{n}\"\nresource = \"deployment/{n}\"\n\
             condition = \"Available\"\ndeadline = \"60s\"\n",
            n = s.name,
            needs = s
                .needs
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    std::fs::write(out.join("pipeline.toml"), toml)?;
    std::fs::write(out.join("skaffold.yaml"), skaffold_yaml(&svcs))?;
    Ok(())
}

fn dockerfile(source: &str) -> String {
    format!(
        "# Shared source `{source}`: the workspace's one binary, and this service's note.\n\
         FROM scratch\nCOPY sample /sample\nCOPY service.txt /service.txt\n\
         LABEL dev.slipway.forty.source=\"{source}\"\n\
         USER 65532:65532\nENV PORT=8080\nEXPOSE 8080\nENTRYPOINT [\"/sample\"]\n"
    )
}

/// Skaffold's configuration for the same fixture, at its best: builds and helm
/// installs unbounded (`concurrency: 0`), each release after those it depends on.
pub fn skaffold_yaml(svcs: &[Service]) -> String {
    let mut artifacts = String::new();
    let mut releases = String::new();
    for s in svcs {
        let _ = write!(
            artifacts,
            "    - image: forty/{n}\n      context: services/{n}\n      docker:\n        dockerfile: Dockerfile\n",
            n = s.name
        );
        let key = format!("forty_{}", s.name);
        let _ = write!(
            releases,
            "      - name: {n}-skaffold\n        chartPath: chart\n        namespace: forty-skaffold\n        createNamespace: true\n        skipBuildDependencies: true\n",
            n = s.name
        );
        if !s.needs.is_empty() {
            let deps: Vec<String> = s.needs.iter().map(|d| format!("{d}-skaffold")).collect();
            let _ = writeln!(releases, "        dependsOn: [{}]", deps.join(", "));
        }
        let _ = write!(
            releases,
            "        setValueTemplates:\n          image.repository: \"{{{{.IMAGE_REPO_{key}}}}}\"\n          image.tag: \"{{{{.IMAGE_TAG_{key}}}}}\"\n        setValues:\n          image.pullPolicy: Never\n          fullnameOverride: {n}\n          config.greeting: hello from {n}\n          replicaCount: 1\n          shutdown.delaySeconds: 0\n          resources.requests.cpu: 10m\n          resources.requests.memory: 16Mi\n          resources.limits.memory: 48Mi\n",
            n = s.name
        );
    }
    format!(
        "apiVersion: skaffold/v4beta13\nkind: Config\nbuild:\n  tagPolicy:\n    inputDigest: {{}}\n  local:\n    push: false\n    useDockerCLI: true\n    useBuildkit: false\n    concurrency: 0\n  artifacts:\n{artifacts}deploy:\n  statusCheck: true\n  helm:\n    concurrency: 0\n    releases:\n{releases}"
    )
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_services_make_three_layers_and_a_dag() {
        let s = services(40);
        assert_eq!(s.len(), 40);
        let layers: std::collections::BTreeSet<usize> = s.iter().map(|s| s.layer).collect();
        assert_eq!(layers.into_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
        for x in &s {
            assert_eq!(x.needs.is_empty(), x.layer == 0, "{x:?}");
            for d in &x.needs {
                let dep = s.iter().find(|y| &y.name == d).unwrap();
                assert_eq!(dep.layer + 1, x.layer, "{x:?} needs {d}");
            }
        }
        assert!(services(3).iter().any(|s| s.layer == 2));
        assert_eq!(services(1)[0].needs, Vec::<String>::new());
    }
}
