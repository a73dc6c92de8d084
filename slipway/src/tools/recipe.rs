//! slipway's own build recipes: shell scripts embedded at compile time (see
//! [`super::provision`] for when they run).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A shell recipe and the files it reads, embedded at compile time.
pub struct Recipe {
    pub name: &'static str,
    /// The script run with bash, relative to the recipe's directory.
    pub entry: &'static str,
    pub files: &'static [(&'static str, &'static str)],
    /// Another recipe whose files this one also carries (and runs).
    pub with: Option<&'static Recipe>,
    /// The Debian packages it needs: (the program that shows one is installed, the
    /// packages that bring it); installed with apt-get when allowed
    /// (`--install-packages`).
    pub packages: &'static [(&'static str, &'static [&'static str])],
}

impl Recipe {
    /// Every file: its own, then those of the recipe it carries.
    pub fn all_files(&self) -> impl Iterator<Item = &'static (&'static str, &'static str)> {
        self.files
            .iter()
            .chain(self.with.into_iter().flat_map(|r| r.files.iter()))
    }

    /// The first 12 hex digits of the SHA-256 of every file (name and content).
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        for (name, text) in self.all_files() {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(text.as_bytes());
        }
        format!("{:x}", h.finalize())[..12].to_string()
    }

    /// The directory the recipe is written to before it runs.
    pub fn dir(&self, cache: &Path) -> PathBuf {
        cache
            .join("recipes")
            .join(format!("{}-{}", self.name, self.hash()))
    }
}

macro_rules! recipe_file {
    ($p:literal) => {
        ($p, include_str!(concat!("../../recipes/", $p)))
    };
}

/// Builds kind, helm and kubectl from the Go module proxy.
pub static TOOLCHAIN: Recipe = Recipe {
    name: "toolchain",
    entry: "toolchain.sh",
    files: &[recipe_file!("toolchain.sh")],
    with: None,
    packages: &[],
};

/// Builds the offline kind node image `slipway-local/kind-node:<k8s>`.
pub static NODE_IMAGE: Recipe = Recipe {
    name: "kind-node-image",
    entry: "kind-node-image.sh",
    files: &[
        recipe_file!("kind-node-image.sh"),
        recipe_file!("kind-node/10-slipway-bridge.conflist"),
        recipe_file!("kind-node/12-slipway-cgroups.conf"),
        recipe_file!("kind-node/build-binaries.sh"),
        recipe_file!("kind-node/containerd-config.toml"),
        recipe_file!("kind-node/crictl"),
        recipe_file!("kind-node/default-storage.yaml"),
        recipe_file!("kind-node/pause.c"),
        recipe_file!("kind-node/runc-capfilter"),
    ],
    with: None,
    // gcc for pause, debootstrap for the rootfs.
    packages: &[
        ("gcc", &["gcc", "libc6-dev"]),
        ("debootstrap", &["debootstrap"]),
    ],
};

/// Builds minikube (and its storage-provisioner and a crictl) from the Go module proxy,
/// and its offline base image `slipway-local/minikube-base:<k8s>` on the kind node
/// image (whose recipe it carries).
pub static MINIKUBE: Recipe = Recipe {
    name: "minikube",
    entry: "minikube.sh",
    files: &[
        recipe_file!("minikube.sh"),
        recipe_file!("minikube/Dockerfile"),
        recipe_file!("minikube/Dockerfile.provisioner"),
        recipe_file!("minikube/crictl/go.mod"),
        recipe_file!("minikube/crictl/go.sum"),
        recipe_file!("minikube/crictl/main.go"),
    ],
    // The base image is built on the kind node image, which it builds if missing.
    with: Some(&NODE_IMAGE),
    // gcc for its cgo build; its image phase builds the kind node image when missing.
    packages: &[
        ("gcc", &["gcc", "libc6-dev"]),
        ("debootstrap", &["debootstrap"]),
    ],
};

/// A local registry (distribution v3 from the Go module proxy, in an image built
/// offline) run beside a kind cluster and wired into its nodes' containerd, advertised
/// with the KEP-1755 ConfigMap.
pub static REGISTRY: Recipe = Recipe {
    name: "registry",
    entry: "registry.sh",
    files: &[recipe_file!("registry.sh")],
    with: None,
    packages: &[],
};

/// The recipe a node image's build runs, by its name.
pub fn recipe_named(name: &str) -> Option<&'static Recipe> {
    [&TOOLCHAIN, &NODE_IMAGE, &MINIKUBE, &REGISTRY]
        .into_iter()
        .find(|r| r.name == name)
}
