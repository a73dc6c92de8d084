//! `slipway init` in a repository: Dockerfiles become images, Helm charts releases
//! (their image values set from the images, Secrets fed from variables), what the
//! charts render becomes smoke checks, the repository's scripts pick the cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::chart::{self, Chart, ImageKeys, Slot};
use super::draft::{label, var_name, Check, Draft, Entry, Image, Profile, Release, Secret, Smoke};
use super::manifests;
use super::Helm;

/// Directories never worth reading.
fn skipped(name: &str) -> bool {
    matches!(
        name,
        ".git" | "target" | "node_modules" | "vendor" | ".venv" | "venv" | "__pycache__"
    )
}

fn rel(root: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(root).unwrap_or(p).to_path_buf()
}

fn shown(p: &Path) -> String {
    let s = p.display().to_string();
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

/// Files of the repository, `.gitignore`d ones left out (with or without git).
fn files(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ignore::WalkBuilder::new(root)
        .hidden(true)
        .git_ignore(true)
        .git_exclude(true)
        .require_git(false)
        .parents(false)
        .filter_entry(|e| !skipped(&e.file_name().to_string_lossy()))
        .build()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(|e| rel(root, e.path()))
        .collect();
    out.sort();
    out
}

/// Is `file` excluded by the `.dockerignore` of a directory above its own (a build
/// context that would not see it)?
fn docker_ignored(root: &Path, file: &Path) -> Option<PathBuf> {
    let dir = file.parent()?;
    for anc in dir.ancestors().skip(1) {
        let di = root.join(anc).join(".dockerignore");
        if !di.is_file() {
            continue;
        }
        let mut b = ignore::gitignore::GitignoreBuilder::new(root.join(anc));
        b.add(&di);
        let Ok(gi) = b.build() else { continue };
        if gi
            .matched_path_or_any_parents(root.join(file), false)
            .is_ignore()
        {
            return Some(anc.join(".dockerignore"));
        }
    }
    None
}

fn is_dockerfile(name: &str) -> bool {
    name == "Dockerfile"
        || name == "Containerfile"
        || name.starts_with("Dockerfile.")
        || name.ends_with(".Dockerfile")
        || name.ends_with(".dockerfile")
}

/// The stages of a Dockerfile: one per `FROM`, with its `AS` name if any.
fn stages(text: &str) -> Vec<Option<String>> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.first().is_none_or(|f| !f.eq_ignore_ascii_case("FROM")) {
                return None;
            }
            let named = w.len() >= 4 && w[w.len() - 2].eq_ignore_ascii_case("AS");
            Some(named.then(|| w[w.len() - 1].to_string()))
        })
        .collect()
}

fn unique(name: String, taken: &[String]) -> String {
    if !taken.contains(&name) {
        return name;
    }
    (2..)
        .map(|i| format!("{name}-{i}"))
        .find(|n| !taken.contains(n))
        .unwrap_or(name)
}

fn images(root: &Path, project: &str, all: &[PathBuf], d: &mut Draft) {
    let mut taken: Vec<String> = vec![];
    for f in all {
        let fname = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if !is_dockerfile(&fname) {
            continue;
        }
        if let Some(di) = docker_ignored(root, f) {
            d.decisions.push(format!(
                "skipped {}: {} excludes it",
                f.display(),
                di.display()
            ));
            continue;
        }
        let context = f.parent().unwrap_or(Path::new("")).to_path_buf();
        let variant = fname
            .strip_prefix("Dockerfile.")
            .or_else(|| fname.strip_suffix(".Dockerfile"))
            .or_else(|| fname.strip_suffix(".dockerfile"))
            .map(label)
            .filter(|s| !s.is_empty());
        let base = context
            .file_name()
            .map(|n| label(&n.to_string_lossy()))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| project.to_string());
        let name = unique(
            match &variant {
                Some(v) if context.as_os_str().is_empty() => v.clone(),
                Some(v) => format!("{base}-{v}"),
                None => base,
            },
            &taken,
        );
        taken.push(name.clone());
        let text = std::fs::read_to_string(root.join(f)).unwrap_or_default();
        let st = stages(&text);
        let mut img = Image {
            name: name.clone(),
            context: shown(&context),
            dockerfile: (fname != "Dockerfile").then(|| shown(f)),
            ..Image::default()
        };
        img.comments.push(format!("Built from {}.", f.display()));
        if st.len() > 1 {
            let names: Vec<String> = st.iter().flatten().cloned().collect();
            let last = st
                .last()
                .cloned()
                .flatten()
                .unwrap_or_else(|| "unnamed".into());
            img.comments.push(format!(
                "A multi-stage build: docker builds the last stage ({last}) unless a target is set."
            ));
            for s in st[..st.len() - 1].iter().flatten() {
                img.choices
                    .push(format!("target = {}", super::draft::quote(s)));
            }
            d.decisions.push(format!(
                "image {name}: {} has {} stages{}; it builds the last one ({last}){}",
                f.display(),
                st.len(),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", names.join(", "))
                },
                if img.choices.is_empty() {
                    String::new()
                } else {
                    format!("; a commented `target` in [images.{name}] picks another")
                }
            ));
        }
        d.decisions.push(format!(
            "image {name}: {} (context {})",
            f.display(),
            shown(&context)
        ));
        d.images.push(img);
    }
    if d.images.is_empty() {
        d.decisions
            .push("no Dockerfile found: no image is built (add [images.NAME] for one)".into());
    }
}

/// How well image `img` fits a slot: 0 none, higher better.
fn score(img: &str, slot: &Slot) -> u8 {
    let path = slot.path().to_ascii_lowercase();
    let parts: Vec<&str> = path.split('.').collect();
    let owner = label(&slot.owner);
    if parts.iter().any(|p| label(p) == img) {
        3
    } else if owner == img {
        2
    } else if owner.contains(img) || img.contains(&owner) {
        1
    } else {
        0
    }
}

fn set_image(r: &mut Release, slot: &Slot, img: &str, active: bool, why: &str) {
    let mut push = |k: &str, v: String, c: Option<String>| {
        r.set_string.push(if active {
            Entry::new(k, &v, c)
        } else {
            Entry::commented(k, &v, c)
        })
    };
    let note = Some(format!(
        "image {img} ({why}; found in {}; chart default {})",
        slot.found,
        if slot.default.is_empty() {
            "empty"
        } else {
            &slot.default
        }
    ));
    match &slot.keys {
        ImageKeys::Split {
            repository,
            tag,
            registry,
        } => {
            match tag {
                Some(t) => {
                    push(
                        &format!("{}{repository}", slot.prefix),
                        format!("${{images.{img}.repository}}"),
                        note,
                    );
                    push(
                        &format!("{}{t}", slot.prefix),
                        format!("${{images.{img}.tag}}"),
                        None,
                    );
                }
                None => push(
                    &format!("{}{repository}", slot.prefix),
                    format!("${{images.{img}.ref}}"),
                    note,
                ),
            }
            if let Some(reg) = registry {
                // The image is loaded into the nodes under its own name: no registry.
                push(
                    &format!("{}{reg}", slot.prefix),
                    String::new(),
                    Some(
                        "the image is loaded into the nodes as it is named: no registry prefix"
                            .into(),
                    ),
                );
            }
        }
        ImageKeys::Whole(p) => push(
            &format!("{}{p}", slot.prefix),
            format!("${{images.{img}.ref}}"),
            note,
        ),
    }
    if let Some(pp) = &slot.pull_policy {
        push(
            pp,
            "IfNotPresent".into(),
            Some(
                "the node already holds the image (kind load / minikube image load): never pull it"
                    .into(),
            ),
        );
    }
}

/// The charts that are releases: not a subchart of another one found.
fn charts(root: &Path, all: &[PathBuf]) -> Vec<Chart> {
    let found: Vec<Chart> = all
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "Chart.yaml"))
        .filter_map(|f| Chart::read(root, f.parent().unwrap_or(Path::new(""))))
        .collect();
    fn sub_dirs(c: &Chart, out: &mut Vec<PathBuf>) {
        for s in &c.subs {
            out.push(s.chart.dir.clone());
            sub_dirs(&s.chart, out);
        }
    }
    let mut subs = vec![];
    for c in &found {
        sub_dirs(c, &mut subs);
    }
    found
        .into_iter()
        .filter(|c| !subs.contains(&c.dir))
        .filter(|c| {
            // a chart unpacked in another chart's charts/ directory
            !c.dir.parent().is_some_and(|p| {
                p.file_name().is_some_and(|n| n == "charts")
                    && p.parent().is_some_and(|pp| {
                        pp.join("Chart.yaml").is_file()
                            || root.join(pp).join("Chart.yaml").is_file()
                    })
            })
        })
        .collect()
}

/// Which cluster the repository's scripts use.
fn cluster(root: &Path, all: &[PathBuf], d: &mut Draft) {
    let mut minikube = vec![];
    let mut kind = vec![];
    for f in all {
        let n = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let script = n.ends_with(".sh")
            || n.ends_with(".mk")
            || matches!(
                n.as_str(),
                "Makefile"
                    | "makefile"
                    | "justfile"
                    | "Justfile"
                    | "Taskfile.yml"
                    | "Taskfile.yaml"
                    | "Tiltfile"
            );
        if !script {
            continue;
        }
        let text = std::fs::read_to_string(root.join(f)).unwrap_or_default();
        if text.contains("minikube ") {
            minikube.push(f.display().to_string());
        }
        if text.contains("kind create") || text.contains("kind load") {
            kind.push(f.display().to_string());
        }
    }
    if !minikube.is_empty() && kind.is_empty() {
        d.provider = crate::config::Provider::Minikube.to_string();
        d.cluster_comments.push(format!(
            "minikube: the repository's scripts use it ({}).",
            minikube.join(", ")
        ));
        d.decisions.push(format!(
            "cluster: minikube profile {}, because the repository's scripts use minikube ({})",
            d.project,
            minikube.join(", ")
        ));
    } else {
        d.provider = crate::config::Provider::Kind.to_string();
        let why = if minikube.is_empty() {
            "no script here uses minikube".to_string()
        } else {
            format!(
                "scripts use both ({} / {})",
                kind.join(", "),
                minikube.join(", ")
            )
        };
        d.cluster_comments.push(format!(
            "kind (the default; {why}). provider = \"minikube\" uses a minikube profile instead."
        ));
        d.decisions
            .push(format!("cluster: kind cluster {}, {why}", d.project));
    }
}

/// The Draft for the repository at `root`.
pub fn detect(root: &Path, helm: Option<&Helm>) -> Draft {
    let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let project = abs
        .file_name()
        .map(|n| label(&n.to_string_lossy()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "app".into());
    let mut d = Draft {
        project: project.clone(),
        namespace: project.clone(),
        ..Draft::default()
    };
    let all = files(root);
    cluster(root, &all, &mut d);
    images(root, &project, &all, &mut d);
    let found = charts(root, &all);
    if found.is_empty() {
        d.decisions
            .push("no Helm chart found (no Chart.yaml): no release is deployed".into());
    }
    let helm = helm.filter(|h| h.available());
    if helm.is_none() && !found.is_empty() {
        d.decisions.push(
            "helm was not found: smoke checks are guessed from values.yaml and the templates instead of from what the chart renders; check them"
                .into(),
        );
    }
    let mut seen = Seen {
        image_names: d.images.iter().map(|i| i.name.clone()).collect(),
        ..Seen::default()
    };
    for c in &found {
        release(&mut d, c, helm, &mut seen);
    }
    for img in &seen.image_names {
        if !seen.used_images.contains(img) && !found.is_empty() {
            d.decisions.push(format!(
                "image {img}: no chart value takes it (it is built and loaded; set it in a release's set_string with ${{images.{img}.ref}})"
            ));
        }
    }
    d.profiles = seen.profiles.into_values().collect();
    d
}

/// What the releases found so far took: names, images, profiles, check names.
#[derive(Default)]
struct Seen {
    image_names: Vec<String>,
    used_images: Vec<String>,
    release_names: Vec<String>,
    profiles: BTreeMap<String, Profile>,
    check_names: Vec<String>,
}

/// The release for chart `c`: its images, Secrets, required values, smoke checks
/// and profiles, with a decision for each.
fn release(d: &mut Draft, c: &Chart, helm: Option<&Helm>, seen: &mut Seen) {
    let name = unique(
        {
            let l = label(&c.name);
            if l.is_empty() {
                "app".into()
            } else {
                l
            }
        },
        &seen.release_names,
    );
    seen.release_names.push(name.clone());
    let mut r = Release {
        name: name.clone(),
        chart: shown(&c.dir),
        ..Release::default()
    };
    let subs: Vec<String> = c.subs.iter().map(|s| s.key.clone()).collect();
    r.comments.push(if subs.is_empty() {
        format!("The chart {} ({}).", c.name, c.dir.display())
    } else {
        format!(
            "The chart {} ({}), with subcharts {}.",
            c.name,
            c.dir.display(),
            subs.join(", ")
        )
    });
    d.decisions.push(format!(
        "release {name}: chart {}{}",
        c.dir.display(),
        if subs.is_empty() {
            String::new()
        } else {
            format!(" (umbrella: {})", subs.join(", "))
        }
    ));
    images_for(d, &mut r, &name, c, seen);
    let (secret_names, loose, render_sets) = secret_refs(&mut r, &name, c);
    // Render: Services, ports, probes, and the keys pods read from each Secret.
    let rendered = helm.map(|h| h.render(c, &name, &d.namespace, &render_sets));
    secrets_from_vars(d, &mut r, &name, &secret_names, &rendered);
    unset_values(d, &mut r, &name, c, &loose, &rendered);
    smoke_checks(d, &name, c, &rendered, &mut seen.check_names);
    profiles_for(d, &mut seen.profiles, &name, c);
    d.releases.push(r);
}

/// Each of the chart's image values to the image that fits it best; the others as
/// commented choices.
fn images_for(d: &mut Draft, r: &mut Release, name: &str, c: &Chart, seen: &mut Seen) {
    let (image_names, used_images) = (&seen.image_names, &mut seen.used_images);
    // Images: each slot to the image that fits it best.
    let slots = chart::image_slots(c);
    let mut chosen: Vec<(usize, String, &'static str)> = vec![];
    for (i, s) in slots.iter().enumerate() {
        let best = image_names
            .iter()
            .map(|n| (score(n, s), n))
            .max_by_key(|(sc, _)| *sc);
        match best {
            Some((sc, n)) if sc > 0 => {
                let ties = image_names.iter().filter(|m| score(m, s) == sc).count();
                if ties == 1 {
                    chosen.push((i, n.clone(), "its name matches"));
                }
            }
            _ if image_names.len() == 1 && slots.len() == 1 => {
                chosen.push((
                    i,
                    image_names[0].clone(),
                    "the only image and the only image value",
                ));
            }
            _ => {}
        }
    }
    // One image, two candidate values of equal fit: the first is used, the others offered.
    let mut taken_by: BTreeMap<String, usize> = BTreeMap::new();
    for (i, img, why) in &chosen {
        let s = &slots[*i];
        if let Some(first) = taken_by.get(img) {
            let first = &slots[*first];
            if score(img, first) == score(img, s) {
                set_image(
                    r,
                    s,
                    img,
                    false,
                    "another candidate: uncomment to use it too",
                );
                d.decisions.push(format!(
                    "release {name}: image {img} could go to {} or {}: set {}, and wrote {} as a commented choice",
                    first.path(),
                    s.path(),
                    first.path(),
                    s.path()
                ));
                continue;
            }
        }
        taken_by.insert(img.clone(), *i);
        set_image(r, s, img, true, why);
        used_images.push(img.clone());
        d.decisions.push(format!(
            "release {name}: {} <- image {img} ({why}; the tag is the content tag), pull policy {}",
            s.path(),
            s.pull_policy
                .as_deref()
                .map_or("(no value for it)".to_string(), |p| format!(
                    "{p} = IfNotPresent"
                ))
        ));
    }
    for (i, s) in slots.iter().enumerate() {
        if chosen.iter().any(|(j, _, _)| *j == i) {
            continue;
        }
        let candidates: Vec<&String> = image_names
            .iter()
            .filter(|n| !used_images.contains(n))
            .collect();
        if candidates.is_empty() {
            d.decisions.push(format!(
                "release {name}: {} stays at the chart's default ({}): no image built here fits it",
                s.path(),
                s.default
            ));
        } else {
            for img in &candidates {
                set_image(
                    r,
                    s,
                    img,
                    false,
                    "cannot tell which image this is: uncomment one",
                );
            }
            d.decisions.push(format!(
                "release {name}: cannot tell which image {} (default {}) is: wrote a commented choice of {} in [releases.{name}.set_string]",
                s.path(),
                s.default,
                candidates.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
}

/// The Secrets the chart reads by name (slipway creates them from variables), the
/// credential values it cannot read from one, and what helm renders with.
#[allow(clippy::type_complexity)]
fn secret_refs(
    r: &mut Release,
    name: &str,
    c: &Chart,
) -> (
    Vec<(chart::SecretRef, String)>,
    Vec<String>,
    Vec<(String, String)>,
) {
    // Secrets the chart reads by name: slipway creates them from variables.
    let (refs, loose) = chart::secrets(c, "");
    // What helm renders with: each image reference as the image's name and tag `init`
    // (the content tag is known only when the image is built).
    let mut render_sets: Vec<(String, String)> = r
        .set_string
        .iter()
        .filter(|e| e.active)
        .map(|e| {
            let v = toml::from_str::<toml::Value>(&format!("v = {}", e.value))
                .ok()
                .and_then(|t| t.get("v").and_then(|v| v.as_str()).map(String::from))
                .unwrap_or_default();
            let v = match v
                .strip_prefix("${images.")
                .and_then(|x| x.strip_suffix('}'))
                .and_then(|x| x.rsplit_once('.'))
            {
                Some((img, "repository")) => img.to_string(),
                Some((_, "tag")) => "init".to_string(),
                Some((img, "ref")) => format!("{img}:init"),
                _ => v,
            };
            (e.key.clone(), v)
        })
        .collect();
    let multi = refs.len() > 1;
    let mut secret_names = vec![];
    for s in &refs {
        let parent = s.path.rsplit_once('.').map_or("", |(p, _)| p);
        let sname = if !s.default.is_empty() {
            s.default.clone()
        } else if multi && !parent.is_empty() {
            label(&format!("{name}-{}", parent.replace('.', "-")))
        } else {
            format!("{name}-credentials")
        };
        if s.default.is_empty() {
            r.set_string.push(Entry::new(
                &s.path,
                &sname,
                Some(format!(
                    "the chart reads the Secret named here; slipway creates {sname} below"
                )),
            ));
            render_sets.push((s.path.clone(), sname.clone()));
        }
        secret_names.push((s.clone(), sname));
    }
    (secret_names, loose, render_sets)
}

/// Each Secret's keys, from what the rendered pods read (or values.yaml), each from
/// a variable.
fn secrets_from_vars(
    d: &mut Draft,
    r: &mut Release,
    name: &str,
    secret_names: &[(chart::SecretRef, String)],
    rendered: &Option<Result<String, String>>,
) {
    for (s, sname) in secret_names {
        let mut keys: Vec<String> = vec![];
        let mut whole = false;
        if let Some(Ok(text)) = rendered {
            (keys, whole) = manifests::secret_keys(text, sname);
        }
        let how = if !keys.is_empty() {
            "the keys the rendered pods read"
        } else if !s.key_names.is_empty() {
            keys = s.key_names.clone();
            "the key names in values.yaml"
        } else if !s.credentials.is_empty() {
            keys = s
                .credentials
                .iter()
                .map(|c| c.rsplit('.').next().unwrap_or(c).to_string())
                .collect();
            "the credential values it replaces"
        } else {
            keys = vec!["password".into()];
            "a guess: nothing names its keys"
        };
        let whole_note = if whole {
            "; pods take the whole Secret (envFrom or a volume): add the keys your app reads"
        } else {
            ""
        };
        let mut secret = Secret {
            name: sname.clone(),
            comment: Some(format!(
                "Created in the release's namespace before helm runs, from variables (see .env.example); keys from {how}."
            )),
            keys: vec![],
        };
        for k in &keys {
            // RELEASE_KEY, or SECRET_KEY when another Secret of the pipeline has that key
            let mut v = var_name(&[name, k]);
            if d.vars.iter().any(|(n, _)| *n == v) {
                v = var_name(&[sname, k]);
            }
            d.add_var(&v, &format!("release {name}: key {k} of Secret {sname}"));
            secret.keys.push((k.clone(), v));
        }
        d.decisions.push(format!(
            "release {name}: {} names a Secret: slipway creates {sname} with {} from variables {} (keys from {how}{whole_note}); never a literal value",
            s.path,
            keys.join(", "),
            secret.keys.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(", ")
        ));
        r.secrets.push(secret);
    }
}

/// Credentials the chart cannot read from a Secret, and values it requires without a
/// default: commented lines, or variables to set.
fn unset_values(
    d: &mut Draft,
    r: &mut Release,
    name: &str,
    c: &Chart,
    loose: &[String],
    rendered: &Option<Result<String, String>>,
) {
    for l in loose {
        r.set_string.push(Entry::commented(
            l,
            "",
            Some(format!(
                "{l} holds a credential and the chart has no existingSecret for it: slipway passes no\nsecret on helm's command line. Put it in a values file kept out of git and add it to `values`."
            )),
        ));
        d.decisions.push(format!(
            "release {name}: {l} looks like a credential but the chart cannot read it from an existing Secret: left unset (a commented line says where to put it)"
        ));
    }
    // Values the chart requires and has no default for.
    let required = chart::required(c, "");
    match rendered {
        Some(Err(e)) => {
            let first = e
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string();
            d.decisions.push(format!(
                "release {name}: helm template with the chart's defaults failed: {first}"
            ));
            if !required.is_empty() {
                for p in &required {
                    let v = format!("INIT_REQUIRED_{}", var_name(&[name, p]));
                    r.set_string.push(Entry::new(
                        p,
                        &format!("${{{v}}}"),
                        Some(format!("the chart requires {p} and has no default: set {v} (or replace this value)")),
                    ));
                    d.add_var(
                        &v,
                        &format!("release {name}: the value {p} the chart requires"),
                    );
                    d.decisions.push(format!(
                        "release {name}: the chart requires {p} and has no default: `plan` points at its line in [releases.{name}.set_string] until {v} is set"
                    ));
                }
            }
        }
        None if !required.is_empty() => {
            for p in &required {
                r.set_string.push(Entry::commented(
                    p,
                    "",
                    Some(format!(
                        "the chart may require {p} (no default; helm could not be asked)"
                    )),
                ));
            }
        }
        _ => {}
    }
}

/// The release's smoke checks: from the Services and probes it renders, or guessed
/// from values.yaml without helm.
fn smoke_checks(
    d: &mut Draft,
    name: &str,
    c: &Chart,
    rendered: &Option<Result<String, String>>,
    check_names: &mut Vec<String>,
) {
    // Smoke checks.
    let mut push_check = |d: &mut Draft, base: String, comments: Vec<String>, check: Check| {
        let n = unique(base, check_names);
        check_names.push(n.clone());
        d.smoke.push(Smoke {
            name: n,
            comments,
            release: name.to_string(),
            check,
        });
    };
    match rendered {
        Some(Ok(text)) => {
            let targets = manifests::targets(text);
            if targets.is_empty() {
                d.decisions.push(format!(
                    "release {name}: it renders no Service: no HTTP smoke check"
                ));
            }
            let mut kubectl_done: Vec<String> = vec![];
            for t in &targets {
                let several = targets.iter().filter(|x| x.service == t.service).count() > 1;
                let base = if several {
                    label(&format!("{}-{}", t.service, t.port))
                } else {
                    label(&t.service)
                };
                match (&t.path, &t.workload) {
                    (Some(path), w) => {
                        push_check(
                            d,
                            base.clone(),
                            vec![format!(
                                "Service {} port {}: the HTTP path of {}'s probe.",
                                t.service,
                                t.port,
                                w.as_deref().unwrap_or("its pods")
                            )],
                            Check::Http {
                                service: t.service.clone(),
                                port: t.port,
                                path: path.clone(),
                            },
                        );
                        d.decisions.push(format!(
                            "smoke {base}: GET {path} on Service {} port {} (the container's probe)",
                            t.service, t.port
                        ));
                    }
                    (None, Some(w)) if !kubectl_done.contains(w) => {
                        kubectl_done.push(w.clone());
                        let condition = w
                            .starts_with("deployment/")
                            .then(|| "Available".to_string());
                        push_check(
                            d,
                            label(&w.replace('/', "-")),
                            vec![format!(
                                "Service {} port {} has no HTTP probe behind it: {w} must be {}.",
                                t.service,
                                t.port,
                                condition.as_deref().unwrap_or("there")
                            )],
                            Check::Kubectl {
                                resource: w.clone(),
                                condition: condition.clone(),
                            },
                        );
                        d.decisions.push(format!(
                            "smoke: Service {} port {} has no HTTP probe: checks {w} instead of guessing a path",
                            t.service, t.port
                        ));
                    }
                    _ => {}
                }
            }
        }
        Some(Err(_)) => {}
        None => {
            if let Some((port, path)) = chart::guess_service(c) {
                // helm's usual fullname: the release name when it contains the chart's.
                let svc = if name.contains(&c.name) {
                    name.to_string()
                } else {
                    label(&format!("{name}-{}", c.name))
                };
                let check = match &path {
                    Some(p) => Check::Http {
                        service: svc.clone(),
                        port,
                        path: p.clone(),
                    },
                    None => Check::Kubectl {
                        resource: format!("deployment/{svc}"),
                        condition: Some("Available".into()),
                    },
                };
                push_check(
                    d,
                    svc.clone(),
                    vec!["Guessed from values.yaml without helm: check the Service name, port and path.".into()],
                    check,
                );
                d.decisions.push(format!(
                    "smoke {svc}: guessed Service {svc} port {port}{} from values.yaml (helm was not found)",
                    path.map(|p| format!(" path {p}")).unwrap_or_default()
                ));
            }
        }
    }
}

/// The chart's values files for other environments, offered as profiles.
fn profiles_for(d: &mut Draft, profiles: &mut BTreeMap<String, Profile>, name: &str, c: &Chart) {
    // Values files for other environments: offered as profiles.
    for (p, file) in &c.extra_values {
        let prof = profiles.entry(p.clone()).or_insert_with(|| Profile {
            name: p.clone(),
            description: format!("with the charts' values.{p}.yaml"),
            ..Profile::default()
        });
        prof.lines.push((
            format!("releases.{}.values", super::draft::key(name)),
            super::draft::array(&[shown(file)]),
        ));
        d.decisions.push(format!(
            "profile {p}: release {name} with {} (`--profile {p}`)",
            file.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stages() {
        assert_eq!(
            super::stages("FROM rust AS build\nRUN x\nFROM scratch as run\nFROM scratch\n"),
            vec![Some("build".to_string()), Some("run".to_string()), None]
        );
    }
}
