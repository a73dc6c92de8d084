//! `slipway init --from skaffold.yaml`: a Skaffold v2 configuration (schema
//! `skaffold/v2*`..`v4*`) as a pipeline. What has no slipway equivalent is listed with
//! the reason, never dropped silently.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::chart::{at, normalize, yaml_docs};
use super::draft::{array, label, quote, Check, Draft, Entry, Image, Profile, Release, Smoke};
use crate::model::Error;

fn st(v: &Value, p: &str) -> Option<String> {
    at(v, p).and_then(Value::as_str).map(String::from)
}

fn arr<'a>(v: &'a Value, p: &str) -> Vec<&'a Value> {
    at(v, p)
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// A scalar as helm's `--set` would get it.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// Skaffold's env-var form of an image name (`IMAGE_REPO_<this>`).
fn sanitized(image: &str) -> String {
    image
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

struct Cx<'a> {
    root: PathBuf,
    /// Relative to the pipeline's root: the skaffold file's directory.
    base: PathBuf,
    /// (skaffold image, slipway image name)
    images: Vec<(String, String)>,
    d: &'a mut Draft,
}

impl Cx<'_> {
    fn path(&self, p: &str) -> String {
        let j = normalize(&self.base.join(p));
        let s = j.display().to_string();
        if s.is_empty() {
            ".".into()
        } else {
            s
        }
    }

    fn unmapped(&mut self, what: String) {
        if !self.d.unmapped.contains(&what) {
            self.d.unmapped.push(what);
        }
    }

    /// A Skaffold value template as a slipway string, or None when it uses what
    /// slipway has no equivalent for.
    fn template(&self, t: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = t;
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let end = after.find("}}")?;
            let inner = after[..end].trim().trim_start_matches('.').trim();
            let mapped = self.images.iter().find_map(|(sk, name)| {
                let s = sanitized(sk);
                match inner {
                    x if x == format!("IMAGE_REPO_{s}")
                        || x == format!("IMAGE_REPO_NO_DOMAIN_{s}") =>
                    {
                        Some(format!("${{images.{name}.repository}}"))
                    }
                    x if x == format!("IMAGE_TAG_{s}") => Some(format!("${{images.{name}.tag}}")),
                    x if x == format!("IMAGE_FULLY_QUALIFIED_{s}") => {
                        Some(format!("${{images.{name}.ref}}"))
                    }
                    x if x == format!("IMAGE_DIGEST_{s}") => None,
                    _ => None,
                }
            });
            match mapped {
                Some(m) => out.push_str(&m),
                None if inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !inner.starts_with("IMAGE_") =>
                {
                    out.push_str(&format!("${{{inner}:-}}"));
                }
                None => return None,
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Some(out)
    }

    fn artifact(&mut self, a: &Value) {
        let Some(image) = st(a, "image") else { return };
        let name = {
            let l = label(image.rsplit('/').next().unwrap_or(&image));
            let taken: Vec<String> = self.d.images.iter().map(|i| i.name.clone()).collect();
            if taken.contains(&l) {
                label(&image)
            } else {
                l
            }
        };
        let context = st(a, "context").unwrap_or_else(|| ".".into());
        let ctx = self.path(&context);
        for (kind, why) in [
            ("jib", "Jib builds from Maven/Gradle without a Dockerfile; slipway builds images with docker build"),
            ("bazel", "Bazel builds the image itself; slipway builds images with docker build"),
            ("buildpacks", "Cloud Native Buildpacks build without a Dockerfile; slipway builds images with docker build"),
            ("ko", "ko builds Go images without a Dockerfile; slipway builds images with docker build"),
            ("kaniko", "kaniko builds in the cluster; slipway builds with the local docker"),
        ] {
            if a.get(kind).is_some() {
                self.unmapped(format!("artifact {image}: {kind}: {why}"));
                return;
            }
        }
        if a.get("sync").is_some() {
            self.unmapped(format!(
                "artifact {image}: sync rules: slipway rebuilds and redeploys on change (`slipway dev`) instead of copying files into running containers"
            ));
        }
        if !self.root.join(&ctx).is_dir() {
            self.unmapped(format!(
                "artifact {image}: its context {ctx} does not exist here: no image"
            ));
            return;
        }
        let mut img = Image {
            name: name.clone(),
            repository: Some(image.clone()).filter(|r| crate::model::names::is_repository(r)),
            context: ctx.clone(),
            ..Image::default()
        };
        img.comments.push(format!("Skaffold artifact {image}."));
        let built = match a.get("custom") {
            Some(c) => self.custom_build(&mut img, c, &image, &context, &ctx),
            None => self.docker_build(&mut img, a, &image, &context, &ctx),
        };
        if !built {
            return;
        }
        self.images.push((image, name));
        self.d.images.push(img);
    }

    /// A custom build: its command as the image's pre_build, before `docker build` of
    /// the context's Dockerfile; `false` when there is none to build.
    fn custom_build(
        &mut self,
        img: &mut Image,
        c: &Value,
        image: &str,
        context: &str,
        ctx: &str,
    ) -> bool {
        let name = img.name.clone();
        let cmd = st(c, "buildCommand");
        let dockerfile = Path::new(&ctx).join("Dockerfile");
        match cmd {
            Some(cmd) if self.root.join(&dockerfile).is_file() => {
                img.pre_build = Some(vec!["sh".into(), "-c".into(), cmd.clone()]);
                img.comments.push(format!(
                    "Skaffold built it with a custom command ({cmd}): slipway runs it before `docker build` of {}; check that it does not build or push the image itself.",
                    dockerfile.display()
                ));
                self.d.decisions.push(format!(
                    "image {name}: custom build `{cmd}` runs as pre_build, then docker build of {}",
                    dockerfile.display()
                ));
                for p in arr(c, "dependencies.paths") {
                    if let Some(p) = p.as_str() {
                        let input = self.path(&format!("{context}/{p}"));
                        if self.root.join(&input).exists() {
                            img.inputs.push(input);
                        } else {
                            self.unmapped(format!(
                                "artifact {image}: dependency {p}: not a path in the repository (a glob or missing), so the content tag hashes the context instead"
                            ));
                        }
                    }
                }
            }
            _ => {
                self.unmapped(format!(
                    "artifact {image}: custom build without a Dockerfile in {ctx}: slipway needs a Dockerfile to build the image"
                ));
                return false;
            }
        }
        true
    }

    /// A docker build: Dockerfile, target, build args; `false` without a Dockerfile.
    fn docker_build(
        &mut self,
        img: &mut Image,
        a: &Value,
        image: &str,
        context: &str,
        ctx: &str,
    ) -> bool {
        let name = img.name.clone();
        let d = a.get("docker").cloned().unwrap_or(Value::Null);
        if let Some(df) = st(&d, "dockerfile") {
            if df != "Dockerfile" {
                img.dockerfile = Some(self.path(&format!("{context}/{df}")));
            }
        }
        let df = img
            .dockerfile
            .clone()
            .unwrap_or_else(|| format!("{ctx}/Dockerfile"));
        if !self.root.join(&df).is_file() {
            self.unmapped(format!(
                "artifact {image}: {df} does not exist: slipway needs a Dockerfile to build the image"
            ));
            return false;
        }
        img.target = st(&d, "target");
        if let Some(m) = d.get("buildArgs").and_then(Value::as_object) {
            for (k, v) in m {
                let v = scalar(v);
                match self.template(&v) {
                    Some(t) if !t.contains("${images.") => img.build_args.push((k.clone(), t)),
                    _ => self.unmapped(format!(
                        "artifact {image}: build arg {k}={v}: a template slipway cannot evaluate"
                    )),
                }
            }
        }
        for k in ["cacheFrom", "network", "secrets", "ssh", "noCache"] {
            if d.get(k).is_some() {
                self.unmapped(format!(
                    "artifact {image}: docker.{k}: no [images] key for it"
                ));
            }
        }
        self.d.decisions.push(format!(
            "image {name}: artifact {image} (context {ctx}{})",
            img.dockerfile
                .as_deref()
                .map(|f| format!(", {f}"))
                .unwrap_or_default()
        ));
        true
    }

    fn release(&mut self, r: &Value, statuscheck_deadline: Option<u64>) -> Option<Release> {
        let rname = st(r, "name")?;
        let name = label(&rname);
        let Some(chart) = st(r, "chartPath") else {
            self.unmapped(format!(
                "helm release {rname}: remoteChart {} : slipway deploys a chart directory in the repository (`helm pull --untar` it and point chart at it)",
                st(r, "remoteChart").unwrap_or_default()
            ));
            return None;
        };
        let mut out = Release {
            name: name.clone(),
            chart: self.path(&chart),
            namespace: st(r, "namespace"),
            ..Release::default()
        };
        if name != rname {
            self.unmapped(format!(
                "helm release {rname}: renamed {name} (a release name must be a DNS label)"
            ));
        }
        out.comments.push(format!("Skaffold helm release {rname}."));
        self.release_values(&mut out, r, &rname, &name);
        if r.get("wait").and_then(Value::as_bool) == Some(true) {
            out.wait = true;
        }
        if let Some(s) = statuscheck_deadline {
            out.timeout = Some(format!("{s}s"));
        }
        self.unmapped_release_keys(r, &rname);
        self.d.decisions.push(format!(
            "release {name}: chart {}{}",
            out.chart,
            if out.values.is_empty() {
                String::new()
            } else {
                format!(", values {}", out.values.join(", "))
            }
        ));
        Some(out)
    }

    /// A release's values: files, `setValues`, templates, `artifactOverrides`.
    fn release_values(&mut self, out: &mut Release, r: &Value, rname: &str, name: &str) {
        for v in arr(r, "valuesFiles") {
            if let Some(v) = v.as_str() {
                out.values.push(self.path(v));
            }
        }
        if let Some(m) = r.get("setValues").and_then(Value::as_object) {
            for (k, v) in m {
                out.set.push(Entry::new(k, &scalar(v), None));
            }
        }
        if let Some(m) = r.get("setValueTemplates").and_then(Value::as_object) {
            for (k, v) in m {
                let v = scalar(v);
                match self.template(&v) {
                    Some(t) => out.set_string.push(Entry::new(k, &t, None)),
                    None => {
                        out.set_string.push(Entry::commented(
                            k,
                            &v,
                            Some("a Skaffold template slipway cannot evaluate".into()),
                        ));
                        self.unmapped(format!(
                            "helm release {rname}: setValueTemplates {k}={v}: a template slipway cannot evaluate (written commented)"
                        ));
                    }
                }
            }
        }
        if let Some(m) = r.get("setFiles").and_then(Value::as_object) {
            for (k, v) in m {
                self.unmapped(format!(
                    "helm release {rname}: setFiles {k}={}: use set_file in [releases.{name}]",
                    scalar(v)
                ));
            }
        }
        // Skaffold v2's artifactOverrides: a value set to an image's full reference.
        if let Some(m) = r.get("artifactOverrides").and_then(Value::as_object) {
            for (k, v) in m {
                let v = scalar(v);
                match self.images.iter().find(|(sk, _)| *sk == v) {
                    Some((_, n)) => {
                        out.set_string
                            .push(Entry::new(k, &format!("${{images.{n}.ref}}"), None))
                    }
                    None => self.unmapped(format!(
                        "helm release {rname}: artifactOverrides {k}={v}: no artifact builds {v}"
                    )),
                }
            }
        }
    }

    /// What a release says that slipway does not do: each listed, with why.
    fn unmapped_release_keys(&mut self, r: &Value, rname: &str) {
        for (k, why) in [
            (
                "repo",
                "chart repositories: slipway deploys a chart directory",
            ),
            (
                "version",
                "chart versions: slipway deploys a chart directory",
            ),
            (
                "useHelmSecrets",
                "helm-secrets: feed secrets from variables in [releases.NAME.secrets]",
            ),
            (
                "recreatePods",
                "slipway rolls pods when their spec changes (--force redeploys)",
            ),
            (
                "skipTests",
                "slipway does not run helm tests; its smoke checks run instead",
            ),
            (
                "packaged",
                "slipway deploys the chart directory, unpackaged",
            ),
            (
                "overrides",
                "inline values: put them in a values file and list it in values",
            ),
        ] {
            if r.get(k).is_some() {
                self.unmapped(format!("helm release {rname}: {k}: {why}"));
            }
        }
        // Anything else the release says: listed, not dropped.
        const KNOWN: &[&str] = &[
            "name",
            "chartPath",
            "remoteChart",
            "namespace",
            "valuesFiles",
            "setValues",
            "setValueTemplates",
            "setFiles",
            "artifactOverrides",
            "wait",
            "repo",
            "version",
            "useHelmSecrets",
            "recreatePods",
            "skipTests",
            "packaged",
            "overrides",
            "imageStrategy",
            "createNamespace",
            "upgradeOnChange",
        ];
        if let Some(m) = r.as_object() {
            for k in m.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
                let why = match k.as_str() {
                    "skipBuildDependencies" => "slipway runs `helm dependency build` whenever Chart.yaml declares dependencies",
                    _ => "no slipway equivalent",
                };
                self.unmapped(format!("helm release {rname}: {k}: {why}"));
            }
        }
    }

    /// A config's build and deploy sections (the base one or a profile's).
    fn deploy(&mut self, doc: &Value, what: &str) -> Vec<Release> {
        let mut out = vec![];
        let deadline = at(doc, "deploy.statusCheckDeadlineSeconds").and_then(Value::as_u64);
        if at(doc, "deploy.statusCheck").and_then(Value::as_bool) == Some(false) {
            self.d.decisions.push(format!(
                "{what}: deploy.statusCheck is false in Skaffold; slipway always tracks the rollout (its failures name the cause)"
            ));
        }
        if let Some(s) = deadline {
            self.d.decisions.push(format!(
                "{what}: statusCheckDeadlineSeconds {s} -> each release's timeout = \"{s}s\""
            ));
        }
        for sect in ["deploy.helm.releases", "manifests.helm.releases"] {
            for r in arr(doc, sect) {
                if let Some(r) = self.release(r, deadline) {
                    out.push(r);
                }
            }
        }
        for (k, why) in [
            ("deploy.kubectl", "kubectl deploys of raw manifests: slipway deploys Helm charts (wrap the manifests in a chart's templates/)"),
            ("manifests.rawYaml", "raw manifests: slipway deploys Helm charts (wrap them in a chart's templates/)"),
            ("deploy.kustomize", "kustomize: slipway deploys Helm charts"),
            ("manifests.kustomize", "kustomize: slipway deploys Helm charts"),
            ("deploy.kpt", "kpt: slipway deploys Helm charts"),
            ("manifests.kpt", "kpt: slipway deploys Helm charts"),
            ("deploy.cloudrun", "Cloud Run: slipway deploys to a Kubernetes cluster"),
            ("deploy.docker", "docker deploys: slipway deploys to a Kubernetes cluster"),
            ("deploy.helm.hooks", "deploy hooks: slipway has none (use a pre_build command or a job smoke check)"),
            ("deploy.helm.flags", "extra helm flags: slipway sets helm's flags from [releases] keys"),
            ("deploy.kubeContext", "kube contexts: slipway uses its own cluster (--kube-context overrides)"),
            ("deploy.tolerateFailuresUntilDeadline", "slipway fails fast on a crash-looping or unschedulable pod"),
            ("manifests.hooks", "render hooks: slipway has none"),
            ("manifests.transform", "manifest transforms: slipway has none"),
            ("manifests.validate", "manifest validation: slipway renders with helm template before deploying"),
        ] {
            if at(doc, k).is_some_and(|v| !v.is_null()) {
                self.unmapped(format!("{what}: {k}: {why}"));
            }
        }
        out
    }
}

/// Convert `file` (relative to `root`, where pipeline.toml goes).
pub fn convert(root: &Path, file: &Path) -> Result<Draft, Error> {
    let abs = root.join(file);
    let text = std::fs::read_to_string(&abs)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", abs.display())))?;
    let docs = yaml_docs(&text);
    if docs.is_empty() {
        return Err(Error::usage(format!(
            "{}: no Skaffold configuration in it",
            file.display()
        )));
    }
    for d in &docs {
        let v = st(d, "apiVersion").unwrap_or_default();
        if !v.starts_with("skaffold/") {
            return Err(Error::usage(format!(
                "{}: apiVersion {v:?} is not a Skaffold configuration (skaffold/v2…v4…)",
                file.display()
            )));
        }
    }
    let project = project_name(&docs, &abs, root);
    let mut d = Draft {
        project: project.clone(),
        namespace: project.clone(),
        provider: crate::config::Provider::Kind.to_string(),
        ..Draft::default()
    };
    d.cluster_comments.push(
        "kind, slipway's default (Skaffold deploys to the current kube context; provider = \"minikube\" or \"existing\" are the others)."
            .into(),
    );
    let mut cx = Cx {
        root: root.to_path_buf(),
        base: file.parent().map(Path::to_path_buf).unwrap_or_default(),
        images: vec![],
        d: &mut d,
    };
    let mut releases = vec![];
    let mut profiles = vec![];
    let mut forwards = vec![];
    for doc in &docs {
        cx.document(doc, &mut releases, &mut forwards, &mut profiles);
    }
    // Port-forwards: each Service port becomes an HTTP smoke check.
    cx.port_forwards(&forwards, &releases);
    // Profiles: what they change in releases; everything else is listed.
    for p in &profiles {
        cx.profile(p, &releases);
    }
    if releases.is_empty() {
        cx.unmapped(
            "deploy: no helm release with a local chart: nothing for slipway to deploy".into(),
        );
    }
    d.releases = releases;
    // ${VAR} in templates: listed in .env.example.
    template_vars(&mut d);
    Ok(d)
}

/// The project's name: the first config's `metadata.name`, else the directory's.
fn project_name(docs: &[Value], abs: &Path, root: &Path) -> String {
    docs.iter()
        .find_map(|d| st(d, "metadata.name"))
        .map(|n| label(&n))
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::canonicalize(abs.parent().unwrap_or(root))
                .ok()
                .and_then(|p| p.file_name().map(|n| label(&n.to_string_lossy())))
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "app".into())
}

/// `${VAR}` in the releases' templates: listed in .env.example.
fn template_vars(d: &mut Draft) {
    let mut vars = vec![];
    for r in &d.releases {
        for e in r.set_string.iter().filter(|e| e.active) {
            let mut rest = e.value.as_str();
            while let Some(i) = rest.find("${") {
                let after = &rest[i + 2..];
                let v: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !v.is_empty() && !after.starts_with("images.") {
                    vars.push((v, format!("release {}: {}", r.name, e.key)));
                }
                rest = after;
            }
        }
    }
    for (v, w) in vars {
        d.add_var(&v, &w);
    }
}

impl Cx<'_> {
    /// One configuration document: its build (artifacts) and deploy sections; its
    /// port-forwards and profiles are collected for later.
    fn document(
        &mut self,
        doc: &Value,
        releases: &mut Vec<Release>,
        forwards: &mut Vec<Value>,
        profiles: &mut Vec<Value>,
    ) {
        for k in ["requires"] {
            if doc.get(k).is_some() {
                self.unmapped(format!(
                    "{k}: configurations imported from other files: run init --from on each and merge"
                ));
            }
        }
        for (k, why) in [
            ("test", "container structure tests: use smoke checks (type job runs a command in the cluster)"),
            ("verify", "verify containers: use a smoke check of type job"),
            ("customActions", "custom actions: slipway has none"),
        ] {
            if doc.get(k).is_some() {
                self.unmapped(format!("{k}: {why}"));
            }
        }
        if let Some(tp) = at(doc, "build.tagPolicy").and_then(Value::as_object) {
            let kinds: Vec<&String> = tp.keys().collect();
            self.d.decisions.push(format!(
                "build.tagPolicy {kinds:?}: slipway tags by content (tag_policy = \"content\"), so an unchanged image is not rebuilt"
            ));
        }
        for k in ["build.googleCloudBuild", "build.cluster"] {
            if at(doc, k).is_some() {
                self.unmapped(format!(
                    "{k}: remote builds: slipway builds with the local docker"
                ));
            }
        }
        for a in arr(doc, "build.artifacts") {
            self.artifact(a);
        }
        releases.extend(self.deploy(doc, "deploy"));
        for f in arr(doc, "portForward") {
            forwards.push(f.clone());
        }
        for p in arr(doc, "profiles") {
            profiles.push(p.clone());
        }
    }

    /// Port-forwards: each Service port becomes an HTTP smoke check.
    fn port_forwards(&mut self, forwards: &[Value], releases: &[Release]) {
        let release_names: Vec<String> = releases.iter().map(|r| r.name.clone()).collect();
        for f in forwards {
            let kind = st(f, "resourceType")
                .unwrap_or_default()
                .to_ascii_lowercase();
            let rname = st(f, "resourceName").unwrap_or_default();
            let port = f.get("port").and_then(Value::as_u64);
            match (kind.as_str(), port) {
                ("service", Some(port)) if !release_names.is_empty() => {
                    let svc = self.template(&rname).unwrap_or(rname.clone());
                    if svc.contains("${") {
                        self.unmapped(format!("portForward service {rname}: a templated name"));
                        continue;
                    }
                    let release = release_names
                        .iter()
                        .find(|r| svc.contains(r.as_str()))
                        .unwrap_or(&release_names[0])
                        .clone();
                    let name = label(&format!("{svc}-{port}"));
                    self.d.smoke.push(Smoke {
                        name: name.clone(),
                        comments: vec![format!(
                            "Skaffold's portForward to service {svc} port {port}: GET / must answer 200 (set path to a health endpoint)."
                        )],
                        release,
                        check: Check::Http {
                            service: svc.clone(),
                            port: u16::try_from(port).unwrap_or(0),
                            path: "/".into(),
                        },
                    });
                    self.d.decisions.push(format!(
                        "smoke {name}: portForward service {svc}:{port} -> GET / (slipway port-forwards it for the check)"
                    ));
                }
                _ => self.unmapped(format!(
                    "portForward {kind}/{rname}: slipway's HTTP checks reach Services (and `slipway dev` forwards each Service)"
                )),
            }
        }
    }

    /// A profile: what it changes in releases; everything else is listed.
    fn profile(&mut self, p: &Value, releases: &[Release]) {
        let Some(pname) = st(p, "name") else { return };
        let mut prof = Profile {
            name: label(&pname),
            description: format!("Skaffold profile {pname}"),
            ..Profile::default()
        };
        if p.get("activation").is_some() {
            self.unmapped(format!(
                "profile {pname}: activation: slipway profiles are chosen with --profile or SLIPWAY_PROFILE"
            ));
        }
        if p.get("patches").is_some() {
            self.unmapped(format!(
                "profile {pname}: patches: JSON patches of the Skaffold config have no slipway form; edit [profiles.{}]",
                prof.name
            ));
        }
        if at(p, "build.artifacts").is_some() {
            self.unmapped(format!(
                "profile {pname}: build.artifacts: slipway profiles cannot add or replace images"
            ));
        }
        let before = self.d.decisions.len();
        for r in self.deploy(p, &format!("profile {pname}")) {
            let base = releases.iter().find(|b| b.name == r.name);
            let Some(_) = base else {
                self.unmapped(format!(
                    "profile {pname}: helm release {}: not in the base configuration (a profile cannot add a release)",
                    r.name
                ));
                continue;
            };
            let k = super::draft::key(&r.name);
            if !r.values.is_empty() {
                prof.lines
                    .push((format!("releases.{k}.values"), array(&r.values)));
            }
            for (table, es) in [("set", &r.set), ("set_string", &r.set_string)] {
                for e in es.iter().filter(|e| e.active) {
                    prof.lines.push((
                        format!("releases.{k}.{table}.{}", super::draft::key(&e.key)),
                        e.value.clone(),
                    ));
                }
            }
            if let Some(ns) = &r.namespace {
                prof.lines
                    .push((format!("releases.{k}.namespace"), quote(ns)));
            }
        }
        self.d.decisions.truncate(before);
        self.d.decisions.push(format!(
            "profile {}: from Skaffold profile {pname} ({} change(s))",
            prof.name,
            prof.lines.len()
        ));
        self.d.profiles.push(prof);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sanitizes_like_skaffold() {
        assert_eq!(
            super::sanitized("gcr.io/k8s-skaffold/app"),
            "gcr_io_k8s_skaffold_app"
        );
    }
}
