// Command gocty writes fuzz corpus seeds that are byte-for-byte what a Nomad client sends:
// each config is taken as Nomad holds it (JSON of the job's `config {}` / the agent's plugin
// block, after interpolation), parsed with HCL's JSON syntax, decoded against a spec that
// mirrors our ConfigSchema / TaskConfigSchema with hcldec, and encoded with go-cty's msgpack
// encoder (protocol.md §3.1). It also writes the promise and unveil string seeds.
//
// Run it with ./generate.sh (GOPATH mode against Debian's packaged go-cty and hcl; no network).
package main

import (
	"encoding/json"
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

// configs.json holds the configs as Nomad holds them before encoding: the job's `config {}`
// (task_config) and the agent's plugin block (plugin_config), already interpolated, as JSON,
// named after hack/ where they come from there. grpc/tests/fuzz_replay.rs reads the same file
// to check the local runner's encoder against these go-cty bytes.
type configFile map[string]map[string]json.RawMessage

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
	configs := configFile{"task_config": {}, "plugin_config": {}}
	// configs-bignum.json holds what serde_json (the Rust side's reader) cannot: 1e400.
	for _, in := range []string{"configs.json", "configs-bignum.json"} {
		text, err := os.ReadFile(in)
		must(err)
		var part configFile
		must(json.Unmarshal(text, &part))
		for target, byName := range part {
			for name, cfg := range byName {
				configs[target][name] = cfg
			}
		}
	}
	write(*out, "task_config", taskSpec(), configs["task_config"])
	write(*out, "plugin_config", pluginSpec(), configs["plugin_config"])
	writeStrings(*out, "promises", promiseSeeds)
	writeStrings(*out, "unveil", unveilSeeds)
}

// write runs each JSON config through Nomad's pipeline and stores the msgpack bytes.
func write(root, target string, spec hcldec.Spec, configs map[string]json.RawMessage) {
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
