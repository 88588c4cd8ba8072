//! `straddle`: the controller and its operator, scheduler and traffic commands.

mod args;
mod client;
mod demo;
mod render;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use straddle_controller::api::server::{Controller, ControllerConfig};
use straddle_controller::decide::PlannerMode;
use straddle_controller::hypervisor::libvirt::Settings as LibvirtSettings;
use straddle_controller::hypervisor::{Hypervisor, LibvirtHypervisor};
use straddle_controller::model::classify::PolicyKind;
use straddle_controller::model::topology::Topology;
use straddle_controller::model::traffic::Limits;
use straddle_proto::operator_client::OperatorClient;
use straddle_proto::scheduler_client::SchedulerClient;
use straddle_proto::traffic_client::TrafficClient;
use straddle_proto::{ListJobsRequest, TrafficMatrix, TrafficRequest};

use args::{Cli, ClusterCmd, Cmd, ControllerArgs, HypervisorArg, Mode, Override, PolicyArg};
use client::{authed, status};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The controller logs what it accepts and refuses; the commands only warnings.
    let default_level = if matches!(cli.cmd, Cmd::Controller(_)) { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("STRADDLE_LOG").unwrap_or_else(|_| default_level.into()))
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("straddle: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.cmd)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever RUST_BACKTRACE says.
            eprintln!("straddle: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn mode(m: Mode) -> PlannerMode {
    match m {
        Mode::Automatic => PlannerMode::Automatic,
        Mode::DryRun => PlannerMode::DryRun,
        Mode::Approve => PlannerMode::Approve,
    }
}

fn pb_mode(m: Mode) -> straddle_proto::PlannerMode {
    match m {
        Mode::Automatic => straddle_proto::PlannerMode::Automatic,
        Mode::DryRun => straddle_proto::PlannerMode::DryRun,
        Mode::Approve => straddle_proto::PlannerMode::Approve,
    }
}

fn secs(name: &str, v: f64) -> Result<Duration> {
    if !(v.is_finite() && (0.0..=1e9).contains(&v)) {
        bail!("--{name}: {v} is not a number of seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

fn config(a: &ControllerArgs) -> Result<ControllerConfig> {
    let mut cfg = ControllerConfig::default();
    if !(1..=60).contains(&a.window) {
        bail!("--window: {} is not from 1 to 60 seconds", a.window);
    }
    if !(a.threshold.is_finite() && a.threshold > 0.0) {
        bail!("--threshold: {} is not a positive slowdown", a.threshold);
    }
    cfg.control.window_secs = a.window;
    cfg.control.policy.slowdown_threshold = a.threshold;
    cfg.control.policy.kind = match a.policy {
        PolicyArg::Model => PolicyKind::Model,
        PolicyArg::Paper => PolicyKind::Paper,
    };
    cfg.control.policy.min_dwell = secs("dwell", a.dwell)?;
    cfg.exec.cooldown = secs("cooldown", a.cooldown)?;
    cfg.exec.min_migration_timeout = secs("migration-timeout", a.migration_timeout)?;
    cfg.mode = a.mode.map(mode);
    cfg.decide_every = secs("decide-every", a.decide_every)?.max(Duration::from_millis(100));
    cfg.discover_every = secs("discover-every", a.discover_every)?.max(Duration::from_secs(1));
    cfg.limits = Limits { max_world_size: a.max_world_size, ..Limits::default() };
    cfg.max_jobs = a.max_jobs;
    cfg.forget_after = secs("forget-after", a.forget_after)?;
    cfg.open = !a.submitted_only;
    cfg.fabric_token = match &a.fabric_token_file {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("--fabric-token-file: cannot read {}", p.display()))?),
        None => std::env::var("STRADDLE_FABRIC_TOKEN").ok(),
    }
    .map(|t| t.trim().to_string())
    .filter(|t| !t.is_empty());
    cfg.agent_heartbeat = secs("agent-heartbeat", a.agent_heartbeat)?.max(Duration::from_millis(100));
    if !(626..=65535).contains(&a.underlay_mtu) {
        bail!("--underlay-mtu: {} is not from 626 to 65535", a.underlay_mtu);
    }
    cfg.underlay_mtu = a.underlay_mtu;
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        cfg.tls =
            Some(straddle_controller::api::server::TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: a.tls_client_ca.clone() });
    }
    Ok(cfg)
}

/// The hypervisor `--hypervisor` names (`None`: the simulated one over the topology's VMs).
fn hypervisor(a: &ControllerArgs, topo: &Topology) -> Result<Option<Arc<dyn Hypervisor>>> {
    match a.hypervisor {
        HypervisorArg::Sim => Ok(None),
        HypervisorArg::Libvirt => {
            if let Some(h) = topo.hosts.iter().find(|h| h.libvirt_uri.is_empty()) {
                bail!("--hypervisor libvirt: host {:?} has no libvirt_uri in the topology", h.name);
            }
            if !(a.max_downtime_ms.is_finite() && a.max_downtime_ms >= 1.0) {
                bail!("--max-downtime-ms {}: at least 1 ms", a.max_downtime_ms);
            }
            let mut settings = LibvirtSettings::default();
            settings.policy.max_downtime_s = a.max_downtime_ms / 1000.0;
            settings.auto_converge = !a.no_auto_converge;
            settings.postcopy = a.postcopy;
            settings.tls = a.migration_tls;
            if a.postcopy {
                tracing::warn!("--postcopy: a migration switched to post-copy is lost if its link fails before it ends");
            }
            Ok(Some(Arc::new(LibvirtHypervisor::new(settings))))
        }
    }
}

async fn run_controller(a: ControllerArgs) -> Result<()> {
    let cfg = config(&a)?;
    let fds = straddle_controller::api::listener::raise_fd_limit();
    let mut cfg = cfg;
    // Every connection holds a descriptor; keep some for the store, logs and the runtime.
    cfg.connections.max = cfg.connections.max.min(usize::try_from(fds.saturating_sub(256)).unwrap_or(usize::MAX).max(64));
    tracing::debug!(fds, max_connections = cfg.connections.max, "descriptor limit");
    let token = client::token(a.token_file.as_deref())?;
    if token.is_none() && !a.listen.ip().is_loopback() {
        if !a.allow_insecure {
            bail!("--listen {}: beyond loopback a token is needed (--token-file or STRADDLE_TOKEN), or say --allow-insecure", a.listen);
        }
        tracing::warn!(listen = %a.listen, "listening beyond loopback without a token: anyone who reaches it may change placement");
    }
    if a.tls_cert.is_none() && !a.listen.ip().is_loopback() {
        tracing::warn!(listen = %a.listen, "listening beyond loopback without TLS: tokens and traffic cross the network in clear");
    }
    let mut c = Controller::bind(a.listen, cfg).await?;
    if let Some(path) = &a.topology {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let topo = Topology::from_yaml(&text).with_context(|| path.display().to_string())?;
        tracing::info!(sites = topo.sites.len(), hosts = topo.hosts.len(), vms = topo.vms.len(), "topology loaded");
        let hv = hypervisor(&a, &topo)?;
        c = c.with_topology(topo, a.state.as_deref(), hv).await?;
    } else if a.state.is_some() {
        bail!("--state needs --topology: the state describes placements over a topology");
    }
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

async fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Controller(a) => run_controller(a).await,
        Cmd::Decisions { job, watch, conn } => {
            let mut c = OperatorClient::new(authed(&conn).await?);
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
        Cmd::Explain { id, conn } => {
            let mut c = OperatorClient::new(authed(&conn).await?);
            let d = c.explain(straddle_proto::ExplainRequest { decision_id: id }).await.map_err(status)?.into_inner();
            print!("{}", render::explain(&d));
            Ok(())
        }
        Cmd::Placements { job, conn } => {
            let mut c = OperatorClient::new(authed(&conn).await?);
            let p = c.list_placements(straddle_proto::ListPlacementsRequest { job }).await.map_err(status)?.into_inner();
            println!("{:<16} {:<12} {:<12} {:<16} {:<10} pinned", "vm", "host", "site", "job", "ranks");
            for x in p.placements {
                let ranks = x.ranks.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(",");
                println!("{:<16} {:<12} {:<12} {:<16} {:<10} {}", x.vm, x.host, x.site, x.job, ranks, if x.pinned { "yes" } else { "" });
            }
            Ok(())
        }
        Cmd::Operations { conn } => {
            let mut c = OperatorClient::new(authed(&conn).await?);
            let ops = c.list_operations(straddle_proto::ListOperationsRequest {}).await.map_err(status)?.into_inner().operations;
            if ops.is_empty() {
                println!("no migration in flight");
            }
            for o in ops {
                println!("{}", render::operation_line(&o));
            }
            Ok(())
        }
        Cmd::Health { conn } => {
            let mut c = OperatorClient::new(authed(&conn).await?);
            let h = c.health(straddle_proto::HealthRequest {}).await.map_err(status)?.into_inner();
            println!("{}", if h.healthy { "healthy" } else { "degraded" });
            for x in h.components {
                let died = if x.deaths > 0 { format!(" (died {} times; last: {})", x.deaths, x.reason) } else { String::new() };
                println!("  {:<18} {}{died}", x.name, x.state);
            }
            if !h.healthy {
                bail!("a task of the controller is not running");
            }
            Ok(())
        }
        Cmd::Agents { conn } => {
            let mut c = OperatorClient::new(authed(&conn).await?);
            let r = c.list_agents(straddle_proto::ListAgentsRequest {}).await.map_err(status)?.into_inner();
            if r.agents.is_empty() {
                println!("no agent registered");
            }
            for a in &r.agents {
                print!("{}", render::agent(a));
            }
            Ok(())
        }
        Cmd::Override { what, conn } => {
            let mut c = OperatorClient::new(authed(&conn).await?);
            let ack = match what {
                Override::Pin { vm } => c.pin(straddle_proto::PinRequest { vm, pinned: true }).await,
                Override::Unpin { vm } => c.pin(straddle_proto::PinRequest { vm, pinned: false }).await,
                Override::Drain { site } => c.drain(straddle_proto::DrainRequest { site, drain: true }).await,
                Override::Undrain { site } => c.drain(straddle_proto::DrainRequest { site, drain: false }).await,
                Override::Mode { mode } => c.set_mode(straddle_proto::SetModeRequest { mode: pb_mode(mode) as i32 }).await,
                Override::Approve { id } => c.approve(straddle_proto::ApproveRequest { decision_id: id, approve: true }).await,
                Override::Reject { id } => c.approve(straddle_proto::ApproveRequest { decision_id: id, approve: false }).await,
            }
            .map_err(status)?
            .into_inner();
            println!("{}", ack.message);
            Ok(())
        }
        Cmd::Cluster { what, conn } => {
            let mut c = SchedulerClient::new(authed(&conn).await?);
            let (verb, vms) = match what {
                ClusterCmd::Build { cluster, kernel, initrd, cmdline, vcpus } => {
                    let r = straddle_proto::BuildClusterRequest { cluster, kernel, initrd, cmdline, vcpus };
                    ("built", c.build_cluster(r).await.map_err(status)?.into_inner().vms)
                }
                ClusterCmd::Down { cluster } => (
                    "removed",
                    c.tear_down_cluster(straddle_proto::TearDownClusterRequest { cluster }).await.map_err(status)?.into_inner().vms,
                ),
            };
            for v in vms {
                println!("{verb} {v}");
            }
            Ok(())
        }
        Cmd::Submit { job, vms, cluster, token_out, conn } => {
            let world_size = u32::try_from(vms.len()).context("--vms: too many ranks")?;
            let spec = straddle_proto::JobSpec { job, world_size, cluster, rank_vms: vms };
            let mut c = SchedulerClient::new(authed(&conn).await?);
            let r = c.submit_job(spec).await.map_err(status)?.into_inner();
            println!("submitted {}", r.job);
            match token_out {
                Some(path) => {
                    use std::io::Write;
                    use std::os::unix::fs::OpenOptionsExt;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    writeln!(f, "{}", r.job_token)?;
                }
                None if !r.job_token.is_empty() => println!("job token: {}", r.job_token),
                None => {}
            }
            Ok(())
        }
        Cmd::Scenario { file, conn } => {
            let yaml = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let mut c = SchedulerClient::new(authed(&conn).await?);
            let r = c.submit_scenario(straddle_proto::ScenarioSpec { name, yaml }).await.map_err(status)?.into_inner();
            println!("scenario {} accepted: {}", r.name, r.jobs.join(", "));
            for j in &r.jobs {
                if let Some(t) = r.job_tokens.get(j) {
                    println!("job token {j}: {t}");
                }
            }
            Ok(())
        }
        Cmd::Cancel { job, conn } => {
            let mut c = SchedulerClient::new(authed(&conn).await?);
            let r = c.cancel_job(straddle_proto::CancelJobRequest { job }).await.map_err(status)?.into_inner();
            println!("cancelled {}", r.job);
            Ok(())
        }
        Cmd::Traffic { job, json, rate, watch, conn } => traffic(&conn, &job, json, rate, watch).await,
        Cmd::Jobs { conn } => jobs(&conn).await,
        Cmd::State { state, topology } => check_state(&state, &topology),
        Cmd::Demo { mpi, ranks, steps } => demo::demo(mpi, ranks, steps).await,
    }
}

/// `straddle state`: loads a state file as the controller would, without serving.
fn check_state(state: &std::path::Path, topology: &std::path::Path) -> Result<()> {
    use straddle_controller::state::{redb::RedbStore, StateStore};
    if !state.exists() {
        bail!("{}: no such state file", state.display());
    }
    let text = std::fs::read_to_string(topology).with_context(|| format!("cannot read {}", topology.display()))?;
    let topo = Topology::from_yaml(&text).with_context(|| topology.display().to_string())?;
    let store = RedbStore::open(state)?;
    let snap = store.load()?;
    let clock = straddle_controller::clock::Clock::new();
    let registry = std::sync::Arc::new(straddle_controller::observe::Registry::new(clock, Limits::default(), usize::MAX));
    let plane =
        straddle_controller::plane::ControlPlane::new(std::sync::Arc::new(topo), registry, straddle_controller::state::Store::memory());
    plane.restore(&snap)?;
    println!(
        "{}: sound — {} jobs, {} moved VMs, {} decisions, {} operations, {} arrivals",
        state.display(),
        snap.jobs.len(),
        snap.placements.len(),
        snap.decisions.len(),
        snap.operations.len(),
        snap.arrivals.len()
    );
    Ok(())
}

async fn fetch(conn: &args::Conn, job: &str, rate: Option<u32>) -> Result<TrafficMatrix> {
    let mut c = TrafficClient::new(authed(conn).await?);
    let m =
        c.get_traffic(TrafficRequest { job: job.to_string(), rate_window_secs: rate.unwrap_or(0), max_pairs: 0 }).await.map_err(status)?;
    Ok(m.into_inner())
}

async fn traffic(conn: &args::Conn, job: &str, json: bool, rate: Option<u32>, watch: bool) -> Result<()> {
    loop {
        let m = fetch(conn, job, rate).await?;
        if watch && !json {
            print!("\x1b[2J\x1b[H");
        }
        if json {
            println!("{}", render::json(&m));
        } else {
            print!("{}", render::table(&m));
        }
        if !watch {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn jobs(conn: &args::Conn) -> Result<()> {
    let mut c = TrafficClient::new(authed(conn).await?);
    let jobs = c.list_jobs(ListJobsRequest {}).await.map_err(status)?.into_inner().jobs;
    println!("{:<24} {:>6} {:>9} {:>14} {:>10}  {:<10} class", "job", "ranks", "attached", "bytes", "messages", "state");
    for j in jobs {
        let state = straddle_proto::JobState::try_from(j.state).map(|s| s.as_str_name().to_ascii_lowercase()).unwrap_or_default();
        let class = match straddle_proto::JobClass::try_from(j.class) {
            Ok(straddle_proto::JobClass::NetworkIntensive) => "network-intensive",
            Ok(straddle_proto::JobClass::ComputeIntensive) => "compute-intensive",
            _ => "-",
        };
        println!(
            "{:<24} {:>6} {:>9} {:>14} {:>10}  {:<10} {class}",
            j.job,
            j.world_size,
            j.attached_ranks,
            render::human_bytes(j.total_bytes as f64),
            j.total_messages,
            state
        );
    }
    Ok(())
}
