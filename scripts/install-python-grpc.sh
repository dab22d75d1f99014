#!/usr/bin/env bash
# Installs what Python plugins need from the distribution's packages: gRPC,
# protobuf and cryptography for /usr/bin/python3 (python3-grpcio,
# python3-protobuf, python3-cryptography). With --codegen, also the code
# generators `make proto` runs (protobuf-compiler, protobuf-compiler-grpc).
# Idempotent: does nothing when everything is there.
set -euo pipefail

packages=()
if ! /usr/bin/python3 -c 'import grpc, google.protobuf, cryptography' >/dev/null 2>&1; then
  packages+=(python3-grpcio python3-protobuf python3-cryptography)
fi
if [ "${1:-}" = "--codegen" ]; then
  command -v protoc >/dev/null || packages+=(protobuf-compiler)
  command -v grpc_python_plugin >/dev/null || packages+=(protobuf-compiler-grpc)
fi
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-python-grpc: no apt-get here; install ${packages[*]} (or pip install grpcio protobuf cryptography) yourself" >&2
  exit 1
fi
echo "install-python-grpc: installing ${packages[*]} with apt-get..." >&2
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine.
if ! apt-cache show "${packages[0]}" >/dev/null 2>&1; then
  $SUDO apt-get update -q
fi
if ! $SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"; then
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
/usr/bin/python3 -c 'import grpc, google.protobuf, cryptography'
