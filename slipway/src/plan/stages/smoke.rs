//! smoke: each check, with image references resolved and the commands its
//! attempts run.

use crate::model::Stage;
use crate::plan::{Action, Planner, SmokeCheck};

impl Planner<'_> {
    pub(in crate::plan) fn smoke(&mut self) {
        for c in &self.p.smoke {
            let namespace = match (&self.o.namespace, &c.namespace) {
                (Some(o), None) => o.clone(),
                _ => self.p.check_namespace(c),
            };
            let mut spec = c.spec.clone();
            for (_, value) in spec.kind_mut().templated() {
                *value = self.resolve(value);
            }
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
                None,
            );
        }
    }
}
