#!/usr/bin/env bash
# The whole test suite: formatting, lints, every Rust test (including those
# that start real etcd members and kill -9 the store), then the acceptance
# tests that drive a real `wharf server` with the real kubectl and the official
# Python client.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
# A whole-suite run gains nothing from incremental caches, and they cost disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The test nodes' pressure thresholds: the machines the suite runs on keep
# much of their disk reserved (statvfs's f_bavail is a few percent of the
# size), which upstream's default `nodefs.available<10%` would report as
# DiskPressure and taint every node. The pressure tests set their own.
export WHARF_EVICTION_HARD="${WHARF_EVICTION_HARD:-memory.available<1Mi,nodefs.available<1%,imagefs.available<1%}"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace
cargo build --locked -p wharf
WHARF_BIN="$PWD/target/debug/wharf" .venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider
