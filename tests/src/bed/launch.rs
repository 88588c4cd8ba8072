//! MPI launchers for both implementations that start ranks inside node namespaces, with a
//! placement given as rank → node, always under a deadline.

use std::process::Command;
use std::time::Duration;

use super::Bed;
use crate::mpi::{Mpi, Run};

/// The MPICH finalize fix (`native/ucx_finalize_fix.c`).
pub fn ucx_finalize_fix() -> std::path::PathBuf {
    crate::paths::native_lib("ucx_finalize_fix", &["-ldl", "-lpthread"])
}

/// A job on the bed.
pub struct BedLaunch<'a> {
    pub bed: &'a Bed,
    pub mpi: Mpi,
    /// Node index (into `bed.nodes`) of every rank, in rank order.
    pub placement: Vec<usize>,
    pub exe: std::path::PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub deadline: Duration,
}

impl<'a> BedLaunch<'a> {
    pub fn new(bed: &'a Bed, mpi: Mpi, placement: Vec<usize>, exe: &std::path::Path) -> BedLaunch<'a> {
        BedLaunch { bed, mpi, placement, exe: exe.to_path_buf(), args: vec![], env: vec![], deadline: Duration::from_secs(60) }
    }

    pub fn env(mut self, k: &str, v: impl ToString) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    pub fn arg(mut self, a: impl ToString) -> Self {
        self.args.push(a.to_string());
        self
    }

    /// The launcher command, run inside the node of rank 0 (that node is the front end).
    pub fn command(&self) -> Command {
        let hosts = self.bed.dir.join(format!("hosts-{}", std::process::id()));
        let list: Vec<&str> = self.placement.iter().map(|&n| self.bed.nodes[n].ip.as_str()).collect();
        let head = self.placement[0];
        let n = self.placement.len().to_string();
        let mut cmd = match self.mpi {
            Mpi::Mpich => {
                // One `host:1` line per rank, in rank order.
                let text: String = list.iter().map(|h| format!("{h}:1\n")).collect();
                std::fs::write(&hosts, text).expect("machinefile");
                let mut c = self.bed.on(head, "mpiexec.mpich");
                c.args(["-launcher", "ssh", "-launcher-exec"]).arg(self.bed.launcher()).arg("-f").arg(&hosts).args([
                    "-localhost",
                    &self.bed.nodes[head].ip,
                    "-n",
                    &n,
                ]);
                // UCX over TCP: shared memory across namespaces would bypass the network.
                for (k, v) in [("UCX_TLS", "tcp,self"), ("UCX_NET_DEVICES", "eth0")] {
                    c.args(["-genv", k, v]);
                }
                // MPICH 4.0.2 hangs in MPI_Finalize over UCX/TCP (its PMI barrier stops UCX
                // progress while peers still wait for flush acks); the fix keeps UCX
                // progressing there (native/ucx_finalize_fix.c).
                let fix = ucx_finalize_fix().display().to_string();
                let mut preload = Some(fix);
                for (k, v) in &self.env {
                    if k == "LD_PRELOAD" {
                        let joined = format!("{v} {}", preload.take().unwrap_or_default());
                        c.arg("-genv").arg(k).arg(joined.trim());
                    } else {
                        c.arg("-genv").arg(k).arg(v);
                    }
                }
                if let Some(p) = preload {
                    c.arg("-genv").arg("LD_PRELOAD").arg(p);
                }
                c
            }
            Mpi::OpenMpi => {
                // Node names, not addresses: mpirun recognises its own node by name. The
                // sequential mapper places rank i on line i; binding stays off (with it,
                // mpirun 4.1 crashes freeing the shared hwloc topology at exit).
                let names: Vec<&str> = self.placement.iter().map(|&n| self.bed.nodes[n].name.as_str()).collect();
                let text: String = names.iter().map(|h| format!("{h}\n")).collect();
                std::fs::write(&hosts, text).expect("hostfile");
                let mut c = self.bed.on(head, "mpirun.openmpi");
                c.args(["--allow-run-as-root", "--oversubscribe", "--mca", "plm_rsh_agent"])
                    .arg(self.bed.launcher())
                    .arg("--hostfile")
                    .arg(&hosts)
                    .args(["--mca", "rmaps", "seq", "--bind-to", "none", "-n", &n])
                    .args(["--mca", "pml", "ob1", "--mca", "btl", "tcp,self"])
                    .args(["--mca", "btl_tcp_if_include", "10.77.0.0/16", "--mca", "oob_tcp_if_include", "10.77.0.0/16"]);
                for (k, v) in &self.env {
                    c.arg("-x").arg(format!("{k}={v}"));
                }
                c
            }
        };
        cmd.arg(&self.exe).args(&self.args);
        cmd
    }

    /// Runs the job; at the deadline every process of the launch and in the bed's nodes is
    /// killed and the run reported as failed.
    pub fn run(&self) -> Run {
        crate::mpi::run_with_deadline(self.command(), self.deadline, || self.kill_ranks())
    }

    /// Kills whatever still runs in the nodes of this launch.
    fn kill_ranks(&self) {
        for &n in &self.placement {
            let ns = &self.bed.nodes[n].name;
            let pids = Command::new("ip").args(["netns", "pids", ns]).output().map(|o| o.stdout).unwrap_or_default();
            for p in String::from_utf8_lossy(&pids).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                // SAFETY: processes inside this bed's node namespace.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
}
