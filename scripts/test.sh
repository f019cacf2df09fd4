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
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace
cargo build --locked -p wharf
WHARF_BIN="$PWD/target/debug/wharf" .venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider
