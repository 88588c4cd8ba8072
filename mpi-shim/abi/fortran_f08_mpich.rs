//! MPICH's Fortran entry points: only the `use mpi_f08` routines that call PMPI directly
//! instead of the C entry points (found with `nm -D libmpichfort.so | grep ' U PMPI_'`
//! against what the shim wraps), and only their f08 spelling, so no call is seen twice.

use straddle_shim::collectives::{Mode, Op};

use crate::abi::*;
use crate::common::*;
use crate::fortran_core::*;
use crate::sites::*;

// MPICH's Fortran and C handles are the same integers (its MPI_X_f2c are casts).
#[inline(always)]
pub(crate) fn comm_f2c(h: Fint) -> Comm {
    h
}
#[inline(always)]
pub(crate) fn type_f2c(h: Fint) -> Datatype {
    h
}
#[inline(always)]
pub(crate) fn request_f2c(h: Fint) -> Request {
    h
}

fwrap!(f08: start(req; ierr) => { count_start(freq(req)) });
fwrap!(f08: startall(n, reqs; ierr) => { count_startall_f(n, reqs) });
fwrap!(f08: request_free(req; ierr) let h = freq(req); => { forget_request(h) });
fwrap!(f08: type_free(dt; ierr) let h = ftype(dt); => { evict_type(h) });
fwrap_coll!(f08: barrier(comm: comm; ierr) via sa_barrier; comm, Op::Barrier, Mode::Blocking, None, None, |cc| 0);
fwrap_coll!(f08: ibarrier(comm, req; ierr); comm, Op::Barrier, Mode::Nonblocking, None, None, |cc| 0);
fwrap_coll!(f08: barrier_init(comm, info, req; ierr); comm, Op::Barrier, Mode::Persistent, None, Some(freq(req)), |cc| 0);
