//! `type = "job"`: a one-off Kubernetes Job from an image (usually one this pipeline
//! built) runs in the release's namespace; it must complete, and its output may have
//! to contain a string. Skaffold's `verify` and `helm test` in one: the check sees the
//! cluster from inside (Service DNS, NetworkPolicies, a database's own client).
//!
//! One attempt creates a Job (`generateName`, never retried by Kubernetes:
//! `backoffLimit: 0`), polls it until it completes or fails, reads its logs and deletes
//! it. The next attempt, if any, is a new Job. A pod that cannot start (an image
//! missing on the node, a missing Secret) fails the check at once: retrying would
//! meet the same cause.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Attempt, Io, Kind, Problem, Target};
use crate::model::{Cmd, Stdin};
use crate::tools::k8s;

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Job {
    /// The image, usually `${images.NAME.ref}`.
    pub image: String,
    /// The container's command (default: the image's entrypoint).
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The Job's logs must contain this.
    #[serde(default)]
    pub output_contains: Option<String>,
    /// Run as this ServiceAccount (for a check that talks to the API server).
    #[serde(default)]
    pub service_account: Option<String>,
    #[serde(default = "if_not_present")]
    pub pull_policy: String,
}

fn if_not_present() -> String {
    "IfNotPresent".into()
}

/// A pod waiting for one of these will not start by waiting longer.
const STUCK: [&str; 6] = [
    "ErrImageNeverPull",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

impl Job {
    /// `slipway-check-<image name>-`: the Job's generateName.
    fn prefix(&self) -> String {
        let repo = self.image.rsplit('/').next().unwrap_or("");
        let repo = repo.split([':', '@']).next().unwrap_or("");
        let mut name: String = repo
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        name.truncate(30);
        let name = name.trim_matches('-');
        if name.is_empty() {
            "slipway-check-".into()
        } else {
            format!("slipway-check-{name}-")
        }
    }

    pub fn manifest(&self, namespace: &str) -> String {
        let mut container = serde_json::json!({
            "name": "check",
            "image": self.image,
            "imagePullPolicy": self.pull_policy,
            "securityContext": {"allowPrivilegeEscalation": false},
        });
        if !self.command.is_empty() {
            container["command"] = serde_json::json!(self.command);
        }
        if !self.args.is_empty() {
            container["args"] = serde_json::json!(self.args);
        }
        if !self.env.is_empty() {
            let env: Vec<serde_json::Value> = self
                .env
                .iter()
                .map(|(k, v)| serde_json::json!({"name": k, "value": v}))
                .collect();
            container["env"] = serde_json::json!(env);
        }
        let labels = serde_json::json!({
            "app.kubernetes.io/managed-by": "slipway",
            "slipway.dev/check": "job",
        });
        let mut pod = serde_json::json!({
            "restartPolicy": "Never",
            "containers": [container],
        });
        if let Some(sa) = &self.service_account {
            pod["serviceAccountName"] = serde_json::json!(sa);
        }
        serde_json::to_string_pretty(&serde_json::json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"generateName": self.prefix(), "namespace": namespace, "labels": labels},
            "spec": {
                "backoffLimit": 0,
                "ttlSecondsAfterFinished": 600,
                "activeDeadlineSeconds": 600,
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        }))
        .expect("manifest serializes")
    }
}

/// What the Job's status says: done (succeeded or failed), or still running.
fn job_state(json: &str) -> Result<Option<bool>, String> {
    let st = k8s::object(json)
        .map_err(|e| format!("unreadable Job: {e}"))?
        .status;
    Ok(if st.holds("Complete") || st.succeeded > 0 {
        Some(true)
    } else if st.holds("Failed") || st.failed > 0 {
        Some(false)
    } else {
        None
    })
}

/// A reason the Job's pod will not start, with its message.
fn stuck(pods_json: &str) -> Option<String> {
    k8s::parse_pods(pods_json).ok()?.iter().find_map(|p| {
        p.containers.iter().filter(|c| !c.init).find_map(|c| {
            let (reason, message) = c.waiting.as_ref()?;
            STUCK
                .contains(&reason.as_str())
                .then(|| format!("{reason}: {}", message.trim()))
        })
    })
}

fn excerpt(s: &str) -> String {
    let s = s.trim();
    let lines: Vec<&str> = s.lines().collect();
    let tail = &lines[lines.len().saturating_sub(5)..];
    tail.join(" | ")
}

impl Kind for Job {
    fn validate(&self) -> Vec<Problem> {
        let mut out = vec![];
        if self.image.trim().is_empty() {
            out.push((
                "image".into(),
                "image is empty".into(),
                Some("e.g. image = \"${images.app.ref}\"".into()),
            ));
        }
        if !["Always", "IfNotPresent", "Never"].contains(&self.pull_policy.as_str()) {
            out.push((
                "pull_policy".into(),
                format!(
                    "pull_policy {:?} is not Always, IfNotPresent or Never",
                    self.pull_policy
                ),
                None,
            ));
        }
        if self.output_contains.as_deref() == Some("") {
            out.push((
                "output_contains".into(),
                "output_contains is empty: it would match anything".into(),
                None,
            ));
        }
        for (k, v) in &self.env {
            // Kubernetes takes printable ASCII other than `=`.
            if k.is_empty() || k.contains('=') || !k.chars().all(|c| c.is_ascii_graphic()) {
                out.push((
                    format!("env.{k}"),
                    format!("{k:?} is not a variable name"),
                    None,
                ));
            }
            if v.contains('\0') {
                out.push((
                    format!("env.{k}"),
                    format!("the value of {k:?} has a NUL byte"),
                    None,
                ));
            }
        }
        for (key, items) in [("command", &self.command), ("args", &self.args)] {
            for (i, a) in items.iter().enumerate() {
                if a.contains('\0') {
                    out.push((
                        format!("{key}.{i}"),
                        format!("{key} argument {i} has a NUL byte"),
                        None,
                    ));
                }
            }
        }
        out
    }

    fn templated(&mut self) -> Vec<(&'static str, &mut String)> {
        let mut v: Vec<(&'static str, &mut String)> = vec![("image", &mut self.image)];
        v.extend(self.command.iter_mut().map(|c| ("command", c)));
        v.extend(self.args.iter_mut().map(|a| ("args", a)));
        v.extend(self.env.values_mut().map(|e| ("env", e)));
        if let Some(o) = &mut self.output_contains {
            v.push(("output_contains", o));
        }
        v
    }

    fn commands(&self, t: &Target) -> Vec<Cmd> {
        let at = |args: &[&str]| {
            crate::tools::kubectl::at(t.context, Some(t.namespace))
                .args(args.iter().copied())
                .timeout(Duration::from_secs(20))
        };
        vec![
            at(&["create", "--filename", "-", "--output", "name"]).stdin(Stdin::Text {
                text: self.manifest(t.namespace),
            }),
            at(&["get", "job/{JOB}", "--output", "json"]),
            at(&[
                "get",
                "pods",
                "--selector",
                "job-name={JOB}",
                "--output",
                "json",
            ]),
            at(&["logs", "job/{JOB}", "--all-containers", "--tail=200"]),
            at(&["delete", "job/{JOB}", "--ignore-not-found", "--wait=false"]),
        ]
    }

    fn attempt(&self, cmds: &[Cmd], io: &mut dyn Io) -> Attempt {
        let fail = |detail: String| Attempt {
            ok: false,
            detail,
            settled: false,
        };
        let name = match io.run(&cmds[0]) {
            Ok((0, out, _)) => out.trim().rsplit('/').next().unwrap_or("").to_string(),
            Ok((code, _, err)) => {
                return fail(format!("creating the Job exited {code}: {}", excerpt(&err)))
            }
            Err(e) => return fail(e),
        };
        let fill = |c: &Cmd| c.fill(&[("JOB", name.as_str())]);
        let started = std::time::Instant::now();
        let mut settled = false;
        let outcome: Result<bool, String> = loop {
            match io.run(&fill(&cmds[1])) {
                Ok((0, out, _)) => match job_state(&out) {
                    Ok(Some(done)) => break Ok(done),
                    Ok(None) => {}
                    Err(e) => break Err(e),
                },
                Ok((code, _, err)) => {
                    break Err(format!(
                        "reading job {name} exited {code}: {}",
                        excerpt(&err)
                    ))
                }
                Err(e) => break Err(e),
            }
            if let Ok((0, pods, _)) = io.run(&fill(&cmds[2])) {
                if let Some(why) = stuck(&pods) {
                    settled = true;
                    break Err(format!("job {name}'s pod cannot start: {why}"));
                }
            }
            if io.remaining() < Duration::from_secs(1) {
                break Err(format!(
                    "job {name} still running after {:.0}s",
                    started.elapsed().as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let logs = match io.run(&fill(&cmds[3])) {
            Ok((0, out, _)) => out,
            _ => String::new(),
        };
        // Even when the attempt used all of its time: a Job left behind keeps running.
        let deleted = match io.cleanup(&fill(&cmds[4])) {
            Ok((0, _, _)) => None,
            Ok((code, _, err)) => Some(format!("deleting it exited {code}: {}", excerpt(&err))),
            Err(e) => Some(format!("deleting it failed: {e}")),
        };
        let took = started.elapsed().as_secs_f64();
        let mut attempt = match outcome {
            Ok(true) => match &self.output_contains {
                Some(want) if !logs.contains(want.as_str()) => fail(format!(
                    "job {name} completed in {took:.1}s, but its output does not contain {want:?}: {}",
                    excerpt(&logs)
                )),
                _ => Attempt {
                    ok: true,
                    settled: false,
                    detail: format!("job {name} completed in {took:.1}s: {}", excerpt(&logs)),
                },
            },
            Ok(false) => fail(format!("job {name} failed after {took:.1}s: {}", excerpt(&logs))),
            Err(e) if logs.trim().is_empty() => fail(e),
            Err(e) => fail(format!("{e}; output: {}", excerpt(&logs))),
        };
        if let Some(d) = deleted {
            attempt.detail = format!("{}; job {name} is left in the cluster: {d}", attempt.detail);
        }
        // Another Job would meet the same missing image or Secret.
        attempt.settled = settled;
        attempt
    }

    fn hint(&self, t: &Target) -> String {
        format!(
            "the Job's output is above; `kubectl --context {} --namespace {} get jobs,pods -l slipway.dev/check=job` shows what is left of it (each is deleted after its attempt); is {} on the nodes, and does it take these args?",
            t.context, t.namespace, self.image
        )
    }

    fn describe(&self) -> String {
        let mut argv: Vec<&str> = self.command.iter().map(String::as_str).collect();
        argv.extend(self.args.iter().map(String::as_str));
        let run = if argv.is_empty() {
            String::new()
        } else {
            format!(" `{}`", argv.join(" "))
        };
        match &self.output_contains {
            Some(o) => format!("a Job from {}{run} completes and prints {o:?}", self.image),
            None => format!("a Job from {}{run} completes", self.image),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_states_from_kubectl() {
        assert_eq!(job_state(r#"{"status":{"active":1}}"#), Ok(None));
        assert_eq!(
            job_state(
                r#"{"status":{"succeeded":1,"conditions":[{"type":"Complete","status":"True"}]}}"#
            ),
            Ok(Some(true))
        );
        assert_eq!(
            job_state(
                r#"{"status":{"failed":1,"conditions":[{"type":"Failed","status":"True"}]}}"#
            ),
            Ok(Some(false))
        );
        assert!(job_state("Error from server").is_err());
    }

    #[test]
    fn a_pod_that_cannot_start_is_named() {
        let pods = r#"{"items":[{"status":{"containerStatuses":[{"state":{"waiting":{"reason":"ErrImageNeverPull","message":"Container image \"x:1\" is not present with pull policy of Never"}}}]}}]}"#;
        assert_eq!(
            stuck(pods).as_deref(),
            Some("ErrImageNeverPull: Container image \"x:1\" is not present with pull policy of Never")
        );
        let starting = r#"{"items":[{"status":{"containerStatuses":[{"state":{"waiting":{"reason":"ContainerCreating"}}}]}}]}"#;
        assert_eq!(stuck(starting), None);
    }

    #[test]
    fn the_manifest_is_a_one_shot_job_named_after_the_image() {
        let j = Job {
            image: "localhost:5001/team/runner:c-1234".into(),
            command: vec![],
            args: vec!["check".into(), "http://api/healthz".into()],
            env: BTreeMap::from([("MODE".into(), "smoke".into())]),
            output_contains: Some("200".into()),
            service_account: Some("runner".into()),
            pull_policy: "Never".into(),
        };
        let m: serde_json::Value = serde_json::from_str(&j.manifest("apps")).unwrap();
        assert_eq!(m["metadata"]["generateName"], "slipway-check-runner-");
        assert_eq!(m["metadata"]["namespace"], "apps");
        assert_eq!(m["spec"]["backoffLimit"], 0);
        let pod = &m["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["serviceAccountName"], "runner");
        let c = &pod["containers"][0];
        assert_eq!(c["image"], "localhost:5001/team/runner:c-1234");
        assert_eq!(c["imagePullPolicy"], "Never");
        assert_eq!(
            c["args"],
            serde_json::json!(["check", "http://api/healthz"])
        );
        assert_eq!(
            c["env"][0],
            serde_json::json!({"name": "MODE", "value": "smoke"})
        );
        assert!(c.get("command").is_none(), "the image's entrypoint stays");
    }
}
