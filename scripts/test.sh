#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds the workspace once (release:
# the shims are measured as users run them), runs every unit and end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Open MPI refuses root unless told; the tests pass --allow-run-as-root, this covers
# helper tools too.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo build --release --workspace --all-targets
cargo test --release --workspace
