//! The straddle shim for the MPICH ABI: integer handles, sizes of builtin datatypes read
//! from the handle. MPICH's Fortran bindings call the C entry points, so this build exports
//! C symbols (exporting the Fortran ones too would count Fortran calls twice), plus the
//! few `use mpi_f08` routines that call PMPI directly (`fortran_f08_mpich.rs`).

mod abi {
    use std::ffi::{c_int, c_void};

    pub type Comm = c_int;
    pub type Datatype = c_int;
    pub type Request = c_int;
    pub type Win = c_int;
    pub type Group = c_int;
    pub type Info = c_int;
    pub type MpiOp = c_int;
    pub type Aint = isize;
    pub type Count = i64;
    pub type Fint = c_int;
    pub type Errhandler = c_int;

    pub const IMPL: straddle_shim::state::MpiImpl = straddle_shim::state::MpiImpl::Mpich;
    pub const PROC_NULL: c_int = -1;
    pub const THREAD_MULTIPLE: c_int = 3;
    /// MPI_ERR_COUNT, the error class of an invalid count.
    pub const ERR_COUNT: c_int = 2;
    pub const ROOT: c_int = -3;
    pub const TOPO_GRAPH: c_int = 1;
    pub const TOPO_CART: c_int = 2;
    pub const TOPO_DIST_GRAPH: c_int = 3;

    #[inline(always)]
    pub fn comm_world() -> Comm {
        0x4400_0000
    }
    #[inline(always)]
    pub fn comm_self() -> Comm {
        0x4400_0001
    }
    #[inline(always)]
    pub fn byte_type() -> Datatype {
        0x4c00_010d
    }
    #[inline(always)]
    pub fn errors_return() -> Errhandler {
        0x5400_0001
    }
    /// MPI_STATUS_IGNORE: address 1, never dereferenced.
    #[inline(always)]
    pub fn status_ignore() -> *mut c_void {
        std::ptr::without_provenance_mut(1)
    }
    /// MPI_IN_PLACE: address -1, never dereferenced.
    #[inline(always)]
    pub fn in_place_ptr() -> *const c_void {
        std::ptr::without_provenance(usize::MAX)
    }
    /// Builtin handles carry their size (kind bits 30..31 = 1, size in bits 8..15).
    #[inline(always)]
    pub fn builtin_type_size(dt: Datatype) -> Option<u64> {
        ((dt as u32 >> 30) == 1).then_some(((dt as u32 & 0xff00) >> 8) as u64)
    }
    #[inline(always)]
    pub fn handle_u32(h: Datatype) -> Option<u32> {
        Some(h as u32)
    }
    #[inline(always)]
    pub fn handle_usize(h: Request) -> usize {
        h as u32 as usize
    }
}

// The ABI-generic parts, shared with the other MPI build.
#[macro_use]
#[path = "../../abi/common.rs"]
mod common;
#[macro_use]
#[path = "../../abi/c.rs"]
mod c;
#[path = "../../abi/sites/mod.rs"]
mod sites;
#[macro_use]
#[path = "../../abi/fortran_core.rs"]
mod fortran_core;
#[path = "../../abi/fortran_f08_mpich.rs"]
mod fortran;
