//! The model the site-aware collectives benchmark (`main.rs` beside it) holds its
//! measurements against: for every blocking collective, the messages of the MPI library's
//! algorithm pinned for the run (MPICH 4.0.2's own, by its CVARs) and of the regrouped
//! algorithm the shim runs (inside each site first, one WAN crossing per site, through one
//! leader per site), as rounds of (from, to, bytes); and what they cost on the test bed.
//! The shim regroups a call only where `straddle_shim::regroup::pays` says so (the model
//! asks the same function, [`shim_regroups`]); elsewhere it runs the library's algorithm
//! unchanged and the model of both sides is the same.
//!
//! Cost of one call ([`cost`]), played event by event: messages follow their dependencies;
//! the connections with data under way in a WAN direction share it, and a send across
//! sites does not hold its sender; each rank sends one message at a time inside its site,
//! out of what the bed's cores move for all in-site messages together ([`Host`]); a message
//! arrives its path's latency after its last byte is out. The path figures ([`Net`]) are
//! the bed's nominal ones or, as the benchmark uses them, calibrated from messages timed on
//! the bed in the same launch ([`Link::calibrated`], [`Link::with_flows`],
//! [`Net::with_host_flows`]).

mod cost;
mod library;
mod regrouped;

pub use cost::*;
pub use library::*;
pub use regrouped::*;

/// Messages (from, to, bytes) by round: the one model's.
pub use straddle_collectives::{Msg, Rounds};

/// Rounds, and the rounds whose receivers take their messages across sites only at a later
/// round (receives posted in advance and completed there): `taken_at[k] == Some(j)`, j > k,
/// and a receiver of such a message in round k is not held in it but is ready for round j
/// no sooner than the message has arrived. Messages inside a site are not affected (phases
/// of several sites run in the same rounds). A sender is never held by its messages across
/// sites ([`cost`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub rounds: Rounds,
    pub taken_at: Vec<Option<usize>>,
}

impl std::ops::Deref for Plan {
    type Target = Rounds;
    fn deref(&self) -> &Rounds {
        &self.rounds
    }
}

impl From<Rounds> for Plan {
    fn from(rounds: Rounds) -> Plan {
        Plan { rounds, taken_at: Vec::new() }
    }
}

impl From<&Rounds> for Plan {
    fn from(rounds: &Rounds) -> Plan {
        rounds.clone().into()
    }
}

impl From<&Plan> for Plan {
    fn from(plan: &Plan) -> Plan {
        plan.clone()
    }
}

/// The blocking collectives and MPICH's algorithms: the one model's (`straddle-collectives`).
pub use straddle_collectives::{Alg, Op};

/// Up to this size the small-message pins apply (MPICH's own short-message thresholds are
/// 256 B to 12 KiB; the benchmark's sizes are 8 B, 64 KiB and 4 MiB).
pub const SMALL: u64 = 2048;

/// The algorithm pinned for `op` at `size`, and the MPICH CVAR that pins it.
pub fn mpich_pin(op: Op, size: u64) -> (Alg, &'static str) {
    let small = size <= SMALL;
    match op {
        Op::Barrier => (Alg::Dissemination, "MPIR_CVAR_BARRIER_INTRA_ALGORITHM"),
        Op::Bcast => (if small { Alg::Binomial } else { Alg::ScatterRingAllgather }, "MPIR_CVAR_BCAST_INTRA_ALGORITHM"),
        Op::Reduce => (Alg::Binomial, "MPIR_CVAR_REDUCE_INTRA_ALGORITHM"),
        Op::Allreduce => (if small { Alg::RecursiveDoubling } else { Alg::ReduceScatterAllgather }, "MPIR_CVAR_ALLREDUCE_INTRA_ALGORITHM"),
        Op::Gather => (Alg::Binomial, "MPIR_CVAR_GATHER_INTRA_ALGORITHM"),
        Op::Gatherv => (Alg::Linear, "MPIR_CVAR_GATHERV_INTRA_ALGORITHM"),
        Op::Scatter => (Alg::Binomial, "MPIR_CVAR_SCATTER_INTRA_ALGORITHM"),
        Op::Scatterv => (Alg::Linear, "MPIR_CVAR_SCATTERV_INTRA_ALGORITHM"),
        Op::Allgather => (if small { Alg::RecursiveDoubling } else { Alg::Ring }, "MPIR_CVAR_ALLGATHER_INTRA_ALGORITHM"),
        Op::Allgatherv => (if small { Alg::RecursiveDoubling } else { Alg::Ring }, "MPIR_CVAR_ALLGATHERV_INTRA_ALGORITHM"),
        Op::ReduceScatter => (if small { Alg::RecursiveHalving } else { Alg::Pairwise }, "MPIR_CVAR_REDUCE_SCATTER_INTRA_ALGORITHM"),
        Op::ReduceScatterBlock => {
            (if small { Alg::RecursiveHalving } else { Alg::Pairwise }, "MPIR_CVAR_REDUCE_SCATTER_BLOCK_INTRA_ALGORITHM")
        }
        Op::Alltoall => (if small { Alg::Brucks } else { Alg::Pairwise }, "MPIR_CVAR_ALLTOALL_INTRA_ALGORITHM"),
        Op::Alltoallv => (Alg::Scattered, "MPIR_CVAR_ALLTOALLV_INTRA_ALGORITHM"),
        Op::Scan => (Alg::RecursiveDoubling, "MPIR_CVAR_SCAN_INTRA_ALGORITHM"),
        Op::Exscan => (Alg::RecursiveDoubling, "MPIR_CVAR_EXSCAN_INTRA_ALGORITHM"),
    }
}

/// The environment that pins every collective for a launch at `size`: the device layer
/// (ch4) may not substitute its own, and an algorithm that cannot run says so.
pub fn mpich_env(size: u64) -> Vec<(String, String)> {
    let mut env = vec![
        ("MPIR_CVAR_DEVICE_COLLECTIVES".to_string(), "none".to_string()),
        ("MPIR_CVAR_COLLECTIVE_FALLBACK".to_string(), "print".to_string()),
    ];
    for op in Op::ALL {
        let (alg, var) = mpich_pin(op, size);
        env.push((var.to_string(), alg.cvar().to_string()));
    }
    env
}

/// How `collbench.c` sizes a call: (message or vector, per-rank block) in bytes.
pub fn shape(op: Op, size: f64, n: usize) -> (f64, f64) {
    let ints = (size / 4.0).floor().max(1.0) * 4.0;
    match op {
        Op::ReduceScatter | Op::ReduceScatterBlock => {
            let rb = ((ints / 4.0 / n as f64).floor()).max(1.0) * 4.0;
            (rb * n as f64, rb)
        }
        Op::Bcast | Op::Reduce | Op::Allreduce | Op::Scan | Op::Exscan => (ints, ints / n as f64),
        _ => {
            let b = (size / n as f64).floor().max(1.0);
            (b * n as f64, b)
        }
    }
}

/// `x` bytes, as the model holds them, as the integer the shim's functions and MPICH's pins
/// take: truncated toward zero (the sizes and pieces are whole numbers of bytes).
#[allow(clippy::cast_possible_truncation)] // range checked first: only a fraction is dropped
pub fn whole(x: f64) -> u64 {
    assert!((0.0..9_007_199_254_740_992.0).contains(&x), "{x} bytes: not a byte count the model can hold exactly");
    x as u64
}

/// The ranks of each site, in rank order; sites in order of their lowest rank.
pub fn sites_of(site: &[usize]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = Vec::new();
    for &s in site {
        if !order.contains(&s) {
            order.push(s);
        }
    }
    order.iter().map(|&s| (0..site.len()).filter(|&r| site[r] == s).collect()).collect()
}
/// The benchmark's layouts of 8 ranks over two sites: (name, site of each rank).
pub fn layouts() -> Vec<(&'static str, Vec<usize>)> {
    vec![
        ("interleaved", vec![0, 1, 0, 1, 0, 1, 0, 1]),
        ("blocks", vec![0, 0, 0, 0, 1, 1, 1, 1]),
        ("3+5", vec![0, 0, 0, 1, 1, 1, 1, 1]),
        ("1+7", vec![0, 1, 1, 1, 1, 1, 1, 1]),
    ]
}
