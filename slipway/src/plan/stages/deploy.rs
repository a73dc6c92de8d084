//! deploy: a gate on releases stuck pending, then `helm upgrade --install` — skipped
//! when the deployed revision carries the same deploy digest (chart files, values,
//! image references, helm settings).

use std::path::Path;

use crate::checks;
use crate::config;
use crate::model::{Cmd, Error, Stage};
use crate::plan::digest::Hasher;
use crate::plan::Watch;
use crate::plan::{Action, Guard, Planner, ReleaseCurrent, ReleaseGate, Upgrade};
use crate::tools::{helm, kubectl};

/// How often a `during_rollout` check asks while the releases upgrade.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// What `helm upgrade` (and `helm template`, which renders the same) is given for a
/// release, and the digest of all of it.
pub(in crate::plan) struct ReleaseInput {
    pub release: String,
    pub namespace: String,
    pub chart: String,
    pub values: Vec<String>,
    pub set: Vec<(String, String)>,
    pub set_string: Vec<(String, String)>,
    pub set_file: Vec<(String, String)>,
    pub digest: String,
}

impl ReleaseInput {
    pub fn upgrade<'a>(&'a self, context: &'a str, r: &config::Release) -> helm::Upgrade<'a> {
        helm::Upgrade {
            release: &self.release,
            chart: &self.chart,
            namespace: &self.namespace,
            context,
            values: self.values.clone(),
            set: self.set.clone(),
            set_string: self.set_string.clone(),
            set_file: self.set_file.clone(),
            flags: Planner::helm_flags(r),
            timeout: r.timeout.0,
            digest: &self.digest,
            secrets: false,
        }
    }
}

impl Planner<'_> {
    pub(in crate::plan) fn release_input(
        &self,
        r: &config::Release,
    ) -> Result<ReleaseInput, Error> {
        let root = self.p.root.clone();
        let ns = self.namespace(r);
        let rel = r.release_name().to_string();
        let resolve = |m: &std::collections::BTreeMap<String, String>| -> Vec<(String, String)> {
            m.iter()
                .map(|(k, v)| (k.clone(), self.resolve(v)))
                .collect()
        };
        let set = resolve(&r.set);
        let set_string = resolve(&r.set_string);
        let set_file: Vec<(String, String)> = r
            .set_file
            .iter()
            .map(|(k, v)| (k.clone(), self.rel(v)))
            .collect();
        let values: Vec<String> = r.values.iter().map(|v| self.rel(v)).collect();

        let mut h = Hasher::default();
        h.part("release", rel.as_bytes())
            .part("namespace", ns.as_bytes());
        let hash_err = |what: &Path, e: std::io::Error| {
            Error::usage(format!(
                "release `{}`: cannot read {}: {e}",
                r.name,
                what.display()
            ))
        };
        self.hash_chart(&mut h, r)?;
        for v in r.values.iter().chain(r.set_file.values()) {
            h.tree(&root, v).map_err(|e| hash_err(v, e))?;
        }
        for (flag, pairs) in [
            ("set", &set),
            ("set_string", &set_string),
            ("set_file", &set_file),
        ] {
            for (k, v) in pairs {
                h.part(flag, format!("{k}={v}").as_bytes());
            }
        }
        h.part(
            "flags",
            format!(
                "wait={} atomic={} wait_strategy={} apply={} force_conflicts={}",
                r.wait,
                r.atomic,
                <&str>::from(r.wait_strategy),
                <&str>::from(r.apply),
                r.force_conflicts()
            )
            .as_bytes(),
        );
        Ok(ReleaseInput {
            release: rel,
            namespace: ns,
            chart: self.rel(&r.chart),
            values,
            set,
            set_string,
            set_file,
            digest: h.hex()[..16].to_string(),
        })
    }

    /// Releases in waves (after those they `need`); within a wave each release is a
    /// group of its own, so independent releases upgrade at the same time. A release
    /// others need is also waited for here, before the next wave starts.
    pub(in crate::plan) fn deploy(&mut self) -> Result<(), Error> {
        let needed: std::collections::BTreeSet<&str> = self
            .p
            .releases
            .iter()
            .flat_map(|r| r.needs.iter().map(String::as_str))
            .collect();
        // Checks that probe during the upgrade start first, in a wave of their own.
        let watches = self.watches();
        // Before any release: the capacity check (the graph runner waits for it).
        self.capacity();
        let first_wave = u32::from(!watches.is_empty());
        for w in watches {
            let id = format!("watch/{}", w.check);
            self.push(
                Stage::Deploy,
                id.clone(),
                format!(
                    "probe check {}'s Service while the releases upgrade",
                    w.check
                ),
                Action::Watch(w),
                None,
            );
            if let Some(s) = self.steps.last_mut() {
                s.group = Some(id);
            }
        }
        for (wave, releases) in self.p.release_waves().into_iter().enumerate() {
            for r in releases {
                let first = self.steps.len();
                self.deploy_release(r)?;
                if needed.contains(r.name.as_str()) {
                    let rel = r.release_name().to_string();
                    let action = self.rollout_action(r);
                    self.push(
                        Stage::Deploy,
                        format!("ready/{rel}"),
                        format!("wait for {rel} to roll out: releases after it need it"),
                        action,
                        None,
                    );
                }
                for s in &mut self.steps[first..] {
                    s.group = Some(format!("deploy/{}", r.release_name()));
                    s.wave = wave as u32 + first_wave;
                }
            }
        }
        Ok(())
    }

    /// The `during_rollout` HTTP checks, as probes to start before the upgrades.
    fn watches(&self) -> Vec<Watch> {
        self.p
            .smoke
            .iter()
            .filter_map(|c| {
                let checks::Spec::Http(h) = &c.spec else {
                    return None;
                };
                if !h.during_rollout {
                    return None;
                }
                let namespace = self.check_namespace(c);
                let path = self.resolve(&h.path);
                let cl = &self.p.cluster;
                Some(Watch {
                    check: c.name.clone(),
                    service: h.service.clone(),
                    port: h.port,
                    method: h.method.clone(),
                    proxy_path: kubectl::service_proxy_path(&namespace, &h.service, h.port, &path),
                    path,
                    services: kubectl::get_services(&self.context, &namespace),
                    access: cl.provider().host_access(cl),
                    expect_status: h.expect_status,
                    every: WATCH_EVERY,
                    proxy: kubectl::proxy(
                        &self.context,
                        &kubectl::service_proxy_prefix(&namespace, &h.service, h.port),
                    ),
                })
            })
            .collect()
    }

    fn deploy_release(&mut self, r: &config::Release) -> Result<(), Error> {
        let input = self.release_input(r)?;
        let rel = input.release.clone();
        let status = helm::status(&rel, &input.namespace, &self.context);
        self.push(
            Stage::Deploy,
            format!("gate/{rel}"),
            format!("check release {rel} is not stuck pending"),
            Action::ReleaseGate(ReleaseGate {
                release: rel.clone(),
                status: status.clone(),
                on_pending: r.on_pending,
                rollback: self.helm_rollback(r, None),
            }),
            None,
        );
        // The Secrets slipway applies for this release (a registry login is read
        // at pull time, not by the pods).
        let secrets: Vec<_> = self
            .secret_inputs()
            .into_iter()
            .filter(|s| {
                s.secret_type == "Opaque"
                    && s.labels.get("slipway.dev/release").map(String::as_str) == Some(&rel)
            })
            .collect();
        let cmd = helm::upgrade(
            &self.o.helm,
            &helm::Upgrade {
                secrets: !secrets.is_empty(),
                ..input.upgrade(&self.context, r)
            },
        );
        let guard = (!self.o.force).then(|| {
            Guard::ReleaseCurrent(ReleaseCurrent {
                release: rel.clone(),
                digest: input.digest.clone(),
                probe: status.clone(),
                secrets: secrets.clone(),
            })
        });
        let (ctx, ns) = (&self.context, &input.namespace);
        let rotate = (!secrets.is_empty()).then(|| crate::plan::Rotate {
            secrets,
            status,
            discover: kubectl::get_workloads(ctx, ns),
            restart: kubectl::rollout_restart(ctx, ns),
        });
        let action = Action::Upgrade(Upgrade {
            release: rel.clone(),
            cmd,
            jobs: kubectl::get_rollout_objects(ctx, ns),
            pods: kubectl::get_all_pods(ctx, ns),
            logs: kubectl::logs(ctx, ns, "{POD}", "{CONTAINER}", false),
            rotate,
        });
        self.push(
            Stage::Deploy,
            format!("helm/{rel}"),
            format!("helm upgrade --install {rel}"),
            action,
            guard,
        );
        Ok(())
    }

    pub(in crate::plan) fn rollback_for(&self, r: &config::Release) -> Option<Cmd> {
        (r.rollback_on_failure && self.o.job != crate::model::Job::Rollback)
            .then(|| self.helm_rollback(r, None))
    }
}
