//! `slipway init` (tier 2): synthetic repositories written here — one image and its
//! chart, several images and an umbrella chart, image values nested differently, a
//! chart that reads an existing Secret — and Skaffold configurations. Each result must
//! load and plan; init is stable, never overwrites without --force, and --dry-run
//! writes nothing. helm is the fake one: `helm template` answers with manifests the
//! test gives (a rule), or helm is taken off PATH for the fallback.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::{Out, Sandbox};

pub fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (p, text) in files {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text.replace("NAME", NAME)).unwrap();
    }
}

/// helm's usual fullname: the release's name, or RELEASE-CHART for a subchart.
const NAME: &str = "{{ if eq .Release.Name .Chart.Name }}{{ .Release.Name }}{{ else }}{{ .Release.Name }}-{{ .Chart.Name }}{{ end }}";

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: NAME
spec:
  replicas: 1
  selector:
    matchLabels: {app: "NAME"}
  template:
    metadata:
      labels: {app: "NAME"}
    spec:
      containers:
        - name: app
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          ports:
            - {name: http, containerPort: 8080}
          readinessProbe:
            httpGet: {path: /healthz, port: http}
"#;

const SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: NAME
spec:
  selector: {app: "NAME"}
  ports:
    - {port: 80, targetPort: http}
"#;

const VALUES: &str = "image:\n  repository: example/api\n  tag: \"1.0\"\n  pullPolicy: Always\n";

/// What `helm template NAME` renders for a Deployment + Service called NAME with a
/// readiness probe on /healthz (and, with `secret`, an env var from that Secret).
fn rendered(name: &str, secret: Option<(&str, &str)>) -> String {
    let env = secret.map_or(String::new(), |(s, k)| {
        format!("          env:\n            - name: TOKEN\n              valueFrom:\n                secretKeyRef: {{name: {s}, key: {k}}}\n")
    });
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {name}}}\n  ports:\n    - {{port: 80, targetPort: http}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: app\n          image: x\n          ports:\n            - {{name: http, containerPort: 8080}}\n          readinessProbe:\n            httpGet: {{path: /healthz, port: http}}\n{env}"
    )
}

fn repo(sb: &Sandbox, name: &str) -> PathBuf {
    let r = sb.dir.path().join(name);
    std::fs::create_dir_all(&r).unwrap();
    r
}

fn run_in(sb: &Sandbox, dir: &Path, args: &[&str]) -> Out {
    sb.run_in(dir, args)
}

/// init, then plan: both succeed; the pipeline's text.
fn init_and_plan(sb: &Sandbox, dir: &Path) -> (String, Out, Out) {
    let init = run_in(sb, dir, &["init"]);
    assert_eq!(init.code, 0, "init failed:\n{}", init.all());
    let text = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
    let plan = run_in(sb, dir, &["plan"]);
    assert_eq!(plan.code, 0, "plan of\n{text}\nfailed:\n{}", plan.all());
    (text, init, plan)
}

/// One image and its chart.
pub fn one_image_repo(root: &Path) {
    write_tree(
        root,
        &[
            ("api/Dockerfile", "FROM scratch\nCOPY api /api\n"),
            ("api/api", "binary"),
            (
                "deploy/api/Chart.yaml",
                "apiVersion: v2\nname: api\nversion: 0.1.0\n",
            ),
            ("deploy/api/values.yaml", VALUES),
            (
                "deploy/api/values.local.yaml",
                "image:\n  pullPolicy: Never\n",
            ),
            ("deploy/api/templates/deployment.yaml", DEPLOYMENT),
            ("deploy/api/templates/service.yaml", SERVICE),
            // Not images: ignored by git and by the root context's .dockerignore.
            (".gitignore", "scratch/\n"),
            ("scratch/Dockerfile", "FROM scratch\n"),
            (".dockerignore", "third_party\n"),
            ("third_party/tool/Dockerfile", "FROM scratch\n"),
        ],
    );
}

#[test]
fn one_image_and_its_chart() {
    let sb = Sandbox::new();
    let dir = repo(&sb, "shop");
    one_image_repo(&dir);
    sb.rule(json!({"tool": "helm", "match": ["template"], "stdout": rendered("api", None)}));
    let (text, init, plan) = init_and_plan(&sb, &dir);
    for want in [
        "[project]\nname = \"shop\"",
        "provider = \"kind\"",
        "[images.api]\ncontext = \"api\"",
        "[releases.api]\nchart = \"deploy/api\"",
        "\"image.repository\" = \"${images.api.repository}\"",
        "\"image.tag\" = \"${images.api.tag}\"",
        "\"image.pullPolicy\" = \"IfNotPresent\"",
        "[smoke.api]\nrelease = \"api\"\nservice = \"api\"\nport = 80\npath = \"/healthz\"",
        "[profiles.local]",
        "releases.api.values = [\"deploy/api/values.local.yaml\"]",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(
        !text.contains("scratch"),
        ".gitignore'd Dockerfile used:\n{text}"
    );
    assert!(
        !text.contains("third_party"),
        ".dockerignore'd Dockerfile used:\n{text}"
    );
    assert!(
        init.stderr
            .contains("skipped third_party/tool/Dockerfile: .dockerignore excludes it"),
        "{}",
        init.stderr
    );
    assert!(
        init.stderr
            .contains("smoke api: GET /healthz on Service api port 80"),
        "{}",
        init.stderr
    );
    // helm template ran through the executor, with the chart and the release name.
    assert!(
        sb.ran("helm template api deploy/api --namespace shop --set-string image.repository=api --set-string image.tag=init --set-string image.pullPolicy=IfNotPresent"),
        "{:?}",
        sb.argv_lines()
    );
    // The plan deploys the content-tagged image with those values.
    assert!(
        plan.stdout
            .contains("--set-string 'image.repository=api' --set-string 'image.tag=c-"),
        "{}",
        plan.stdout
    );
    assert!(plan
        .stdout
        .contains("--set-string 'image.pullPolicy=IfNotPresent'"));
    // The profile is valid too.
    let p = run_in(&sb, &dir, &["plan", "--profile", "local"]);
    assert_eq!(p.code, 0, "{}", p.all());
    assert!(
        p.stdout.contains("--values deploy/api/values.local.yaml"),
        "{}",
        p.stdout
    );
}

#[test]
fn init_is_stable_refuses_to_overwrite_and_dry_run_writes_nothing() {
    let sb = Sandbox::new();
    let dir = repo(&sb, "shop");
    one_image_repo(&dir);
    sb.rule(json!({"tool": "helm", "match": ["template"], "stdout": rendered("api", None)}));
    let dry = run_in(&sb, &dir, &["init", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.all());
    assert!(
        !dir.join("pipeline.toml").exists(),
        "--dry-run wrote the file"
    );
    assert!(dry.stdout.contains("[releases.api]"), "{}", dry.stdout);
    assert!(dry.stderr.contains("--dry-run: nothing written"));
    let first = run_in(&sb, &dir, &["init"]);
    assert_eq!(first.code, 0, "{}", first.all());
    let text = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
    assert_eq!(dry.stdout, text, "--dry-run prints what init writes");
    // Again: refused, the file untouched.
    std::fs::write(dir.join("pipeline.toml"), "# mine\n").unwrap();
    let again = run_in(&sb, &dir, &["init"]);
    assert_eq!(again.code, 2, "{}", again.all());
    assert!(
        again
            .stderr
            .contains("pipeline.toml already exists: slipway init does not overwrite"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("--force"));
    assert!(
        !again.stderr.contains("init: release"),
        "it read the repository before refusing:\n{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("pipeline.toml")).unwrap(),
        "# mine\n"
    );
    // --force: the same file as the first time.
    let forced = run_in(&sb, &dir, &["init", "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.all());
    assert_eq!(
        std::fs::read_to_string(dir.join("pipeline.toml")).unwrap(),
        text,
        "init is not stable"
    );
}

/// Two images, their charts, and an umbrella chart over them (file:// dependencies).
pub fn umbrella_repo(root: &Path) {
    write_tree(
        root,
        &[
            ("services/web/Dockerfile", "FROM scratch\nCOPY web /web\n"),
            ("services/worker/Dockerfile", "FROM scratch AS build\nFROM scratch\nCOPY worker /worker\n"),
            ("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n"),
            ("charts/web/values.yaml", VALUES),
            ("charts/web/templates/deployment.yaml", DEPLOYMENT),
            ("charts/web/templates/service.yaml", SERVICE),
            ("charts/worker/Chart.yaml", "apiVersion: v2\nname: worker\nversion: 0.1.0\n"),
            ("charts/worker/values.yaml", VALUES),
            ("charts/worker/templates/deployment.yaml", DEPLOYMENT),
            (
                "charts/shop/Chart.yaml",
                "apiVersion: v2\nname: shop\nversion: 0.1.0\ndependencies:\n  - name: web\n    version: 0.1.0\n    repository: file://../web\n  - name: worker\n    version: 0.1.0\n    repository: \"file://../worker\"\n",
            ),
            ("charts/shop/values.yaml", "web: {}\nworker: {}\n"),
            ("charts/shop/values.dev.yaml", "web:\n  image:\n    pullPolicy: Never\n"),
            ("scripts/up.sh", "#!/bin/sh\nminikube start\n"),
        ],
    );
}

#[test]
fn several_images_and_an_umbrella_chart() {
    let sb = Sandbox::new();
    let dir = repo(&sb, "shop");
    umbrella_repo(&dir);
    let both = format!(
        "{}{}",
        rendered("shop-web", None),
        rendered("shop-worker", None).replace("kind: Service", "kind: ConfigMap")
    );
    sb.rule(json!({"tool": "helm", "match": ["template"], "stdout": both}));
    let (text, init, plan) = init_and_plan(&sb, &dir);
    for want in [
        "provider = \"minikube\"",
        "[images.web]\ncontext = \"services/web\"",
        "[images.worker]\ncontext = \"services/worker\"",
        "# target = \"build\"",
        "[releases.shop]\nchart = \"charts/shop\"",
        "\"web.image.repository\" = \"${images.web.repository}\"",
        "\"web.image.tag\" = \"${images.web.tag}\"",
        "\"worker.image.repository\" = \"${images.worker.repository}\"",
        "\"worker.image.pullPolicy\" = \"IfNotPresent\"",
        "[smoke.shop-web]\nrelease = \"shop\"\nservice = \"shop-web\"\nport = 80\npath = \"/healthz\"",
        "[profiles.dev]",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // The subcharts are not releases of their own.
    assert!(
        !text.contains("[releases.web]") && !text.contains("[releases.worker]"),
        "{text}"
    );
    assert!(
        init.stderr.contains("umbrella: web, worker"),
        "{}",
        init.stderr
    );
    assert!(init.stderr.contains("scripts/up.sh"), "{}", init.stderr);
    assert!(
        sb.ran("helm dependency build charts/shop"),
        "{:?}",
        sb.argv_lines()
    );
    assert!(
        plan.stdout.contains("--set-string 'web.image.tag=c-"),
        "{}",
        plan.stdout
    );
}

/// Image values nested and named unlike `image.repository`.
pub fn nested_repo(root: &Path) {
    write_tree(
        root,
        &[
            ("Dockerfile", "FROM scratch\nCOPY app /app\n"),
            ("helm/Chart.yaml", "apiVersion: v2\nname: nested\nversion: 0.1.0\n"),
            (
                "helm/values.yaml",
                "app:\n  container:\n    img:\n      repo: example/nested\n      version: \"2\"\n    pull: Always\nservice:\n  port: 8080\n",
            ),
            (
                "helm/templates/deployment.yaml",
                &DEPLOYMENT
                    .replace(
                        "\"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"",
                        "\"{{ .Values.app.container.img.repo }}:{{ .Values.app.container.img.version }}\"",
                    )
                    .replace("{{ .Values.image.pullPolicy }}", "{{ .Values.app.container.pull }}"),
            ),
            ("helm/templates/service.yaml", &SERVICE.replace("port: 80,", "port: {{ .Values.service.port }},")),
        ],
    );
}

#[test]
fn image_values_nested_differently() {
    let sb = Sandbox::new();
    let dir = repo(&sb, "nested-app");
    nested_repo(&dir);
    sb.rule(json!({"tool": "helm", "match": ["template"], "stdout": rendered("nested", None)}));
    let (text, _, _) = init_and_plan(&sb, &dir);
    for want in [
        "[images.nested-app]\ncontext = \".\"",
        "\"app.container.img.repo\" = \"${images.nested-app.repository}\"",
        "\"app.container.img.version\" = \"${images.nested-app.tag}\"",
        "\"app.container.pull\" = \"IfNotPresent\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn without_helm_smoke_checks_are_guessed_from_values_and_said_so() {
    let mut sb = Sandbox::new();
    let dir = repo(&sb, "nested-app");
    nested_repo(&dir);
    sb.remove_tool("helm");
    // Only the sandbox's PATH: no real helm either.
    sb.set_env("PATH", &format!("{}:/nonexistent", sb.bin.display()));
    let init = run_in(&sb, &dir, &["init", "--dry-run"]);
    assert_eq!(init.code, 0, "{}", init.all());
    assert!(
        init.stderr.contains("helm was not found"),
        "{}",
        init.stderr
    );
    assert!(
        init.stdout.contains("[smoke.nested]\nrelease = \"nested\"\nservice = \"nested\"\nport = 8080\npath = \"/healthz\""),
        "{}",
        init.stdout
    );
}

/// A chart that reads its token from an existing Secret, and a credential it cannot.
pub fn secret_repo(root: &Path) {
    write_tree(
        root,
        &[
            ("Dockerfile", "FROM scratch\nCOPY app /app\n"),
            ("chart/Chart.yaml", "apiVersion: v2\nname: vault-app\nversion: 0.1.0\n"),
            (
                "chart/values.yaml",
                "image:\n  repository: example/app\n  tag: \"1\"\n  pullPolicy: Always\nauth:\n  existingSecret: \"\"\n  tokenKey: API_TOKEN\n  token: \"\"\ndb:\n  password: changeme\n",
            ),
            (
                "chart/templates/deployment.yaml",
                &DEPLOYMENT.replace(
                    "          readinessProbe:",
                    "          env:\n            - name: API_TOKEN\n              valueFrom:\n                secretKeyRef: {name: \"{{ .Values.auth.existingSecret }}\", key: \"{{ .Values.auth.tokenKey }}\"}\n          readinessProbe:",
                ),
            ),
            ("chart/templates/service.yaml", SERVICE),
        ],
    );
}

#[test]
fn a_value_naming_an_existing_secret_becomes_a_secret_fed_from_a_variable() {
    let sb = Sandbox::new();
    let dir = repo(&sb, "vault");
    secret_repo(&dir);
    sb.rule(json!({"tool": "helm", "match": ["template"], "stdout": rendered("vault-app", Some(("vault-app-credentials", "API_TOKEN")))}));
    let (text, init, plan) = init_and_plan(&sb, &dir);
    for want in [
        "\"auth.existingSecret\" = \"vault-app-credentials\"",
        "[releases.vault-app.secrets.vault-app-credentials]\nfrom_env = { API_TOKEN = \"VAULT_APP_API_TOKEN\" }",
        // The credential the chart cannot take from a Secret: offered, commented, empty.
        "# \"db.password\" = \"\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(
        !text.contains("changeme"),
        "a literal credential was copied:\n{text}"
    );
    // The Secret's key name and the credential it replaces are not loose credentials.
    assert!(!text.contains("\"auth.tokenKey\""), "{text}");
    assert!(!text.contains("\"auth.token\""), "{text}");
    let env = std::fs::read_to_string(dir.join(".env.example")).unwrap();
    assert!(env.contains("\nVAULT_APP_API_TOKEN=\n"), "{env}");
    // The repository's own .env.example is kept (without --force), and init says what it needs.
    std::fs::write(dir.join(".env.example"), "MINE=1\n").unwrap();
    std::fs::remove_file(dir.join("pipeline.toml")).unwrap();
    let again = run_in(&sb, &dir, &["init"]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(
        std::fs::read_to_string(dir.join(".env.example")).unwrap(),
        "MINE=1\n"
    );
    assert!(again.stderr.contains("kept the existing .env.example (--force replaces it); pipeline.toml reads VAULT_APP_API_TOKEN"), "{}", again.stderr);
    assert!(
        init.stderr
            .contains("keys from the keys the rendered pods read"),
        "{}",
        init.stderr
    );
    assert!(
        init.stderr.contains("db.password looks like a credential"),
        "{}",
        init.stderr
    );
    assert!(
        plan.stdout.contains("vault-app-credentials"),
        "{}",
        plan.stdout
    );
    // helm rendered with the Secret's name set.
    assert!(
        sb.ran("--set-string auth.existingSecret=vault-app-credentials"),
        "{:?}",
        sb.argv_lines()
    );
}

#[test]
fn a_value_the_chart_requires_is_a_placeholder_plan_points_at() {
    let sb = Sandbox::new();
    let dir = repo(&sb, "req");
    one_image_repo(&dir);
    write_tree(
        &dir,
        &[
            ("deploy/api/values.yaml", &format!("{VALUES}domain: \"\"\n")),
            ("deploy/api/templates/cm.yaml", "kind: ConfigMap\ndata:\n  d: {{ required \"domain is required\" .Values.domain }}\n"),
        ],
    );
    sb.rule(json!({"tool": "helm", "match": ["template"], "stderr": "Error: execution error at (api/templates/cm.yaml:3:6): domain is required\n", "exit": 1}));
    let init = run_in(&sb, &dir, &["init"]);
    assert_eq!(init.code, 0, "{}", init.all());
    assert!(
        init.stderr
            .contains("the chart requires domain and has no default"),
        "{}",
        init.stderr
    );
    let text = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
    let line = text
        .lines()
        .position(|l| l == "domain = \"${INIT_REQUIRED_API_DOMAIN}\"")
        .unwrap_or_else(|| panic!("no placeholder in\n{text}"))
        + 1;
    let plan = run_in(&sb, &dir, &["plan"]);
    assert_eq!(plan.code, 2, "{}", plan.all());
    assert!(
        plan.stderr.contains(&format!("pipeline.toml:{line}:")),
        "plan does not name line {line}:\n{}",
        plan.stderr
    );
    assert!(
        plan.stderr.contains("INIT_REQUIRED_API_DOMAIN"),
        "{}",
        plan.stderr
    );
}

const SKAFFOLD: &str = r#"apiVersion: skaffold/v4beta11
kind: Config
metadata:
  name: guestbook
build:
  tagPolicy:
    gitCommit: {}
  artifacts:
    - image: example.com/team/frontend
      context: frontend
      docker:
        dockerfile: Dockerfile.prod
        target: runtime
        buildArgs:
          MODE: prod
      sync:
        manual:
          - src: "static/**"
            dest: /app/static
    - image: backend
      context: backend
      custom:
        buildCommand: ./build.sh
        dependencies:
          paths: ["src"]
    - image: java-service
      jib: {}
manifests:
  rawYaml: ["k8s/extra.yaml"]
deploy:
  statusCheckDeadlineSeconds: 240
  helm:
    releases:
      - name: guestbook
        chartPath: charts/guestbook
        namespace: guests
        valuesFiles: ["charts/guestbook/values.yaml"]
        setValues:
          replicaCount: 2
          debug: true
        setValueTemplates:
          frontend.image.repository: "{{.IMAGE_REPO_example_com_team_frontend}}"
          frontend.image.tag: "{{.IMAGE_TAG_example_com_team_frontend}}"
          backend.image: "{{.IMAGE_FULLY_QUALIFIED_backend}}"
          greeting: "{{.GREETING}}"
          weird: "{{ .IMAGE_DIGEST_backend }}"
      - name: upstream
        remoteChart: oci://registry.example.com/charts/redis
  kustomize:
    paths: ["k8s"]
portForward:
  - resourceType: service
    resourceName: guestbook-frontend
    port: 8080
  - resourceType: deployment
    resourceName: backend
    port: 9000
profiles:
  - name: dev
    activation:
      - env: DEV=1
    deploy:
      helm:
        releases:
          - name: guestbook
            chartPath: charts/guestbook
            valuesFiles: ["charts/guestbook/values-dev.yaml"]
            setValues:
              replicaCount: 1
  - name: patched
    patches:
      - op: replace
        path: /build/artifacts/0/docker/dockerfile
        value: Dockerfile.dev
"#;

#[test]
fn skaffold_conversion_maps_what_it_can_and_lists_the_rest() {
    let sb = Sandbox::new();
    let dir = repo(&sb, "gb");
    write_tree(
        &dir,
        &[
            ("skaffold.yaml", SKAFFOLD),
            ("frontend/Dockerfile.prod", "FROM scratch AS runtime\n"),
            ("backend/Dockerfile", "FROM scratch\n"),
            ("backend/build.sh", "#!/bin/sh\n"),
            ("backend/src/main.go", "package main\n"),
            (
                "charts/guestbook/Chart.yaml",
                "apiVersion: v2\nname: guestbook\nversion: 0.1.0\n",
            ),
            ("charts/guestbook/values.yaml", "replicaCount: 1\n"),
            ("charts/guestbook/values-dev.yaml", "debug: true\n"),
            ("charts/guestbook/templates/cm.yaml", "kind: ConfigMap\n"),
        ],
    );
    let init = run_in(&sb, &dir, &["init", "--from", "skaffold.yaml"]);
    assert_eq!(init.code, 0, "{}", init.all());
    let text = std::fs::read_to_string(dir.join("pipeline.toml")).unwrap();
    for want in [
        "[project]\nname = \"guestbook\"",
        "[images.frontend]\nrepository = \"example.com/team/frontend\"\ncontext = \"frontend\"\ndockerfile = \"frontend/Dockerfile.prod\"\ntarget = \"runtime\"",
        "build_args = { MODE = \"prod\" }",
        "[images.backend.pre_build]\ncommand = [\"sh\", \"-c\", \"./build.sh\"]",
        "inputs = [\"backend/src\"]",
        "[releases.guestbook]\nchart = \"charts/guestbook\"\nnamespace = \"guests\"\nvalues = [\"charts/guestbook/values.yaml\"]\ntimeout = \"240s\"",
        "replicaCount = \"2\"",
        "debug = \"true\"",
        "\"frontend.image.repository\" = \"${images.frontend.repository}\"",
        "\"frontend.image.tag\" = \"${images.frontend.tag}\"",
        "\"backend.image\" = \"${images.backend.ref}\"",
        "greeting = \"${GREETING:-}\"",
        "# weird = ",
        "[smoke.guestbook-frontend-8080]\nrelease = \"guestbook\"\nservice = \"guestbook-frontend\"\nport = 8080",
        "[profiles.dev]",
        "releases.guestbook.values = [\"charts/guestbook/values-dev.yaml\"]",
        "releases.guestbook.set.replicaCount = \"1\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let unmapped: Vec<&str> = init
        .stderr
        .lines()
        .filter(|l| l.starts_with("init: not converted: "))
        .collect();
    for want in [
        "artifact java-service: jib",
        "artifact example.com/team/frontend: sync rules",
        "helm release upstream: remoteChart",
        "deploy: manifests.rawYaml",
        "deploy: deploy.kustomize",
        "portForward deployment/backend",
        "profile dev: activation",
        "profile patched: patches",
        "setValueTemplates weird=",
    ] {
        assert!(
            unmapped.iter().any(|l| l.contains(want)),
            "{want:?} not listed in\n{}",
            unmapped.join("\n")
        );
    }
    // The same list heads the file.
    assert!(text.contains("# Not converted (see `slipway init` output):\n#   - artifact example.com/team/frontend: sync rules"), "{text}");
    assert!(std::fs::read_to_string(dir.join(".env.example"))
        .unwrap()
        .contains("\nGREETING=\n"));
    let plan = run_in(&sb, &dir, &["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(
        plan.stdout
            .contains("--set-string 'backend.image=backend:c-"),
        "{}",
        plan.stdout
    );
    let dev = run_in(&sb, &dir, &["plan", "--profile", "dev"]);
    assert_eq!(dev.code, 0, "{}", dev.all());
    // From the directory above, with --config: the same file (paths relative to it).
    let above = run_in(
        &sb,
        dir.parent().unwrap(),
        &[
            "--config",
            "gb/pipeline.toml",
            "init",
            "--from",
            "gb/skaffold.yaml",
            "--dry-run",
        ],
    );
    assert_eq!(above.code, 0, "{}", above.all());
    assert!(above.stdout.starts_with(&text), "{}", above.stdout);
}

#[test]
fn skaffold_conversion_refuses_what_is_not_skaffold() {
    let sb = Sandbox::new();
    let dir = repo(&sb, "x");
    write_tree(&dir, &[("skaffold.yaml", "apiVersion: v1\nkind: Pod\n")]);
    let o = run_in(&sb, &dir, &["init", "--from", "skaffold.yaml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("is not a Skaffold configuration"),
        "{}",
        o.stderr
    );
    let o = run_in(&sb, &dir, &["init", "--from", "missing.yaml"]);
    assert_eq!(o.code, 2, "{}", o.all());
    assert!(
        o.stderr.contains("missing.yaml: not a file inside"),
        "{}",
        o.stderr
    );
    assert!(!dir.join("pipeline.toml").exists());
}

#[test]
fn two_secrets_with_the_same_key_get_variables_of_their_own() {
    let mut sb = Sandbox::new();
    let dir = repo(&sb, "twins");
    let values = "image:\n  repository: x\n  tag: \"1\"\nsecret:\n  existingSecret: \"\"\n  key: API_TOKEN\n";
    write_tree(
        &dir,
        &[
            ("a/Chart.yaml", "apiVersion: v2\nname: a\nversion: 0.1.0\n"),
            ("a/values.yaml", values),
            ("b/Chart.yaml", "apiVersion: v2\nname: b\nversion: 0.1.0\n"),
            ("b/values.yaml", values),
            (
                "top/Chart.yaml",
                "apiVersion: v2\nname: top\nversion: 0.1.0\ndependencies:\n  - {name: a, version: 0.1.0, repository: file://../a}\n  - {name: b, version: 0.1.0, repository: file://../b}\n",
            ),
            ("top/values.yaml", "{}\n"),
        ],
    );
    sb.remove_tool("helm");
    sb.set_env("PATH", &format!("{}:/nonexistent", sb.bin.display()));
    let o = run_in(&sb, &dir, &["init", "--dry-run"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(
        o.stdout.contains(
            "[releases.top.secrets.top-a-secret]\nfrom_env = { API_TOKEN = \"TOP_API_TOKEN\" }"
        ),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("[releases.top.secrets.top-b-secret]\nfrom_env = { API_TOKEN = \"TOP_B_SECRET_API_TOKEN\" }"),
        "{}",
        o.stdout
    );
}

#[test]
fn a_helm_slipway_provisioned_earlier_renders_when_path_has_none() {
    let mut sb = Sandbox::new();
    let dir = repo(&sb, "shop");
    one_image_repo(&dir);
    sb.rule(json!({"tool": "helm", "match": ["template"], "stdout": rendered("api", None)}));
    sb.remove_tool("helm");
    // slipway provisions helm into its cache (and records its SHA-256: a binary it
    // did not put there is never used) on an earlier run, with Go on PATH.
    sb.add_fake("go");
    let pre = sb.run(&["preflight"]);
    let cached = sb
        .dir
        .path()
        .join(".cache/slipway/toolchain/bin/helm-v4.3.1");
    assert!(cached.exists(), "{}", pre.all());
    sb.remove_tool("go");
    sb.set_env("PATH", &format!("{}:/nonexistent", sb.bin.display()));
    let o = run_in(&sb, &dir, &["init", "--dry-run"]);
    assert_eq!(o.code, 0, "{}", o.all());
    assert!(!o.stderr.contains("helm was not found"), "{}", o.stderr);
    assert!(
        sb.ran("helm template api deploy/api"),
        "{:?}",
        sb.argv_lines()
    );
    assert!(o.stdout.contains("path = \"/healthz\""), "{}", o.stdout);
}
