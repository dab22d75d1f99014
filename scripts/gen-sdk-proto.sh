#!/usr/bin/env bash
# Regenerates the protocol code of the TypeScript and Python SDKs from
# sdk/proto with pinned tools (run by `make proto`):
#
#   - buf (the Makefile's pinned version, $BUF) compiles sdk/proto, the
#     go-plugin services and the health service included, into one image;
#   - protoc 3.21.12 with protoc-gen-ts_proto (the version in
#     sdk/typescript/package-lock.json) writes sdk/typescript/src/gen;
#   - protoc 3.21.12 and grpc_python_plugin 1.51.1 write
#     sdk/python/agenthost_sdk/_proto.
#
# protoc is pinned to 3.21.12 because generated Python code must import with
# the protobuf runtime it meets: that of Debian 12's python3-protobuf, and
# the newer ones sdk/python/pyproject.toml allows. Newer protoc versions
# write a runtime version check that the older runtime lacks. scripts/install-python-grpc.sh --codegen installs
# these tools from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF=${BUF:-$PWD/.tools/buf}
PROTOC_VERSION=3.21.12
GRPC_PLUGIN_VERSION=1.51.1

if ! command -v protoc >/dev/null || ! command -v grpc_python_plugin >/dev/null; then
  scripts/install-python-grpc.sh --codegen
fi
have=$(protoc --version)
if [ "$have" != "libprotoc $PROTOC_VERSION" ]; then
  echo "gen-sdk-proto: protoc $PROTOC_VERSION is needed (Debian 12's protobuf-compiler), found \"$have\": generated Python code must import with Debian 12's python3-protobuf" >&2
  exit 1
fi
plugin_version=$(dpkg-query -W -f='${Version}' protobuf-compiler-grpc 2>/dev/null || true)
case "$plugin_version" in
  "$GRPC_PLUGIN_VERSION"-*) ;;
  *) echo "gen-sdk-proto: grpc_python_plugin $GRPC_PLUGIN_VERSION is needed (Debian 12's protobuf-compiler-grpc), found \"${plugin_version:-none}\"" >&2; exit 1 ;;
esac
if [ ! -x "$BUF" ]; then
  echo "gen-sdk-proto: no buf at $BUF: run it through make proto" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The module's buf.yaml leaves go-plugin's and gRPC's own services out of
# lint and breaking-change checks; the SDKs need their code all the same.
(cd sdk/proto && "$BUF" build --config '{"version":"v2"}' -o "$tmp/image.binpb")

files=(
  agenthost/plugin/v1/types.proto
  agenthost/plugin/v1/plugin.proto
  agenthost/plugin/v1/runtime.proto
  agenthost/plugin/v1/database.proto
  plugin/grpc_controller.proto
  plugin/grpc_stdio.proto
  grpc/health/v1/health.proto
)

# TypeScript.
ts=sdk/typescript
(cd "$ts" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
mkdir -p "$tmp/ts"
protoc --descriptor_set_in="$tmp/image.binpb" \
  --plugin=protoc-gen-ts_proto="$ts/node_modules/.bin/protoc-gen-ts_proto" \
  --ts_proto_out="$tmp/ts" \
  --ts_proto_opt=outputServices=grpc-js,env=node,esModuleInterop=true,forceLong=number,outputJsonMethods=false,outputTypeRegistry=false,emitImportedFiles=false \
  "${files[@]}" google/protobuf/empty.proto
rm -rf "$ts/src/gen"; mkdir -p "$ts/src"
mv "$tmp/ts" "$ts/src/gen"

# Python. The generated modules import each other as top-level packages
# (agenthost.plugin.v1, plugin, grpc.health.v1); they live inside the SDK's
# package, so their imports are rewritten to it.
py=sdk/python/agenthost_sdk
mkdir -p "$tmp/py"
protoc --descriptor_set_in="$tmp/image.binpb" \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  --python_out="$tmp/py" --grpc_python_out="$tmp/py" \
  "${files[@]}" agenthost/plugin/v1/options.proto
# Files without services get an empty _grpc module.
find "$tmp/py" -name '*_pb2_grpc.py' | while read -r f; do
  grep -q '^class ' "$f" || rm "$f"
done
find "$tmp/py" -name '*.py' -exec sed -i -E \
  's/^from (agenthost\.plugin\.v1|plugin|grpc\.health\.v1) import /from agenthost_sdk._proto.\1 import /' {} +
find "$tmp/py" -type d -exec sh -c 'for d; do : > "$d/__init__.py"; done' sh {} +
rm -rf "$py/_proto"; mkdir -p "$py"
mv "$tmp/py" "$py/_proto"
echo "gen-sdk-proto: wrote $ts/src/gen and $py/_proto"
