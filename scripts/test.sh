#!/usr/bin/env bash
# Runs every test of the workspace: installs the system tools the tests use (GNU cpio,
# e2fsprogs, zstd, openssl), then the Rust tests, formatting and lint checks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo test --workspace --locked
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
