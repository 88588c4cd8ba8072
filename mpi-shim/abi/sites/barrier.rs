//! Site-aware MPI_Barrier (Open MPI HAN: `coll_han_barrier.c`).

use super::*;

/// Barrier: inside each site, among leaders, inside each site again.
pub(crate) unsafe fn sa_barrier(sc: &SiteComms, _comm: Comm) -> Option<c_int> {
    if !sc.worth(SaOp::Barrier, None, 0) {
        return None;
    }
    // SAFETY: our communicators.
    unsafe {
        ck!(PMPI_Barrier()(sc.local));
        if let Some(x) = sc.leaders {
            ck!(PMPI_Barrier()(x));
        }
        ck!(PMPI_Barrier()(sc.local));
    }
    Some(0)
}
