//! The blocking collectives, and the algorithms MPICH runs them with.

/// A blocking collective operation (MPI_Alltoallw moves as MPI_Alltoallv does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
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
    ReduceScatter,
    ReduceScatterBlock,
    Alltoall,
    Alltoallv,
    Scan,
    Exscan,
}

impl Op {
    pub const ALL: [Op; 16] = [
        Op::Barrier,
        Op::Bcast,
        Op::Reduce,
        Op::Allreduce,
        Op::Gather,
        Op::Gatherv,
        Op::Scatter,
        Op::Scatterv,
        Op::Allgather,
        Op::Allgatherv,
        Op::ReduceScatter,
        Op::ReduceScatterBlock,
        Op::Alltoall,
        Op::Alltoallv,
        Op::Scan,
        Op::Exscan,
    ];

    /// MPI's name without the `MPI_` prefix, in lower case (`reduce_scatter_block`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Barrier => "barrier",
            Op::Bcast => "bcast",
            Op::Reduce => "reduce",
            Op::Allreduce => "allreduce",
            Op::Gather => "gather",
            Op::Gatherv => "gatherv",
            Op::Scatter => "scatter",
            Op::Scatterv => "scatterv",
            Op::Allgather => "allgather",
            Op::Allgatherv => "allgatherv",
            Op::ReduceScatter => "reduce_scatter",
            Op::ReduceScatterBlock => "reduce_scatter_block",
            Op::Alltoall => "alltoall",
            Op::Alltoallv => "alltoallv",
            Op::Scan => "scan",
            Op::Exscan => "exscan",
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == s)
    }

    /// Whether the operation has a root rank.
    pub fn rooted(self) -> bool {
        matches!(self, Op::Bcast | Op::Reduce | Op::Gather | Op::Gatherv | Op::Scatter | Op::Scatterv)
    }
}

/// MPICH's intra-communicator algorithms (the CVAR value that selects one is [`Alg::cvar`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// Round k: rank i sends to i + 2^k (mod n).
    Dissemination,
    /// MPICH's binomial tree: relative rank r hangs under r minus its lowest set bit.
    Binomial,
    /// Binomial scatter of n blocks, then a ring allgather (van de Geijn).
    ScatterRingAllgather,
    /// Round k: rank i exchanges with i xor 2^k.
    RecursiveDoubling,
    /// Rabenseifner: recursive-halving reduce-scatter, recursive-doubling allgather.
    ReduceScatterAllgather,
    /// Every rank to the root (or the root to every rank) at once.
    Linear,
    /// n - 1 steps to the next rank around the ring.
    Ring,
    /// Recursive halving, the farthest partner first.
    RecursiveHalving,
    /// Step k: rank i exchanges with i xor k (n a power of two), else sends to i + k.
    Pairwise,
    /// Every pair at once.
    Scattered,
    /// Step k: to rank + 2^k, the blocks whose index has bit k set.
    Brucks,
}

impl Alg {
    /// The value of MPICH's `MPIR_CVAR_<OP>_INTRA_ALGORITHM` that selects it.
    pub fn cvar(self) -> &'static str {
        match self {
            Alg::Dissemination => "dissemination",
            Alg::Binomial => "binomial",
            Alg::ScatterRingAllgather => "scatter_ring_allgather",
            Alg::RecursiveDoubling => "recursive_doubling",
            Alg::ReduceScatterAllgather => "reduce_scatter_allgather",
            Alg::Linear => "linear",
            Alg::Ring => "ring",
            Alg::RecursiveHalving => "recursive_halving",
            Alg::Pairwise => "pairwise",
            Alg::Scattered => "scattered",
            Alg::Brucks => "brucks",
        }
    }
}
