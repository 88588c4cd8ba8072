//! The regrouped algorithms as the shim composes them, and where it runs them.

use super::{library, mpich_pin, shape, sites_of, whole, Alg, Msg, Op, Plan, Rounds};

/// Runs `rounds` (indices into `members`) as rounds of the whole communicator.
fn lift(rounds: Rounds, members: &[usize]) -> Rounds {
    rounds.into_iter().map(|r| r.into_iter().map(|(a, b, x)| (members[a], members[b], x)).collect()).collect()
}

/// Phases that run at the same time (one per site): round k of each together.
fn concurrent(phases: Vec<Rounds>) -> Rounds {
    let len = phases.iter().map(Vec::len).max().unwrap_or(0);
    (0..len).map(|k| phases.iter().flat_map(|p| p.get(k).cloned().unwrap_or_default()).collect()).collect()
}

/// The same library algorithm on every site's communicator at once; `root_of(g)` is the
/// root (index into the site) and `size_of(g)` the size argument for site g.
fn per_site(op: Op, sites: &[Vec<usize>], root_of: impl Fn(usize) -> usize, size_of: impl Fn(usize) -> f64) -> Rounds {
    concurrent(
        sites
            .iter()
            .enumerate()
            .map(|(g, m)| lift(library(op, mpich_pin(op, whole(size_of(g))).0, m.len(), root_of(g), size_of(g)), m))
            .collect(),
    )
}

/// Every site reduces a piece of `x` bytes to its rank `root_of(g)` along a chain of its
/// ranks (the shim's `Chain`): the ranks below the root pass it up one hop at a time, the
/// ranks above pass it down, both chains at once.
pub(crate) fn per_site_chain(sites: &[Vec<usize>], root_of: impl Fn(usize) -> usize, x: f64) -> Rounds {
    concurrent(
        sites
            .iter()
            .enumerate()
            .map(|(g, m)| {
                let to = root_of(g);
                let up: Vec<Msg> = (0..to).map(|i| (m[i], m[i + 1], x)).collect();
                let down: Vec<Msg> = (to + 1..m.len()).rev().map(|i| (m[i], m[i - 1], x)).collect();
                (0..up.len().max(down.len())).map(|t| up.get(t).into_iter().chain(down.get(t)).copied().collect()).collect()
            })
            .collect(),
    )
}

/// The shim's pieces of a vector of `msg` bytes of `MPI_INT` (what collbench reduces and
/// scans) split in `pieces`: elements evenly, the last piece what is left.
fn piece_sizes(msg: f64, pieces: usize) -> Vec<f64> {
    let elems = usize::try_from(whole((msg / 4.0).round())).expect("a vector's elements fit in usize");
    let step = elems.div_ceil(pieces.max(1)).max(1);
    (0..elems).step_by(step).map(|a| 4.0 * step.min(elems - a) as f64).collect()
}

/// The pieces a site's blob of `len` bytes crosses in (the shim's `blob_pieces`): as
/// [`pipeline_pieces`] says, one below its threshold.
fn blob_pieces(len: f64) -> Vec<f64> {
    let k = pipeline_pieces(whole(len)).unwrap_or(1) as f64;
    let step = (len / k).ceil().max(1.0);
    let mut v = Vec::new();
    let mut a = 0.0;
    while a < len {
        v.push(step.min(len - a));
        a += step;
    }
    v
}

/// The shim's limit for the heads' direct exchange: up to this many sites the heads of a
/// broadcast, reduction, allreduce, gather, scatter or exscan send to each other directly;
/// above it the leaders call the library's collective on their communicator.
pub use straddle_shim::regroup::DIRECT_SITES;
use straddle_shim::regroup::{pipeline_pieces, scan_chain_pieces};

/// Which regrouped algorithm the model describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regroup {
    /// `STRADDLE_REGROUP=1`, as the shim does: site-aware only where [`shim_regroups`],
    /// else the library's algorithm unchanged. Leaders: direct exchange for broadcast,
    /// reductions and exscan up to [`DIRECT_SITES`] sites (one message per site pair that
    /// needs one, one WAN crossing), the library's pinned algorithm on the leaders'
    /// communicator above that and for the barrier; data movement (gathers, scatters,
    /// allgathers, reduce-scatter, all-to-all) leader to leader.
    Pays,
    /// `STRADDLE_REGROUP=always`: site-aware wherever the shim can (Gatherv, Scatterv and
    /// Alltoallv too), leaders as in `Pays`.
    #[allow(dead_code)] // the model's tests use it; the benchmark runs `Pays`
    Always,
    /// Site-aware everywhere it can be, every datum once per remote site leader to leader:
    /// the floor the bytes goal uses.
    Floor,
}

/// Whether the shim (`STRADDLE_REGROUP=1`) runs `op` site-aware under this placement: more
/// than one site and not one rank per site (`regroup::route`); scans only when every site's
/// ranks are contiguous; never Gatherv, Scatterv, Alltoallv (the library posts them at once:
/// one crossing, one copy per rank); otherwise exactly where `regroup::pays` says so, asked
/// with the arguments the shim passes it (`collbench.c`'s buffers, `MPI_SUM` commutes).
pub fn shim_regroups(op: Op, site: &[usize], root: usize, size: f64) -> bool {
    use straddle_shim::regroup::{pays, Grouping, SaOp};
    let n = site.len();
    let sites = sites_of(site);
    let contiguous = sites.iter().all(|m| m.windows(2).all(|w| w[1] == w[0] + 1));
    if sites.len() < 2 || sites.len() == n || (matches!(op, Op::Scan | Op::Exscan) && !contiguous) {
        return false;
    }
    let (msg, block) = shape(op, size, n);
    let all = block * n as f64;
    let (sa, r, bytes) = match op {
        Op::Gatherv | Op::Scatterv | Op::Alltoallv => return false,
        Op::Barrier => (SaOp::Barrier, None, 0.0),
        Op::Bcast => (SaOp::Bcast, Some(root), msg),
        Op::Reduce => (SaOp::Reduce, Some(root), msg),
        Op::Allreduce => (SaOp::Allreduce, None, msg),
        Op::Gather => (SaOp::Gather, Some(root), all),
        Op::Scatter => (SaOp::Scatter, Some(root), all),
        Op::Allgather | Op::Allgatherv => (SaOp::Allgather, None, all),
        Op::ReduceScatter | Op::ReduceScatterBlock => (SaOp::ReduceScatter, None, msg),
        // One block (the shim passes the receive count's bytes).
        Op::Alltoall => (SaOp::Alltoall, None, block),
        Op::Scan | Op::Exscan => (SaOp::Scan, None, msg),
    };
    let g = Grouping::from_sites(0, site.iter().map(|&s| s as u64).collect());
    pays(sa, &g, r, whole(bytes))
}

/// The regrouped algorithm's rounds under `how`; where the shim would not regroup (`Pays`
/// and not [`shim_regroups`]) the library's algorithm. Heads: the root speaks for its own
/// site, every other site its lowest rank (the shim's leader at epoch 0, as the benchmark
/// runs it; later epochs rotate it). Phases inside sites use the library's
/// pinned algorithm on the site's communicator. Scans stay flat unless every site's ranks
/// are contiguous; one site, or one rank per site, stays flat.
pub fn regrouped(op: Op, site: &[usize], root: usize, size: f64, how: Regroup) -> Plan {
    let n = site.len();
    let sites = sites_of(site);
    let flat = || Plan::from(library(op, mpich_pin(op, whole(size)).0, n, root, size));
    let contiguous = sites.iter().all(|m| m.windows(2).all(|w| w[1] == w[0] + 1));
    if sites.len() < 2 || sites.len() == n || (matches!(op, Op::Scan | Op::Exscan) && !contiguous) {
        return flat();
    }
    if how == Regroup::Pays && !shim_regroups(op, site, root, size) {
        return flat();
    }
    let (msg, block) = shape(op, size, n);
    let g_root = sites.iter().position(|m| m.contains(&root)).unwrap();
    let leader: Vec<usize> = sites.iter().enumerate().map(|(g, m)| if g == g_root { root } else { m[0] }).collect();
    let local_root = |g: usize| sites[g].iter().position(|&r| r == leader[g]).unwrap();
    let g_n = sites.len();
    // Leader to leader, every ordered pair that `bytes(from, to)` gives a payload.
    let wan = |bytes: &dyn Fn(usize, usize) -> Option<f64>| -> Rounds {
        let mut round = Vec::new();
        for a in 0..g_n {
            for b in (0..g_n).filter(|&b| b != a) {
                if let Some(x) = bytes(a, b) {
                    round.push((leader[a], leader[b], x));
                }
            }
        }
        vec![round]
    };
    // The leaders' step of a broadcast, reduction or exscan: `direct` (one round, one
    // message per pair it names) for the floor and, as the shim does, up to DIRECT_SITES
    // sites; the library's algorithm for `lop` on the leaders' communicator, rooted at the
    // root's site, above that.
    let lead = |lop: Op, arg: f64, direct: &dyn Fn(usize, usize) -> Option<f64>| -> Rounds {
        if how == Regroup::Floor || g_n <= DIRECT_SITES {
            wan(direct)
        } else {
            lift(library(lop, mpich_pin(lop, whole(arg)).0, g_n, g_root, arg), &leader)
        }
    };
    let mut r: Rounds = Vec::new();
    match op {
        Op::Barrier => {
            r.extend(per_site(Op::Barrier, &sites, local_root, |_| 0.0));
            // The shim calls the library's barrier among leaders at any number of sites.
            r.extend(match how {
                Regroup::Floor => wan(&|_, _| Some(0.0)),
                _ => lift(library(Op::Barrier, Alg::Dissemination, g_n, g_root, 0.0), &leader),
            });
            r.extend(per_site(Op::Bcast, &sites, local_root, |_| 0.0));
        }
        Op::Bcast if how != Regroup::Floor && g_n <= DIRECT_SITES && pipeline_pieces(whole(msg)).is_some() => {
            // In pieces: the root posts piece j to every other head and broadcasts it in
            // its own site; every other site broadcasts piece j from its head once the head
            // has it, while the later pieces cross.
            let alg = mpich_pin(Op::Bcast, whole(size)).0;
            let local = |g: usize, x: f64| lift(library(Op::Bcast, alg, sites[g].len(), local_root(g), x), &sites[g]);
            for x in piece_sizes(msg, pipeline_pieces(whole(msg)).unwrap()) {
                r.push((0..g_n).filter(|&g| g != g_root).map(|g| (root, leader[g], x)).collect());
                r.extend(concurrent((0..g_n).map(|g| local(g, x)).collect()));
            }
        }
        Op::Bcast => {
            r.extend(lead(Op::Bcast, msg, &|a, _| (a == g_root).then_some(msg)));
            r.extend(per_site(Op::Bcast, &sites, local_root, |_| msg));
        }
        Op::Reduce if how != Regroup::Floor && g_n <= DIRECT_SITES && pipeline_pieces(whole(msg)).is_some() => {
            // In pieces: every site reduces piece j to its head; every other site's head
            // sends it to the root at once and goes on with piece j + 1; the root's site
            // reduces all its pieces, then the root takes the others' as they arrive. (The
            // root's rounds come first: a rank's rounds are its own sequence, and the root
            // must not wait for a piece before its site's next reduction.)
            let alg = mpich_pin(Op::Reduce, whole(size)).0;
            let local = |g: usize, x: f64| lift(library(Op::Reduce, alg, sites[g].len(), local_root(g), x), &sites[g]);
            let sizes = piece_sizes(msg, pipeline_pieces(whole(msg)).unwrap());
            r.extend(sizes.iter().flat_map(|&x| local(g_root, x)));
            r.extend(concurrent(
                (0..g_n)
                    .filter(|&g| g != g_root)
                    .map(|g| {
                        sizes
                            .iter()
                            .flat_map(|&x| {
                                let mut v = local(g, x);
                                v.push(vec![(leader[g], root, x)]);
                                v
                            })
                            .collect()
                    })
                    .collect(),
            ));
        }
        Op::Reduce => {
            r.extend(per_site(Op::Reduce, &sites, local_root, |_| msg));
            r.extend(lead(Op::Reduce, msg, &|_, b| (b == g_root).then_some(msg)));
        }
        Op::Allreduce if how != Regroup::Floor && g_n <= DIRECT_SITES && pipeline_pieces(whole(msg)).is_some() => {
            // In pieces: every site reduces piece j to its leader along a chain of its
            // ranks, and the leader posts it to every other leader and goes on with piece
            // j + 1; then each leader, once piece j of every site is in, broadcasts it in
            // its site while later pieces still cross.
            let sizes = piece_sizes(msg, pipeline_pieces(whole(msg)).unwrap());
            let mut crossings = Vec::new();
            for &x in &sizes {
                r.extend(per_site_chain(&sites, local_root, x));
                crossings.push(r.len());
                r.extend(wan(&|_, _| Some(x)));
            }
            let mut taken_at = vec![None; r.len()];
            for (&k, &x) in crossings.iter().zip(&sizes) {
                taken_at[k] = Some(r.len());
                r.extend(per_site(Op::Bcast, &sites, local_root, |_| x));
            }
            return Plan { rounds: r, taken_at };
        }
        Op::Allreduce => {
            r.extend(per_site(Op::Reduce, &sites, local_root, |_| msg));
            r.extend(lead(Op::Allreduce, msg, &|_, _| Some(msg)));
            r.extend(per_site(Op::Bcast, &sites, local_root, |_| msg));
        }
        Op::Gather | Op::Gatherv => {
            r.extend(per_site(Op::Gatherv, &sites, local_root, |g| block * sites[g].len() as f64));
            r.extend(wan(&|a, b| (b == g_root).then_some(block * sites[a].len() as f64)));
        }
        Op::Scatter | Op::Scatterv => {
            r.extend(wan(&|a, b| (a == g_root).then_some(block * sites[b].len() as f64)));
            r.extend(per_site(Op::Scatterv, &sites, local_root, |g| block * sites[g].len() as f64));
        }
        Op::Allgather | Op::Allgatherv
            if how != Regroup::Floor && g_n <= DIRECT_SITES && pipeline_pieces(whole(block * n as f64)).is_some() =>
        {
            // Each site's blocks at its leader; every leader posts its site's blob to every
            // other leader in pieces (one round each), while each site broadcasts its own
            // blob; then each site broadcasts every remote piece, in site order, once its
            // leader has it.
            let blob = |g: usize| block * sites[g].len() as f64;
            let pieces = |g: usize| blob_pieces(blob(g));
            r.extend(per_site(Op::Gatherv, &sites, local_root, blob));
            // (round, from site, to site, piece)
            let mut crossings = Vec::new();
            for a in 0..g_n {
                for (j, &x) in pieces(a).iter().enumerate() {
                    for b in (0..g_n).filter(|&b| b != a) {
                        crossings.push((r.len(), a, b, j));
                        r.push(vec![(leader[a], leader[b], x)]);
                    }
                }
            }
            let bcast = |g: usize, x: f64| {
                lift(library(Op::Bcast, mpich_pin(Op::Bcast, whole(size)).0, sites[g].len(), local_root(g), x), &sites[g])
            };
            let mut starts = std::collections::HashMap::new();
            let lists: Vec<Rounds> = (0..g_n)
                .map(|g| {
                    let mut list = bcast(g, blob(g));
                    for h in (0..g_n).filter(|&h| h != g) {
                        for (j, &x) in pieces(h).iter().enumerate() {
                            starts.insert((h, g, j), list.len());
                            list.extend(bcast(g, x));
                        }
                    }
                    list
                })
                .collect();
            let base = r.len();
            r.extend(concurrent(lists));
            let mut taken_at = vec![None; base];
            for (k, a, b, j) in crossings {
                taken_at[k] = Some(base + starts[&(a, b, j)]);
            }
            return Plan { rounds: r, taken_at };
        }
        Op::Allgather | Op::Allgatherv => {
            r.extend(per_site(Op::Gatherv, &sites, local_root, |g| block * sites[g].len() as f64));
            r.extend(wan(&|a, _| Some(block * sites[a].len() as f64)));
            r.extend(per_site(Op::Bcast, &sites, local_root, |_| msg));
        }
        Op::ReduceScatter | Op::ReduceScatterBlock
            if how != Regroup::Floor && g_n <= DIRECT_SITES && pipeline_pieces(whole(msg)).is_some() =>
        {
            // In pieces: every site reduces each other site's segment piece by piece to its
            // leader, which posts each piece to that site's leader at once, then reduces its
            // own segment; the leaders fold their segment's pieces as they arrive and
            // scatter it in their site.
            let alg = mpich_pin(Op::Reduce, whole(size)).0;
            let seg = |g: usize| block * sites[g].len() as f64;
            let lists: Vec<Rounds> = (0..g_n)
                .map(|g| {
                    let mut list = Rounds::new();
                    for h in (0..g_n).filter(|&h| h != g).chain([g]) {
                        for x in blob_pieces(seg(h)) {
                            list.extend(lift(library(Op::Reduce, alg, sites[g].len(), local_root(g), x), &sites[g]));
                            if h != g {
                                list.push(vec![(leader[g], leader[h], x)]);
                            }
                        }
                    }
                    list
                })
                .collect();
            r.extend(concurrent(lists));
            let scatter = r.len();
            let taken_at = vec![Some(scatter); scatter];
            r.extend(per_site(Op::Scatterv, &sites, local_root, seg));
            return Plan { rounds: r, taken_at };
        }
        Op::ReduceScatter | Op::ReduceScatterBlock => {
            r.extend(per_site(Op::Reduce, &sites, local_root, |_| msg));
            r.extend(wan(&|_, b| Some(block * sites[b].len() as f64)));
            r.extend(per_site(Op::Scatterv, &sites, local_root, |g| block * sites[g].len() as f64));
        }
        Op::Alltoall | Op::Alltoallv => {
            // In-site blocks directly; remote blocks gathered per remote site, one message
            // per site pair, scattered on arrival.
            r.extend(concurrent(
                sites
                    .iter()
                    .map(|m| vec![m.iter().flat_map(|&i| m.iter().filter(move |&&j| j != i).map(move |&j| (i, j, block))).collect()])
                    .collect(),
            ));
            r.extend(concurrent(
                sites
                    .iter()
                    .enumerate()
                    .map(|(g, m)| {
                        vec![m.iter().filter(|&&i| i != leader[g]).map(|&i| (i, leader[g], block * (n - m.len()) as f64)).collect()]
                    })
                    .collect(),
            ));
            r.extend(wan(&|a, b| Some(block * (sites[a].len() * sites[b].len()) as f64)));
            r.extend(concurrent(
                sites
                    .iter()
                    .enumerate()
                    .map(|(g, m)| {
                        vec![m.iter().filter(|&&i| i != leader[g]).map(|&i| (leader[g], i, block * (n - m.len()) as f64)).collect()]
                    })
                    .collect(),
            ));
        }
        Op::Scan | Op::Exscan if how != Regroup::Floor && scan_chain_pieces(g_n, whole(msg)).is_some() => {
            // Long vectors over two sites: the pipeline along the ranks, in the shim's pieces
            // (elements split evenly, the last piece what is left). Round k carries piece j
            // from rank i to i + 1 wherever i + j = k: a rank passes a piece on once it has
            // it, while the next one arrives.
            let sizes = piece_sizes(msg, scan_chain_pieces(g_n, whole(msg)).unwrap());
            r.extend(
                (0..n - 1 + sizes.len() - 1)
                    .map(|k| (0..n - 1).filter(|&i| k >= i && k - i < sizes.len()).map(|i| (i, i + 1, sizes[k - i])).collect()),
            );
        }
        Op::Scan | Op::Exscan => {
            // Contiguous sites: scan inside, each site's last rank hands its site's total to
            // the leader, the leaders exchange the totals (directly up to DIRECT_SITES sites:
            // every leader to every later one; the library's exscan above), and each later
            // site broadcasts its prefix and adds it in.
            r.extend(per_site(Op::Scan, &sites, |_| 0, |_| msg));
            // The total of every site but the last, from its last rank to its leader.
            r.push((0..g_n - 1).map(|g| (*sites[g].last().unwrap(), leader[g], msg)).filter(|m| m.0 != m.1).collect());
            match how {
                Regroup::Floor => r.push((1..g_n).map(|g| (leader[g - 1], leader[g], msg)).collect()),
                _ if g_n <= DIRECT_SITES => r.extend(wan(&|a, b| (a < b).then_some(msg))),
                _ => r.extend(lift(library(Op::Exscan, mpich_pin(Op::Exscan, whole(size)).0, g_n, 0, msg), &leader)),
            }
            r.extend(concurrent(
                sites.iter().skip(1).map(|m| lift(library(Op::Bcast, mpich_pin(Op::Bcast, whole(size)).0, m.len(), 0, msg), m)).collect(),
            ));
        }
    }
    Plan { rounds: r, taken_at: Vec::new() }
}
