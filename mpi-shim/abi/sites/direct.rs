//! The heads' direct exchanges between sites, up to `DIRECT_SITES` sites: one message per
//! pair of sites instead of the library's algorithms among the leaders.

use super::*;

/// The step between sites of a broadcast from `root`. Up to DIRECT_SITES sites the root
/// sends every other site's head one copy on the cross communicator; above, it hands the
/// data to its site's leader and the library broadcasts among the leaders.
pub(super) unsafe fn x_bcast(sc: &SiteComms, buf: *mut c_void, count: c_int, dt: Datatype, root: usize) -> c_int {
    let rg = sc.g.group_of[root];
    // SAFETY: the caller's buffer of `count` elements of `dt`.
    unsafe {
        let Some(x) = sc.cross else {
            let rc = handover(sc, buf, count, dt, root, sc.leader(rg), HANDOVER_TAG);
            return match sc.leaders {
                Some(l) if rc == 0 => PMPI_Bcast()(buf, count, dt, as_rank(rg), l),
                _ => rc,
            };
        };
        if sc.me != root {
            if sc.mine != rg && sc.head(sc.mine, root) == sc.me {
                return PMPI_Recv()(buf, count, dt, as_rank(root), LEADERS_TAG, x, status_ignore());
            }
            return 0;
        }
        let sites = sc.g.groups.len();
        let mut reqs: Vec<Request> = Vec::with_capacity(sites);
        for h in (0..sites).filter(|&h| h != rg) {
            post!(reqs, PMPI_Isend, buf, count, dt, as_rank(sc.head(h, root)), LEADERS_TAG, x);
        }
        wait_all(&mut reqs)
    }
}

/// The leaders' allgather of site blobs by direct exchange: each sends its site's blob
/// (at `offsets[mine]` in `all`) to every other leader in one message and receives theirs
/// in place. (MPICH's ring allgatherv cuts blobs over 32 KiB into blocking 32 KiB steps,
/// each waiting a WAN round trip.)
pub(super) unsafe fn x_allgather_direct(sc: &SiteComms, x: Comm, all: &mut [u8], sizes: &[usize], offsets: &[usize]) -> c_int {
    let sites = sc.g.groups.len();
    let base = all.as_mut_ptr();
    let mut reqs: Vec<Request> = Vec::with_capacity(2 * sites);
    // SAFETY: disjoint regions of `all`, each as long as its site's blob.
    unsafe {
        for h in (0..sites).filter(|&h| h != sc.mine) {
            post!(reqs, PMPI_Irecv, base.add(offsets[h]).cast(), int!(sizes[h]), byte_type(), as_rank(h), LEADERS_TAG, x);
        }
        let mine = base.add(offsets[sc.mine]) as *const c_void;
        for h in (0..sites).filter(|&h| h != sc.mine) {
            post!(reqs, PMPI_Isend, mine, int!(sizes[sc.mine]), byte_type(), as_rank(h), LEADERS_TAG, x);
        }
        wait_all(&mut reqs)
    }
}

/// A reduction among heads by direct exchange on `x`, where group h's head is rank
/// `peer(h)`: this head sends its partial `mine` to every head h with `to(h)`, receives
/// the partials of every h with `from(h)`, and combines those (with its own when
/// `with_mine`) in site order into `out`. Site order is communicator order when a
/// non-commutative operation got this far.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn x_reduce_direct(
    sc: &SiteComms,
    x: Comm,
    peer: &dyn Fn(usize) -> c_int,
    mine: *const c_void,
    count: c_int,
    dt: Datatype,
    op: MpiOp,
    l: Layout,
    to: &dyn Fn(usize) -> bool,
    from: &dyn Fn(usize) -> bool,
    with_mine: bool,
    out: *mut c_void,
    comm: Comm,
) -> c_int {
    let sites = sc.g.groups.len();
    let n = count.max(0) as usize;
    let mut partials: Vec<Option<Scratch>> = (0..sites).map(|h| from(h).then(|| Scratch::new(n, l))).collect();
    // SAFETY: scratch buffers of `count` elements of `dt`; `mine` holds as many.
    unsafe {
        let mut reqs: Vec<Request> = Vec::with_capacity(2 * sites);
        for (h, p) in partials.iter_mut().enumerate() {
            if let Some(p) = p {
                post!(reqs, PMPI_Irecv, p.buf(), count, dt, peer(h), LEADERS_TAG, x);
            }
        }
        for h in (0..sites).filter(|&h| h != sc.mine && to(h)) {
            post!(reqs, PMPI_Isend, mine, count, dt, peer(h), LEADERS_TAG, x);
        }
        try_rc!(wait_all(&mut reqs));
        let order: Vec<usize> = (0..sites).filter(|&h| partials[h].is_some() || (with_mine && h == sc.mine)).collect();
        let Some(&last) = order.last() else { return 0 };
        let mut acc = Scratch::new(n, l);
        let src = |h: usize, partials: &mut Vec<Option<Scratch>>| -> *const c_void {
            match partials[h].as_mut() {
                Some(p) => p.buf(),
                None => mine,
            }
        };
        copy_elems(src(last, &mut partials), acc.buf(), n, l);
        for &h in order.iter().rev().skip(1) {
            try_rc!(PMPI_Reduce_local()(src(h, &mut partials), acc.buf(), count, dt, op));
        }
        typed_copy(acc.buf(), out, count, dt, comm)
    }
}
