//! Site-aware MPI_Allreduce (Open MPI HAN: `coll_han_allreduce.c`).

use super::*;

/// Allreduce: each site to its leader, an allreduce among leaders, a broadcast inside
/// each site; from 1 MiB up to DIRECT_SITES sites in pieces (`allreduce_pieces`).
pub(crate) unsafe fn sa_allreduce(
    sc: &SiteComms,
    s: *const c_void,
    r: *mut c_void,
    count: c_int,
    dt: Datatype,
    op: MpiOp,
    comm: Comm,
) -> Option<c_int> {
    // SAFETY: the application's buffers.
    unsafe {
        if !sc.reducible(op) || !sc.worth(SaOp::Allreduce, None, bytes(count, dt)) {
            return None;
        }
        let l = layout(dt)?;
        let mut input = Scratch::new(if in_place(s) { count as usize } else { 0 }, l);
        let send = if in_place(s) {
            copy_elems(r, input.buf(), count as usize, l);
            input.buf() as *const c_void
        } else {
            s
        };
        if sc.g.groups.len() <= DIRECT_SITES {
            if let Some(pieces) = pipeline_pieces(bytes(count, dt)) {
                ck!(allreduce_pieces(sc, send, r, count, dt, op, pieces, l, comm));
                sc.cross(SaOp::Allreduce, None, bytes(count, dt), &[]);
                return Some(0);
            }
        }
        // Into `r` at the leader, scratch elsewhere (see `sa_reduce` on MPI_IN_PLACE).
        let mut spare = Scratch::new(if sc.is_leader() { 0 } else { count as usize }, l);
        let site = if sc.is_leader() { r } else { spare.buf() };
        ck!(PMPI_Reduce()(send, site, count, dt, op, sc.lead_local(), sc.local));
        if let Some(x) = sc.leaders {
            if sc.g.groups.len() > DIRECT_SITES {
                ck!(PMPI_Allreduce()(in_place_ptr(), r, count, dt, op, x));
            } else {
                let mine = sc.mine;
                ck!(x_reduce_direct(sc, x, &as_rank, r, count, dt, op, l, &|h| h != mine, &|h| h != mine, true, r, comm));
            }
        }
        ck!(PMPI_Bcast()(r, count, dt, sc.lead_local(), sc.local));
        sc.cross(SaOp::Allreduce, None, bytes(count, dt), &[]);
    }
    Some(0)
}

/// Allreduce in pieces, up to DIRECT_SITES sites (`regroup::pipeline_pieces`): every site
/// reduces piece j to its leader along a chain of its ranks (`Chain`), and the leader posts
/// it to every other leader at once and goes on with piece j + 1; then every leader folds
/// piece j of all sites in site order as soon as the others' have arrived and broadcasts
/// it inside its site while the later pieces still cross. Each direction of the WAN
/// carries the vector once per remote site, as before, but the sites' reductions and
/// broadcasts overlap the crossing instead of preceding and following it. `send` is never
/// MPI_IN_PLACE.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn allreduce_pieces(
    sc: &SiteComms,
    send: *const c_void,
    r: *mut c_void,
    count: c_int,
    dt: Datatype,
    op: MpiOp,
    pieces: usize,
    l: Layout,
    comm: Comm,
) -> c_int {
    let n = count.max(0) as usize;
    let parts = split(n, pieces);
    let (mine, sites) = (sc.mine, sc.g.groups.len());
    // The leaders' communicator (rank h leads site h) exists on leaders only.
    let x = sc.leaders;
    let lead = sc.lead_local();
    // SAFETY: `send` and `r` hold `count` elements of `dt`; scratch of its layout.
    unsafe {
        // Every rank gets a full receive buffer for the site's reduction (see `sa_reduce`).
        let mut site = Scratch::new(n, l);
        let mut partials: Vec<Option<Scratch>> = (0..sites).map(|h| (x.is_some() && h != mine).then(|| Scratch::new(n, l))).collect();
        let mut recvs: Vec<Vec<Request>> = vec![Vec::new(); sites];
        let mut sends: Vec<Request> = Vec::new();
        if let Some(x) = x {
            try_rc!(recv_pieces(&mut partials, &parts, dt, l, &as_rank, x, &mut recvs));
        }
        let mut chain = match Chain::start(sc, &parts, n, dt, l, lead) {
            Ok(ch) => ch,
            Err(rc) => return rc,
        };
        for (j, &(a, c)) in parts.iter().enumerate() {
            try_rc!(chain.piece(sc, j, a, c, send, &mut site, dt, op, l, lead));
            if let Some(x) = x {
                for h in (0..sites).filter(|&h| h != mine) {
                    post!(sends, PMPI_Isend, elem(site.buf(), a, l), int!(c), dt, as_rank(h), PIECE_TAG, x);
                }
            }
        }
        let mut acc = Scratch::new(if x.is_some() { n } else { 0 }, l);
        for (k, &(a, c)) in parts.iter().enumerate() {
            if x.is_some() {
                try_rc!(wait_piece(&mut recvs, k));
                try_rc!(fold_piece(mine, &mut site, &mut partials, &mut acc, a, c, dt, op, l));
                try_rc!(user_copy(elem(acc.buf(), a, l), elem(r, a, l), int!(c), dt, l, comm));
            }
            try_rc!(PMPI_Bcast()(elem(r, a, l), int!(c), dt, lead, sc.local));
        }
        try_rc!(chain.finish());
        wait_all(&mut sends)
    }
}
