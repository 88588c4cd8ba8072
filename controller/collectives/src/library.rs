//! The library's algorithms as rounds of messages, and the one MPICH picks by default.

use crate::{Alg, Msg, Op, Rounds, Size};

/// MPICH's default algorithm for `op` among `n` ranks at `size` (its CVARs' default
/// thresholds; Open MPI's tuned component picks alike at these sizes): broadcasts from
/// 12 KiB on 8 ranks or more scatter and ring; allreduces from 2 KiB go Rabenseifner;
/// allgathers of 80 KiB in all and more ring; reduce-scatters of 512 KiB and more go
/// pairwise; all-to-alls of blocks under 256 B go Bruck, up to 32 KiB all at once, beyond
/// pairwise.
pub fn default_alg(op: Op, n: usize, size: Size) -> Alg {
    match op {
        Op::Barrier => Alg::Dissemination,
        Op::Bcast if size.msg < 12_288.0 || n < 8 => Alg::Binomial,
        Op::Bcast => Alg::ScatterRingAllgather,
        Op::Reduce | Op::Gather | Op::Scatter => Alg::Binomial,
        Op::Gatherv | Op::Scatterv => Alg::Linear,
        Op::Allreduce if size.msg < 2048.0 => Alg::RecursiveDoubling,
        Op::Allreduce => Alg::ReduceScatterAllgather,
        Op::Allgather | Op::Allgatherv if size.msg < 81_920.0 => Alg::RecursiveDoubling,
        Op::Allgather | Op::Allgatherv => Alg::Ring,
        Op::ReduceScatter | Op::ReduceScatterBlock if size.msg < 524_288.0 => Alg::RecursiveHalving,
        Op::ReduceScatter | Op::ReduceScatterBlock => Alg::Pairwise,
        Op::Alltoall if size.block < 256.0 => Alg::Brucks,
        Op::Alltoall if size.block <= 32_768.0 => Alg::Scattered,
        Op::Alltoall => Alg::Pairwise,
        Op::Alltoallv => Alg::Scattered,
        Op::Scan | Op::Exscan => Alg::RecursiveDoubling,
    }
}

/// The rounds of one call of `op` run with `alg` on `n` ranks rooted at `root`.
pub fn rounds(op: Op, alg: Alg, n: usize, root: usize, size: Size) -> Rounds {
    let mut rounds: Rounds = Vec::new();
    visit(op, alg, n, root, size, &mut |r, m| {
        if rounds.len() <= r {
            rounds.resize(r + 1, Vec::new());
        }
        rounds[r].push(m);
    });
    rounds
}

/// Every message of one call of `op` run with `alg` on `n` ranks rooted at `root`, with
/// the round it travels in: `f(round, message)`, rounds numbered from 0. Each round's
/// messages come together, and no round comes twice (rounds need not come in order).
/// What [`rounds`] collects, for callers that only count (the shim decides per call).
pub fn visit<F: FnMut(usize, Msg)>(op: Op, alg: Alg, n: usize, root: usize, size: Size, f: &mut F) {
    if n < 2 {
        return;
    }
    let root = root.min(n - 1);
    let lg = log2_ceil(n);
    let Size { msg, block } = size;
    match (op, alg) {
        (Op::Barrier, _) => {
            for k in 0..lg {
                (0..n).for_each(|i| f(k, (i, (i + (1 << k)) % n, 0.0)));
            }
        }
        (Op::Bcast, Alg::ScatterRingAllgather) => {
            let part = msg / n as f64;
            visit(Op::Scatter, Alg::Binomial, n, root, Size::of_block(part, n), f);
            ring(n, lg, n - 1, part, f);
        }
        (Op::Bcast, _) => binomial(n, root, true, |_| msg, f),
        (Op::Reduce, _) => binomial(n, root, false, |_| msg, f),
        (Op::Allreduce, Alg::ReduceScatterAllgather) => {
            // Distance 1 first with half the vector, halving; the allgather mirrors it.
            for k in 0..lg {
                xor(n, k, 1 << k, msg / (2usize << k) as f64, f);
                xor(n, 2 * lg - 1 - k, 1 << k, msg / (2usize << k) as f64, f);
            }
        }
        (Op::Allreduce | Op::Scan | Op::Exscan, _) => (0..lg).for_each(|k| xor(n, k, 1 << k, msg, f)),
        (Op::Gather | Op::Gatherv, Alg::Binomial) => binomial(n, root, false, |rel| block * subtree(n, rel) as f64, f),
        (Op::Gather | Op::Gatherv, _) => (0..n).filter(|&i| i != root).for_each(|i| f(0, (i, root, block))),
        (Op::Scatter | Op::Scatterv, Alg::Binomial) => binomial(n, root, true, |rel| block * subtree(n, rel) as f64, f),
        (Op::Scatter | Op::Scatterv, _) => (0..n).filter(|&i| i != root).for_each(|i| f(0, (root, i, block))),
        (Op::Allgather | Op::Allgatherv, Alg::Ring) => ring(n, 0, n - 1, block, f),
        // Recursive doubling: the blocks a rank holds double every round.
        (Op::Allgather | Op::Allgatherv, _) => (0..lg).for_each(|k| xor(n, k, 1 << k, block * (1usize << k) as f64, f)),
        (Op::ReduceScatter | Op::ReduceScatterBlock, Alg::RecursiveHalving) => {
            for (round, k) in (0..lg).rev().enumerate() {
                xor(n, round, 1 << k, msg * (1usize << k) as f64 / n as f64, f);
            }
        }
        // MPICH's all-to-all pairs ranks by xor where n is a power of two; its
        // reduce-scatter steps to rank + k at any n.
        (Op::Alltoall, Alg::Pairwise) if n.is_power_of_two() => (1..n).for_each(|k| xor(n, k - 1, k, block, f)),
        (Op::ReduceScatter | Op::ReduceScatterBlock | Op::Alltoall, Alg::Pairwise) => {
            for k in 1..n {
                (0..n).for_each(|i| f(k - 1, (i, (i + k) % n, block)));
            }
        }
        (Op::Alltoall, Alg::Brucks) => {
            for k in 0..lg {
                let blocks = (0..n).filter(|j| j & (1 << k) != 0).count() as f64;
                (0..n).for_each(|i| f(k, (i, (i + (1 << k)) % n, blocks * block)));
            }
        }
        (Op::Alltoall | Op::Alltoallv | Op::ReduceScatter | Op::ReduceScatterBlock, _) => {
            for i in 0..n {
                (0..n).filter(|&j| j != i).for_each(|j| f(0, (i, j, block)));
            }
        }
    }
}

/// ceil(log2(n)): the rounds of a tree or of recursive doubling.
fn log2_ceil(n: usize) -> usize {
    (usize::BITS - (n.max(1) - 1).leading_zeros()) as usize
}

/// MPICH's binomial tree over `n` ranks rooted at `root`: relative rank r hangs under r
/// minus its lowest set bit, at the level of that bit. Down (a broadcast or scatter): the
/// highest level first, parent to child; up (a reduction or gather): the lowest first,
/// child to parent. `bytes(r)` is what the edge above relative rank r carries. Rounds come
/// out one after another, each whole.
fn binomial<F: FnMut(usize, Msg)>(n: usize, root: usize, down: bool, bytes: impl Fn(usize) -> f64, f: &mut F) {
    let lg = log2_ceil(n);
    for round in 0..lg {
        let level = if down { lg - 1 - round } else { round };
        // The relative ranks whose lowest set bit is `level`.
        for rel in ((1 << level)..n).step_by(2 << level) {
            let (child, parent) = ((rel + root) % n, ((rel & (rel - 1)) + root) % n);
            f(round, if down { (parent, child, bytes(rel)) } else { (child, parent, bytes(rel)) });
        }
    }
}

/// Blocks in the binomial subtree under relative rank `rel`.
fn subtree(n: usize, rel: usize) -> usize {
    if rel == 0 {
        n
    } else {
        (1usize << rel.trailing_zeros()).min(n - rel)
    }
}

/// One round of exchanges at xor distance `d` (ranks whose partner exists).
fn xor<F: FnMut(usize, Msg)>(n: usize, round: usize, d: usize, bytes: f64, f: &mut F) {
    (0..n).filter(|&i| i ^ d < n).for_each(|i| f(round, (i, i ^ d, bytes)));
}

/// `steps` rounds from `first` on, each rank sending `chunk` to the next.
fn ring<F: FnMut(usize, Msg)>(n: usize, first: usize, steps: usize, chunk: f64, f: &mut F) {
    for s in 0..steps {
        (0..n).for_each(|i| f(first + s, (i, (i + 1) % n, chunk)));
    }
}
