//! A job's traffic: what every rank reported, as rank × rank matrices (cumulative), and
//! checkpoints of them for rates over a sliding window. Pure: no I/O, time is passed in.

use std::collections::{BTreeMap, VecDeque};

use ndarray::Array2;
use straddle_proto::{CollectiveTraffic, CommunicatorInfo, Hello, PeerTraffic, Report};

/// Why a report or hello was refused. Each names the field and the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrafficError {
    #[error("hello.rank {rank} is outside job {job} of world size {world_size}")]
    RankOutsideJob { job: String, rank: u32, world_size: u32 },
    #[error("hello.world_size {got} does not match job {job}'s world size {expected}")]
    WorldSizeMismatch { job: String, expected: u32, got: u32 },
    #[error("hello.world_size must be at least 1 (got 0)")]
    EmptyWorld,
    #[error("hello.job must not be empty")]
    EmptyJob,
    #[error("report.peers[{index}].dest {dest} is outside job {job} of world size {world_size}")]
    DestOutsideJob { job: String, index: usize, dest: u32, world_size: u32 },
    #[error("report.peers[{index}] (dest {dest}) reports a send to itself")]
    SelfSend { index: usize, dest: u32 },
    #[error("report.peers[{index}].{field} went backwards for dest {dest}: {was} -> {now}")]
    CounterBackwards { index: usize, dest: u32, field: &'static str, was: u64, now: u64 },
    #[error("report.seq {got} does not follow {last}")]
    SeqOutOfOrder { last: u64, got: u64 },
    #[error("report.communicators[{index}].{field} holds world rank {rank}, outside world size {world_size}")]
    CommRankOutsideJob { index: usize, field: &'static str, rank: u32, world_size: u32 },
}

/// Per-rank bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct RankState {
    pub node: String,
    pub incarnation: u64,
    pub attached: u32,
    pub reports: u64,
    pub last_seq: u64,
    pub last_report_ms: u64,
    /// When this incarnation's first report arrived (controller seconds).
    pub first_report_secs: Option<u64>,
    pub dropped: u64,
    /// Cross-site bytes of this rank's site-aware collectives, as the shim counts them.
    pub regrouped: u64,
    pub hello_seen: bool,
}

/// Raw per-source counters exactly as ranks reported them (row = reporting rank).
#[derive(Debug, Clone)]
struct Raw {
    p2p_bytes: Array2<u64>,
    p2p_messages: Array2<u64>,
    put_bytes: Array2<u64>,
    get_bytes: Array2<u64>,
    rma_ops: Array2<u64>,
}

impl Raw {
    fn zeros(n: usize) -> Raw {
        Raw {
            p2p_bytes: Array2::zeros((n, n)),
            p2p_messages: Array2::zeros((n, n)),
            put_bytes: Array2::zeros((n, n)),
            get_bytes: Array2::zeros((n, n)),
            rma_ops: Array2::zeros((n, n)),
        }
    }
}

/// Seconds between checkpoints of the cumulative matrices (the resolution of rates).
pub const CHECKPOINT_SECS: u64 = 2;

/// The longest window a rate can be asked over.
pub const MAX_WINDOW_SECS: u64 = 60;

/// The matrices an operator sees: `bytes[src][dst]` is everything that travelled src→dst.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrices {
    pub bytes: Array2<f64>,
    pub messages: Array2<f64>,
    pub rma_bytes: Array2<f64>,
    pub rma_operations: Array2<f64>,
}

#[derive(Debug, Clone)]
pub struct JobTraffic {
    pub job: String,
    pub world_size: u32,
    current: Raw,
    /// Rows of earlier incarnations of a rank (a restarted process counts from zero).
    archived: Raw,
    pub ranks: Vec<RankState>,
    pub communicators: BTreeMap<(u32, u32), CommunicatorInfo>,
    pub collectives: BTreeMap<(u32, u32, i32, i32, i32), CollectiveTraffic>,
    /// (time, cumulative matrices then), oldest first, CHECKPOINT_SECS apart: a rate is
    /// the difference to a checkpoint divided by the time since. Applying a report stays a
    /// few array writes per destination, whatever the window.
    checkpoints: VecDeque<(u64, Matrices)>,
}

impl JobTraffic {
    pub fn new(job: &str, world_size: u32) -> JobTraffic {
        let n = world_size as usize;
        JobTraffic {
            job: job.to_string(),
            world_size,
            current: Raw::zeros(n),
            archived: Raw::zeros(n),
            ranks: vec![RankState::default(); n],
            communicators: BTreeMap::new(),
            collectives: BTreeMap::new(),
            checkpoints: VecDeque::new(),
        }
    }

    /// Checks a hello against this job; nothing changes when it is refused.
    pub fn check_hello(&self, h: &Hello) -> Result<(), TrafficError> {
        if h.world_size != self.world_size {
            return Err(TrafficError::WorldSizeMismatch { job: self.job.clone(), expected: self.world_size, got: h.world_size });
        }
        if h.rank >= self.world_size {
            return Err(TrafficError::RankOutsideJob { job: self.job.clone(), rank: h.rank, world_size: self.world_size });
        }
        Ok(())
    }

    /// A rank attached. A new incarnation archives the previous process's counts.
    pub fn attach(&mut self, h: &Hello) -> Result<(), TrafficError> {
        self.check_hello(h)?;
        let r = h.rank as usize;
        let st = &mut self.ranks[r];
        if st.hello_seen && st.incarnation != h.incarnation {
            for (cur, arch) in [
                (&mut self.current.p2p_bytes, &mut self.archived.p2p_bytes),
                (&mut self.current.p2p_messages, &mut self.archived.p2p_messages),
                (&mut self.current.put_bytes, &mut self.archived.put_bytes),
                (&mut self.current.get_bytes, &mut self.archived.get_bytes),
                (&mut self.current.rma_ops, &mut self.archived.rma_ops),
            ] {
                let row = cur.row(r).to_owned();
                let mut a = arch.row_mut(r);
                a += &row;
                cur.row_mut(r).fill(0);
            }
            self.collectives.retain(|k, _| k.0 != h.rank);
            self.communicators.retain(|k, _| k.0 != h.rank);
        }
        let new_incarnation = self.ranks[r].incarnation != h.incarnation;
        let st = &mut self.ranks[r];
        if new_incarnation {
            st.first_report_secs = None;
        }
        // Sequence numbers order reports within one stream.
        st.last_seq = 0;
        st.hello_seen = true;
        st.incarnation = h.incarnation;
        st.node = h.node.clone();
        st.attached += 1;
        Ok(())
    }

    pub fn detach(&mut self, rank: u32) {
        if let Some(st) = self.ranks.get_mut(rank as usize) {
            st.attached = st.attached.saturating_sub(1);
        }
    }

    /// Validates a whole report, then applies it; a refused report changes nothing.
    pub fn apply(&mut self, rank: u32, rep: &Report, now_secs: u64, now_ms: u64) -> Result<(), TrafficError> {
        let n = self.world_size;
        let src = rank as usize;
        let st = &self.ranks[src];
        if st.last_seq != 0 && rep.seq <= st.last_seq {
            return Err(TrafficError::SeqOutOfOrder { last: st.last_seq, got: rep.seq });
        }
        for (i, p) in rep.peers.iter().enumerate() {
            if p.dest >= n {
                return Err(TrafficError::DestOutsideJob { job: self.job.clone(), index: i, dest: p.dest, world_size: n });
            }
            if p.dest == rank {
                return Err(TrafficError::SelfSend { index: i, dest: p.dest });
            }
            let d = p.dest as usize;
            for (field, was, now) in [
                ("p2p_bytes", self.current.p2p_bytes[[src, d]], p.p2p_bytes),
                ("p2p_messages", self.current.p2p_messages[[src, d]], p.p2p_messages),
                ("rma_put_bytes", self.current.put_bytes[[src, d]], p.rma_put_bytes),
                ("rma_get_bytes", self.current.get_bytes[[src, d]], p.rma_get_bytes),
                ("rma_operations", self.current.rma_ops[[src, d]], p.rma_operations),
            ] {
                if now < was {
                    return Err(TrafficError::CounterBackwards { index: i, dest: p.dest, field, was, now });
                }
            }
        }
        for (i, c) in rep.communicators.iter().enumerate() {
            for (field, list) in [("world_ranks", &c.world_ranks), ("remote_world_ranks", &c.remote_world_ranks)] {
                if let Some(&bad) = list.iter().find(|&&r| r >= n) {
                    return Err(TrafficError::CommRankOutsideJob { index: i, field, rank: bad, world_size: n });
                }
            }
        }
        // Valid: checkpoint (the state before this report) when due, then apply.
        if self.checkpoints.back().is_none_or(|(t, _)| now_secs >= t + CHECKPOINT_SECS) {
            let snap = self.cumulative();
            self.checkpoints.push_back((now_secs, snap));
            while self.checkpoints.len() as u64 > MAX_WINDOW_SECS / CHECKPOINT_SECS + 1 {
                self.checkpoints.pop_front();
            }
        }
        for p in &rep.peers {
            let d = p.dest as usize;
            self.current.p2p_bytes[[src, d]] = p.p2p_bytes;
            self.current.p2p_messages[[src, d]] = p.p2p_messages;
            self.current.put_bytes[[src, d]] = p.rma_put_bytes;
            self.current.get_bytes[[src, d]] = p.rma_get_bytes;
            self.current.rma_ops[[src, d]] = p.rma_operations;
        }
        for c in &rep.communicators {
            self.communicators.insert((rank, c.comm_id), c.clone());
        }
        for c in &rep.collectives {
            self.collectives.insert((rank, c.comm_id, c.op, c.mode, c.root), c.clone());
        }
        let st = &mut self.ranks[src];
        st.reports += 1;
        st.last_seq = rep.seq;
        st.last_report_ms = now_ms;
        st.first_report_secs.get_or_insert(now_secs);
        st.dropped = rep.dropped_records;
        st.regrouped = rep.regrouped_cross_site_bytes;
        Ok(())
    }

    /// Cumulative matrices in travel direction.
    pub fn cumulative(&self) -> Matrices {
        let f = |a: &Array2<u64>| a.mapv(|v| v as f64);
        let p2p = f(&self.current.p2p_bytes) + f(&self.archived.p2p_bytes);
        let put = f(&self.current.put_bytes) + f(&self.archived.put_bytes);
        let get = f(&self.current.get_bytes) + f(&self.archived.get_bytes);
        let rma = &put + &get.t();
        Matrices {
            bytes: &p2p + &rma,
            messages: f(&self.current.p2p_messages) + f(&self.archived.p2p_messages),
            rma_bytes: rma,
            rma_operations: f(&self.current.rma_ops) + f(&self.archived.rma_ops),
        }
    }

    /// Per-second rates over (at least) the last `window_secs` before `now_secs`: against
    /// the newest checkpoint that old, or the oldest one kept. Zero before any report.
    pub fn rate(&self, now_secs: u64, window_secs: u64) -> Matrices {
        let n = self.world_size as usize;
        let w = window_secs.clamp(1, MAX_WINDOW_SECS);
        let base = self.checkpoints.iter().rev().find(|(t, _)| t + w <= now_secs).or(self.checkpoints.front());
        let Some((t, then)) = base else {
            let z = Array2::zeros((n, n));
            return Matrices { bytes: z.clone(), messages: z.clone(), rma_bytes: z.clone(), rma_operations: z };
        };
        let dt = (now_secs.saturating_sub(*t)).max(1) as f64;
        let now = self.cumulative();
        Matrices {
            bytes: (&now.bytes - &then.bytes) / dt,
            messages: (&now.messages - &then.messages) / dt,
            rma_bytes: (&now.rma_bytes - &then.rma_bytes) / dt,
            rma_operations: (&now.rma_operations - &then.rma_operations) / dt,
        }
    }

    /// The collectives the job calls, from each communicator's lowest member's records
    /// (every member reports the same calls): members as world ranks, op, root, average
    /// calls per second since that rank's first report, and bytes per call.
    pub fn collective_uses(&self, now_secs: u64) -> Vec<crate::classify::CollectiveUse> {
        let mut out = Vec::new();
        for (&(rank, comm_id, op, mode, root), c) in &self.collectives {
            let Some(info) = self.communicators.get(&(rank, comm_id)) else { continue };
            if info.inter || info.world_ranks.iter().min() != Some(&rank) || c.calls == 0 {
                continue;
            }
            let Ok(op) = straddle_proto::CollectiveOp::try_from(op) else { continue };
            let since = self.ranks[rank as usize].first_report_secs.unwrap_or(now_secs);
            let elapsed = (now_secs.saturating_sub(since)).max(1) as f64;
            out.push(crate::classify::CollectiveUse {
                members: info.world_ranks.iter().map(|&r| r as usize).collect(),
                op,
                root: root.max(0) as usize,
                site_aware: mode == straddle_proto::CollectiveMode::SiteAware as i32,
                calls_per_s: c.calls as f64 / elapsed,
                bytes_per_call: c.bytes as f64 / c.calls as f64,
            });
        }
        out
    }

    pub fn attached_ranks(&self) -> u32 {
        self.ranks.iter().filter(|r| r.attached > 0).count() as u32
    }
}

/// A peer entry, for tests and tools.
pub fn peer(dest: u32, p2p_bytes: u64, p2p_messages: u64) -> PeerTraffic {
    PeerTraffic { dest, p2p_bytes, p2p_messages, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(rank: u32, world: u32, inc: u64) -> Hello {
        Hello { job: "j".into(), rank, world_size: world, node: format!("n{rank}"), incarnation: inc, ..Default::default() }
    }

    fn report(seq: u64, peers: Vec<PeerTraffic>) -> Report {
        Report { seq, peers, ..Default::default() }
    }

    #[test]
    fn cumulative_reports_are_idempotent() {
        let mut j = JobTraffic::new("j", 3);
        j.attach(&hello(0, 3, 1)).unwrap();
        j.apply(0, &report(1, vec![peer(1, 100, 1)]), 10, 0).unwrap();
        j.apply(0, &report(2, vec![peer(1, 300, 3), peer(2, 8, 1)]), 11, 0).unwrap();
        // A reconnect resends the full state: nothing doubles.
        j.attach(&hello(0, 3, 1)).unwrap();
        j.apply(0, &report(1, vec![peer(1, 300, 3), peer(2, 8, 1)]), 12, 0).unwrap();
        let m = j.cumulative();
        assert_eq!(m.bytes[[0, 1]], 300.0);
        assert_eq!(m.messages[[0, 1]], 3.0);
        assert_eq!(m.bytes[[0, 2]], 8.0);
        assert_eq!(m.bytes.sum(), 308.0);
    }

    #[test]
    fn rma_get_travels_from_target_to_origin() {
        let mut j = JobTraffic::new("j", 2);
        j.attach(&hello(0, 2, 1)).unwrap();
        let p = PeerTraffic { dest: 1, rma_put_bytes: 16, rma_get_bytes: 40, rma_operations: 2, ..Default::default() };
        j.apply(0, &report(1, vec![p]), 1, 0).unwrap();
        let m = j.cumulative();
        assert_eq!(m.bytes[[0, 1]], 16.0);
        assert_eq!(m.bytes[[1, 0]], 40.0);
        assert_eq!(m.rma_operations[[0, 1]], 2.0);
        assert_eq!(m.messages.sum(), 0.0);
    }

    #[test]
    fn bad_reports_change_nothing_and_name_the_field() {
        let mut j = JobTraffic::new("j", 2);
        j.attach(&hello(1, 2, 1)).unwrap();
        j.apply(1, &report(1, vec![peer(0, 50, 1)]), 1, 0).unwrap();
        let err = j.apply(1, &report(2, vec![peer(0, 60, 2), peer(5, 1, 1)]), 1, 0).unwrap_err();
        assert!(err.to_string().contains("report.peers[1].dest 5"), "{err}");
        let err = j.apply(1, &report(3, vec![peer(0, 10, 1)]), 1, 0).unwrap_err();
        assert!(err.to_string().contains("p2p_bytes went backwards"), "{err}");
        let err = j.apply(1, &report(4, vec![peer(1, 10, 1)]), 1, 0).unwrap_err();
        assert_eq!(err, TrafficError::SelfSend { index: 0, dest: 1 });
        let err = j.apply(1, &report(1, vec![]), 1, 0).unwrap_err();
        assert_eq!(err, TrafficError::SeqOutOfOrder { last: 1, got: 1 });
        assert_eq!(j.cumulative().bytes[[1, 0]], 50.0);
        assert!(matches!(j.check_hello(&hello(2, 2, 1)), Err(TrafficError::RankOutsideJob { .. })));
        assert!(matches!(j.check_hello(&hello(0, 3, 1)), Err(TrafficError::WorldSizeMismatch { .. })));
    }

    #[test]
    fn new_incarnation_keeps_the_old_counts() {
        let mut j = JobTraffic::new("j", 2);
        j.attach(&hello(0, 2, 1)).unwrap();
        j.apply(0, &report(1, vec![peer(1, 70, 7)]), 1, 0).unwrap();
        j.attach(&hello(0, 2, 2)).unwrap();
        j.apply(0, &report(1, vec![peer(1, 5, 1)]), 2, 0).unwrap();
        let m = j.cumulative();
        assert_eq!(m.bytes[[0, 1]], 75.0);
        assert_eq!(m.messages[[0, 1]], 8.0);
    }

    #[test]
    fn collectives_become_uses_once_per_communicator() {
        use straddle_proto::{CollectiveOp, CollectiveTraffic, CommunicatorInfo};
        let mut j = JobTraffic::new("j", 4);
        for r in 0..4 {
            j.attach(&hello(r, 4, 1)).unwrap();
        }
        for r in 0..4u32 {
            let rep = Report {
                seq: 1,
                communicators: vec![CommunicatorInfo { comm_id: 1, world_ranks: vec![0, 1, 2, 3], ..Default::default() }],
                collectives: vec![CollectiveTraffic {
                    comm_id: 1,
                    op: CollectiveOp::Allreduce as i32,
                    mode: 1,
                    root: -1,
                    calls: 20,
                    bytes: 160,
                }],
                ..Default::default()
            };
            j.apply(r, &rep, 100, 0).unwrap();
        }
        let uses = j.collective_uses(110);
        assert_eq!(uses.len(), 1, "one communicator, counted once");
        assert_eq!(
            (uses[0].members.clone(), uses[0].op, uses[0].calls_per_s, uses[0].bytes_per_call),
            (vec![0, 1, 2, 3], CollectiveOp::Allreduce, 2.0, 8.0)
        );
    }

    #[test]
    fn rate_over_a_sliding_window() {
        let mut j = JobTraffic::new("j", 2);
        j.attach(&hello(0, 2, 1)).unwrap();
        assert_eq!(j.rate(100, 5).bytes[[0, 1]], 0.0);
        // Checkpoints hold the state before each report, CHECKPOINT_SECS apart.
        j.apply(0, &report(1, vec![peer(1, 1000, 1)]), 100, 0).unwrap(); // cp(100) = 0
        j.apply(0, &report(2, vec![peer(1, 3000, 2)]), 102, 0).unwrap(); // cp(102) = 1000
        j.apply(0, &report(3, vec![peer(1, 4000, 3)]), 103, 0).unwrap(); // no checkpoint
        j.apply(0, &report(4, vec![peer(1, 7000, 4)]), 106, 0).unwrap(); // cp(106) = 4000
                                                                         // 4 s window at 106: against cp(102): (7000 - 1000) / 4.
        assert_eq!(j.rate(106, 4).bytes[[0, 1]], 1500.0);
        assert_eq!(j.rate(106, 4).messages[[0, 1]], 0.75);
        // Longer than kept history: against the oldest checkpoint, 7000 over 6 s.
        assert!((j.rate(106, 50).bytes[[0, 1]] - 7000.0 / 6.0).abs() < 1e-9);
        // Nothing new for a while: the rate falls.
        assert!(j.rate(160, 2).bytes[[0, 1]] < 100.0);
    }
}
