//! Tier 2: images built once and at the same time (issue #21). A pre-build several
//! images share runs once; independent images build at the same time, never more
//! than `BUILD_CONCURRENCY` at once; two images of one context never build at once.
//! The fake docker's builds take a fixed time (a rule's `sleep`) and the fakes log
//! when each started, which proves overlap and the bound.

use serde_json::{json, Value};

use crate::support::Sandbox;

/// Each fake `docker build` takes at least this long.
const BUILD_SECS: f64 = 1.5;

/// A sandbox whose pipeline has, besides the fixture's `web`, the images `names`
/// each in `context` (created with a Dockerfile), with `pre_build` if given.
fn with_images(s: &Sandbox, images: &[(&str, &str, Option<&str>)]) {
    let mut text = String::new();
    for (name, context, pre_build) in images {
        let dir = s.project.join(context);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), format!("FROM scratch\n# {name}\n")).unwrap();
        std::fs::write(dir.join("main.txt"), *name).unwrap();
        text.push_str(&format!("\n[images.{name}]\ncontext = {context:?}\n"));
        if let Some(cmd) = pre_build {
            text.push_str(&format!(
                "[images.{name}.pre_build]\ncommand = [\"sh\", \"-c\", {cmd:?}]\n"
            ));
        }
    }
    s.append_config(&text);
    s.rule(json!({"tool": "docker", "match": ["build", "--tag"], "sleep": BUILD_SECS, "then_simulate": true}));
}

/// When each `docker build` started, by image tag's repository, in start order.
fn build_starts(s: &Sandbox) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = s
        .calls()
        .iter()
        .filter(|c| c["tool"] == "docker" && c["argv"][0] == "build")
        .map(|c| {
            let argv: Vec<&str> = c["argv"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let tag = argv[argv.iter().position(|a| *a == "--tag").unwrap() + 1];
            let repo = tag.split(':').next().unwrap().to_string();
            (repo, c["started"].as_f64().unwrap())
        })
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    v
}

fn build(s: &Sandbox) -> crate::support::Out {
    let o = s.run(&["build", "--output", "json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    o
}

/// Independent images (one context each) build at the same time, at most
/// BUILD_CONCURRENCY at once: of any BUILD_CONCURRENCY + 1 builds, two are in one
/// lane, so the later started at least a build's time after the earlier.
#[test]
fn independent_images_build_at_once_up_to_the_bound() {
    let n = slipway::plan::BUILD_CONCURRENCY;
    assert!(n >= 2, "a bound of {n} builds nothing at the same time");
    let s = Sandbox::new();
    let names: Vec<String> = (0..n).map(|i| format!("svc{i}")).collect();
    let images: Vec<(&str, &str, Option<&str>)> = names
        .iter()
        .map(|name| (name.as_str(), name.as_str(), None))
        .collect();
    with_images(&s, &images);
    build(&s);
    let starts = build_starts(&s);
    assert_eq!(starts.len(), n + 1, "{starts:?}");
    // The first BUILD_CONCURRENCY began together (each lasts BUILD_SECS)...
    assert!(
        starts[n - 1].1 - starts[0].1 < BUILD_SECS * 0.8,
        "the first {n} builds did not overlap: {starts:?}"
    );
    // ...and no more than that at once.
    for w in starts.windows(n + 1) {
        assert!(
            w[n].1 - w[0].1 >= BUILD_SECS * 0.95,
            "more than {n} builds at once: {starts:?}"
        );
    }
}

/// Two images of one build context never build at the same time, while an image of
/// another context builds beside them.
#[test]
fn one_context_builds_one_image_at_a_time() {
    let s = Sandbox::new();
    with_images(
        &s,
        &[
            ("api", "shared", None),
            ("worker", "./shared/", None),
            ("other", "other", None),
        ],
    );
    build(&s);
    let starts = build_starts(&s);
    let at = |repo: &str| starts.iter().find(|(r, _)| r == repo).unwrap().1;
    assert!(
        (at("api") - at("worker")).abs() >= BUILD_SECS * 0.95,
        "api and worker (one context) built at once: {starts:?}"
    );
    assert!(
        (at("api") - at("other")).abs() < BUILD_SECS * 0.8,
        "another context did not build beside them: {starts:?}"
    );
}

/// A pre-build two images share (the same command: one cargo workspace) runs once,
/// before either image builds; the plan says so; nothing changed, it is skipped.
#[test]
fn a_shared_pre_build_runs_once() {
    let s = Sandbox::new();
    let cmd = "echo ran >> prebuilds.log";
    with_images(
        &s,
        &[
            ("api", "svc/api", Some(cmd)),
            ("worker", "svc/worker", Some(cmd)),
        ],
    );
    let o = build(&s);
    let log = s.project.join("prebuilds.log");
    let ran = |log: &std::path::Path| {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(ran(&log), 1, "{}", o.all());
    let events: Vec<Value> = o
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step_started" && e["stage"] == "build")
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert_eq!(
        started
            .iter()
            .filter(|s| s.starts_with("pre-build/"))
            .count(),
        2,
        "the fixture's own pre-build and the shared one: {started:?}"
    );
    assert!(started.contains(&"pre-build/api"), "{started:?}");
    assert!(!started.contains(&"pre-build/worker"), "{started:?}");
    let plan = s.run(&["plan", "--job", "build"]);
    assert!(
        plan.stdout
            .contains("# pre-build api, worker (one step: the same command)"),
        "{}",
        plan.all()
    );
    // Nothing changed: every image of it is built, so the shared pre-build is skipped.
    let again = build(&s);
    assert_eq!(ran(&log), 1, "{}", again.all());
    assert!(
        again.stdout.contains("are already built"),
        "{}",
        again.stdout
    );
}
