//! What crosses sites when the shim runs a call site-aware: the work inside each site
//! never crosses; between sites, one exchange among the sites' heads (the root for its
//! own site, a leader for every other), directly from each head to the heads that need
//! its site's data. Which member heads a site does not change what crosses.

use crate::{default_alg, rounds, Msg, Op, Rounds, Size};

/// The cross-site round of one call of `op` run site-aware; `site[i]` is the site of
/// communicator rank i. Each site's head is taken as the root for the root's site and the
/// lowest rank elsewhere. The operations the shim leaves to the library (Gatherv,
/// Scatterv, Alltoallv: posted at once, one copy per rank already) get the library's rounds.
pub fn leaders(op: Op, site: &[usize], root: usize, size: Size) -> Rounds {
    let n = site.len();
    if n < 2 {
        return vec![];
    }
    let root = root.min(n - 1);
    let mut sites: Vec<usize> = Vec::new();
    for &s in site {
        if !sites.contains(&s) {
            sites.push(s);
        }
    }
    let members = |s: usize| site.iter().filter(|&&x| x == s).count() as f64;
    let root_site = site[root];
    let head = |s: usize| if s == root_site { root } else { site.iter().position(|&x| x == s).unwrap_or(0) };
    let others = |from: usize| sites.iter().copied().filter(move |&s| s != from);
    // From every site to every other: what site a sends site b.
    let all_pairs = |bytes: &dyn Fn(usize, usize) -> f64| -> Vec<Msg> {
        sites.iter().flat_map(|&a| others(a).map(move |b| (head(a), head(b), bytes(a, b)))).collect()
    };
    let Size { msg, block } = size;
    let round: Vec<Msg> = match op {
        Op::Barrier => all_pairs(&|_, _| 0.0),
        Op::Bcast => others(root_site).map(|b| (root, head(b), msg)).collect(),
        Op::Reduce => others(root_site).map(|a| (head(a), root, msg)).collect(),
        Op::Allreduce => all_pairs(&|_, _| msg),
        Op::Gather => others(root_site).map(|a| (head(a), root, block * members(a))).collect(),
        Op::Scatter => others(root_site).map(|b| (root, head(b), block * members(b))).collect(),
        Op::Allgather | Op::Allgatherv => all_pairs(&|a, _| block * members(a)),
        // Every rank of a sends a block to every rank of b, in one message per site pair.
        Op::Alltoall => all_pairs(&|a, b| block * members(a) * members(b)),
        // Each site's reduced vector goes out in the segments of the other sites' ranks.
        Op::ReduceScatter | Op::ReduceScatterBlock => all_pairs(&|_, b| block * members(b)),
        // Each site's total goes to the heads of the sites after it.
        Op::Scan | Op::Exscan => {
            sites.iter().enumerate().flat_map(|(i, &a)| sites[i + 1..].iter().map(move |&b| (head(a), head(b), msg))).collect()
        }
        Op::Gatherv | Op::Scatterv | Op::Alltoallv => return rounds(op, default_alg(op, n, size), n, root, size),
    };
    if round.is_empty() {
        vec![]
    } else {
        vec![round]
    }
}
