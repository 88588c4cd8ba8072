//! The MPI library's algorithms (MPICH 4.0.2's, as pinned) as rounds of messages.

use super::{shape, Alg, Msg, Op, Rounds};

fn log2_ceil(n: usize) -> usize {
    (usize::BITS - (n.max(1) - 1).leading_zeros()) as usize
}

fn by_round(edges: impl IntoIterator<Item = (usize, Msg)>) -> Rounds {
    let mut rounds: Rounds = Vec::new();
    for (r, m) in edges {
        if rounds.len() <= r {
            rounds.resize(r + 1, Vec::new());
        }
        rounds[r].push(m);
    }
    rounds
}

/// MPICH's binomial tree rooted at `root`: (child, parent, level); a broadcast runs the
/// highest level first, a reduction the lowest.
fn binomial(n: usize, root: usize) -> Vec<(usize, usize, usize)> {
    (1..n).map(|rel| ((rel + root) % n, ((rel & (rel - 1)) + root) % n, rel.trailing_zeros() as usize)).collect()
}

/// Blocks in the binomial subtree under relative rank r.
fn subtree(n: usize, rel: usize) -> usize {
    if rel == 0 {
        n
    } else {
        (1usize << rel.trailing_zeros()).min(n - rel)
    }
}

fn xor_rounds(n: usize, dists: impl IntoIterator<Item = (usize, f64)>) -> Rounds {
    dists.into_iter().map(|(d, b)| (0..n).filter_map(|i| (i ^ d < n).then_some((i, i ^ d, b))).collect()).collect()
}

fn ring(n: usize, steps: usize, chunk: f64) -> Rounds {
    (0..steps).map(|_| (0..n).map(|i| (i, (i + 1) % n, chunk)).collect()).collect()
}

/// The rounds of one call of `op` with algorithm `alg` on `n` ranks, root `root`; `size` as
/// `collbench.c` defines it.
pub fn library(op: Op, alg: Alg, n: usize, root: usize, size: f64) -> Rounds {
    if n < 2 {
        return vec![];
    }
    let lg = log2_ceil(n);
    let (msg, block) = shape(op, size, n);
    match (op, alg) {
        (Op::Barrier, _) => (0..lg).map(|k| (0..n).map(|i| (i, (i + (1 << k)) % n, 0.0)).collect()).collect(),
        (Op::Bcast, Alg::ScatterRingAllgather) => {
            let mut r = library(Op::Scatter, Alg::Binomial, n, root, msg);
            r.extend(ring(n, n - 1, msg / n as f64));
            r
        }
        (Op::Bcast, _) => by_round(binomial(n, root).into_iter().map(|(c, p, l)| (lg - 1 - l, (p, c, msg)))),
        (Op::Reduce, _) => by_round(binomial(n, root).into_iter().map(|(c, p, l)| (l, (c, p, msg)))),
        (Op::Allreduce, Alg::ReduceScatterAllgather) => {
            // Distance 1 first with half the vector, halving; the allgather mirrors it.
            let mut r = xor_rounds(n, (0..lg).map(|k| (1 << k, msg / (2 << k) as f64)));
            r.extend(xor_rounds(n, (0..lg).rev().map(|k| (1 << k, msg / (2 << k) as f64))));
            r
        }
        (Op::Allreduce | Op::Scan | Op::Exscan, _) => xor_rounds(n, (0..lg).map(|k| (1 << k, msg))),
        (Op::Gather | Op::Gatherv, Alg::Binomial) => by_round(binomial(n, root).into_iter().map(|(c, p, l)| {
            let rel = (c + n - root) % n;
            (l, (c, p, block * subtree(n, rel) as f64))
        })),
        (Op::Gather | Op::Gatherv, _) => vec![(0..n).filter(|&i| i != root).map(|i| (i, root, block)).collect()],
        (Op::Scatter | Op::Scatterv, Alg::Binomial) => by_round(binomial(n, root).into_iter().map(|(c, p, l)| {
            let rel = (c + n - root) % n;
            (lg - 1 - l, (p, c, block * subtree(n, rel) as f64))
        })),
        (Op::Scatter | Op::Scatterv, _) => vec![(0..n).filter(|&i| i != root).map(|i| (root, i, block)).collect()],
        (Op::Allgather | Op::Allgatherv, Alg::Ring) => ring(n, n - 1, block),
        (Op::Allgather | Op::Allgatherv, _) => xor_rounds(n, (0..lg).map(|k| (1 << k, block * (1 << k) as f64))),
        (Op::ReduceScatter | Op::ReduceScatterBlock, Alg::RecursiveHalving) => {
            xor_rounds(n, (0..lg).rev().map(|k| (1 << k, msg * (1 << k) as f64 / n as f64)))
        }
        // MPICH's all-to-all pairs ranks by xor where n is a power of two; its
        // reduce-scatter steps to rank + i and from rank - i at any n.
        (Op::Alltoall, Alg::Pairwise) if n.is_power_of_two() => xor_rounds(n, (1..n).map(|k| (k, block))),
        (Op::ReduceScatter | Op::ReduceScatterBlock | Op::Alltoall, Alg::Pairwise) => {
            (1..n).map(|k| (0..n).map(|i| (i, (i + k) % n, block)).collect()).collect()
        }
        (Op::Alltoall, Alg::Brucks) => {
            // Step k: to rank + 2^k, the blocks whose index has bit k set.
            (0..lg)
                .map(|k| {
                    let blocks = (0..n).filter(|j| j & (1 << k) != 0).count() as f64;
                    (0..n).map(|i| (i, (i + (1 << k)) % n, blocks * block)).collect()
                })
                .collect()
        }
        (Op::Alltoall | Op::Alltoallv | Op::ReduceScatter | Op::ReduceScatterBlock, _) => {
            vec![(0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j, block))).collect()]
        }
    }
}
