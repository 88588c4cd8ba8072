//! Site-aware collectives in the MPI library's own terms, split the way Open MPI's HAN
//! splits `ompi/mca/coll/han/` (this file: `coll_han_module.c`).
//!
//! Per communicator (an attribute): the epoch agreement of `straddle_shim::regroup`, run on
//! a communicator of the shim's own over the same ranks, and, once the ranks agree on a
//! grouping, a communicator per site plus one of the sites' leaders, built site-locally
//! with MPI_Comm_create_group (`subcomms`). Every blocking collective entry point on an
//! intracommunicator steps the agreement first (`step_collective`); those listed in
//! `collective_names.rs` with `via` then run the algorithms of the per-collective modules,
//! which call PMPI only and work inside each site first, across the WAN once per site.
//! Neighbourhood and w-collectives step the agreement and run flat. The large-count (`_c`)
//! forms run the same algorithms where their counts fit them (`large_count`).
//!
//! Nonblocking and persistent collectives neither step the agreement nor run site-aware:
//! MPI lets ranks order them differently relative to blocking ones (a rank may post an
//! MPI_Iallreduce before a barrier that another rank posts it after), so counting them
//! would move the adoption point to different collectives on different ranks, and an
//! agreement posted on the application's communicator could pair with the application's
//! own nonblocking collective. Blocking collectives are the one order all ranks share.
//!
//! Each algorithm (`sa_<collective>`) returns `None` to run the library's own algorithm
//! instead (decided before any communication, identically on every rank), or `Some(rc)`.

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;
use std::sync::atomic::{
    AtomicI32,
    Ordering::{Acquire, Relaxed, Release},
};

use straddle_shim::collectives::Mode;

use straddle_shim::regroup::{
    agreed, contribution, cross_site_bytes, pays, pipeline_pieces, route, scan_chain_pieces, Agreement, Grouping, Route, SaOp, DIRECT_SITES,
};
use straddle_shim::{state, Shim};

use crate::abi::*;
use crate::c::*;
use crate::common::*;

#[macro_use]
mod macros;
mod buffers;
mod direct;
mod pipeline;
mod subcomms;

mod allgather;
mod allreduce;
mod alltoall;
mod barrier;
mod bcast;
mod gather;
#[cfg(mpi_large_count)]
mod large_count;
mod reduce;
mod reduce_scatter;
mod scan;
mod scatter;

use buffers::*;
use direct::*;
use pipeline::*;
pub(crate) use subcomms::SiteComms;
use subcomms::*;

pub(crate) use allgather::{sa_allgather, sa_allgatherv};
pub(crate) use allreduce::sa_allreduce;
pub(crate) use alltoall::{sa_alltoall, sa_alltoallv};
pub(crate) use barrier::sa_barrier;
pub(crate) use bcast::sa_bcast;
pub(crate) use gather::{sa_gather, sa_gatherv};
#[cfg(mpi_large_count)]
pub(crate) use large_count::*;
pub(crate) use reduce::sa_reduce;
pub(crate) use reduce_scatter::{sa_reduce_scatter, sa_reduce_scatter_block};
pub(crate) use scan::{sa_exscan, sa_scan};
pub(crate) use scatter::{sa_scatter, sa_scatterv};

pmpi!(PMPI_Comm_create_group: fn(Comm, Group, c_int, *mut Comm) -> c_int);
pmpi!(PMPI_Comm_create: fn(Comm, Group, *mut Comm) -> c_int);
pmpi!(PMPI_Group_incl: fn(Group, c_int, *const c_int, *mut Group) -> c_int);
pmpi!(PMPI_Comm_free: fn(*mut Comm) -> c_int);
pmpi!(PMPI_Comm_dup: fn(Comm, *mut Comm) -> c_int);
pmpi!(PMPI_Comm_get_errhandler: fn(Comm, *mut Errhandler) -> c_int);
pmpi!(PMPI_Comm_set_errhandler: fn(Comm, Errhandler) -> c_int);
pmpi!(PMPI_Errhandler_free: fn(*mut Errhandler) -> c_int);
pmpi!(PMPI_Recv: fn(*mut c_void, c_int, Datatype, c_int, c_int, Comm, *mut c_void) -> c_int);
pmpi!(PMPI_Wait: fn(*mut Request, *mut c_void) -> c_int);
pmpi!(PMPI_Type_get_extent: fn(Datatype, *mut Aint, *mut Aint) -> c_int);
pmpi!(PMPI_Type_get_true_extent: fn(Datatype, *mut Aint, *mut Aint) -> c_int);
pmpi!(PMPI_Pack_size: fn(c_int, Datatype, Comm, *mut c_int) -> c_int);
pmpi!(PMPI_Pack: fn(*const c_void, c_int, Datatype, *mut c_void, c_int, *mut c_int, Comm) -> c_int);
pmpi!(PMPI_Unpack: fn(*const c_void, c_int, *mut c_int, *mut c_void, c_int, Datatype, Comm) -> c_int);
pmpi!(PMPI_Op_commutative: fn(MpiOp, *mut c_int) -> c_int);
pmpi!(PMPI_Reduce_local: fn(*const c_void, *mut c_void, c_int, Datatype, MpiOp) -> c_int);
pmpi!(PMPI_Irecv: fn(*mut c_void, c_int, Datatype, c_int, c_int, Comm, *mut Request) -> c_int);
pmpi!(PMPI_Waitall: fn(c_int, *mut Request, *mut c_void) -> c_int);

/// Tags of the shim's own point-to-point messages on its (private) site communicators.
const HANDOVER_TAG: c_int = 0x5d5e;
const SIZES_TAG: c_int = 0x5d5f;
const TOTAL_TAG: c_int = 0x5d60;
/// Tags of MPI_Comm_create_group for the site and the leaders' communicators.
const LOCAL_GROUP_TAG: c_int = 0x5d61;
const LEADERS_GROUP_TAG: c_int = 0x5d62;
const CROSS_GROUP_TAG: c_int = 0x5d64;
/// Tag of the heads' direct messages (on the leaders' or the cross communicator).
const LEADERS_TAG: c_int = 0x5d63;
/// Tag of a pipelined reduction's or scan's pieces (on the cross communicator).
const PIECE_TAG: c_int = 0x5d65;

static REGROUP_KEYVAL: AtomicI32 = AtomicI32::new(KEYVAL_UNSET);

/// Agreements in flight on any communicator, completed at MPI_Finalize.
static IN_FLIGHT: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// The agreement's buffers, boxed so they stay put while the library fills them.
struct Pending {
    req: Request,
    send: [u64; 2],
    recv: Vec<u64>,
}

/// One communicator's regrouping state.
struct Regroup {
    /// The shim's own communicator over the same ranks (same order), for the agreement and
    /// the construction of site communicators: nothing the shim posts there can meet a
    /// collective of the application's.
    own: Comm,
    agreement: Agreement,
    pending: Option<Box<Pending>>,
    current: Option<SiteComms>,
    /// The epoch of the last agreement (`Some(None)`: some rank held no map).
    last_agreed: Option<Option<u64>>,
    /// The last grouping whose communicators could not be built.
    failed: Option<Grouping>,
    size: usize,
    me: usize,
    is_world: bool,
}

/// Completes the agreement in flight, if any.
unsafe fn finish_pending(rg: &mut Regroup) -> Option<Box<Pending>> {
    let mut p = rg.pending.take()?;
    // SAFETY: the request of our own Iallgather; every rank started it.
    unsafe { PMPI_Wait()(&mut p.req, status_ignore()) };
    let key = rg as *mut Regroup as usize;
    IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner()).retain(|&k| k != key);
    Some(p)
}

unsafe extern "C" fn free_regroup(comm: Comm, _: c_int, val: *mut c_void, _: *mut c_void) -> c_int {
    if val.is_null() {
        return 0;
    }
    // SAFETY: the attribute holds a Box<Option<Regroup>> from `regroup_state`.
    let mut b = unsafe { Box::from_raw(val as *mut Option<Regroup>) };
    if let Some(rg) = b.as_mut() {
        // SAFETY: see `finish_pending`; freeing is not allowed for MPI_COMM_WORLD at finalize.
        unsafe {
            finish_pending(rg);
            if !rg.is_world && comm != comm_world() {
                if let Some(sc) = rg.current.as_mut() {
                    free_site_comms(sc);
                }
                PMPI_Comm_free()(&mut rg.own);
            }
        }
    }
    0
}

/// Completes every agreement still in flight (MPI_Finalize is collective, and every rank
/// started the same ones).
pub(crate) unsafe fn finish_agreements() {
    let keys: Vec<usize> = std::mem::take(&mut *IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner()));
    for k in keys {
        // SAFETY: keys are live Regroup states (removed when their communicator goes).
        unsafe { finish_pending(&mut *(k as *mut Regroup)) };
    }
}

pub(crate) fn note(s: &Shim, what: &str) {
    if s.config.verbose {
        let line = format!("straddle[{} rank {}]: {what}\n", s.id.job, s.id.rank);
        // SAFETY: writing a valid buffer to fd 2.
        unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    }
}

/// The regrouping state of `comm` (created on first use; `None` for communicators that
/// never regroup: intercommunicators and single ranks).
unsafe fn regroup_state(s: &Shim, comm: Comm) -> Option<&'static mut Regroup> {
    let mut key = REGROUP_KEYVAL.load(Acquire);
    if key == KEYVAL_UNSET {
        // Once per process, also when threads reach their first collectives at once: a
        // second keyval would hide the state cached under the first, and the communicator
        // would start its agreement over on this rank alone.
        static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _once = CREATING.lock().unwrap_or_else(|p| p.into_inner());
        key = REGROUP_KEYVAL.load(Acquire);
        if key == KEYVAL_UNSET {
            let mut k = 0;
            // SAFETY: creating a keyval with our own callbacks.
            if unsafe { PMPI_Comm_create_keyval()(Some(no_copy_comm), Some(free_regroup), &mut k, null_mut()) } != 0 {
                return None;
            }
            REGROUP_KEYVAL.store(k, Release);
            key = k;
        }
    }
    // SAFETY: the value is a Box<Option<Regroup>> of ours, freed with the communicator;
    // collectives on one communicator never run concurrently, so this rank's collective
    // is its only user.
    unsafe {
        let raw = match cached_on_comm(comm, key)? {
            Some(val) => val,
            None => {
                let built = Box::into_raw(Box::new(new_regroup(s, comm))) as *mut c_void;
                cache_on_comm(comm, key, built, |r| drop(Box::from_raw(r as *mut Option<Regroup>)))?
            }
        };
        (*(raw as *mut Option<Regroup>)).as_mut()
    }
}

unsafe fn new_regroup(s: &Shim, comm: Comm) -> Option<Regroup> {
    let (mut inter, mut size, mut me) = (0, 0, 0);
    // SAFETY: queries on a valid communicator.
    unsafe {
        PMPI_Comm_test_inter()(comm, &mut inter);
        PMPI_Comm_size()(comm, &mut size);
        PMPI_Comm_rank()(comm, &mut me);
    }
    if inter != 0 || size < 2 {
        return None;
    }
    // SAFETY: collective over `comm`, reached by all its ranks at the same collective.
    let Some(own) = (unsafe { own_comm(comm) }) else {
        note(s, &format!("no communicator of the shim's own beside one of {size} ranks: its collectives stay flat"));
        return None;
    };
    Some(Regroup {
        own,
        agreement: Agreement::new(s.config.agree_every),
        pending: None,
        current: None,
        last_agreed: None,
        failed: None,
        size: size as usize,
        me: me as usize,
        is_world: comm == comm_world(),
    })
}

/// A communicator of the shim's own over `comm`'s ranks in `comm`'s order (MPI_Comm_create
/// with the whole group: no attribute of the application's is copied to it, and the
/// library agrees on its context id over all ranks, so all get one or none).
unsafe fn own_comm(comm: Comm) -> Option<Comm> {
    // SAFETY: PMPI calls on the application's communicator; its error handler is restored.
    unsafe {
        let mut eh: Errhandler = std::mem::zeroed();
        PMPI_Comm_get_errhandler()(comm, &mut eh);
        PMPI_Comm_set_errhandler()(comm, errors_return());
        let mut g: Group = std::mem::zeroed();
        let mut own: Comm = std::mem::zeroed();
        let rc = if PMPI_Comm_group()(comm, &mut g) == 0 {
            let rc = PMPI_Comm_create()(comm, g, &mut own);
            PMPI_Group_free()(&mut g);
            rc
        } else {
            -1
        };
        PMPI_Comm_set_errhandler()(comm, eh);
        PMPI_Errhandler_free()(&mut eh);
        if rc != 0 {
            return None;
        }
        PMPI_Comm_set_errhandler()(own, errors_return());
        Some(own)
    }
}

/// Sets up MPI_COMM_WORLD's regrouping state inside MPI_Init (collective anyway), so that
/// its first collective does not pay for the shim's own communicator.
pub(crate) unsafe fn prepare_world() {
    if let Some(s) = state::shim().filter(|s| s.config.regroup) {
        // SAFETY: MPI is initialised; every rank is in MPI_Init.
        unsafe { regroup_state(s, comm_world()) };
    }
}

/// Every blocking collective entry point on a communicator calls this first (outermost
/// call only): it advances the agreement and says whether this collective runs
/// site-aware. Other modes run flat and leave the agreement alone (see the module doc).
pub(crate) unsafe fn step_collective(comm: Comm, mode: Mode) -> Option<&'static SiteComms> {
    if mode != Mode::Blocking {
        return None;
    }
    let s = active()?;
    if !s.config.regroup {
        return None;
    }
    // SAFETY: the application's communicator; PMPI calls only.
    unsafe {
        let rg = regroup_state(s, comm)?;
        let step = rg.agreement.step();
        if step.complete {
            if let Some(p) = finish_pending(rg) {
                adopt(s, rg, agreed(&p.recv));
            }
        }
        if step.start {
            let mut p = Box::new(Pending { req: std::mem::zeroed(), send: contribution(s.held_site()), recv: vec![0; 2 * rg.size] });
            let rc =
                PMPI_Iallgather()(p.send.as_ptr().cast(), 16, byte_type(), p.recv.as_mut_ptr().cast(), 16, byte_type(), rg.own, &mut p.req);
            if rc == 0 {
                rg.pending = Some(p);
                rg.agreement.started();
                IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner()).push(rg as *mut Regroup as usize);
            }
        }
        rg.current.as_ref()
    }
}

/// Switches `comm` to the agreed grouping (every rank runs this at the same collective,
/// with the same `next`).
unsafe fn adopt(s: &Shim, rg: &mut Regroup, next: Option<Grouping>) {
    let agreed_epoch = next.as_ref().map(|g| g.epoch);
    if let Some(e) = agreed_epoch {
        rg.agreement.adopt(e);
    }
    let next = next.filter(|g| route(g, false, true) == Route::SiteAware);
    let unchanged_flat = rg.current.is_none() && next.is_none() && rg.last_agreed == Some(agreed_epoch);
    rg.last_agreed = Some(agreed_epoch);
    if unchanged_flat {
        return;
    }
    // A grouping whose communicators could not be built is not retried until the map
    // changes (every rank keeps the same record, so all skip alike).
    if let (None, Some(f), Some(n)) = (&rg.current, &rg.failed, &next) {
        if f.same_as(n) {
            return;
        }
    }
    if let (Some(cur), Some(n)) = (&rg.current, &next) {
        if cur.g.same_as(n) {
            return;
        }
    }
    // SAFETY: collective over the communicator's ranks, all of which are here.
    unsafe {
        if let Some(mut old) = rg.current.take() {
            free_site_comms(&mut old);
        }
        let Some(g) = next else {
            let why = match agreed_epoch {
                Some(e) => format!("epoch {e}: collectives flat (one site, or one rank per site)"),
                None => "collectives flat (not every rank holds a site map)".to_string(),
            };
            note(s, &why);
            return;
        };
        let epoch = g.epoch;
        let sites = g.groups.len();
        rg.current = build_site_comms(rg.own, rg.me, g.clone());
        rg.failed = rg.current.is_none().then_some(g);
        if rg.current.is_some() {
            note(s, &format!("epoch {epoch}: site-aware collectives over {sites} sites on a communicator of {} ranks", rg.size));
        } else {
            note(s, &format!("epoch {epoch}: could not build site communicators; collectives stay flat"));
        }
    }
}
