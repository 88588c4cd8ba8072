//! Site-aware collectives, the pure part: how a communicator's ranks group by site under one
//! site map, who leads each site, whether regrouping pays for an operation, and how all
//! ranks of a communicator switch to a new epoch at the same collective without a WAN round
//! on the critical path. No MPI here; the ABI layer builds the communicators and runs the
//! algorithms from these answers.

use straddle_collectives::{Op, Size};

/// Up to this many sites the heads of a site-aware collective send to each other directly
/// (one message per site pair, one WAN crossing) instead of running the library's algorithm
/// among themselves, which for long messages splits them into phases that cross more than
/// once.
pub const DIRECT_SITES: usize = 4;

/// How a communicator's ranks fall into sites under one epoch's map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub epoch: u64,
    /// Site of each communicator rank (a key per site: equal keys, same site).
    pub site_of: Vec<u64>,
    /// Communicator ranks of each group, ascending; groups ordered by their lowest rank.
    pub groups: Vec<Vec<usize>>,
    /// Group index of each communicator rank.
    pub group_of: Vec<usize>,
}

impl Grouping {
    /// Groups a communicator whose rank i is world rank `world[i]`, with `rank_site[w]` the
    /// site of world rank w. `None` when a world rank has no site in the map.
    pub fn new(epoch: u64, world: &[u32], rank_site: &[u32]) -> Option<Grouping> {
        let site_of = world.iter().map(|&w| rank_site.get(w as usize).map(|&s| s as u64)).collect::<Option<_>>()?;
        Some(Grouping::from_sites(epoch, site_of))
    }

    /// Groups communicator ranks by the site key of each.
    pub fn from_sites(epoch: u64, site_of: Vec<u64>) -> Grouping {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut index: Vec<(u64, usize)> = Vec::new();
        let mut group_of = Vec::with_capacity(site_of.len());
        for (r, &s) in site_of.iter().enumerate() {
            let g = match index.iter().find(|(site, _)| *site == s) {
                Some(&(_, g)) => g,
                None => {
                    groups.push(Vec::new());
                    index.push((s, groups.len() - 1));
                    groups.len() - 1
                }
            };
            groups[g].push(r);
            group_of.push(g);
        }
        Grouping { epoch, site_of, groups, group_of }
    }

    /// The same partition into sites, the same leaders: nothing to rebuild.
    pub fn same_as(&self, other: &Grouping) -> bool {
        self.groups == other.groups && (0..self.groups.len()).all(|g| self.leader(g) == other.leader(g))
    }

    /// The leader of group `g`: a pure function of (epoch, group), so every rank computes
    /// the same one without asking; it rotates with the epoch to spread the load.
    pub fn leader(&self, g: usize) -> usize {
        let m = &self.groups[g];
        // The remainder is below the group's length, a usize.
        usize::try_from(self.epoch % m.len() as u64).map_or(m[0], |i| m[i])
    }

    /// The rank that speaks for group `g` across sites in an operation rooted at `root`
    /// (`None`: not rooted): the root itself for its own group where the groups' heads
    /// exchange directly (up to [`DIRECT_SITES`] groups), else the group's leader (the root
    /// then hands its data to or from its leader).
    pub fn head(&self, g: usize, root: Option<usize>) -> usize {
        match root {
            Some(r) if self.group_of[r] == g && self.groups.len() <= DIRECT_SITES => r,
            _ => self.leader(g),
        }
    }

    /// Every group's ranks are consecutive communicator ranks (non-commutative reductions
    /// keep their order only then).
    pub fn contiguous(&self) -> bool {
        self.groups.iter().all(|m| m.windows(2).all(|w| w[1] == w[0] + 1))
    }
}

/// What a collective should do under a grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The library's own algorithm, unchanged.
    Flat,
    /// Inside each site first, across the WAN once per site.
    SiteAware,
}

/// Whether regrouping applies: one site (nothing crosses) or one rank per site (nothing to
/// gather) stays flat; a non-commutative reduction stays flat unless every site's ranks
/// are contiguous.
pub fn route(g: &Grouping, reduction: bool, commutative: bool) -> Route {
    let sites = g.groups.len();
    if sites < 2 || sites == g.site_of.len() {
        return Route::Flat;
    }
    if reduction && !commutative && !g.contiguous() {
        return Route::Flat;
    }
    Route::SiteAware
}

/// Agreement on the epoch a communicator uses. Every `period`-th blocking collective on
/// the communicator starts a nonblocking allgather of the newest epoch each rank holds and
/// its site ([`contribution`]); `period` blocking collectives later every rank completes it
/// and adopts the oldest of those epochs with the sites gathered ([`agreed`]). Counts advance
/// identically on every rank (every blocking collective counts; nonblocking and persistent
/// ones, which ranks may order differently relative to blocking ones, do not), so all
/// switch at the same collective, to an epoch every rank holds a map for, and the
/// agreement's WAN round overlaps the application's work instead of sitting on its
/// critical path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    period: u64,
    count: u64,
    active: u64,
    /// (collective count at which to adopt, started at count).
    in_flight: Option<u64>,
}

/// What the caller must do at this collective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Run this collective under this epoch (0: no map, flat).
    pub epoch: u64,
    /// Complete the agreement started `period` collectives ago first, then call `adopt`.
    pub complete: bool,
    /// Start the nonblocking allgather of this rank's [`contribution`].
    pub start: bool,
}

impl Agreement {
    pub fn new(period: u64) -> Agreement {
        Agreement { period: period.max(1), count: 0, active: 0, in_flight: None }
    }

    /// The next collective on this communicator.
    pub fn step(&mut self) -> Step {
        let c = self.count;
        self.count += 1;
        let complete = self.in_flight.is_some_and(|at| at == c);
        let start = c.is_multiple_of(self.period) && (self.in_flight.is_none() || complete);
        Step { epoch: self.active, complete, start }
    }

    /// The agreed epoch of the agreement this step completed; it applies from this
    /// collective on. (The caller completes before the collective runs.)
    pub fn adopt(&mut self, agreed: u64) -> u64 {
        self.in_flight = None;
        self.active = self.active.max(agreed);
        self.active
    }

    /// Records that the agreement was started at the collective just stepped.
    pub fn started(&mut self) {
        self.in_flight = Some(self.count - 1 + self.period);
    }

    pub fn active(&self) -> u64 {
        self.active
    }
}

/// A stable key for a site name (FNV-1a), comparable across maps and epochs.
pub fn site_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// What one rank puts into the agreement: the newest map it holds (`None`: none) as
/// (epoch, its own site's key). Two words per rank, gathered from every rank.
pub fn contribution(held: Option<(u64, u64)>) -> [u64; 2] {
    match held {
        Some((epoch, key)) => [epoch + 1, key],
        None => [0, 0],
    }
}

/// The grouping every rank derives from the gathered contributions (identical input on
/// every rank, so an identical answer, with no map needing to match another): `None`
/// when some rank holds no map yet. A rank still on an older map contributes its site
/// under that map; the epoch is the oldest anyone holds.
pub fn agreed(gathered: &[u64]) -> Option<Grouping> {
    if gathered.is_empty() || !gathered.len().is_multiple_of(2) {
        return None;
    }
    let pairs: Vec<(u64, u64)> = gathered.chunks(2).map(|c| (c[0], c[1])).collect();
    if pairs.iter().any(|&(held, _)| held == 0) {
        return None;
    }
    let epoch = pairs.iter().map(|&(held, _)| held - 1).min()?;
    Some(Grouping::from_sites(epoch, pairs.into_iter().map(|(_, k)| k).collect()))
}

/// Whether running `op` site-aware pays under `g`, from what the library's own algorithm
/// would do (the one model of the collective algorithms: `straddle_collectives::pays`).
/// `bytes` is the whole message of a broadcast, reduction or scan, the whole vector of an
/// allreduce or reduce-scatter, the whole gathered or scattered buffer of a gather,
/// scatter or allgather, and one block of an all-to-all. Every rank passes the same
/// arguments, so every rank decides the same.
pub fn pays(op: SaOp, g: &Grouping, root: Option<usize>, bytes: u64) -> bool {
    let n = g.site_of.len();
    // Byte counts far below 2^53: exact as f64.
    let b = bytes as f64;
    let (op, size) = match op {
        SaOp::Barrier => (Op::Barrier, Size::of_message(0.0, n)),
        SaOp::Bcast => (Op::Bcast, Size::of_message(b, n)),
        SaOp::Reduce => (Op::Reduce, Size::of_message(b, n)),
        SaOp::Allreduce => (Op::Allreduce, Size::of_message(b, n)),
        SaOp::Gather => (Op::Gather, Size::of_message(b, n)),
        SaOp::Scatter => (Op::Scatter, Size::of_message(b, n)),
        SaOp::Allgather => (Op::Allgather, Size::of_message(b, n)),
        SaOp::ReduceScatter => (Op::ReduceScatter, Size::of_message(b, n)),
        SaOp::Alltoall => (Op::Alltoall, Size::of_block(b, n)),
        SaOp::Scan => (Op::Scan, Size::of_message(b, n)),
    };
    straddle_collectives::pays(op, &g.group_of, root.unwrap_or(0), size)
}

/// The site-aware collectives, for the byte model below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaOp {
    Barrier,
    Bcast,
    Reduce,
    Allreduce,
    Gather,
    Scatter,
    Allgather,
    ReduceScatter,
    Alltoall,
    Scan,
}

/// Site-aware broadcasts, reductions and scans of at least this many bytes go in pieces, so that the
/// phases inside the sites overlap the crossing instead of waiting for it
/// ([`pipeline_pieces`]).
pub const PIPELINE_MIN: u64 = 1 << 20;
/// The pieces: about this many bytes each, at most [`PIPELINE_MAX_PIECES`].
pub const PIPELINE_PIECE: u64 = 256 << 10;
pub const PIPELINE_MAX_PIECES: u64 = 64;

/// How many pieces a site-aware broadcast or reduction of `bytes` goes in, or `None` for
/// one piece. Bcast: the root posts every piece to every other site's head without waiting,
/// and every site broadcasts piece j from its head as soon as the head has it. Reduce: each
/// site reduces piece j to its head, which sends it across at once while the site goes on
/// with piece j + 1; the root folds the sites' pieces together as they arrive. Allreduce:
/// as Reduce, every leader posting its site's piece to every other leader, then each
/// leader folds piece j as it arrives and broadcasts it in its site. Allgather and
/// Reduce_scatter cut each site's blob or segment of at least this size the same way. The call
/// then takes the crossing's time plus one piece's in-site work, not the sum of the whole
/// in-site phase and the crossing.
pub fn pipeline_pieces(bytes: u64) -> Option<usize> {
    (bytes >= PIPELINE_MIN).then(|| bytes.div_ceil(PIPELINE_PIECE).clamp(1, PIPELINE_MAX_PIECES) as usize)
}

/// For a scan (or exscan) of `bytes` over `sites` sites whose ranks are each contiguous:
/// how many pieces it is pipelined in along the ranks, or `None` for the leaders'
/// algorithm. Along the ranks, rank i passes its prefix on to rank i + 1 piece by piece:
/// the vector crosses the WAN once, at the one rank pair that straddles the two sites,
/// while the ranks on either side are still passing earlier or later pieces. The leaders'
/// algorithm puts a whole scan inside the first site before its crossing and a whole
/// broadcast and add inside the second after it; for long vectors those dominate. Above
/// two sites the pipeline would cross once per site boundary in turn, so they keep the
/// leaders' direct exchange.
pub fn scan_chain_pieces(sites: usize, bytes: u64) -> Option<usize> {
    if sites == 2 {
        pipeline_pieces(bytes)
    } else {
        None
    }
}

/// Cross-site bytes rank `me` sends in one site-aware collective, counting each head's
/// share ([`Grouping::head`]: the root for its own site, else the leader) of the step
/// between sites as if it sent its copies itself: `payload` is the message
/// of a broadcast, reduction or scan (for an all-to-all: what `me`'s whole site sends to
/// other sites, known to its leader); `site_bytes[h]` is site h's share of a gathered,
/// scattered or reduce-scattered buffer. Summed over ranks: one copy per remote site.
pub fn cross_site_bytes(op: SaOp, g: &Grouping, me: usize, root: Option<usize>, payload: u64, site_bytes: &[u64]) -> u64 {
    let mine = g.group_of[me];
    if g.head(mine, root) != me {
        return 0;
    }
    let sites = g.groups.len() as u64;
    let root_group = root.map(|r| g.group_of[r]);
    let others = |h: usize| -> u64 { site_bytes.iter().enumerate().filter(|&(i, _)| i != h).map(|(_, b)| b).sum() };
    match op {
        SaOp::Barrier => 0,
        SaOp::Bcast if root_group == Some(mine) => (sites - 1) * payload,
        SaOp::Reduce if root_group != Some(mine) => payload,
        SaOp::Allreduce if mine == 0 => (sites - 1) * payload,
        SaOp::Allreduce => payload,
        SaOp::Gather if root_group != Some(mine) => site_bytes.get(mine).copied().unwrap_or(0),
        SaOp::Scatter if root_group == Some(mine) => others(mine),
        SaOp::Allgather => (sites - 1) * site_bytes.get(mine).copied().unwrap_or(0),
        SaOp::ReduceScatter => others(mine),
        SaOp::Alltoall => payload,
        SaOp::Scan if mine + 1 < g.groups.len() => payload,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_leaders_and_roots() {
        // World ranks 0..8 interleaved over sites 0 and 1; a communicator of world 1,2,3,6,7.
        let map = [0, 1, 0, 1, 0, 1, 0, 1];
        let g = Grouping::new(3, &[1, 2, 3, 6, 7], &map).unwrap();
        assert_eq!(g.site_of, vec![1u64, 0, 1, 0, 1]);
        assert_eq!(g.groups, vec![vec![0, 2, 4], vec![1, 3]]);
        assert_eq!((g.leader(0), g.leader(1)), (0, 3), "epoch 3 picks index 0 of 3 and 1 of 2");
        // Rooted at 2: the root speaks for its own group, the leader for the other.
        assert_eq!((g.head(0, Some(2)), g.head(1, Some(2)), g.head(0, None)), (2, 3, 0));
        // Above DIRECT_SITES groups the leaders speak (the root hands over).
        let many = Grouping::new(0, &[0, 1, 2, 3, 4, 5], &[0, 0, 1, 2, 3, 4]).unwrap();
        assert_eq!(many.head(0, Some(1)), 0);
        assert!(!g.contiguous());
        assert!(Grouping::new(1, &[9], &map).is_none());
    }

    #[test]
    fn long_messages_go_in_bounded_pieces_and_scans_chain_over_two_sites_only() {
        assert_eq!(pipeline_pieces(4 << 20), Some(16));
        assert_eq!(pipeline_pieces((1 << 20) - 1), None);
        assert_eq!(scan_chain_pieces(2, 4 << 20), Some(16));
        assert_eq!(scan_chain_pieces(2, (1 << 20) + 1), Some(5));
        assert_eq!(scan_chain_pieces(2, 1 << 30), Some(64));
        assert_eq!(scan_chain_pieces(2, (1 << 20) - 1), None);
        assert_eq!(scan_chain_pieces(3, 4 << 20), None);
    }

    #[test]
    fn routes() {
        let blocks = Grouping::new(1, &[0, 1, 2, 3], &[0, 0, 1, 1]).unwrap();
        let inter = Grouping::new(1, &[0, 1, 2, 3], &[0, 1, 0, 1]).unwrap();
        let one_site = Grouping::new(1, &[0, 1], &[0, 0]).unwrap();
        let singletons = Grouping::new(1, &[0, 1], &[0, 1]).unwrap();
        assert_eq!(route(&blocks, true, false), Route::SiteAware);
        assert_eq!(route(&inter, true, false), Route::Flat, "non-commutative, interleaved");
        assert_eq!(route(&inter, true, true), Route::SiteAware);
        assert_eq!(route(&one_site, false, true), Route::Flat);
        assert_eq!(route(&singletons, false, true), Route::Flat);
    }

    #[test]
    fn agreement_input_gives_one_grouping_or_none() {
        let a = site_key("east");
        let b = site_key("west");
        assert_ne!(a, b);
        let mut gathered = Vec::new();
        for held in [Some((3, a)), Some((2, b)), Some((3, a)), Some((3, b))] {
            gathered.extend(contribution(held));
        }
        let g = agreed(&gathered).unwrap();
        assert_eq!(g.epoch, 2, "the oldest epoch anyone holds");
        assert_eq!(g.groups, vec![vec![0, 2], vec![1, 3]]);
        gathered.extend(contribution(None));
        assert_eq!(agreed(&gathered), None, "a rank without a map keeps everyone flat");
        assert_eq!(agreed(&[1]), None);
    }

    #[test]
    fn byte_model_sums_to_one_copy_per_remote_site() {
        // Three sites: {0,3,6}, {1,4,7}, {2,5}; epoch 0 leads with each group's first rank.
        let g = Grouping::new(0, &[0, 1, 2, 3, 4, 5, 6, 7], &[0, 1, 2, 0, 1, 2, 0, 1]).unwrap();
        let total = |op: SaOp, root: Option<usize>, payload: u64, sb: &[u64]| -> u64 {
            (0..8).map(|me| cross_site_bytes(op, &g, me, root, payload, sb)).sum()
        };
        assert_eq!(total(SaOp::Bcast, Some(4), 100, &[]), 200, "two remote sites, one copy each");
        assert_eq!(total(SaOp::Reduce, Some(4), 100, &[]), 200);
        assert_eq!(total(SaOp::Allreduce, None, 100, &[]), 400, "reduce in, broadcast out");
        assert_eq!(total(SaOp::Gather, Some(0), 0, &[30, 30, 20]), 50);
        assert_eq!(total(SaOp::Scatter, Some(0), 0, &[30, 30, 20]), 50);
        assert_eq!(total(SaOp::Allgather, None, 0, &[30, 30, 20]), 160);
        assert_eq!(total(SaOp::Barrier, None, 0, &[]), 0);
        assert_eq!(cross_site_bytes(SaOp::Bcast, &g, 3, Some(0), 100, &[]), 0, "not a leader");
        // The root speaks for its own site, not that site's leader.
        assert_eq!(cross_site_bytes(SaOp::Bcast, &g, 4, Some(4), 100, &[]), 200);
        assert_eq!(cross_site_bytes(SaOp::Bcast, &g, 1, Some(4), 100, &[]), 0);
    }

    #[test]
    fn regrouping_asks_the_one_model_in_the_shims_units() {
        let blocks = Grouping::new(0, &[0, 1, 2, 3, 4, 5, 6, 7], &[0, 0, 0, 0, 1, 1, 1, 1]).unwrap();
        let inter = Grouping::new(0, &[0, 1, 2, 3, 4, 5, 6, 7], &[0, 1, 0, 1, 0, 1, 0, 1]).unwrap();
        let one_seven = Grouping::new(0, &[0, 1, 2, 3, 4, 5, 6, 7], &[0, 1, 1, 1, 1, 1, 1, 1]).unwrap();
        assert!(!pays(SaOp::Bcast, &inter, Some(0), 8), "one crossing round: latency is the same");
        assert!(pays(SaOp::Bcast, &inter, Some(0), 65_536), "7.5 copies cross instead of one");
        assert!(pays(SaOp::Barrier, &blocks, None, 0), "dissemination crosses in every round");
        // An all-to-all passes one block: 8 B go Bruck (every round crosses), 4 KiB all at
        // once (one crossing), 512 KiB pairwise with the same bytes either way.
        assert!(pays(SaOp::Alltoall, &blocks, None, 8));
        assert!(!pays(SaOp::Alltoall, &inter, None, 4096));
        assert!(!pays(SaOp::Alltoall, &blocks, None, 1 << 19));
        // A gather passes the whole buffer: 64 B is eight 8-byte blocks, crossing three times
        // from 1+7; 4 MiB moves each remote block once either way.
        assert!(pays(SaOp::Gather, &one_seven, Some(0), 64));
        assert!(!pays(SaOp::Gather, &one_seven, Some(0), 1 << 22));
        assert!(!pays(SaOp::Allreduce, &blocks, None, 1 << 22));
        assert!(pays(SaOp::Allreduce, &inter, None, 1 << 22));
    }

    /// Ranks learn a new epoch at different moments (some never before the agreement);
    /// they still switch together, at the same collective, to the minimum they all hold.
    #[test]
    fn every_rank_switches_at_the_same_collective() {
        let period = 4;
        let ranks = 5;
        // newest[r][c]: the newest epoch rank r holds at its collective c.
        let learn_at = [3, 5, 9, 2, 6];
        let newest = |r: usize, c: u64| if c >= learn_at[r] { 2 } else { 1 };
        let mut agreements: Vec<Agreement> = (0..ranks).map(|_| Agreement::new(period)).collect();
        let mut started_with: Vec<Vec<u64>> = vec![Vec::new(); ranks];
        let mut epochs: Vec<Vec<u64>> = vec![Vec::new(); ranks];
        let mut pending_min: Option<u64> = None;
        for c in 0..20u64 {
            // All ranks take the same step at collective c (collectives are collective).
            let steps: Vec<Step> = agreements.iter_mut().map(|a| a.step()).collect();
            assert!(steps.windows(2).all(|w| w[0] == w[1]), "identical steps at {c}: {steps:?}");
            let mut used = Vec::new();
            for (r, a) in agreements.iter_mut().enumerate() {
                let mut e = steps[r].epoch;
                if steps[r].complete {
                    e = a.adopt(pending_min.expect("an agreement in flight"));
                }
                if steps[r].start {
                    a.started();
                    started_with[r].push(newest(r, c));
                }
                epochs[r].push(e);
                used.push(e);
            }
            if steps[0].start {
                pending_min = Some((0..ranks).map(|r| newest(r, c)).min().unwrap());
            }
            assert!(used.windows(2).all(|w| w[0] == w[1]), "one epoch per collective at {c}: {used:?}");
        }
        // Everyone holds epoch 2 from collective 9 on; the agreement started at 12 sees it
        // and is adopted at 16.
        let e = &epochs[0];
        assert_eq!(e[15], 1);
        assert_eq!(e[16], 2);
        assert!(e.windows(2).all(|w| w[0] <= w[1]), "epochs never go back: {e:?}");
    }
}
