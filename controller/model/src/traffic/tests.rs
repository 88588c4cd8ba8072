//! Traffic: idempotent cumulative reports, travel direction, refusals that change nothing,
//! windows, bounded memory.

use super::*;

fn hello(rank: u32, world: u32, inc: u64) -> RankHello {
    RankHello { job: "j".into(), rank, world_size: world, node: format!("n{rank}"), incarnation: inc }
}

fn report(seq: u64, peers: Vec<PeerCounters>) -> RankReport {
    RankReport { seq, peers, ..Default::default() }
}

fn t(s: u64) -> Time {
    Time::from_secs(s)
}

fn job(n: u32) -> JobTraffic {
    JobTraffic::new("j", n, Limits::default())
}

#[test]
fn cumulative_reports_are_idempotent() {
    let mut j = job(3);
    j.attach(&hello(0, 3, 1)).unwrap();
    j.apply(0, &report(1, vec![peer(1, 100, 1)]), t(10), 0).unwrap();
    j.apply(0, &report(2, vec![peer(1, 300, 3), peer(2, 8, 1)]), t(11), 0).unwrap();
    // A reconnect resends the full state: nothing doubles.
    j.attach(&hello(0, 3, 1)).unwrap();
    j.apply(0, &report(1, vec![peer(1, 300, 3), peer(2, 8, 1)]), t(12), 0).unwrap();
    let m = j.cumulative().dense();
    assert_eq!(m.bytes[[0, 1]], 300.0);
    assert_eq!(m.messages[[0, 1]], 3.0);
    assert_eq!(m.bytes[[0, 2]], 8.0);
    assert_eq!(m.bytes.sum(), 308.0);
}

#[test]
fn rma_get_travels_from_target_to_origin() {
    let mut j = job(2);
    j.attach(&hello(0, 2, 1)).unwrap();
    let p = PeerCounters { dest: 1, rma_put_bytes: 16, rma_get_bytes: 40, rma_operations: 2, ..Default::default() };
    j.apply(0, &report(1, vec![p]), t(1), 0).unwrap();
    let m = j.cumulative().dense();
    assert_eq!(m.bytes[[0, 1]], 16.0);
    assert_eq!(m.bytes[[1, 0]], 40.0);
    assert_eq!(m.rma_operations[[0, 1]], 2.0);
    assert_eq!(m.messages.sum(), 0.0);
}

#[test]
fn bad_reports_change_nothing_and_name_the_field() {
    let mut j = job(2);
    j.attach(&hello(1, 2, 1)).unwrap();
    j.apply(1, &report(1, vec![peer(0, 50, 1)]), t(1), 0).unwrap();
    let err = j.apply(1, &report(2, vec![peer(0, 60, 2), peer(5, 1, 1)]), t(1), 0).unwrap_err();
    assert!(err.to_string().contains("report.peers[1].dest 5"), "{err}");
    let err = j.apply(1, &report(3, vec![peer(0, 10, 1)]), t(1), 0).unwrap_err();
    assert!(err.to_string().contains("p2p_bytes went backwards"), "{err}");
    let err = j.apply(1, &report(4, vec![peer(1, 10, 1)]), t(1), 0).unwrap_err();
    assert_eq!(err, TrafficError::SelfSend { index: 0, dest: 1 });
    let err = j.apply(1, &report(4, vec![peer(0, 60, 2), peer(0, 70, 3)]), t(1), 0).unwrap_err();
    assert_eq!(err, TrafficError::DuplicateDest { index: 1, dest: 0 });
    let err = j.apply(1, &report(1, vec![]), t(1), 0).unwrap_err();
    assert_eq!(err, TrafficError::SeqOutOfOrder { last: 1, got: 1 });
    assert_eq!(j.cumulative().dense().bytes[[1, 0]], 50.0);
    assert!(matches!(j.check_hello(&hello(2, 2, 1)), Err(TrafficError::RankOutsideJob { .. })));
    assert!(matches!(j.check_hello(&hello(0, 3, 1)), Err(TrafficError::WorldSizeMismatch { .. })));
    let l = Limits::default();
    assert_eq!(JobTraffic::check_world(70_000, &l), Err(TrafficError::WorldTooLarge { got: 70_000, max: 65_536 }));
    assert_eq!(JobTraffic::check_world(0, &l), Err(TrafficError::EmptyWorld));
}

#[test]
fn new_incarnation_keeps_the_old_counts() {
    let mut j = job(2);
    j.attach(&hello(0, 2, 1)).unwrap();
    j.apply(0, &report(1, vec![peer(1, 70, 7)]), t(1), 0).unwrap();
    j.attach(&hello(0, 2, 2)).unwrap();
    j.apply(0, &report(1, vec![peer(1, 5, 1)]), t(2), 0).unwrap();
    let m = j.cumulative().dense();
    assert_eq!(m.bytes[[0, 1]], 75.0);
    assert_eq!(m.messages[[0, 1]], 8.0);
}

#[test]
fn rates_over_a_window_see_only_the_window() {
    let mut j = job(2);
    j.attach(&hello(0, 2, 1)).unwrap();
    // 1 MB/s for 30 s, then 10 MB/s for 10 s.
    let mut total = 0u64;
    for s in 0..=40u64 {
        total += if s <= 30 { 1_000_000 } else { 10_000_000 };
        j.apply(0, &report(s + 1, vec![peer(1, total, s + 1)]), t(s), 0).unwrap();
    }
    let r = j.rate(t(40), 10);
    assert_eq!(r.window_secs, 10.0);
    assert!((r.pairs[0].bytes - 10e6).abs() < 1.5e6, "{r:?}");
    let r = j.rate(t(40), 40);
    assert!(r.window_secs >= 40.0 && r.window_secs <= 50.0, "{r:?}");
    let avg = r.pairs[0].bytes;
    assert!(avg > 2e6 && avg < 4e6, "{avg}");
    // Idle since t=40: no new checkpoint, so the rate is over everything since the last
    // one and decays as time passes.
    let idle = j.rate(t(80), 10);
    assert!(idle.window_secs >= 40.0 && idle.pairs[0].bytes < 0.3e6, "{idle:?}");
}

#[test]
fn memory_grows_with_the_pairs_that_talk_and_is_bounded() {
    let mut j = JobTraffic::new("big", 1200, Limits { max_pairs: 2000, ..Limits::default() });
    j.attach(&RankHello { job: "big".into(), rank: 0, world_size: 1200, incarnation: 1, ..Default::default() }).unwrap();
    for s in 0..100u64 {
        let peers: Vec<PeerCounters> = (1..=1199).map(|d| peer(d, (s + 1) * 10, s + 1)).collect();
        j.apply(0, &report(s + 1, peers), t(s), 0).unwrap();
    }
    assert_eq!(j.pair_count(), 1199);
    let longest = j.pairs.iter().map(|p| p.history.len()).max().unwrap();
    assert!(longest <= 17, "history per pair stays short: {longest}");
    assert!(j.checkpoints.len() <= 13, "{:?}", j.checkpoints);
    j.attach(&RankHello { job: "big".into(), rank: 1, world_size: 1200, incarnation: 1, ..Default::default() }).unwrap();
    let peers: Vec<PeerCounters> = (2..1200).map(|d| peer(d, 1, 1)).collect();
    let e = j.apply(1, &report(1, peers), t(101), 0).unwrap_err();
    assert!(matches!(e, TrafficError::TooManyPairs { max: 2000, .. }), "{e}");
}

#[test]
fn a_window_of_traffic_needs_every_rank() {
    let mut j = job(2);
    j.attach(&hello(0, 2, 1)).unwrap();
    j.apply(0, &report(1, vec![peer(1, 5, 1)]), t(0), 0).unwrap();
    assert!(!j.has_window(t(30), 10), "rank 1 never reported");
    j.attach(&hello(1, 2, 1)).unwrap();
    j.apply(1, &report(1, vec![]), t(5), 0).unwrap();
    assert!(!j.has_window(t(9), 10));
    assert!(j.has_window(t(10), 10));
    assert!(!j.finished());
    j.detach(0);
    j.detach(1);
    assert!(j.finished());
}

#[test]
fn collectives_become_uses_once_per_communicator_and_keys_are_bounded() {
    let lim = Limits { max_collective_keys_per_rank: 2, ..Limits::default() };
    let mut j = JobTraffic::new("j", 4, lim);
    let comm = Communicator { comm_id: 7, world_ranks: vec![2, 0, 3], ..Default::default() };
    let coll = |op, root| CollectiveCounters { comm_id: 7, op, mode: CollectiveMode::Blocking, root, calls: 10, bytes: 1000 };
    for r in [0u32, 2, 3] {
        j.attach(&hello(r, 4, 1)).unwrap();
        let rep = RankReport {
            seq: 1,
            communicators: vec![comm.clone()],
            collectives: vec![coll(CollectiveOp::Bcast, 1), coll(CollectiveOp::Allreduce, -1), coll(CollectiveOp::Reduce, 0)],
            ..Default::default()
        };
        j.apply(r, &rep, t(10), 0).unwrap();
    }
    let uses = j.collective_uses(t(20));
    assert_eq!(uses.len(), 2, "rank 0 speaks for the communicator, two keys kept: {uses:?}");
    let b = uses.iter().find(|u| u.op == CollectiveOp::Bcast).unwrap();
    assert_eq!((b.members.clone(), b.root, b.calls_per_s, b.bytes_per_call), (vec![2, 0, 3], 1, 1.0, 100.0));
    assert_eq!(j.ranks[0].ignored_keys, 1);
    let bad = RankReport {
        seq: 2,
        communicators: vec![Communicator { comm_id: 8, world_ranks: vec![9], ..Default::default() }],
        ..Default::default()
    };
    let e = j.apply(0, &bad, t(11), 0).unwrap_err();
    assert!(e.to_string().contains("report.communicators[0].world_ranks holds world rank 9"), "{e}");
}
