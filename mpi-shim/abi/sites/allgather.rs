//! Site-aware MPI_Allgather and MPI_Allgatherv (Open MPI HAN: `coll_han_allgather.c`).

use super::*;

/// Allgather and Allgatherv: each site packs its blocks at its leader, the leaders
/// allgather the site blobs, each leader broadcasts the whole inside its site.
/// `recv(m)` is every rank's (count, displacement) of rank m's block.
// MPI_Allgatherv's arguments, after the site communicators, the counts as a function.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn allgather_any(
    sc: &SiteComms,
    s: *const c_void,
    scnt: c_int,
    st: Datatype,
    r: *mut c_void,
    rt: Datatype,
    comm: Comm,
    recv: &dyn Fn(usize) -> (c_int, usize),
) -> Option<c_int> {
    // SAFETY: the application's buffers, used as its call describes them.
    unsafe {
        let me = sc.me;
        let sz = size(type_size(rt));
        let rext = layout(rt)?.extent;
        let sizes: Vec<usize> = (0..sc.n()).map(|m| recv(m).0.max(0) as usize * sz).collect();
        let site_totals = sc.site_sums(|m| sizes[m]);
        let to = offsets(&site_totals);
        let total = as_int(to[to.len() - 1])? as usize;
        if !sc.worth(SaOp::Allgather, None, total as u64) {
            return None;
        }
        let inplace = in_place(s);
        let mut mine = Vec::new();
        if inplace {
            let (c, d) = recv(me);
            ck!(pack(&mut mine, at(r, d, rext), c, rt, comm));
        } else {
            ck!(pack(&mut mine, s, scnt, st, comm));
        }
        let member_sizes: Vec<usize> = sc.members().iter().map(|&m| sizes[m]).collect();
        let mo = offsets(&member_sizes);
        let mut all = vec![0u8; total.max(1)];
        // The site's blob lands where it belongs in the whole.
        let site_at = to[sc.mine];
        ck!(PMPI_Gatherv()(
            mine.as_ptr().cast(),
            int!(mine.len()),
            byte_type(),
            all.as_mut_ptr().add(site_at).cast(),
            ints!(&member_sizes).as_ptr(),
            ints!(&mo[..mo.len() - 1]).as_ptr(),
            byte_type(),
            sc.lead_local(),
            sc.local
        ));
        if sc.g.groups.len() <= DIRECT_SITES && pipeline_pieces(total as u64).is_some() {
            ck!(allgather_pieces(sc, &mut all, &site_totals, &to));
        } else if let Some(x) = sc.leaders {
            if sc.g.groups.len() > DIRECT_SITES {
                ck!(PMPI_Allgatherv()(
                    in_place_ptr(),
                    0,
                    byte_type(),
                    all.as_mut_ptr().cast(),
                    ints!(&site_totals).as_ptr(),
                    ints!(&to[..to.len() - 1]).as_ptr(),
                    byte_type(),
                    x
                ));
            } else {
                ck!(x_allgather_direct(sc, x, &mut all, &site_totals, &to));
            }
            ck!(PMPI_Bcast()(all.as_mut_ptr().cast(), int!(total), byte_type(), sc.lead_local(), sc.local));
        } else {
            ck!(PMPI_Bcast()(all.as_mut_ptr().cast(), int!(total), byte_type(), sc.lead_local(), sc.local));
        }
        if sc.leaders.is_some() {
            let sb: Vec<u64> = site_totals.iter().map(|&t| t as u64).collect();
            sc.cross(SaOp::Allgather, None, 0, &sb);
        }
        let mut pos = 0;
        for m in &sc.g.groups {
            for &rank in m {
                let (c, d) = recv(rank);
                if !(inplace && rank == me) {
                    ck!(unpack(&all[pos..pos + sizes[rank]], at(r, d, rext), c, rt, comm));
                }
                pos += sizes[rank];
            }
        }
    }
    Some(0)
}

/// The leaders' exchange and the sites' broadcast of an allgather in pieces, up to
/// DIRECT_SITES sites, once each site's blob is at its leader (at `offsets[h]` in `all`,
/// `sizes[h]` bytes): every leader posts its blob to every other leader in pieces
/// (`blob_pieces`) and the site broadcasts its own blob while they cross; then each remote
/// piece, in site order, is broadcast as soon as the leader has it. Before, the whole
/// exchange came first and one broadcast of everything after it.
pub(super) unsafe fn allgather_pieces(sc: &SiteComms, all: &mut [u8], sizes: &[usize], offsets: &[usize]) -> c_int {
    let sites = sizes.len();
    let base = all.as_mut_ptr();
    let lead = sc.lead_local();
    let mut recvs: Vec<Request> = Vec::new();
    let mut sends: Vec<Request> = Vec::new();
    // SAFETY: disjoint byte ranges of `all`, each within its site's blob.
    unsafe {
        if let Some(x) = sc.leaders {
            for h in (0..sites).filter(|&h| h != sc.mine) {
                for (a, c) in blob_pieces(sizes[h]) {
                    post!(recvs, PMPI_Irecv, base.add(offsets[h] + a).cast(), int!(c), byte_type(), as_rank(h), PIECE_TAG, x);
                }
            }
            for (a, c) in blob_pieces(sizes[sc.mine]) {
                for h in (0..sites).filter(|&h| h != sc.mine) {
                    post!(sends, PMPI_Isend, base.add(offsets[sc.mine] + a).cast(), int!(c), byte_type(), as_rank(h), PIECE_TAG, x);
                }
            }
        }
        try_rc!(PMPI_Bcast()(base.add(offsets[sc.mine]).cast(), int!(sizes[sc.mine]), byte_type(), lead, sc.local));
        let mut k = 0;
        for h in (0..sites).filter(|&h| h != sc.mine) {
            for (a, c) in blob_pieces(sizes[h]) {
                if let Some(q) = recvs.get_mut(k) {
                    try_rc!(PMPI_Wait()(q, status_ignore()));
                }
                k += 1;
                try_rc!(PMPI_Bcast()(base.add(offsets[h] + a).cast(), int!(c), byte_type(), lead, sc.local));
            }
        }
        wait_all(&mut sends)
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_allgather(
    sc: &SiteComms,
    s: *const c_void,
    scnt: c_int,
    st: Datatype,
    r: *mut c_void,
    rcnt: c_int,
    rt: Datatype,
    comm: Comm,
) -> Option<c_int> {
    // SAFETY: forwarded.
    unsafe { allgather_any(sc, s, scnt, st, r, rt, comm, &|m| (rcnt, m * rcnt.max(0) as usize)) }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_allgatherv(
    sc: &SiteComms,
    s: *const c_void,
    scnt: c_int,
    st: Datatype,
    r: *mut c_void,
    rcs: *const c_int,
    displs: *const c_int,
    rt: Datatype,
    comm: Comm,
) -> Option<c_int> {
    // SAFETY: every rank passes one count and displacement per rank.
    unsafe { allgather_any(sc, s, scnt, st, r, rt, comm, &|m| (*rcs.add(m), *displs.add(m) as usize)) }
}
