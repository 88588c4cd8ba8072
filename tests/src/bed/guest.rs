//! A tiny guest for the libvirt sites: a Debian cloud kernel (downloaded as a package and
//! unpacked, nothing installed on the host) and a small busybox initramfs whose init
//! brings up the network, reports to a given address, optionally runs a given program, and
//! prints a counter to the serial console every second.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{sh, BedError};

/// Kernel modules the guest loads for its virtio NIC, roots of the dependency walk.
const NIC_MODULES: [&str; 2] = ["virtio_pci", "virtio_net"];

/// A kernel with the modules the guest needs, unpacked once and cached.
#[derive(Debug, Clone)]
pub struct GuestKernel {
    pub vmlinuz: PathBuf,
    /// Modules in load order.
    pub modules: Vec<PathBuf>,
}

fn kernel_package() -> Result<String, BedError> {
    let deps = sh(&["apt-cache", "depends", "linux-image-cloud-amd64"])?;
    deps.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_string)
        .ok_or_else(|| BedError::Command { cmd: "apt-cache depends linux-image-cloud-amd64".into(), stderr: deps })
}

impl GuestKernel {
    /// The cached kernel under `cache`, downloading and unpacking it the first time.
    pub fn get(cache: &Path) -> Result<GuestKernel, BedError> {
        let ready = cache.join("ready");
        if !ready.exists() {
            let _ = std::fs::remove_dir_all(cache);
            std::fs::create_dir_all(cache)?;
            let pkg = kernel_package()?;
            let out = Command::new("apt-get").args(["download", &pkg]).current_dir(cache).output()?;
            if !out.status.success() {
                return Err(BedError::Command {
                    cmd: format!("apt-get download {pkg}"),
                    stderr: String::from_utf8_lossy(&out.stderr).into(),
                });
            }
            let deb = std::fs::read_dir(cache)?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "deb"))
                .ok_or_else(|| BedError::Command { cmd: "apt-get download".into(), stderr: "no .deb".into() })?;
            let x = cache.join("x");
            sh(&["dpkg", "-x", deb.to_str().unwrap(), x.to_str().unwrap()])?;
            std::fs::remove_file(&deb)?;
            std::fs::write(&ready, pkg)?;
        }
        let x = cache.join("x");
        let vmlinuz = std::fs::read_dir(x.join("boot"))?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz")))
            .ok_or_else(|| BedError::Command { cmd: "find vmlinuz".into(), stderr: x.display().to_string() })?;
        let modroot = std::fs::read_dir(x.join("lib/modules"))?.flatten().next().map(|e| e.path()).expect("modules folder");
        let mut order = Vec::new();
        for m in NIC_MODULES {
            add_with_deps(&modroot, m, &mut order)?;
        }
        Ok(GuestKernel { vmlinuz, modules: order })
    }
}

fn find_module(root: &Path, name: &str) -> Option<PathBuf> {
    let want = format!("{name}.ko");
    let mut stack = vec![root.join("kernel")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n.to_string_lossy() == want) {
                return Some(p);
            }
        }
    }
    None
}

/// Dependencies first (`modinfo -F depends`), each module once.
fn add_with_deps(root: &Path, name: &str, order: &mut Vec<PathBuf>) -> Result<(), BedError> {
    let path = find_module(root, name)
        .ok_or_else(|| BedError::Command { cmd: format!("find module {name}"), stderr: root.display().to_string() })?;
    if order.contains(&path) {
        return Ok(());
    }
    let deps = sh(&["modinfo", "-F", "depends", path.to_str().unwrap()])?;
    for d in deps.trim().split(',').filter(|d| !d.is_empty()) {
        add_with_deps(root, d, order)?;
    }
    if !order.contains(&path) {
        order.push(path);
    }
    Ok(())
}

/// The guest's init. Kernel command line: `straddle.name=`, `straddle.hostname=`
/// (default: the name), `straddle.ip=ADDR/PREFIX`,
/// `straddle.report=HOST:PORT`, `straddle.dirty=MIB` (rewrite that many MiB of memory
/// over and over, in the background), `straddle.touch=MIB` (run `/touch`: dirty every page
/// of that many MiB as fast as the CPU goes), `straddle.beat=HOST:PORT` (run `/beat` to
/// there in the background); `/program` runs once the network is up, if present.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m; done
for a in $(cat /proc/cmdline); do
  case "$a" in
    straddle.name=*) name=${a#*=} ;;
    straddle.hostname=*) hname=${a#*=} ;;
    straddle.ip=*) addr=${a#*=} ;;
    straddle.report=*) report=${a#*=} ;;
    straddle.dirty=*) dirty=${a#*=} ;;
    straddle.beat=*) beat=${a#*=} ;;
    straddle.touch=*) touch=${a#*=} ;;
  esac
done
hostname "${hname:-$name}"
ip link set lo up
ip link set eth0 up
[ -n "$addr" ] && ip addr add "$addr" dev eth0
echo "STRADDLE-GUEST-UP $name $(cut -d' ' -f1 /proc/uptime)"
if [ -n "$dirty" ] && [ "$dirty" -gt 0 ]; then
  # Not zeros (QEMU sends a zero page as a flag) and new content each round (libvirt's
  # page sampling sees changed pages, not writes).
  ( i=0; while true; do i=$((i+1)); yes "$i" | dd of=/tmp/dirty bs=4096 count=$((dirty*256)) conv=notrunc 2>/dev/null; done ) &
fi
[ -n "$beat" ] && [ -x /beat ] && /beat "${beat%:*}" "${beat#*:}" &
[ -n "$touch" ] && [ "$touch" -gt 0 ] && [ -x /touch ] && /touch "$touch" &
out=""
[ -x /program ] && out=$(/program 2>&1)
if [ -n "$report" ]; then
  host=${report%:*}; port=${report#*:}
  i=0
  while [ $i -lt 30 ]; do
    if printf 'booted %s uptime %s\n%s\n' "$name" "$(cut -d' ' -f1 /proc/uptime)" "$out" | nc "$host" "$port"; then break; fi
    i=$((i+1)); sleep 1
  done
fi
n=0
while true; do echo "STRADDLE-TICK $name $n"; n=$((n+1)); sleep 1; done
"#;

/// Builds an initramfs (uncompressed newc cpio) at `out` for `kernel`, with an optional
/// program the init runs once the network is up and tools it may start (`static_program`:
/// `beat`, `touch`), each at `/<its file name>`.
pub fn build_initramfs(kernel: &GuestKernel, program: Option<&Path>, tools: &[&Path], out: &Path) -> Result<(), BedError> {
    let stage = out.with_extension("stage");
    let _ = std::fs::remove_dir_all(&stage);
    for d in ["bin", "proc", "sys", "dev", "modules", "tmp"] {
        std::fs::create_dir_all(stage.join(d))?;
    }
    std::fs::copy("/bin/busybox", stage.join("bin/busybox"))?;
    let mut order = String::new();
    for m in &kernel.modules {
        let name = m.file_name().unwrap();
        std::fs::copy(m, stage.join("modules").join(name))?;
        order.push_str(&format!("{}\n", name.to_string_lossy()));
    }
    std::fs::write(stage.join("modules/order"), order)?;
    std::fs::write(stage.join("init"), INIT)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(stage.join("init"), std::fs::Permissions::from_mode(0o755))?;
    if let Some(p) = program {
        std::fs::copy(p, stage.join("program"))?;
        std::fs::set_permissions(stage.join("program"), std::fs::Permissions::from_mode(0o755))?;
    }
    for t in tools {
        let name = t
            .file_name()
            .ok_or_else(|| BedError::Command { cmd: "build_initramfs".into(), stderr: format!("{}: no file name", t.display()) })?;
        std::fs::copy(t, stage.join(name))?;
        std::fs::set_permissions(stage.join(name), std::fs::Permissions::from_mode(0o755))?;
    }
    let cmd = format!("cd '{}' && find . | cpio -o -H newc --quiet > '{}'", stage.display(), out.display());
    sh(&["sh", "-c", &cmd])?;
    std::fs::remove_dir_all(&stage)?;
    Ok(())
}

/// One of the guest's C tools (`beat`: the heartbeat, `touch`: the memory dirtier), built
/// statically into `cache`.
pub fn static_program(cache: &Path, name: &str) -> Result<PathBuf, BedError> {
    let source = match name {
        "beat" => include_str!("beat.c"),
        "touch" => include_str!("touch.c"),
        other => return Err(BedError::Command { cmd: "static_program".into(), stderr: format!("no tool {other:?}") }),
    };
    std::fs::create_dir_all(cache)?;
    let src = cache.join(format!("{name}.c"));
    let exe = cache.join(name);
    std::fs::write(&src, source)?;
    sh(&["gcc", "-static", "-O2", "-Wall", "-o", exe.to_str().unwrap(), src.to_str().unwrap()])?;
    Ok(exe)
}
