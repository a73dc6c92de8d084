//! `plan`'s text: the plan data as a shell script, grouped by stage, every command
//! pasteable (placeholders such as `{LOCAL_PORT}` stand for run-time values).

use std::fmt::Write as _;

use super::brief::{self, View};
use super::{Action, Guard, Plan, Step};
use crate::config::OnPending;
use crate::model::Cmd;

fn line_as(s: &mut String, cmd: &Cmd, comment: &str, verbose: bool) {
    let text = brief::script(cmd, verbose);
    if comment.is_empty() {
        let _ = writeln!(s, "{text}");
    } else {
        let _ = writeln!(s, "{text}  # {comment}");
    }
}

fn line(s: &mut String, cmd: &Cmd, comment: &str) {
    line_as(s, cmd, comment, true)
}

impl Guard {
    /// One line for the plan: when the step is skipped, and how that is decided.
    pub fn describe(&self) -> String {
        match self {
            Guard::ClusterUp { describe, probe } => {
                format!("skipped if `{}` says {describe} is up", probe.display())
            }
            Guard::ImageBuilt { reference, probe } => format!(
                "skipped if {reference} is already built (`{}`)",
                probe.display()
            ),
            Guard::ImagesBuilt { references, probes } => format!(
                "skipped if {} are all already built ({})",
                references.join(", "),
                probes
                    .iter()
                    .map(|p| format!("`{}`", p.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Guard::ImageOnCluster {
                local_id, probe, ..
            } => {
                let mut how = String::new();
                if let Some(n) = &probe.nodes {
                    how.push_str(&format!("`{}`, then ", n.display()));
                }
                how.push_str(&format!("`{}`", probe.per_node.display()));
                format!(
                    "skipped if every node already holds the image ID of `{}` ({how})",
                    local_id.display()
                )
            }
            Guard::Always { reason } => format!("skipped: {reason}"),
            Guard::RegistryAdvertised { host, probe } => format!(
                "skipped if `{}` shows the cluster advertises registry {host} (KEP-1755) and http://{host}/v2/ answers; another registry stops the run",
                probe.display()
            ),
            Guard::NamespaceExists { namespace, probe } => format!(
                "skipped if `{}` says namespace {namespace} is Active",
                probe.display()
            ),
            Guard::SecretCurrent { secret, probe } => format!(
                "skipped if `{}` prints the keyed digest of the values secret {} would be applied with",
                probe.display(),
                secret.name
            ),
            Guard::Rendered {
                digest,
                stamp,
                requires,
                ..
            } => format!(
                "skipped if {} records that inputs with digest {digest} rendered before{}",
                stamp.display(),
                requires
                    .as_ref()
                    .map_or(String::new(), |r| format!(" and {} exists", r.display()))
            ),
            Guard::ReleaseCurrent {
                digest,
                probe,
                secrets,
                ..
            } => format!(
                "skipped if `{}` shows revision deployed with digest {digest}{}",
                probe.display(),
                if secrets.is_empty() {
                    String::new()
                } else {
                    let names: Vec<&str> = secrets.iter().map(|s| s.name.as_str()).collect();
                    format!(
                        " and the same keyed digests of secret {}",
                        names.join(", ")
                    )
                }
            ),
        }
    }
}

/// The read that judges a release serving: every ready endpoint a new pod.
fn serving(s: &mut String, cmd: &Cmd) {
    line(
        s,
        cmd,
        "then until every ready endpoint of the release's Services is a pod of the new revision",
    );
}

fn step(s: &mut String, step: &Step, v: &mut View) {
    let verbose = v.verbose;
    let line = |s: &mut String, cmd: &Cmd, comment: &str| line_as(s, cmd, comment, verbose);
    // By default a smoke check's title goes with what it expects, after its
    // commands, the capacity check's with its one command's comment, and a guard
    // on its step's title line.
    let smoke = !verbose && matches!(step.action, Action::Smoke(_) | Action::Capacity { .. });
    match &step.skip_if {
        Some(g) if !verbose => {
            let _ = writeln!(s, "# {}: {}", step.title, g.describe());
        }
        _ if smoke => {}
        _ => {
            let _ = writeln!(s, "# {}", step.title);
        }
    }
    if step.wave > 0 {
        let _ = writeln!(
            s,
            "#   wave {}: after the releases it needs are deployed and rolled out",
            step.wave + 1
        );
    }
    if let Some(g) = step.skip_if.as_ref().filter(|_| verbose) {
        let _ = writeln!(s, "#   {}", g.describe());
    }
    match &step.action {
        Action::Run { cmd } => line(s, cmd, ""),
        Action::Deliver(d) => d.render(s),
        Action::Recipe { cmd, .. } => {
            line(s, cmd, "slipway's recipe, written to this directory first")
        }
        Action::NodePorts {
            services, access, ..
        } => {
            line(s, services, "the releases' NodePort Services");
            match access {
                crate::providers::HostAccess::NodeAddress { address } => line(
                    s,
                    address,
                    "each at http://ADDRESS:NODEPORT, which must accept a connection",
                ),
                crate::providers::HostAccess::Mapped { ports } => {
                    let mapped: Vec<String> = ports
                        .iter()
                        .map(|(node, addr, host)| format!("{node} -> http://{addr}:{host}"))
                        .collect();
                    let _ = if mapped.is_empty() {
                        writeln!(s, "#   no NodePort is mapped to this machine: each is noted with the port_mappings line that would")
                    } else {
                        writeln!(
                            s,
                            "#   each NodePort mapped to this machine ({}) must accept a connection; others are noted",
                            mapped.join(", ")
                        )
                    };
                }
            }
        }
        Action::VerifyLoaded {
            local_id, probe, ..
        } => {
            line(s, local_id, "the local image's ID");
            if let Some(n) = &probe.nodes {
                line(s, n, "the nodes");
            }
            line(s, &probe.per_node, "each node must hold that ID");
        }
        Action::CreateCluster { cmd, node } if !verbose => brief::create_cluster(
            s,
            cmd,
            node.as_ref(),
            step.skip_if.is_some() && v.local.is_some_and(|f| f.knows_context(&v.context)),
        ),
        Action::CreateCluster { cmd, node } => match node {
            None => line(s, cmd, ""),
            Some(n) => {
                line(s, &n.inspect, "the node image is here, or");
                line(s, &n.pull, "it is pulled; then:");
                line(s, cmd, "");
                let _ = writeln!(
                    s,
                    "#   if the pull fails because the registry cannot be reached: build {} offline, create from it",
                    n.offline
                );
                line(
                    s,
                    &n.build,
                    "slipway's recipe, written to this directory first",
                );
                line(s, &n.create, "");
            }
        },
        Action::Render { cmd, .. } => line(
            s,
            cmd,
            "its workloads' resource requests are kept for the capacity check",
        ),
        Action::Capacity { nodes, strict, .. } => line(
            s,
            nodes,
            if *strict {
                "fail if the releases' rendered requests exceed the nodes' allocatable"
            } else {
                "warn if the releases' rendered requests exceed the nodes' allocatable"
            },
        ),
        Action::Upgrade {
            cmd,
            jobs,
            pods,
            logs,
            rotate,
            ..
        } => {
            line(s, cmd, "");
            if let Some(r) = rotate {
                let names: Vec<&str> = r.secrets.iter().map(|s| s.name.as_str()).collect();
                line(
                    s,
                    &r.restart,
                    &format!(
                        "for each of its workloads, when secret {} changed since the deployed revision",
                        names.join(", ")
                    ),
                );
            }
            if verbose {
                line(s, jobs, "if helm fails: the failed hook Jobs");
                line(s, pods, "their pods");
                line(s, logs, "and what they printed");
            } else {
                let _ = (jobs, pods, logs);
                let _ = writeln!(
                    s,
                    "#   if helm fails: its failed hook Jobs, their pods and what they printed (plan --verbose)"
                );
            }
        }
        Action::Preflight(pf) => {
            for t in &pf.tools {
                // By default, only provisioning that will run is shown in full.
                let provisions = !verbose && !brief::tool(s, t, v.local);
                if verbose {
                    line(
                        s,
                        &t.version,
                        &format!("{} >= {}: {}", t.tool, t.min, t.why),
                    );
                }
                if let Some(p) = t.supply.as_ref().filter(|_| verbose || provisions) {
                    let _ = writeln!(
                        s,
                        "#   none that will do on PATH: use {} (slipway's cache), provisioning {} {} there first:",
                        p.path.display(),
                        t.tool,
                        p.version
                    );
                    if let Some(d) = &p.download {
                        line(
                            s,
                            &d.fetch,
                            &format!(
                                "the official release; its SHA-256 must be {} ({})",
                                d.sha256, d.pinned_by
                            ),
                        );
                        if let Some(u) = &d.unpack {
                            line(s, u, "");
                        }
                    }
                    if let Some(why) = &p.unpinned {
                        let _ = writeln!(s, "#   no download: {why}");
                    }
                    if let Some(b) = &p.build {
                        line(
                            s,
                            b,
                            "else: build from the Go module proxy (slipway's recipe)",
                        );
                    }
                }
            }
            if let Some(d) = &pf.docker_daemon {
                line(
                    s,
                    d,
                    &format!(
                        "the daemon answers; >= {} GiB free in its data root and the temp dir",
                        pf.min_free_gib
                    ),
                );
            }
            if let Some(d) = &pf.docker_start {
                line(
                    s,
                    &d.dockerd,
                    &format!(
                        "only if no daemon answers, DOCKER_HOST and docker contexts name no other engine, and slipway may start one (root, no systemd), announced as it starts; config {} (merged from {}), default runtime {}, log {}",
                        d.config.display(),
                        d.host_config.display(),
                        d.wrapper.display(),
                        d.log.display()
                    ),
                );
            }
            if let Some(c) = &pf.context {
                line(s, &c.list, &format!("lists {}", c.context));
                line(s, &c.ready, "");
            }
            if let Some(g) = &pf.guard {
                let managed = g
                    .managed
                    .as_deref()
                    .unwrap_or("(none: provider \"existing\")");
                let allowed = if g.allowed {
                    " (--allow-context given)"
                } else {
                    ""
                };
                let read = g.kubeconfig.as_ref().map_or(String::new(), |k| {
                    format!(" (its cluster checked in `{}`)", k.display())
                });
                let _ = match g.rule {
                    crate::plan::GuardRule::Managed => writeln!(
                        s,
                        "# guard: {} only changes {managed}; context is {}{read}{allowed}",
                        g.job, g.context,
                    ),
                    crate::plan::GuardRule::Pipeline => writeln!(
                        s,
                        "# guard: {} changes only the pipeline's context {}{allowed}",
                        g.job, g.context,
                    ),
                    crate::plan::GuardRule::Any => writeln!(
                        s,
                        "# guard: {} changes the context it is given: {}",
                        g.job, g.context,
                    ),
                };
            }
            for v in &pf.secret_vars {
                let from = v.source.describe();
                let _ = writeln!(s, "# secret {}/{} needs {from} to be set", v.secret, v.key);
            }
        }
        Action::ReleaseGate {
            status,
            on_pending,
            rollback,
            ..
        } => {
            line(s, status, "");
            let what = match on_pending {
                OnPending::Fail => "stop with a hint".to_string(),
                OnPending::Rollback => format!("run `{}`", rollback.display()),
            };
            let _ = writeln!(s, "#   if pending-install/upgrade/rollback: {what}");
        }
        Action::Rollout { track: t, rollback } => {
            let which = match &t.only {
                Some(ws) => ws.join(", "),
                None => format!(
                    "each Deployment/StatefulSet/DaemonSet/Job annotated meta.helm.sh/release-name={}",
                    t.release
                ),
            };
            line(
                s,
                &t.workloads,
                &format!(
                    "every second until rolled out ({which}), at most {}",
                    humantime::format_duration(t.timeout)
                ),
            );
            line(
                s,
                &t.pods,
                "their pods: fail early on a cause that will not fix itself",
            );
            if verbose {
                line(
                    s,
                    &t.events,
                    "when a pod is stuck: the scheduler's, kubelet's and volume events",
                );
                serving(s, &t.serving);
                line(s, &t.logs, "evidence: the failing container's output");
                line(
                    s,
                    &t.logs_previous,
                    &format!("evidence: the previous instance, after a restart (crash-looping at {} restarts)", t.crash_limit),
                );
            } else {
                serving(s, &t.serving);
                let _ = writeln!(
                    s,
                    "#   when a pod is stuck: its events and its containers' logs, as evidence (plan --verbose)"
                );
            }
            if let Some(rb) = rollback {
                line(s, rb, "on failure");
            }
        }
        Action::Health {
            discover,
            pods,
            rollback,
            ..
        } => {
            line(s, discover, "");
            line(s, pods, "per workload: each pod Ready, none crash-looping");
            if let Some(rb) = rollback {
                line(s, rb, "on failure");
            }
        }
        Action::Watch(w) => {
            line(
                s,
                &w.services,
                &format!("service {} port {}", w.service, w.port),
            );
            let otherwise = match &w.access {
                Some(access) => {
                    if let crate::providers::HostAccess::NodeAddress { address } = access {
                        line(s, address, "the node's address");
                    }
                    let _ = writeln!(
                        s,
                        "# a NodePort this machine reaches: {} http://HOST:PORT{} (through kube-proxy, as clients)",
                        w.method, w.path
                    );
                    "otherwise "
                }
                None => "",
            };
            line(
                s,
                &w.proxy,
                &format!("{otherwise}in the background until the check's smoke step"),
            );
            let _ = writeln!(
                s,
                "# {otherwise}{} {} over the proxy's unix socket {{SOCKET}}, in a new directory only this user can enter (0700)",
                w.method, w.proxy_path
            );
            let _ = writeln!(
                s,
                "# every {} until the check's smoke step -> expect status {}; any other answer fails check {}",
                humantime::format_duration(w.every),
                w.expect_status,
                w.check
            );
        }
        Action::Judge { check } => {
            let _ = writeln!(
                s,
                "# end check {check}'s probe: any request that failed during the upgrade fails the run"
            );
        }
        Action::Smoke(c) => {
            for cmd in &c.commands {
                // A port-forward the checks share is started once.
                if verbose || v.seen.insert(cmd.script()) {
                    line(s, cmd, "");
                }
            }
            let _ = writeln!(
                s,
                "# {}{}; retry every {} until {}",
                if smoke {
                    format!("{}: ", step.title)
                } else {
                    String::new()
                },
                c.spec.kind().describe(),
                humantime::format_duration(c.interval),
                humantime::format_duration(c.deadline)
            );
        }
        Action::ClusterPresent { probe, describe } => match probe {
            Some(p) => line(s, p, &format!("{describe} exists")),
            None => {
                let _ = writeln!(s, "# {describe}: not managed by slipway, assumed present");
            }
        },
        Action::Status {
            status,
            discover,
            pods,
            ..
        } => {
            line(s, status, "");
            line(s, discover, "");
            line(s, pods, "per workload");
        }
        Action::Uninstall {
            status,
            uninstall,
            list_secrets,
            delete_secrets,
            ..
        } => {
            line(s, status, "");
            line(s, uninstall, "unless the release is not installed");
            line(s, list_secrets, "");
            line(s, delete_secrets, "if any are listed");
        }
        Action::DeleteCluster { delete, describe } => match delete {
            Some(d) => line(s, d, ""),
            None => {
                let _ = writeln!(s, "# {describe}: not managed by slipway, left as it is");
            }
        },
    }
}

impl Plan {
    /// The plan as a shell script, grouped by stage, each command pasteable: what
    /// will run in full; what runs only if something is missing or fails, one line
    /// each (decided from the plan's [`super::LocalFacts`] when it has them).
    pub fn to_text(&self) -> String {
        self.render(false)
    }

    /// Every command the run may spawn, in full (`plan --verbose`).
    pub fn to_text_verbose(&self) -> String {
        self.render(true)
    }

    fn render(&self, verbose: bool) -> String {
        let mut view = View {
            verbose,
            local: self.local.as_ref(),
            context: self.context.clone(),
            seen: Default::default(),
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# slipway plan: {} — job {}, profile {}",
            self.project, self.job, self.profile
        );
        let _ = writeln!(
            s,
            "# provider {}, cluster {}, kube context {}",
            self.provider,
            self.cluster,
            if self.context.is_empty() {
                "(none)"
            } else {
                &self.context
            }
        );
        for l in self.selection.iter().flat_map(|x| x.lines()) {
            let _ = writeln!(s, "# {l}");
        }
        for i in &self.images {
            let _ = writeln!(s, "# image {} -> {}", i.name, i.reference);
            if !i.skipped_inputs.is_empty() {
                let _ = writeln!(
                    s,
                    "#   not hashed (not regular files): {}",
                    i.skipped_inputs.join(", ")
                );
            }
        }
        if let Some(h) = &self.helm {
            let _ = writeln!(s, "# {}", h.dialect.describe());
            for (release, d) in &h.decisions {
                let _ = writeln!(s, "#   release {release}: {}", d.join("; "));
            }
        }
        let mut stage = None;
        for st in &self.steps {
            if stage != Some(st.stage) {
                stage = Some(st.stage);
                let _ = write!(
                    s,
                    "\n## {} (exit code {} on failure, budget {})\n",
                    st.stage,
                    st.stage.exit_code(),
                    humantime::format_duration(self.budget(st.stage))
                );
                if let Some(l) = (st.stage == crate::model::Stage::Build)
                    .then(|| super::stages::build_waves::describe(self))
                    .flatten()
                {
                    let _ = writeln!(s, "# {l}");
                }
            }
            step(&mut s, st, &mut view);
        }
        if !self.on_failure.is_empty() && !verbose {
            let _ = writeln!(
                s,
                "\n## if the job fails: each release's `helm status` and `helm history`, for the diagnosis bundle (plan --verbose)"
            );
        } else if !self.on_failure.is_empty() {
            let _ = writeln!(s, "\n## if the job fails: for the diagnosis bundle");
            for c in &self.on_failure {
                line(&mut s, c, "");
            }
        }
        if let Some(d) = &self.dev {
            let _ = writeln!(
                s,
                "\n## dev: the steps above run again on a change to a watched path"
            );
            for w in &d.watch {
                let mut affects: Vec<String> =
                    w.images.iter().map(|i| format!("image {i}")).collect();
                affects.extend(w.releases.iter().map(|r| format!("release {r}")));
                let _ = writeln!(s, "# watch {}  -> {}", w.path, affects.join(", "));
            }
            for f in &d.logs {
                line(
                    &mut s,
                    &f.cmd,
                    &format!("logs of release {}, restarted when it rolls out", f.release),
                );
            }
            for f in &d.forwards {
                line(
                    &mut s,
                    &f.cmd,
                    &format!("service {}: started again when its pod goes", f.service),
                );
            }
        }
        s
    }
}
