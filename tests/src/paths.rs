//! Where the workspace's build products are (tests run from `target/<profile>/deps`).

use std::path::{Path, PathBuf};

/// `target/<profile>`: the folder holding the `straddle` binary and the shims.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let mut dir = exe.parent().expect("deps folder").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

fn built(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (`cargo build --release --workspace`, as scripts/test.sh does)",
        p.display()
    );
    p
}

pub fn controller_bin() -> PathBuf {
    built("straddle")
}

pub fn agent_bin() -> PathBuf {
    built("straddle-agent")
}

pub fn shim(mpi: crate::mpi::Mpi) -> PathBuf {
    built(match mpi {
        crate::mpi::Mpi::Mpich => "libstraddle_mpich.so",
        crate::mpi::Mpi::OpenMpi => "libstraddle_openmpi.so",
    })
}

/// The MPI test programs' sources.
pub fn program(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("programs").join(name)
}

/// A fresh scratch folder under the target directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = target_dir().join("straddle-test-scratch").join(format!("{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `native/<name>.c` built into `target/lib<name>.so` (linked with `libs`) when missing or
/// older than its source; once per process.
pub fn native_lib(name: &str, libs: &[&str]) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(name) {
        return p.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("native/{name}.c"));
    let out = target_dir().join(format!("lib{name}.so"));
    let stale = match (std::fs::metadata(&src).and_then(|m| m.modified()), std::fs::metadata(&out).and_then(|m| m.modified())) {
        (Ok(s), Ok(o)) => s > o,
        _ => true,
    };
    if stale {
        let tmp = out.with_extension(format!("so.{}", std::process::id()));
        let o = std::process::Command::new("gcc")
            .args(["-O2", "-shared", "-fPIC", "-Wno-deprecated-declarations", "-o"])
            .arg(&tmp)
            .arg(&src)
            .args(libs)
            .output()
            .expect("run gcc");
        assert!(o.status.success(), "building native/{name}.c failed (libucx-dev installed?):\n{}", String::from_utf8_lossy(&o.stderr));
        std::fs::rename(&tmp, &out).expect("install a native helper");
    }
    built.get_or_insert_with(HashMap::new).insert(name.to_string(), out.clone());
    out
}

/// `native/idle_sleep.c`: MPICH ranks sleep briefly when UCX has nothing for them, so
/// many ranks on few cores do not burn each other's time slices (see its header).
pub fn idle_sleep() -> PathBuf {
    native_lib("idle_sleep", &["-ldl"])
}
