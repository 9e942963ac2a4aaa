#!/bin/sh
# Regenerates the go-cty corpus seeds in fuzz/corpus/ from main.go, offline, against Debian's
# packaged go-cty and hcl (apt: golang-github-zclconf-go-cty-dev golang-github-hashicorp-hcl-v2-dev).
set -eu
cd "$(dirname "$0")"
gopath=$(mktemp -d)
trap 'rm -rf "$gopath"' EXIT
GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOPROXY=off GOCACHE="$gopath/cache" \
  go run main.go -out ../corpus "$@"
