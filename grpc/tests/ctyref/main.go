// ctyref is the reference the local runner's encoder is checked against: HashiCorp's own
// hcldec and go-cty msgpack, as Nomad's client uses them. It reads a spec (JSON: a list of
// {"name", "type", "required"} attributes of a root Object) from argv[1] and a series of HCL
// bodies from stdin, separated by lines holding only "----", and prints for each body one line:
// the hex of msgpack.Marshal(v, v.Type()), or "error: <diagnostics>".
//
// Built in GOPATH mode from Debian's packages (golang-github-hashicorp-hcl-v2-dev,
// golang-github-zclconf-go-cty-dev) by grpc/tests/runner_encode_reference.rs.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty/msgpack"
)

type attr struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Required bool   `json:"required"`
}

func spec(text string) (hcldec.Spec, error) {
	var attrs []attr
	if err := json.Unmarshal([]byte(text), &attrs); err != nil {
		return nil, err
	}
	out := hcldec.ObjectSpec{}
	for _, a := range attrs {
		expr, diags := hclsyntax.ParseExpression([]byte(a.Type), "type", hcl.Pos{Line: 1, Column: 1})
		if diags.HasErrors() {
			return nil, diags
		}
		ty, diags := typeexpr.TypeConstraint(expr)
		if diags.HasErrors() {
			return nil, diags
		}
		out[a.Name] = &hcldec.AttrSpec{Name: a.Name, Type: ty, Required: a.Required}
	}
	return out, nil
}

func encode(s hcldec.Spec, src string) string {
	f, diags := hclsyntax.ParseConfig([]byte(src), "config.hcl", hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return "error: " + strings.ReplaceAll(diags.Error(), "\n", " ")
	}
	v, diags := hcldec.Decode(f.Body, s, nil)
	if diags.HasErrors() {
		return "error: " + strings.ReplaceAll(diags.Error(), "\n", " ")
	}
	b, err := msgpack.Marshal(v, v.Type())
	if err != nil {
		return "error: " + err.Error()
	}
	return hex.EncodeToString(b)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ctyref SPEC_JSON < bodies")
		os.Exit(2)
	}
	s, err := spec(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad spec:", err)
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	var body strings.Builder
	flush := func() {
		fmt.Println(encode(s, body.String()))
		body.Reset()
	}
	for in.Scan() {
		if in.Text() == "----" {
			flush()
			continue
		}
		body.WriteString(in.Text())
		body.WriteString("\n")
	}
	flush()
}
