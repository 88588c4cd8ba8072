//! Site-aware MPI_Gather and MPI_Gatherv (Open MPI HAN: `coll_han_gather.c`).

use super::*;

/// Gather and Gatherv: each site packs its blocks at its head (the root in its own site),
/// the other heads send theirs straight to the root (above DIRECT_SITES sites: the
/// leaders gather to the root's leader, which hands everything to the root) to unpack. `recv` gives the
/// root's (count, displacement) of each rank's block; `mine` this rank's block size.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gather_any(
    sc: &SiteComms,
    s: *const c_void,
    sc_: c_int,
    st: Datatype,
    r: *mut c_void,
    rt: Datatype,
    root: usize,
    comm: Comm,
    recv: &dyn Fn(usize) -> (c_int, usize),
    uniform: Option<usize>,
) -> Option<c_int> {
    // SAFETY: the application's buffers, used as its call describes them.
    unsafe {
        let me = sc.me;
        let rg = sc.g.group_of[root];
        let rl = sc.leader(rg);
        let inplace = me == root && in_place(s);
        let rext = if me == root { layout(rt)?.extent } else { 1 };
        let mut mine = Vec::new();
        if inplace {
            let (c, d) = recv(root);
            ck!(pack(&mut mine, at(r, d, rext), c, rt, comm));
        } else {
            ck!(pack(&mut mine, s, sc_, st, comm));
        }
        // Member block sizes at the site's head.
        let head = sc.head(sc.mine, root);
        let member_sizes = match member_sizes(sc, uniform, mine.len(), head) {
            Ok(v) => v,
            Err(rc) => return Some(rc),
        };
        let mo = offsets(&member_sizes);
        let site_len = mo[mo.len() - 1];
        let mut site_blob = vec![0u8; if me == head { site_len.max(1) } else { 1 }];
        ck!(PMPI_Gatherv()(
            mine.as_ptr().cast(),
            int!(mine.len()),
            byte_type(),
            site_blob.as_mut_ptr().cast(),
            ints!(&member_sizes).as_ptr(),
            ints!(&mo[..mo.len() - 1]).as_ptr(),
            byte_type(),
            sc.local_rank[head],
            sc.local
        ));
        // Site totals at the root's leader: known to everyone for Gather, from the root's
        // counts for Gatherv.
        let mut totals: Vec<u64> = match uniform {
            Some(b) => sc.g.groups.iter().map(|m| (m.len() * b) as u64).collect(),
            None if me == root => {
                let sz = size(type_size(rt));
                sc.site_sums(|m| recv(m).0.max(0) as usize * sz).into_iter().map(|x| x as u64).collect()
            }
            None => vec![0; sc.g.groups.len()],
        };
        if uniform.is_none() && sc.cross.is_none() {
            ck!(handover(sc, totals.as_mut_ptr().cast(), int!(8 * totals.len()), byte_type(), root, rl, SIZES_TAG));
        }
        let to = offsets(&totals.iter().map(|&t| size(t)).collect::<Vec<_>>());
        let total = to[to.len() - 1];
        let holds = me == root || (sc.cross.is_none() && me == rl);
        let mut all = vec![0u8; if holds { total.max(1) } else { 1 }];
        if let Some(x) = sc.cross {
            // Every other site's head sends its site's blocks straight to the root.
            if me == root {
                let own = site_len.min(to[rg + 1] - to[rg]);
                all[to[rg]..to[rg] + own].copy_from_slice(&site_blob[..own]);
                let base = all.as_mut_ptr();
                let mut reqs: Vec<Request> = Vec::with_capacity(sc.g.groups.len());
                for h in (0..sc.g.groups.len()).filter(|&h| h != rg) {
                    let mut q: Request = std::mem::zeroed();
                    let len = int!(to[h + 1] - to[h]);
                    ck!(PMPI_Irecv()(base.add(to[h]).cast(), len, byte_type(), as_rank(sc.head(h, root)), LEADERS_TAG, x, &mut q));
                    reqs.push(q);
                }
                ck!(wait_all(&mut reqs));
            } else if me == head {
                ck!(PMPI_Send()(site_blob.as_ptr().cast(), int!(site_len), byte_type(), as_rank(root), LEADERS_TAG, x));
            }
        } else if let Some(x) = sc.leaders {
            ck!(PMPI_Gatherv()(
                site_blob.as_ptr().cast(),
                int!(site_len),
                byte_type(),
                all.as_mut_ptr().cast(),
                ints!(&totals).as_ptr(),
                ints!(&to[..to.len() - 1]).as_ptr(),
                byte_type(),
                as_rank(rg),
                x
            ));
        }
        if me == head && sc.mine != rg {
            let sb: Vec<u64> = (0..sc.g.groups.len()).map(|h| if h == sc.mine { site_len as u64 } else { 0 }).collect();
            sc.cross(SaOp::Gather, Some(root), 0, &sb);
        }
        if sc.cross.is_none() {
            ck!(handover(sc, all.as_mut_ptr().cast(), int!(total), byte_type(), rl, root, HANDOVER_TAG));
        }
        if me == root {
            let sz = size(type_size(rt));
            let mut pos = 0;
            for m in &sc.g.groups {
                for &rank in m {
                    let (c, d) = recv(rank);
                    let len = uniform.unwrap_or(c.max(0) as usize * sz);
                    if !(inplace && rank == root) {
                        ck!(unpack(&all[pos..pos + len], at(r, d, rext), c, rt, comm));
                    }
                    pos += len;
                }
            }
        }
    }
    Some(0)
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_gather(
    sc: &SiteComms,
    s: *const c_void,
    scnt: c_int,
    st: Datatype,
    r: *mut c_void,
    rcnt: c_int,
    rt: Datatype,
    root: c_int,
    comm: Comm,
) -> Option<c_int> {
    let root = sc.root(root)?;
    // SAFETY: forwarded.
    unsafe {
        let block = size(if sc.me == root { bytes(rcnt, rt) } else { bytes(scnt, st) });
        as_int(block * sc.n())?;
        if !sc.worth(SaOp::Gather, Some(root), (block * sc.n()) as u64) {
            return None;
        }
        gather_any(sc, s, scnt, st, r, rt, root, comm, &|m| (rcnt, m * rcnt.max(0) as usize), Some(block))
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_gatherv(
    sc: &SiteComms,
    s: *const c_void,
    scnt: c_int,
    st: Datatype,
    r: *mut c_void,
    rcs: *const c_int,
    displs: *const c_int,
    rt: Datatype,
    root: c_int,
    comm: Comm,
) -> Option<c_int> {
    // The library posts these at once (one WAN crossing, one copy per rank): nothing to
    // gain unless asked to regroup always.
    if !sc.always {
        return None;
    }
    let root = sc.root(root)?;
    let me = sc.me;
    // SAFETY: the root passes one count and displacement per rank.
    unsafe {
        gather_any(sc, s, scnt, st, r, rt, root, comm, &|m| if me == root { (*rcs.add(m), *displs.add(m) as usize) } else { (0, 0) }, None)
    }
}
