//! `straddle demo`: a real MPI program under the shim, with a controller in this process,
//! its traffic shown live.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use straddle_controller::api::convert;
use straddle_controller::api::server::{Controller, ControllerConfig};

use crate::args::Mpi;
use crate::render;

fn shim_path(mpi: Mpi) -> Result<PathBuf> {
    let name = match mpi {
        Mpi::Mpich => "libstraddle_mpich.so",
        Mpi::Openmpi => "libstraddle_openmpi.so",
    };
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("binary has no folder")?;
    let p = dir.join(name);
    if !p.exists() {
        bail!("the shim {} is missing: build the workspace with `cargo build --release`", p.display());
    }
    Ok(p)
}

pub async fn demo(mpi: Mpi, ranks: u32, steps: u32) -> Result<()> {
    let shim = shim_path(mpi)?;
    let dir = std::env::temp_dir().join(format!("straddle-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let src = dir.join("demo.c");
    std::fs::write(&src, include_str!("demo.c"))?;
    let exe = dir.join("demo");
    let (cc, launcher) = match mpi {
        Mpi::Mpich => ("mpicc.mpich", "mpiexec.mpich"),
        Mpi::Openmpi => ("mpicc.openmpi", "mpirun.openmpi"),
    };
    let st = std::process::Command::new(cc)
        .arg("-O2")
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .with_context(|| format!("cannot run {cc}: install MPI with scripts/setup.sh"))?;
    if !st.success() {
        bail!("{cc} failed on the demo program");
    }

    let c = Controller::bind("127.0.0.1:0".parse()?, ControllerConfig::default()).await?;
    let url = format!("http://{}", c.local_addr());
    let registry = c.registry.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(c.serve(async {
        let _ = stop_rx.await;
    }));
    println!("controller on {url}; running {ranks} ranks of the demo under {} with the shim\n", launcher);

    let job = "demo";
    let mut cmd = tokio::process::Command::new(launcher);
    let envs = [
        ("LD_PRELOAD", shim.display().to_string()),
        ("STRADDLE_CONTROLLER", url.clone()),
        ("STRADDLE_JOB", job.to_string()),
        ("STRADDLE_INTERVAL_MS", "500".to_string()),
    ];
    match mpi {
        Mpi::Mpich => {
            cmd.arg("-n").arg(ranks.to_string());
            for (k, v) in &envs {
                cmd.arg("-genv").arg(k).arg(v);
            }
        }
        Mpi::Openmpi => {
            cmd.args(["--allow-run-as-root", "--oversubscribe", "-n"]).arg(ranks.to_string());
            for (k, v) in &envs {
                cmd.arg("-x").arg(format!("{k}={v}"));
            }
        }
    }
    cmd.arg(&exe).arg(steps.to_string()).stdout(Stdio::inherit()).stderr(Stdio::inherit()).kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("cannot start {launcher}"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60 + steps as u64);
    let status = loop {
        tokio::select! {
            st = child.wait() => break st?,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if tokio::time::Instant::now() > deadline {
                    let _ = child.kill().await;
                    bail!("the demo did not finish in time");
                }
                let now = registry.clock.now();
                if let Some(m) = registry.with_job(job, |j| convert::traffic(j, now, 2, 0)) {
                    println!("--- live: traffic per second over the last 2 s ---");
                    print!("{}", render::table(&m));
                    println!();
                }
            }
        }
    };
    if !status.success() {
        bail!("the demo program failed: {status}");
    }
    let now = registry.clock.now();
    let m = registry.with_job(job, |j| convert::traffic(j, now, 0, 0)).context("the controller saw no traffic from the demo")?;
    println!("=== final: everything the ranks sent ===");
    print!("{}", render::table(&m));
    let _ = stop_tx.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
