//! Site-aware MPI_Bcast (Open MPI HAN: `coll_han_bcast.c`).

use super::*;

/// Bcast: the root sends each other site's head a copy (`x_bcast`), then each head
/// broadcasts inside its site.
pub(crate) unsafe fn sa_bcast(sc: &SiteComms, buf: *mut c_void, count: c_int, dt: Datatype, root: c_int, _comm: Comm) -> Option<c_int> {
    let root = sc.root(root)?;
    // SAFETY: the application's buffer, as it passed it.
    unsafe {
        if !sc.worth(SaOp::Bcast, Some(root), bytes(count, dt)) {
            return None;
        }
        match (pipeline_pieces(bytes(count, dt)), sc.cross, layout(dt)) {
            (Some(pieces), Some(x), Some(l)) => ck!(bcast_pieces(sc, x, buf, count, dt, root, pieces, l)),
            _ => {
                ck!(x_bcast(sc, buf, count, dt, root));
                ck!(PMPI_Bcast()(buf, count, dt, sc.head_local(root), sc.local));
            }
        }
        sc.cross(SaOp::Bcast, Some(root), bytes(count, dt), &[]);
    }
    Some(0)
}

/// Bcast in pieces, up to DIRECT_SITES sites (`regroup::pipeline_pieces`): the root posts
/// piece j to every other site's head without waiting for it to leave, and every site
/// broadcasts piece j from its head as soon as the head has it, while the later pieces
/// cross.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn bcast_pieces(
    sc: &SiteComms,
    x: Comm,
    buf: *mut c_void,
    count: c_int,
    dt: Datatype,
    root: usize,
    pieces: usize,
    l: Layout,
) -> c_int {
    let parts = split(count.max(0) as usize, pieces);
    let rg = sc.g.group_of[root];
    let head = sc.head_local(root);
    let others: Vec<c_int> = (0..sc.g.groups.len()).filter(|&h| h != rg).map(|h| as_rank(sc.head(h, root))).collect();
    // SAFETY: the caller's buffer of `count` elements of `dt`.
    unsafe {
        let mut reqs: Vec<Request> = Vec::new();
        if sc.mine != rg && sc.head(sc.mine, root) == sc.me {
            for &(a, c) in &parts {
                post!(reqs, PMPI_Irecv, elem(buf, a, l), int!(c), dt, as_rank(root), PIECE_TAG, x);
            }
        }
        for (k, &(a, c)) in parts.iter().enumerate() {
            if sc.me == root {
                for &h in &others {
                    post!(reqs, PMPI_Isend, elem(buf, a, l), int!(c), dt, h, PIECE_TAG, x);
                }
            } else if let Some(q) = reqs.get_mut(k) {
                try_rc!(PMPI_Wait()(q, status_ignore()));
            }
            try_rc!(PMPI_Bcast()(elem(buf, a, l), int!(c), dt, head, sc.local));
        }
        // The root's sends (a head's receives are complete by now).
        wait_all(&mut reqs)
    }
}
