//! The MPI library's algorithms (MPICH 4.0.2's, as pinned) as rounds of messages: the one
//! model's (`straddle-collectives`), sized as `collbench.c` sizes a call.

use super::{shape, Alg, Op, Rounds};
use straddle_collectives::Size;

/// The rounds of one call of `op` with algorithm `alg` on `n` ranks, root `root`; `size` as
/// `collbench.c` defines it.
pub fn library(op: Op, alg: Alg, n: usize, root: usize, size: f64) -> Rounds {
    let (msg, block) = shape(op, size, n);
    straddle_collectives::rounds(op, alg, n, root, Size { msg, block })
}
