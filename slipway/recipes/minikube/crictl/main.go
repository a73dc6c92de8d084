// A minimal crictl for an offline minikube/kind node image: cri-tools cannot be fetched
// here, so this speaks the CRI (k8s.io/cri-api v1) itself, implementing the verbs and
// output shapes minikube v1.38.1 and kind use: version, info, ps, pods, images,
// inspecti, inspect, rmi, stop, rm, logs, pull.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	rt "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const version = "v1.34.0-slipway-offline"

var (
	endpoint = "unix:///run/containerd/containerd.sock"
	timeout  = 10 * time.Second
)

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "FATA[0000] "+format+"\n", a...)
	os.Exit(1)
}

func readConfig() {
	b, err := os.ReadFile("/etc/crictl.yaml")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.TrimSpace(k) == "runtime-endpoint" {
			if v = strings.Trim(strings.TrimSpace(v), `"'`); v != "" {
				endpoint = v
			}
		}
	}
}

// opts: parsed "--k=v", "--k v", "-k v" flags plus positional args.
type opts struct {
	flags map[string][]string
	args  []string
}

var boolFlags = map[string]bool{"a": true, "all": true, "q": true, "quiet": true, "f": true, "force": true,
	"follow": true, "v": true, "verbose": true, "no-trunc": true, "latest": true, "l": true, "digests": true, "prune": true}

func parse(args []string) opts {
	o := opts{flags: map[string][]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			o.args = append(o.args, a)
			continue
		}
		k := strings.TrimLeft(a, "-")
		if key, v, ok := strings.Cut(k, "="); ok {
			o.flags[key] = append(o.flags[key], v)
			continue
		}
		if boolFlags[k] {
			o.flags[k] = append(o.flags[k], "true")
			continue
		}
		if i+1 < len(args) {
			o.flags[k] = append(o.flags[k], args[i+1])
			i++
		}
	}
	return o
}

func (o opts) has(names ...string) bool {
	for _, n := range names {
		if v, ok := o.flags[n]; ok && v[len(v)-1] != "false" {
			return true
		}
	}
	return false
}

func (o opts) get(names ...string) string {
	for _, n := range names {
		if v, ok := o.flags[n]; ok {
			return v[len(v)-1]
		}
	}
	return ""
}

func connect() (rt.RuntimeServiceClient, rt.ImageServiceClient, context.Context) {
	target := endpoint
	if strings.HasPrefix(target, "unix://") {
		target = "unix:" + strings.TrimPrefix(target, "unix://")
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16*1024*1024)))
	if err != nil {
		die("connect %s: %v", endpoint, err)
	}
	ctx, _ := context.WithTimeout(context.Background(), timeout)
	return rt.NewRuntimeServiceClient(conn), rt.NewImageServiceClient(conn), ctx
}

func printJSON(v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		die("json: %v", err)
	}
	fmt.Println(string(b))
}

func main() {
	readConfig()
	args := os.Args[1:]
	// global flags before the verb
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		args = args[1:]
		k, v, hasV := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch k {
		case "version", "v":
			fmt.Println("crictl version " + version)
			return
		case "timeout", "t", "runtime-endpoint", "r", "image-endpoint", "i", "config", "c":
			if !hasV && len(args) > 0 {
				v, args = args[0], args[1:]
			}
			switch k {
			case "timeout", "t":
				if d, err := time.ParseDuration(v); err == nil {
					timeout = d
				} else if n, err := strconv.Atoi(v); err == nil {
					timeout = time.Duration(n) * time.Second
				}
			case "runtime-endpoint", "r":
				endpoint = v
			}
		case "debug", "D":
		}
	}
	if len(args) == 0 {
		die("usage: crictl [--timeout=D] [-r ENDPOINT] version|info|ps|pods|images|inspecti|inspect|rmi|stop|rm|logs|pull")
	}
	verb, o := args[0], parse(args[1:])
	switch verb {
	case "version":
		cmdVersion()
	case "info":
		cmdInfo()
	case "ps":
		cmdPs(o)
	case "pods":
		cmdPods(o)
	case "images", "image", "img":
		cmdImages(o)
	case "inspecti":
		cmdInspecti(o)
	case "inspect":
		cmdInspect(o)
	case "rmi":
		cmdRmi(o)
	case "stop":
		cmdStop(o)
	case "rm":
		cmdRm(o)
	case "logs":
		cmdLogs(o)
	case "pull":
		cmdPull(o)
	default:
		die("crictl (mk offline): unsupported command %q", verb)
	}
}

func cmdVersion() {
	r, _, ctx := connect()
	v, err := r.Version(ctx, &rt.VersionRequest{})
	if err != nil {
		die("getting the runtime version: %v", err)
	}
	fmt.Printf("Version:  %s\nRuntimeName:  %s\nRuntimeVersion:  %s\nRuntimeApiVersion:  %s\n",
		v.Version, v.RuntimeName, v.RuntimeVersion, v.RuntimeApiVersion)
}

func cmdInfo() {
	r, _, ctx := connect()
	s, err := r.Status(ctx, &rt.StatusRequest{Verbose: true})
	if err != nil {
		die("getting status of runtime: %v", err)
	}
	out := map[string]json.RawMessage{}
	sb, _ := json.Marshal(s.Status)
	out["status"] = sb
	for k, v := range s.Info {
		if json.Valid([]byte(v)) {
			out[k] = json.RawMessage(v)
		} else {
			q, _ := json.Marshal(v)
			out[k] = q
		}
	}
	printJSON(out)
}

func labelFilter(o opts) map[string]string {
	m := map[string]string{}
	for _, l := range o.flags["label"] {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

func stateName(s rt.ContainerState) string {
	return strings.TrimPrefix(s.String(), "CONTAINER_")
}

func ago(ns int64) string {
	d := time.Since(time.Unix(0, ns)).Round(time.Second)
	return d.String() + " ago"
}

func short(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}

func cmdPs(o opts) {
	r, _, ctx := connect()
	f := &rt.ContainerFilter{LabelSelector: labelFilter(o)}
	if st := o.get("state", "s"); st != "" {
		v, ok := rt.ContainerState_value["CONTAINER_"+strings.ToUpper(st)]
		if !ok {
			die("unknown state %q", st)
		}
		f.State = &rt.ContainerStateValue{State: rt.ContainerState(v)}
	} else if !o.has("a", "all") {
		f.State = &rt.ContainerStateValue{State: rt.ContainerState_CONTAINER_RUNNING}
	}
	if p := o.get("pod", "p"); p != "" {
		f.PodSandboxId = p
	}
	resp, err := r.ListContainers(ctx, &rt.ListContainersRequest{Filter: f})
	if err != nil {
		die("listing containers: %v", err)
	}
	cs := resp.Containers
	if n := o.get("name"); n != "" {
		re, err := regexp.Compile(n)
		if err != nil {
			die("bad --name: %v", err)
		}
		var keep []*rt.Container
		for _, c := range cs {
			if re.MatchString(c.Metadata.GetName()) {
				keep = append(keep, c)
			}
		}
		cs = keep
	}
	if id := o.get("id"); id != "" {
		var keep []*rt.Container
		for _, c := range cs {
			if strings.HasPrefix(c.Id, id) {
				keep = append(keep, c)
			}
		}
		cs = keep
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].CreatedAt > cs[j].CreatedAt })
	if o.get("o", "output") == "json" {
		printJSON(map[string]any{"containers": cs})
		return
	}
	if o.has("q", "quiet") {
		for _, c := range cs {
			fmt.Println(c.Id)
		}
		return
	}
	fmt.Printf("%-15s %-15s %-15s %-10s %-25s %-8s %-15s %s\n", "CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD")
	for _, c := range cs {
		fmt.Printf("%-15s %-15s %-15s %-10s %-25s %-8d %-15s %s\n", short(c.Id), short(strings.TrimPrefix(c.ImageRef, "sha256:")),
			ago(c.CreatedAt), stateName(c.State), c.Metadata.GetName(), c.Metadata.GetAttempt(), short(c.PodSandboxId),
			c.Labels["io.kubernetes.pod.name"])
	}
}

func cmdPods(o opts) {
	r, _, ctx := connect()
	f := &rt.PodSandboxFilter{LabelSelector: labelFilter(o)}
	resp, err := r.ListPodSandbox(ctx, &rt.ListPodSandboxRequest{Filter: f})
	if err != nil {
		die("listing pod sandboxes: %v", err)
	}
	if o.has("q", "quiet") {
		for _, p := range resp.Items {
			fmt.Println(p.Id)
		}
		return
	}
	fmt.Printf("%-15s %-15s %-10s %-40s %s\n", "POD ID", "CREATED", "STATE", "NAME", "NAMESPACE")
	for _, p := range resp.Items {
		fmt.Printf("%-15s %-15s %-10s %-40s %s\n", short(p.Id), ago(p.CreatedAt), strings.TrimPrefix(p.State.String(), "SANDBOX_"),
			p.Metadata.GetName(), p.Metadata.GetNamespace())
	}
}

// normalize an image reference the way the CRI does (docker.io/library/x:latest).
func normalize(r string) string {
	if !strings.Contains(r, "@") && !strings.Contains(r[strings.LastIndex(r, "/")+1:], ":") {
		r += ":latest"
	}
	first, _, hasSlash := strings.Cut(r, "/")
	if !hasSlash {
		return "docker.io/library/" + r
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + r
	}
	return r
}

func findImages(is rt.ImageServiceClient, ctx context.Context, ref string) []*rt.Image {
	resp, err := is.ListImages(ctx, &rt.ListImagesRequest{})
	if err != nil {
		die("listing images: %v", err)
	}
	if ref == "" {
		return resp.Images
	}
	n := normalize(ref)
	var out []*rt.Image
	for _, im := range resp.Images {
		match := strings.HasPrefix(im.Id, ref) || strings.HasPrefix(im.Id, "sha256:"+ref)
		for _, t := range append(append([]string{}, im.RepoTags...), im.RepoDigests...) {
			if t == ref || t == n {
				match = true
			}
		}
		if match {
			out = append(out, im)
		}
	}
	return out
}

type jsonImage struct {
	ID          string   `json:"id"`
	RepoTags    []string `json:"repoTags"`
	RepoDigests []string `json:"repoDigests"`
	Size        string   `json:"size"`
	UID         any      `json:"uid"`
	Username    string   `json:"username"`
	Pinned      bool     `json:"pinned"`
}

func toJSON(im *rt.Image) jsonImage {
	j := jsonImage{ID: im.Id, RepoTags: im.RepoTags, RepoDigests: im.RepoDigests,
		Size: strconv.FormatUint(im.Size, 10), Username: im.Username, Pinned: im.Pinned}
	if j.RepoTags == nil {
		j.RepoTags = []string{}
	}
	if j.RepoDigests == nil {
		j.RepoDigests = []string{}
	}
	if im.Uid != nil {
		j.UID = map[string]string{"value": strconv.FormatInt(im.Uid.Value, 10)}
	}
	return j
}

func cmdImages(o opts) {
	_, is, ctx := connect()
	ref := ""
	if len(o.args) > 0 {
		ref = o.args[0]
	}
	ims := findImages(is, ctx, ref)
	switch {
	case o.get("o", "output") == "json":
		list := []jsonImage{}
		for _, im := range ims {
			list = append(list, toJSON(im))
		}
		printJSON(map[string]any{"images": list})
	case o.has("q", "quiet"):
		for _, im := range ims {
			fmt.Println(im.Id)
		}
	default:
		fmt.Printf("%-60s %-20s %-15s %s\n", "IMAGE", "TAG", "IMAGE ID", "SIZE")
		for _, im := range ims {
			tags := im.RepoTags
			if len(tags) == 0 {
				tags = []string{"<none>:<none>"}
			}
			for _, t := range tags {
				i := strings.LastIndex(t, ":")
				fmt.Printf("%-60s %-20s %-15s %.1fMB\n", t[:i], t[i+1:], short(strings.TrimPrefix(im.Id, "sha256:")), float64(im.Size)/1e6)
			}
		}
	}
}

func cmdInspecti(o opts) {
	_, is, ctx := connect()
	if len(o.args) == 0 {
		die("ID cannot be empty")
	}
	for _, ref := range o.args {
		s, err := is.ImageStatus(ctx, &rt.ImageStatusRequest{Image: &rt.ImageSpec{Image: ref}, Verbose: true})
		if err != nil {
			die("image status for %q request: %v", ref, err)
		}
		if s.Image == nil {
			die("no such image %q present", ref)
		}
		out := map[string]any{"status": toJSON(s.Image)}
		for k, v := range s.Info {
			if json.Valid([]byte(v)) {
				out[k] = json.RawMessage(v)
			}
		}
		printJSON(out)
	}
}

func cmdInspect(o opts) {
	r, _, ctx := connect()
	for _, id := range o.args {
		s, err := r.ContainerStatus(ctx, &rt.ContainerStatusRequest{ContainerId: id, Verbose: true})
		if err != nil {
			die("getting the status of the container %q: %v", id, err)
		}
		out := map[string]any{"status": s.Status}
		for k, v := range s.Info {
			if json.Valid([]byte(v)) {
				out[k] = json.RawMessage(v)
			}
		}
		printJSON(out)
	}
}

func cmdRmi(o opts) {
	_, is, ctx := connect()
	if len(o.args) == 0 && !o.has("a", "all", "prune") {
		die("image ID cannot be empty")
	}
	failed := false
	for _, ref := range o.args {
		ims := findImages(is, ctx, ref)
		if len(ims) == 0 {
			fmt.Fprintf(os.Stderr, "ERRO[0000] no such image %s\n", ref)
			failed = true
			continue
		}
		for _, im := range ims {
			if _, err := is.RemoveImage(ctx, &rt.RemoveImageRequest{Image: &rt.ImageSpec{Image: im.Id}}); err != nil {
				fmt.Fprintf(os.Stderr, "ERRO[0000] error of removing image %q: %v\n", ref, err)
				failed = true
				continue
			}
			fmt.Printf("Deleted: %s\n", ref)
		}
	}
	if failed {
		os.Exit(1)
	}
}

func cmdStop(o opts) {
	r, _, _ := connect()
	t, _ := strconv.ParseInt(o.get("timeout", "t"), 10, 64)
	fail := false
	for _, id := range o.args {
		ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Duration(t)*time.Second)
		if _, err := r.StopContainer(ctx, &rt.StopContainerRequest{ContainerId: id, Timeout: t}); err != nil {
			fmt.Fprintf(os.Stderr, "ERRO[0000] stopping the container %q: %v\n", id, err)
			fail = true
		} else {
			fmt.Println(id)
		}
		cancel()
	}
	if fail {
		os.Exit(1)
	}
}

func cmdRm(o opts) {
	r, _, ctx := connect()
	fail := false
	for _, id := range o.args {
		if o.has("f", "force") {
			_, _ = r.StopContainer(ctx, &rt.StopContainerRequest{ContainerId: id, Timeout: 0})
		}
		if _, err := r.RemoveContainer(ctx, &rt.RemoveContainerRequest{ContainerId: id}); err != nil {
			fmt.Fprintf(os.Stderr, "ERRO[0000] removing container %q: %v\n", id, err)
			fail = true
		} else {
			fmt.Println(id)
		}
	}
	if fail {
		os.Exit(1)
	}
}

func cmdPull(o opts) {
	_, is, _ := connect()
	if len(o.args) == 0 {
		die("image cannot be empty")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	resp, err := is.PullImage(ctx, &rt.PullImageRequest{Image: &rt.ImageSpec{Image: o.args[0]}})
	if err != nil {
		die("pulling image: %v", err)
	}
	fmt.Printf("Image is up to date for %s\n", resp.ImageRef)
}

// logs: CRI log lines are "<RFC3339Nano> <stream> <P|F> <message>".
func cmdLogs(o opts) {
	r, _, ctx := connect()
	if len(o.args) == 0 {
		die("ID cannot be empty")
	}
	s, err := r.ContainerStatus(ctx, &rt.ContainerStatusRequest{ContainerId: o.args[0]})
	if err != nil {
		die("getting the status of the container %q: %v", o.args[0], err)
	}
	path := s.Status.LogPath
	tail := -1
	if t := o.get("tail"); t != "" {
		tail, _ = strconv.Atoi(t)
	}
	f, err := os.Open(path)
	if err != nil {
		die("open log %s: %v", path, err)
	}
	defer f.Close()
	type line struct {
		stderr bool
		text   string
	}
	var lines []line
	var partial strings.Builder
	rd := bufio.NewReaderSize(f, 1<<20)
	emit := func(l line) {
		if l.stderr {
			fmt.Fprint(os.Stderr, l.text)
		} else {
			fmt.Print(l.text)
		}
	}
	handle := func(raw string, collect bool) {
		raw = strings.TrimRight(raw, "\n")
		parts := strings.SplitN(raw, " ", 4)
		if len(parts) < 3 {
			return
		}
		msg := ""
		if len(parts) == 4 {
			msg = parts[3]
		}
		partial.WriteString(msg)
		if parts[2] == "P" {
			return
		}
		l := line{stderr: parts[1] == "stderr", text: partial.String() + "\n"}
		partial.Reset()
		if collect {
			lines = append(lines, l)
		} else {
			emit(l)
		}
	}
	for {
		raw, err := rd.ReadString('\n')
		if raw != "" && strings.HasSuffix(raw, "\n") {
			handle(raw, true)
		}
		if err != nil {
			break
		}
	}
	if tail >= 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		emit(l)
	}
	if !o.has("f", "follow") {
		return
	}
	var pending string
	for {
		raw, err := rd.ReadString('\n')
		pending += raw
		if strings.HasSuffix(pending, "\n") {
			handle(pending, false)
			pending = ""
		}
		if err != nil {
			time.Sleep(500 * time.Millisecond)
		}
	}
}
