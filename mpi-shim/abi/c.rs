//! The C entry points, compiled once per MPI ABI.
//!
//! Every wrapper forwards to PMPI first and counts only on success and only in the
//! outermost MPI call of the thread.

use std::ffi::{c_int, c_void};

use straddle_shim::collectives::{Mode, Op};

use crate::abi::*;
use crate::common::*;
use crate::sites::*;

/// The function a wrapper forwards to: the PMPI entry point, or a `via` function that
/// decides (site-aware collectives) and calls PMPI itself.
macro_rules! callee {
    ($p:ident) => {
        $p()
    };
    ($p:ident, $v:ident) => {
        $v
    };
}

/// The doc of every exported C entry point, with its `# Safety` section: the contract is
/// the MPI standard's.
macro_rules! c_safety_doc {
    ($name:ident) => {
        concat!(
            "`",
            stringify!($name),
            "`, counted.\n\n# Safety\n\nCalled by an MPI program as the MPI standard specifies for `",
            stringify!($name),
            "`: handles valid, pointers valid for the counts and datatypes given."
        )
    };
}

/// Defines `MPI_X` forwarding to `PMPI_X`. `let` bindings before `=>` are read before the
/// call (handles the call overwrites); the block after it counts.
macro_rules! wrap {
    ($name:ident => $pname:ident $(via $via:ident)? ( $($a:ident : $t:ty),* $(,)? ) $(let $v:ident = $e:expr;)* => $count:block) => {
        pmpi!($pname: fn($($t),*) -> c_int);
        #[doc = c_safety_doc!($name)]
        #[no_mangle]
        #[allow(unused_variables)]
        pub unsafe extern "C" fn $name($($a: $t),*) -> c_int {
            let guard = $crate::common::Guard::enter();
            // SAFETY: handles the call may overwrite, read before it from the caller's
            // pointers, which MPI requires valid.
            $(let $v = unsafe { $e };)*
            // SAFETY: the application's arguments go to the library unchanged (or to a
            // site-aware algorithm that calls the library with them).
            let rc = unsafe { callee!($pname $(, $via)?)($($a),*) };
            if rc == 0 && guard.outer() {
                // SAFETY: the call succeeded, so its handles and arrays are valid.
                #[allow(unused_unsafe)]
                unsafe { $count }
            }
            rc
        }
    };
}

// --- initialisation and teardown ------------------------------------------------------

wrap!(MPI_Init => PMPI_Init(argc: *mut c_int, argv: *mut *mut *mut std::ffi::c_char) => { agree_job_at_init() });
wrap!(MPI_Init_thread => PMPI_Init_thread(argc: *mut c_int, argv: *mut *mut *mut std::ffi::c_char, required: c_int, provided: *mut c_int)
    => { agree_job_at_init() });
wrap!(MPI_Type_free => PMPI_Type_free(dt: *mut Datatype) let h = *dt; => { evict_type(h) });
wrap!(MPI_Request_free => PMPI_Request_free(req: *mut Request) let h = *req; => { forget_request(h) });

// --- point to point ---------------------------------------------------------------------

macro_rules! sends {
    ($cnt:ty; $($name:ident => $pname:ident),* $(,)?) => {$(
        wrap!($name => $pname(buf: *const c_void, count: $cnt, dt: Datatype, dest: c_int, tag: c_int, comm: Comm)
            => { count_send(comm, dest, || bytes(count, dt)) });
    )*};
}
macro_rules! isends {
    ($cnt:ty; $($name:ident => $pname:ident),* $(,)?) => {$(
        wrap!($name => $pname(buf: *const c_void, count: $cnt, dt: Datatype, dest: c_int, tag: c_int, comm: Comm, req: *mut Request)
            => { count_send(comm, dest, || bytes(count, dt)) });
    )*};
}
macro_rules! send_inits {
    ($cnt:ty; $($name:ident => $pname:ident),* $(,)?) => {$(
        wrap!($name => $pname(buf: *const c_void, count: $cnt, dt: Datatype, dest: c_int, tag: c_int, comm: Comm, req: *mut Request)
            => { plan_send(*req, comm, dest, bytes(count, dt)) });
    )*};
}
macro_rules! sendrecvs {
    ($cnt:ty; $name:ident => $pname:ident, $rname:ident => $rpname:ident) => {
        wrap!($name => $pname(sbuf: *const c_void, scount: $cnt, stype: Datatype, dest: c_int, stag: c_int,
                              rbuf: *mut c_void, rcount: $cnt, rtype: Datatype, source: c_int, rtag: c_int,
                              comm: Comm, status: *mut c_void)
            => { count_send(comm, dest, || bytes(scount, stype)) });
        wrap!($rname => $rpname(buf: *mut c_void, count: $cnt, dt: Datatype, dest: c_int, stag: c_int,
                                source: c_int, rtag: c_int, comm: Comm, status: *mut c_void)
            => { count_send(comm, dest, || bytes(count, dt)) });
    };
}

sends!(c_int; MPI_Send => PMPI_Send, MPI_Bsend => PMPI_Bsend, MPI_Ssend => PMPI_Ssend, MPI_Rsend => PMPI_Rsend);
isends!(c_int; MPI_Isend => PMPI_Isend, MPI_Ibsend => PMPI_Ibsend, MPI_Issend => PMPI_Issend, MPI_Irsend => PMPI_Irsend);
send_inits!(c_int; MPI_Send_init => PMPI_Send_init, MPI_Bsend_init => PMPI_Bsend_init,
    MPI_Ssend_init => PMPI_Ssend_init, MPI_Rsend_init => PMPI_Rsend_init);
sendrecvs!(c_int; MPI_Sendrecv => PMPI_Sendrecv, MPI_Sendrecv_replace => PMPI_Sendrecv_replace);

#[cfg(mpi_large_count)]
mod large_count_p2p {
    use super::*;
    sends!(Count; MPI_Send_c => PMPI_Send_c, MPI_Bsend_c => PMPI_Bsend_c, MPI_Ssend_c => PMPI_Ssend_c, MPI_Rsend_c => PMPI_Rsend_c);
    isends!(Count; MPI_Isend_c => PMPI_Isend_c, MPI_Ibsend_c => PMPI_Ibsend_c, MPI_Issend_c => PMPI_Issend_c, MPI_Irsend_c => PMPI_Irsend_c);
    send_inits!(Count; MPI_Send_init_c => PMPI_Send_init_c, MPI_Bsend_init_c => PMPI_Bsend_init_c,
        MPI_Ssend_init_c => PMPI_Ssend_init_c, MPI_Rsend_init_c => PMPI_Rsend_init_c);
    sendrecvs!(Count; MPI_Sendrecv_c => PMPI_Sendrecv_c, MPI_Sendrecv_replace_c => PMPI_Sendrecv_replace_c);
}

wrap!(MPI_Start => PMPI_Start(req: *mut Request) let h = *req; => { count_start(h) });
wrap!(MPI_Startall => PMPI_Startall(n: c_int, reqs: *mut Request) => {
    for i in 0..n.max(0) as usize {
        count_start(*reqs.add(i));
    }
});

// --- one-sided --------------------------------------------------------------------------

macro_rules! rma {
    ($cnt:ty; $put:ident => $pput:ident, $get:ident => $pget:ident, $acc:ident => $pacc:ident,
     $rput:ident => $prput:ident, $rget:ident => $prget:ident, $racc:ident => $pracc:ident,
     $gacc:ident => $pgacc:ident, $rgacc:ident => $prgacc:ident) => {
        wrap!($put => $pput(o: *const c_void, oc: $cnt, ot: Datatype, target: c_int, disp: Aint, tc: $cnt, tt: Datatype, win: Win)
            => { count_rma(win, target, || bytes(oc, ot), || 0) });
        wrap!($rput => $prput(o: *const c_void, oc: $cnt, ot: Datatype, target: c_int, disp: Aint, tc: $cnt, tt: Datatype, win: Win, req: *mut Request)
            => { count_rma(win, target, || bytes(oc, ot), || 0) });
        wrap!($get => $pget(o: *mut c_void, oc: $cnt, ot: Datatype, target: c_int, disp: Aint, tc: $cnt, tt: Datatype, win: Win)
            => { count_rma(win, target, || 0, || bytes(oc, ot)) });
        wrap!($rget => $prget(o: *mut c_void, oc: $cnt, ot: Datatype, target: c_int, disp: Aint, tc: $cnt, tt: Datatype, win: Win, req: *mut Request)
            => { count_rma(win, target, || 0, || bytes(oc, ot)) });
        wrap!($acc => $pacc(o: *const c_void, oc: $cnt, ot: Datatype, target: c_int, disp: Aint, tc: $cnt, tt: Datatype, op: MpiOp, win: Win)
            => { count_rma(win, target, || bytes(oc, ot), || 0) });
        wrap!($racc => $pracc(o: *const c_void, oc: $cnt, ot: Datatype, target: c_int, disp: Aint, tc: $cnt, tt: Datatype, op: MpiOp, win: Win, req: *mut Request)
            => { count_rma(win, target, || bytes(oc, ot), || 0) });
        wrap!($gacc => $pgacc(o: *const c_void, oc: $cnt, ot: Datatype, r: *mut c_void, rc_: $cnt, rt: Datatype,
                              target: c_int, disp: Aint, tc: $cnt, tt: Datatype, op: MpiOp, win: Win)
            => { count_rma(win, target, || bytes(oc, ot), || bytes(rc_, rt)) });
        wrap!($rgacc => $prgacc(o: *const c_void, oc: $cnt, ot: Datatype, r: *mut c_void, rc_: $cnt, rt: Datatype,
                                target: c_int, disp: Aint, tc: $cnt, tt: Datatype, op: MpiOp, win: Win, req: *mut Request)
            => { count_rma(win, target, || bytes(oc, ot), || bytes(rc_, rt)) });
    };
}

rma!(c_int; MPI_Put => PMPI_Put, MPI_Get => PMPI_Get, MPI_Accumulate => PMPI_Accumulate,
    MPI_Rput => PMPI_Rput, MPI_Rget => PMPI_Rget, MPI_Raccumulate => PMPI_Raccumulate,
    MPI_Get_accumulate => PMPI_Get_accumulate, MPI_Rget_accumulate => PMPI_Rget_accumulate);

#[cfg(mpi_large_count)]
mod large_count_rma {
    use super::*;
    rma!(Count; MPI_Put_c => PMPI_Put_c, MPI_Get_c => PMPI_Get_c, MPI_Accumulate_c => PMPI_Accumulate_c,
        MPI_Rput_c => PMPI_Rput_c, MPI_Rget_c => PMPI_Rget_c, MPI_Raccumulate_c => PMPI_Raccumulate_c,
        MPI_Get_accumulate_c => PMPI_Get_accumulate_c, MPI_Rget_accumulate_c => PMPI_Rget_accumulate_c);
}

wrap!(MPI_Fetch_and_op => PMPI_Fetch_and_op(o: *const c_void, r: *mut c_void, dt: Datatype, target: c_int, disp: Aint, op: MpiOp, win: Win)
    => { count_rma(win, target, || type_size(dt), || type_size(dt)) });
wrap!(MPI_Compare_and_swap => PMPI_Compare_and_swap(o: *const c_void, c: *const c_void, r: *mut c_void, dt: Datatype, target: c_int, disp: Aint, win: Win)
    => { count_rma(win, target, || 2 * type_size(dt), || type_size(dt)) });

// --- collectives --------------------------------------------------------------------------
//
// `bytes` per call is this rank's payload (see CollectiveTraffic in the proto): the message
// of a broadcast or reduction, the block it contributes to a gather, the block it receives
// from a scatter, everything it sends in an all-to-all.

/// One collective in up to three modes: blocking, nonblocking (+ request) and persistent
/// (+ info, request; counted at each MPI_Start). Names come as
/// `[MPI_X => PMPI_X, MPI_IX => PMPI_IX, MPI_X_init => PMPI_X_init]`, the last two optional.
macro_rules! coll {
    ($op:expr, $comm:ident, root: $root:expr, $args:tt, |$cc:ident| $bytes:expr;
     [$bname:ident => $bpname:ident $(via $via:ident)? $(, $iname:ident => $ipname:ident $(, $pname_:ident => $ppname:ident)?)?]) => {
        coll_mode!($bname => $bpname $(via $via)? $args + (); $op, $comm, Mode::Blocking, $root, None, |$cc| $bytes);
        $(coll_mode!($iname => $ipname $args + (req: *mut Request); $op, $comm, Mode::Nonblocking, $root, None, |$cc| $bytes);
        $(coll_mode!($pname_ => $ppname $args + (info: Info, req: *mut Request); $op, $comm, Mode::Persistent, $root, Some(*req), |$cc| $bytes);)?)?
    };
}

/// One mode of a collective: the common arguments plus the mode's own. A blocking one
/// steps the communicator's site-map agreement first, and with `via` may then run
/// site-aware (and is recorded as such).
macro_rules! coll_mode {
    ($name:ident => $pname:ident $(via $via:ident)? ($($a:ident : $t:ty),*) + ($($x:ident : $xt:ty),*);
     $op:expr, $comm:ident, $mode:expr, $root:expr, $req:expr, |$cc:ident| $bytes:expr) => {
        pmpi!($pname: fn($($t,)* $($xt),*) -> c_int);
        #[doc = c_safety_doc!($name)]
        #[no_mangle]
        #[allow(unused_variables)]
        pub unsafe extern "C" fn $name($($a: $t,)* $($x: $xt),*) -> c_int {
            let guard = $crate::common::Guard::enter();
            // SAFETY: the application's communicator.
            let sites = if guard.outer() { unsafe { $crate::sites::step_collective($comm, $mode) } } else { None };
            let (rc, mode) = via_or_flat!(sites, $mode, $pname $(, $via)?; $($a,)* $($x),*);
            if rc == 0 && guard.outer() {
                // SAFETY: the call succeeded, so its handles and arrays are valid.
                #[allow(unused_unsafe)]
                unsafe { $crate::common::count_coll($comm, $op, mode, $root, $req, |$cc: &$crate::common::CollComm| $bytes) }
            }
            rc
        }
    };
}

/// Runs `via` when the communicator is site-aware and `via` takes the call, else PMPI.
macro_rules! via_or_flat {
    ($sites:ident, $mode:expr, $p:ident; $($a:ident),* $(,)?) => {{
        let _ = $sites;
        // SAFETY: the application's arguments go to the library unchanged.
        (unsafe { $p()($($a),*) }, $mode)
    }};
    ($sites:ident, $mode:expr, $p:ident, $v:ident; $($a:ident),* $(,)?) => {
        // SAFETY: the application's arguments, which MPI requires valid, go to a site-aware
        // algorithm that calls the library with them.
        match $sites.and_then(|sc| unsafe { $v(sc, $($a),*) }) {
            Some(rc) => (rc, ::straddle_shim::collectives::Mode::SiteAware),
            // SAFETY: the application's arguments go to the library unchanged.
            None => (unsafe { $p()($($a),*) }, $mode),
        }
    };
}

pub(crate) fn in_place(p: *const c_void) -> bool {
    p == in_place_ptr()
}

/// All collectives for one count width: `$c` is the count type, `$d` the displacement
/// type of v-collectives; each op gets its bracketed name list (see `coll!`).
macro_rules! collectives {
    ($c:ty, $d:ty;
     $(barrier: $barrier:tt;)? bcast: $bcast:tt; reduce: $reduce:tt; allreduce: $allreduce:tt;
     gather: $gather:tt; gatherv: $gatherv:tt; scatter: $scatter:tt; scatterv: $scatterv:tt;
     allgather: $allgather:tt; allgatherv: $allgatherv:tt; alltoall: $alltoall:tt;
     alltoallv: $alltoallv:tt; alltoallw: $alltoallw:tt; reduce_scatter: $rs:tt;
     reduce_scatter_block: $rsb:tt; scan: $scan:tt; exscan: $exscan:tt;
     neighbor_allgather: $nag:tt; neighbor_allgatherv: $nagv:tt; neighbor_alltoall: $na2a:tt;
     neighbor_alltoallv: $na2av:tt; neighbor_alltoallw: $na2aw:tt $(;)?
    ) => {
        $(coll!(Op::Barrier, comm, root: None, (comm: Comm), |cc| 0; $barrier);)?
        coll!(Op::Bcast, comm, root: Some(root), (buf: *mut c_void, count: $c, dt: Datatype, root: c_int, comm: Comm),
            |cc| bytes(count, dt); $bcast);
        coll!(Op::Reduce, comm, root: Some(root), (s: *const c_void, r: *mut c_void, count: $c, dt: Datatype, op: MpiOp, root: c_int, comm: Comm),
            |cc| bytes(count, dt); $reduce);
        coll!(Op::Allreduce, comm, root: None, (s: *const c_void, r: *mut c_void, count: $c, dt: Datatype, op: MpiOp, comm: Comm),
            |cc| bytes(count, dt); $allreduce);
        coll!(Op::Gather, comm, root: Some(root), (s: *const c_void, sc: $c, st: Datatype, r: *mut c_void, rc_: $c, rt: Datatype, root: c_int, comm: Comm),
            |cc| if in_place(s) { bytes(rc_, rt) } else { bytes(sc, st) }; $gather);
        coll!(Op::Gatherv, comm, root: Some(root), (s: *const c_void, sc: $c, st: Datatype, r: *mut c_void, rcs: *const $c, displs: *const $d, rt: Datatype, root: c_int, comm: Comm),
            |cc| if in_place(s) { 0 } else { bytes(sc, st) }; $gatherv);
        coll!(Op::Scatter, comm, root: Some(root), (s: *const c_void, sc: $c, st: Datatype, r: *mut c_void, rc_: $c, rt: Datatype, root: c_int, comm: Comm),
            |cc| if in_place(r) { bytes(sc, st) } else { bytes(rc_, rt) }; $scatter);
        coll!(Op::Scatterv, comm, root: Some(root), (s: *const c_void, scs: *const $c, displs: *const $d, st: Datatype, r: *mut c_void, rc_: $c, rt: Datatype, root: c_int, comm: Comm),
            |cc| if in_place(r) { 0 } else { bytes(rc_, rt) }; $scatterv);
        coll!(Op::Allgather, comm, root: None, (s: *const c_void, sc: $c, st: Datatype, r: *mut c_void, rc_: $c, rt: Datatype, comm: Comm),
            |cc| if in_place(s) { bytes(rc_, rt) } else { bytes(sc, st) }; $allgather);
        coll!(Op::Allgatherv, comm, root: None, (s: *const c_void, sc: $c, st: Datatype, r: *mut c_void, rcs: *const $c, displs: *const $d, rt: Datatype, comm: Comm),
            |cc| if in_place(s) { sum_counts(rcs, cc.size) / (cc.size.max(1) as u64) * type_size(rt) } else { bytes(sc, st) };
            $allgatherv);
        coll!(Op::Alltoall, comm, root: None, (s: *const c_void, sc: $c, st: Datatype, r: *mut c_void, rc_: $c, rt: Datatype, comm: Comm),
            |cc| if in_place(s) { bytes(rc_, rt) * cc.size as u64 } else { bytes(sc, st) * cc.size as u64 }; $alltoall);
        coll!(Op::Alltoallv, comm, root: None, (s: *const c_void, scs: *const $c, sd: *const $d, st: Datatype, r: *mut c_void, rcs: *const $c, rd: *const $d, rt: Datatype, comm: Comm),
            |cc| if in_place(s) { sum_counts(rcs, cc.size) * type_size(rt) } else { sum_counts(scs, cc.size) * type_size(st) };
            $alltoallv);
        coll!(Op::Alltoallw, comm, root: None, (s: *const c_void, scs: *const $c, sd: *const $d, sts: *const Datatype, r: *mut c_void, rcs: *const $c, rd: *const $d, rts: *const Datatype, comm: Comm),
            |cc| if in_place(s) { weighted(rcs, rts, cc.size) } else { weighted(scs, sts, cc.size) }; $alltoallw);
        coll!(Op::ReduceScatter, comm, root: None, (s: *const c_void, r: *mut c_void, rcs: *const $c, dt: Datatype, op: MpiOp, comm: Comm),
            |cc| sum_counts(rcs, cc.size) * type_size(dt); $rs);
        coll!(Op::ReduceScatterBlock, comm, root: None, (s: *const c_void, r: *mut c_void, rc_: $c, dt: Datatype, op: MpiOp, comm: Comm),
            |cc| bytes(rc_, dt) * cc.size as u64; $rsb);
        coll!(Op::Scan, comm, root: None, (s: *const c_void, r: *mut c_void, count: $c, dt: Datatype, op: MpiOp, comm: Comm),
            |cc| bytes(count, dt); $scan);
        coll!(Op::Exscan, comm, root: None, (s: *const c_void, r: *mut c_void, count: $c, dt: Datatype, op: MpiOp, comm: Comm),
            |cc| bytes(count, dt); $exscan);
        coll!(Op::NeighborAllgather, comm, root: None, (s: *const c_void, sc: $c, st: Datatype, r: *mut c_void, rc_: $c, rt: Datatype, comm: Comm),
            |cc| bytes(sc, st) * out_degree(comm) as u64; $nag);
        coll!(Op::NeighborAllgatherv, comm, root: None, (s: *const c_void, sc: $c, st: Datatype, r: *mut c_void, rcs: *const $c, displs: *const $d, rt: Datatype, comm: Comm),
            |cc| bytes(sc, st) * out_degree(comm) as u64; $nagv);
        coll!(Op::NeighborAlltoall, comm, root: None, (s: *const c_void, sc: $c, st: Datatype, r: *mut c_void, rc_: $c, rt: Datatype, comm: Comm),
            |cc| bytes(sc, st) * out_degree(comm) as u64; $na2a);
        coll!(Op::NeighborAlltoallv, comm, root: None, (s: *const c_void, scs: *const $c, sd: *const $d, st: Datatype, r: *mut c_void, rcs: *const $c, rd: *const $d, rt: Datatype, comm: Comm),
            |cc| sum_counts(scs, out_degree(comm)) * type_size(st); $na2av);
        coll!(Op::NeighborAlltoallw, comm, root: None, (s: *const c_void, scs: *const $c, sd: *const Aint, sts: *const Datatype, r: *mut c_void, rcs: *const $c, rd: *const Aint, rts: *const Datatype, comm: Comm),
            |cc| weighted(scs, sts, out_degree(comm)); $na2aw);
    };
}

/// Sum of counts[i] × size(types[i]) (the w-collectives).
unsafe fn weighted<T: AsCount>(counts: *const T, types: *const Datatype, n: usize) -> u64 {
    if counts.is_null() || types.is_null() {
        return 0;
    }
    // SAFETY: MPI requires one count and one type per peer.
    unsafe { (0..n).map(|i| bytes(*counts.add(i), *types.add(i))).sum() }
}

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/collective_names.rs"));
