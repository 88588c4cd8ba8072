//! The collective operations a rank reports, and how it called them.

use serde::Serialize;

/// An MPI collective operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectiveOp {
    Barrier,
    Bcast,
    Reduce,
    Allreduce,
    Gather,
    Gatherv,
    Scatter,
    Scatterv,
    Allgather,
    Allgatherv,
    Alltoall,
    Alltoallv,
    Alltoallw,
    ReduceScatter,
    ReduceScatterBlock,
    Scan,
    Exscan,
    NeighborAllgather,
    NeighborAllgatherv,
    NeighborAlltoall,
    NeighborAlltoallv,
    NeighborAlltoallw,
}

impl CollectiveOp {
    /// Every operation, in the contract's order.
    pub const ALL: [CollectiveOp; 22] = [
        CollectiveOp::Barrier,
        CollectiveOp::Bcast,
        CollectiveOp::Reduce,
        CollectiveOp::Allreduce,
        CollectiveOp::Gather,
        CollectiveOp::Gatherv,
        CollectiveOp::Scatter,
        CollectiveOp::Scatterv,
        CollectiveOp::Allgather,
        CollectiveOp::Allgatherv,
        CollectiveOp::Alltoall,
        CollectiveOp::Alltoallv,
        CollectiveOp::Alltoallw,
        CollectiveOp::ReduceScatter,
        CollectiveOp::ReduceScatterBlock,
        CollectiveOp::Scan,
        CollectiveOp::Exscan,
        CollectiveOp::NeighborAllgather,
        CollectiveOp::NeighborAllgatherv,
        CollectiveOp::NeighborAlltoall,
        CollectiveOp::NeighborAlltoallv,
        CollectiveOp::NeighborAlltoallw,
    ];

    /// Whether the operation has a root rank.
    pub fn rooted(self) -> bool {
        matches!(
            self,
            CollectiveOp::Bcast
                | CollectiveOp::Reduce
                | CollectiveOp::Gather
                | CollectiveOp::Gatherv
                | CollectiveOp::Scatter
                | CollectiveOp::Scatterv
        )
    }
}

/// How a rank called a collective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectiveMode {
    Blocking,
    Nonblocking,
    /// Counted at each `MPI_Start`.
    Persistent,
    /// Blocking, run site-aware by the shim: inside each site, across the WAN once per site.
    SiteAware,
}
