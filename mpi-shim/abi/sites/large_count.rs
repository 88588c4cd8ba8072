//! The MPI-4 large-count (`_c`) forms of the regrouped collectives (MPICH's mpi4py calls
//! them for everything but MPI_Barrier): counts as MPI_Count, displacements as MPI_Aint,
//! run by the int-count algorithms when the call fits them.
//!
//! Whether it fits is decided from what every rank computes alike, so that all run
//! site-aware or all run flat: the bytes of the message (a broadcast, reduction or scan),
//! of every rank's block times the ranks (gathers, scatters, all-to-alls), or of all
//! blocks (Allgatherv, Reduce_scatter, whose counts every rank passes). Between 1 byte and
//! c_int::MAX bytes, every count a rank passes is at most that many elements and fits. The
//! v-forms whose counts only one rank knows (Gatherv and Scatterv at the root, Alltoallv on
//! each rank) convert this rank's counts and run flat when one does not fit: a block of more
//! than c_int::MAX elements, which the int-count algorithms, whose byte lengths are ints,
//! could not carry on any rank either.

use super::allgather::allgather_any;
use super::alltoall::alltoall_any;
use super::gather::gather_any;
use super::reduce_scatter::reduce_scatter_any;
use super::scatter::scatter_any;
use super::*;

/// Whether a call of `total` bytes (the same on every rank) fits the int-count algorithms.
fn fits(total: u64) -> Option<()> {
    (total > 0 && total <= c_int::MAX as u64).then_some(())
}

/// A count this rank passed, as the int-count algorithms take it.
fn narrow(c: Count) -> Option<c_int> {
    c_int::try_from(c).ok()
}

/// A count the call ignores on this rank (MPI_IN_PLACE, or significant only at the root).
const IGNORED: c_int = 0;

pub(crate) unsafe fn sa_bcast_c(sc: &SiteComms, buf: *mut c_void, count: Count, dt: Datatype, root: c_int, comm: Comm) -> Option<c_int> {
    // SAFETY: the application's arguments, forwarded.
    unsafe {
        fits(bytes(count, dt))?;
        sa_bcast(sc, buf, narrow(count)?, dt, root, comm)
    }
}

/// The reductions and scans: one datatype and count on every rank.
macro_rules! reductions_c {
    ($($name:ident => $int:ident ($($root:ident)?)),* $(,)?) => {$(
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn $name(
            sc: &SiteComms,
            s: *const c_void,
            r: *mut c_void,
            count: Count,
            dt: Datatype,
            op: MpiOp,
            $($root: c_int,)?
            comm: Comm,
        ) -> Option<c_int> {
            // SAFETY: the application's arguments, forwarded.
            unsafe {
                fits(bytes(count, dt))?;
                $int(sc, s, r, narrow(count)?, dt, op, $($root,)? comm)
            }
        }
    )*};
}

reductions_c!(sa_reduce_c => sa_reduce(root), sa_allreduce_c => sa_allreduce(), sa_scan_c => sa_scan(), sa_exscan_c => sa_exscan());

/// Gather, Scatter, Allgather, Alltoall: every rank's block is `block` bytes (what the
/// root receives from or sends to each, what each sends); the send (`s`) or receive count
/// ignored where MPI ignores it.
#[allow(clippy::too_many_arguments)]
unsafe fn blocks_c(sc: &SiteComms, block: u64, scnt: Count, send_used: bool, rcnt: Count, recv_used: bool) -> Option<(c_int, c_int)> {
    fits(block.saturating_mul(sc.n() as u64))?;
    let s = if send_used { narrow(scnt)? } else { IGNORED };
    let r = if recv_used { narrow(rcnt)? } else { IGNORED };
    Some((s, r))
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_gather_c(
    sc: &SiteComms,
    s: *const c_void,
    scnt: Count,
    st: Datatype,
    r: *mut c_void,
    rcnt: Count,
    rt: Datatype,
    root: c_int,
    comm: Comm,
) -> Option<c_int> {
    let at_root = sc.root(root)? == sc.me;
    // SAFETY: the application's arguments, forwarded.
    unsafe {
        let block = if at_root { bytes(rcnt, rt) } else { bytes(scnt, st) };
        let (scnt, rcnt) = blocks_c(sc, block, scnt, !(at_root && in_place(s)), rcnt, at_root)?;
        sa_gather(sc, s, scnt, st, r, rcnt, rt, root, comm)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_scatter_c(
    sc: &SiteComms,
    s: *const c_void,
    scnt: Count,
    st: Datatype,
    r: *mut c_void,
    rcnt: Count,
    rt: Datatype,
    root: c_int,
    comm: Comm,
) -> Option<c_int> {
    let at_root = sc.root(root)? == sc.me;
    // SAFETY: the application's arguments, forwarded.
    unsafe {
        let block = if at_root { bytes(scnt, st) } else { bytes(rcnt, rt) };
        let (scnt, rcnt) = blocks_c(sc, block, scnt, at_root, rcnt, !(at_root && in_place(r)))?;
        sa_scatter(sc, s, scnt, st, r, rcnt, rt, root, comm)
    }
}

/// Allgather and Alltoall: every rank receives `rcnt` elements of `rt` per rank.
macro_rules! all_blocks_c {
    ($($name:ident => $int:ident),* $(,)?) => {$(
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn $name(
            sc: &SiteComms,
            s: *const c_void,
            scnt: Count,
            st: Datatype,
            r: *mut c_void,
            rcnt: Count,
            rt: Datatype,
            comm: Comm,
        ) -> Option<c_int> {
            // SAFETY: the application's arguments, forwarded.
            unsafe {
                let (scnt, rcnt) = blocks_c(sc, bytes(rcnt, rt), scnt, !in_place(s), rcnt, true)?;
                $int(sc, s, scnt, st, r, rcnt, rt, comm)
            }
        }
    )*};
}

all_blocks_c!(sa_allgather_c => sa_allgather, sa_alltoall_c => sa_alltoall);

pub(crate) unsafe fn sa_reduce_scatter_block_c(
    sc: &SiteComms,
    s: *const c_void,
    r: *mut c_void,
    rcnt: Count,
    dt: Datatype,
    op: MpiOp,
    comm: Comm,
) -> Option<c_int> {
    // SAFETY: the application's arguments, forwarded.
    unsafe {
        fits(bytes(rcnt, dt).saturating_mul(sc.n() as u64))?;
        sa_reduce_scatter_block(sc, s, r, narrow(rcnt)?, dt, op, comm)
    }
}

/// `n` counts of an array every rank passes alike, and their bytes in `dt`.
unsafe fn counts_of(counts: *const Count, n: usize, dt: Datatype) -> (Vec<Count>, u64) {
    // SAFETY: MPI requires one count per rank.
    let v: Vec<Count> = (0..n).map(|m| unsafe { *counts.add(m) }).collect();
    // SAFETY: forwarded.
    let total = v.iter().fold(0u64, |t, &c| t.saturating_add(unsafe { bytes(c, dt) }));
    (v, total)
}

pub(crate) unsafe fn sa_reduce_scatter_c(
    sc: &SiteComms,
    s: *const c_void,
    r: *mut c_void,
    rcs: *const Count,
    dt: Datatype,
    op: MpiOp,
    _comm: Comm,
) -> Option<c_int> {
    // SAFETY: every rank passes one count per rank.
    let (counts, total) = unsafe { counts_of(rcs, sc.n(), dt) };
    fits(total)?;
    let counts: Vec<usize> = counts.into_iter().map(|c| usize::try_from(c).unwrap_or(0)).collect();
    // SAFETY: forwarded.
    unsafe { reduce_scatter_any(sc, s, r, &counts, dt, op) }
}

/// A displacement as the algorithms' element offsets take it (negative ones wrap and come
/// back negative in `at`, as the int-count forms' do).
fn displacement(d: Aint) -> usize {
    d as usize
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_allgatherv_c(
    sc: &SiteComms,
    s: *const c_void,
    scnt: Count,
    st: Datatype,
    r: *mut c_void,
    rcs: *const Count,
    displs: *const Aint,
    rt: Datatype,
    comm: Comm,
) -> Option<c_int> {
    // SAFETY: every rank passes one count and displacement per rank.
    unsafe {
        let (counts, total) = counts_of(rcs, sc.n(), rt);
        fits(total)?;
        let counts = ints(&counts)?;
        let scnt = if in_place(s) { IGNORED } else { narrow(scnt)? };
        allgather_any(sc, s, scnt, st, r, rt, comm, &|m| (counts[m], displacement(*displs.add(m))))
    }
}

/// This rank's counts of a v-form as ints, with displacements, where the call uses them.
unsafe fn local_arrays(used: bool, counts: *const Count, displs: *const Aint, n: usize) -> Option<Vec<(c_int, usize)>> {
    if !used {
        return Some(vec![(IGNORED, 0); n]);
    }
    // SAFETY: MPI requires one count and displacement per rank where they are used.
    (0..n).map(|m| unsafe { Some((narrow(*counts.add(m))?, displacement(*displs.add(m)))) }).collect()
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_gatherv_c(
    sc: &SiteComms,
    s: *const c_void,
    scnt: Count,
    st: Datatype,
    r: *mut c_void,
    rcs: *const Count,
    displs: *const Aint,
    rt: Datatype,
    root: c_int,
    comm: Comm,
) -> Option<c_int> {
    if !sc.always {
        return None;
    }
    let root_ = sc.root(root)?;
    let at_root = root_ == sc.me;
    // SAFETY: the application's arguments, forwarded.
    unsafe {
        let recv = local_arrays(at_root, rcs, displs, sc.n())?;
        let scnt = if at_root && in_place(s) { IGNORED } else { narrow(scnt)? };
        gather_any(sc, s, scnt, st, r, rt, root_, comm, &|m| recv[m], None)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_scatterv_c(
    sc: &SiteComms,
    s: *const c_void,
    scs: *const Count,
    displs: *const Aint,
    st: Datatype,
    r: *mut c_void,
    rcnt: Count,
    rt: Datatype,
    root: c_int,
    comm: Comm,
) -> Option<c_int> {
    if !sc.always {
        return None;
    }
    let root_ = sc.root(root)?;
    let at_root = root_ == sc.me;
    // SAFETY: the application's arguments, forwarded.
    unsafe {
        let send = local_arrays(at_root, scs, displs, sc.n())?;
        let rcnt = if at_root && in_place(r) { IGNORED } else { narrow(rcnt)? };
        scatter_any(sc, s, st, r, rcnt, rt, root_, comm, &|m| send[m], None)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_alltoallv_c(
    sc: &SiteComms,
    s: *const c_void,
    scs: *const Count,
    sd: *const Aint,
    st: Datatype,
    r: *mut c_void,
    rcs: *const Count,
    rd: *const Aint,
    rt: Datatype,
    comm: Comm,
) -> Option<c_int> {
    if !sc.always {
        return None;
    }
    // SAFETY: every rank passes one count and displacement per rank (send ones ignored
    // when in place).
    unsafe {
        let send = local_arrays(!in_place(s), scs, sd, sc.n())?;
        let recv = local_arrays(true, rcs, rd, sc.n())?;
        alltoall_any(sc, s, st, r, rt, comm, &|d| send[d], &|src| recv[src], false)
    }
}
