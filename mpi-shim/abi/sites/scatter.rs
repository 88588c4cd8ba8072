//! Site-aware MPI_Scatter and MPI_Scatterv (Open MPI HAN: `coll_han_scatter.c`).

use super::*;

/// Scatter and Scatterv: the root packs every block in site order and sends every other
/// site's head its site's blob (above DIRECT_SITES sites: hands it all to its leader, and
/// the leaders scatter one blob per site); each head scatters inside its site.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn scatter_any(
    sc: &SiteComms,
    s: *const c_void,
    st: Datatype,
    r: *mut c_void,
    rcnt: c_int,
    rt: Datatype,
    root: usize,
    comm: Comm,
    send: &dyn Fn(usize) -> (c_int, usize),
    uniform: Option<usize>,
) -> Option<c_int> {
    // SAFETY: the application's buffers, used as its call describes them.
    unsafe {
        let me = sc.me;
        let rg = sc.g.group_of[root];
        let rl = sc.leader(rg);
        let inplace = me == root && in_place(r);
        let mine_len = size(if inplace { bytes(send(root).0, st) } else { bytes(rcnt, rt) });
        let head = sc.head(sc.mine, root);
        let member_sizes = match member_sizes(sc, uniform, mine_len, head) {
            Ok(v) => v,
            Err(rc) => return Some(rc),
        };
        let mo = offsets(&member_sizes);
        let site_len = mo[mo.len() - 1];
        let mut totals: Vec<u64> = vec![0; sc.g.groups.len()];
        let mut all = Vec::new();
        if me == root {
            let sext = layout(st)?.extent;
            for m in &sc.g.groups {
                for &rank in m {
                    let (c, d) = send(rank);
                    ck!(pack(&mut all, at(s, d, sext), c, st, comm));
                }
            }
            let sz = size(type_size(st));
            totals = sc.site_sums(|m| send(m).0.max(0) as usize * sz).into_iter().map(|x| x as u64).collect();
        }
        if let Some(b) = uniform {
            totals = sc.g.groups.iter().map(|m| (m.len() * b) as u64).collect();
        } else if sc.cross.is_none() {
            ck!(handover(sc, totals.as_mut_ptr().cast(), int!(8 * totals.len()), byte_type(), root, rl, SIZES_TAG));
        }
        let to = offsets(&totals.iter().map(|&t| size(t)).collect::<Vec<_>>());
        let total = to[to.len() - 1];
        let mut site_blob = vec![0u8; site_len.max(1)];
        if let Some(x) = sc.cross {
            // The root sends every other site's head that site's blocks.
            if me == root {
                let own = site_len.min(to[rg + 1] - to[rg]);
                site_blob[..own].copy_from_slice(&all[to[rg]..to[rg] + own]);
                let mut reqs: Vec<Request> = Vec::with_capacity(sc.g.groups.len());
                for h in (0..sc.g.groups.len()).filter(|&h| h != rg) {
                    let mut q: Request = std::mem::zeroed();
                    let len = int!(to[h + 1] - to[h]);
                    ck!(PMPI_Isend()(all.as_ptr().add(to[h]).cast(), len, byte_type(), as_rank(sc.head(h, root)), LEADERS_TAG, x, &mut q));
                    reqs.push(q);
                }
                ck!(wait_all(&mut reqs));
            } else if me == head {
                ck!(PMPI_Recv()(
                    site_blob.as_mut_ptr().cast(),
                    int!(site_len),
                    byte_type(),
                    as_rank(root),
                    LEADERS_TAG,
                    x,
                    status_ignore()
                ));
            }
        } else {
            if me == rl && me != root {
                all = vec![0u8; total];
            }
            all.resize(all.len().max(1), 0);
            ck!(handover(sc, all.as_mut_ptr().cast(), int!(total), byte_type(), root, rl, HANDOVER_TAG));
        }
        if let (None, Some(x)) = (sc.cross, sc.leaders) {
            ck!(PMPI_Scatterv()(
                all.as_ptr().cast(),
                ints!(&totals).as_ptr(),
                ints!(&to[..to.len() - 1]).as_ptr(),
                byte_type(),
                site_blob.as_mut_ptr().cast(),
                int!(site_len),
                byte_type(),
                as_rank(rg),
                x
            ));
        }
        if me == head && sc.mine == rg {
            sc.cross(SaOp::Scatter, Some(root), 0, &totals);
        }
        let mut mine = vec![0u8; mine_len.max(1)];
        ck!(PMPI_Scatterv()(
            site_blob.as_ptr().cast(),
            ints!(&member_sizes).as_ptr(),
            ints!(&mo[..mo.len() - 1]).as_ptr(),
            byte_type(),
            mine.as_mut_ptr().cast(),
            int!(mine_len),
            byte_type(),
            sc.local_rank[head],
            sc.local
        ));
        if !inplace {
            ck!(unpack(&mine[..mine_len], r, rcnt, rt, comm));
        }
    }
    Some(0)
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_scatter(
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
        let block = size(if sc.me == root { bytes(scnt, st) } else { bytes(rcnt, rt) });
        as_int(block * sc.n())?;
        if !sc.worth(SaOp::Scatter, Some(root), (block * sc.n()) as u64) {
            return None;
        }
        scatter_any(sc, s, st, r, rcnt, rt, root, comm, &|m| (scnt, m * scnt.max(0) as usize), Some(block))
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_scatterv(
    sc: &SiteComms,
    s: *const c_void,
    scs: *const c_int,
    displs: *const c_int,
    st: Datatype,
    r: *mut c_void,
    rcnt: c_int,
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
        scatter_any(sc, s, st, r, rcnt, rt, root, comm, &|m| if me == root { (*scs.add(m), *displs.add(m) as usize) } else { (0, 0) }, None)
    }
}
