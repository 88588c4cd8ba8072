//! Real MPI: compile programs with the implementation's own wrappers and launch them with
//! the shim preloaded, always under a deadline.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mpi {
    Mpich,
    OpenMpi,
}

pub const BOTH: [Mpi; 2] = [Mpi::Mpich, Mpi::OpenMpi];

impl Mpi {
    pub fn name(self) -> &'static str {
        match self {
            Mpi::Mpich => "mpich",
            Mpi::OpenMpi => "openmpi",
        }
    }

    fn cc(self) -> &'static str {
        match self {
            Mpi::Mpich => "mpicc.mpich",
            Mpi::OpenMpi => "mpicc.openmpi",
        }
    }

    fn fc(self) -> &'static str {
        match self {
            Mpi::Mpich => "mpifort.mpich",
            Mpi::OpenMpi => "mpifort.openmpi",
        }
    }

    /// True when this MPI has the MPI-4 large-count `_c` functions.
    pub fn has_large_count(self) -> bool {
        self == Mpi::Mpich
    }

    /// Compiles a C or Fortran source (by extension) into `dir`.
    pub fn compile(self, src: &Path, dir: &Path) -> PathBuf {
        let stem = src.file_stem().unwrap().to_string_lossy();
        let out = dir.join(format!("{stem}-{}", self.name()));
        let fortran = matches!(src.extension().and_then(|e| e.to_str()), Some("f" | "f90" | "f08"));
        let mut cmd = Command::new(if fortran { self.fc() } else { self.cc() });
        cmd.arg("-O1").arg("-w").arg(src).arg("-o").arg(&out);
        if fortran {
            // Modules go to the scratch folder; mpif.h callers pass buffers of several
            // types to one routine, which gfortran 10+ only allows when told to.
            cmd.arg(format!("-J{}", dir.display())).arg("-fallow-argument-mismatch");
        }
        let o = cmd.output().unwrap_or_else(|e| panic!("cannot run the {} compiler: {e}", self.name()));
        assert!(o.status.success(), "compiling {} failed:\n{}", src.display(), String::from_utf8_lossy(&o.stderr));
        out
    }
}

/// One launch at a time: the machine has two cores and ranks busy-poll.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
    pub elapsed: Duration,
    pub timed_out: bool,
}

/// Deadlines are generous and grow with what a launch does: on a busy machine (two cores
/// shared with other work, ranks that poll) a launch can take several times what it takes
/// on a quiet one, and a deadline only guards against a launch that hangs. Every launch
/// gets this for starting and wiring up …
pub const LAUNCH_BUDGET: Duration = Duration::from_secs(60);
/// … this per rank (its start, its share of `MPI_Init` and `MPI_Finalize`) …
pub const RANK_BUDGET: Duration = Duration::from_secs(10);
/// … and, per rank, the budget of each case its caller declares ([`Launch::work`]). This
/// is about five times what a case of `programs/collectives.c` takes per rank on a quiet
/// machine (eight ranks on two cores: about 10,000 cases in 35 s, 0.45 ms per rank).
pub const CASE_BUDGET: Duration = Duration::from_millis(2);

/// The deadline of a launch of `ranks` ranks that each run `cases` cases of `per_case`.
pub fn deadline_for(ranks: u32, cases: u32, per_case: Duration) -> Duration {
    LAUNCH_BUDGET + (RANK_BUDGET + per_case * cases) * ranks
}

/// What to launch.
pub struct Launch<'a> {
    pub mpi: Mpi,
    pub ranks: u32,
    pub exe: &'a Path,
    pub args: Vec<String>,
    /// Environment for every rank (the shim is added unless `shim` is false).
    pub env: Vec<(String, String)>,
    pub shim: bool,
    pub deadline: Duration,
}

impl<'a> Launch<'a> {
    pub fn new(mpi: Mpi, ranks: u32, exe: &'a Path) -> Launch<'a> {
        Launch { mpi, ranks, exe, args: vec![], env: vec![], shim: true, deadline: deadline_for(ranks, 0, Duration::ZERO) }
    }

    /// Declares that every rank runs `cases` cases of `per_case` each (on a quiet machine,
    /// times the margin [`CASE_BUDGET`] carries): the deadline grows to match.
    pub fn work(mut self, cases: u32, per_case: Duration) -> Self {
        self.deadline = deadline_for(self.ranks, cases, per_case);
        self
    }

    pub fn arg(mut self, a: impl ToString) -> Self {
        self.args.push(a.to_string());
        self
    }

    pub fn env(mut self, k: &str, v: impl ToString) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    pub fn without_shim(mut self) -> Self {
        self.shim = false;
        self
    }

    pub fn command(&self) -> Command {
        let mut env = self.env.clone();
        let mut preload = Vec::new();
        if self.shim {
            preload.push(crate::paths::shim(self.mpi).display().to_string());
        }
        // Eight busy-polling MPICH ranks on two cores take each other's time slices: a
        // rank with nothing to do sleeps briefly instead (Open MPI yields by itself when
        // oversubscribed). Launches without the shim set no LD_PRELOAD at all (callers may
        // pass their own through the environment).
        if self.shim && self.mpi == Mpi::Mpich {
            preload.push(crate::paths::idle_sleep().display().to_string());
        }
        if !preload.is_empty() {
            env.push(("LD_PRELOAD".into(), preload.join(":")));
        }
        let mut cmd = match self.mpi {
            Mpi::Mpich => {
                let mut c = Command::new("mpiexec.mpich");
                c.arg("-n").arg(self.ranks.to_string());
                for (k, v) in &env {
                    c.arg("-genv").arg(k).arg(v);
                }
                c
            }
            Mpi::OpenMpi => {
                let mut c = Command::new("mpirun.openmpi");
                c.args(["--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader,tcp", "-n"]).arg(self.ranks.to_string());
                for (k, v) in &env {
                    c.arg("-x").arg(format!("{k}={v}"));
                }
                c
            }
        };
        cmd.arg(self.exe).args(&self.args);
        cmd
    }

    /// Runs to completion or kills the whole launch at the deadline.
    pub fn run(&self) -> Run {
        let run = run_with_deadline(self.command(), self.deadline, || {});
        eprintln!(
            "{} launch of {} on {} ranks: {:.1} s (deadline {} s)",
            self.mpi.name(),
            self.exe.file_name().unwrap_or_default().to_string_lossy(),
            self.ranks,
            run.elapsed.as_secs_f64(),
            self.deadline.as_secs()
        );
        assert!(
            !run.timed_out,
            "{} launch of {} missed its {:?} deadline\nstdout:\n{}\nstderr:\n{}",
            self.mpi.name(),
            self.exe.display(),
            self.deadline,
            run.stdout,
            run.stderr
        );
        run
    }
}

/// Runs `cmd` in a process group of its own, collecting its output; at `deadline` the
/// whole group is killed, `on_timeout` cleans up what escaped the group, and the run is
/// marked timed out.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration, on_timeout: impl FnOnce()) -> Run {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot launch {:?}: {e}", cmd.get_program()));
    let pid = child.id() as i32;
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let t_err = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if start.elapsed() > deadline {
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let timed_out = status.is_none();
    if timed_out {
        on_timeout();
    }
    let elapsed = start.elapsed();
    let mut stderr = t_err.join().unwrap_or_default();
    if timed_out {
        stderr.push_str(&format!("\n[deadline of {deadline:?} passed: launch killed]"));
    }
    Run { stdout: t_out.join().unwrap_or_default(), stderr, success: status.is_some_and(|s| s.success()), elapsed, timed_out }
}
