// Command gocty writes fuzz corpus seeds that are byte-for-byte what a Nomad client sends:
// each config is taken as Nomad holds it (JSON of the job's `config {}` / the agent's plugin
// block, after interpolation), parsed with HCL's JSON syntax, decoded against a spec that
// mirrors our ConfigSchema / TaskConfigSchema with hcldec, and encoded with go-cty's msgpack
// encoder (protocol.md §3.1). It also writes the promise and unveil string seeds.
//
// Run it with ./generate.sh (GOPATH mode against Debian's packaged go-cty and hcl; no network).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2/hcldec"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"
)

// taskSpec mirrors pledge_core::RawTaskConfig (every key optional except command).
func taskSpec() hcldec.ObjectSpec {
	s := hcldec.ObjectSpec{
		"command":           &hcldec.AttrSpec{Name: "command", Type: cty.String, Required: true},
		"args":              &hcldec.AttrSpec{Name: "args", Type: cty.List(cty.String)},
		"promises":          &hcldec.AttrSpec{Name: "promises", Type: cty.String},
		"unveil":            &hcldec.AttrSpec{Name: "unveil", Type: cty.List(cty.String)},
		"importance":        &hcldec.AttrSpec{Name: "importance", Type: cty.String},
		"pid_mode":          &hcldec.AttrSpec{Name: "pid_mode", Type: cty.String},
		"ipc_mode":          &hcldec.AttrSpec{Name: "ipc_mode", Type: cty.String},
		"bind_ports":        &hcldec.AttrSpec{Name: "bind_ports", Type: cty.List(cty.Number)},
		"connect_ports":     &hcldec.AttrSpec{Name: "connect_ports", Type: cty.List(cty.Number)},
		"sandbox_mode":      &hcldec.AttrSpec{Name: "sandbox_mode", Type: cty.String},
		"kill_on_violation": &hcldec.AttrSpec{Name: "kill_on_violation", Type: cty.Bool},
		"net_bind_service":  &hcldec.AttrSpec{Name: "net_bind_service", Type: cty.Bool},
	}
	for _, n := range []string{"pids_limit", "rlimit_nofile", "rlimit_nproc", "rlimit_fsize", "rlimit_cpu", "rlimit_as"} {
		s[n] = &hcldec.AttrSpec{Name: n, Type: cty.Number}
	}
	return s
}

// pluginSpec mirrors pledge_core::RawPluginConfig.
func pluginSpec() hcldec.ObjectSpec {
	s := hcldec.ObjectSpec{
		"pledge_executable":      &hcldec.AttrSpec{Name: "pledge_executable", Type: cty.String},
		"state_dir":              &hcldec.AttrSpec{Name: "state_dir", Type: cty.String},
		"cpu_hard_limit":         &hcldec.AttrSpec{Name: "cpu_hard_limit", Type: cty.Bool},
		"allow_net_bind_service": &hcldec.AttrSpec{Name: "allow_net_bind_service", Type: cty.Bool},
		"unveil_best_effort":     &hcldec.AttrSpec{Name: "unveil_best_effort", Type: cty.Bool},
	}
	for _, n := range []string{"pids_limit", "rlimit_nofile", "rlimit_nproc", "rlimit_fsize", "rlimit_cpu", "rlimit_as"} {
		s[n] = &hcldec.AttrSpec{Name: n, Type: cty.Number}
	}
	return s
}

const taskDir = "/var/lib/nomad/alloc/5f1c0a2e-8d4b-4f3a-9c1e-2b7d6e5a4f30/http/local"

// taskConfigs are job `config {}` blocks as JSON, already interpolated, named after hack/.
var taskConfigs = map[string]string{
	"http":      `{"command":"python3","args":["-m","http.server","8181","--directory","` + taskDir + `"],"promises":"stdio rpath inet","unveil":["r:` + taskDir + `","r:/etc/mime.types"],"importance":"low"}`,
	"bridge":    `{"command":"python3","args":["-m","http.server","8181"],"promises":"stdio rpath inet","unveil":["r:/etc/mime.types","r:` + taskDir + `"]}`,
	"env":       `{"command":"env","promises":"stdio rpath"}`,
	"sleep":     `{"command":"sleep","args":["infinity"],"promises":"stdio rpath","importance":"lowest"}`,
	"curl":      `{"command":"curl","args":["-sS","http://127.0.0.1:8181/index.html"],"promises":"stdio rpath inet dns sendfd"}`,
	"passwd":    `{"command":"cat","args":["/etc/passwd"],"promises":"stdio rpath"}`,
	"ps":        `{"command":"ps","args":["aux"],"promises":"stdio rpath exec","unveil":["r:/proc"]}`,
	"cgroup":    `{"command":"/bin/cat","args":["/proc/self/cgroup"],"promises":"stdio rpath","unveil":["r:/proc/self/cgroup"]}`,
	"ignore":    `{"command":"python3","args":["-c","import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nsignal.pause()"],"promises":"stdio rpath tty","unveil":["r:/` + taskDir + `"]}`,
	"resources": `{"command":"cat","args":["/sys/fs/cgroup/nomad.slice/share.slice/5f1c0a2e-8d4b-4f3a-9c1e-2b7d6e5a4f30.mem.scope/memory.max"],"promises":"stdio rpath","unveil":["r:/sys/fs/cgroup/nomad.slice"]}`,
	"only-command": `{"command":"/usr/bin/true"}`,
	"every-option": `{"command":"/usr/sbin/nginx","args":["-g","daemon off;"],"promises":"stdio rpath wpath cpath inet dns proc exec id","unveil":["rwc:/var/log/nginx","r:/etc/nginx","rx:/usr/sbin/nginx"],` +
		`"importance":"high","pid_mode":"host","ipc_mode":"private","bind_ports":[80,443],"connect_ports":[8080],"sandbox_mode":"complain","kill_on_violation":true,"net_bind_service":true,` +
		`"pids_limit":100,"rlimit_nofile":1024,"rlimit_nproc":0,"rlimit_fsize":1073741824,"rlimit_cpu":3600,"rlimit_as":4294967296}`,
	"all-promises": `{"command":"sh","args":["-c","exit 0"],"promises":"stdio rpath wpath cpath dpath flock fattr chown inet anet unix dns tty recvfd sendfd proc exec id thread prot_exec vminfo tmppath settime unveil"}`,
	// Number encodings go-cty chooses (§3.3): 0.1 → string, 1.5 → float64, 2^64-1 → string,
	// -1 → negative fixint, 300 → uint16, 1e3 → int.
	"numbers-decimal":   `{"command":"x","pids_limit":0.1,"rlimit_nofile":1.5,"rlimit_as":18446744073709551615,"rlimit_cpu":-1,"rlimit_fsize":300,"rlimit_nproc":1e3}`,
	"numbers-huge":      `{"command":"x","pids_limit":1e400,"bind_ports":[65535,65536,-1,0.5],"connect_ports":[9223372036854775808]}`,
	"promises-messy":    `{"command":"x","promises":"  STDIO,rpath\tinet  inet "}`,
	"promises-unknown":  `{"command":"x","promises":"stdio inett rpath bogus"}`,
	"unveil-messy":      `{"command":"x","unveil":["/usr","rwxc:/tmp/","r:/srv/a:b","r://var//./log/","x:/bin/sh"]}`,
	"unveil-bad":        `{"command":"x","unveil":["","r:tmp","r:/a/../b","q:/x","rw:/ok","r:/nul\u0000byte"]}`,
	"unicode":           `{"command":"/opt/ünï/cödé","args":["héllo wörld","日本語","\u0000","😀"],"unveil":["r:/opt/ünï"]}`,
	"nul-command":       `{"command":"/bin/true\u0000--evil","args":["a\u0000b"]}`,
	"modes-bad":         `{"command":"x","importance":"urgent","pid_mode":"shared","ipc_mode":"HOST","sandbox_mode":"learn"}`,
	"empty-strings":     `{"command":"","args":[],"promises":"","unveil":[],"importance":"","pid_mode":"","sandbox_mode":""}`,
	"relative-command":  `{"command":"./run.sh","args":["--port","${NOMAD_PORT_http}"]}`,
	"bools-and-lists":   `{"command":"x","kill_on_violation":false,"net_bind_service":false,"bind_ports":[],"connect_ports":[]}`,
}

// pluginConfigs are agent `plugin "nomad-pledge-driver" { config {} }` blocks as JSON.
var pluginConfigs = map[string]string{
	"empty":           `{}`,
	"pledge-com":      `{"pledge_executable":"/opt/bin/pledge-1.8.com"}`,
	"every-option":    `{"pledge_executable":"/opt/bin/pledge-1.8.com","state_dir":"/run/nomad-pledge-driver","cpu_hard_limit":true,"pids_limit":4096,"allow_net_bind_service":true,"unveil_best_effort":true,"rlimit_nofile":65536,"rlimit_nproc":0,"rlimit_fsize":0,"rlimit_cpu":0,"rlimit_as":0}`,
	"numbers-decimal": `{"pids_limit":0.5,"rlimit_nofile":1.5,"rlimit_as":18446744073709551615,"rlimit_cpu":-3}`,
	"paths-bad":       `{"pledge_executable":"pledge.com","state_dir":"/run/../etc"}`,
	"unicode":         `{"state_dir":"/run/ünïcödé/😀","pledge_executable":"/opt/bin/pledge\u0000.com"}`,
}

// promiseSeeds and unveilSeeds are the strings operators write.
var promiseSeeds = []string{
	"stdio rpath", "stdio rpath inet", "stdio rpath inet dns sendfd", "stdio rpath exec",
	"stdio rpath tty", "", "  STDIO,rpath\t", "stdio inett",
	"stdio rpath wpath cpath dpath flock fattr chown inet anet unix dns tty recvfd sendfd proc exec id thread prot_exec vminfo tmppath settime unveil",
}
var unveilSeeds = []string{
	"r:/etc/mime.types", "/usr", "rwc:/var/log/app", "rx:/usr/bin/python3", "r:/srv/a:b",
	"r://var//./log/", "rwxc:/", "", "r:tmp", "r:/a/../b", "q:/x", "rr:/x", "R:/x", ":/x", "r:",
}

func main() {
	out := flag.String("out", "../corpus", "corpus root (one directory per fuzz target)")
	flag.Parse()
	write(*out, "task_config", taskSpec(), taskConfigs)
	write(*out, "plugin_config", pluginSpec(), pluginConfigs)
	writeStrings(*out, "promises", promiseSeeds)
	writeStrings(*out, "unveil", unveilSeeds)
}

// write runs each JSON config through Nomad's pipeline and stores the msgpack bytes.
func write(root, target string, spec hcldec.Spec, configs map[string]string) {
	dir := filepath.Join(root, target)
	must(os.MkdirAll(dir, 0o755))
	names := make([]string, 0, len(configs))
	for n := range configs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		f, diags := hcljson.Parse([]byte(configs[name]), name+".json")
		if diags.HasErrors() {
			fail("%s/%s: parse: %s", target, name, diags.Error())
		}
		val, diags := hcldec.Decode(f.Body, spec, nil)
		if diags.HasErrors() {
			fail("%s/%s: decode: %s", target, name, diags.Error())
		}
		b, err := ctymsgpack.Marshal(val, val.Type())
		must(err)
		must(os.WriteFile(filepath.Join(dir, "gocty-"+name+".msgpack"), b, 0o644))
	}
	fmt.Printf("%s: %d seeds\n", target, len(names))
}

func writeStrings(root, target string, seeds []string) {
	dir := filepath.Join(root, target)
	must(os.MkdirAll(dir, 0o755))
	for i, s := range seeds {
		must(os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d.txt", i)), []byte(s), 0o644))
	}
	fmt.Printf("%s: %d seeds\n", target, len(seeds))
}

func must(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "gocty: "+format+"\n", a...)
	os.Exit(1)
}
