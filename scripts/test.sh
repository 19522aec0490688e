#!/usr/bin/env bash
# The whole test suite, as the README's quick start runs it and CI runs it:
# starts a throwaway PostgreSQL for the journal's PostgreSQL tests
# (scripts/postgres.sh; set HOOKSERVER_TEST_POSTGRES to use your own), then runs
# every test of the workspace. Arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/postgres.sh
cargo test --workspace "$@"
