//! The process-wide shim: created once MPI is initialised in this process, never before
//! (launchers, proxies and shells that inherit `LD_PRELOAD` stay inert), and switched off
//! in forked children.

use std::sync::atomic::{
    AtomicPtr, AtomicU64, AtomicU8,
    Ordering::{AcqRel, Acquire, Release},
};
use std::sync::Mutex;

pub use straddle_proto::MpiImpl;
use straddle_proto::SiteMap;

use crate::collectives::CollectiveTable;
use crate::comms::CommRegistry;
use crate::config::Config;
use crate::counters::PeerCounters;
use crate::persistent::PersistentTable;
use crate::reporter::Reporter;

const UNINIT: u8 = 0;
const STARTING: u8 = 1;
const ACTIVE: u8 = 2;
const OFF: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);
static SHIM: AtomicPtr<Shim> = AtomicPtr::new(std::ptr::null_mut());

/// Who this process is, learned from MPI and the environment at start.
#[derive(Debug, Clone)]
pub struct Identity {
    pub job: String,
    pub rank: u32,
    pub world_size: u32,
    pub node: String,
    pub mpi_impl: MpiImpl,
    /// MPI_THREAD_MULTIPLE: several threads may count at once.
    pub thread_multiple: bool,
}

pub struct Shim {
    pub id: Identity,
    pub config: Config,
    pub peers: PeerCounters,
    pub collectives: CollectiveTable,
    pub comms: CommRegistry,
    pub persistent: PersistentTable,
    /// The newest site map the controller pushed for this job.
    pub site_map: Mutex<Option<SiteMap>>,
    /// Cross-site bytes this rank sent in site-aware collectives (see
    /// `regroup::cross_site_bytes`).
    pub regrouped_bytes: AtomicU64,
    /// Collective calls that ran site-aware.
    pub site_aware_calls: AtomicU64,
    reporter: Option<Reporter>,
}

/// The running shim, if MPI is initialised in this process and counting is on.
#[inline(always)]
pub fn shim() -> Option<&'static Shim> {
    let p = SHIM.load(Acquire);
    // SAFETY: SHIM only ever holds null or a pointer leaked from a Box in `install`, which
    // is never freed.
    unsafe { p.as_ref() }
}

/// True until some caller has begun starting the shim (or it was switched off).
#[inline(always)]
pub fn may_start() -> bool {
    STATE.load(Acquire) == UNINIT
}

/// Claims the right to start the shim; exactly one caller gets `true`.
pub fn begin_start() -> bool {
    STATE.compare_exchange(UNINIT, STARTING, AcqRel, Acquire).is_ok()
}

/// Gives up starting (MPI not initialised yet, or already finalised): a later call may
/// try again.
pub fn abandon_start() {
    let _ = STATE.compare_exchange(STARTING, UNINIT, AcqRel, Acquire);
}

/// Switches the shim off for good in this process.
pub fn disable() {
    STATE.store(OFF, Release);
    SHIM.store(std::ptr::null_mut(), Release);
}

extern "C" fn in_forked_child() {
    // A forked child is not the MPI rank: it has no reporter thread and must count nothing.
    disable();
}

extern "C" fn at_exit() {
    flush();
}

/// Makes the shim live. Called once, after `begin_start`, with MPI initialised.
pub fn install(id: Identity, config: Config) -> &'static Shim {
    let world = id.world_size as usize;
    let concurrent = id.thread_multiple;
    let disabled = config.disabled;
    let mut shim = Box::new(Shim {
        id,
        config,
        peers: PeerCounters::new(world, concurrent),
        collectives: CollectiveTable::new(),
        comms: CommRegistry::default(),
        persistent: PersistentTable::new(),
        site_map: Mutex::new(None),
        regrouped_bytes: AtomicU64::new(0),
        site_aware_calls: AtomicU64::new(0),
        reporter: None,
    });
    if disabled {
        STATE.store(OFF, Release);
        return Box::leak(shim);
    }
    if shim.config.controller.is_some() {
        shim.reporter = Some(Reporter::new());
    }
    let shim: &'static Shim = Box::leak(shim);
    if let Some(r) = &shim.reporter {
        r.spawn(shim);
    }
    // SAFETY: registering plain extern "C" functions with no captured state.
    unsafe {
        libc::pthread_atfork(None, None, Some(in_forked_child));
        libc::atexit(at_exit);
    }
    SHIM.store(shim as *const Shim as *mut Shim, Release);
    STATE.store(ACTIVE, Release);
    shim
}

/// Ships everything counted so far, waiting at most the configured flush timeout. Safe to
/// call more than once (`MPI_Finalize`, then exit); only the first waits.
pub fn flush() {
    if let Some(s) = shim() {
        if let Some(r) = &s.reporter {
            r.flush(s.config.flush_timeout);
        }
    }
}

impl Shim {
    /// The newest site map this rank holds, as (epoch, key of its own site): the
    /// controller's, else the static map of the environment (epoch `STRADDLE_SITE_EPOCH`).
    pub fn held_site(&self) -> Option<(u64, u64)> {
        let rank = self.id.rank as usize;
        if let Some(m) = self.site_map.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let name = m.rank_site.get(rank).and_then(|&s| m.sites.get(s as usize));
            if let Some(name) = name {
                return Some((m.epoch, crate::regroup::site_key(name)));
            }
        }
        let site = *self.config.site_map.as_ref()?.get(rank)?;
        Some((self.config.site_epoch, crate::regroup::site_key(&format!("site {site}"))))
    }

    pub(crate) fn reporter(&self) -> Option<&Reporter> {
        self.reporter.as_ref()
    }
}
