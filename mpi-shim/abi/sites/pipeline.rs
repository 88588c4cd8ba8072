//! Pipelining: a vector cut into pieces that cross the WAN while the sites work on the
//! others, and the chain that reduces a site's pieces (Open MPI HAN: `coll_han_trigger.c`).

use super::*;

/// `count` elements split into about `pieces` runs: (first element, elements).
pub(super) fn split(count: usize, pieces: usize) -> Vec<(usize, usize)> {
    let step = count.div_ceil(pieces.max(1)).max(1);
    (0..count).step_by(step).map(|a| (a, step.min(count - a))).collect()
}

/// Posts the receives of every piece (`parts`: first element, elements) of each site's
/// partial that has a buffer in `partials`, from `peer(h)` on `x`; `recvs[h]` gets site h's
/// requests in piece order.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn recv_pieces(
    partials: &mut [Option<Scratch>],
    parts: &[(usize, usize)],
    dt: Datatype,
    l: Layout,
    peer: &dyn Fn(usize) -> c_int,
    x: Comm,
    recvs: &mut [Vec<Request>],
) -> c_int {
    // SAFETY: each partial holds every piece's elements and outlives its requests.
    unsafe {
        for (h, p) in partials.iter_mut().enumerate() {
            if let Some(p) = p {
                for &(a, c) in parts {
                    post!(recvs[h], PMPI_Irecv, elem(p.buf(), a, l), int!(c), dt, peer(h), PIECE_TAG, x);
                }
            }
        }
    }
    0
}

/// Waits for piece `k` from every site that sends one (`recv_pieces`).
pub(super) unsafe fn wait_piece(recvs: &mut [Vec<Request>], k: usize) -> c_int {
    for q in recvs.iter_mut().filter_map(|v| v.get_mut(k)) {
        // SAFETY: a request of `recv_pieces`.
        try_rc!(unsafe { PMPI_Wait()(q, status_ignore()) });
    }
    0
}

/// Folds the sites' piece of `c` elements at element `a` into `acc`: partial_0 op
/// (partial_1 op (... op partial_last)), the library's order of ranks (sites contiguous
/// where the op does not commute). Site `own`'s partial is in `site`, every other site's
/// in `partials`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn fold_piece(
    own: usize,
    site: &mut Scratch,
    partials: &mut [Option<Scratch>],
    acc: &mut Scratch,
    a: usize,
    c: usize,
    dt: Datatype,
    op: MpiOp,
    l: Layout,
) -> c_int {
    let sites = partials.len();
    let mut from = |h: usize| -> *mut c_void {
        elem(if h == own { site.buf() } else { partials[h].as_mut().map_or(std::ptr::null_mut(), |p| p.buf()) }, a, l)
    };
    let into = elem(acc.buf(), a, l);
    // SAFETY: every partial and `acc` hold the piece's elements of `dt`.
    unsafe {
        copy_elems(from(sites - 1), into, c, l);
        for h in (0..sites - 1).rev() {
            try_rc!(PMPI_Reduce_local()(from(h), into, int!(c), dt, op));
        }
    }
    0
}

/// A site's reduction of a vector in pieces to local rank `to`, along a chain of the site's
/// ranks instead of the library's tree: the ranks below `to` pass piece j up, each
/// folding its own in after what came from below; the ranks above pass it down, each
/// folding its own in before what came from above; `to` joins the two around its own. The
/// result is x_0 op x_1 op ... op x_{k-1}, the library's order. Every rank receives and
/// sends each piece at most once (a tree's root takes log2 k of them and does every fold
/// on the critical path), so on busy cores the folds of piece j run on the ranks along
/// the chain while `to` already has piece j - 1 to send on.
pub(super) struct Chain {
    lo: Scratch,
    hi: Scratch,
    mine: Scratch,
    recv_lo: Vec<Request>,
    recv_hi: Vec<Request>,
    sends: Vec<Request>,
}

impl Chain {
    /// Posts the receives of every piece (`parts`) this rank gets from its neighbours.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn start(
        sc: &SiteComms,
        parts: &[(usize, usize)],
        n: usize,
        dt: Datatype,
        l: Layout,
        to: c_int,
    ) -> Result<Chain, c_int> {
        let (me, k) = (sc.local_rank[sc.me], as_rank(sc.members().len()));
        let from_lo = me > 0 && me <= to;
        let from_hi = me >= to && me < k - 1;
        let mut ch = Chain {
            lo: Scratch::new(if from_lo { n } else { 0 }, l),
            hi: Scratch::new(if from_hi { n } else { 0 }, l),
            mine: Scratch::new(if from_lo && me < to { n } else { 0 }, l),
            recv_lo: Vec::new(),
            recv_hi: Vec::new(),
            sends: Vec::new(),
        };
        let post = |buf: &mut Scratch, peer: c_int, reqs: &mut Vec<Request>| -> c_int {
            for &(a, c) in parts {
                // SAFETY: `buf` holds every piece and outlives its requests (`finish`).
                unsafe { post!(reqs, PMPI_Irecv, elem(buf.buf(), a, l), int!(c), dt, peer, PIECE_TAG, sc.local) };
            }
            0
        };
        if from_lo {
            let rc = post(&mut ch.lo, me - 1, &mut ch.recv_lo);
            if rc != 0 {
                return Err(rc);
            }
        }
        if from_hi {
            let rc = post(&mut ch.hi, me + 1, &mut ch.recv_hi);
            if rc != 0 {
                return Err(rc);
            }
        }
        Ok(ch)
    }

    /// Piece `j` (`c` elements at element `a`) of this rank: folded in and passed on, or at
    /// `to`, the site's partial written into `site`.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn piece(
        &mut self,
        sc: &SiteComms,
        j: usize,
        a: usize,
        c: usize,
        send: *const c_void,
        site: &mut Scratch,
        dt: Datatype,
        op: MpiOp,
        l: Layout,
        to: c_int,
    ) -> c_int {
        let me = sc.local_rank[sc.me];
        let own = elem(send as *mut c_void, a, l);
        let cnt = int!(c);
        // SAFETY: every buffer holds the piece's elements of `dt`; requests of `start`.
        unsafe {
            if let Some(q) = self.recv_lo.get_mut(j) {
                try_rc!(PMPI_Wait()(q, status_ignore()));
            }
            if let Some(q) = self.recv_hi.get_mut(j) {
                try_rc!(PMPI_Wait()(q, status_ignore()));
            }
            let (lo, hi) = (elem(self.lo.buf(), a, l), elem(self.hi.buf(), a, l));
            let (has_lo, has_hi) = (!self.recv_lo.is_empty(), !self.recv_hi.is_empty());
            if me < to {
                // What came from below, then mine.
                let out = if has_lo {
                    let m = elem(self.mine.buf(), a, l);
                    copy_elems(own, m, c, l);
                    try_rc!(PMPI_Reduce_local()(lo, m, cnt, dt, op));
                    m
                } else {
                    own
                };
                post!(self.sends, PMPI_Isend, out, cnt, dt, me + 1, PIECE_TAG, sc.local);
            } else if me > to {
                // Mine, then what came from above.
                let out = if has_hi {
                    try_rc!(PMPI_Reduce_local()(own, hi, cnt, dt, op));
                    hi
                } else {
                    own
                };
                post!(self.sends, PMPI_Isend, out, cnt, dt, me - 1, PIECE_TAG, sc.local);
            } else {
                let into = elem(site.buf(), a, l);
                if has_hi {
                    try_rc!(PMPI_Reduce_local()(own, hi, cnt, dt, op));
                    copy_elems(hi, into, c, l);
                } else {
                    copy_elems(own, into, c, l);
                }
                if has_lo {
                    try_rc!(PMPI_Reduce_local()(lo, into, cnt, dt, op));
                }
            }
        }
        0
    }

    /// Completes this rank's sends; the buffers may go once it returns.
    pub(super) unsafe fn finish(&mut self) -> c_int {
        // SAFETY: requests of `piece`.
        unsafe { wait_all(&mut self.sends) }
    }
}

/// The byte runs a site's blob of `len` bytes crosses in (`regroup::pipeline_pieces`; one
/// below its threshold).
pub(super) fn blob_pieces(len: usize) -> Vec<(usize, usize)> {
    split(len, pipeline_pieces(len as u64).unwrap_or(1))
}
