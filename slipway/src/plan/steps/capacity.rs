//! The capacity preflight: what each release's workloads request (from the manifests
//! `helm template` rendered, saved next to the render's stamp) summed over the
//! releases of the run, against the nodes' allocatable (`kubectl get nodes`). When
//! they do not fit: a warning naming the biggest consumers, or with `--strict` a
//! failure before any release is deployed. The reading of manifests and nodes and
//! the verdict are here; the runner reads the files and the nodes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::{Cmd, Error, Stage};
use crate::plan::brief::View;
use crate::plan::Step;

use super::StepKind;

/// Before any release is deployed: the selected releases' rendered requests (saved
/// by the render stage) against the nodes' allocatable.
#[derive(Clone, Debug, Serialize)]
pub struct Capacity {
    pub nodes: Cmd,
    /// Release → the file its rendered requests were saved to.
    pub requests: Vec<(String, PathBuf)>,
    /// `--strict`: fail instead of warning.
    pub strict: bool,
}

impl StepKind for Capacity {
    fn commands(&self) -> Vec<&Cmd> {
        vec![&self.nodes]
    }

    fn render(&self, s: &mut String, v: &mut View, _step: &Step) {
        v.line(
            s,
            &self.nodes,
            if self.strict {
                "fail if the releases' rendered requests exceed the nodes' allocatable"
            } else {
                "warn if the releases' rendered requests exceed the nodes' allocatable"
            },
        )
    }
}

/// One workload's requests: per pod, and how many pods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    pub pods: u64,
    /// Millicores per pod.
    pub cpu_m: u64,
    /// Bytes per pod.
    pub memory: u64,
}

/// A Kubernetes quantity as millicores (`cpu`).
pub fn millicores(q: &str) -> Option<u64> {
    let q = q.trim();
    if let Some(m) = q.strip_suffix('m') {
        return m.parse::<f64>().ok().map(|v| v.ceil() as u64);
    }
    q.parse::<f64>().ok().map(|v| (v * 1000.0).ceil() as u64)
}

/// A Kubernetes quantity as bytes (`memory`: `Ki Mi Gi Ti`, `k M G T`, or none).
pub fn bytes(q: &str) -> Option<u64> {
    let q = q.trim();
    const UNITS: [(&str, f64); 9] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("m", 1e-3),
    ];
    for (suffix, factor) in UNITS {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|v| (v * factor).ceil() as u64);
        }
    }
    q.parse::<f64>().ok().map(|v| v.ceil() as u64)
}

/// The workloads of rendered manifests (a multi-document YAML stream) with what
/// their pods request: Deployments, StatefulSets and ReplicaSets by `replicas`
/// (default 1), DaemonSets, Jobs and Pods as one pod. Init containers count by the
/// largest (they run one at a time, before the others).
pub fn workloads(manifests: &str) -> Result<Vec<Workload>, String> {
    use serde::de::Deserialize as _;
    let mut out = vec![];
    for doc in serde_norway::Deserializer::from_str(manifests) {
        let v = serde_norway::Value::deserialize(doc).map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::to_value(&v).map_err(|e| e.to_string())?;
        let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let (pod, pods) = match kind {
            "Deployment" | "StatefulSet" | "ReplicaSet" => (
                &v["spec"]["template"]["spec"],
                v["spec"]["replicas"].as_u64().unwrap_or(1),
            ),
            "DaemonSet" | "Job" => (&v["spec"]["template"]["spec"], 1),
            "Pod" => (&v["spec"], 1),
            _ => continue,
        };
        let req = |c: &serde_json::Value, what: &str| -> Option<String> {
            let q = &c["resources"]["requests"][what];
            q.as_str()
                .map(String::from)
                .or_else(|| q.as_f64().map(|n| n.to_string()))
        };
        let sum = |list: &serde_json::Value, f: &dyn Fn(&serde_json::Value) -> u64| -> (u64, u64) {
            let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
            (
                items.iter().map(f).sum(),
                items.iter().map(f).max().unwrap_or(0),
            )
        };
        let cpu = |c: &serde_json::Value| req(c, "cpu").and_then(|q| millicores(&q)).unwrap_or(0);
        let mem = |c: &serde_json::Value| req(c, "memory").and_then(|q| bytes(&q)).unwrap_or(0);
        out.push(Workload {
            kind: kind.to_string(),
            name: v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            pods,
            cpu_m: sum(&pod["containers"], &cpu)
                .0
                .max(sum(&pod["initContainers"], &cpu).1),
            memory: sum(&pod["containers"], &mem)
                .0
                .max(sum(&pod["initContainers"], &mem).1),
        });
    }
    Ok(out)
}

/// The nodes' allocatable CPU (millicores) and memory (bytes), summed.
pub fn allocatable(nodes_json: &str) -> Result<(u64, u64, usize), String> {
    let v: serde_json::Value = serde_json::from_str(nodes_json).map_err(|e| e.to_string())?;
    let items = v["items"]
        .as_array()
        .ok_or("`kubectl get nodes` printed no list of nodes")?;
    let (mut cpu, mut mem) = (0, 0);
    for n in items {
        let a = &n["status"]["allocatable"];
        cpu += a["cpu"].as_str().and_then(millicores).unwrap_or(0);
        mem += a["memory"].as_str().and_then(bytes).unwrap_or(0);
    }
    Ok((cpu, mem, items.len()))
}

fn mib(b: u64) -> String {
    format!("{} MiB", b.div_ceil(1 << 20))
}

/// The capacity check's verdict, in words.
#[derive(Debug, PartialEq, Eq)]
pub enum Fit {
    /// They fit: progress, not a note every summary repeats.
    Fits(String),
    /// They do not (and `--strict` is off): a note.
    Warning(String),
}

/// What the releases request, per release: (release, millicores, bytes).
pub type Requested = Vec<(String, u64, u64)>;

impl Capacity {
    /// The nodes' allocatable from `nodes`' output; `Ok(None)`: unreadable, which is a
    /// note without `--strict` (returned as `Err(Ok(note))`), a failure with it.
    pub fn nodes_read(
        &self,
        stage: Stage,
        out: &crate::model::Output,
    ) -> Result<(u64, u64, usize), Result<String, Error>> {
        let read = if out.ok() {
            allocatable(&out.stdout)
        } else {
            Err(e_or(&out.stderr))
        };
        match read {
            Ok(a) => Ok(a),
            Err(e) if !self.strict => Err(Ok(format!(
                "capacity: cannot read the nodes' allocatable ({e}); not checked"
            ))),
            Err(e) => Err(Err(Error::new(
                stage,
                format!("capacity: cannot read the nodes' allocatable: {e}"),
            ))),
        }
    }

    /// The verdict: they fit, they do not (a warning), or with `--strict` a failure.
    pub fn verdict(
        &self,
        stage: Stage,
        per_release: &Requested,
        (cpu, mem, n): (u64, u64, usize),
    ) -> Result<Fit, Error> {
        let want_cpu: u64 = per_release.iter().map(|r| r.1).sum();
        let want_mem: u64 = per_release.iter().map(|r| r.2).sum();
        let fits = want_cpu <= cpu && want_mem <= mem;
        let summary = format!(
            "capacity: {} release{} request {}m CPU and {} of memory; {n} node{} allocate {}m and {}",
            per_release.len(),
            if per_release.len() == 1 { "" } else { "s" },
            want_cpu,
            mib(want_mem),
            if n == 1 { "" } else { "s" },
            cpu,
            mib(mem),
        );
        if fits {
            return Ok(Fit::Fits(summary));
        }
        // The biggest consumers of what does not fit (CPU first when both overflow).
        let by_cpu = want_cpu > cpu;
        let mut top = per_release.clone();
        top.sort_by_key(|r| std::cmp::Reverse(if by_cpu { r.1 } else { r.2 }));
        let names: Vec<String> = top
            .iter()
            .take(5)
            .map(|(r, c, m)| format!("{r} ({c}m, {})", mib(*m)))
            .collect();
        let message = format!(
            "{summary}: they do not fit ({} over); biggest: {}",
            if by_cpu { "CPU" } else { "memory" },
            names.join(", ")
        );
        if self.strict {
            return Err(Error::new(stage, message).hint(
                "lower the releases' resource requests, deploy fewer (`--only`), or give the cluster more nodes; without --strict this is a warning",
            ));
        }
        Ok(Fit::Warning(format!(
            "warning: {message}; pods may stay Pending (--strict fails here)"
        )))
    }
}

fn e_or(stderr: &str) -> String {
    crate::model::last_lines(stderr, 1)
        .first()
        .cloned()
        .unwrap_or_else(|| "no output".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse() {
        assert_eq!(millicores("10m"), Some(10));
        assert_eq!(millicores("1.5"), Some(1500));
        assert_eq!(millicores("2"), Some(2000));
        assert_eq!(bytes("16Mi"), Some(16 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("8023456Ki"), Some(8_023_456 * 1024));
        assert_eq!(bytes("512"), Some(512));
        assert_eq!(millicores("lots"), None);
    }

    #[test]
    fn rendered_workloads_carry_their_requests() {
        let m = "---\n# Source: x/templates/svc.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  template:\n    spec:\n      initContainers:\n        - name: init\n          resources:\n            requests: {cpu: 500m, memory: 1Gi}\n      containers:\n        - name: a\n          resources:\n            requests:\n              cpu: 100m\n              memory: 64Mi\n        - name: b\n          resources:\n            requests:\n              cpu: \"0.2\"\n---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n";
        let w = workloads(m).unwrap();
        assert_eq!(
            w,
            vec![
                Workload {
                    kind: "Deployment".into(),
                    name: "web".into(),
                    pods: 3,
                    cpu_m: 500,
                    memory: 1 << 30,
                },
                Workload {
                    kind: "Job".into(),
                    name: "once".into(),
                    pods: 1,
                    cpu_m: 0,
                    memory: 0,
                },
            ]
        );
    }

    #[test]
    fn allocatable_sums_the_nodes() {
        let j = r#"{"items": [{"status": {"allocatable": {"cpu": "2", "memory": "2Gi"}}}, {"status": {"allocatable": {"cpu": "500m", "memory": "1048576Ki"}}}]}"#;
        assert_eq!(allocatable(j).unwrap(), (2500, 3 << 30, 2));
        assert!(allocatable("{}").is_err());
    }
}
