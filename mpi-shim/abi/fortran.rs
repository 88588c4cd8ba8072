//! Open MPI's Fortran entry points: all of them, in every spelling (see `fortran_core`).
//! The Fortran MPI_IN_PLACE sentinel is recognised by address.

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use straddle_shim::collectives::{Mode, Op};

use crate::abi::*;
use crate::common::*;
use crate::fortran_core::*;
use crate::sites::*;

pmpi!(PMPI_Comm_f2c: fn(Fint) -> Comm);
pmpi!(PMPI_Type_f2c: fn(Fint) -> Datatype);
pmpi!(PMPI_Request_f2c: fn(Fint) -> Request);
pmpi!(PMPI_Win_f2c: fn(Fint) -> Win);

#[inline(always)]
pub(crate) unsafe fn comm_f2c(h: Fint) -> Comm {
    // SAFETY: f2c accepts any value (invalid ones map to a null handle).
    unsafe { PMPI_Comm_f2c()(h) }
}
#[inline(always)]
pub(crate) unsafe fn type_f2c(h: Fint) -> Datatype {
    // SAFETY: as `comm_f2c`.
    unsafe { PMPI_Type_f2c()(h) }
}
#[inline(always)]
pub(crate) unsafe fn request_f2c(h: Fint) -> Request {
    // SAFETY: as `comm_f2c`.
    unsafe { PMPI_Request_f2c()(h) }
}

#[inline(always)]
unsafe fn fwin(p: P) -> Win {
    // SAFETY: as `fi`.
    unsafe { PMPI_Win_f2c()(fi(p)) }
}
#[inline(always)]
unsafe fn fbytes(count: P, dt: P) -> u64 {
    // SAFETY: as `fi`.
    unsafe { bytes(fi(count), ftype(dt)) }
}
#[inline(always)]
fn f_in_place(buf: P) -> bool {
    let s = fortran_in_place();
    !s.is_null() && buf == s
}
/// Sum of counts[i] × size(types[i]) with Fortran type handles.
unsafe fn fweighted(counts: P, types: P, n: usize) -> u64 {
    let (c, t) = (counts as *const Fint, types as *const Fint);
    // SAFETY: MPI requires one count and one type per peer.
    unsafe { (0..n).map(|i| bytes(*c.add(i), type_f2c(*t.add(i)))).sum() }
}
unsafe fn fsum(counts: P, n: usize) -> u64 {
    // SAFETY: as `sum_counts`.
    unsafe { sum_counts(counts as *const Fint, n) }
}

// --- point to point ---------------------------------------------------------------------

macro_rules! fsends {
    ($($name:ident),*) => {$(
        fwrap!(all: $name(buf, count, dt, dest, tag, comm; ierr) => { count_send(fcomm(comm), fi(dest), || fbytes(count, dt)) });
    )*};
}
macro_rules! fisends {
    ($($name:ident),*) => {$(
        fwrap!(all: $name(buf, count, dt, dest, tag, comm, req; ierr) => { count_send(fcomm(comm), fi(dest), || fbytes(count, dt)) });
    )*};
}
macro_rules! fsend_inits {
    ($($name:ident),*) => {$(
        fwrap!(all: $name(buf, count, dt, dest, tag, comm, req; ierr) => { plan_send(freq(req), fcomm(comm), fi(dest), fbytes(count, dt)) });
    )*};
}
fsends!(send, bsend, ssend, rsend);
fisends!(isend, ibsend, issend, irsend);
fsend_inits!(send_init, bsend_init, ssend_init, rsend_init);
fwrap!(all: sendrecv(sbuf, scount, stype, dest, stag, rbuf, rcount, rtype, source, rtag, comm, status; ierr)
    => { count_send(fcomm(comm), fi(dest), || fbytes(scount, stype)) });
fwrap!(all: sendrecv_replace(buf, count, dt, dest, stag, source, rtag, comm, status; ierr)
    => { count_send(fcomm(comm), fi(dest), || fbytes(count, dt)) });
fwrap!(all: start(req; ierr) => { count_start(freq(req)) });
fwrap!(all: startall(n, reqs; ierr) => { count_startall_f(n, reqs) });
fwrap!(all: request_free(req; ierr) let h = freq(req); => { forget_request(h) });

// --- one-sided --------------------------------------------------------------------------

fwrap!(all: put(o, oc, ot, target, disp, tc, tt, win; ierr) => { count_rma(fwin(win), fi(target), || fbytes(oc, ot), || 0) });
fwrap!(all: rput(o, oc, ot, target, disp, tc, tt, win, req; ierr) => { count_rma(fwin(win), fi(target), || fbytes(oc, ot), || 0) });
fwrap!(all: get(o, oc, ot, target, disp, tc, tt, win; ierr) => { count_rma(fwin(win), fi(target), || 0, || fbytes(oc, ot)) });
fwrap!(all: rget(o, oc, ot, target, disp, tc, tt, win, req; ierr) => { count_rma(fwin(win), fi(target), || 0, || fbytes(oc, ot)) });
fwrap!(all: accumulate(o, oc, ot, target, disp, tc, tt, op, win; ierr) => { count_rma(fwin(win), fi(target), || fbytes(oc, ot), || 0) });
fwrap!(all: raccumulate(o, oc, ot, target, disp, tc, tt, op, win, req; ierr) => { count_rma(fwin(win), fi(target), || fbytes(oc, ot), || 0) });
fwrap!(all: get_accumulate(o, oc, ot, r, rc_, rt, target, disp, tc, tt, op, win; ierr)
    => { count_rma(fwin(win), fi(target), || fbytes(oc, ot), || fbytes(rc_, rt)) });
fwrap!(all: rget_accumulate(o, oc, ot, r, rc_, rt, target, disp, tc, tt, op, win, req; ierr)
    => { count_rma(fwin(win), fi(target), || fbytes(oc, ot), || fbytes(rc_, rt)) });
fwrap!(all: fetch_and_op(o, r, dt, target, disp, op, win; ierr)
    => { count_rma(fwin(win), fi(target), || type_size(ftype(dt)), || type_size(ftype(dt))) });
fwrap!(all: compare_and_swap(o, c, r, dt, target, disp, win; ierr)
    => { count_rma(fwin(win), fi(target), || 2 * type_size(ftype(dt)), || type_size(ftype(dt))) });

// --- collectives (payload as in c.rs) --------------------------------------------------------

/// Blocking and nonblocking forms of one Fortran collective; the blocking one runs
/// site-aware through `via` when the communicator is.
macro_rules! fcoll {
    ($name:ident, $iname:ident, $op:expr, |$comm:ident, $cc:ident| root: $root:expr, $bytes:expr; ($($a:ident $(: $k:ident)?),*) $(via $via:ident)?) => {
        fwrap_coll!(all: $name($($a $(: $k)?),*; ierr) $(via $via)?; $comm, $op, Mode::Blocking, $root, None, |$cc| $bytes);
        fwrap_coll!(all: $iname($($a,)* req; ierr); $comm, $op, Mode::Nonblocking, $root, None, |$cc| $bytes);
    };
}

pmpi!(PMPI_Op_f2c: fn(Fint) -> MpiOp);

/// A Fortran buffer argument as C sees it: MPI_IN_PLACE and MPI_BOTTOM translated.
#[inline(always)]
fn fbuf(p: P) -> *mut c_void {
    if f_in_place(p) {
        in_place_ptr() as *mut c_void
    } else if !fortran_bottom().is_null() && p == fortran_bottom() {
        null_mut()
    } else {
        p
    }
}
#[inline(always)]
unsafe fn fop(p: P) -> MpiOp {
    // SAFETY: as `fi`.
    unsafe { PMPI_Op_f2c()(fi(p)) }
}
#[inline(always)]
fn farr(p: P) -> *const c_int {
    p as *const c_int
}

fcoll!(barrier, ibarrier, Op::Barrier, |comm, cc| root: None, 0; (comm: comm) via sa_barrier);
fcoll!(bcast, ibcast, Op::Bcast, |comm, cc| root: Some(fi(root)), fbytes(count, dt); (buf: buf, count: int, dt: dt, root: int, comm: comm) via sa_bcast);
fcoll!(reduce, ireduce, Op::Reduce, |comm, cc| root: Some(fi(root)), fbytes(count, dt); (s: buf, r: buf, count: int, dt: dt, op: op, root: int, comm: comm) via sa_reduce);
fcoll!(allreduce, iallreduce, Op::Allreduce, |comm, cc| root: None, fbytes(count, dt); (s: buf, r: buf, count: int, dt: dt, op: op, comm: comm) via sa_allreduce);
fcoll!(gather, igather, Op::Gather, |comm, cc| root: Some(fi(root)),
    if f_in_place(s) { fbytes(rc_, rt) } else { fbytes(sc, st) }; (s: buf, sc: int, st: dt, r: buf, rc_: int, rt: dt, root: int, comm: comm) via sa_gather);
fcoll!(gatherv, igatherv, Op::Gatherv, |comm, cc| root: Some(fi(root)),
    if f_in_place(s) { 0 } else { fbytes(sc, st) }; (s: buf, sc: int, st: dt, r: buf, rcs: ints, displs: ints, rt: dt, root: int, comm: comm) via sa_gatherv);
fcoll!(scatter, iscatter, Op::Scatter, |comm, cc| root: Some(fi(root)),
    if f_in_place(r) { fbytes(sc, st) } else { fbytes(rc_, rt) }; (s: buf, sc: int, st: dt, r: buf, rc_: int, rt: dt, root: int, comm: comm) via sa_scatter);
fcoll!(scatterv, iscatterv, Op::Scatterv, |comm, cc| root: Some(fi(root)),
    if f_in_place(r) { 0 } else { fbytes(rc_, rt) }; (s: buf, scs: ints, displs: ints, st: dt, r: buf, rc_: int, rt: dt, root: int, comm: comm) via sa_scatterv);
fcoll!(allgather, iallgather, Op::Allgather, |comm, cc| root: None,
    if f_in_place(s) { fbytes(rc_, rt) } else { fbytes(sc, st) }; (s: buf, sc: int, st: dt, r: buf, rc_: int, rt: dt, comm: comm) via sa_allgather);
fcoll!(allgatherv, iallgatherv, Op::Allgatherv, |comm, cc| root: None,
    if f_in_place(s) { fsum(rcs, cc.size) / (cc.size.max(1) as u64) * type_size(ftype(rt)) } else { fbytes(sc, st) };
    (s: buf, sc: int, st: dt, r: buf, rcs: ints, displs: ints, rt: dt, comm: comm) via sa_allgatherv);
fcoll!(alltoall, ialltoall, Op::Alltoall, |comm, cc| root: None,
    if f_in_place(s) { fbytes(rc_, rt) * cc.size as u64 } else { fbytes(sc, st) * cc.size as u64 }; (s: buf, sc: int, st: dt, r: buf, rc_: int, rt: dt, comm: comm) via sa_alltoall);
fcoll!(alltoallv, ialltoallv, Op::Alltoallv, |comm, cc| root: None,
    if f_in_place(s) { fsum(rcs, cc.size) * type_size(ftype(rt)) } else { fsum(scs, cc.size) * type_size(ftype(st)) };
    (s: buf, scs: ints, sd: ints, st: dt, r: buf, rcs: ints, rd: ints, rt: dt, comm: comm) via sa_alltoallv);
fcoll!(alltoallw, ialltoallw, Op::Alltoallw, |comm, cc| root: None,
    if f_in_place(s) { fweighted(rcs, rts, cc.size) } else { fweighted(scs, sts, cc.size) };
    (s, scs, sd, sts, r, rcs, rd, rts, comm));
fcoll!(reduce_scatter, ireduce_scatter, Op::ReduceScatter, |comm, cc| root: None,
    fsum(rcs, cc.size) * type_size(ftype(dt)); (s: buf, r: buf, rcs: ints, dt: dt, op: op, comm: comm) via sa_reduce_scatter);
fcoll!(reduce_scatter_block, ireduce_scatter_block, Op::ReduceScatterBlock, |comm, cc| root: None,
    fbytes(rc_, dt) * cc.size as u64; (s: buf, r: buf, rc_: int, dt: dt, op: op, comm: comm) via sa_reduce_scatter_block);
fcoll!(scan, iscan, Op::Scan, |comm, cc| root: None, fbytes(count, dt); (s: buf, r: buf, count: int, dt: dt, op: op, comm: comm) via sa_scan);
fcoll!(exscan, iexscan, Op::Exscan, |comm, cc| root: None, fbytes(count, dt); (s: buf, r: buf, count: int, dt: dt, op: op, comm: comm) via sa_exscan);
fcoll!(neighbor_allgather, ineighbor_allgather, Op::NeighborAllgather, |comm, cc| root: None,
    fbytes(sc, st) * out_degree(fcomm(comm)) as u64; (s, sc, st, r, rc_, rt, comm));
fcoll!(neighbor_allgatherv, ineighbor_allgatherv, Op::NeighborAllgatherv, |comm, cc| root: None,
    fbytes(sc, st) * out_degree(fcomm(comm)) as u64; (s, sc, st, r, rcs, displs, rt, comm));
fcoll!(neighbor_alltoall, ineighbor_alltoall, Op::NeighborAlltoall, |comm, cc| root: None,
    fbytes(sc, st) * out_degree(fcomm(comm)) as u64; (s, sc, st, r, rc_, rt, comm));
fcoll!(neighbor_alltoallv, ineighbor_alltoallv, Op::NeighborAlltoallv, |comm, cc| root: None,
    fsum(scs, out_degree(fcomm(comm))) * type_size(ftype(st)); (s, scs, sd, st, r, rcs, rd, rt, comm));
fcoll!(neighbor_alltoallw, ineighbor_alltoallw, Op::NeighborAlltoallw, |comm, cc| root: None,
    fweighted(scs, sts, out_degree(fcomm(comm))); (s, scs, sd, sts, r, rcs, rd, rts, comm));
