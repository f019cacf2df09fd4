#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test in the workspace,
# including those that start real etcd members and kill -9 the store.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace
