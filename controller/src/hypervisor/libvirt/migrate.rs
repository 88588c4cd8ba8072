//! One live migration through libvirt: peer to peer (the source daemon opens the
//! destination), the destination persisted and the source undefined, data to the
//! destination's migration address, capped at the planner's share of the link. It runs on
//! a thread of its own (libvirt's call blocks until the end) while a watcher, over a second
//! connection, samples the job, publishes progress, steers it by the measured-progress
//! policy (downtime raised in steps, then abort or post-copy) and aborts it on cancel. A
//! migration that fails leaves the VM running where it was and nothing on the destination.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use straddle_model::migration_policy::{Action, Policy, PolicyConfig, Sample};
use virt::connect::Connect;
use virt::domain::{Domain, DomainPausedReason, DomainState, DomainStateReason, JobStats, MigrateParameters};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;
use virt::sys;

use super::conn::{backend, Pool};
use super::raw;
use crate::hypervisor::{HostRef, HypervisorError, MigrationDriver, MigrationPhase, MigrationRequest};
use crate::records::MigrationStats;

/// How migrations are run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: PolicyConfig,
    /// Let QEMU throttle a guest whose dirty rate outruns the link (auto-converge).
    pub auto_converge: bool,
    /// Switch to post-copy instead of aborting a migration that cannot converge. Opt-in: a
    /// link that fails after the switch loses the VM (its memory is split between hosts).
    pub postcopy: bool,
    /// Encrypt the migration stream (both daemons need TLS certificates for it).
    pub tls: bool,
    /// How often the job is sampled.
    pub poll: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { policy: PolicyConfig::default(), auto_converge: true, postcopy: false, tls: false, poll: Duration::from_millis(100) }
    }
}

/// A migration checked and ready to start.
pub struct Prepared {
    req: MigrationRequest,
    dom: Domain,
    memory_bytes: f64,
}

fn is(e: &virt::error::Error, n: ErrorNumber) -> bool {
    e.code().is(n)
}

/// Checks that the VM runs on the source and nothing of that name runs on the destination
/// (a stopped leftover there is removed), and reads the VM's memory.
pub fn prepare(pool: &Pool, req: MigrationRequest) -> Result<Prepared, HypervisorError> {
    let src = pool.connect(&req.from)?;
    let dst = pool.connect(&req.to)?;
    let dom = match src.lookup_domain_by_name(&req.vm) {
        Ok(d) => d,
        Err(e) if is(&e, ErrorNumber::NoDomain) => {
            return Err(match dst.lookup_domain_by_name(&req.vm) {
                Ok(d) if d.is_active().unwrap_or(false) => {
                    HypervisorError::WrongHost { vm: req.vm.clone(), expected: req.from.name.clone(), actual: req.to.name.clone() }
                }
                _ => HypervisorError::UnknownVm(req.vm.clone()),
            });
        }
        Err(e) => return Err(backend(&req.from.name, &e)),
    };
    if !dom.is_active().map_err(|e| backend(&req.from.name, &e))? {
        return Err(HypervisorError::MigrationFailed {
            vm: req.vm.clone(),
            host: req.from.name.clone(),
            why: "the VM is defined there but not running".into(),
        });
    }
    if let Ok(d) = dst.lookup_domain_by_name(&req.vm) {
        if d.is_active().unwrap_or(true) {
            return Err(HypervisorError::Backend {
                host: req.to.name.clone(),
                why: format!("a domain named {:?} already runs there (and on {})", req.vm, req.from.name),
            });
        }
        tracing::warn!(vm = %req.vm, host = %req.to.name, "removing a stopped leftover definition before migrating");
        remove(&d).map_err(|e| backend(&req.to.name, &e))?;
    }
    let info = dom.info().map_err(|e| backend(&req.from.name, &e))?;
    // KiB to bytes; far below 2^53.
    let memory_bytes = info.max_mem as f64 * 1024.0;
    // Room on the destination for the guest's memory (libvirt would start QEMU there and
    // fail only once it runs short).
    let need = info.memory.saturating_mul(1024);
    let free = match raw::memory_available(&dst) {
        Ok(Some(b)) => b,
        Ok(None) | Err(_) => dst.free_memory().map_err(|e| backend(&req.to.name, &e))?,
    };
    if free < need {
        return Err(HypervisorError::NoRoom { host: req.to.name.clone(), vm: req.vm.clone(), need_mib: need >> 20, free_mib: free >> 20 });
    }
    Ok(Prepared { req, dom, memory_bytes })
}

/// libvirt's migration URI for data to `to` (`tcp://addr[:port]`), if the topology names
/// an address.
fn data_uri(to: &HostRef) -> Option<String> {
    let a = to.migration_address.trim();
    if a.is_empty() {
        return None;
    }
    // A bare IPv6 address goes in brackets.
    if a.matches(':').count() > 1 && !a.starts_with('[') {
        return Some(format!("tcp://[{a}]"));
    }
    Some(format!("tcp://{a}"))
}

/// Bytes per second as libvirt's MiB/s (at least 1; `None`: no cap).
#[allow(clippy::cast_possible_truncation)] // rounded up and bounded first
fn mib_per_s(bps: Option<f64>) -> Option<u64> {
    bps.filter(|b| b.is_finite() && *b > 0.0).map(|b| (b / 1048576.0).ceil().clamp(1.0, 1e9) as u64)
}

#[allow(clippy::cast_possible_truncation)] // rounded and bounded first
fn millis(s: f64) -> u64 {
    (s * 1000.0).round().clamp(1.0, 1e9) as u64
}

/// Starts the migration on threads of its own; its progress and end go to `driver`.
pub fn spawn(pool: Arc<Pool>, settings: Settings, p: Prepared, driver: MigrationDriver) -> Result<(), HypervisorError> {
    let host = p.req.from.name.clone();
    std::thread::Builder::new()
        .name(format!("migrate-{}", p.req.vm))
        .spawn(move || run(&pool, &settings, p, driver))
        .map(|_| ())
        .map_err(|e| HypervisorError::Backend { host, why: format!("no thread for the migration: {e}") })
}

fn sample(js: &JobStats, elapsed: Duration) -> Sample {
    let f = |v: Option<u64>| v.unwrap_or(0) as f64;
    let page = js.mem_page_size.filter(|&p| p > 0).unwrap_or(4096) as f64;
    Sample {
        elapsed_s: elapsed.as_secs_f64(),
        pass: u32::try_from(js.mem_iteration.unwrap_or(0)).unwrap_or(u32::MAX).max(1),
        remaining_bytes: f(js.data_remaining.or(js.mem_remaining)),
        transferred_bytes: f(js.data_processed.or(js.mem_processed)),
        bandwidth_bytes_per_s: f(js.mem_bps),
        dirty_bytes_per_s: f(js.mem_dirty_rate) * page,
    }
}

fn run(pool: &Pool, settings: &Settings, p: Prepared, driver: MigrationDriver) {
    let MigrationDriver { progress, mut cancel, done } = driver;
    let req = &p.req;
    let mut flags = sys::VIR_MIGRATE_LIVE
        | sys::VIR_MIGRATE_PEER2PEER
        | sys::VIR_MIGRATE_PERSIST_DEST
        | sys::VIR_MIGRATE_UNDEFINE_SOURCE
        | sys::VIR_MIGRATE_ABORT_ON_ERROR;
    if settings.auto_converge {
        flags |= sys::VIR_MIGRATE_AUTO_CONVERGE;
    }
    if settings.postcopy {
        flags |= sys::VIR_MIGRATE_POSTCOPY;
    }
    if settings.tls {
        flags |= sys::VIR_MIGRATE_TLS;
    }
    let params = MigrateParameters { uri: data_uri(&req.to), bandwidth: mib_per_s(req.max_bytes_per_s), ..Default::default() };
    let dconn = if req.to.peer_uri.is_empty() { req.to.uri.clone() } else { req.to.peer_uri.clone() };
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let dom = p.dom.clone();
    let started = std::thread::Builder::new().name(format!("migrate-call-{}", req.vm)).spawn(move || {
        let _ = tx.send(dom.migrate_to_uri3(Some(&dconn), params, flags).map_err(|e| e.message().to_string()));
    });
    if let Err(e) = started {
        let _ = done.send(Err(HypervisorError::Backend { host: req.from.name.clone(), why: format!("no thread for the migration: {e}") }));
        return;
    }
    // The watcher's own connection, so that its calls never queue behind the migration's.
    let watch: Domain =
        pool.open_fresh(&req.from).ok().and_then(|c: Connect| c.lookup_domain_by_name(&req.vm).ok()).unwrap_or_else(|| p.dom.clone());
    let mut cfg = settings.policy.clone();
    cfg.initial_downtime_s = req.max_downtime.as_secs_f64().max(0.001).min(cfg.max_downtime_s);
    let mut policy = Policy::new(cfg, p.memory_bytes, 0.0, req.link_bytes_per_s);
    let mut last = Sample::default();
    let mut cancelled = false;
    let mut cancel_pending = false;
    let mut aborted: Option<String> = None;
    let mut postcopy = false;
    let mut downtime_set = false;
    let result = loop {
        match rx.recv_timeout(settings.poll.max(Duration::from_millis(10))) {
            Ok(r) => break r,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break Err("the migration call ended without an answer".to_string()),
        }
        // A cancel is carried out once the job runs (an abort before it exists is refused);
        // once in post-copy there is no going back.
        if !cancelled && aborted.is_none() && !postcopy && cancel.try_recv().is_ok() {
            cancelled = true;
            cancel_pending = true;
        }
        let Ok(js) = watch.job_stats(0) else { continue };
        if js.r#type != sys::VIR_DOMAIN_JOB_UNBOUNDED as i32 {
            continue;
        }
        if cancel_pending {
            match raw::abort_job(&watch) {
                Ok(()) => cancel_pending = false,
                Err(e) => tracing::debug!(vm = %req.vm, "cancel: abort not accepted yet: {}", e.message()),
            }
        }
        if !downtime_set {
            downtime_set = true;
            if let Err(e) = watch.migrate_set_max_downtime(millis(policy.downtime_s()), 0) {
                tracing::debug!(vm = %req.vm, "max downtime not set: {}", e.message());
            }
        }
        last = sample(&js, start.elapsed());
        progress.send_replace(MigrationPhase::Precopy {
            pass: last.pass,
            transferred_bytes: last.transferred_bytes,
            remaining_bytes: last.remaining_bytes,
            dirty_bytes_per_s: last.dirty_bytes_per_s,
            bandwidth_bytes_per_s: last.bandwidth_bytes_per_s,
        });
        if cancelled || aborted.is_some() || postcopy {
            continue;
        }
        match policy.observe(&last) {
            Action::Continue => {}
            Action::SetDowntime(d) => {
                tracing::info!(vm = %req.vm, pass = last.pass, "the dirty set stopped shrinking: allowing {:.0} ms of downtime", d * 1e3);
                if let Err(e) = watch.migrate_set_max_downtime(millis(d), 0) {
                    tracing::warn!(vm = %req.vm, "max downtime not raised: {}", e.message());
                }
            }
            Action::Abort(why) if settings.postcopy && why.starts_with("not converging") => {
                tracing::warn!(vm = %req.vm, "{why}: switching to post-copy");
                match raw::start_postcopy(&watch) {
                    Ok(()) => postcopy = true,
                    Err(e) => {
                        tracing::warn!(vm = %req.vm, "post-copy refused ({}); aborting", e.message());
                        let _ = raw::abort_job(&watch);
                        aborted = Some(why);
                    }
                }
            }
            Action::Abort(why) => {
                tracing::warn!(vm = %req.vm, "aborting: {why}");
                if let Err(e) = raw::abort_job(&watch) {
                    tracing::warn!(vm = %req.vm, "abort refused: {}", e.message());
                }
                aborted = Some(why);
            }
        }
    };
    let outcome = match result {
        Ok(()) => Ok(completed(pool, req, &last, start.elapsed())),
        // After the switch to post-copy the guest runs on the destination with part of its
        // memory still on the source: neither side may be destroyed.
        Err(e) if postcopy => Err(HypervisorError::MigrationFailed {
            vm: req.vm.clone(),
            host: req.to.name.clone(),
            why: format!(
                "post-copy failed ({e}); the VM is paused and split between {} and {}: recover it (virsh migrate --postcopy-resume), destroy neither side",
                req.from.name, req.to.name
            ),
        }),
        Err(e) => {
            // Where does the VM run now? A call that failed after the switch-over (a dropped
            // connection at the very end) may still have moved it.
            match settle(pool, &req.vm, &req.from, &req.to) {
                Where::Destination => Ok(completed(pool, req, &last, start.elapsed())),
                Where::Source | Where::Unknown if cancelled => {
                    Err(HypervisorError::Cancelled { vm: req.vm.clone(), host: req.from.name.clone() })
                }
                Where::Source | Where::Unknown => Err(HypervisorError::MigrationFailed {
                    vm: req.vm.clone(),
                    host: req.from.name.clone(),
                    why: aborted.unwrap_or(e),
                }),
            }
        }
    };
    progress.send_replace(match &outcome {
        Ok(s) => MigrationPhase::Completed(*s),
        Err(HypervisorError::Cancelled { .. }) => MigrationPhase::Cancelled,
        Err(e) => MigrationPhase::Failed(e.to_string()),
    });
    let _ = done.send(outcome);
}

/// The statistics of a completed migration: libvirt's, read on the destination (the
/// source's domain is gone), else what the watcher last saw.
fn completed(pool: &Pool, req: &MigrationRequest, last: &Sample, elapsed: Duration) -> MigrationStats {
    let mut s = MigrationStats {
        total_s: elapsed.as_secs_f64(),
        downtime_s: 0.0,
        transferred_bytes: last.transferred_bytes,
        passes: last.pass,
        dirty_bytes_per_s: last.dirty_bytes_per_s,
        bandwidth_bytes_per_s: last.bandwidth_bytes_per_s,
    };
    let js = pool
        .connect(&req.to)
        .ok()
        .and_then(|c| c.lookup_domain_by_name(&req.vm).ok())
        .and_then(|d| d.job_stats(sys::VIR_DOMAIN_JOB_STATS_COMPLETED).ok());
    if let Some(js) = js {
        let f = sample(&js, elapsed);
        if let Some(ms) = js.time_elapsed {
            s.total_s = ms as f64 / 1000.0;
        }
        if let Some(ms) = js.downtime {
            s.downtime_s = ms as f64 / 1000.0;
        }
        if f.transferred_bytes > 0.0 {
            s.transferred_bytes = f.transferred_bytes;
        }
        if js.mem_iteration.is_some() {
            s.passes = f.pass;
        }
        if f.bandwidth_bytes_per_s > 0.0 {
            s.bandwidth_bytes_per_s = f.bandwidth_bytes_per_s;
        }
        if f.dirty_bytes_per_s > 0.0 {
            s.dirty_bytes_per_s = f.dirty_bytes_per_s;
        }
    }
    s
}

enum Where {
    Source,
    Destination,
    Unknown,
}

/// Whether `d` runs as the guest (a domain paused for an incoming or outgoing migration
/// does not: it is the migration's, not the VM's).
pub fn runs_here(d: &Domain) -> bool {
    // `state` reports a failure as an unknown state, which is "not running" here.
    match d.state() {
        Ok((s, _)) if s.is_any(vec![DomainState::Running, DomainState::Blocked]) => true,
        Ok((s, Enum::Known(DomainStateReason::Paused(r)))) if s.is(DomainState::Paused) => {
            !r.is_any(vec![DomainPausedReason::Migration, DomainPausedReason::PostCopy, DomainPausedReason::PostCopyFailed])
        }
        _ => false,
    }
}

/// Undefines `d` with what may hang off it (snapshot and checkpoint metadata), keeping
/// NVRAM files, which storage shared with another host may still use.
fn remove(d: &Domain) -> Result<(), virt::error::Error> {
    d.undefine_flags(
        sys::VIR_DOMAIN_UNDEFINE_KEEP_NVRAM | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | sys::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
    )
}

/// After a failed call: where the VM runs. When on the source, nothing of it is left on the
/// destination; when on the destination (the call failed after the switch-over), no stale
/// definition is left on the source.
fn settle(pool: &Pool, vm: &str, from: &HostRef, to: &HostRef) -> Where {
    let find = |h: &HostRef| -> Option<Option<Domain>> {
        let c = pool.connect(h).ok()?;
        Some(c.lookup_domain_by_name(vm).ok())
    };
    let (src, dst) = (find(from), find(to));
    let on = |d: &Option<Option<Domain>>| d.as_ref().and_then(|d| d.as_ref()).is_some_and(runs_here);
    if on(&dst) {
        if let Some(Some(s)) = &src {
            if !s.is_active().unwrap_or(true) && s.is_persistent().unwrap_or(false) {
                tracing::warn!(vm = %vm, host = %from.name, "removing the source's stale definition");
                let _ = remove(s);
            }
        }
        return Where::Destination;
    }
    if on(&src) {
        if let Some(Some(d)) = &dst {
            tracing::warn!(vm = %vm, host = %to.name, "removing what the failed migration left on the destination");
            if d.is_active().unwrap_or(false) {
                let _ = d.destroy();
            }
            if d.is_persistent().unwrap_or(false) {
                let _ = remove(d);
            }
        }
        return Where::Source;
    }
    Where::Unknown
}

/// Whether `d` has a job running (a migration, for the VMs the controller moves).
fn job_active(d: &Domain) -> bool {
    d.job_stats(0).is_ok_and(|js| js.r#type == sys::VIR_DOMAIN_JOB_UNBOUNDED as i32)
}

/// After a controller restart: a migration of `vm` still running on `from` is aborted (its
/// watcher died with the last run) and waited for; then, as after any failed call, what is
/// left on the host that does not run the VM is removed. The host running the VM, if any.
pub fn resolve(pool: &Pool, vm: &str, from: &HostRef, to: &HostRef) -> Option<String> {
    if let Some(d) = pool.connect(from).ok().and_then(|c| c.lookup_domain_by_name(vm).ok()) {
        if job_active(&d) {
            tracing::warn!(vm, host = %from.name, "a migration the last run started is still going: aborting it");
            if let Err(e) = raw::abort_job(&d) {
                tracing::warn!(vm, "abort refused ({}); waiting for the migration's end", e.message());
            }
            let start = Instant::now();
            while job_active(&d) && start.elapsed() < Duration::from_secs(300) {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    match settle(pool, vm, from, to) {
        Where::Source => Some(from.name.clone()),
        Where::Destination => Some(to.name.clone()),
        Where::Unknown => None,
    }
}

/// Dirty rates measured over one second on the guests `host` runs that no job holds.
pub fn dirty_rates(pool: &Pool, host: &HostRef) -> Result<Vec<(String, f64)>, HypervisorError> {
    let c = pool.connect(host)?;
    let doms = c.list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE).map_err(|e| backend(&host.name, &e))?;
    let mut measuring = Vec::new();
    for d in doms.into_iter().filter(|d| runs_here(d) && !job_active(d)) {
        match raw::start_dirty_rate(&d, 1) {
            Ok(()) => measuring.push(d),
            Err(e) => tracing::debug!(host = %host.name, "dirty rate not measured: {}", e.message()),
        }
    }
    let mut out = Vec::new();
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(1100));
    while !measuring.is_empty() && start.elapsed() < Duration::from_secs(5) {
        measuring.retain(|d| match raw::dirty_rate(d) {
            Ok(Some(bps)) => {
                if let Ok(n) = d.name() {
                    out.push((n, bps));
                }
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(out)
}
