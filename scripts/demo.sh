#!/usr/bin/env bash
# The main job: a real MPI program under the shim with a live controller showing its
# traffic. Arguments go to `straddle demo` (e.g. --mpi openmpi --ranks 6 --steps 12).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo build --release --workspace
exec target/release/straddle demo "$@"
