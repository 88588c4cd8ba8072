//! Site-aware MPI_Reduce_scatter and MPI_Reduce_scatter_block (Open MPI HAN: `coll_han_reduce_scatter.c`).

use super::*;

/// Reduce_scatter(_block): each site reduces the whole vector at its leader, the leaders
/// reduce-scatter one segment per site (the vector permuted into site order when sites
/// interleave), each leader scatters its site's segments. `counts[m]`: rank m's segment.
pub(super) unsafe fn reduce_scatter_any(
    sc: &SiteComms,
    s: *const c_void,
    r: *mut c_void,
    counts: &[usize],
    dt: Datatype,
    op: MpiOp,
) -> Option<c_int> {
    // SAFETY: the application's buffers; scratch of the datatype's layout.
    unsafe {
        if !sc.reducible(op) {
            return None;
        }
        let l = layout(dt)?;
        let n_total: usize = counts.iter().sum();
        as_int(n_total)?;
        if !sc.worth(SaOp::ReduceScatter, None, n_total as u64 * type_size(dt)) {
            return None;
        }
        let input = if in_place(s) { r as *const c_void } else { s };
        if sc.g.groups.len() <= DIRECT_SITES && pipeline_pieces(n_total as u64 * type_size(dt)).is_some() {
            ck!(reduce_scatter_pieces(sc, input, r, counts, dt, op, l));
            return Some(0);
        }
        let leader = sc.is_leader();
        let mut full = Scratch::new(n_total, l);
        ck!(PMPI_Reduce()(input, full.buf(), int!(n_total), dt, op, sc.lead_local(), sc.local));
        let site_counts = sc.site_sums(|m| counts[m]);
        let member_counts: Vec<usize> = sc.members().iter().map(|&m| counts[m]).collect();
        let mut seg = Scratch::new(if leader { site_counts[sc.mine] } else { 0 }, l);
        if let Some(x) = sc.leaders {
            let elem_at = offsets(counts);
            // Permute into site order unless the ranks already are.
            let ordered = sc.g.groups.iter().flatten().enumerate().all(|(i, &r)| i == r);
            let mut perm = Scratch::new(if ordered { 0 } else { n_total }, l);
            let src = if ordered {
                full.buf()
            } else {
                let mut k = 0;
                for m in &sc.g.groups {
                    for &rank in m {
                        let from = full.span(elem_at[rank], counts[rank]);
                        let to = perm.span(k, counts[rank]);
                        perm.mem[to].copy_from_slice(&full.mem[from]);
                        k += counts[rank];
                    }
                }
                perm.buf()
            };
            ck!(PMPI_Reduce_scatter()(src, seg.buf(), ints!(&site_counts).as_ptr(), dt, op, x));
            let sz = type_size(dt);
            let sb: Vec<u64> = site_counts.iter().map(|&c| c as u64 * sz).collect();
            sc.cross(SaOp::ReduceScatter, None, 0, &sb);
        }
        let mo = offsets(&member_counts);
        let my_count = int!(counts[sc.me]);
        ck!(PMPI_Scatterv()(
            seg.buf(),
            ints!(&member_counts).as_ptr(),
            ints!(&mo[..mo.len() - 1]).as_ptr(),
            dt,
            r,
            my_count,
            dt,
            sc.lead_local(),
            sc.local
        ));
    }
    Some(0)
}

/// Reduce_scatter(_block) in pieces, up to DIRECT_SITES sites, once the operation may be
/// regrouped: every rank puts its input in site order; every site reduces each other
/// site's segment piece by piece (`blob_pieces` of its bytes) to its leader, which posts
/// each piece to that site's leader at once, then reduces its own segment; each leader
/// folds its segment's pieces of every site in site order as they arrive and scatters the
/// result inside its site. Before, the whole vector was reduced before anything crossed.
/// `input` may be the receive buffer (MPI_IN_PLACE): it is only written at the end.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn reduce_scatter_pieces(
    sc: &SiteComms,
    input: *const c_void,
    r: *mut c_void,
    counts: &[usize],
    dt: Datatype,
    op: MpiOp,
    l: Layout,
) -> c_int {
    let n_total: usize = counts.iter().sum();
    let (mine, sites) = (sc.mine, sc.g.groups.len());
    let x = sc.leaders;
    let lead = sc.lead_local();
    // SAFETY: `input` holds the counts' sum of elements of `dt`, `r` this rank's count;
    // scratch of its layout.
    unsafe {
        let sz = size(type_size(dt));
        let site_counts = sc.site_sums(|m| counts[m]);
        let seg_at = offsets(&site_counts);
        let pieces_of = |h: usize| split(site_counts[h], blob_pieces(site_counts[h] * sz).len());
        let ordered = sc.g.groups.iter().flatten().enumerate().all(|(i, &r)| i == r);
        let mut perm = Scratch::new(if ordered { 0 } else { n_total }, l);
        let src = if ordered {
            input as *mut c_void
        } else {
            let elem_at = offsets(counts);
            let mut k = 0;
            for m in &sc.g.groups {
                for &rank in m {
                    copy_elems(elem(input as *mut c_void, elem_at[rank], l), elem(perm.buf(), k, l), counts[rank], l);
                    k += counts[rank];
                }
            }
            perm.buf()
        };
        // Every rank gets full receive buffers for the site's reductions (see `sa_reduce`).
        let mut red = Scratch::new(n_total, l);
        let mut own = Scratch::new(site_counts[mine], l);
        let mut partials: Vec<Option<Scratch>> =
            (0..sites).map(|h| (x.is_some() && h != mine).then(|| Scratch::new(site_counts[mine], l))).collect();
        let mut recvs: Vec<Vec<Request>> = vec![Vec::new(); sites];
        let mut sends: Vec<Request> = Vec::new();
        if let Some(x) = x {
            try_rc!(recv_pieces(&mut partials, &pieces_of(mine), dt, l, &as_rank, x, &mut recvs));
        }
        // The other sites' segments first, each piece posted as soon as it is reduced.
        for h in (0..sites).filter(|&h| h != mine).chain([mine]) {
            for (a, c) in pieces_of(h) {
                let at = seg_at[h] + a;
                let into = if h == mine { elem(own.buf(), a, l) } else { elem(red.buf(), at, l) };
                try_rc!(PMPI_Reduce()(elem(src, at, l), into, int!(c), dt, op, lead, sc.local));
                if let (Some(x), true) = (x, h != mine) {
                    post!(sends, PMPI_Isend, into, int!(c), dt, as_rank(h), PIECE_TAG, x);
                }
            }
        }
        let mut acc = Scratch::new(if x.is_some() { site_counts[mine] } else { 0 }, l);
        if x.is_some() {
            for (k, (a, c)) in pieces_of(mine).into_iter().enumerate() {
                try_rc!(wait_piece(&mut recvs, k));
                try_rc!(fold_piece(mine, &mut own, &mut partials, &mut acc, a, c, dt, op, l));
            }
            let b: Vec<u64> = site_counts.iter().map(|&c| (c * sz) as u64).collect();
            sc.cross(SaOp::ReduceScatter, None, 0, &b);
        }
        let member_counts: Vec<usize> = sc.members().iter().map(|&m| counts[m]).collect();
        let mo = offsets(&member_counts);
        try_rc!(PMPI_Scatterv()(
            acc.buf(),
            ints!(&member_counts).as_ptr(),
            ints!(&mo[..mo.len() - 1]).as_ptr(),
            dt,
            r,
            int!(counts[sc.me]),
            dt,
            lead,
            sc.local
        ));
        wait_all(&mut sends)
    }
}

pub(crate) unsafe fn sa_reduce_scatter(
    sc: &SiteComms,
    s: *const c_void,
    r: *mut c_void,
    rcs: *const c_int,
    dt: Datatype,
    op: MpiOp,
    _comm: Comm,
) -> Option<c_int> {
    // SAFETY: every rank passes one count per rank.
    let counts: Vec<usize> = (0..sc.n()).map(|m| unsafe { *rcs.add(m) }.max(0) as usize).collect();
    // SAFETY: forwarded.
    unsafe { reduce_scatter_any(sc, s, r, &counts, dt, op) }
}

pub(crate) unsafe fn sa_reduce_scatter_block(
    sc: &SiteComms,
    s: *const c_void,
    r: *mut c_void,
    rcnt: c_int,
    dt: Datatype,
    op: MpiOp,
    _comm: Comm,
) -> Option<c_int> {
    let counts = vec![rcnt.max(0) as usize; sc.n()];
    // SAFETY: forwarded.
    unsafe { reduce_scatter_any(sc, s, r, &counts, dt, op) }
}
