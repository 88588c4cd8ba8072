//! Shared by the per-ABI build scripts: check the ABI constants the Rust side hard-codes
//! against the MPI library's own header, compiled with its own wrapper compiler.

use std::path::PathBuf;
use std::process::Command;

/// Compiles `check_c` (static assertions over `mpi.h`) with the MPI compiler wrapper named
/// by `$env` or `default`, and sets the cfg of each of `probes` (cfg, symbol) whose symbol
/// the header declares.
pub fn check_abi(env: &str, default: &str, check_c: &str, probes: &[(&str, &str)]) {
    println!("cargo:rerun-if-env-changed={env}");
    println!("cargo:rerun-if-changed={check_c}");
    let cc = std::env::var(env).unwrap_or_else(|_| default.to_string());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let obj = out.join("abi_check.o");
    let status = Command::new(&cc).args(["-c", check_c, "-o"]).arg(&obj).status();
    match status {
        Ok(s) if s.success() => {}
        Ok(_) => panic!("the MPI ABI check {check_c} failed under {cc}: the shim's constants do not match this MPI"),
        Err(e) => panic!("cannot run the MPI compiler wrapper `{cc}` (set {env}; install it with scripts/setup.sh): {e}"),
    }
    for (cfg, snippet) in probes {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let src = out.join(format!("probe_{cfg}.c"));
        std::fs::write(&src, format!("#include <mpi.h>\nvoid *straddle_probe(void) {{ return (void *)&{snippet}; }}\n")).unwrap();
        let ok = Command::new(&cc)
            .args(["-c"])
            .arg(&src)
            .arg("-o")
            .arg(out.join(format!("probe_{cfg}.o")))
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}
