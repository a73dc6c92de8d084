//! What `helm template` rendered: Services and their ports, the workloads behind them,
//! their containers' HTTP probes, and the Secret keys pods read.

use serde_json::Value;

use super::chart::yaml_docs;

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub service: String,
    pub port: u16,
    /// The readiness (else liveness) probe's HTTP path of the container behind the port.
    pub path: Option<String>,
    /// `deployment/NAME` behind it.
    pub workload: Option<String>,
}

fn s(v: &Value, p: &str) -> String {
    super::chart::at(v, p)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn is_hook(doc: &Value) -> bool {
    super::chart::at(doc, "metadata.annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key("helm.sh/hook"))
}

/// Port given as a number or a name matches a container port.
fn port_matches(want: &Value, c_port: &Value) -> bool {
    match want {
        Value::Number(n) => c_port.get("containerPort") == Some(&Value::Number(n.clone())),
        Value::String(name) => c_port.get("name").and_then(Value::as_str) == Some(name),
        _ => false,
    }
}

fn probe_path(container: &Value, port: Option<&Value>) -> Option<String> {
    for k in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let Some(g) = container.get(k).and_then(|p| p.get("httpGet")) else {
            continue;
        };
        let probe_port = g.get("port");
        let same = match (port, probe_port) {
            (Some(p), Some(q)) => {
                p == q
                    || container
                        .get("ports")
                        .and_then(Value::as_array)
                        .is_some_and(|ps| {
                            ps.iter()
                                .any(|cp| port_matches(p, cp) && port_matches(q, cp))
                        })
            }
            _ => true,
        };
        if same {
            return Some(g.get("path").and_then(Value::as_str).unwrap_or("/").into());
        }
    }
    None
}

/// Services, ports, and the probe path behind each.
pub fn targets(rendered: &str) -> Vec<Target> {
    let docs: Vec<Value> = yaml_docs(rendered)
        .into_iter()
        .filter(|d| !is_hook(d))
        .collect();
    let workloads: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            matches!(
                d.get("kind").and_then(Value::as_str),
                Some("Deployment" | "StatefulSet" | "DaemonSet")
            )
        })
        .collect();
    let mut out = vec![];
    for svc in docs
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("Service"))
    {
        let name = s(svc, "metadata.name");
        let selector = super::chart::at(svc, "spec.selector").and_then(Value::as_object);
        let behind = selector.and_then(|sel| {
            workloads.iter().find(|w| {
                let labels =
                    super::chart::at(w, "spec.template.metadata.labels").and_then(Value::as_object);
                labels.is_some_and(|l| sel.iter().all(|(k, v)| l.get(k) == Some(v)))
            })
        });
        let ports = super::chart::at(svc, "spec.ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for p in ports {
            let Some(port) = p.get("port").and_then(Value::as_u64) else {
                continue;
            };
            let target_port = p.get("targetPort").cloned().unwrap_or(Value::from(port));
            let mut path = None;
            if let Some(w) = behind {
                let containers = super::chart::at(w, "spec.template.spec.containers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for c in &containers {
                    let has_port = c
                        .get("ports")
                        .and_then(Value::as_array)
                        .is_some_and(|ps| ps.iter().any(|cp| port_matches(&target_port, cp)));
                    if has_port || containers.len() == 1 {
                        path = probe_path(c, Some(&target_port)).or(path);
                    }
                }
            }
            out.push(Target {
                service: name.clone(),
                port: u16::try_from(port).unwrap_or(0),
                path,
                workload: behind.map(|w| {
                    format!(
                        "{}/{}",
                        s(w, "kind").to_ascii_lowercase(),
                        s(w, "metadata.name")
                    )
                }),
            });
        }
    }
    out
}

/// Keys pods read from the Secret `name` (`secretKeyRef`), and whether one takes it
/// whole (`envFrom`/a volume).
pub fn secret_keys(rendered: &str, name: &str) -> (Vec<String>, bool) {
    let mut keys = vec![];
    let mut whole = false;
    fn walk(v: &Value, name: &str, keys: &mut Vec<String>, whole: &mut bool) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("secretKeyRef") {
                    if r.get("name").and_then(Value::as_str) == Some(name) {
                        if let Some(k) = r.get("key").and_then(Value::as_str) {
                            if !keys.iter().any(|x| x == k) {
                                keys.push(k.to_string());
                            }
                        }
                    }
                }
                for k in ["secretRef", "secret"] {
                    if let Some(r) = m.get(k) {
                        let n = r
                            .get("name")
                            .or_else(|| r.get("secretName"))
                            .and_then(Value::as_str);
                        if n == Some(name) {
                            *whole = true;
                        }
                    }
                }
                for c in m.values() {
                    walk(c, name, keys, whole);
                }
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, name, keys, whole)),
            _ => {}
        }
    }
    for d in yaml_docs(rendered) {
        walk(&d, name, &mut keys, &mut whole);
    }
    (keys, whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}, {port: 9090, targetPort: 9090}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata: {labels: {app: web, tier: x}}
    spec:
      containers:
        - name: web
          ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9090}]
          readinessProbe: {httpGet: {path: /readyz, port: http}}
          env:
            - name: T
              valueFrom: {secretKeyRef: {name: creds, key: API_TOKEN}}
---
apiVersion: v1
kind: Pod
metadata: {name: t, annotations: {"helm.sh/hook": test}}
"#;

    #[test]
    fn services_ports_probes() {
        let t = targets(RENDERED);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].path.as_deref(), Some("/readyz"));
        assert_eq!(t[0].workload.as_deref(), Some("deployment/web"));
        assert_eq!(t[1].port, 9090);
        assert_eq!(t[1].path, None, "no probe on the metrics port");
        assert_eq!(
            secret_keys(RENDERED, "creds"),
            (vec!["API_TOKEN".to_string()], false)
        );
    }
}
