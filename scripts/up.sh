#!/usr/bin/env bash
# Installs prerequisites (containerd and the CNI plugins among them), builds
# wharf and runs a single-node server with its kubelet in the
# foreground (Ctrl-C stops it). Data lives in ${WHARF_DATA_DIR:-/var/lib/wharf}.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo build --locked --release -p wharf
exec ./target/release/wharf server "$@"
