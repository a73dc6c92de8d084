//! secrets: the namespaces, then each Secret slipway creates, applied server-side
//! with its values on stdin (never argv).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config;
use crate::model::{SecretInput, SecretKey, SecretSource, Stage, Stdin};
use crate::plan::{Action, Guard, NamespaceExists, Planner, SecretCurrent};
use crate::tools::kubectl;

/// The digest annotation, filled when the Secret is applied (`run/rotate.rs`).
fn digest_annotation() -> BTreeMap<String, String> {
    BTreeMap::from([(kubectl::SECRET_DIGEST.to_string(), "{DIGEST}".to_string())])
}

impl Planner<'_> {
    pub(in crate::plan) fn secret_inputs(&self) -> Vec<SecretInput> {
        let mut out = vec![];
        for r in &self.p.releases {
            for (name, spec) in &r.secrets {
                let mut keys: Vec<SecretKey> = spec
                    .from_env
                    .iter()
                    .map(|(k, var)| SecretKey {
                        key: k.clone(),
                        source: SecretSource::Env { var: var.clone() },
                    })
                    .collect();
                if let Some(f) = &spec.env_file {
                    let path = self.p.path(f);
                    // Only the names are read here; values are read when the step runs.
                    for var in config::interp::read_env_file(&path)
                        .unwrap_or_default()
                        .into_keys()
                    {
                        keys.push(SecretKey {
                            key: var.clone(),
                            source: SecretSource::EnvFile {
                                path: path.clone(),
                                var,
                            },
                        });
                    }
                }
                out.push(SecretInput {
                    name: name.clone(),
                    secret_type: "Opaque".into(),
                    namespace: self.namespace(r),
                    labels: BTreeMap::from([
                        ("app.kubernetes.io/managed-by".into(), "slipway".into()),
                        ("slipway.dev/project".into(), self.p.project.name.clone()),
                        ("slipway.dev/release".into(), r.release_name().to_string()),
                    ]),
                    annotations: digest_annotation(),
                    keys,
                });
            }
        }
        // The registry login the nodes pull with (`imagePullSecrets`), once per
        // namespace, labelled with its first release (`down` removes it last).
        if let Some((reg, pull_secret)) = self.p.registry.as_ref().and_then(|r| {
            r.login()
                .zip(r.pull_secret.clone())
                .map(|(l, s)| ((r.host().to_string(), l), s))
        }) {
            let ((host, (username, var)), name) = (reg, pull_secret);
            let mut seen = std::collections::BTreeSet::new();
            for r in &self.p.releases {
                let namespace = self.namespace(r);
                if !seen.insert(namespace.clone()) {
                    continue;
                }
                out.push(SecretInput {
                    name: name.clone(),
                    secret_type: "kubernetes.io/dockerconfigjson".into(),
                    namespace,
                    labels: BTreeMap::from([
                        ("app.kubernetes.io/managed-by".into(), "slipway".into()),
                        ("slipway.dev/project".into(), self.p.project.name.clone()),
                        ("slipway.dev/release".into(), r.release_name().to_string()),
                    ]),
                    annotations: digest_annotation(),
                    keys: vec![SecretKey {
                        key: ".dockerconfigjson".into(),
                        source: SecretSource::RegistryAuth {
                            host: host.clone(),
                            username: username.clone(),
                            var: var.clone(),
                        },
                    }],
                });
            }
        }
        out
    }

    pub(in crate::plan) fn secrets(&mut self) {
        let mut namespaces: Vec<String> =
            self.p.releases.iter().map(|r| self.namespace(r)).collect();
        namespaces.dedup();
        let budget = self.budget(Stage::Secrets);
        for ns in namespaces {
            let cmd = kubectl::apply(
                &self.context,
                Stdin::Text {
                    text: kubectl::namespace_manifest(&ns),
                },
            )
            .timeout(budget.min(Duration::from_secs(60)));
            let probe = kubectl::get_namespace(&self.context, &ns);
            // --force: apply it again whatever the probe says.
            let skip_if = (!self.o.force).then(|| {
                Guard::NamespaceExists(NamespaceExists {
                    namespace: ns.clone(),
                    probe,
                })
            });
            self.push(
                Stage::Secrets,
                format!("namespace/{ns}"),
                format!("ensure namespace {ns}"),
                Action::run(cmd),
                skip_if,
            );
        }
        for s in self.secret_inputs() {
            let id = format!("secret/{}/{}", s.namespace, s.name);
            let title = format!(
                "apply secret {} ({} key{})",
                s.name,
                s.keys.len(),
                if s.keys.len() == 1 { "" } else { "s" }
            );
            // --force: apply it whatever its digest annotation says.
            let skip_if = (!self.o.force).then(|| {
                Guard::SecretCurrent(SecretCurrent {
                    probe: kubectl::get_secret_annotation(
                        &self.context,
                        &s.namespace,
                        &s.name,
                        kubectl::SECRET_DIGEST,
                    ),
                    secret: s.clone(),
                })
            });
            let mut cmd = kubectl::apply(&self.context, Stdin::Secret(s))
                .timeout(budget.min(Duration::from_secs(60)));
            cmd.secret_output = true;
            self.push(Stage::Secrets, id, title, Action::run(cmd), skip_if);
        }
    }
}
