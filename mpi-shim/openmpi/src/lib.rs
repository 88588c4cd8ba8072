//! The straddle shim for the Open MPI ABI: pointer handles whose predefined values are the
//! addresses of library globals. Open MPI's Fortran bindings call PMPI directly, so this
//! build also exports the Fortran entry points (`fortran.rs`).

mod abi {
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};

    pub type Comm = *mut c_void;
    pub type Datatype = *mut c_void;
    pub type Request = *mut c_void;
    pub type Win = *mut c_void;
    pub type Group = *mut c_void;
    pub type MpiOp = *mut c_void;
    pub type Aint = isize;
    pub type Fint = c_int;
    pub type Errhandler = *mut c_void;

    pub const IMPL: straddle_shim::state::MpiImpl = straddle_shim::state::MpiImpl::OpenMpi;
    pub const PROC_NULL: c_int = -2;
    pub const THREAD_MULTIPLE: c_int = 3;
    /// MPI_ERR_COUNT, the error class of an invalid count.
    pub const ERR_COUNT: c_int = 2;
    pub const ROOT: c_int = -4;
    pub const TOPO_CART: c_int = 1;
    pub const TOPO_GRAPH: c_int = 2;
    pub const TOPO_DIST_GRAPH: c_int = 3;

    /// The address of a library global, looked up once (MPI is loaded whenever a wrapper
    /// runs).
    macro_rules! global {
        ($fn:ident, $sym:literal) => {
            #[inline(always)]
            pub fn $fn() -> *mut c_void {
                static P: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
                let p = P.load(Relaxed);
                if !p.is_null() {
                    return p;
                }
                // The global scope, or a library loaded with local scope.
                let p = crate::common::lookup_data(concat!($sym, "\0"));
                P.store(p, Relaxed);
                p
            }
        };
    }
    global!(comm_world, "ompi_mpi_comm_world");
    global!(comm_self, "ompi_mpi_comm_self");
    global!(byte_type, "ompi_mpi_byte");
    global!(fortran_in_place, "mpi_fortran_in_place_");
    global!(fortran_bottom, "mpi_fortran_bottom_");
    global!(errors_return, "ompi_mpi_errors_return");

    /// MPI_STATUS_IGNORE: the null pointer.
    #[inline(always)]
    pub fn status_ignore() -> *mut c_void {
        std::ptr::null_mut()
    }
    /// MPI_IN_PLACE: address 1, never dereferenced.
    #[inline(always)]
    pub fn in_place_ptr() -> *const c_void {
        std::ptr::without_provenance(1)
    }
    /// Open MPI handles do not encode sizes; the library's MPI_Type_size reads one field.
    #[inline(always)]
    pub fn builtin_type_size(_: Datatype) -> Option<u64> {
        None
    }
    #[inline(always)]
    pub fn handle_u32(_: Datatype) -> Option<u32> {
        None
    }
    #[inline(always)]
    pub fn handle_usize(h: Request) -> usize {
        h as usize
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
#[path = "../../abi/fortran.rs"]
mod fortran;
