//! Site-aware MPI_Scan and MPI_Exscan (Open MPI HAN: `coll_han_scan.c`).

use super::*;

/// Scan and Exscan, when every site's ranks are contiguous: a scan inside each site, an
/// exclusive scan of the site totals among leaders, and each rank combines its site's
/// prefix with its own result.
// MPI_Scan's arguments, after the site communicators, and which scan.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn scan_any(
    sc: &SiteComms,
    s: *const c_void,
    r: *mut c_void,
    count: c_int,
    dt: Datatype,
    op: MpiOp,
    exclusive: bool,
    comm: Comm,
) -> Option<c_int> {
    if !sc.g.contiguous() {
        return None;
    }
    // SAFETY: the application's buffers; scratch of the datatype's layout.
    unsafe {
        if !sc.worth(SaOp::Scan, None, bytes(count, dt)) {
            return None;
        }
        let l = layout(dt)?;
        if let (Some(pieces), Some(x)) = (scan_chain_pieces(sc.g.groups.len(), bytes(count, dt)), sc.cross) {
            return Some(scan_chain(sc, x, s, r, count, dt, op, exclusive, pieces, l, comm));
        }
        let n = count.max(0) as usize;
        let members = sc.members();
        let last = *members.last()?;
        let local_index = sc.local_rank[sc.me];
        let input = if in_place(s) { r as *const c_void } else { s };
        // The site total, at the site's last rank, for the later sites (the last site's
        // total is nobody's prefix).
        let later_sites = sc.mine + 1 < sc.g.groups.len();
        let mut total = Scratch::new(if (later_sites && sc.me == last) || sc.is_leader() { n } else { 0 }, l);
        if later_sites && exclusive && sc.me == last {
            copy_elems(input, total.buf(), n, l);
        }
        ck!(if exclusive { PMPI_Exscan()(s, r, count, dt, op, sc.local) } else { PMPI_Scan()(s, r, count, dt, op, sc.local) });
        if later_sites && sc.me == last {
            if !exclusive {
                copy_elems(r, total.buf(), n, l);
            } else if local_index > 0 {
                ck!(PMPI_Reduce_local()(r, total.buf(), count, dt, op));
            }
        }
        if later_sites {
            ck!(handover(sc, total.buf(), count, dt, last, sc.leader(sc.mine), TOTAL_TAG));
        }
        let mut prefix = Scratch::new(n, l);
        if let Some(x) = sc.leaders {
            if sc.g.groups.len() > DIRECT_SITES {
                ck!(PMPI_Exscan()(total.buf(), prefix.buf(), count, dt, op, x));
            } else {
                let mine = sc.mine;
                let p = prefix.buf();
                ck!(x_reduce_direct(sc, x, &as_rank, total.buf(), count, dt, op, l, &|h| h > mine, &|h| h < mine, false, p, comm));
            }
            sc.cross(SaOp::Scan, None, bytes(count, dt), &[]);
        }
        if sc.mine > 0 {
            ck!(PMPI_Bcast()(prefix.buf(), count, dt, sc.lead_local(), sc.local));
            if exclusive && local_index == 0 {
                // Into the application's buffer through the datatype: its gaps stay.
                ck!(user_copy(prefix.buf(), r, count, dt, l, comm));
            } else {
                ck!(PMPI_Reduce_local()(prefix.buf(), r, count, dt, op));
            }
        }
    }
    Some(0)
}

/// Scan and Exscan over two sites of contiguous ranks, pipelined along the ranks
/// (`regroup::scan_chain_pieces`): rank i receives the prefix of ranks 0..i from i − 1
/// piece by piece, folds in its own elements and passes each piece on to i + 1 as soon as
/// it is done. The vector crosses the WAN once, between the two ranks that straddle the
/// sites, while the ranks on either side handle the pieces before and after.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn scan_chain(
    sc: &SiteComms,
    x: Comm,
    s: *const c_void,
    r: *mut c_void,
    count: c_int,
    dt: Datatype,
    op: MpiOp,
    exclusive: bool,
    pieces: usize,
    l: Layout,
    comm: Comm,
) -> c_int {
    let n = count.max(0) as usize;
    let parts = split(n, pieces);
    let (me, last) = (sc.me, sc.n() - 1);
    let at = |p: *mut c_void, a: usize| elem(p, a, l);
    let input = if in_place(s) { r as *const c_void } else { s };
    // SAFETY: the application's buffers hold `count` elements of `dt`; scratch of its layout.
    unsafe {
        // Inclusive: the prefix arrives in `prev` and is folded into `r` (which then goes
        // on). Exclusive: the prefix arrives in `r` itself and is folded into a copy of this
        // rank's input, which goes on.
        let mut prev = Scratch::new(if !exclusive && me > 0 { n } else { 0 }, l);
        let mut acc = Scratch::new(if exclusive && me > 0 && me < last { n } else { 0 }, l);
        // Before the prefix may land in `r` (which an in-place exscan's input is).
        if exclusive && me > 0 && me < last {
            copy_elems(input, acc.buf(), n, l);
        }
        let mut recvs: Vec<Request> = Vec::with_capacity(parts.len());
        if me > 0 {
            let into = if exclusive { r } else { prev.buf() };
            for &(a, c) in &parts {
                post!(recvs, PMPI_Irecv, at(into, a), int!(c), dt, as_rank(me - 1), PIECE_TAG, x);
            }
        }
        let mut sends: Vec<Request> = Vec::with_capacity(parts.len());
        let mut send = |buf: *const c_void, c: usize| -> c_int {
            let mut q: Request = std::mem::zeroed();
            let rc = PMPI_Isend()(buf, int!(c), dt, as_rank(me + 1), PIECE_TAG, x, &mut q);
            sends.push(q);
            rc
        };
        if me == 0 {
            // The first rank's prefix is its input: pass it on (then, for a scan, copy it
            // out; an exscan leaves the first rank's result undefined).
            for &(a, c) in &parts {
                try_rc!(send(at(input as *mut c_void, a), c));
            }
            if !exclusive && !in_place(s) {
                try_rc!(user_copy(s, r, count, dt, l, comm));
            }
        } else {
            if !exclusive && !in_place(s) {
                try_rc!(user_copy(s, r, count, dt, l, comm));
            }
            for (k, &(a, c)) in parts.iter().enumerate() {
                try_rc!(PMPI_Wait()(&mut recvs[k], status_ignore()));
                let rc = if !exclusive {
                    PMPI_Reduce_local()(at(prev.buf(), a), at(r, a), int!(c), dt, op)
                } else if me < last {
                    PMPI_Reduce_local()(at(r, a), at(acc.buf(), a), int!(c), dt, op)
                } else {
                    0
                };
                if rc != 0 {
                    return rc;
                }
                if me < last {
                    try_rc!(send(if exclusive { at(acc.buf(), a) } else { at(r, a) }, c));
                }
            }
        }
        try_rc!(wait_all(&mut sends));
        sc.cross(SaOp::Scan, None, bytes(count, dt), &[]);
    }
    0
}

pub(crate) unsafe fn sa_scan(
    sc: &SiteComms,
    s: *const c_void,
    r: *mut c_void,
    count: c_int,
    dt: Datatype,
    op: MpiOp,
    comm: Comm,
) -> Option<c_int> {
    // SAFETY: forwarded.
    unsafe { scan_any(sc, s, r, count, dt, op, false, comm) }
}

pub(crate) unsafe fn sa_exscan(
    sc: &SiteComms,
    s: *const c_void,
    r: *mut c_void,
    count: c_int,
    dt: Datatype,
    op: MpiOp,
    comm: Comm,
) -> Option<c_int> {
    // SAFETY: forwarded.
    unsafe { scan_any(sc, s, r, count, dt, op, true, comm) }
}
