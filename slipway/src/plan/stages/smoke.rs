//! smoke: each check, with image references resolved and the commands its
//! attempts run.

use crate::config;
use crate::model::{Job, Stage};
use crate::plan::{Action, Always, Guard, NodePorts, Planner, SmokeCheck};

impl Planner<'_> {
    /// The namespace a check runs in (`--namespace` overrides the default one).
    pub(in crate::plan) fn check_namespace(&self, c: &config::Check) -> String {
        match (&self.o.namespace, &c.namespace) {
            (Some(o), None) => o.clone(),
            _ => self.p.check_namespace(c),
        }
    }

    pub(in crate::plan) fn smoke(&mut self) {
        for c in &self.p.smoke {
            let namespace = self.check_namespace(c);
            let mut spec = c.spec.clone();
            let mut expects_build = false;
            for (_, value) in spec.kind_mut().templated() {
                expects_build |= value.contains("${images.");
                *value = self.resolve(value);
            }
            // A rollback deploys an earlier build: a check that expects this build's
            // image would fail for the wrong reason.
            let skip = (expects_build && self.o.job == Job::Rollback).then(|| Guard::Always(Always {
                reason: "it expects the image built from the current source (`${images.…}`), which a rollback does not deploy".into(),
            }));
            let mut check = SmokeCheck {
                name: c.name.clone(),
                namespace,
                context: self.context.clone(),
                deadline: c.deadline.0,
                interval: c.interval.0,
                spec,
                commands: vec![],
            };
            check.commands = check.spec.kind().commands(&check.target());
            self.push(
                Stage::Smoke,
                format!("smoke/{}", c.name),
                format!("smoke check {}", c.name),
                Action::Smoke(check),
                skip,
            );
            // Checks are independent: they run at the same time (sharing
            // port-forwards), so the stage takes as long as its slowest check.
            if let Some(s) = self.steps.last_mut() {
                s.group = Some(format!("smoke/{}", c.name));
            }
        }
        // NodePorts, as a user reaches them (with the checks, at the same time).
        let c = &self.p.cluster;
        if let Some(access) = c.provider().host_access(c) {
            let mut by_ns: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for r in &self.p.releases {
                by_ns
                    .entry(self.namespace(r))
                    .or_default()
                    .push(r.release_name().to_string());
            }
            for (namespace, releases) in by_ns {
                let services = crate::tools::kubectl::get_services(&self.context, &namespace);
                self.push(
                    Stage::Smoke,
                    format!("node-ports/{namespace}"),
                    format!("reach the NodePort services in {namespace} from this machine"),
                    Action::NodePorts(NodePorts {
                        namespace: namespace.clone(),
                        releases,
                        services,
                        access: access.clone(),
                    }),
                    None,
                );
                if let Some(s) = self.steps.last_mut() {
                    s.group = Some(format!("node-ports/{namespace}"));
                }
            }
        }
    }
}
