//! `straddle`: the controller and its operator CLI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use straddle_controller::{render, server::Controller};
use straddle_proto::traffic_client::TrafficClient;
use straddle_proto::{ListJobsRequest, TrafficMatrix, TrafficRequest};

#[derive(Parser)]
#[command(name = "straddle", version, about = "Place MPI jobs across sites by what they actually send")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the controller (gRPC; loopback by default).
    Controller {
        #[arg(long, default_value = "127.0.0.1:50051", env = "STRADDLE_LISTEN")]
        listen: SocketAddr,
        /// Sites, hosts, links and VMs (YAML, see docs/topology.md); needed to admit jobs.
        #[arg(long, env = "STRADDLE_TOPOLOGY")]
        topology: Option<PathBuf>,
        /// Keep jobs, placements, epochs and decisions in this file (redb), restored at start.
        #[arg(long, env = "STRADDLE_STATE")]
        state: Option<PathBuf>,
        /// Token callers must present to submit or cancel jobs and to override placement.
        #[arg(long, env = "STRADDLE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Refuse ranks of jobs no scheduler submitted (default: observe every job).
        #[arg(long)]
        submitted_only: bool,
        /// What the planner does with its plans.
        #[arg(long, value_enum, default_value_t = Mode::Automatic)]
        mode: Mode,
        /// Seconds between rounds of the decision loop.
        #[arg(long, default_value_t = 5.0)]
        decide_every: f64,
        /// Traffic rates are taken over this many trailing seconds.
        #[arg(long, default_value_t = 10)]
        window: u64,
        /// Network-intensive above this predicted slowdown when spanning sites (0.1 = 10%).
        #[arg(long, default_value_t = 0.10)]
        threshold: f64,
        /// Classify by the predicted slowdown (model) or the paper's 10 MB/s rule (paper).
        #[arg(long, value_enum, default_value_t = PolicyArg::Model)]
        policy: PolicyArg,
        /// Minimum seconds a job keeps its class.
        #[arg(long, default_value_t = 60.0)]
        dwell: f64,
        /// Minimum seconds between two migrations of one VM.
        #[arg(long, default_value_t = 300.0)]
        cooldown: f64,
    },
    /// Watch the planner's decisions (the log so far, then live).
    Decisions {
        #[arg(long, default_value = "")]
        job: String,
        /// Keep following new decisions.
        #[arg(long)]
        watch: bool,
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "STRADDLE_CONTROLLER")]
        controller: String,
        #[arg(long, env = "STRADDLE_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Explain one decision: why, what it predicted, what happened.
    Explain {
        id: u64,
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "STRADDLE_CONTROLLER")]
        controller: String,
        #[arg(long, env = "STRADDLE_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Where every VM runs (optionally of one job).
    Placements {
        #[arg(long, default_value = "")]
        job: String,
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "STRADDLE_CONTROLLER")]
        controller: String,
        #[arg(long, env = "STRADDLE_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Operator overrides: pin/unpin a VM, drain/undrain a site, set the mode, approve/reject a plan.
    Override {
        #[command(subcommand)]
        what: Override,
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "STRADDLE_CONTROLLER", global = true)]
        controller: String,
        #[arg(long, env = "STRADDLE_TOKEN", hide_env_values = true, global = true)]
        token: Option<String>,
    },
    /// Submit a job: its ranks run on these VMs, in rank order.
    Submit {
        job: String,
        #[arg(long, value_delimiter = ',', required = true)]
        vms: Vec<String>,
        #[arg(long, default_value = "")]
        cluster: String,
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "STRADDLE_CONTROLLER")]
        controller: String,
        #[arg(long, env = "STRADDLE_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Submit a scenario file (YAML: jobs with arrival times).
    Scenario {
        file: PathBuf,
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "STRADDLE_CONTROLLER")]
        controller: String,
        #[arg(long, env = "STRADDLE_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Cancel a job.
    Cancel {
        job: String,
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "STRADDLE_CONTROLLER")]
        controller: String,
        #[arg(long, env = "STRADDLE_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Show a job's rank × rank traffic matrix and per-rank totals.
    Traffic {
        job: String,
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "STRADDLE_CONTROLLER")]
        controller: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show rates over this many trailing seconds instead of cumulative totals.
        #[arg(long, value_name = "SECS")]
        rate: Option<u32>,
        /// Refresh every second until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// List the jobs the controller knows.
    Jobs {
        #[arg(long, default_value = "http://127.0.0.1:50051", env = "STRADDLE_CONTROLLER")]
        controller: String,
    },
    /// Run a real MPI program under the shim with a live controller and show its traffic.
    Demo {
        #[arg(long, value_enum, default_value_t = Mpi::Mpich)]
        mpi: Mpi,
        #[arg(long, default_value_t = 4)]
        ranks: u32,
        #[arg(long, default_value_t = 8)]
        steps: u32,
    },
}

#[derive(Subcommand)]
enum Override {
    Pin { vm: String },
    Unpin { vm: String },
    Drain { site: String },
    Undrain { site: String },
    Mode { mode: Mode },
    Approve { id: u64 },
    Reject { id: u64 },
}

#[derive(Clone, Copy, ValueEnum, Debug)]
enum Mode {
    Automatic,
    DryRun,
    Approve,
}

impl From<Mode> for straddle_proto::PlannerMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Automatic => straddle_proto::PlannerMode::Automatic,
            Mode::DryRun => straddle_proto::PlannerMode::DryRun,
            Mode::Approve => straddle_proto::PlannerMode::Approve,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyArg {
    Model,
    Paper,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mpi {
    Mpich,
    Openmpi,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The controller logs what it accepts and refuses; the CLI and demo only warnings.
    let default_level = if matches!(cli.cmd, Cmd::Controller { .. }) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("STRADDLE_LOG").unwrap_or_else(|_| default_level.into()))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Controller {
                listen,
                topology,
                state,
                token,
                submitted_only,
                mode,
                decide_every,
                window,
                threshold,
                policy,
                dwell,
                cooldown,
            } => {
                let mut cfg = straddle_controller::decide::DeciderConfig::default();
                cfg.window_secs = window.max(1);
                cfg.policy.slowdown_threshold = threshold;
                cfg.policy.kind = match policy {
                    PolicyArg::Model => straddle_controller::classify::PolicyKind::Model,
                    PolicyArg::Paper => straddle_controller::classify::PolicyKind::Paper,
                };
                cfg.policy.min_dwell = Duration::from_secs_f64(dwell.max(0.0));
                cfg.cooldown = Duration::from_secs_f64(cooldown.max(0.0));
                run_controller(
                    listen,
                    topology,
                    state,
                    token,
                    submitted_only,
                    cfg,
                    mode.into(),
                    Duration::from_secs_f64(decide_every.max(0.1)),
                )
                .await
            }
            Cmd::Decisions { job, watch, controller, token } => {
                let mut c = operator(&controller, token).await?;
                let mut s = c.watch_decisions(straddle_proto::WatchDecisionsRequest { job }).await.map_err(status)?.into_inner();
                loop {
                    let next = if watch {
                        s.message().await.map_err(status)?
                    } else {
                        match tokio::time::timeout(Duration::from_millis(300), s.message()).await {
                            Ok(m) => m.map_err(status)?,
                            Err(_) => None,
                        }
                    };
                    let Some(d) = next else { return Ok(()) };
                    println!("{}", render::decision_line(&d));
                }
            }
            Cmd::Explain { id, controller, token } => {
                let mut c = operator(&controller, token).await?;
                let d = c.explain(straddle_proto::ExplainRequest { decision_id: id }).await.map_err(status)?.into_inner();
                print!("{}", render::explain(&d));
                Ok(())
            }
            Cmd::Placements { job, controller, token } => {
                let mut c = operator(&controller, token).await?;
                let p = c.list_placements(straddle_proto::ListPlacementsRequest { job }).await.map_err(status)?.into_inner();
                println!("{:<16} {:<12} {:<12} {:<16} {:<10} pinned", "vm", "host", "site", "job", "ranks");
                for x in p.placements {
                    let ranks = x.ranks.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(",");
                    println!(
                        "{:<16} {:<12} {:<12} {:<16} {:<10} {}",
                        x.vm,
                        x.host,
                        x.site,
                        x.job,
                        ranks,
                        if x.pinned { "yes" } else { "" }
                    );
                }
                Ok(())
            }
            Cmd::Override { what, controller, token } => {
                let mut c = operator(&controller, token).await?;
                let ack = match what {
                    Override::Pin { vm } => c.pin(straddle_proto::PinRequest { vm, pinned: true }).await,
                    Override::Unpin { vm } => c.pin(straddle_proto::PinRequest { vm, pinned: false }).await,
                    Override::Drain { site } => c.drain(straddle_proto::DrainRequest { site, drain: true }).await,
                    Override::Undrain { site } => c.drain(straddle_proto::DrainRequest { site, drain: false }).await,
                    Override::Mode { mode } => {
                        c.set_mode(straddle_proto::SetModeRequest { mode: straddle_proto::PlannerMode::from(mode) as i32 }).await
                    }
                    Override::Approve { id } => c.approve(straddle_proto::ApproveRequest { decision_id: id, approve: true }).await,
                    Override::Reject { id } => c.approve(straddle_proto::ApproveRequest { decision_id: id, approve: false }).await,
                }
                .map_err(status)?
                .into_inner();
                println!("{}", ack.message);
                Ok(())
            }
            Cmd::Submit { job, vms, cluster, controller, token } => {
                let spec = straddle_proto::JobSpec { job, world_size: vms.len() as u32, cluster, rank_vms: vms };
                let mut c = scheduler(&controller, token).await?;
                let r = c.submit_job(spec).await.map_err(status)?.into_inner();
                println!("submitted {}", r.job);
                Ok(())
            }
            Cmd::Scenario { file, controller, token } => {
                let yaml = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
                let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let mut c = scheduler(&controller, token).await?;
                let r = c.submit_scenario(straddle_proto::ScenarioSpec { name, yaml }).await.map_err(status)?.into_inner();
                println!("scenario {} accepted: {}", r.name, r.jobs.join(", "));
                Ok(())
            }
            Cmd::Cancel { job, controller, token } => {
                let mut c = scheduler(&controller, token).await?;
                let r = c.cancel_job(straddle_proto::CancelJobRequest { job }).await.map_err(status)?.into_inner();
                println!("cancelled {}", r.job);
                Ok(())
            }
            Cmd::Traffic { job, controller, json, rate, watch } => traffic(&controller, &job, json, rate, watch).await,
            Cmd::Jobs { controller } => jobs(&controller).await,
            Cmd::Demo { mpi, ranks, steps } => demo(mpi, ranks, steps).await,
        }
    })
}

type AuthChannel = tonic::service::interceptor::InterceptedService<
    tonic::transport::Channel,
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>,
>;
type SchedulerClient = straddle_proto::scheduler_client::SchedulerClient<AuthChannel>;
type OperatorClient = straddle_proto::operator_client::OperatorClient<AuthChannel>;

async fn scheduler(controller: &str, token: Option<String>) -> Result<SchedulerClient> {
    let (channel, add) = authed(controller, token).await?;
    Ok(straddle_proto::scheduler_client::SchedulerClient::with_interceptor(channel, add))
}

async fn operator(controller: &str, token: Option<String>) -> Result<OperatorClient> {
    let (channel, add) = authed(controller, token).await?;
    Ok(straddle_proto::operator_client::OperatorClient::with_interceptor(channel, add))
}

#[allow(clippy::type_complexity)]
async fn authed(
    controller: &str,
    token: Option<String>,
) -> Result<(tonic::transport::Channel, Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>)> {
    let channel = tonic::transport::Endpoint::from_shared(controller.to_string())?
        .connect()
        .await
        .with_context(|| format!("cannot reach the controller at {controller}"))?;
    let header = match token {
        Some(t) => Some(format!("Bearer {t}").parse::<tonic::metadata::MetadataValue<_>>().context("token is not a valid header value")?),
        None => None,
    };
    let add: Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send> = Box::new(move |mut r| {
        if let Some(h) = &header {
            r.metadata_mut().insert("authorization", h.clone());
        }
        Ok(r)
    });
    Ok((channel, add))
}

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", code_word(s.code()), s.message())
}

async fn run_controller(
    listen: SocketAddr,
    topology: Option<PathBuf>,
    state: Option<PathBuf>,
    token: Option<String>,
    submitted_only: bool,
    cfg: straddle_controller::decide::DeciderConfig,
    mode: straddle_proto::PlannerMode,
    every: Duration,
) -> Result<()> {
    let mut c = Controller::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    if let Some(path) = topology {
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let topo = straddle_controller::topology::Topology::from_yaml(&text).with_context(|| format!("{}", path.display()))?;
        tracing::info!(sites = topo.sites.len(), hosts = topo.hosts.len(), vms = topo.vms.len(), "topology loaded");
        c = c.with_topology(topo, state.as_deref())?.with_decider(cfg, mode, every, None);
    } else if state.is_some() {
        bail!("--state needs --topology: the state describes placements over a topology");
    }
    c.registry.submitted_only.store(submitted_only, std::sync::atomic::Ordering::Relaxed);
    let c = c.with_token(token);
    // The first line on stdout says where to connect (tools read it when --listen ends in :0).
    println!("straddle controller listening on {}", c.local_addr());
    tracing::info!(addr = %c.local_addr(), "controller listening");
    c.serve(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

async fn fetch(controller: &str, job: &str, rate: Option<u32>) -> Result<TrafficMatrix> {
    let mut c =
        TrafficClient::connect(controller.to_string()).await.with_context(|| format!("cannot reach the controller at {controller}"))?;
    let m = c
        .get_traffic(TrafficRequest { job: job.to_string(), rate_window_secs: rate.unwrap_or(0) })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", code_word(s.code()), s.message()))?;
    Ok(m.into_inner())
}

fn code_word(c: tonic::Code) -> &'static str {
    match c {
        tonic::Code::NotFound => "not found",
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::Unavailable => "controller unavailable",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::AlreadyExists => "already exists",
        tonic::Code::FailedPrecondition => "failed precondition",
        _ => "error",
    }
}

fn print(m: &TrafficMatrix, json: bool) {
    if json {
        println!("{}", render::json(m));
    } else {
        print!("{}", render::table(m));
    }
}

async fn traffic(controller: &str, job: &str, json: bool, rate: Option<u32>, watch: bool) -> Result<()> {
    loop {
        let m = fetch(controller, job, rate).await?;
        if watch && !json {
            print!("\x1b[2J\x1b[H");
        }
        print(&m, json);
        if !watch {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn jobs(controller: &str) -> Result<()> {
    let mut c =
        TrafficClient::connect(controller.to_string()).await.with_context(|| format!("cannot reach the controller at {controller}"))?;
    let jobs = c.list_jobs(ListJobsRequest {}).await?.into_inner().jobs;
    println!("{:<24} {:>6} {:>9} {:>14} {:>10}", "job", "ranks", "attached", "bytes", "messages");
    for j in jobs {
        println!(
            "{:<24} {:>6} {:>9} {:>14} {:>10}",
            j.job,
            j.world_size,
            j.attached_ranks,
            render::human_bytes(j.total_bytes as f64),
            j.total_messages
        );
    }
    Ok(())
}

/// The shim built next to this binary (`cargo build --release` puts both in one folder).
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

async fn demo(mpi: Mpi, ranks: u32, steps: u32) -> Result<()> {
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

    let c = Controller::bind("127.0.0.1:0".parse()?).await?;
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
                let now = registry.now_secs();
                if let Ok(m) = registry.with_job(job, |j| straddle_controller::service::traffic::matrix(j, now, 2)) {
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
    let now = registry.now_secs();
    let m = registry
        .with_job(job, |j| straddle_controller::service::traffic::matrix(j, now, 0))
        .map_err(|e| anyhow::anyhow!("the controller saw no traffic: {e}"))?;
    println!("=== final: everything the ranks sent ===");
    print!("{}", render::table(&m));
    let _ = stop_tx.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Path::new(&dir);
    Ok(())
}
