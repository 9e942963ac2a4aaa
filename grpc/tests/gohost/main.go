// Command gohost is a Nomad-like host for the pledge driver plugin, built from HashiCorp's own
// go-plugin client (Debian's v1.0.1) and go-cty's msgpack encoder: it launches the plugin the
// way Nomad's client does, decodes configs with hcldec against the schemas the plugin
// returns, encodes them with cty/msgpack (as Nomad does), and drives BasePlugin and Driver.
//
// Usage: gohost <plugin binary>. Prints "ok <check>" per passed check, "skip <what>: <why>"
// for gated parts, and exits non-zero with "FAIL <check>: <why>" on the first failure.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/msgpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"

	"pledgehost/goplugin"
	"pledgehost/nomadpb/base"
	"pledgehost/nomadpb/drivers"
	"pledgehost/nomadpb/hclspec"
	"pledgehost/nomadpb/structs"
)

// Nomad's handshake (plugins/base/plugin.go).
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  2,
	MagicCookieKey:   "NOMAD_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255",
}

// connPlugin dispenses the raw gRPC connection; the test builds its clients on it.
type connPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (connPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }
func (connPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return c, nil
}

// client is the plugin client; fail kills the plugin before exiting, so a failed run leaves
// no plugin process behind (deferred calls do not run on os.Exit).
var client *plugin.Client

func fail(check string, format string, args ...interface{}) {
	fmt.Printf("FAIL %s: %s\n", check, fmt.Sprintf(format, args...))
	if client != nil {
		client.Kill()
	}
	os.Exit(1)
}

func ok(check string) { fmt.Printf("ok %s\n", check) }

// toHCLDec converts the plugin's spec (Object of Attr, which is all it uses) into hcldec.
func toHCLDec(s *hclspec.Spec) (hcldec.Spec, error) {
	obj := s.GetObject()
	if obj == nil {
		return nil, fmt.Errorf("root spec is not an Object: %v", s)
	}
	out := hcldec.ObjectSpec{}
	for k, v := range obj.Attributes {
		a := v.GetAttr()
		if a == nil {
			return nil, fmt.Errorf("%s: not an Attr", k)
		}
		expr, diags := hclsyntax.ParseExpression([]byte(a.Type), "type", hcl.Pos{Line: 1, Column: 1})
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: type %q: %s", k, a.Type, diags.Error())
		}
		ty, diags := typeexpr.TypeConstraint(expr)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: type %q: %s", k, a.Type, diags.Error())
		}
		out[k] = &hcldec.AttrSpec{Name: a.Name, Type: ty, Required: a.Required}
	}
	return out, nil
}

// encode decodes HCL source against spec and marshals it like Nomad (msgpack.Marshal(v, v.Type())).
func encode(spec hcldec.Spec, src string) ([]byte, error) {
	f, diags := hclsyntax.ParseConfig([]byte(src), "config.hcl", hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return nil, diags
	}
	v, diags := hcldec.Decode(f.Body, spec, nil)
	if diags.HasErrors() {
		return nil, diags
	}
	return msgpack.Marshal(v, v.Type())
}

// objectWith decodes src against spec, then replaces one attribute, bypassing hcldec's
// conversion (what a host with a stale schema would send).
func objectWith(spec hcldec.Spec, src, key string, val cty.Value) []byte {
	f, diags := hclsyntax.ParseConfig([]byte(src), "config.hcl", hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		fail("object_with", "%s", diags.Error())
	}
	v, diags := hcldec.Decode(f.Body, spec, nil)
	if diags.HasErrors() {
		fail("object_with", "%s", diags.Error())
	}
	attrs := v.AsValueMap()
	attrs[key] = val
	obj := cty.ObjectVal(attrs)
	b, err := msgpack.Marshal(obj, obj.Type())
	if err != nil {
		fail("object_with", "%v", err)
	}
	return b
}

func expectCode(check string, err error, want codes.Code, contains string) {
	if err == nil {
		fail(check, "expected %s, got success", want)
	}
	st, _ := status.FromError(err)
	if st.Code() != want {
		fail(check, "expected %s, got %s: %s", want, st.Code(), st.Message())
	}
	if contains != "" && !strings.Contains(st.Message(), contains) {
		fail(check, "message %q does not contain %q", st.Message(), contains)
	}
	ok(check)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gohost <plugin>")
		os.Exit(2)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "gohost", Output: os.Stderr, Level: hclog.Trace})
	client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          map[string]plugin.Plugin{"driver": connPlugin{}},
		Cmd:              exec.Command(os.Args[1]),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		fail("handshake", "%v", err)
	}
	ok("handshake")
	raw, err := rpc.Dispense("driver")
	if err != nil {
		fail("dispense", "%v", err)
	}
	conn := raw.(*grpc.ClientConn)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	// go-plugin >= 1.2 opens this stream itself; v1.0.1 does not, so the host does.
	stdio, err := goplugin.NewGRPCStdioClient(conn).StreamStdio(ctx, &emptypb.Empty{})
	if err != nil {
		fail("stdio", "%v", err)
	}
	go func() { _, _ = stdio.Recv() }()
	ok("stdio")

	bp := base.NewBasePluginClient(conn)
	info, err := bp.PluginInfo(ctx, &base.PluginInfoRequest{})
	if err != nil {
		fail("plugin_info", "%v", err)
	}
	if info.Type != base.PluginType_DRIVER || info.Name != "pledge" || len(info.PluginApiVersions) != 1 || info.PluginApiVersions[0] != "v0.1.0" {
		fail("plugin_info", "unexpected %v", info)
	}
	ok("plugin_info")

	cs, err := bp.ConfigSchema(ctx, &base.ConfigSchemaRequest{})
	if err != nil || cs.Spec == nil {
		fail("config_schema", "%v %v", err, cs)
	}
	pspec, err := toHCLDec(cs.Spec)
	if err != nil {
		fail("config_schema", "%v", err)
	}
	ok("config_schema")

	pcfg, err := encode(pspec, "pids_limit = 512\ncpu_hard_limit = false\nallow_net_bind_service = true\n")
	if err != nil {
		fail("plugin_config_encode", "%v", err)
	}
	for i := 0; i < 2; i++ { // Nomad's validation launch calls it twice.
		if _, err := bp.SetConfig(ctx, &base.SetConfigRequest{MsgpackConfig: pcfg, PluginApiVersion: "v0.1.0"}); err != nil {
			fail("set_config", "%v", err)
		}
	}
	ok("set_config")
	bad := objectWith(pspec, "", "cpu_hard_limit", cty.StringVal("yes"))
	_, err = bp.SetConfig(ctx, &base.SetConfigRequest{MsgpackConfig: bad, PluginApiVersion: "v0.1.0"})
	expectCode("set_config_wrong_type", err, codes.InvalidArgument, "cpu_hard_limit")
	frac, err := encode(pspec, "rlimit_nofile = 0.1\n")
	if err != nil {
		fail("plugin_config_encode", "%v", err)
	}
	_, err = bp.SetConfig(ctx, &base.SetConfigRequest{MsgpackConfig: frac, PluginApiVersion: "v0.1.0"})
	expectCode("set_config_fraction", err, codes.InvalidArgument, "rlimit_nofile")
	_, err = bp.SetConfig(ctx, &base.SetConfigRequest{MsgpackConfig: []byte{0xc1}, PluginApiVersion: "v0.1.0"})
	expectCode("set_config_malformed", err, codes.InvalidArgument, "")
	if _, err := bp.SetConfig(ctx, &base.SetConfigRequest{MsgpackConfig: pcfg, PluginApiVersion: "v0.1.0",
		NomadConfig: &base.NomadConfig{Driver: &base.NomadDriverConfig{ClientMinPort: 14000, ClientMaxPort: 14512}}}); err != nil {
		fail("set_config_again", "%v", err)
	}
	ok("set_config_again")

	d := drivers.NewDriverClient(conn)
	caps, err := d.Capabilities(ctx, &drivers.CapabilitiesRequest{})
	if err != nil || caps.Capabilities == nil || !caps.Capabilities.SendSignals || !caps.Capabilities.Exec {
		fail("capabilities", "%v %v", err, caps)
	}
	ok("capabilities")

	ts, err := d.TaskConfigSchema(ctx, &drivers.TaskConfigSchemaRequest{})
	if err != nil || ts.Spec == nil {
		fail("task_config_schema", "%v", err)
	}
	tspec, err := toHCLDec(ts.Spec)
	if err != nil {
		fail("task_config_schema", "%v", err)
	}
	ok("task_config_schema")

	fp, err := d.Fingerprint(ctx, &drivers.FingerprintRequest{})
	if err != nil {
		fail("fingerprint", "%v", err)
	}
	first, err := fp.Recv()
	if err != nil {
		fail("fingerprint", "%v", err)
	}
	if first.Attributes["driver.pledge.version"].GetStringVal() == "" {
		fail("fingerprint", "no driver.pledge.version in %v", first.Attributes)
	}
	if _, okk := first.Attributes["driver.pledge.landlock_abi"].GetValue().(*structs.Attribute_IntVal); !okk {
		fail("fingerprint", "landlock_abi is not an int attribute")
	}
	ok("fingerprint")
	healthy := first.Health == drivers.FingerprintResponse_HEALTHY

	events, err := d.TaskEvents(ctx, &drivers.TaskEventsRequest{})
	if err != nil {
		fail("task_events", "%v", err)
	}
	evch := make(chan *drivers.DriverTaskEvent, 16)
	go func() {
		for {
			e, err := events.Recv()
			if err != nil {
				close(evch)
				return
			}
			evch <- e
		}
	}()
	ok("task_events_open")

	for _, rpcName := range []string{"wait", "stop", "destroy", "inspect", "signal"} {
		id := "none/none/00000000"
		var err error
		switch rpcName {
		case "wait":
			_, err = d.WaitTask(ctx, &drivers.WaitTaskRequest{TaskId: id})
		case "stop":
			_, err = d.StopTask(ctx, &drivers.StopTaskRequest{TaskId: id, Timeout: durationpb.New(time.Second)})
		case "destroy":
			_, err = d.DestroyTask(ctx, &drivers.DestroyTaskRequest{TaskId: id, Force: true})
		case "inspect":
			_, err = d.InspectTask(ctx, &drivers.InspectTaskRequest{TaskId: id})
		case "signal":
			_, err = d.SignalTask(ctx, &drivers.SignalTaskRequest{TaskId: id, Signal: "SIGHUP"})
		}
		expectCode("unknown_id_"+rpcName, err, codes.NotFound, "task not found for given id")
	}

	allocDir, err := os.MkdirTemp("", "gohost-alloc")
	if err != nil {
		fail("alloc_dir", "%v", err)
	}
	defer os.RemoveAll(allocDir)
	for _, sub := range []string{"alloc/logs", "web/local", "web/secrets", "web/tmp", "web/private", "broken/local", "broken/secrets", "broken/tmp", "broken/private"} {
		_ = os.MkdirAll(allocDir+"/"+sub, 0o755)
	}
	taskConfig := func(id, src string) *drivers.TaskConfig {
		cfg, err := encode(tspec, src)
		if err != nil {
			fail("task_config_encode", "%v", err)
		}
		return &drivers.TaskConfig{
			Id: id, Name: "web", AllocId: "gohost-alloc", JobName: "job", TaskGroupName: "group",
			AllocDir: allocDir, StdoutPath: "/dev/null", StderrPath: "/dev/null",
			MsgpackDriverConfig: cfg,
			Env: map[string]string{
				"NOMAD_TASK_DIR": allocDir + "/web/local", "NOMAD_ALLOC_DIR": allocDir + "/alloc",
				"NOMAD_SECRETS_DIR": allocDir + "/web/secrets", "PATH": "/usr/bin:/bin",
			},
			Resources: &drivers.Resources{
				AllocatedResources: &drivers.AllocatedTaskResources{
					Cpu:    &drivers.AllocatedCpuResources{CpuShares: 100},
					Memory: &drivers.AllocatedMemoryResources{MemoryMb: 64},
				},
				LinuxResources: &drivers.LinuxResources{CpuShares: 100, MemoryLimitBytes: 64 << 20},
			},
		}
	}
	_, err = d.StartTask(ctx, &drivers.StartTaskRequest{Task: taskConfig("gohost-alloc/web/bad00001", "command = \"/bin/true\"\nrlimit_cpu = 1.5\n")})
	expectCode("start_fraction", err, codes.InvalidArgument, "rlimit_cpu")
	t2 := taskConfig("gohost-alloc/web/bad00002", "command = \"/bin/true\"\n")
	t2.MsgpackDriverConfig = objectWith(tspec, "command = \"/bin/true\"\n", "args", cty.StringVal("not a list"))
	_, err = d.StartTask(ctx, &drivers.StartTaskRequest{Task: t2})
	expectCode("start_wrong_type", err, codes.InvalidArgument, "args")

	t3 := taskConfig("gohost-alloc/web/bad00003", "command = \"/bin/true\"\n")
	t3.MsgpackDriverConfig = nil
	_, err = d.StartTask(ctx, &drivers.StartTaskRequest{Task: t3})
	expectCode("start_no_config", err, codes.InvalidArgument, "command")
	_, err = d.StartTask(ctx, &drivers.StartTaskRequest{Task: taskConfig("gohost-alloc/web/bad00004", "command = \"/bin/true\"\npromises = \"stdio inett\"\n")})
	expectCode("start_unknown_promise", err, codes.InvalidArgument, "inett")

	good := "command = \"/bin/sh\"\nargs = [\"-c\", \"exit 3\"]\npromises = \"stdio rpath proc exec\"\npids_limit = 64\n"
	id := "gohost-alloc/web/0000000a"
	resp, err := d.StartTask(ctx, &drivers.StartTaskRequest{Task: taskConfig(id, good)})
	if !healthy {
		if err == nil {
			fail("start_task", "the plugin reports %q but started a task", first.HealthDescription)
		}
		fmt.Printf("skip lifecycle: driver not healthy here (%s): StartTask said %v\n", first.HealthDescription, err)
		return
	}
	if err != nil {
		fail("start_task", "%v", err)
	}
	// A start that fails in the backend carries Nomad's RecoverableError detail, decoded
	// here by grpc-go exactly as Nomad's client does (status.Details()[0]).
	// Its own task name, so its own <alloc>.<task> cgroup: a new run of a task replaces
	// whatever still runs in that cgroup, and Nomad never starts a second run of a live task.
	broken := taskConfig("gohost-alloc/broken/bad00005", "command = \"/nonexistent/program\"\n")
	broken.Name = "broken"
	_, err = d.StartTask(ctx, &drivers.StartTaskRequest{Task: broken})
	if err == nil {
		fail("start_failure_detail", "a missing program started")
	}
	st, _ := status.FromError(err)
	details := st.Details()
	if len(details) == 0 {
		fail("start_failure_detail", "no details on %s: %s", st.Code(), st.Message())
	}
	rec, isRec := details[0].(*structs.RecoverableError)
	if !isRec {
		fail("start_failure_detail", "details[0] is %T", details[0])
	}
	fmt.Printf("ok start_failure_detail (code %s, recoverable %v: %s)\n", st.Code(), rec.Recoverable, st.Message())
	h := resp.Handle
	if h == nil || h.Version < 1 || h.Config == nil || h.Config.Id != id || len(h.DriverState) == 0 || h.State != drivers.TaskState_RUNNING {
		fail("start_task", "bad handle %v", h)
	}
	ok("start_task")
	_, err = d.StartTask(ctx, &drivers.StartTaskRequest{Task: taskConfig(id, good)})
	expectCode("start_duplicate", err, codes.AlreadyExists, "")
	w, err := d.WaitTask(ctx, &drivers.WaitTaskRequest{TaskId: id})
	if err != nil || w.Result == nil || w.Result.ExitCode != 3 {
		fail("wait_task", "%v %v", err, w)
	}
	ok("wait_task")
	ins, err := d.InspectTask(ctx, &drivers.InspectTaskRequest{TaskId: id})
	if err != nil || ins.Task == nil || ins.Task.StartedAt == nil || ins.Task.CompletedAt == nil || ins.Task.Result == nil {
		fail("inspect_task", "%v %v", err, ins)
	}
	ok("inspect_task")
	if _, err := d.StopTask(ctx, &drivers.StopTaskRequest{TaskId: id, Timeout: durationpb.New(time.Second), Signal: "SIGTERM"}); err != nil {
		fail("stop_exited", "%v", err)
	}
	ok("stop_exited")
	// A recovery of a tracked task is a no-op.
	stored := *h
	stored.Config.MsgpackDriverConfig = nil
	if _, err := d.RecoverTask(ctx, &drivers.RecoverTaskRequest{Handle: &stored}); err != nil {
		fail("recover_tracked", "%v", err)
	}
	ok("recover_tracked")
	if _, err := d.DestroyTask(ctx, &drivers.DestroyTaskRequest{TaskId: id, Force: true}); err != nil {
		fail("destroy_task", "%v", err)
	}
	ok("destroy_task")
	select {
	case e := <-evch:
		if e != nil && (e.AllocId != "gohost-alloc" || e.TaskName != "web") {
			fail("task_event", "misrouted %v", e)
		}
		ok("task_event")
	default:
		fmt.Println("skip task_event: none emitted")
	}
}
