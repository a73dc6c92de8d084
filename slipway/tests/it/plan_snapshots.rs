//! Tier 1: the plan for the repo's own pipeline.toml, per profile, is exactly the
//! commands expected (`plan --verbose`: every command in full).

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::repo;
use std::time::{Duration, UNIX_EPOCH};

use slipway::config::{self, LoadOptions, Vars};
use slipway::model::Job;
use slipway::plan::{self, PlanOptions};

fn plan_text(file: &Path, profile: Option<&str>, job: Job) -> String {
    let vars = Vars::new(BTreeMap::new(), BTreeMap::new());
    let p = config::load(&LoadOptions {
        file: file.to_path_buf(),
        profile: profile.map(String::from),
        vars: Some(vars),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let opts = PlanOptions {
        now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        ..PlanOptions::new(job)
    };
    // Every command, in full: what `plan --verbose` prints (the default text is in
    // what_a_person_sees.rs).
    plan::build(&p, &opts).unwrap().to_text_verbose()
}

/// Content tags and deploy digests depend on the sample's sources, cache paths on the
/// user, release URLs on the machine: masked by insta's own filters, everything else
/// is compared byte for byte.
macro_rules! assert_plan {
    ($text:expr) => {
        insta::with_settings!({filters => vec![
            (r"\bc-[0-9a-f]{12}\b", "<content-tag>"),
            (r"digest [0-9a-f]{16}\b", "digest <deploy-digest>"),
            // slipway's cache lives under the user's HOME (or XDG_CACHE_HOME).
            (r"[^\s'=]*/slipway/(toolchain|recipes|docker|downloads)\b", "<cache>/$1"),
            (r"\b(toolchain|kind-node-image|minikube|registry)-[0-9a-f]{12}\b", "$1-<recipe>"),
            // minikube's docker driver needs --force as root only.
            (r"(minikube start [^\n]*) --force( |\n)", "$1$2"),
            (r"SLIPWAY_CACHE=\S+", "SLIPWAY_CACHE=<cache>"),
            (r"linux([-/])(amd64|arm64)\b", "linux$1<arch>"),
        ]}, {
            insta::assert_snapshot!($text);
        })
    };
}
pub(crate) use assert_plan;

#[test]
fn local_kind() {
    assert_plan!(plan_text(
        &repo().join("pipeline.toml"),
        Some("local-kind"),
        Job::DeployLocal
    ));
}

#[test]
fn local_minikube() {
    assert_plan!(plan_text(
        &repo().join("pipeline.toml"),
        Some("local-minikube"),
        Job::DeployLocal
    ));
}

#[test]
fn ci() {
    assert_plan!(plan_text(
        &repo().join("pipeline.toml"),
        Some("ci"),
        Job::DeployLocal
    ));
}

#[test]
fn remote_deploy() {
    assert_plan!(
        plan_text(&repo().join("pipeline.toml"), Some("remote"), Job::Load)
            + &plan_text(&repo().join("pipeline.toml"), Some("remote"), Job::Deploy)
    );
}

/// kind with `delivery = "registry"`: the registry is wired in (unless advertised),
/// images are pushed, not loaded.
#[test]
fn local_kind_through_a_registry() {
    assert_plan!(plan_text(
        &repo().join("pipeline.toml"),
        Some("local-kind-registry"),
        Job::Load
    ));
}

/// A registry login: `docker login` with the password on stdin before the pushes,
/// a pull Secret of type dockerconfigjson with the deploy.
#[test]
fn remote_with_a_registry_login() {
    assert_plan!(
        plan_text(
            &repo().join("pipeline.toml"),
            Some("e2e-remote-auth"),
            Job::Load
        ) + &plan_text(
            &repo().join("pipeline.toml"),
            Some("e2e-remote-auth"),
            Job::Deploy
        )
    );
}

#[test]
fn a_registry_password_is_in_no_plan() {
    let vars = Vars::new(
        BTreeMap::from([(
            "SLIPWAY_E2E_REGISTRY_PASSWORD".into(),
            "canary-registry-pw".into(),
        )]),
        BTreeMap::new(),
    );
    let p = config::load(&LoadOptions {
        file: repo().join("pipeline.toml"),
        profile: Some("e2e-remote-auth".into()),
        vars: Some(vars),
    })
    .unwrap();
    for job in [Job::Load, Job::Deploy] {
        let plan = plan::build(&p, &PlanOptions::new(job)).unwrap();
        let json = serde_json::to_string(&plan).unwrap();
        assert!(
            json.contains("SLIPWAY_E2E_REGISTRY_PASSWORD"),
            "the plan names the variable"
        );
        assert!(!json.contains("canary-registry-pw"));
        assert!(!plan.to_text().contains("canary-registry-pw"));
    }
}

#[test]
fn multi_service_example() {
    assert_plan!(plan_text(
        &repo().join("examples/multi/pipeline.toml"),
        None,
        Job::DeployLocal
    ));
}

/// The todo chatbot: four images, one umbrella release (`helm dependency build`), a
/// `during_rollout` check (its Service read, route and `kubectl proxy`).
#[test]
fn todo_chatbot_example() {
    assert_plan!(plan_text(
        &repo().join("examples/todo-chatbot/pipeline.toml"),
        Some("e2e"),
        Job::DeployLocal
    ));
}

/// agentsmith in production: the prod values overlay instead of the local one, images
/// pushed to the team's registry, `--set-file` for the config.
#[test]
fn agentsmith_example_in_production() {
    assert_plan!(plan_text(
        &repo().join("examples/agentsmith/pipeline.toml"),
        Some("prod"),
        Job::Deploy
    ));
}

/// `dev`: deploy-local's steps, then what it watches (each path with the images
/// and releases it affects) and what it keeps running between rounds.
#[test]
fn dev_on_the_multi_service_example() {
    let text = plan_text(&repo().join("examples/multi/pipeline.toml"), None, Job::Dev);
    let dev = &text[text.find("## dev:").expect("a dev section")..];
    assert_plan!(dev.to_string());
}

#[test]
fn json_plan_has_argv_and_never_a_secret_value() {
    let vars = Vars::new(
        BTreeMap::from([("SAMPLE_API_TOKEN".into(), "canary-plan-value".into())]),
        BTreeMap::new(),
    );
    let p = config::load(&LoadOptions {
        file: repo().join("pipeline.toml"),
        profile: None,
        vars: Some(vars),
    })
    .unwrap();
    let plan = plan::build(&p, &PlanOptions::new(Job::DeployLocal)).unwrap();
    let json = serde_json::to_string(&plan).unwrap();
    assert!(!json.contains("canary-plan-value"));
    assert!(!plan.to_text().contains("canary-plan-value"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let helm = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "helm/sample")
        .unwrap();
    assert_eq!(helm["action"]["cmd"]["program"], "helm");
    assert_eq!(helm["action"]["cmd"]["args"][0], "upgrade");
    assert_eq!(helm["skip_if"]["type"], "release_current");
}

#[test]
fn content_tag_is_stable_and_follows_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(root.join("app/main.txt"), "one").unwrap();
    std::fs::write(
        root.join("pipeline.toml"),
        "[project]\nname = \"t\"\n[images.app]\ncontext = \"app\"\n",
    )
    .unwrap();
    let tag = || {
        let p = config::load(&LoadOptions {
            file: root.join("pipeline.toml"),
            profile: None,
            vars: Some(Vars::default()),
        })
        .unwrap();
        plan::build(&p, &PlanOptions::new(Job::Build))
            .unwrap()
            .images[0]
            .tag
            .clone()
    };
    let first = tag();
    assert!(first.starts_with("c-") && first.len() == 14, "{first}");
    assert_eq!(tag(), first, "unchanged inputs give the same tag");
    std::fs::write(root.join("app/main.txt"), "two").unwrap();
    assert_ne!(tag(), first, "a changed input changes the tag");
}

/// `create = false`: the cluster is only checked (at the context in use), never
/// created.
#[test]
fn a_cluster_slipway_may_not_create_is_only_checked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("pipeline.toml"),
        "[project]\nname = \"t\"\n[cluster]\nname = \"dev\"\ncreate = false\n",
    )
    .unwrap();
    let p = config::load(&LoadOptions {
        file: root.join("pipeline.toml"),
        profile: None,
        vars: Some(Vars::default()),
    })
    .unwrap();
    let text = plan::build(&p, &PlanOptions::new(Job::Load))
        .unwrap()
        .to_text();
    assert!(!text.contains("kind create"), "{text}");
    assert!(
        text.contains("kubectl --context kind-dev get --raw /readyz"),
        "{text}"
    );
}

/// `needs` puts releases in waves: each after what it needs, as early as it can;
/// independent releases share a wave (and upgrade at the same time); a needed release
/// is waited for before the next wave; `down` goes backwards.
#[test]
fn releases_in_waves() {
    let dir = tempfile::tempdir().unwrap();
    let chart = repo().join("helm/sample");
    let rel = |name: &str, needs: &str| {
        format!(
            "[releases.{name}]\nchart = {:?}\nneeds = [{needs}]\n",
            chart.display().to_string()
        )
    };
    std::fs::write(
        dir.path().join("pipeline.toml"),
        format!(
            "[project]\nname = \"t\"\n{}{}{}{}",
            rel("web", "\"api\", \"worker\""),
            rel("api", "\"db\""),
            rel("worker", "\"db\""),
            rel("db", "")
        ),
    )
    .unwrap();
    let p = config::load(&LoadOptions {
        file: dir.path().join("pipeline.toml"),
        profile: None,
        vars: Some(Vars::default()),
    })
    .unwrap();
    let waves: Vec<Vec<&str>> = p
        .release_waves()
        .iter()
        .map(|w| w.iter().map(|r| r.name.as_str()).collect())
        .collect();
    assert_eq!(waves, vec![vec!["db"], vec!["api", "worker"], vec!["web"]]);
    let plan = plan::build(&p, &PlanOptions::new(Job::Deploy)).unwrap();
    let deploy: Vec<(String, u32, String)> = plan
        .steps
        .iter()
        .filter(|s| s.stage == slipway::model::Stage::Deploy)
        .map(|s| (s.id.clone(), s.wave, s.group.clone().unwrap_or_default()))
        .collect();
    let ids: Vec<&str> = deploy.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "capacity",
            "gate/db",
            "helm/db",
            "ready/db",
            "gate/api",
            "helm/api",
            "ready/api",
            "gate/worker",
            "helm/worker",
            "ready/worker",
            "gate/web",
            "helm/web"
        ]
    );
    let wave_of = |id: &str| deploy.iter().find(|(i, _, _)| i == id).unwrap().1;
    assert_eq!(
        (
            wave_of("helm/db"),
            wave_of("helm/api"),
            wave_of("helm/worker"),
            wave_of("helm/web")
        ),
        (0, 1, 1, 2)
    );
    let group_of = |id: &str| deploy.iter().find(|(i, _, _)| i == id).unwrap().2.clone();
    assert_ne!(
        group_of("helm/api"),
        group_of("helm/worker"),
        "independent: at the same time"
    );
    assert!(plan
        .to_text()
        .contains("wave 3: after the releases it needs"));
    let down = plan::build(&p, &PlanOptions::new(Job::Down)).unwrap();
    let order: Vec<&str> = down
        .steps
        .iter()
        .filter_map(|s| s.id.strip_prefix("uninstall/"))
        .collect();
    assert_eq!(order, ["web", "worker", "api", "db"]);
}

/// The deploy digest of a chart with dependencies ignores what `helm dependency
/// build` writes (Chart.lock, charts/*.tgz: new bytes on every build), so a fresh
/// clone's second run does not upgrade; the local charts it depends on, and subcharts
/// unpacked under charts/, still count.
#[test]
fn dependency_build_output_is_not_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |p: &str, text: &str| {
        let p = d.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "umbrella/Chart.yaml",
        "apiVersion: v2\nname: u\nversion: 0.1.0\ndependencies:\n  - name: web\n    version: 0.1.0\n    repository: \"file://../web\"\n",
    );
    write(
        "web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    );
    write("web/templates/cm.yaml", "kind: ConfigMap\n");
    write(
        "pipeline.toml",
        "[project]\nname = \"t\"\n[releases.u]\nchart = \"umbrella\"\n",
    );
    let digest = || {
        let p = config::load(&LoadOptions {
            file: d.join("pipeline.toml"),
            profile: None,
            vars: Some(Vars::default()),
        })
        .unwrap();
        let plan = plan::build(&p, &PlanOptions::new(Job::Deploy)).unwrap();
        let text = plan.to_text();
        let at = text
            .find("--description=slipway digest ")
            .expect("an upgrade");
        text[at..].split_whitespace().nth(2).unwrap().to_string()
    };
    let before = digest();
    write("umbrella/Chart.lock", "generated: 2026-12-04T00:00:00Z\n");
    write(
        "umbrella/charts/web-0.1.0.tgz",
        "archive bytes, first build",
    );
    assert_eq!(digest(), before, "the first dependency build");
    write(
        "umbrella/charts/web-0.1.0.tgz",
        "archive bytes, second build",
    );
    assert_eq!(digest(), before, "a rebuilt archive");
    write("web/templates/cm.yaml", "kind: ConfigMap\ndata: {a: b}\n");
    let changed = digest();
    assert_ne!(changed, before, "a change in the local chart it depends on");
    write(
        "umbrella/charts/vendored/Chart.yaml",
        "apiVersion: v2\nname: vendored\n",
    );
    assert_ne!(digest(), changed, "a subchart unpacked under charts/");
}
