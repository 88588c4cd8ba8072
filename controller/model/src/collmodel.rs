//! Collectives as site-pair traffic, from the one model of the collective algorithms
//! (`straddle-collectives`): what a reported collective sends between sites under a
//! candidate placement, run by the library's default algorithm or site-aware by the shim.

use straddle_collectives::{default_alg, leaders, Op, Rounds, Size};

use crate::collective::CollectiveOp;

pub use straddle_collectives::{cross_site, CrossSite};

/// The model's operation and one call's size for a reported collective on `n` ranks with
/// payload `bytes` (as the shim reports: the message of a broadcast or reduction, the
/// per-rank block of a gather, scatter or allgather, everything a rank sends in an
/// all-to-all). Neighbourhood collectives follow the application's own topology, which the
/// report does not carry: `None`.
fn modelled(op: CollectiveOp, n: usize, bytes: f64) -> Option<(Op, Size)> {
    let msg = |op| Some((op, Size::of_message(bytes, n)));
    let block = |op| Some((op, Size::of_block(bytes, n)));
    match op {
        CollectiveOp::Barrier => msg(Op::Barrier),
        CollectiveOp::Bcast => msg(Op::Bcast),
        CollectiveOp::Reduce => msg(Op::Reduce),
        CollectiveOp::Allreduce => msg(Op::Allreduce),
        CollectiveOp::Gather => block(Op::Gather),
        CollectiveOp::Gatherv => block(Op::Gatherv),
        CollectiveOp::Scatter => block(Op::Scatter),
        CollectiveOp::Scatterv => block(Op::Scatterv),
        CollectiveOp::Allgather => block(Op::Allgather),
        CollectiveOp::Allgatherv => block(Op::Allgatherv),
        CollectiveOp::Alltoall => msg(Op::Alltoall),
        CollectiveOp::Alltoallv | CollectiveOp::Alltoallw => msg(Op::Alltoallv),
        CollectiveOp::ReduceScatter => msg(Op::ReduceScatter),
        CollectiveOp::ReduceScatterBlock => msg(Op::ReduceScatterBlock),
        CollectiveOp::Scan => msg(Op::Scan),
        CollectiveOp::Exscan => msg(Op::Exscan),
        CollectiveOp::NeighborAllgather
        | CollectiveOp::NeighborAllgatherv
        | CollectiveOp::NeighborAlltoall
        | CollectiveOp::NeighborAlltoallv
        | CollectiveOp::NeighborAlltoallw => None,
    }
}

/// The rounds of one call of `op` on `n` ranks by the library's default algorithm.
pub fn rounds(op: CollectiveOp, n: usize, root: usize, bytes: f64) -> Rounds {
    modelled(op, n, bytes).map(|(op, size)| straddle_collectives::rounds(op, default_alg(op, n, size), n, root, size)).unwrap_or_default()
}

/// The cross-site round of one call the shim ran site-aware; `site[i]` is the site of
/// communicator rank i.
pub fn site_aware_rounds(op: CollectiveOp, site: &[usize], root: usize, bytes: f64) -> Rounds {
    modelled(op, site.len(), bytes).map(|(op, size)| leaders(op, site, root, size)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_map_onto_the_model_in_their_own_units() {
        let blocks = [0, 0, 0, 0, 1, 1, 1, 1];
        // A gather reports the per-rank block: rank 4 forwards its subtree of 4 blocks.
        let c = cross_site(&rounds(CollectiveOp::Gather, 8, 0, 100.0), &blocks, 2);
        assert_eq!((c.bytes[0][1], c.bytes[1][0], c.wan_rounds), (0.0, 400.0, 1));
        // An all-to-all reports all a rank sends (8,000: 1,000 to each rank): posted at once,
        // each rank's four remote blocks; site-aware, the same bytes in one message.
        let c = cross_site(&rounds(CollectiveOp::Alltoall, 8, 0, 8000.0), &blocks, 2);
        assert_eq!((c.bytes[0][1], c.messages[0][1], c.wan_rounds), (16000.0, 16.0, 1));
        let c = cross_site(&site_aware_rounds(CollectiveOp::Alltoall, &blocks, 0, 8000.0), &blocks, 2);
        assert_eq!((c.bytes[0][1], c.messages[0][1], c.wan_rounds), (16000.0, 1.0, 1));
        // Blocks of 100 go Bruck: three rounds, each crossing.
        assert_eq!(cross_site(&rounds(CollectiveOp::Alltoall, 8, 0, 800.0), &blocks, 2).wan_rounds, 3);
        assert!(rounds(CollectiveOp::NeighborAlltoall, 8, 0, 800.0).is_empty());
        assert!(site_aware_rounds(CollectiveOp::Bcast, &[0], 0, 8.0).is_empty());
    }
}
