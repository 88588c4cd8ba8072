//! Where the workspace's build products are (tests run from target/<profile>/deps).

use std::path::PathBuf;

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
