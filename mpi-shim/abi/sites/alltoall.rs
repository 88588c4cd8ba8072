//! Site-aware MPI_Alltoall and MPI_Alltoallv (Open MPI HAN: `coll_han_alltoall.c`).

use super::*;

/// Alltoall(v), aggregated per pair of sites: blocks between ranks of one site go
/// directly; each rank's blocks for other sites go to its leader, which sends one message
/// per remote site to that site's leader, which hands each of its ranks its blocks.
/// `send(d)` / `recv(src)`: (count, displacement) of the block to d / from src.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn alltoall_any(
    sc: &SiteComms,
    s: *const c_void,
    st: Datatype,
    r: *mut c_void,
    rt: Datatype,
    comm: Comm,
    send: &dyn Fn(usize) -> (c_int, usize),
    recv: &dyn Fn(usize) -> (c_int, usize),
    uniform: bool,
) -> Option<c_int> {
    // SAFETY: the application's buffers, used as its call describes them.
    unsafe {
        let n = sc.n();
        let inplace = in_place(s);
        let (st, sext) = if inplace { (rt, layout(rt)?.extent) } else { (st, layout(st)?.extent) };
        let rext = layout(rt)?.extent;
        let send_src = if inplace { r as *const c_void } else { s };
        let send_of = |d: usize| if inplace { recv(d) } else { send(d) };
        // Pack everything this rank sends, in destination order.
        let mut out = Vec::new();
        let mut ssz = Vec::with_capacity(n);
        for d in 0..n {
            let before = out.len();
            let (c, disp) = send_of(d);
            ck!(pack(&mut out, at(send_src, disp, sext), c, st, comm));
            ssz.push(out.len() - before);
        }
        let soff = offsets(&ssz);
        let rsz_elem = size(type_size(rt));
        let rsz: Vec<usize> = (0..n).map(|src| recv(src).0.max(0) as usize * rsz_elem).collect();
        let roff = offsets(&rsz);
        as_int(soff[n])?;
        as_int(roff[n])?;
        let mut inbox = vec![0u8; roff[n].max(1)];
        let members = sc.members().to_vec();
        let k = members.len();
        // 1. Inside the site.
        let of_members = |v: &[usize]| members.iter().map(|&m| v[m]).collect::<Vec<usize>>();
        let (lsc, lsd) = (ints!(&of_members(&ssz)), ints!(&of_members(&soff)));
        let (lrc, lrd) = (ints!(&of_members(&rsz)), ints!(&of_members(&roff)));
        ck!(PMPI_Alltoallv()(
            out.as_ptr().cast(),
            lsc.as_ptr(),
            lsd.as_ptr(),
            byte_type(),
            inbox.as_mut_ptr().cast(),
            lrc.as_ptr(),
            lrd.as_ptr(),
            byte_type(),
            sc.local
        ));
        // 2. Block sizes of every member, at the leader: sent (to each rank) and received
        // (from each rank), member-major.
        let (all_ssz, all_rsz) = if uniform {
            (ssz.repeat(k), rsz.repeat(k))
        } else {
            let a = match gather_vectors(sc, &ssz) {
                Ok(v) => v,
                Err(rc) => return Some(rc),
            };
            let b = match gather_vectors(sc, &rsz) {
                Ok(v) => v,
                Err(rc) => return Some(rc),
            };
            (a, b)
        };
        let remote: Vec<usize> = (0..sc.g.groups.len()).filter(|&h| h != sc.mine).collect();
        // 3. Each member's blocks for remote sites, in (site, rank) order, to the leader.
        let mut far = Vec::with_capacity(1);
        for &h in &remote {
            for &b in &sc.g.groups[h] {
                far.extend_from_slice(&out[soff[b]..soff[b + 1]]);
            }
        }
        let leader = sc.is_leader();
        let far_sizes: Vec<usize> = if leader {
            (0..k).map(|i| remote.iter().flat_map(|&h| sc.g.groups[h].iter()).map(|&b| all_ssz[i * n + b]).sum()).collect()
        } else {
            vec![0; k]
        };
        let fo = offsets(&far_sizes);
        let mut gathered = vec![0u8; if leader { fo[k].max(1) } else { 1 }];
        ck!(PMPI_Gatherv()(
            far.as_ptr().cast(),
            int!(far.len()),
            byte_type(),
            gathered.as_mut_ptr().cast(),
            ints!(&far_sizes).as_ptr(),
            ints!(&fo[..k]).as_ptr(),
            byte_type(),
            sc.lead_local(),
            sc.local
        ));
        // 4. Leaders: one message per remote site, (member, destination) order.
        let mut mine_remote = Vec::new();
        let mut back_sizes = vec![0usize; k];
        if let Some(x) = sc.leaders {
            let sites = sc.g.groups.len();
            // Where member i's block for rank b sits in `gathered`.
            let block_at = |i: usize, b: usize| -> (usize, usize) {
                let mut p = fo[i];
                for &h in &remote {
                    for &bb in &sc.g.groups[h] {
                        let len = all_ssz[i * n + bb];
                        if bb == b {
                            return (p, len);
                        }
                        p += len;
                    }
                }
                (p, 0)
            };
            let mut xsend = Vec::new();
            let mut xsc = vec![0usize; sites];
            for &h in &remote {
                let before = xsend.len();
                for i in 0..k {
                    for &b in &sc.g.groups[h] {
                        let (p, len) = block_at(i, b);
                        xsend.extend_from_slice(&gathered[p..p + len]);
                    }
                }
                xsc[h] = xsend.len() - before;
            }
            // What each remote site sends here: its ranks' blocks for my members, by the
            // sizes my members expect.
            let mut xrc = vec![0usize; sites];
            for &h in &remote {
                xrc[h] = sc.g.groups[h].iter().map(|&src| (0..k).map(|j| all_rsz[j * n + src]).sum::<usize>()).sum();
            }
            let xso = offsets(&xsc);
            let xro = offsets(&xrc);
            let mut xrecv = vec![0u8; xro[sites].max(1)];
            xsend.resize(xsend.len().max(1), 0);
            ck!(PMPI_Alltoallv()(
                xsend.as_ptr().cast(),
                ints!(&xsc).as_ptr(),
                ints!(&xso[..sites]).as_ptr(),
                byte_type(),
                xrecv.as_mut_ptr().cast(),
                ints!(&xrc).as_ptr(),
                ints!(&xro[..sites]).as_ptr(),
                byte_type(),
                x
            ));
            sc.cross(SaOp::Alltoall, None, xsc.iter().sum::<usize>() as u64, &[]);
            // 5. Re-sort per member: for each remote site, for each of its ranks.
            let mut per_member: Vec<Vec<u8>> = vec![Vec::new(); k];
            for &h in &remote {
                let mut p = xro[h];
                for &src in &sc.g.groups[h] {
                    for (j, pm) in per_member.iter_mut().enumerate() {
                        let len = all_rsz[j * n + src];
                        pm.extend_from_slice(&xrecv[p..p + len]);
                        p += len;
                    }
                }
            }
            for (j, pm) in per_member.iter().enumerate() {
                back_sizes[j] = pm.len();
            }
            mine_remote = per_member.concat();
        }
        let bo = offsets(&back_sizes);
        let my_far: usize = remote.iter().flat_map(|&h| sc.g.groups[h].iter()).map(|&src| rsz[src]).sum();
        let mut back = vec![0u8; my_far.max(1)];
        mine_remote.resize(mine_remote.len().max(1), 0);
        ck!(PMPI_Scatterv()(
            mine_remote.as_ptr().cast(),
            ints!(&back_sizes).as_ptr(),
            ints!(&bo[..k]).as_ptr(),
            byte_type(),
            back.as_mut_ptr().cast(),
            int!(my_far),
            byte_type(),
            sc.lead_local(),
            sc.local
        ));
        let mut p = 0;
        for &h in &remote {
            for &src in &sc.g.groups[h] {
                inbox[roff[src]..roff[src + 1]].copy_from_slice(&back[p..p + rsz[src]]);
                p += rsz[src];
            }
        }
        // 6. Unpack every block where the caller wants it.
        for src in 0..n {
            let (c, d) = recv(src);
            ck!(unpack(&inbox[roff[src]..roff[src + 1]], at(r, d, rext), c, rt, comm));
        }
    }
    Some(0)
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_alltoall(
    sc: &SiteComms,
    s: *const c_void,
    scnt: c_int,
    st: Datatype,
    r: *mut c_void,
    rcnt: c_int,
    rt: Datatype,
    comm: Comm,
) -> Option<c_int> {
    let sblock = scnt.max(0) as usize;
    let rblock = rcnt.max(0) as usize;
    // SAFETY: forwarded.
    if !sc.worth(SaOp::Alltoall, None, unsafe { bytes(rcnt, rt) }) {
        return None;
    }
    // SAFETY: forwarded.
    unsafe { alltoall_any(sc, s, st, r, rt, comm, &|d| (scnt, d * sblock), &|src| (rcnt, src * rblock), true) }
}

#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sa_alltoallv(
    sc: &SiteComms,
    s: *const c_void,
    scs: *const c_int,
    sd: *const c_int,
    st: Datatype,
    r: *mut c_void,
    rcs: *const c_int,
    rd: *const c_int,
    rt: Datatype,
    comm: Comm,
) -> Option<c_int> {
    // Posted at once by the library: one WAN crossing, the same bytes (see `sa_gatherv`).
    if !sc.always {
        return None;
    }
    // SAFETY: every rank passes one count and displacement per rank (send ones ignored
    // when in place).
    unsafe {
        alltoall_any(
            sc,
            s,
            st,
            r,
            rt,
            comm,
            &|d| if in_place(s) { (0, 0) } else { (*scs.add(d), *sd.add(d) as usize) },
            &|src| (*rcs.add(src), *rd.add(src) as usize),
            false,
        )
    }
}
