#!/usr/bin/env bash
# Installs what straddle needs on Debian 12, idempotently: both MPI implementations with
# their C and Fortran compilers. The Rust toolchain (cargo) must already be on the PATH.
set -euo pipefail

PACKAGES=(mpich libmpich-dev openmpi-bin libopenmpi-dev gfortran gcc pkg-config procps)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is not on the PATH; install a Rust toolchain (rustup) first" >&2
    exit 1
fi
for tool in mpicc.mpich mpifort.mpich mpiexec.mpich mpicc.openmpi mpifort.openmpi mpirun.openmpi; do
    command -v "$tool" >/dev/null || { echo "setup: $tool is missing after install" >&2; exit 1; }
done
