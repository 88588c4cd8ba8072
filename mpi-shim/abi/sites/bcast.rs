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
///
/// Pieces are runs of bytes of the message's type signature, cut identically on every rank
/// from the message's size alone: ranks may describe one message with different datatypes
/// (the root N elements of a 6-int type, the others 6N ints), so elements of a rank's own
/// datatype are no common unit. A rank whose datatype has no gaps sends and receives its
/// buffer's bytes in place; any other packs (the root) or unpacks (the others) the whole
/// message once.
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
    // SAFETY: the caller's buffer of `count` elements of `dt`.
    let total = size(unsafe { bytes(count, dt) });
    let parts = split(total, pieces);
    let rg = sc.g.group_of[root];
    let head = sc.head_local(root);
    let others: Vec<c_int> = (0..sc.g.groups.len()).filter(|&h| h != rg).map(|h| as_rank(sc.head(h, root))).collect();
    // SAFETY: the caller's buffer of `count` elements of `dt`; `packed` holds the message.
    unsafe {
        // Elements of no gaps, side by side: the message is one run of bytes.
        let dense = isize::try_from(type_size(dt)).is_ok_and(|sz| sz == l.extent && sz == l.true_extent);
        let mut packed: Vec<u8> = Vec::new();
        let base: *mut u8 = if dense {
            (buf as *mut u8).wrapping_offset(l.true_lb)
        } else {
            if sc.me == root {
                try_rc!(pack(&mut packed, buf, count, dt, sc.local));
            }
            packed.resize(total.max(1), 0);
            packed.as_mut_ptr()
        };
        let mut reqs: Vec<Request> = Vec::new();
        if sc.mine != rg && sc.head(sc.mine, root) == sc.me {
            for &(a, c) in &parts {
                post!(reqs, PMPI_Irecv, base.add(a).cast(), int!(c), byte_type(), as_rank(root), PIECE_TAG, x);
            }
        }
        for (k, &(a, c)) in parts.iter().enumerate() {
            if sc.me == root {
                for &h in &others {
                    post!(reqs, PMPI_Isend, base.add(a).cast(), int!(c), byte_type(), h, PIECE_TAG, x);
                }
            } else if let Some(q) = reqs.get_mut(k) {
                try_rc!(PMPI_Wait()(q, status_ignore()));
            }
            try_rc!(PMPI_Bcast()(base.add(a).cast(), int!(c), byte_type(), head, sc.local));
        }
        // The root's sends (a head's receives are complete by now).
        try_rc!(wait_all(&mut reqs));
        if !dense && sc.me != root {
            try_rc!(unpack(&packed[..total], buf, count, dt, sc.local));
        }
        0
    }
}
