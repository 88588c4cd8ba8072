//! The model the site-aware collectives benchmark (`benches/collectives_bed.rs`) holds its
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

/// One message: from, to (communicator ranks), bytes.
pub type Msg = (usize, usize, f64);
pub type Rounds = Vec<Vec<Msg>>;

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

/// The blocking collectives the benchmark measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// The name `collbench.c` takes and prints.
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
}

/// MPICH's algorithms the benchmark pins (the CVAR value is [`Alg::cvar`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Dissemination,
    Binomial,
    /// Binomial scatter of n blocks, then a ring allgather (van de Geijn).
    ScatterRingAllgather,
    RecursiveDoubling,
    /// Rabenseifner: recursive-halving reduce-scatter, recursive-doubling allgather.
    ReduceScatterAllgather,
    /// Every rank to the root (or the root to every rank) at once.
    Linear,
    Ring,
    /// Recursive halving, the farthest partner first.
    RecursiveHalving,
    /// Step k: rank i exchanges with i XOR k (n a power of two).
    Pairwise,
    /// Every pair at once.
    Scattered,
    Brucks,
}

impl Alg {
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
            .map(|(g, m)| lift(library(op, mpich_pin(op, size_of(g) as u64).0, m.len(), root_of(g), size_of(g)), m))
            .collect(),
    )
}

/// Every site reduces a piece of `x` bytes to its rank `root_of(g)` along a chain of its
/// ranks (the shim's `Chain`): the ranks below the root pass it up one hop at a time, the
/// ranks above pass it down, both chains at once.
fn per_site_chain(sites: &[Vec<usize>], root_of: impl Fn(usize) -> usize, x: f64) -> Rounds {
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
    let elems = (msg / 4.0).round() as usize;
    let step = elems.div_ceil(pieces.max(1)).max(1);
    (0..elems).step_by(step).map(|a| 4.0 * step.min(elems - a) as f64).collect()
}

/// The pieces a site's blob of `len` bytes crosses in (the shim's `blob_pieces`): as
/// [`pipeline_pieces`] says, one below its threshold.
fn blob_pieces(len: f64) -> Vec<f64> {
    let k = pipeline_pieces(len as u64).unwrap_or(1) as f64;
    let step = (len / k).ceil().max(1.0);
    let mut v = Vec::new();
    let mut a = 0.0;
    while a < len {
        v.push(step.min(len - a));
        a += step;
    }
    v
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
    let whole = block * n as f64;
    let (sa, r, bytes) = match op {
        Op::Gatherv | Op::Scatterv | Op::Alltoallv => return false,
        Op::Barrier => (SaOp::Barrier, None, 0.0),
        Op::Bcast => (SaOp::Bcast, Some(root), msg),
        Op::Reduce => (SaOp::Reduce, Some(root), msg),
        Op::Allreduce => (SaOp::Allreduce, None, msg),
        Op::Gather => (SaOp::Gather, Some(root), whole),
        Op::Scatter => (SaOp::Scatter, Some(root), whole),
        Op::Allgather | Op::Allgatherv => (SaOp::Allgather, None, whole),
        Op::ReduceScatter | Op::ReduceScatterBlock => (SaOp::ReduceScatter, None, msg),
        // One block (the shim passes the receive count's bytes).
        Op::Alltoall => (SaOp::Alltoall, None, block),
        Op::Scan | Op::Exscan => (SaOp::Scan, None, msg),
    };
    let g = Grouping::from_sites(0, site.iter().map(|&s| s as u64).collect());
    pays(sa, &g, r, bytes as u64)
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
    let flat = || Plan::from(library(op, mpich_pin(op, size as u64).0, n, root, size));
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
            lift(library(lop, mpich_pin(lop, arg as u64).0, g_n, g_root, arg), &leader)
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
        Op::Bcast if how != Regroup::Floor && g_n <= DIRECT_SITES && pipeline_pieces(msg as u64).is_some() => {
            // In pieces: the root posts piece j to every other head and broadcasts it in
            // its own site; every other site broadcasts piece j from its head once the head
            // has it, while the later pieces cross.
            let alg = mpich_pin(Op::Bcast, size as u64).0;
            let local = |g: usize, x: f64| lift(library(Op::Bcast, alg, sites[g].len(), local_root(g), x), &sites[g]);
            for x in piece_sizes(msg, pipeline_pieces(msg as u64).unwrap()) {
                r.push((0..g_n).filter(|&g| g != g_root).map(|g| (root, leader[g], x)).collect());
                r.extend(concurrent((0..g_n).map(|g| local(g, x)).collect()));
            }
        }
        Op::Bcast => {
            r.extend(lead(Op::Bcast, msg, &|a, _| (a == g_root).then_some(msg)));
            r.extend(per_site(Op::Bcast, &sites, local_root, |_| msg));
        }
        Op::Reduce if how != Regroup::Floor && g_n <= DIRECT_SITES && pipeline_pieces(msg as u64).is_some() => {
            // In pieces: every site reduces piece j to its head; every other site's head
            // sends it to the root at once and goes on with piece j + 1; the root's site
            // reduces all its pieces, then the root takes the others' as they arrive. (The
            // root's rounds come first: a rank's rounds are its own sequence, and the root
            // must not wait for a piece before its site's next reduction.)
            let alg = mpich_pin(Op::Reduce, size as u64).0;
            let local = |g: usize, x: f64| lift(library(Op::Reduce, alg, sites[g].len(), local_root(g), x), &sites[g]);
            let sizes = piece_sizes(msg, pipeline_pieces(msg as u64).unwrap());
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
        Op::Allreduce if how != Regroup::Floor && g_n <= DIRECT_SITES && pipeline_pieces(msg as u64).is_some() => {
            // In pieces: every site reduces piece j to its leader along a chain of its
            // ranks, and the leader posts it to every other leader and goes on with piece
            // j + 1; then each leader, once piece j of every site is in, broadcasts it in
            // its site while later pieces still cross.
            let sizes = piece_sizes(msg, pipeline_pieces(msg as u64).unwrap());
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
            if how != Regroup::Floor && g_n <= DIRECT_SITES && pipeline_pieces((block * n as f64) as u64).is_some() =>
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
                lift(library(Op::Bcast, mpich_pin(Op::Bcast, size as u64).0, sites[g].len(), local_root(g), x), &sites[g])
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
            if how != Regroup::Floor && g_n <= DIRECT_SITES && pipeline_pieces(msg as u64).is_some() =>
        {
            // In pieces: every site reduces each other site's segment piece by piece to its
            // leader, which posts each piece to that site's leader at once, then reduces its
            // own segment; the leaders fold their segment's pieces as they arrive and
            // scatter it in their site.
            let alg = mpich_pin(Op::Reduce, size as u64).0;
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
        Op::Scan | Op::Exscan if how != Regroup::Floor && scan_chain_pieces(g_n, msg as u64).is_some() => {
            // Long vectors over two sites: the pipeline along the ranks, in the shim's pieces
            // (elements split evenly, the last piece what is left). Round k carries piece j
            // from rank i to i + 1 wherever i + j = k: a rank passes a piece on once it has
            // it, while the next one arrives.
            let sizes = piece_sizes(msg, scan_chain_pieces(g_n, msg as u64).unwrap());
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
                _ => r.extend(lift(library(Op::Exscan, mpich_pin(Op::Exscan, size as u64).0, g_n, 0, msg), &leader)),
            }
            r.extend(concurrent(
                sites.iter().skip(1).map(|m| lift(library(Op::Bcast, mpich_pin(Op::Bcast, size as u64).0, m.len(), 0, msg), m)).collect(),
            ));
        }
    }
    Plan { rounds: r, taken_at: Vec::new() }
}

/// One kind of path (across the WAN, or inside a site): what a single message of x bytes
/// costs alone, `latency(x) + x / rate` (the parameterised LogP form: a latency that may
/// grow with the size up to 64 KiB, a rate for the bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Latency of an 8-byte message (and smaller), s.
    pub small: f64,
    /// Latency from 64 KiB on, s (in between: linear in the size).
    pub large: f64,
    /// Bytes per second of a message that finds the path free.
    pub rate: f64,
    /// Bytes per second while the path also carries data the other way (each direction's
    /// acknowledgements then share the other direction's shaped queue; the bed sends them
    /// first, but a direction still gets somewhat less than alone).
    pub busy: f64,
}

/// The size where [`Link::large`] takes over.
const KNEE: f64 = 65536.0;

impl Link {
    pub fn nominal(latency: f64, rate: f64) -> Link {
        Link { small: latency, large: latency, rate, busy: rate }
    }

    /// From measured one-way times of single messages of 8 B, 64 KiB and 4 MiB: the rate
    /// from 64 KiB to 4 MiB, the latencies what is left of the two smaller ones (never
    /// below zero). Every measured point comes out exactly unless a latency had to be
    /// raised to zero; `None` when the figures make no sense (a larger
    /// message not slower).
    pub fn calibrated(t8: f64, t64k: f64, t4m: f64) -> Option<Link> {
        let big = 4194304.0;
        let rate = (big - KNEE) / (t4m - t64k);
        let (small, large) = ((t8 - 8.0 / rate).max(0.0), (t64k - KNEE / rate).max(0.0));
        (rate.is_finite() && rate > 0.0 && t8 > 0.0).then_some(Link { small, large, rate, busy: rate })
    }

    /// With the measured time until all of `k` messages of `bytes` each way, started at one
    /// instant in both directions, have arrived: all of them at [`Link::busy`], so the model
    /// gives that time back exactly. Unchanged when the figure makes no sense.
    pub fn with_flows(self, k: usize, bytes: f64, t_all: f64) -> Link {
        let busy = k as f64 * bytes / (t_all - self.latency(bytes));
        if k > 0 && busy.is_finite() && busy > 0.0 {
            Link { busy, ..self }
        } else {
            self
        }
    }

    pub fn latency(&self, x: f64) -> f64 {
        if x >= KNEE {
            self.large
        } else {
            self.small + (self.large - self.small) * ((x - 8.0).max(0.0) / (KNEE - 8.0))
        }
    }

    /// One message alone.
    pub fn alone(&self, x: f64) -> f64 {
        self.latency(x) + x / self.rate
    }
}

/// The bed's path figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Net {
    /// Between sites, per direction (the relay's one queue each way).
    pub wan: Link,
    /// Inside a site, per sender.
    pub lan: Link,
    /// What all in-site messages together can move at once (the CPUs that copy them are
    /// shared by every node of the bed).
    pub host: Host,
}

/// Bytes per second all in-site messages together move on the bed, by message size:
/// `small` up to 1 MiB, `large` from 4 MiB, in between linear in the time per byte (large
/// messages copy through memory rather than cache); infinite when unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Host {
    pub small: f64,
    pub large: f64,
}

const HOST_SMALL: f64 = 1048576.0;
const HOST_LARGE: f64 = 4194304.0;

impl Host {
    pub const UNLIMITED: Host = Host { small: f64::INFINITY, large: f64::INFINITY };

    pub fn at(&self, x: f64) -> f64 {
        let f = ((x - HOST_SMALL) / (HOST_LARGE - HOST_SMALL)).clamp(0.0, 1.0);
        1.0 / (1.0 / self.small + (1.0 / self.large - 1.0 / self.small) * f)
    }
}

impl Net {
    /// The bed as configured: 10 ms, 100 Mbit/s (TCP payload of 1448 per 1514-byte frame),
    /// in-site hops of 0.1 ms at 2 Gbit/s.
    pub fn bed(delay_ms: f64, rate_mbit: f64) -> Net {
        Net {
            wan: Link::nominal(delay_ms / 1e3, rate_mbit * 1e6 / 8.0 * 1448.0 / 1514.0),
            lan: Link::nominal(1e-4, 2e9 / 8.0),
            host: Host::UNLIMITED,
        }
    }

    /// With the measured time until all of the in-site messages `flows` (from, to; `bytes`
    /// each, started at one instant, ranks at `site`) have arrived: the [`Net::host`] figure
    /// for that size (`small` up to 1 MiB, else `large`) for which the model gives that time
    /// back (bisection; the model's time falls as it grows). Unlimited when they took no
    /// longer than alone; unchanged when the figure makes no sense.
    pub fn with_host_flows(self, flows: &[(usize, usize)], site: &[usize], bytes: f64, t_all: f64) -> Net {
        let rounds: Rounds = vec![flows.iter().map(|&(a, b)| (a, b, bytes)).collect()];
        let with = |rate: f64| {
            let host = if bytes <= HOST_SMALL { Host { small: rate, ..self.host } } else { Host { large: rate, ..self.host } };
            Net { host, ..self }
        };
        let time = |rate: f64| cost(&rounds, site, &with(rate)).time;
        if flows.is_empty()
            || !t_all.is_finite()
            || t_all <= 0.0
            || flows.iter().any(|&(a, b)| a >= site.len() || b >= site.len() || site[a] != site[b])
        {
            return self;
        }
        if t_all <= time(f64::INFINITY) {
            return with(f64::INFINITY);
        }
        let (mut lo, mut hi) = (1.0, flows.len() as f64 * self.lan.rate);
        if time(hi) > t_all || time(lo) < t_all {
            return self;
        }
        for _ in 0..100 {
            let mid = (lo * hi).sqrt();
            if time(mid) > t_all {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        with(hi)
    }
}

/// What the in-site messages of a call use of [`Net::host`] over time: a step function of
/// bytes per second, from `steps[i].0` until the next step's instant (0 before the first
/// and after the last).
#[derive(Debug, Default)]
struct Shared {
    steps: Vec<(f64, f64)>,
}

impl Shared {
    fn used_at(&self, t: f64) -> f64 {
        match self.steps.iter().rposition(|&(at, _)| at <= t) {
            Some(i) => self.steps[i].1,
            None => 0.0,
        }
    }

    fn cut(&mut self, t: f64) {
        if !self.steps.iter().any(|&(at, _)| at == t) {
            let used = self.used_at(t);
            let i = self.steps.partition_point(|&(at, _)| at < t);
            self.steps.insert(i, (t, used));
        }
    }

    /// Sends `x` bytes from `start` at up to `cap` bytes per second, in what the messages
    /// already placed leave of `total`; returns when the last byte is out. A message placed
    /// earlier keeps its rate (first come, first served for the capacity, not an even
    /// share: while the capacity is the limit nothing of it idles, but the last message may
    /// finish alone at `cap`, later than an even share would have it).
    fn place(&mut self, start: f64, x: f64, cap: f64, total: f64) -> f64 {
        if !total.is_finite() {
            return start + x / cap;
        }
        let (mut t, mut left) = (start, x);
        let mut parts = Vec::new();
        while left > 0.0 {
            let next = self.steps.iter().map(|&(at, _)| at).find(|&at| at > t);
            let rate = cap.min(total - self.used_at(t)).max(0.0);
            let end = if rate > 0.0 { t + left / rate } else { f64::INFINITY };
            match next {
                Some(n) if n < end => {
                    if rate > 0.0 {
                        parts.push((t, n, rate));
                        left -= (n - t) * rate;
                    }
                    t = n;
                }
                _ => {
                    parts.push((t, end, rate));
                    t = end;
                    left = 0.0;
                }
            }
        }
        for (a, b, rate) in parts {
            self.cut(a);
            self.cut(b);
            for step in self.steps.iter_mut().filter(|s| s.0 >= a && s.0 < b) {
                step.1 += rate;
            }
        }
        t
    }
}

/// What one call costs under a placement.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    /// Rounds with a message across sites: WAN latencies on the critical path.
    pub wan_hops: usize,
    /// Payload bytes from site 0 to site 1 and back (the first two sites by lowest rank).
    pub ab: f64,
    pub ba: f64,
    /// All payload bytes that crossed between any two sites.
    pub cross: f64,
    /// Predicted seconds.
    pub time: f64,
}

/// One message of a plan while [`cost`] plays it.
struct Flight {
    from: usize,
    to: usize,
    bytes: f64,
    wan: bool,
    /// WAN crossings on the path that brought its sender to it, its own included.
    hops: usize,
    /// Bytes across sites not yet out.
    left: f64,
    /// Inside a site, when its last byte is out (its sender waits for that); when it
    /// arrives, known once it is out.
    out: Option<f64>,
    arrive: Option<f64>,
}

/// How much of one connection's data a WAN direction carries before it turns to the next
/// connection with data: the largest segment a sender's TCP hands down whole (64 KiB, GSO),
/// which the bed's shaper queues and sends as one.
pub const WAN_TURN: f64 = 65536.0;

/// Evaluates `plan` with rank r at site `site[r]`, event by event. Time follows
/// dependencies, not lock step: a rank starts a round once it is ready and posts that round's
/// messages at once; it is ready for the next once every message it takes in the round has
/// arrived and its own messages inside its site are out.
///
/// - **Inside a site** each sender sends one message at a time, at most at the rate of one
///   pair and out of what [`Net::host`] leaves at its size.
/// - **Across sites** a message does not hold its sender (the socket takes it; measured on
///   the bed, a blocking 2 MiB send across returned after 0.3–2.1 ms and its data arrived
///   after 194). Each connection (ordered pair of ranks) carries its messages one after the
///   other. A WAN direction serves the connections that have data in turn, [`WAN_TURN`]
///   bytes at a time, at [`Link::rate`], or [`Link::busy`] while the other direction is
///   carrying data too: messages of up to 64 KiB cross whole in the order they were
///   posted, longer ones share the direction evenly.
///
/// A message arrives its path's latency after its last byte is out. `wan_hops` counts the
/// crossings on the path that finishes last.
pub fn cost(plan: impl Into<Plan>, site: &[usize], net: &Net) -> Cost {
    cost_served(plan, site, net, WAN_TURN)
}

/// [`cost`] with a WAN direction turning to the next connection after `wan_turn` bytes;
/// `f64::INFINITY`: whole messages, first come first served. On the bed, how one
/// direction splits between connections that have data at once depends on each
/// connection's BBR estimate of the path's rate, which follows what that connection
/// carried before: measured on rank 0's seven connections across over 1+7, all at about
/// 100 Mbit/s after the warm-up, then 24-65 for five of them while the library's
/// pairwise reduce-scatter ran, its calls taking anywhere between the two services' times
/// (BENCHMARKS.md). [`cost`] (turns) is the model; the other is printed beside it where
/// they differ.
pub fn cost_served(plan: impl Into<Plan>, site: &[usize], net: &Net, wan_turn: f64) -> Cost {
    use std::collections::{HashMap, VecDeque};
    let plan: Plan = plan.into();
    let (n, rounds) = (site.len(), plan.rounds.len());
    let mut c = Cost::default();
    let order = sites_of(site);
    let (a, b) = (order.first().map(|m| site[m[0]]).unwrap_or(usize::MAX), order.get(1).map(|m| site[m[0]]).unwrap_or(usize::MAX));
    // Every message; what each rank sends in each round; what it must have received before
    // it leaves each round (a message taken at round j, before it leaves round j - 1).
    let mut fl: Vec<Flight> = Vec::new();
    let mut sends = vec![vec![Vec::new(); rounds]; n];
    let mut needs = vec![vec![Vec::new(); rounds]; n];
    for (k, round) in plan.rounds.iter().enumerate() {
        let taken_at = plan.taken_at.get(k).copied().flatten().filter(|&j| j > k);
        for &(from, to, x) in round.iter().filter(|m| m.0 != m.1) {
            let wan = site[from] != site[to];
            if wan {
                c.cross += x;
                if (site[from], site[to]) == (a, b) {
                    c.ab += x;
                } else if (site[from], site[to]) == (b, a) {
                    c.ba += x;
                }
            }
            let leave = match (taken_at, wan) {
                (Some(j), true) => j.min(rounds) - 1,
                _ => k,
            };
            sends[from][k].push(fl.len());
            needs[to][leave].push(fl.len());
            fl.push(Flight { from, to, bytes: x, wan, hops: 0, left: x, out: None, arrive: None });
        }
    }
    if rounds == 0 {
        return c;
    }
    // Per rank: the round it is in or starts next, when it starts it (once known), when it
    // started the one it is in, the crossings behind it, when it was done.
    let mut round = vec![0usize; n];
    let mut starts: Vec<Option<f64>> = vec![Some(0.0); n];
    let mut began: Vec<Option<f64>> = vec![None; n];
    let mut hops = vec![0usize; n];
    let mut done = vec![0.0f64; n];
    let mut lan_free = vec![0.0f64; n];
    let mut host = Shared::default();
    // Each connection's messages in order; per WAN direction (site pair), the connections
    // waiting for their turn and the one being served (its message, bytes left of its turn).
    let mut queue: HashMap<(usize, usize), VecDeque<usize>> = HashMap::new();
    let mut waiting: HashMap<(usize, usize), VecDeque<(usize, usize)>> = HashMap::new();
    let mut serving: HashMap<(usize, usize), (usize, f64)> = HashMap::new();
    // Leaves its round if everything it waits for is known: starts the next at the latest of
    // those instants, or is done.
    let settle = |r: usize,
                  fl: &[Flight],
                  round: &mut [usize],
                  starts: &mut [Option<f64>],
                  began: &mut [Option<f64>],
                  hops: &mut [usize],
                  done: &mut [f64]| {
        let Some(t0) = began[r] else { return };
        let k = round[r];
        let (mut t, mut h) = (t0, hops[r]);
        for &i in &needs[r][k] {
            match fl[i].arrive {
                Some(at) if at > t => (t, h) = (at, fl[i].hops),
                Some(_) => {}
                None => return,
            }
        }
        for &i in sends[r][k].iter().filter(|&&i| !fl[i].wan) {
            match fl[i].out {
                Some(out) => t = t.max(out),
                None => return,
            }
        }
        began[r] = None;
        hops[r] = h;
        round[r] = k + 1;
        if k + 1 < rounds {
            starts[r] = Some(t);
        } else {
            done[r] = t;
        }
    };
    // Gives an idle direction's next waiting connection its turn.
    let turn = |way: (usize, usize),
                fl: &[Flight],
                queue: &HashMap<(usize, usize), VecDeque<usize>>,
                waiting: &mut HashMap<(usize, usize), VecDeque<(usize, usize)>>,
                serving: &mut HashMap<(usize, usize), (usize, f64)>| {
        if serving.contains_key(&way) {
            return;
        }
        if let Some(conn) = waiting.get_mut(&way).and_then(|w| w.pop_front()) {
            let i = queue[&conn][0];
            serving.insert(way, (i, fl[i].left.min(wan_turn)));
        }
    };
    let mut now = 0.0f64;
    loop {
        let rates: Vec<((usize, usize), f64)> = serving
            .keys()
            .map(|&(s, d)| {
                let both = serving.contains_key(&(d, s));
                ((s, d), if both { net.wan.busy } else { net.wan.rate })
            })
            .collect();
        let next_start = starts.iter().flatten().copied().fold(f64::INFINITY, f64::min);
        let t = rates.iter().map(|&(way, rate)| now + serving[&way].1 / rate).fold(next_start, f64::min);
        if !t.is_finite() {
            break;
        }
        // Bytes go out until then; the turns that end hand the direction on.
        let mut ended = Vec::new();
        for &(way, rate) in &rates {
            let (i, left) = serving.get_mut(&way).expect("a direction being served");
            if now + *left / rate <= t {
                fl[*i].left -= *left;
                ended.push((way, *i));
            } else {
                fl[*i].left -= (t - now) * rate;
                *left -= (t - now) * rate;
            }
        }
        now = t;
        for (way, i) in ended {
            serving.remove(&way);
            let conn = (fl[i].from, fl[i].to);
            if fl[i].left <= 1e-9 * fl[i].bytes.max(1.0) {
                fl[i].left = 0.0;
                fl[i].arrive = Some(now + net.wan.latency(fl[i].bytes));
                queue.get_mut(&conn).expect("a served connection has a queue").pop_front();
                settle(conn.1, &fl, &mut round, &mut starts, &mut began, &mut hops, &mut done);
            }
            if !queue[&conn].is_empty() {
                waiting.entry(way).or_default().push_back(conn);
            }
            turn(way, &fl, &queue, &mut waiting, &mut serving);
        }
        // Ranks that start a round now post its messages.
        while let Some(r) = (0..n).find(|&r| starts[r].is_some_and(|s| s <= now)) {
            let t0 = starts[r].take().expect("found with a start");
            began[r] = Some(t0);
            let mut touched = vec![r];
            for &i in &sends[r][round[r]] {
                fl[i].hops = hops[r] + fl[i].wan as usize;
                let (to, x) = (fl[i].to, fl[i].bytes);
                if fl[i].wan {
                    let way = (site[r], site[to]);
                    let q = queue.entry((r, to)).or_default();
                    q.push_back(i);
                    if q.len() == 1 {
                        waiting.entry(way).or_default().push_back((r, to));
                    }
                    turn(way, &fl, &queue, &mut waiting, &mut serving);
                } else {
                    let out = host.place(t0.max(lan_free[r]), x, net.lan.rate, net.host.at(x));
                    lan_free[r] = out;
                    fl[i].out = Some(out);
                    fl[i].arrive = Some(out + net.lan.latency(x));
                    touched.push(to);
                }
            }
            for r in touched {
                settle(r, &fl, &mut round, &mut starts, &mut began, &mut hops, &mut done);
            }
        }
    }
    let last = (0..n).max_by(|&i, &j| done[i].partial_cmp(&done[j]).unwrap()).unwrap_or(0);
    c.time = done.get(last).copied().unwrap_or(0.0);
    c.wan_hops = hops.get(last).copied().unwrap_or(0);
    c
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

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1048576.0;

    fn both(op: Op, site: &[usize], size: f64) -> (Cost, Cost) {
        let net = Net::bed(10.0, 100.0);
        let alg = mpich_pin(op, size as u64).0;
        (cost(&library(op, alg, site.len(), 0, size), site, &net), cost(&regrouped(op, site, 0, size, Regroup::Pays), site, &net))
    }

    #[test]
    fn bcast_long_interleaved_library_sends_seven_and_a_half_copies_regrouped_one() {
        let inter = [0, 1, 0, 1, 0, 1, 0, 1];
        let (lib, reg) = both(Op::Bcast, &inter, 4.0 * MIB);
        assert!(((lib.ab + lib.ba) / (4.0 * MIB) - 7.5).abs() < 1e-9, "{lib:?}");
        // The root's leader sends the other leader one copy: one crossing.
        assert_eq!((reg.ab, reg.ba, reg.wan_hops), (4.0 * MIB, 0.0, 1));
        assert!(lib.time / reg.time > 2.5, "{} vs {}", lib.time, reg.time);
        let floor = cost(&regrouped(Op::Bcast, &inter, 0, 4.0 * MIB, Regroup::Floor), &inter, &Net::bed(10.0, 100.0));
        // The floor's one copy, sent whole; the shim's goes in pieces, a little sooner.
        assert_eq!((floor.ab, floor.ba, floor.wan_hops), (reg.ab, reg.ba, reg.wan_hops));
        assert!(floor.time > reg.time, "{floor:?} against {reg:?}");
        // Short: binomial, the last level crosses, four copies in one round; one crossing
        // round and 8 B a copy, so the shim leaves it to the library.
        assert!(!shim_regroups(Op::Bcast, &inter, 0, 8.0));
        let (lib, reg) = both(Op::Bcast, &inter, 8.0);
        assert_eq!((lib.ab, lib.wan_hops), (32.0, 1));
        assert_eq!(lib, reg);
        let forced = cost(&regrouped(Op::Bcast, &inter, 0, 8.0, Regroup::Always), &inter, &Net::bed(10.0, 100.0));
        assert_eq!((forced.ab, forced.wan_hops), (8.0, 1));
    }

    #[test]
    fn rabenseifner_allreduce_crosses_where_the_distance_does() {
        let s = 4.0 * MIB;
        // Site blocks: only distance 4 crosses, S/8 per rank each way, twice: one copy each
        // way already, so the shim leaves it to the library.
        let (lib, reg) = both(Op::Allreduce, &[0, 0, 0, 0, 1, 1, 1, 1], s);
        assert_eq!((lib.ab, lib.ba, lib.wan_hops), (s, s, 2));
        assert_eq!(lib, reg);
        // Interleaved: distance 1 crosses, S/2 per rank each way, twice. Regrouped: the two
        // leaders swap their sites' partials directly, once.
        let (lib, reg) = both(Op::Allreduce, &[0, 1, 0, 1, 0, 1, 0, 1], s);
        assert_eq!((lib.ab, lib.ba, lib.wan_hops), (4.0 * s, 4.0 * s, 2));
        assert_eq!((reg.ab, reg.ba, reg.wan_hops), (s, s, 1));
        // Short: recursive doubling, every rank sends the vector to its partner, in one
        // crossing round: the shim leaves it to the library.
        let (lib, reg) = both(Op::Allreduce, &[0, 0, 0, 0, 1, 1, 1, 1], 8.0);
        assert_eq!((lib.ab, lib.wan_hops), (32.0, 1));
        assert_eq!(lib, reg);
    }

    #[test]
    fn gathers_and_alltoall_move_each_remote_block_once_when_regrouped() {
        let s = 4.0 * MIB;
        let site = [0, 0, 0, 1, 1, 1, 1, 1];
        let (_, reg) = both(Op::Gather, &site, s);
        assert_eq!((reg.ab, reg.ba, reg.wan_hops), (0.0, 5.0 * s / 8.0, 1));
        let (_, reg) = both(Op::Allgather, &site, s);
        assert_eq!((reg.ab, reg.ba), (3.0 * s / 8.0, 5.0 * s / 8.0));
        // All-to-all cannot send less: every remote block crosses once either way. From
        // 32 KiB blocks the shim leaves it to the library (the detour costs more than the
        // pairwise steps' latencies); short blocks (Bruck, crossing in every round) take one
        // WAN round regrouped.
        let (lib, reg) = both(Op::Alltoall, &site, s);
        assert_eq!(lib.ab, 15.0 * s / 8.0);
        assert_eq!(lib, reg);
        let (lib, reg) = both(Op::Alltoall, &site, 64.0);
        assert_eq!(reg.wan_hops, 1);
        assert!(lib.wan_hops >= 2);
        // Binomial over site blocks already crosses once with one copy: left alone.
        let (lib, reg) = both(Op::Scatter, &[0, 0, 0, 0, 1, 1, 1, 1], s);
        assert_eq!((lib.ab, reg.ab), (s / 2.0, s / 2.0));
        assert_eq!(lib, reg);
    }

    #[test]
    fn the_shim_regroups_only_where_its_rule_says_and_never_the_v_variants() {
        let net = Net::bed(10.0, 100.0);
        let (blocks, inter) = ([0, 0, 0, 0, 1, 1, 1, 1], [0, 1, 0, 1, 0, 1, 0, 1]);
        for op in [Op::Gatherv, Op::Scatterv, Op::Alltoallv] {
            for size in [8.0, 65536.0, 4.0 * MIB] {
                assert!(!shim_regroups(op, &inter, 0, size), "{op:?}");
                let (lib, reg) = both(op, &inter, size);
                assert_eq!(lib, reg, "{op:?} {size}");
            }
        }
        // Forced, Gatherv regroups like Gather.
        let g = cost(&regrouped(Op::Gather, &inter, 0, 4.0 * MIB, Regroup::Always), &inter, &net);
        let gv = cost(&regrouped(Op::Gatherv, &inter, 0, 4.0 * MIB, Regroup::Always), &inter, &net);
        assert_eq!(g, gv);
        // Dissemination crosses in every round over site blocks; ring allgather in n - 1.
        assert!(shim_regroups(Op::Barrier, &blocks, 0, 0.0));
        assert!(shim_regroups(Op::Allgather, &blocks, 0, 4.0 * MIB));
        assert!(!shim_regroups(Op::Bcast, &blocks, 0, 8.0));
        // One rank per site or one site: nothing to regroup.
        assert!(!shim_regroups(Op::Bcast, &[0, 1], 0, 4.0 * MIB));
        assert!(!shim_regroups(Op::Bcast, &[0; 8], 0, 4.0 * MIB));
    }

    #[test]
    fn leaders_exchange_directly_up_to_four_sites_and_with_the_library_above() {
        let net = Net::bed(10.0, 100.0);
        // Four sites of two: every leader sends its partial to the three others at once.
        let four = [0, 0, 1, 1, 2, 2, 3, 3];
        let r = regrouped(Op::Allreduce, &four, 0, 4.0 * MIB, Regroup::Always);
        let c = cost(&r, &four, &net);
        assert_eq!(c.wan_hops, 1);
        assert_eq!(c.cross, 12.0 * 4.0 * MIB);
        // Five sites: the library's Rabenseifner among leaders, more than one crossing.
        let five = [0, 0, 1, 1, 2, 2, 3, 4];
        let c = cost(&regrouped(Op::Allreduce, &five, 0, 4.0 * MIB, Regroup::Always), &five, &net);
        assert!(c.wan_hops > 1, "{c:?}");
        let floor = cost(&regrouped(Op::Allreduce, &five, 0, 4.0 * MIB, Regroup::Floor), &five, &net);
        assert_eq!(floor.wan_hops, 1);
        // Broadcast to four sites: three copies from the root's leader, one crossing.
        let c = cost(&regrouped(Op::Bcast, &four, 0, MIB, Regroup::Always), &four, &net);
        assert_eq!((c.cross, c.wan_hops), (3.0 * MIB, 1));
    }

    #[test]
    fn pairwise_reduce_scatter_steps_by_shift_and_alltoall_by_xor() {
        // MPICH: reduce-scatter's step k to rank + k; all-to-all's partner rank xor k (eight
        // ranks, a power of two). Over 3+5 the shift crosses on fewer steps of the chain.
        let s = 64.0 * 1024.0;
        let rs = library(Op::ReduceScatterBlock, Alg::Pairwise, 8, 0, s);
        let a2a = library(Op::Alltoall, Alg::Pairwise, 8, 0, s);
        assert_eq!(rs.len(), 7);
        assert!(rs[0].iter().any(|m| (m.0, m.1) == (7, 0)));
        assert!(rs[2].iter().any(|m| (m.0, m.1) == (6, 1)));
        assert!(a2a[0].iter().any(|m| (m.0, m.1) == (7, 6)));
        assert!(a2a[2].iter().any(|m| (m.0, m.1) == (6, 5)));
        let net = Net::bed(10.0, 100.0);
        let site = [0, 0, 0, 1, 1, 1, 1, 1];
        assert!(cost(&rs, &site, &net).wan_hops < cost(&a2a, &site, &net).wan_hops);
    }

    #[test]
    fn dependencies_not_lock_step_set_the_time() {
        // Dissemination over site blocks: three rounds cross, but a rank waits only for
        // its own partners, two WAN delays deep.
        let blocks = [0, 0, 0, 0, 1, 1, 1, 1];
        let (lib, _) = both(Op::Barrier, &blocks, 0.0);
        assert_eq!(lib.wan_hops, 2);
        assert!((lib.time - 0.0201).abs() < 1e-3, "{}", lib.time);
        // One 4 MiB message: the delay plus its transfer.
        let one = cost(&vec![vec![(0, 1, 4.0 * MIB)]], &[0, 1], &Net::bed(10.0, 100.0));
        assert!((one.time - (0.010 + 4.0 * MIB / (12.5e6 * 1448.0 / 1514.0))).abs() < 1e-9);
    }

    #[test]
    fn connections_share_a_wan_direction_and_sends_across_do_not_hold_their_sender() {
        let net = Net::bed(10.0, 100.0);
        let one = net.wan.alone(4.0 * MIB);
        let lat = net.wan.latency(4.0 * MIB);
        // Binomial reduce with the root alone in its site: ranks 1, 2 and 4 each send it
        // 4 MiB over the same direction; however they overlap, 12 MiB cross at the rate.
        let lone = [0, 1, 1, 1, 1, 1, 1, 1];
        let lib = cost(&library(Op::Reduce, Alg::Binomial, 8, 0, 4.0 * MIB), &lone, &net);
        assert_eq!((lib.ab, lib.ba), (0.0, 3.0 * 4.0 * MIB));
        assert!(lib.time >= 12.0 * MIB / net.wan.rate + lat - 1e-9, "{} vs {one}", lib.time);
        // Opposite directions do not wait for each other.
        let both_ways = cost(&vec![vec![(0, 1, 4.0 * MIB), (1, 0, 4.0 * MIB)]], &[0, 1], &net);
        assert!((both_ways.time - one).abs() < 1e-9);
        // Two connections one way take turns of 64 KiB: rank 2's message is out one turn
        // before rank 3's, after 8 MiB less a turn, and the word rank 2 answers with comes
        // after that (one message after the other, rank 2 would have had its own after
        // 4 MiB and the last arrival would have been rank 3's).
        let site = [0, 0, 1, 1];
        let shared: Rounds = vec![vec![(0, 2, 4.0 * MIB), (1, 3, 4.0 * MIB)], vec![(2, 0, 8.0)]];
        let t = cost(&shared, &site, &net).time;
        let expect = (8.0 * MIB - WAN_TURN) / net.wan.rate + lat + net.wan.alone(8.0);
        assert!((t - expect).abs() < 1e-9, "{t} vs {expect}");
        // Served whole, first come: rank 2's message out after 4 MiB, rank 3's after 8.
        let first_come = cost_served(&shared, &site, &net, f64::INFINITY).time;
        let expect = 8.0 * MIB / net.wan.rate + lat;
        assert!((first_come - expect).abs() < 1e-9, "{first_come} vs {expect}");
        // Messages of up to a turn cross whole, in the order they were posted.
        let small: Rounds = vec![vec![(0, 2, WAN_TURN), (1, 3, WAN_TURN)], vec![(2, 0, 8.0)]];
        let t = cost(&small, &site, &net).time;
        let expect = WAN_TURN / net.wan.rate + net.wan.latency(WAN_TURN) + net.wan.alone(8.0);
        assert!((t - expect).abs() < 1e-9, "{t} vs {expect}");
        // One connection carries its messages in order: the second is out after both.
        let queued: Rounds = vec![vec![(0, 2, 4.0 * MIB)], vec![(0, 2, 4.0 * MIB)]];
        assert!((cost(&queued, &site, &net).time - (one + 4.0 * MIB / net.wan.rate)).abs() < 1e-9);
        // Rank 0 goes on while its 4 MiB crosses: rank 2 in its site has its 4 MiB long
        // before, and its word across shares the direction for an instant.
        let on: Rounds = vec![vec![(0, 1, 4.0 * MIB)], vec![(0, 2, 4.0 * MIB)], vec![(2, 1, 8.0)]];
        let t = cost(&on, &[0, 1, 0], &net).time;
        assert!((t - one).abs() < 1e-5, "{t} vs {one}");
        // With data both ways, the busy rate for both.
        let busy = Net { wan: Link { busy: net.wan.rate / 2.0, ..net.wan }, ..net };
        let t = cost(&vec![vec![(0, 1, 4.0 * MIB), (1, 0, 1.0 * MIB)]], &[0, 1], &busy).time;
        // 1 MiB each way at half the rate, then the last 3 MiB alone at the full rate.
        assert!((t - (2.0 * MIB / net.wan.rate + 3.0 * MIB / net.wan.rate + lat)).abs() < 1e-9, "{t}");
    }

    #[test]
    fn calibrated_links_reproduce_the_measured_messages() {
        let (t8, t64k, t4m) = (0.0103, 0.0171, 0.398);
        let l = Link::calibrated(t8, t64k, t4m).unwrap();
        for (x, t) in [(8.0, t8), (65536.0, t64k), (4.0 * MIB, t4m)] {
            assert!((l.alone(x) - t).abs() < 1e-12, "{x}: {} vs {t}", l.alone(x));
        }
        // Between the points the latency is linear in the size.
        assert!(l.latency(32768.0) > l.small.min(l.large) && l.latency(32768.0) < l.small.max(l.large));
        // Four each way at once, the last arriving after 1.8 s (not 1.56 s): the model gives
        // 1.8 s back; one way only, the rate of a free path.
        let four = l.with_flows(4, 4.0 * MIB, 1.8);
        assert!(four.busy < four.rate);
        let site = [0, 0, 0, 0, 1, 1, 1, 1];
        let net = Net { wan: four, lan: l, host: Host::UNLIMITED };
        let c = cost(&vec![(0..4).flat_map(|i| [(i, 4 + i, 4.0 * MIB), (4 + i, i, 4.0 * MIB)]).collect()], &site, &net);
        assert!((c.time - 1.8).abs() < 1e-9, "{}", c.time);
        let c = cost(&vec![(0..4).map(|i| (i, 4 + i, 4.0 * MIB)).collect()], &site, &net);
        assert!((c.time - (four.latency(4.0 * MIB) + 16.0 * MIB / four.rate)).abs() < 1e-9, "{}", c.time);
        // A larger message that is not slower gives no rate.
        assert_eq!(Link::calibrated(0.01, 0.02, 0.02), None);
    }

    #[test]
    fn in_site_messages_share_what_the_host_moves_at_once() {
        let lan = Link::calibrated(1e-4, 4e-4, 0.0164).unwrap();
        let site = [0, 0, 0, 0, 1, 1, 1, 1];
        // A ring in each site, eight 4 MiB messages at once, the last after 0.1 s.
        let ring: Rounds = vec![(0..8).map(|i| (i, (i / 4) * 4 + (i + 1) % 4, 4.0 * MIB)).collect()];
        let free = Net { wan: Net::bed(10.0, 100.0).wan, lan, host: Host::UNLIMITED };
        assert!((cost(&ring, &site, &free).time - lan.alone(4.0 * MIB)).abs() < 1e-12);
        let flows: Vec<(usize, usize)> = ring[0].iter().map(|m| (m.0, m.1)).collect();
        let net = free.with_host_flows(&flows, &site, 4.0 * MIB, 0.1);
        assert!(net.host.large < 8.0 * lan.rate && net.host.large > lan.rate, "{:?}", net.host);
        assert_eq!(net.host.small, f64::INFINITY);
        // The model gives the calibration back.
        assert!((cost(&ring, &site, &net).time - 0.1).abs() < 1e-6, "{}", cost(&ring, &site, &net).time);
        // One message alone still goes at the rate of one pair.
        let one: Rounds = vec![vec![(0, 1, 4.0 * MIB)]];
        assert!((cost(&one, &site, &net).time - lan.alone(4.0 * MIB)).abs() < 1e-12);
        // Capacity used earlier does not hold up a message sent later: site 0's ring, then
        // a word across to rank 4, which then sends 4 MiB inside its site at the rate of
        // one pair.
        let ring0: Vec<Msg> = (0..4).map(|i| (i, (i + 1) % 4, 4.0 * MIB)).collect();
        let first = cost(&vec![ring0.clone(), vec![(0, 4, 8.0)]], &site, &net).time;
        assert!(first > 16.0 * MIB / net.host.large, "{first}");
        let all = cost(&vec![ring0, vec![(0, 4, 8.0)], vec![(4, 5, 4.0 * MIB)]], &site, &net).time;
        assert!((all - first - lan.alone(4.0 * MIB)).abs() < 1e-9, "{all} {first}");
        // Nonsense figures leave the net as it was.
        assert_eq!(free.with_host_flows(&flows, &site, 4.0 * MIB, 0.0), free);
        assert_eq!(free.with_host_flows(&[(0, 4)], &site, 4.0 * MIB, 0.1), free);
        // No slower than alone: nothing limits them together.
        let quick = Net { host: Host { small: 1e9, large: 1e9 }, ..free }.with_host_flows(&flows, &site, 4.0 * MIB, 0.01);
        assert_eq!(quick.host, Host { small: 1e9, large: f64::INFINITY });
        // Up to 1 MiB the small figure, from 4 MiB the large one, in between the time per
        // byte linear in the size.
        let h = Host { small: 600e6, large: 300e6 };
        assert_eq!((h.at(65536.0), h.at(MIB), h.at(8.0 * MIB)), (600e6, 600e6, 300e6));
        assert!((1.0 / h.at(2.5 * MIB) - (0.5 / 600e6 + 0.5 / 300e6)).abs() < 1e-18);
        assert_eq!(Host::UNLIMITED.at(2.0 * MIB), f64::INFINITY);
        // The 1 MiB ring sets the small figure only.
        let ring1: Vec<(usize, usize)> = flows.clone();
        let small = net.with_host_flows(&ring1, &site, MIB, 0.03);
        assert_eq!(small.host.large, net.host.large);
        assert!(small.host.small.is_finite());
        let ring1m: Rounds = vec![ring1.iter().map(|&(a, b)| (a, b, MIB)).collect()];
        assert!((cost(&ring1m, &site, &small).time - 0.03).abs() < 1e-6);
    }

    #[test]
    fn scans_regroup_only_contiguous_sites_and_one_site_stays_flat() {
        let inter = [0, 1, 0, 1, 0, 1, 0, 1];
        let (lib, reg) = both(Op::Scan, &inter, 8.0);
        assert_eq!(lib, reg);
        let (lib, reg) = both(Op::Exscan, &[0, 0, 0, 0, 1, 1, 1, 1], 64.0 * 1024.0);
        assert_eq!((lib.ab, lib.ba, lib.wan_hops), (4.0 * 65536.0, 4.0 * 65536.0, 1));
        // Leaders directly: the first site's total to the second, nothing back.
        assert_eq!((reg.ab, reg.ba, reg.wan_hops), (65536.0, 0.0, 1));
        let (lib, reg) = both(Op::Bcast, &[0; 8], MIB);
        assert_eq!((lib.cross, reg.cross, lib.wan_hops), (0.0, 0.0, 0));
        assert_eq!(lib.time, reg.time);
    }

    #[test]
    fn long_scans_over_two_sites_pipeline_along_the_ranks() {
        let net = Net::bed(10.0, 100.0);
        let three_five = [0, 0, 0, 1, 1, 1, 1, 1];
        let chain = regrouped(Op::Scan, &three_five, 0, 4.0 * MIB, Regroup::Pays);
        // 16 pieces of 256 KiB through 7 hops: 7 + 16 - 1 wavefronts, every hop every piece.
        assert_eq!(chain.len(), 22);
        let msgs: Vec<&Msg> = chain.iter().flatten().collect();
        assert_eq!(msgs.len(), 7 * 16);
        assert!(msgs.iter().all(|m| m.1 == m.0 + 1 && m.2 == 262144.0));
        let c = cost(&chain, &three_five, &net);
        assert_eq!((c.ab, c.ba, c.wan_hops), (4.0 * MIB, 0.0, 1));
        // The crossing dominates: the whole vector across once, plus one piece's latency
        // and in-site fill on either side.
        let across = net.wan.alone(4.0 * MIB);
        assert!(c.time > across && c.time < across + 0.02, "{c:?} against {across}");
        // The leaders' algorithm (the floor keeps it) puts a whole in-site scan before the
        // crossing and a broadcast after it.
        let leaders = cost(&regrouped(Op::Scan, &three_five, 0, 4.0 * MIB, Regroup::Floor), &three_five, &net);
        assert!(leaders.time > c.time, "{leaders:?} against {c:?}");
        // Uneven pieces: the last one takes what is left; below 1 MiB, the leaders again.
        let odd = regrouped(Op::Exscan, &three_five, 0, 4.0 * (262144.0 + 3.0), Regroup::Pays);
        let firsts: Vec<f64> = odd.iter().flatten().filter(|m| m.0 == 0).map(|m| m.2).collect();
        assert_eq!(firsts.len(), 5);
        assert_eq!(firsts.iter().sum::<f64>(), 4.0 * (262144.0 + 3.0));
        let short = regrouped(Op::Scan, &three_five, 0, 65536.0, Regroup::Pays);
        assert!(short.iter().flatten().any(|m| m.0 > m.1), "{short:?}");
    }

    /// The messages of `rounds` that cross between sites.
    fn crossing<'a>(rounds: &'a Rounds, site: &[usize]) -> Vec<&'a Msg> {
        rounds.iter().flatten().filter(|m| site[m.0] != site[m.1]).collect()
    }

    #[test]
    fn long_reduces_go_in_pieces_the_root_site_first() {
        let net = Net::bed(10.0, 100.0);
        let three_five = [0, 0, 0, 1, 1, 1, 1, 1];
        assert!(shim_regroups(Op::Reduce, &three_five, 0, 4.0 * MIB));
        let rounds = regrouped(Op::Reduce, &three_five, 0, 4.0 * MIB, Regroup::Pays);
        // 16 pieces; each crosses once, from the other site's leader (rank 3) to the root.
        let across = crossing(&rounds, &three_five);
        assert_eq!(across.len(), 16);
        assert!(across.iter().all(|m| (m.0, m.1, m.2) == (3, 0, 262144.0)));
        // The root's site (a binomial reduce of three ranks: two messages a piece) does all
        // its pieces before the first piece arrives in the list.
        let first_across = rounds.iter().position(|r| r.iter().any(|m| three_five[m.0] != three_five[m.1])).unwrap();
        assert_eq!(rounds[..first_across].iter().flatten().filter(|m| m.0 < 3).count(), 16 * 2);
        let c = cost(&rounds, &three_five, &net);
        assert_eq!((c.ab, c.ba, c.wan_hops), (0.0, 4.0 * MIB, 1));
        // The crossing dominates: the whole vector plus one piece's in-site reduction.
        let alone = net.wan.alone(4.0 * MIB);
        assert!(c.time > alone && c.time < alone + 0.01, "{c:?} against {alone}");
        let whole = cost(&regrouped(Op::Reduce, &three_five, 0, 4.0 * MIB, Regroup::Floor), &three_five, &net);
        assert!(whole.time > c.time, "{whole:?} against {c:?}");
        // Rooted on the other site: the pieces go the other way, from rank 0.
        let c5 = cost(&regrouped(Op::Reduce, &three_five, 5, 4.0 * MIB, Regroup::Pays), &three_five, &net);
        assert_eq!((c5.ab, c5.ba), (4.0 * MIB, 0.0));
    }

    #[test]
    fn long_bcasts_post_pieces_to_the_other_heads() {
        let net = Net::bed(10.0, 100.0);
        let blocks = [0, 0, 0, 0, 1, 1, 1, 1];
        assert!(shim_regroups(Op::Bcast, &blocks, 0, 4.0 * MIB));
        let plan = regrouped(Op::Bcast, &blocks, 0, 4.0 * MIB, Regroup::Pays);
        let across = crossing(&plan, &blocks);
        assert_eq!(across.len(), 16);
        assert!(across.iter().all(|m| (m.0, m.1, m.2) == (0, 4, 262144.0)));
        let c = cost(&plan, &blocks, &net);
        assert_eq!((c.ab, c.ba, c.wan_hops), (4.0 * MIB, 0.0, 1));
        // The stream of pieces is the whole vector's crossing; after the last piece, one
        // piece's broadcast in the other site.
        let alone = net.wan.alone(4.0 * MIB);
        assert!(c.time > alone && c.time < alone + 0.005, "{c:?} against {alone}");
    }

    /// `count` pieces of 256 KiB cross, every one between the two `leaders`, and exactly the
    /// rounds with a crossing are taken later.
    fn pieces_between(plan: &Plan, site: &[usize], leaders: (usize, usize), count: usize) {
        let across = crossing(plan, site);
        assert_eq!(across.len(), count);
        assert!(across.iter().all(|m| ((m.0, m.1) == leaders || (m.1, m.0) == leaders) && m.2 == 262144.0));
        for (k, round) in plan.rounds.iter().enumerate() {
            let crosses = round.iter().any(|m| site[m.0] != site[m.1]);
            assert_eq!(plan.taken_at.get(k).copied().flatten().is_some_and(|j| j > k), crosses, "round {k}");
        }
    }

    #[test]
    fn sites_reduce_pieces_along_a_chain_into_their_root() {
        let sites = vec![vec![0, 1, 2], vec![3, 4, 5, 6, 7]];
        let r = per_site_chain(&sites, |g| if g == 0 { 1 } else { 0 }, 8.0);
        assert_eq!(r, vec![vec![(0, 1, 8.0), (2, 1, 8.0), (7, 6, 8.0)], vec![(6, 5, 8.0)], vec![(5, 4, 8.0)], vec![(4, 3, 8.0)]]);
    }

    #[test]
    fn long_allreduces_cross_in_pieces_both_ways_and_broadcast_them_as_they_arrive() {
        let net = Net::bed(10.0, 100.0);
        let three_five = [0, 0, 0, 1, 1, 1, 1, 1];
        assert!(shim_regroups(Op::Allreduce, &three_five, 0, 4.0 * MIB));
        let plan = regrouped(Op::Allreduce, &three_five, 0, 4.0 * MIB, Regroup::Pays);
        // 16 pieces each way, leader to leader, posted; their receivers take them later.
        pieces_between(&plan, &three_five, (0, 3), 32);
        let c = cost(&plan, &three_five, &net);
        assert_eq!((c.ab, c.ba, c.wan_hops), (4.0 * MIB, 4.0 * MIB, 1));
        // Both streams are the whole vector's crossing; before the first piece one piece's
        // reduction, after the last one piece's broadcast.
        let alone = net.wan.alone(4.0 * MIB);
        assert!(c.time > alone && c.time < alone + 0.01, "{c:?} against {alone}");
        // Taken at once, each leader would wait for the other's piece j before reducing
        // piece j + 1, and the streams would stall.
        let held = cost(Plan { taken_at: Vec::new(), ..plan.clone() }, &three_five, &net);
        assert!(held.time > c.time + 0.01, "{held:?} against {c:?}");
        // In one piece: the whole reduction, then the crossing, then the whole broadcast.
        let whole = cost(&regrouped(Op::Allreduce, &three_five, 0, 4.0 * MIB, Regroup::Floor), &three_five, &net);
        assert!(whole.time > c.time, "{whole:?} against {c:?}");
    }

    #[test]
    fn long_allgathers_cross_in_pieces_while_the_sites_broadcast_their_own() {
        let net = Net::bed(10.0, 100.0);
        let blocks = [0, 0, 0, 0, 1, 1, 1, 1];
        assert!(shim_regroups(Op::Allgather, &blocks, 0, 4.0 * MIB));
        let plan = regrouped(Op::Allgather, &blocks, 0, 4.0 * MIB, Regroup::Pays);
        // Each site's 2 MiB blob in eight pieces, leader to leader, posted, taken later.
        pieces_between(&plan, &blocks, (0, 4), 16);
        let c = cost(&plan, &blocks, &net);
        assert_eq!((c.ab, c.ba, c.wan_hops), (2.0 * MIB, 2.0 * MIB, 1));
        // The gather, the blob's crossing, one piece's broadcast: the sites' broadcasts of
        // their own blobs hide behind the crossing.
        let alone = net.wan.alone(2.0 * MIB);
        assert!(c.time > alone && c.time < alone + 0.02, "{c:?} against {alone}");
        let whole = cost(&regrouped(Op::Allgather, &blocks, 0, 4.0 * MIB, Regroup::Floor), &blocks, &net);
        assert!(whole.time > c.time + 0.005, "{whole:?} against {c:?}");
        // Over 1+7 the lone rank's 512 KiB goes in one piece, the other site's 3.5 MiB in 14.
        let one_seven = [0, 1, 1, 1, 1, 1, 1, 1];
        let plan = regrouped(Op::Allgather, &one_seven, 0, 4.0 * MIB, Regroup::Pays);
        let across = crossing(&plan, &one_seven);
        assert_eq!(across.iter().filter(|m| m.0 == 0).count(), 1);
        assert_eq!(across.iter().filter(|m| m.0 == 1).count(), 14);
    }

    #[test]
    fn long_reduce_scatters_send_each_remote_segment_in_pieces_as_it_is_reduced() {
        let net = Net::bed(10.0, 100.0);
        let blocks = [0, 0, 0, 0, 1, 1, 1, 1];
        assert!(shim_regroups(Op::ReduceScatter, &blocks, 0, 4.0 * MIB));
        let plan = regrouped(Op::ReduceScatter, &blocks, 0, 4.0 * MIB, Regroup::Pays);
        // Each site's 2 MiB segment of the other's, in eight pieces, leader to leader.
        let across = crossing(&plan, &blocks);
        assert_eq!(across.len(), 16);
        assert!(across.iter().all(|m| matches!((m.0, m.1), (0, 4) | (4, 0)) && m.2 == 262144.0));
        let c = cost(&plan, &blocks, &net);
        assert_eq!((c.ab, c.ba, c.wan_hops), (2.0 * MIB, 2.0 * MIB, 1));
        // The crossing of 2 MiB, one piece's reduction before it and the own segment's
        // reduction and the scatter after the last piece at most.
        let alone = net.wan.alone(2.0 * MIB);
        assert!(c.time > alone && c.time < alone + 0.03, "{c:?} against {alone}");
        let whole = cost(&regrouped(Op::ReduceScatter, &blocks, 0, 4.0 * MIB, Regroup::Floor), &blocks, &net);
        assert!(whole.time > c.time + 0.005, "{whole:?} against {c:?}");
        // Held until each piece is out and taken at once, the leaders stall the streams.
        let held = cost(&plan.rounds, &blocks, &net);
        assert!(held.time > c.time, "{held:?} against {c:?}");
    }

    #[test]
    fn pins_name_real_cvars_and_shapes_match_the_program() {
        let env = mpich_env(8);
        assert!(env.iter().any(|(k, v)| k == "MPIR_CVAR_BCAST_INTRA_ALGORITHM" && v == "binomial"));
        assert!(mpich_env(65536).iter().any(|(k, v)| k == "MPIR_CVAR_ALLREDUCE_INTRA_ALGORITHM" && v == "reduce_scatter_allgather"));
        assert_eq!(shape(Op::ReduceScatter, 8.0, 8), (32.0, 4.0));
        assert_eq!(shape(Op::Gather, 8.0, 8), (8.0, 1.0));
        assert_eq!(shape(Op::Alltoall, 4.0 * MIB, 8), (4.0 * MIB, MIB / 2.0));
        for op in Op::ALL {
            assert_eq!(Op::parse(op.name()), Some(op));
        }
    }
}
