#!/usr/bin/env bash
# The whole test suite, as the README's quick start runs it and CI runs it:
# builds what the process tests start (a release server for the journal's crash
# test), then runs every test of the workspace. Arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -q -p tests --bin journal-crash-server
cargo test --workspace "$@"
