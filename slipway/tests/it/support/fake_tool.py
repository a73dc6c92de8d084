#!/usr/bin/env python3
"""A fake docker / kind / minikube / helm / kubectl for slipway's tier-2 tests.

Installed under each tool's name (symlinks) first on PATH. Every invocation appends
one JSON line to $FAKE_LOG with the tool, argv, stdin, env and cwd. Behaviour:

* Rules ($FAKE_RULES, a JSON list) inject faults. The first rule whose `tool`
  matches and whose `match` strings all occur in the joined argv applies:
  {"tool", "match": [..], "stdout", "stderr", "exit", "sleep", "times",
   "echo_stdin": bool, "signal_delay": seconds, "then_simulate": bool,
   "grandchild": seconds, "until": path}. `times` limits
  how often it fires; `then_simulate` only delays, then the simulation answers;
  `until` waits (after `sleep`) until the file exists.
* Otherwise a small simulated world kept in $FAKE_STATE/state.json answers:
  kind clusters and nodes, docker images, loaded images, helm releases (with the
  values they were installed with), namespaces, secrets (key names only), minikube
  profiles. `kubectl port-forward` serves HTTP on the requested local port with
  answers derived from the release's values, like the sample service would.
* `go` "builds" a tool by linking this script under the tool's name (`install
  PKG@V` into $GOBIN, `build -o OUT`); `curl` serves files from
  $FAKE_DOWNLOAD_DIR by the URL's last path segment and otherwise fails as an
  offline machine does; `dockerd` and `runc` only record that they ran.
* SIGINT/SIGTERM are logged ({"signal": ...}) before exiting 130/143, so tests can
  tell a graceful stop from a SIGKILL.
* Like the real tools, JSON comes only when asked for (`--output json`, `-o json`,
  docker's `--format {{json .}}`); otherwise the tools' text (tables, YAML).
* $FAKE_CONVERGE=N: a cluster that converges over several reads. After each helm
  upgrade or rollback, a release's first N workload reads show the previous
  observedGeneration (status otherwise complete, as a controller that has not seen
  the change yet reports it), and its first N pod reads show pods not Ready.
* `kubectl get nodes -o json`: one node, 2 CPUs and 8Gi allocatable.
* `kubectl annotate pod POD K=V` is kept: the pod's later reads carry it.
* A release's Service has the type its values set (`service.type`: ClusterIP,
  NodePort, LoadBalancer) and `service.nodePort` when it is not ClusterIP.
"""
import fcntl
import hashlib
import json
import os
import signal
import sys
import time

import re

# A provisioned copy is named like kind-v0.30.0: it is still the fake kind.
TOOL = re.sub(r"-v[0-9][0-9.]*$", "", os.path.basename(sys.argv[0]))
# ... and reports the version in its name.
NAMED = re.search(r"-(v[0-9][0-9.]*)$", os.path.basename(sys.argv[0]))
NAMED = NAMED.group(1) if NAMED else None
ARGV = sys.argv[1:]
LOG = os.environ.get("FAKE_LOG", "/dev/null")
STATE_DIR = os.environ.get("FAKE_STATE", "/tmp")
STATE = os.path.join(STATE_DIR, "state.json")


def log(entry):
    # One write(2) on an O_APPEND descriptor: a concurrent reader sees either
    # none of the line or all of it, and a signal cannot split it.
    line = (json.dumps(entry) + "\n").encode()
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)


class World:
    """state.json under an exclusive lock for the whole invocation."""

    def __enter__(self):
        self.f = open(os.path.join(STATE_DIR, "state.lock"), "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        try:
            with open(STATE) as s:
                self.s = json.load(s)
        except (FileNotFoundError, json.JSONDecodeError):
            self.s = {}
        for k in ("clusters", "built", "loaded", "releases", "namespaces", "secrets", "minikube", "hits"):
            self.s.setdefault(k, {} if k not in ("clusters",) else [])
        return self.s

    def __exit__(self, *exc):
        with open(STATE + ".tmp", "w") as s:
            json.dump(self.s, s)
        os.replace(STATE + ".tmp", STATE)
        self.f.close()


def out(text="", err="", code=0):
    if text:
        sys.stdout.write(text)
    if err:
        sys.stderr.write(err)
    sys.stdout.flush()
    sys.exit(code)


def flag(name, default=None):
    """Value of --name VALUE or --name=VALUE."""
    for i, a in enumerate(ARGV):
        if a == name and i + 1 < len(ARGV):
            return ARGV[i + 1]
        if a.startswith(name + "="):
            return a[len(name) + 1:]
    return default


def json_asked():
    """Did the caller ask for JSON, as the real tools need to be asked?"""
    return "json" in (flag("--output"), flag("-o"), flag("--format")) or flag("--format") == "{{json .}}"


def yaml(v, indent=0):
    """A small YAML rendering (what kubectl and helm print without -o json)."""
    pad = "  " * indent
    if isinstance(v, dict):
        lines = []
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                lines.append(f"{pad}{k}:\n{yaml(x, indent + 1)}")
            else:
                lines.append(f"{pad}{k}: {json.dumps(x) if x in ('', {}, []) else x}")
        return "\n".join(lines)
    if isinstance(v, list):
        return "\n".join(f"{pad}- " + yaml(x, indent + 1).lstrip() for x in v)
    return f"{pad}{v}"


def table(items, ns):
    """kubectl's default table for `get` (names only), or its "No resources" line."""
    if not items:
        out(err=f"No resources found in {ns} namespace.\n")
    rows = ["NAME"] + [i.get("kind", "").lower() + "/" + i["metadata"]["name"] if i.get("kind") else i["metadata"]["name"] for i in items]
    out("\n".join(rows) + "\n")


def converge_after():
    return int(os.environ.get("FAKE_CONVERGE", "0") or 0)


def read_count(r, what):
    """Count this read of `what` for release `r` (reset by each upgrade or rollback)."""
    reads = r.setdefault("reads", {})
    reads[what] = reads.get(what, 0) + 1
    return reads[what]


def on_signal(signum, _frame):
    name = signal.Signals(signum).name
    log({"tool": TOOL, "argv": ARGV, "signal": name, "pid": os.getpid()})
    time.sleep(float(os.environ.get("FAKE_SIGNAL_DELAY", "0")))
    sys.exit(128 + signum)


def apply_rule(stdin):
    try:
        rules = json.load(open(os.environ["FAKE_RULES"]))
    except (KeyError, FileNotFoundError):
        return
    joined = " ".join([TOOL] + ARGV)
    for i, r in enumerate(rules):
        if r.get("tool") not in (None, TOOL):
            continue
        if not all(m in joined for m in r.get("match", [])):
            continue
        with World() as w:
            hits = w["hits"].get(str(i), 0)
            if "times" in r and hits >= r["times"]:
                continue
            w["hits"][str(i)] = hits + 1
        if "signal_delay" in r:
            os.environ["FAKE_SIGNAL_DELAY"] = str(r["signal_delay"])
        if "grandchild" in r:
            # A process outside our group that keeps our stdout open after we exit.
            import subprocess
            subprocess.Popen(["sleep", str(r["grandchild"])], start_new_session=True)
        end = time.time() + r.get("sleep", 0)
        while time.time() < end:
            time.sleep(0.05)
        while "until" in r and not os.path.exists(r["until"]):
            time.sleep(0.05)
        if r.get("then_simulate"):
            return
        err = r.get("stderr", "")
        if r.get("echo_stdin"):
            err += stdin
        out(r.get("stdout", ""), err, r.get("exit", 0))


def image_id(ref):
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


# ---------------------------------------------------------------- docker
def docker(stdin):
    a = ARGV
    if a[:1] == ["version"]:
        out("27.3.1\n")
    if a[:1] == ["info"]:
        if not json_asked():
            out(f"Client:\n Version:    27.3.1\n\nServer:\n Server Version: 27.3.1\n Docker Root Dir: {STATE_DIR}\n")
        out(json.dumps({"ServerVersion": "27.3.1", "DockerRootDir": STATE_DIR}) + "\n")
    if a[:2] == ["image", "inspect"]:
        with World() as w:
            ref = a[-1]
            if ref in w["built"]:
                # `--format {{.Size}}`: a 5 MB image, like the sample's.
                out(("5310000" if "{{.Size}}" in a else w["built"][ref]) + "\n")
        # Kind node images and minikube's base image are here (a rule can say otherwise).
        if ref.startswith(("kindest/node:", "slipway-local/kind-node:", "gcr.io/k8s-minikube/kicbase:")):
            out(image_id(ref) + "\n")
        out(err=f"Error response from daemon: No such image: {ref}\n", code=1)
    if a[:1] == ["pull"]:
        out(err='Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host\n', code=1)
    if a[:1] == ["build"]:
        ref = flag("--tag")
        with World() as w:
            w["built"][ref] = image_id(ref + str(len(w["built"])))
        out(f"Successfully built\nSuccessfully tagged {ref}\n")
    if a[:1] == ["push"]:
        out(f"{a[1]}: digest: sha256:{'0' * 64} size: 528\n")
    if a[:1] == ["exec"]:
        node, ref = a[1], a[-1]
        with World() as w:
            cluster = node.rsplit("-control-plane", 1)[0]
            if "ctr" in a and "pull" in a:
                # A node pulls from the local registry: what was built under that name
                # (as `docker push` sent it), in ctr's progress format.
                if ref not in w["built"]:
                    out(err=f"ctr: failed to resolve reference \"{ref}\": {ref}: not found\n", code=1)
                w["loaded"].setdefault(cluster, {})[ref] = w["built"][ref]
                out(f"{ref}: resolved |++++|\nconfig-{w['built'][ref]}: done |++++|\nelapsed: 0.1 s total: 0.0 B (0.0 B/s)\n")
            loaded = w["loaded"].get(cluster, {})
            if ref in loaded:
                out(json.dumps({"status": {"id": loaded[ref], "repoTags": ["docker.io/library/" + ref]}}) + "\n")
        out(err=f'level=fatal msg="no such image {ref} present"\n', code=1)
    out()


# ---------------------------------------------------------------- kind
def kind(stdin):
    a = ARGV
    name = flag("--name", "kind")
    if a[:1] == ["version"]:
        out(f"kind {NAMED or 'v0.30.0'} go1.24.6 linux/amd64\n")
    if a[:2] == ["get", "clusters"]:
        with World() as w:
            if not w["clusters"]:
                out(err="No kind clusters found.\n")
            out("".join(c + "\n" for c in sorted(w["clusters"])))
    if a[:2] == ["get", "nodes"]:
        with World() as w:
            if name in w["clusters"]:
                out(f"{name}-control-plane\n")
        out(err=f"No kind nodes found for cluster \"{name}\".\n")
    if a[:2] == ["create", "cluster"]:
        with World() as w:
            if name in w["clusters"]:
                out(err=f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"\n', code=1)
            w["clusters"].append(name)
        out(err=f"Creating cluster \"{name}\" ...\n")
    if a[:2] == ["delete", "cluster"]:
        with World() as w:
            if name in w["clusters"]:
                w["clusters"].remove(name)
            w["loaded"].pop(name, None)
        out(err=f"Deleting cluster \"{name}\" ...\n")
    if a[:2] == ["load", "docker-image"]:
        ref = a[2]
        with World() as w:
            if name not in w["clusters"]:
                out(err=f"ERROR: no nodes found for cluster \"{name}\"\n", code=1)
            if ref not in w["built"]:
                out(err=f"ERROR: image: \"{ref}\" not present locally\n", code=1)
            w["loaded"].setdefault(name, {})[ref] = w["built"][ref]
        out(err=f"Image: \"{ref}\" with ID \"{image_id(ref)}\" not yet present on node \"{name}-control-plane\", loading...\n")
    out()


# ---------------------------------------------------------------- minikube
def minikube(stdin):
    a = ARGV
    p = flag("--profile", "minikube")
    if a[:1] == ["version"]:
        out("v1.34.0\n")
    with World() as w:
        if a[:1] == ["status"]:
            if w["minikube"].get(p):
                if not json_asked():
                    out(f"{p}\ntype: Control Plane\nhost: Running\nkubelet: Running\napiserver: Running\nkubeconfig: Configured\n")
                out(json.dumps({"Name": p, "Host": "Running", "Kubelet": "Running", "APIServer": "Running"}) + "\n")
            if not json_asked():
                body = f'* Profile "{p}" not found. Run "minikube profile list" to view all profiles.\n'
            else:
                body = json.dumps({"Name": p, "Host": "Nonexistent", "APIServer": "Nonexistent"}) + "\n"
        elif a[:1] == ["start"]:
            w["minikube"][p] = True
            w["clusters"].append("minikube:" + p)
            body = None
        elif a[:1] == ["delete"]:
            w["minikube"].pop(p, None)
            w["loaded"].pop(p, None)
            body = None
        elif a[:2] == ["image", "ls"]:
            imgs = [{"id": i.split(":", 1)[1], "repoTags": [r]} for r, i in w["loaded"].get(p, {}).items()]
            body = json.dumps(imgs) + "\n" if json_asked() else "".join("docker.io/library/" + r + "\n" for r in w["loaded"].get(p, {}))
        elif a[:2] == ["image", "load"]:
            w["loaded"].setdefault(p, {})[a[2]] = w["built"].get(a[2], image_id(a[2]))
            body = None
        else:
            body = None
    if a[:1] == ["status"]:
        out(body, code=85)
    out(body or "")


# ---------------------------------------------------------------- helm
def parse_sets():
    vals = {}
    for i, x in enumerate(ARGV):
        if x in ("--set", "--set-string", "--set-file") and i + 1 < len(ARGV):
            k, _, v = ARGV[i + 1].partition("=")
            vals[k] = v
    return vals


HELM4_ONLY = ("--server-side", "--force-conflicts", "--rollback-on-failure", "--wait=", "--force-replace")


def helm(stdin):
    a = ARGV
    ns = flag("--namespace", "default")
    version = NAMED or os.environ.get("FAKE_HELM_VERSION", "v4.3.1")
    major = int(version.lstrip("v").split(".")[0])
    if a[:1] == ["version"]:
        if major < 3 and "--template" in a:
            out(err="Error: unknown flag: --template\n", code=1)
        out(version if "--template" in a else version + "+g13654a5\n")
    # Each major rejects the flags it does not know, as cobra does.
    for x in a:
        if major == 3 and x.startswith(HELM4_ONLY):
            out(err=f"Error: unknown flag: {x.split('=')[0]}\n", code=1)
        if major >= 4 and x == "--atomic":
            sys.stderr.write("level=WARN msg=\"--atomic is deprecated\"\n")
    if a[:2] == ["dependency", "build"]:
        out("Saving 2 charts\n")
    rel = a[1] if len(a) > 1 else ""
    key = f"{ns}/{rel}"
    with World() as w:
        r = w["releases"].get(key)
        if a[0] == "status":
            if not r:
                body = None
            elif not json_asked():
                body = f"NAME: {rel}\nLAST DEPLOYED: Mon Nov 23 00:00:00 2026\nNAMESPACE: {ns}\nSTATUS: {r['status']}\nREVISION: {r['version']}\nDESCRIPTION: {r['description']}\n"
            else:
                body = json.dumps({"name": rel, "namespace": ns, "version": r["version"], "info": {"status": r["status"], "description": r["description"]}}) + "\n"
        elif a[:2] == ["upgrade", "--install"]:
            rel = a[2]
            key = f"{ns}/{rel}"
            r = w["releases"].get(key, {"version": 0, "history": []})
            if major >= 4 and "--force-conflicts" in a and flag("--server-side") in ("false", None):
                out(err="Error: forceConflicts enabled when serverSideApply disabled\n", code=1)
            values = parse_sets()
            history = r.get("history", []) + [{"revision": r["version"] + 1, "values": values, "description": flag("--description", "Upgrade complete")}]
            w["releases"][key] = {"version": r["version"] + 1, "status": "deployed", "description": flag("--description", "Upgrade complete"), "values": values, "history": history, "reads": {}}
            w["namespaces"][ns] = True
            body = f'Release "{rel}" has been upgraded. Happy Helming!\n'
        elif a[0] == "rollback":
            # As helm does: a missing release, or a revision (by default the one
            # before the last) that is not in the history, is an error.
            if not r:
                out(err="Error: release: not found\n", code=1)
            hist = r.get("history", [])
            to = a[2] if len(a) > 2 and a[2].isdigit() else str(r["version"] - 1)
            target = next((h for h in hist if str(h["revision"]) == to), None)
            if not target:
                out(err=f"Error: release has no {to} version\n", code=1)
            r["version"] += 1
            r["status"] = "deployed"
            r["reads"] = {}
            r["values"] = target["values"]
            r["description"] = f"Rollback to {target['revision']}"
            r["history"] = hist + [{"revision": r["version"], "values": target["values"], "description": r["description"]}]
            body = f"Rollback was a success! Happy Helming!\n"
        elif a[0] == "history":
            if not r:
                out(err="Error: release: not found\n", code=1)
            hist = [{"revision": h["revision"], "status": "deployed" if h["revision"] == r["version"] else "superseded", "description": h["description"], "chart": "sample-0.1.0", "app_version": "0.1.0", "updated": "2026-11-23T00:00:00Z"} for h in r.get("history", [])]
            if json_asked():
                body = json.dumps(hist) + "\n"
            else:
                body = "REVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION\tDESCRIPTION\n" + "".join(f"{h['revision']}\tMon Nov 23 00:00:00 2026\t{h['status']}\t{h['chart']}\t{h['app_version']}\t{h['description']}\n" for h in hist)
        elif a[0] == "uninstall":
            w["releases"].pop(key, None)
            body = f'release "{rel}" uninstalled\n' if r else ""
        else:
            body = ""
    if a[0] == "status" and body is None:
        out(err="Error: release: not found\n", code=1)
    out(body)


# ---------------------------------------------------------------- kubectl
def release_values(w, ns, service):
    for key, r in w["releases"].items():
        rns, rel = key.split("/", 1)
        if rns == ns and (rel == service or service.startswith(rel)):
            return rel, r
    return None, None


def releases_in(w, ns):
    """(release, its record, its replicaCount) for each release in namespace `ns`."""
    for key, r in w["releases"].items():
        rns, rel = key.split("/", 1)
        if rns == ns:
            yield rel, r, int(r["values"].get("replicaCount", "1") or 1)


def workloads(w, ns):
    items = []
    for rel, r, n in releases_in(w, ns):
        # Not converged yet: the controller has not seen this generation, and the
        # status it last wrote (for the previous one) looks complete.
        seen = r["version"] - 1 if read_count(r, "workloads") <= converge_after() else r["version"]
        items.append({
            "kind": "Deployment",
            "metadata": {"name": rel, "generation": r["version"], "annotations": {"meta.helm.sh/release-name": rel, "meta.helm.sh/release-namespace": ns}},
            "spec": {"replicas": n, "selector": {"matchLabels": {"app.kubernetes.io/instance": rel}}},
            "status": {"observedGeneration": seen, "replicas": n, "updatedReplicas": n, "availableReplicas": n, "readyReplicas": n},
        })
    return items


def pods(w, ns, selector):
    rels = [k.split("/", 1)[1] for k in w["releases"] if k.startswith(ns + "/")]
    if selector:
        rels = [selector.split("app.kubernetes.io/instance=", 1)[-1].split(",")[0]]
    items = []
    for rel in rels:
        r = w["releases"].get(f"{ns}/{rel}")
        if not r:
            continue
        v = r["values"]
        image = f"{v.get('image.repository', rel)}:{v.get('image.tag', 'latest')}"
        n = int(v.get("replicaCount", "1") or 1)
        ready = read_count(r, "pods") > converge_after()
        items += [{
            "metadata": {"name": f"{rel}-{i}", "labels": {"app.kubernetes.io/instance": rel}, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": w.get("pod_annotations", {}).get(f"{ns}/{rel}-{i}", {})},
            "spec": {"containers": [{"name": rel, "image": image}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"name": rel, "ready": ready, "restartCount": 0, "state": {"running": {}}}]},
        } for i in range(n)]
    return items


def sample_answer(ns, service, method, path, body):
    """What the sample service behind `service` answers: (status, text)."""
    with World() as w:
        _, r = release_values(w, ns, service)
        secret_name = (r or {}).get("values", {}).get("secret.existingSecret", "")
        has_secret = f"{ns}/{secret_name}" in w["secrets"]
    v = (r or {}).get("values", {})
    canned = json.loads(os.environ.get("FAKE_HTTP", "{}")).get(f"{method} {path}")
    if canned:
        return canned["status"], canned.get("body", "")
    if r is None:
        return 503, "no release behind this service\n"
    if path == "/healthz":
        return 200, "ok\n"
    if path == "/readyz":
        return 200, "ready\n"
    if path == "/version":
        return 200, json.dumps({"name": "sample", "version": "0.1.0", "image_tag": v.get("image.tag", "")})
    if path == "/api/echo":
        msg = json.loads(body or "{}").get("message", "")
        return 200, json.dumps({"echo": msg, "greeting": v.get("config.greeting", ""), "secret_present": has_secret})
    return 404, "not found\n"


def http_server(port, answer, unix=None):
    """Serve `answer(method, path, body) -> (status, text)` on 127.0.0.1:port (0: any),
    or on the unix socket `unix`."""
    import http.server
    import socketserver

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def handle_one(self):
            n = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(n).decode() if n else ""
            status, text = answer(self.command, self.path, body)
            data = text.encode()
            self.send_response(status)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_HEAD = handle_one

    if unix:
        return socketserver.UnixStreamServer(unix, H)
    return http.server.HTTPServer(("127.0.0.1", port), H)


def serve(ns, service, local, remote):
    srv = http_server(local, lambda m, p, b: sample_answer(ns, service, m, p, b))
    log({"tool": "kubectl", "port_forward_pid": os.getpid(), "port": local})
    print(f"Forwarding from 127.0.0.1:{local} -> {remote}", flush=True)
    srv.serve_forever()


def proxy():
    """`kubectl proxy`: the API server's service proxy for the simulated services.
    $FAKE_PROXY_DOWN="FROM-TO" (seconds since the proxy started) answers 503 in that
    window, as a Service with no ready endpoint does."""
    t0 = time.monotonic()
    down = os.environ.get("FAKE_PROXY_DOWN", "")
    lo, hi = (float(x) for x in down.split("-")) if down else (-1.0, -1.0)

    def answer(method, path, body):
        m = re.match(r"^/api/v1/namespaces/([^/]+)/services/([^/:]+):(\d+)/proxy(/.*)$", path)
        if not m:
            return 404, "not a service proxy path\n"
        if lo <= time.monotonic() - t0 <= hi:
            return 503, "no endpoints available for service\n"
        ns, service, _, rest = m.groups()
        return sample_answer(ns, service, method, rest, body)

    # --unix-socket=PATH serves there (as kubectl does, no TCP port), recording the
    # mode of the socket's directory; --accept-paths=RE answers 403 elsewhere.
    sock = next((a.split("=", 1)[1] for a in ARGV if a.startswith("--unix-socket=")), None)
    accept = next((a.split("=", 1)[1] for a in ARGV if a.startswith("--accept-paths=")), None)
    serve_path = answer
    if accept:
        def serve_path(method, path, body):
            if not any(re.search(r, path.split("?", 1)[0]) for r in accept.split(",")):
                return 403, "Forbidden\n"
            return answer(method, path, body)
    if sock:
        srv = http_server(0, serve_path, unix=sock)
        mode = os.stat(os.path.dirname(sock)).st_mode & 0o777
        log({"tool": "kubectl", "proxy_pid": os.getpid(), "socket": sock, "socket_dir_mode": mode})
        print(f"Starting to serve on {sock}", flush=True)
        srv.serve_forever()
    srv = http_server(0, serve_path)
    log({"tool": "kubectl", "proxy_pid": os.getpid(), "port": srv.server_port})
    print(f"Starting to serve on 127.0.0.1:{srv.server_port}", flush=True)
    srv.serve_forever()


def kubectl(stdin):
    a = [x for x in ARGV]
    ctx = flag("--context")
    ns = flag("--namespace", "default")
    # Drop the global flags to find the verb.
    rest, skip = [], False
    for x in a:
        if skip:
            skip = False
            continue
        if x in ("--context", "--namespace"):
            skip = True
            continue
        rest.append(x)
    verb = rest[0] if rest else ""
    if verb == "version":
        v = NAMED or "v1.31.2"
        if not json_asked():
            out(f"Client Version: {v}\nKustomize Version: v5.4.2\n")
        out(json.dumps({"clientVersion": {"major": "1", "minor": v.split(".")[1], "gitVersion": v}}) + "\n")
    if rest[:2] == ["config", "get-contexts"]:
        with World() as w:
            names = ["kind-" + c for c in w["clusters"] if not c.startswith("minikube:")]
            names += [p for p in w["minikube"]]
        names += [c for c in os.environ.get("FAKE_CONTEXTS", "").split(",") if c]
        out("".join(n + "\n" for n in names))
    if rest[:2] == ["config", "view"]:
        # Contexts slipway made (kind, minikube) point at local clusters; FAKE_CONTEXTS
        # at remote ones; FAKE_FOREIGN names contexts that point elsewhere.
        with World() as w:
            local = [("kind-" + c, "kind-" + c, "https://127.0.0.1:6443", None) for c in w["clusters"] if not c.startswith("minikube:")]
            local += [(p, p, "https://192.168.49.2:8443", "minikube.sigs.k8s.io") for p in w["minikube"]]
        remote = [(c, c, "https://10.20.0.1:6443", None) for c in os.environ.get("FAKE_CONTEXTS", "").split(",") if c]
        foreign = [(c, "prod-cluster", "https://prod.example:6443", None) for c in os.environ.get("FAKE_FOREIGN", "").split(",") if c]
        entries = {n: e for n, *e in local + remote + foreign}
        cfg = {"kind": "Config", "contexts": [], "clusters": []}
        for name, (cluster, server, provider) in entries.items():
            cfg["contexts"].append({"name": name, "context": {"cluster": cluster, "user": cluster}})
            c = {"server": server}
            if provider:
                c["extensions"] = [{"name": "cluster_info", "extension": {"provider": provider}}]
            cfg["clusters"].append({"name": cluster, "cluster": c})
        out((json.dumps(cfg) if json_asked() else yaml(cfg)) + "\n")
    known = [c for c in os.environ.get("FAKE_CONTEXTS", "").split(",") if c]
    known += [c for c in os.environ.get("FAKE_FOREIGN", "").split(",") if c]
    with World() as w:
        known += ["kind-" + c for c in w["clusters"]] + list(w["minikube"])
    if ctx not in known:
        out(err=f'error: context "{ctx}" does not exist\n', code=1)
    if rest[:2] == ["get", "--raw"]:
        out("ok")
    if rest[:2] == ["get", "nodes"] and json_asked():
        # One node with room for every fixture (a rule can answer otherwise).
        out(json.dumps({"items": [{"metadata": {"name": "fx-control-plane"},
                                   "status": {"allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"}}}]}) + "\n")
    if verb == "apply":
        doc = json.loads(stdin)
        with World() as w:
            if doc["kind"] == "Secret":
                m = doc["metadata"]
                w["secrets"][f"{m['namespace']}/{m['name']}"] = {"keys": sorted(doc.get("stringData", {})), "labels": m.get("labels", {}), "annotations": m.get("annotations", {})}
            elif doc["kind"] == "Namespace":
                w["namespaces"][doc["metadata"]["name"]] = True
        out(f"{doc['kind'].lower()}/{doc['metadata']['name']} serverside-applied\n")
    # Smoke checks of type job: `create -f -` names the Job; it completes at once
    # unless FAKE_JOB says "stuck" (its pod cannot pull) or "fail".
    if verb == "create":
        doc = json.loads(stdin)
        name = doc["metadata"]["generateName"] + "x7k2p"
        with World() as w:
            w.setdefault("jobs", {})[ns + "/" + name] = doc
        out(f"job.batch/{name}\n")
    job_mode = os.environ.get("FAKE_JOB", "complete")
    if rest[:1] == ["get"] and len(rest) > 1 and rest[1].startswith("job/"):
        status = {"complete": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
                  "fail": {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}}.get(job_mode, {"active": 1})
        if not json_asked():
            table([{"kind": "Job", "metadata": {"name": rest[1].split("/", 1)[1]}}], ns)
        out(json.dumps({"status": status}) + "\n")
    if rest[:2] == ["get", "pods"] and flag("--selector", "").startswith("job-name="):
        waiting = {"reason": "ErrImageNeverPull", "message": "Container image is not present with pull policy of Never"}
        items = [{"metadata": {"name": "job-pod"}, "status": {"containerStatuses": [{"state": {"waiting": waiting}}]}}] if job_mode == "stuck" else []
        if not json_asked():
            table(items, ns)
        out(json.dumps({"items": items}) + "\n")
    if verb == "logs" and len(rest) > 1 and rest[1].startswith("job/"):
        out("" if job_mode == "stuck" else "http://web/healthz: 200\n")
    if verb == "delete" and len(rest) > 1 and rest[1].startswith("job/"):
        with World() as w:
            w.setdefault("jobs", {}).pop(ns + "/" + rest[1].split("/", 1)[1], None)
        out()
    if rest[:2] == ["get", "services"]:
        # A Service named after each release of the namespace, of the type its values
        # set (service.type, service.nodePort), ClusterIP by default.
        with World() as w:
            items = []
            for key, r in w["releases"].items():
                if key.split("/", 1)[0] != ns:
                    continue
                name = key.split("/", 1)[1]
                kind = r["values"].get("service.type", "ClusterIP") or "ClusterIP"
                port = {"port": 80, "targetPort": 8080, "protocol": "TCP"}
                svc = {"kind": "Service", "metadata": {"name": name, "annotations": {"meta.helm.sh/release-name": name}},
                       "spec": {"type": kind, "ports": [port]}, "status": {"loadBalancer": {}}}
                if kind in ("NodePort", "LoadBalancer"):
                    port["nodePort"] = int(r["values"].get("service.nodePort") or 30000 + int(hashlib.sha256(name.encode()).hexdigest(), 16) % 2768)
                items.append(svc)
        if not json_asked():
            table(items, ns)
        out(json.dumps({"items": items}) + "\n")
    if rest[:2] == ["get", "services,endpointslices,replicasets"]:
        # Who serves each release: its Service, an EndpointSlice whose endpoints are
        # the release's pods (all ready), and one ReplicaSet (the current one) the
        # pods are named after.
        with World() as w:
            items = []
            for rel, r, n in releases_in(w, ns):
                items.append({"kind": "Service", "metadata": {"name": rel, "annotations": {"meta.helm.sh/release-name": rel}},
                              "spec": {"selector": {"app.kubernetes.io/instance": rel}}})
                items.append({"kind": "EndpointSlice", "metadata": {"name": rel + "-x", "labels": {"kubernetes.io/service-name": rel}},
                              "endpoints": [{"conditions": {"ready": True}, "targetRef": {"kind": "Pod", "name": f"{rel}-{i}"}} for i in range(n)]})
                items.append({"kind": "ReplicaSet", "metadata": {"name": rel, "annotations": {"deployment.kubernetes.io/revision": str(r["version"])},
                              "ownerReferences": [{"kind": "Deployment", "name": rel}]}})
        out(json.dumps({"items": items}) + "\n")
    if rest[:2] == ["get", "events"]:
        if not json_asked():
            table([], ns)
        out(json.dumps({"items": []}) + "\n")
    if rest[:1] == ["get"] and len(rest) > 1 and rest[1].startswith("namespace/"):
        with World() as w:
            if rest[1].split("/", 1)[1] in w["namespaces"]:
                out("Active")
        out(err=f'Error from server (NotFound): namespaces "{rest[1].split("/", 1)[1]}" not found\n', code=1)
    if verb == "logs":
        out(f"log line from {rest[1]}\n")
    if rest[:2] in (["get", "deployments,statefulsets,daemonsets"], ["get", "deployments,statefulsets,daemonsets,jobs,horizontalpodautoscalers"]):
        with World() as w:
            items = workloads(w, ns)
        if not json_asked():
            table(items, ns)
        out(json.dumps({"items": items}) + "\n")
    if rest[:2] == ["get", "pods"]:
        with World() as w:
            items = pods(w, ns, flag("--selector", ""))
        if not json_asked():
            table(items, ns)
        out(json.dumps({"items": items}) + "\n")
    if rest[:2] == ["annotate", "pod"]:
        with World() as w:
            a = w.setdefault("pod_annotations", {}).setdefault(f"{ns}/{rest[2]}", {})
            for kv in [x for x in rest[3:] if "=" in x and not x.startswith("-")]:
                k, v = kv.split("=", 1)
                a[k] = v
        out(f"pod/{rest[2]} annotated\n")
    if rest[:2] == ["rollout", "status"]:
        out(f'{rest[2]} successfully rolled out\n')
    if verb == "wait":
        out(f"{rest[1]} condition met\n")
    if rest[:2] == ["get", "secret"]:
        sel = flag("--selector", "")
        want = dict(p.split("=", 1) for p in sel.split(",") if "=" in p)
        with World() as w:
            names = [k.split("/", 1)[1] for k, s in w["secrets"].items() if k.startswith(ns + "/") and all(s["labels"].get(x) == y for x, y in want.items())]
        out("".join(f"secret/{n}\n" for n in names))
    if rest[:1] == ["get"] and len(rest) > 1 and rest[1].startswith("secret/"):
        # One annotation of a Secret (`jsonpath={.metadata.annotations.slipway\.dev/digest}`).
        with World() as w:
            s = w["secrets"].get(ns + "/" + rest[1].split("/", 1)[1])
        if s is None:
            out(err=f'Error from server (NotFound): secrets "{rest[1].split("/", 1)[1]}" not found\n', code=1)
        key = (flag("--output", "") or "").split("annotations.", 1)[-1].rstrip("}").replace("\\.", ".")
        out(s.get("annotations", {}).get(key, ""))
    if rest[:2] == ["delete", "secret"]:
        sel = flag("--selector", "")
        want = dict(p.split("=", 1) for p in sel.split(",") if "=" in p)
        with World() as w:
            for k in [k for k, s in w["secrets"].items() if k.startswith(ns + "/") and all(s["labels"].get(x) == y for x, y in want.items())]:
                del w["secrets"][k]
        out()
    if verb == "get":
        out(f"{rest[1]}\n")
    if verb == "proxy":
        proxy()
    if verb == "port-forward":
        target = [x for x in rest if x.startswith("service/")][0].split("/", 1)[1]
        local, remote = [x for x in rest if ":" in x and x.split(":")[0].isdigit()][0].split(":")
        serve(ns, target, int(local), int(remote))
    out()


# ---------------------------------------------------------------- go, curl, dockerd
HERE = os.path.realpath(__file__)


def link_fake(path):
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(HERE, path)


def go(stdin):
    a = ARGV
    if a[:1] == ["install"]:
        pkg = a[-1].split("@")[0]
        link_fake(os.path.join(os.environ["GOBIN"], pkg.rstrip("/").rsplit("/", 1)[-1]))
        out()
    if a[:1] == ["build"]:
        link_fake(flag("-o"))
        out()
    if a[:1] == ["mod"] or a[:1] == ["get"]:
        out()
    out(err=f"fake go: unsupported {a}\n", code=2)


def curl(stdin):
    url = ARGV[-1]
    d = os.environ.get("FAKE_DOWNLOAD_DIR")
    f = os.path.join(d, url.rsplit("/", 1)[-1]) if d else None
    if not f or not os.path.exists(f):
        host = url.split("://", 1)[-1].split("/", 1)[0]
        out(err=f"curl: (6) Could not resolve host: {host}\n", code=6)
    data = open(f, "rb").read()
    dest = flag("--output")
    if dest:
        with open(dest, "wb") as o:
            o.write(data)
        out()
    sys.stdout.write(data.decode())
    out()


def started():
    """When this process was spawned, in seconds since the epoch (to ~10 ms): unlike
    `t`, not later by the interpreter's start-up."""
    try:
        ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


def main():
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    log({"tool": TOOL, "exe": sys.argv[0], "argv": ARGV, "stdin": stdin, "env": dict(os.environ), "cwd": os.getcwd(), "pid": os.getpid(), "t": time.time(), "started": started()})
    apply_rule(stdin)
    {"docker": docker, "kind": kind, "minikube": minikube, "helm": helm, "kubectl": kubectl,
     "go": go, "curl": curl, "dockerd": lambda _: out(), "runc": lambda _: out()}[TOOL](stdin)


if __name__ == "__main__":
    main()
