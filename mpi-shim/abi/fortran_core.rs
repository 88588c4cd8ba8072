//! The machinery of Fortran entry points: Open MPI's Fortran bindings call PMPI directly
//! and bypass the C wrappers, and so do a few of MPICH's `use mpi_f08` routines (Start,
//! Startall, Request_free, Barrier, ...).
//!
//! Every argument of these routines is passed by reference, so each wrapper takes
//! pointers, forwards them untouched to the library's Fortran PMPI routine (`pmpi_x_`, or
//! for `use mpi_f08` the library's own `mpi_x_f08_`), and counts from the values behind
//! them, Fortran handles translated with the `*_f2c` functions of the ABI's `fortran`
//! module. `ierror` may be absent (null) in f08.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};

use crate::abi::*;
use crate::common::*;
use crate::fortran::{comm_f2c, request_f2c, type_f2c};

pub(crate) type P = *mut c_void;

#[inline(always)]
pub(crate) unsafe fn fi(p: P) -> c_int {
    // SAFETY: Fortran passes INTEGER arguments by reference.
    unsafe { *(p as *const Fint) }
}
#[inline(always)]
pub(crate) unsafe fn fcomm(p: P) -> Comm {
    // SAFETY: as `fi`.
    unsafe { comm_f2c(fi(p)) }
}
#[inline(always)]
pub(crate) unsafe fn ftype(p: P) -> Datatype {
    // SAFETY: as `fi`.
    unsafe { type_f2c(fi(p)) }
}
#[inline(always)]
pub(crate) unsafe fn freq(p: P) -> Request {
    // SAFETY: as `fi`.
    unsafe { request_f2c(fi(p)) }
}

/// The library routine `sym`, resolved once into `slot`.
#[inline(always)]
pub(crate) fn resolved(slot: &AtomicPtr<c_void>, sym: &'static str) -> *mut c_void {
    let mut p = slot.load(Relaxed);
    if p.is_null() {
        p = resolve(sym);
        slot.store(p, Relaxed);
    }
    p
}

/// The library's Fortran routine `mpi_<name>_f08_` (for `f08`) or `pmpi_<name>_`, as a
/// function of these by-reference arguments, resolved once.
macro_rules! fortran_routine {
    ($name:ident, $f08:expr, ($($a:ident),*; $ierr:ident)) => {{
        static PM: ::std::sync::atomic::AtomicPtr<::std::ffi::c_void> = ::std::sync::atomic::AtomicPtr::new(::std::ptr::null_mut());
        static F8: ::std::sync::atomic::AtomicPtr<::std::ffi::c_void> = ::std::sync::atomic::AtomicPtr::new(::std::ptr::null_mut());
        let p = if $f08 {
            $crate::fortran_core::resolved(&F8, concat!("mpi_", stringify!($name), "_f08_\0"))
        } else {
            $crate::fortran_core::resolved(&PM, concat!("pmpi_", stringify!($name), "_\0"))
        };
        // SAFETY: `p` is the library's Fortran routine of this name (resolve aborts when it
        // has none), which takes exactly these by-reference arguments.
        unsafe { ::std::mem::transmute::<*mut ::std::ffi::c_void, unsafe extern "C" fn($($a: P,)* $ierr: P)>(p) }
    }};
}

/// Defines a Fortran entry point: `all` exports the five spellings of `mpi_<name>`
/// (`mpi_x`, `mpi_x_`, `mpi_x__`, `MPI_X` forwarding to `pmpi_x_`; `mpi_x_f08_` forwarding
/// to the library's own), `f08` only the last.
macro_rules! fwrap {
    ($which:ident: $name:ident ( $($a:ident),* ; $ierr:ident ) $(let $v:ident = $e:expr;)* => $count:block) => { pastey::paste! {
        /// The body of every spelling of this entry point.
        ///
        /// # Safety
        ///
        /// As the entry points': the arguments of the MPI routine, by reference.
        // The MPI standard fixes the routine's arguments.
        #[allow(unused_variables, dead_code, clippy::too_many_arguments)]
        unsafe fn [<fbody_ $name>](f08: bool, $($a: P,)* $ierr: P) {
            let f = fortran_routine!($name, f08, ($($a),*; $ierr));
            let guard = $crate::common::Guard::enter();
            // SAFETY: handles the call may overwrite, read before it from the caller's
            // by-reference arguments.
            $(let $v = unsafe { $e };)*
            // SAFETY: the caller's arguments go to the library's routine unchanged.
            unsafe { f($($a,)* $ierr) };
            // SAFETY: IERROR, when present, is an INTEGER passed by reference.
            let ok = $ierr.is_null() || unsafe { *($ierr as *const Fint) } == 0;
            if ok && guard.outer() {
                // SAFETY: the call succeeded, so the arguments it counts from are valid.
                #[allow(unused_unsafe)]
                unsafe { $count }
            }
        }
        fwrap!(@export $which $name ($($a),*; $ierr));
    }};
    (@export all $name:ident ($($a:ident),*; $ierr:ident)) => { pastey::paste! {
        fwrap!(@spelling [<mpi_ $name>], [<MPI_ $name:upper>], [<fbody_ $name>], false, ($($a),*; $ierr));
        fwrap!(@spelling [<mpi_ $name _>], [<MPI_ $name:upper>], [<fbody_ $name>], false, ($($a),*; $ierr));
        fwrap!(@spelling [<mpi_ $name __>], [<MPI_ $name:upper>], [<fbody_ $name>], false, ($($a),*; $ierr));
        fwrap!(@spelling [<MPI_ $name:upper>], [<MPI_ $name:upper>], [<fbody_ $name>], false, ($($a),*; $ierr));
        fwrap!(@export f08 $name ($($a),*; $ierr));
    }};
    (@export f08 $name:ident ($($a:ident),*; $ierr:ident)) => { pastey::paste! {
        fwrap!(@spelling [<mpi_ $name _f08_>], [<MPI_ $name:upper>], [<fbody_ $name>], true, ($($a),*; $ierr));
    }};
    // One exported spelling `$sym` of the routine `$mpi`, calling `$body`.
    (@spelling $sym:ident, $mpi:ident, $body:ident, $f08:expr, ($($a:ident),*; $ierr:ident)) => {
        #[doc = concat!("`", stringify!($mpi), "` from Fortran, counted.")]
        ///
        /// # Safety
        ///
        #[doc = concat!(
            "Called by an MPI program as the MPI standard specifies for `", stringify!($mpi),
            "`: every argument by reference, buffers valid for the counts and datatypes given."
        )]
        #[no_mangle]
        // The MPI standard fixes the routine's arguments.
        #[allow(clippy::too_many_arguments)]
        pub unsafe extern "C" fn $sym($($a: P,)* $ierr: P) {
            // SAFETY: the caller's contract, passed on.
            unsafe { $body($f08, $($a,)* $ierr) }
        }
    };
}

/// Defines a Fortran collective entry point: like `fwrap!`, and it steps the
/// communicator's site-map agreement first; with `via`, a site-aware communicator runs the
/// C algorithm on the translated arguments instead of the library's routine.
macro_rules! fwrap_coll {
    ($which:ident: $name:ident ( $($a:ident $(: $k:ident)?),* ; $ierr:ident ) $(via $via:ident)?; $comm:ident, $op:expr, $mode:expr, $root:expr, $req:expr,
     |$cc:ident| $bytes:expr) => { pastey::paste! {
        /// The body of every spelling of this entry point.
        ///
        /// # Safety
        ///
        /// As the entry points': the arguments of the MPI routine, by reference.
        // The MPI standard fixes the routine's arguments.
        #[allow(unused_variables, dead_code, clippy::too_many_arguments)]
        unsafe fn [<fbody_ $name>](f08: bool, $($a: P,)* $ierr: P) {
            let f = fortran_routine!($name, f08, ($($a),*; $ierr));
            let guard = $crate::common::Guard::enter();
            // SAFETY: Fortran passes the communicator by reference.
            let sites = if guard.outer() { unsafe { $crate::sites::step_collective(fcomm($comm), $mode) } } else { None };
            let mut mode = $mode;
            let done: Option<::std::ffi::c_int> = fvia!(sites; $($via)?; $($a $(: $k)?),*);
            let ok = match done {
                Some(rc) => {
                    mode = ::straddle_shim::collectives::Mode::SiteAware;
                    if !$ierr.is_null() {
                        // SAFETY: IERROR is an INTEGER passed by reference.
                        unsafe { *($ierr as *mut Fint) = rc };
                    }
                    rc == 0
                }
                None => {
                    // SAFETY: the caller's arguments go to the library's routine unchanged.
                    unsafe { f($($a,)* $ierr) };
                    // SAFETY: IERROR, when present, is an INTEGER passed by reference.
                    $ierr.is_null() || unsafe { *($ierr as *const Fint) } == 0
                }
            };
            if ok && guard.outer() {
                // SAFETY: the call succeeded, so the arguments it counts from are valid.
                #[allow(unused_unsafe)]
                unsafe { $crate::common::count_coll(fcomm($comm), $op, mode, $root, $req, |$cc: &$crate::common::CollComm| $bytes) }
            }
        }
        fwrap!(@export $which $name ($($a),*; $ierr));
    }};
}

/// The site-aware path of a Fortran collective, when it has one: the C algorithm `via`,
/// called with every argument translated as its kind says (`farg!`).
macro_rules! fvia {
    ($sites:ident; ; $($a:ident $(: $k:ident)?),*) => {{
        let _ = $sites;
        None
    }};
    ($sites:ident; $v:ident; $($a:ident: $k:ident),*) => {
        // SAFETY: Fortran passes every argument by reference and the handles translate with
        // the library's f2c, so the C algorithm gets the call as a C caller would make it.
        $sites.and_then(|sc| unsafe { $v(sc, $(farg!($k, $a)),*) })
    };
}

/// A by-reference Fortran argument as the C algorithms take it, by kind: `buf` a buffer
/// (MPI_IN_PLACE and MPI_BOTTOM translated), `int` an INTEGER, `ints` an INTEGER array,
/// `dt`, `op` and `comm` handles.
macro_rules! farg {
    (buf, $a:ident) => {
        fbuf($a)
    };
    (int, $a:ident) => {
        fi($a)
    };
    (ints, $a:ident) => {
        farr($a)
    };
    (dt, $a:ident) => {
        ftype($a)
    };
    (op, $a:ident) => {
        fop($a)
    };
    (comm, $a:ident) => {
        fcomm($a)
    };
}

/// Counts the starts of a Fortran array of `n` persistent requests.
pub(crate) unsafe fn count_startall_f(n: P, reqs: P) {
    let r = reqs as *const Fint;
    // SAFETY: MPI requires `reqs` to hold `n` requests.
    unsafe {
        for i in 0..fi(n).max(0) as usize {
            count_start(request_f2c(*r.add(i)));
        }
    }
}
