#!/bin/sh
# generate.sh regenerates proto/pubsub/pubsub.pb.go from proto/pubsub.proto with
# a protoc-gen-go pinned to the google.golang.org/protobuf version of go.mod.
# Needs protoc (Debian/Ubuntu: apt-get install protobuf-compiler).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=$(go list -m -f '{{.Version}}' google.golang.org/protobuf)
GOBIN="$root/bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$version"

command -v protoc >/dev/null 2>&1 || {
	echo "generate.sh: protoc not found (apt-get install protobuf-compiler)" >&2
	exit 1
}

protoc \
	--plugin=protoc-gen-go="$root/bin/protoc-gen-go" \
	--proto_path=proto \
	--go_out=. \
	--go_opt=module=github.com/kafkaedge/kafkaedge \
	proto/pubsub.proto
