#!/usr/bin/env bash
# Installs what straddle needs on Debian 12, idempotently: both MPI implementations with
# their C and Fortran compilers, and what the multi-site test bed uses (iproute2, tc,
# ethtool, iperf3, ping, libvirt with qemu, busybox and cpio for tiny guests), openssl
# for the tests' certificates, and a Rust toolchain with rustfmt and clippy (through
# rustup, when cargo is not there yet).
set -euo pipefail

PACKAGES=(
    mpich libmpich-dev libucx-dev openmpi-bin libopenmpi-dev gfortran gcc pkg-config procps
    iproute2 ethtool iperf3 iputils-ping util-linux kmod
    qemu-system-x86 libvirt-daemon-system libvirt-clients libvirt-dev busybox-static cpio
    openssl curl ca-certificates
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # Install daemons without starting them (the test bed starts its own, per site).
    policy=/usr/sbin/policy-rc.d
    had_policy=0
    [ -e "$policy" ] && had_policy=1
    if [ "$had_policy" = 0 ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod +x "$policy"
        trap '$SUDO rm -f "$policy"' EXIT
    fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A Rust toolchain: rustup's, in the user's home, unless one is on the PATH already.
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: installing a Rust toolchain (rustup, stable, minimal profile)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y -q --profile minimal --component rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
fi
# The test command checks formatting and lints: rustfmt and clippy must be there.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || { echo "setup: cargo fmt and cargo clippy are missing, and there is no rustup to add them" >&2; exit 1; }
    rustup component add rustfmt clippy
fi
for tool in mpicc.mpich mpifort.mpich mpiexec.mpich mpicc.openmpi mpifort.openmpi mpirun.openmpi \
    ip tc ethtool iperf3 ping nsenter unshare libvirtd virsh qemu-system-x86_64 cpio modinfo; do
    command -v "$tool" >/dev/null || { echo "setup: $tool is missing after install" >&2; exit 1; }
done
