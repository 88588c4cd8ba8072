use crate::*;

const BLOCKS: [usize; 8] = [0, 0, 0, 0, 1, 1, 1, 1];
const INTER: [usize; 8] = [0, 1, 0, 1, 0, 1, 0, 1];
const THREE_FIVE: [usize; 8] = [0, 0, 0, 1, 1, 1, 1, 1];
const ONE_SEVEN: [usize; 8] = [0, 1, 1, 1, 1, 1, 1, 1];

/// Site 0 to 1 and 1 to 0 bytes, and WAN rounds, of the library's default for `op`.
fn flat(op: Op, site: &[usize], msg: f64) -> (f64, f64, usize) {
    let size = Size::of_message(msg, site.len());
    let c = cross_site(&rounds(op, default_alg(op, site.len(), size), site.len(), 0, size), site, 2);
    (c.bytes[0][1], c.bytes[1][0], c.wan_rounds)
}

#[test]
fn counting_without_rounds_agrees_with_the_rounds() {
    for op in Op::ALL {
        for alg in [
            Alg::Dissemination,
            Alg::Binomial,
            Alg::ScatterRingAllgather,
            Alg::RecursiveDoubling,
            Alg::ReduceScatterAllgather,
            Alg::Linear,
            Alg::Ring,
            Alg::RecursiveHalving,
            Alg::Pairwise,
            Alg::Scattered,
            Alg::Brucks,
        ] {
            for site in [&BLOCKS[..], &INTER, &THREE_FIVE, &ONE_SEVEN, &[0, 1, 2, 0, 1, 2], &[0, 0, 1]] {
                let size = Size::of_message(4096.0, site.len());
                let r = rounds(op, alg, site.len(), 1, size);
                let (a, b) = (library_crossing(op, alg, site, 1, size), crossing(&r, site));
                assert_eq!((a.rounds, a.messages), (b.rounds, b.messages), "{op:?} {alg:?} {site:?}");
                assert!((a.bytes - b.bytes).abs() <= 1e-9 * b.bytes, "{op:?} {alg:?} {site:?}: {a:?} {b:?}");
            }
        }
    }
}

#[test]
fn defaults_follow_mpich_thresholds() {
    let at = |op, msg| default_alg(op, 8, Size::of_message(msg, 8));
    assert_eq!(at(Op::Bcast, 12_287.0), Alg::Binomial);
    assert_eq!(at(Op::Bcast, 12_288.0), Alg::ScatterRingAllgather);
    assert_eq!(default_alg(Op::Bcast, 4, Size::of_message(1e6, 4)), Alg::Binomial, "fewer than 8 ranks: a tree");
    assert_eq!(at(Op::Allreduce, 2047.0), Alg::RecursiveDoubling);
    assert_eq!(at(Op::Allreduce, 2048.0), Alg::ReduceScatterAllgather);
    assert_eq!(at(Op::Allgather, 81_919.0), Alg::RecursiveDoubling);
    assert_eq!(at(Op::Allgather, 81_920.0), Alg::Ring);
    assert_eq!(default_alg(Op::Alltoall, 8, Size::of_block(255.0, 8)), Alg::Brucks);
    assert_eq!(default_alg(Op::Alltoall, 8, Size::of_block(32_768.0, 8)), Alg::Scattered);
    assert_eq!(default_alg(Op::Alltoall, 8, Size::of_block(32_769.0, 8)), Alg::Pairwise);
    assert_eq!(at(Op::ReduceScatter, 524_288.0), Alg::Pairwise);
    assert_eq!(at(Op::Gatherv, 8.0), Alg::Linear);
}

#[test]
fn short_bcast_binomial_sends_one_copy_per_crossing_edge() {
    // Site blocks: the binomial tree from 0 crosses once (0 -> 4).
    assert_eq!(flat(Op::Bcast, &BLOCKS, 1000.0), (1000.0, 0.0, 1));
    // Interleaved: the last level (0->1, 2->3, 4->5, 6->7) all crosses, in one round.
    assert_eq!(flat(Op::Bcast, &INTER, 1000.0), (4000.0, 0.0, 1));
    // 3+5: two rounds cross.
    let size = Size::of_message(1.0, 8);
    assert_eq!(library_crossing(Op::Bcast, Alg::Binomial, &THREE_FIVE, 0, size).rounds, 2);
}

#[test]
fn long_bcast_interleaved_sends_seven_and_a_half_copies() {
    // Scatter (four single blocks cross) + ring allgather (all 8 ring edges cross, 7
    // steps of 1/8): 7.5 copies, as the test bed measured for MPICH.
    let (ab, ba, _) = flat(Op::Bcast, &INTER, 1048576.0);
    assert!(((ab + ba) / 1048576.0 - 7.5).abs() < 1e-9, "{}", (ab + ba) / 1048576.0);
    let (ab, ba, _) = flat(Op::Bcast, &BLOCKS, 1048576.0);
    assert!(((ab + ba) / 1048576.0 - 2.25).abs() < 1e-9);
}

#[test]
fn allreduce_doubles_short_and_halves_long() {
    // Short: recursive doubling, only the 4-apart exchange crosses, the whole vector.
    assert_eq!(flat(Op::Allreduce, &BLOCKS, 8.0), (32.0, 32.0, 1));
    // Long (Rabenseifner): the 4-apart exchanges carry an eighth, twice.
    assert_eq!(flat(Op::Allreduce, &BLOCKS, 8e6), (8e6, 8e6, 2));
    // Interleaved, the distance-1 exchanges carry half the vector, twice: four ranks a
    // side, 4e6 each, in each half.
    assert_eq!(flat(Op::Allreduce, &INTER, 8e6), (32e6, 32e6, 2));
}

#[test]
fn gathers_carry_subtrees_and_one_site_costs_nothing() {
    // Rank 4 forwards its subtree of 4 blocks (of 100 bytes) to the root.
    assert_eq!(flat(Op::Gather, &BLOCKS, 800.0), (0.0, 400.0, 1));
    for op in [Op::Bcast, Op::Alltoall, Op::Barrier, Op::Allgather] {
        assert_eq!(flat(op, &[0; 8], 1000.0), (0.0, 0.0, 0));
    }
    assert!(rounds(Op::Bcast, Alg::Binomial, 1, 0, Size::of_message(5.0, 1)).is_empty());
}

#[test]
fn alltoall_counts_every_remote_block() {
    // Blocks of 100 bytes (4 ranks, 400 a rank), all at once: each rank's two remote blocks.
    let size = Size::of_block(1000.0, 4);
    let c = cross_site(&rounds(Op::Alltoall, Alg::Scattered, 4, 0, size), &[0, 0, 1, 1], 2);
    assert_eq!((c.bytes[0][1], c.bytes[1][0], c.wan_rounds), (4000.0, 4000.0, 1));
    // Pairwise over 4 ranks (xor): steps 2 and 3 cross.
    let c = cross_site(&rounds(Op::Alltoall, Alg::Pairwise, 4, 0, size), &[0, 0, 1, 1], 2);
    assert_eq!((c.bytes[0][1], c.wan_rounds), (4000.0, 2));
}

#[test]
fn site_aware_calls_cross_once_with_one_copy_per_remote_site() {
    let mib = 1048576.0;
    let c = cross_site(&leaders(Op::Bcast, &INTER, 3, Size::of_message(mib, 8)), &INTER, 2);
    assert_eq!((c.bytes[1][0], c.bytes[0][1], c.wan_rounds), (mib, 0.0, 1), "7.5 copies flat, one regrouped");
    let c = cross_site(&leaders(Op::Allreduce, &INTER, 0, Size::of_message(1000.0, 8)), &INTER, 2);
    assert_eq!((c.bytes[0][1], c.bytes[1][0], c.wan_rounds), (1000.0, 1000.0, 1));
    // Gather of 100-byte blocks to rank 0 from a 1+7 layout: site 1's seven blocks, once.
    let c = cross_site(&leaders(Op::Gather, &ONE_SEVEN, 0, Size::of_block(100.0, 8)), &ONE_SEVEN, 2);
    assert_eq!((c.bytes[1][0], c.bytes[0][1]), (700.0, 0.0));
    // An all-to-all of 100-byte blocks: 4 x 4 x 100 each way.
    let c = cross_site(&leaders(Op::Alltoall, &INTER, 0, Size::of_block(100.0, 8)), &INTER, 2);
    assert_eq!((c.bytes[0][1], c.bytes[1][0]), (1600.0, 1600.0));
    let three = [0, 1, 2, 0, 1, 2, 0, 1];
    let c = cross_site(&leaders(Op::Bcast, &three, 0, Size::of_message(10.0, 8)), &three, 3);
    assert_eq!((c.bytes[0][1], c.bytes[0][2], c.bytes[1][2]), (10.0, 10.0, 0.0));
    // The root heads its own site.
    assert!(leaders(Op::Reduce, &INTER, 3, Size::of_message(1.0, 8))[0].iter().all(|&(_, to, _)| to == 3));
}

#[test]
fn regrouping_pays_only_where_the_library_crosses_more_than_once() {
    let msg = |b: f64| Size::of_message(b, 8);
    assert!(!pays(Op::Bcast, &BLOCKS, 0, msg(8.0)));
    assert!(!pays(Op::Bcast, &INTER, 0, msg(8.0)), "one crossing round: latency is the same");
    assert!(pays(Op::Bcast, &INTER, 0, msg(65_536.0)), "7.5 copies cross instead of one");
    assert!(pays(Op::Bcast, &THREE_FIVE, 0, msg(8.0)));
    assert!(pays(Op::Bcast, &BLOCKS, 0, msg(4_194_304.0)), "scatter + ring: n - 1 crossing steps");
    assert!(pays(Op::Barrier, &BLOCKS, 0, msg(0.0)), "dissemination crosses in every round");
    let block = |b: f64| Size::of_block(b, 8);
    assert!(!pays(Op::Alltoall, &INTER, 0, block(4096.0)), "posted at once: one crossing");
    assert!(pays(Op::Alltoall, &BLOCKS, 0, block(8.0)), "Bruck over site blocks: every round crosses");
    assert!(!pays(Op::Alltoall, &BLOCKS, 0, block(524_288.0)), "pairwise, but the same bytes: the detour costs more");
    assert!(!pays(Op::Gather, &BLOCKS, 0, block(8.0)));
    // Long messages regroup only for bytes: a 1+7 binomial gather crosses three times but
    // moves each remote block once; Rabenseifner over site blocks moves one copy each way;
    // interleaved, four.
    assert!(pays(Op::Gather, &ONE_SEVEN, 0, block(8.0)));
    assert!(!pays(Op::Gather, &ONE_SEVEN, 0, block(524_288.0)));
    assert!(!pays(Op::Allreduce, &BLOCKS, 0, msg(4_194_304.0)));
    assert!(pays(Op::Allreduce, &INTER, 0, msg(4_194_304.0)));
}
