//! A job's traffic: what every rank reported, kept per pair of ranks that talk (memory grows
//! with the pairs that talk, never with world size squared), and rates over a sliding
//! window. Pure: no I/O, time is passed in.
//!
//! Reports carry cumulative counters per destination, so applying one is idempotent: a
//! lost report or a reconnect loses and doubles nothing. Rates compare today's totals with
//! the totals at a checkpoint. Checkpoints are taken every `CHECKPOINT_SECS` (kept at that
//! resolution for `FINE_SECS`, then one per `COARSE_SECS` up to `MAX_WINDOW_SECS`), and a
//! pair records its total at a checkpoint lazily — only when a report changes it — so an
//! idle pair costs nothing per checkpoint.

use std::collections::{BTreeMap, HashMap, VecDeque};

use ndarray::Array2;
use rustc_hash::FxHashMap;

use crate::classify::{CollectiveUse, JobProfile, PairRate};
use crate::collective::{CollectiveMode, CollectiveOp};
use crate::time::Time;

/// Who a rank is: the first message of its stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankHello {
    pub job: String,
    pub rank: u32,
    pub world_size: u32,
    pub node: String,
    /// One process lifetime of the rank.
    pub incarnation: u64,
}

/// What a rank sent one destination since it started (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerCounters {
    pub dest: u32,
    pub p2p_bytes: u64,
    pub p2p_messages: u64,
    /// Origin data written at the target (Put, Accumulate, ...).
    pub rma_put_bytes: u64,
    /// Data read from the target back to this rank (Get, ...).
    pub rma_get_bytes: u64,
    pub rma_operations: u64,
}

/// A communicator a rank has seen, as world ranks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Communicator {
    pub comm_id: u32,
    pub world_ranks: Vec<u32>,
    pub inter: bool,
    pub remote_world_ranks: Vec<u32>,
}

/// Cumulative calls and bytes of one (communicator, op, mode, root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectiveCounters {
    pub comm_id: u32,
    pub op: CollectiveOp,
    pub mode: CollectiveMode,
    /// Communicator rank of the root; -1 when the op has none.
    pub root: i32,
    pub calls: u64,
    pub bytes: u64,
}

/// One report of one rank.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankReport {
    pub seq: u64,
    pub peers: Vec<PeerCounters>,
    pub communicators: Vec<Communicator>,
    pub collectives: Vec<CollectiveCounters>,
    pub dropped_records: u64,
    /// Cross-site bytes of this rank's site-aware collectives (cumulative).
    pub regrouped_cross_site_bytes: u64,
}

/// Why a report or hello was refused. Each names the field and the value.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TrafficError {
    #[error("hello.rank {rank} is outside job {job} of world size {world_size}")]
    RankOutsideJob { job: String, rank: u32, world_size: u32 },
    #[error("hello.world_size {got} does not match job {job}'s world size {expected}")]
    WorldSizeMismatch { job: String, expected: u32, got: u32 },
    #[error("hello.world_size must be at least 1 (got 0)")]
    EmptyWorld,
    #[error("hello.world_size {got} exceeds the largest job this controller accepts ({max} ranks)")]
    WorldTooLarge { got: u32, max: u32 },
    #[error("hello.job must not be empty")]
    EmptyJob,
    #[error("report.peers[{index}].dest {dest} is outside job {job} of world size {world_size}")]
    DestOutsideJob { job: String, index: usize, dest: u32, world_size: u32 },
    #[error("report.peers[{index}] (dest {dest}) reports a send to itself")]
    SelfSend { index: usize, dest: u32 },
    #[error("report.peers[{index}] names dest {dest} a second time")]
    DuplicateDest { index: usize, dest: u32 },
    #[error("report.peers[{index}].{field} went backwards for dest {dest}: {was} -> {now}")]
    CounterBackwards { index: usize, dest: u32, field: &'static str, was: u64, now: u64 },
    #[error("report.seq {got} does not follow {last}")]
    SeqOutOfOrder { last: u64, got: u64 },
    #[error("report.communicators[{index}].{field} holds world rank {rank}, outside world size {world_size}")]
    CommRankOutsideJob { index: usize, field: &'static str, rank: u32, world_size: u32 },
    #[error("report.communicators[{index}].{field} lists {len} ranks, more than the job's {world_size}")]
    CommTooLarge { index: usize, field: &'static str, len: usize, world_size: u32 },
    #[error("report.peers: job {job} would track {pairs} pairs of ranks, over the limit of {max}")]
    TooManyPairs { job: String, pairs: usize, max: usize },
    #[error("report from rank {rank}, which has not said hello")]
    NoHello { rank: u32 },
    #[error("hello.rank {rank} of job {job} already has {max} streams open")]
    TooManyStreams { job: String, rank: u32, max: u32 },
}

/// Bounds on what one job may make the controller hold; an outsider chooses the sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_world_size: u32,
    /// Pairs of ranks with traffic, per job.
    pub max_pairs: usize,
    /// Communicators and collective keys one rank may describe; more are ignored and
    /// counted in `RankState::ignored_keys`.
    pub max_communicators_per_rank: usize,
    pub max_collective_keys_per_rank: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_world_size: 65_536, max_pairs: 4_000_000, max_communicators_per_rank: 4_096, max_collective_keys_per_rank: 16_384 }
    }
}

/// Per-rank bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct RankState {
    pub node: String,
    pub incarnation: u64,
    /// Open streams from this rank now.
    pub attached: u32,
    pub reports: u64,
    pub last_seq: u64,
    pub last_report_ms: u64,
    /// When this incarnation's first report arrived.
    pub first_report: Option<Time>,
    pub dropped: u64,
    /// Cross-site bytes of this rank's site-aware collectives, as the shim counts them.
    pub regrouped: u64,
    pub hello_seen: bool,
    /// Communicators and collective keys beyond the per-rank limits, not kept.
    pub ignored_keys: u64,
}

/// Raw counters of one (reporting rank, destination) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    p2p_bytes: u64,
    p2p_messages: u64,
    put_bytes: u64,
    get_bytes: u64,
    rma_ops: u64,
}

impl Counters {
    fn of(p: &PeerCounters) -> Counters {
        Counters {
            p2p_bytes: p.p2p_bytes,
            p2p_messages: p.p2p_messages,
            put_bytes: p.rma_put_bytes,
            get_bytes: p.rma_get_bytes,
            rma_ops: p.rma_operations,
        }
    }

    fn plus(self, o: Counters) -> Counters {
        Counters {
            p2p_bytes: self.p2p_bytes.saturating_add(o.p2p_bytes),
            p2p_messages: self.p2p_messages.saturating_add(o.p2p_messages),
            put_bytes: self.put_bytes.saturating_add(o.put_bytes),
            get_bytes: self.get_bytes.saturating_add(o.get_bytes),
            rma_ops: self.rma_ops.saturating_add(o.rma_ops),
        }
    }

    fn minus(self, o: Counters) -> Counters {
        Counters {
            p2p_bytes: self.p2p_bytes.saturating_sub(o.p2p_bytes),
            p2p_messages: self.p2p_messages.saturating_sub(o.p2p_messages),
            put_bytes: self.put_bytes.saturating_sub(o.put_bytes),
            get_bytes: self.get_bytes.saturating_sub(o.get_bytes),
            rma_ops: self.rma_ops.saturating_sub(o.rma_ops),
        }
    }
}

/// One pair's counters: this incarnation's, earlier incarnations' (a restarted process
/// counts from zero), and its totals at checkpoints (seq, total before the first change
/// after that checkpoint), oldest first.
#[derive(Debug, Clone, Default)]
struct Pair {
    src: u32,
    dst: u32,
    current: Counters,
    archived: Counters,
    history: Vec<(u64, Counters)>,
}

impl Pair {
    fn total(&self) -> Counters {
        self.current.plus(self.archived)
    }

    /// Its total as of checkpoint `seq`: the total before the first change after it.
    fn at(&self, seq: u64) -> Counters {
        match self.history.iter().find(|(s, _)| *s >= seq) {
            Some((_, c)) => *c,
            None => self.total(),
        }
    }
}

/// Streams one rank may hold open at once (a reconnect overlaps the old stream briefly).
pub const MAX_STREAMS_PER_RANK: u32 = 4;

/// Seconds between checkpoints (the resolution of short windows).
pub const CHECKPOINT_SECS: u64 = 2;
/// Checkpoints this recent are all kept.
pub const FINE_SECS: u64 = 12;
/// Older checkpoints are kept one per this many seconds.
pub const COARSE_SECS: u64 = 10;
/// The longest window a rate can be asked over.
pub const MAX_WINDOW_SECS: u64 = 60;

/// Traffic in the direction it travelled (`bytes` is everything src→dst: point-to-point,
/// data put at dst, data dst read back from src).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairTraffic {
    pub src: u32,
    pub dst: u32,
    pub bytes: f64,
    pub messages: f64,
    pub rma_bytes: f64,
    pub rma_operations: f64,
}

/// A job's traffic as pairs: cumulative totals, or rates over `window` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficView {
    pub world_size: u32,
    /// Seconds the rates are over (zero for cumulative totals).
    pub window_secs: f64,
    /// Sorted by (src, dst); pairs with nothing are left out.
    pub pairs: Vec<PairTraffic>,
}

/// Dense matrices of a view (for small jobs: tables, tests).
#[derive(Debug, Clone, PartialEq)]
pub struct Matrices {
    pub bytes: Array2<f64>,
    pub messages: Array2<f64>,
    pub rma_bytes: Array2<f64>,
    pub rma_operations: Array2<f64>,
}

impl TrafficView {
    pub fn dense(&self) -> Matrices {
        let n = self.world_size as usize;
        let mut m = Matrices {
            bytes: Array2::zeros((n, n)),
            messages: Array2::zeros((n, n)),
            rma_bytes: Array2::zeros((n, n)),
            rma_operations: Array2::zeros((n, n)),
        };
        for p in &self.pairs {
            let ix = [p.src as usize, p.dst as usize];
            m.bytes[ix] = p.bytes;
            m.messages[ix] = p.messages;
            m.rma_bytes[ix] = p.rma_bytes;
            m.rma_operations[ix] = p.rma_operations;
        }
        m
    }

    pub fn total_bytes(&self) -> f64 {
        self.pairs.iter().map(|p| p.bytes).sum()
    }

    pub fn total_messages(&self) -> f64 {
        self.pairs.iter().map(|p| p.messages).sum()
    }
}

/// Key of a collective record: (reporting rank, comm_id, op, mode, root).
pub type CollectiveKey = (u32, u32, CollectiveOp, CollectiveMode, i32);

#[derive(Debug, Clone)]
pub struct JobTraffic {
    pub job: String,
    pub world_size: u32,
    /// Which run of this job name (a new run starts new counts).
    pub run: u64,
    limits: Limits,
    /// Counters of every (reporting rank, destination) that talked, and where each is.
    pairs: Vec<Pair>,
    index: FxHashMap<u64, u32>,
    /// Per reporting rank, its pairs.
    by_src: Vec<Vec<u32>>,
    /// Destinations seen in the report being checked (a bit per rank).
    seen: Vec<u64>,
    pub ranks: Vec<RankState>,
    pub communicators: BTreeMap<(u32, u32), Communicator>,
    pub collectives: BTreeMap<CollectiveKey, CollectiveCounters>,
    /// Keys per rank (communicators, collectives), for the limits.
    keys: HashMap<u32, (usize, usize)>,
    /// Kept checkpoints: (seq, time), oldest first.
    checkpoints: VecDeque<(u64, Time)>,
    next_checkpoint: u64,
    /// When a rank last attached, reported or left (set by the owner: jobs idle long
    /// enough are forgotten).
    pub last_activity: Time,
}

impl JobTraffic {
    pub fn new(job: &str, world_size: u32, limits: Limits) -> JobTraffic {
        JobTraffic {
            job: job.to_string(),
            world_size,
            run: 1,
            limits,
            pairs: Vec::new(),
            index: FxHashMap::default(),
            by_src: Vec::new(),
            seen: Vec::new(),
            ranks: Vec::new(),
            communicators: BTreeMap::new(),
            collectives: BTreeMap::new(),
            keys: HashMap::new(),
            checkpoints: VecDeque::new(),
            next_checkpoint: 1,
            last_activity: Time::ZERO,
        }
    }

    /// Checks a world size against the limits before a job is created for it.
    pub fn check_world(world_size: u32, limits: &Limits) -> Result<(), TrafficError> {
        if world_size == 0 {
            return Err(TrafficError::EmptyWorld);
        }
        if world_size > limits.max_world_size {
            return Err(TrafficError::WorldTooLarge { got: world_size, max: limits.max_world_size });
        }
        Ok(())
    }

    /// Checks a hello against this job; nothing changes when it is refused.
    pub fn check_hello(&self, h: &RankHello) -> Result<(), TrafficError> {
        if h.world_size != self.world_size {
            return Err(TrafficError::WorldSizeMismatch { job: self.job.clone(), expected: self.world_size, got: h.world_size });
        }
        if h.rank >= self.world_size {
            return Err(TrafficError::RankOutsideJob { job: self.job.clone(), rank: h.rank, world_size: self.world_size });
        }
        Ok(())
    }

    /// Every rank attached at some point and none is attached now: the run is over.
    pub fn finished(&self) -> bool {
        self.ranks.len() == self.world_size as usize && self.ranks.iter().all(|r| r.hello_seen && r.attached == 0)
    }

    /// A rank attached. A new incarnation keeps the previous process's counts (archived).
    pub fn attach(&mut self, h: &RankHello) -> Result<(), TrafficError> {
        self.check_hello(h)?;
        let rank = h.rank;
        if self.ranks.len() <= rank as usize {
            // Ranks are kept as they say hello: a job costs what its ranks do, not its size.
            self.ranks.resize_with(rank as usize + 1, RankState::default);
        }
        if self.ranks[rank as usize].attached >= MAX_STREAMS_PER_RANK {
            return Err(TrafficError::TooManyStreams { job: self.job.clone(), rank, max: MAX_STREAMS_PER_RANK });
        }
        let st = &self.ranks[rank as usize];
        if st.hello_seen && st.incarnation != h.incarnation {
            for &i in self.by_src.get(rank as usize).map(Vec::as_slice).unwrap_or_default() {
                let p = &mut self.pairs[i as usize];
                p.archived = p.archived.plus(p.current);
                p.current = Counters::default();
            }
            self.collectives.retain(|k, _| k.0 != rank);
            self.communicators.retain(|k, _| k.0 != rank);
            self.keys.remove(&rank);
        }
        let st = &mut self.ranks[rank as usize];
        if st.incarnation != h.incarnation {
            st.first_report = None;
        }
        // Sequence numbers order reports within one stream.
        st.last_seq = 0;
        st.hello_seen = true;
        st.incarnation = h.incarnation;
        st.node.clone_from(&h.node);
        st.attached += 1;
        Ok(())
    }

    pub fn detach(&mut self, rank: u32) {
        if let Some(st) = self.ranks.get_mut(rank as usize) {
            st.attached = st.attached.saturating_sub(1);
        }
    }

    /// Validates a whole report, then applies it; a refused report changes nothing.
    pub fn apply(&mut self, rank: u32, rep: &RankReport, now: Time, now_ms: u64) -> Result<(), TrafficError> {
        let n = self.world_size;
        let src = rank as usize;
        let Some(st) = self.ranks.get(src) else {
            return Err(TrafficError::NoHello { rank });
        };
        if st.last_seq != 0 && rep.seq <= st.last_seq {
            return Err(TrafficError::SeqOutOfOrder { last: st.last_seq, got: rep.seq });
        }
        let mut new_pairs = 0usize;
        if self.seen.is_empty() {
            self.seen = vec![0; (n as usize).div_ceil(64)];
        }
        let mut bad = None;
        for (i, p) in rep.peers.iter().enumerate() {
            if p.dest >= n {
                bad = Some(TrafficError::DestOutsideJob { job: self.job.clone(), index: i, dest: p.dest, world_size: n });
                break;
            }
            if p.dest == rank {
                bad = Some(TrafficError::SelfSend { index: i, dest: p.dest });
                break;
            }
            let (w, b) = ((p.dest / 64) as usize, 1u64 << (p.dest % 64));
            if self.seen[w] & b != 0 {
                bad = Some(TrafficError::DuplicateDest { index: i, dest: p.dest });
                break;
            }
            self.seen[w] |= b;
            let was = match self.index.get(&key(rank, p.dest)) {
                Some(&ix) => self.pairs[ix as usize].current,
                None => {
                    new_pairs += 1;
                    Counters::default()
                }
            };
            for (field, was, now) in [
                ("p2p_bytes", was.p2p_bytes, p.p2p_bytes),
                ("p2p_messages", was.p2p_messages, p.p2p_messages),
                ("rma_put_bytes", was.put_bytes, p.rma_put_bytes),
                ("rma_get_bytes", was.get_bytes, p.rma_get_bytes),
                ("rma_operations", was.rma_ops, p.rma_operations),
            ] {
                if now < was {
                    bad = Some(TrafficError::CounterBackwards { index: i, dest: p.dest, field, was, now });
                    break;
                }
            }
            if bad.is_some() {
                break;
            }
        }
        // Clear the marks of what was checked (only those: a report is small next to a world).
        for p in &rep.peers {
            if p.dest < n {
                self.seen[(p.dest / 64) as usize] = 0;
            }
        }
        if let Some(e) = bad {
            return Err(e);
        }
        if new_pairs > 0 && self.pairs.len() + new_pairs > self.limits.max_pairs {
            return Err(TrafficError::TooManyPairs {
                job: self.job.clone(),
                pairs: self.pairs.len() + new_pairs,
                max: self.limits.max_pairs,
            });
        }
        for (i, c) in rep.communicators.iter().enumerate() {
            for (field, list) in [("world_ranks", &c.world_ranks), ("remote_world_ranks", &c.remote_world_ranks)] {
                if list.len() > n as usize {
                    return Err(TrafficError::CommTooLarge { index: i, field, len: list.len(), world_size: n });
                }
                if let Some(&bad) = list.iter().find(|&&r| r >= n) {
                    return Err(TrafficError::CommRankOutsideJob { index: i, field, rank: bad, world_size: n });
                }
            }
        }
        // Valid: a checkpoint (the totals before this report) when one is due, then apply.
        if self.checkpoints.back().is_none_or(|(_, t)| now.since(*t).as_secs() >= CHECKPOINT_SECS) {
            self.checkpoint(now);
        }
        let cur = self.checkpoints.back().map_or(0, |c| c.0);
        let keep_from = self.checkpoints.front().map_or(0, |c| c.0);
        for p in &rep.peers {
            let ix = match self.index.get(&key(rank, p.dest)) {
                Some(&ix) => ix as usize,
                None => {
                    let ix = self.pairs.len();
                    self.pairs.push(Pair { src: rank, dst: p.dest, ..Pair::default() });
                    self.index.insert(key(rank, p.dest), u32::try_from(ix).unwrap_or(u32::MAX));
                    if self.by_src.len() <= src {
                        self.by_src.resize_with(src + 1, Vec::new);
                    }
                    self.by_src[src].push(u32::try_from(ix).unwrap_or(u32::MAX));
                    ix
                }
            };
            let pair = &mut self.pairs[ix];
            let next = Counters::of(p);
            if next == pair.current {
                continue;
            }
            if pair.history.last().is_none_or(|(s, _)| *s < cur) {
                let before = pair.total();
                pair.history.push((cur, before));
                if pair.history.len() > 16 {
                    prune(&mut pair.history, &self.checkpoints, keep_from);
                }
            }
            pair.current = next;
        }
        let (mut ncomm, mut ncoll) = self.keys.get(&rank).copied().unwrap_or((0, 0));
        let mut ignored = 0;
        for c in &rep.communicators {
            let key = (rank, c.comm_id);
            if !self.communicators.contains_key(&key) {
                if ncomm >= self.limits.max_communicators_per_rank {
                    ignored += 1;
                    continue;
                }
                ncomm += 1;
            }
            self.communicators.insert(key, c.clone());
        }
        for c in &rep.collectives {
            let key = (rank, c.comm_id, c.op, c.mode, c.root);
            if !self.collectives.contains_key(&key) {
                if ncoll >= self.limits.max_collective_keys_per_rank {
                    ignored += 1;
                    continue;
                }
                ncoll += 1;
            }
            self.collectives.insert(key, *c);
        }
        self.keys.insert(rank, (ncomm, ncoll));
        let st = &mut self.ranks[src];
        st.ignored_keys += ignored;
        st.reports += 1;
        st.last_seq = rep.seq;
        st.last_report_ms = now_ms;
        st.first_report.get_or_insert(now);
        st.dropped = rep.dropped_records;
        st.regrouped = rep.regrouped_cross_site_bytes;
        Ok(())
    }

    /// Starts checkpoint `next` at `now` and forgets the ones no window needs.
    fn checkpoint(&mut self, now: Time) {
        self.checkpoints.push_back((self.next_checkpoint, now));
        self.next_checkpoint += 1;
        let mut kept: VecDeque<(u64, Time)> = VecDeque::with_capacity(self.checkpoints.len());
        let mut last_bucket = None;
        for &(seq, t) in &self.checkpoints {
            let age = now.since(t).as_secs();
            // Past the longest window and a coarse step no rate needs it.
            if age > MAX_WINDOW_SECS + COARSE_SECS {
                continue;
            }
            if age > FINE_SECS {
                let bucket = t.as_secs() / COARSE_SECS;
                if last_bucket == Some(bucket) {
                    continue;
                }
                last_bucket = Some(bucket);
            }
            kept.push_back((seq, t));
        }
        self.checkpoints = kept;
    }

    /// Totals in the direction traffic travelled: a rank's put goes to its target, its get
    /// comes from it.
    fn travel(&self, f: impl Fn(&Pair) -> Counters) -> Vec<PairTraffic> {
        let mut out: BTreeMap<(u32, u32), PairTraffic> = BTreeMap::new();
        let mut add = |src: u32, dst: u32, bytes: u64, messages: u64, rma_bytes: u64, rma_ops: u64| {
            if bytes == 0 && messages == 0 && rma_ops == 0 {
                return;
            }
            let e =
                out.entry((src, dst)).or_insert(PairTraffic { src, dst, bytes: 0.0, messages: 0.0, rma_bytes: 0.0, rma_operations: 0.0 });
            e.bytes += bytes as f64;
            e.messages += messages as f64;
            e.rma_bytes += rma_bytes as f64;
            e.rma_operations += rma_ops as f64;
        };
        for p in &self.pairs {
            let (src, dst) = (p.src, p.dst);
            let c = f(p);
            add(src, dst, c.p2p_bytes + c.put_bytes, c.p2p_messages, c.put_bytes, c.rma_ops);
            add(dst, src, c.get_bytes, 0, c.get_bytes, 0);
        }
        out.into_values().collect()
    }

    /// Everything every rank sent, since the run started.
    pub fn cumulative(&self) -> TrafficView {
        TrafficView { world_size: self.world_size, window_secs: 0.0, pairs: self.travel(Pair::total) }
    }

    /// Per-second rates over (at least) the last `window_secs` before `now`: against the
    /// newest kept checkpoint that old, or the oldest one kept; `window_secs` of the result
    /// says over how long. Empty before any report.
    pub fn rate(&self, now: Time, window_secs: u64) -> TrafficView {
        let w = window_secs.clamp(1, MAX_WINDOW_SECS);
        let base = self.checkpoints.iter().rev().find(|(_, t)| now.since(*t).as_secs() >= w).or(self.checkpoints.front());
        let Some(&(seq, t)) = base else {
            return TrafficView { world_size: self.world_size, window_secs: w as f64, pairs: vec![] };
        };
        let dt = now.since(t).as_secs_f64().max(1.0);
        let mut pairs = self.travel(|p| p.total().minus(p.at(seq)));
        for p in &mut pairs {
            p.bytes /= dt;
            p.messages /= dt;
            p.rma_bytes /= dt;
            p.rma_operations /= dt;
        }
        TrafficView { world_size: self.world_size, window_secs: dt, pairs }
    }

    /// Every rank has reported in this run, and the first report is at least `window_secs`
    /// old: the job has a window of traffic to judge it by.
    pub fn has_window(&self, now: Time, window_secs: u64) -> bool {
        if self.ranks.len() < self.world_size as usize {
            return false;
        }
        let mut first = None::<Time>;
        for r in &self.ranks {
            match r.first_report {
                None => return false,
                Some(t) => first = Some(first.map_or(t, |f| f.min(t))),
            }
        }
        first.is_some_and(|f| now.since(f).as_secs() >= window_secs)
    }

    /// What the planner judges the job by: rates over the window, and its collectives.
    pub fn profile(&self, now: Time, window_secs: u64) -> JobProfile {
        let r = self.rate(now, window_secs);
        JobProfile {
            ranks: self.world_size as usize,
            pairs: r.pairs.iter().map(|p| PairRate { src: p.src, dst: p.dst, bytes: p.bytes, messages: p.messages }).collect(),
            collectives: self.collective_uses(now),
        }
    }

    /// The collectives the job calls, from each communicator's lowest member's records
    /// (every member reports the same calls): members as world ranks, op, root, average
    /// calls per second since that rank's first report, and bytes per call.
    pub fn collective_uses(&self, now: Time) -> Vec<CollectiveUse> {
        let mut out = Vec::new();
        for (&(rank, comm_id, op, mode, root), c) in &self.collectives {
            let Some(info) = self.communicators.get(&(rank, comm_id)) else { continue };
            if info.inter || info.world_ranks.iter().min() != Some(&rank) || c.calls == 0 {
                continue;
            }
            let since = self.ranks.get(rank as usize).and_then(|r| r.first_report).unwrap_or(now);
            let elapsed = now.since(since).as_secs_f64().max(1.0);
            out.push(CollectiveUse {
                members: info.world_ranks.iter().map(|&r| r as usize).collect(),
                op,
                root: usize::try_from(root.max(0)).unwrap_or(0),
                site_aware: mode == CollectiveMode::SiteAware,
                calls_per_s: c.calls as f64 / elapsed,
                bytes_per_call: c.bytes as f64 / c.calls as f64,
            });
        }
        out
    }

    pub fn attached_ranks(&self) -> u32 {
        u32::try_from(self.ranks.iter().filter(|r| r.attached > 0).count()).unwrap_or(u32::MAX)
    }

    /// Pairs of ranks with traffic (what the job's memory grows with).
    pub fn pair_count(&self) -> usize {
        self.pairs.len()
    }
}

/// The index key of a (reporting rank, destination) pair.
fn key(src: u32, dst: u32) -> u64 {
    (u64::from(src) << 32) | u64::from(dst)
}

/// Keeps, for every kept checkpoint, the first entry at or after it (what `Pair::at` reads).
fn prune(history: &mut Vec<(u64, Counters)>, checkpoints: &VecDeque<(u64, Time)>, keep_from: u64) {
    let mut keep = vec![false; history.len()];
    for &(seq, _) in checkpoints.iter().filter(|c| c.0 >= keep_from) {
        if let Some(i) = history.iter().position(|(s, _)| *s >= seq) {
            keep[i] = true;
        }
    }
    let mut i = 0;
    history.retain(|_| {
        let k = keep[i];
        i += 1;
        k
    });
}

/// A peer entry, for tests and tools.
pub fn peer(dest: u32, p2p_bytes: u64, p2p_messages: u64) -> PeerCounters {
    PeerCounters { dest, p2p_bytes, p2p_messages, ..Default::default() }
}

#[cfg(test)]
mod tests;
