//! Site-aware MPI_Reduce (Open MPI HAN: `coll_han_reduce.c`).

use super::*;

/// Reduce: each site to its head (the root in its own site), the other heads straight to
/// the root; above DIRECT_SITES sites the leaders reduce to the root's leader, which hands
/// the result to the root.
// MPI_Reduce's arguments, after the site communicators.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_reduce(
    sc: &SiteComms,
    s: *const c_void,
    r: *mut c_void,
    count: c_int,
    dt: Datatype,
    op: MpiOp,
    root: c_int,
    comm: Comm,
) -> Option<c_int> {
    let root = sc.root(root)?;
    // SAFETY: the application's buffers; scratch of the datatype's layout.
    unsafe {
        if !sc.reducible(op) || !sc.worth(SaOp::Reduce, Some(root), bytes(count, dt)) {
            return None;
        }
        let l = layout(dt)?;
        let me = sc.me;
        let rg = sc.g.group_of[root];
        let inplace = me == root && in_place(s);
        // No MPI_IN_PLACE and no null receive buffers below: MPICH 4.0 reads through the
        // in-place sentinel when a reduction's root is not rank 0 and the message is long,
        // and its user-op path writes through non-roots' receive buffers.
        let mut input = Scratch::new(if inplace { count as usize } else { 0 }, l);
        let send = if inplace {
            copy_elems(r, input.buf(), count as usize, l);
            input.buf() as *const c_void
        } else {
            s
        };
        if let (Some(pieces), Some(x)) = (pipeline_pieces(bytes(count, dt)), sc.cross) {
            ck!(reduce_pieces(sc, x, send, r, count, dt, op, root, pieces, l, comm));
            sc.cross(SaOp::Reduce, Some(root), bytes(count, dt), &[]);
            return Some(0);
        }
        let mut site = Scratch::new(count as usize, l);
        ck!(PMPI_Reduce()(send, site.buf(), count, dt, op, sc.head_local(root), sc.local));
        let mut total = Scratch::new(if me == root { 0 } else { count as usize }, l);
        let acc = if me == root { r } else { total.buf() };
        if let Some(x) = sc.cross {
            // Every other site's head sends its partial straight to the root.
            let mine = sc.mine;
            if sc.head(mine, root) == me {
                let peer = |h: usize| as_rank(sc.head(h, root));
                ck!(x_reduce_direct(
                    sc,
                    x,
                    &peer,
                    site.buf(),
                    count,
                    dt,
                    op,
                    l,
                    &|h| h == rg,
                    &|h| mine == rg && h != rg,
                    mine == rg,
                    acc,
                    comm
                ));
            }
        } else {
            let rl = sc.leader(rg);
            if let Some(x) = sc.leaders {
                ck!(PMPI_Reduce()(site.buf(), acc, count, dt, op, as_rank(rg), x));
            }
            ck!(handover(sc, acc, count, dt, rl, root, HANDOVER_TAG));
        }
        sc.cross(SaOp::Reduce, Some(root), bytes(count, dt), &[]);
    }
    Some(0)
}

/// Reduce in pieces, up to DIRECT_SITES sites (`regroup::pipeline_pieces`): every site
/// reduces piece j to its head; every other site's head sends it to the root at once and
/// goes on with piece j + 1; the root, once its own site's pieces are reduced, folds each
/// piece of every site in site order as it arrives. `send` is never MPI_IN_PLACE.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn reduce_pieces(
    sc: &SiteComms,
    x: Comm,
    send: *const c_void,
    r: *mut c_void,
    count: c_int,
    dt: Datatype,
    op: MpiOp,
    root: usize,
    pieces: usize,
    l: Layout,
    comm: Comm,
) -> c_int {
    let n = count.max(0) as usize;
    let parts = split(n, pieces);
    let (me, mine, sites) = (sc.me, sc.mine, sc.g.groups.len());
    let rg = sc.g.group_of[root];
    let head = sc.head(mine, root) == me;
    // SAFETY: `send` and `r` hold `count` elements of `dt`; scratch of its layout.
    unsafe {
        // Every rank gets a full receive buffer for the site's reduction (see `sa_reduce`).
        let mut site = Scratch::new(n, l);
        let mut partials: Vec<Option<Scratch>> = (0..sites).map(|h| (me == root && h != rg).then(|| Scratch::new(n, l))).collect();
        let mut recvs: Vec<Vec<Request>> = vec![Vec::new(); sites];
        try_rc!(recv_pieces(&mut partials, &parts, dt, l, &|h| as_rank(sc.head(h, root)), x, &mut recvs));
        let mut sends: Vec<Request> = Vec::with_capacity(parts.len());
        for &(a, c) in &parts {
            try_rc!(PMPI_Reduce()(elem(send as *mut c_void, a, l), elem(site.buf(), a, l), int!(c), dt, op, sc.head_local(root), sc.local));
            if head && mine != rg {
                post!(sends, PMPI_Isend, elem(site.buf(), a, l), int!(c), dt, as_rank(root), PIECE_TAG, x);
            }
        }
        if me == root {
            let mut acc = Scratch::new(n, l);
            for (k, &(a, c)) in parts.iter().enumerate() {
                try_rc!(wait_piece(&mut recvs, k));
                try_rc!(fold_piece(rg, &mut site, &mut partials, &mut acc, a, c, dt, op, l));
            }
            try_rc!(user_copy(acc.buf(), r, count, dt, l, comm));
        }
        wait_all(&mut sends)
    }
}
