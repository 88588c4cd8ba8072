//! The model's unit tests (run by the `collectives_bed_model` test target).

use crate::model::*;

const MIB: f64 = 1048576.0;

fn both(op: Op, site: &[usize], size: f64) -> (Cost, Cost) {
    let net = Net::bed(10.0, 100.0);
    let alg = mpich_pin(op, whole(size)).0;
    (cost(library(op, alg, site.len(), 0, size), site, &net), cost(regrouped(op, site, 0, size, Regroup::Pays), site, &net))
}

#[test]
fn bcast_long_interleaved_library_sends_seven_and_a_half_copies_regrouped_one() {
    let inter = [0, 1, 0, 1, 0, 1, 0, 1];
    let (lib, reg) = both(Op::Bcast, &inter, 4.0 * MIB);
    assert!(((lib.ab + lib.ba) / (4.0 * MIB) - 7.5).abs() < 1e-9, "{lib:?}");
    // The root's leader sends the other leader one copy: one crossing.
    assert_eq!((reg.ab, reg.ba, reg.wan_hops), (4.0 * MIB, 0.0, 1));
    assert!(lib.time / reg.time > 2.5, "{} vs {}", lib.time, reg.time);
    let floor = cost(regrouped(Op::Bcast, &inter, 0, 4.0 * MIB, Regroup::Floor), &inter, &Net::bed(10.0, 100.0));
    // The floor's one copy, sent whole; the shim's goes in pieces, a little sooner.
    assert_eq!((floor.ab, floor.ba, floor.wan_hops), (reg.ab, reg.ba, reg.wan_hops));
    assert!(floor.time > reg.time, "{floor:?} against {reg:?}");
    // Short: binomial, the last level crosses, four copies in one round; one crossing
    // round and 8 B a copy, so the shim leaves it to the library.
    assert!(!shim_regroups(Op::Bcast, &inter, 0, 8.0));
    let (lib, reg) = both(Op::Bcast, &inter, 8.0);
    assert_eq!((lib.ab, lib.wan_hops), (32.0, 1));
    assert_eq!(lib, reg);
    let forced = cost(regrouped(Op::Bcast, &inter, 0, 8.0, Regroup::Always), &inter, &Net::bed(10.0, 100.0));
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
    let g = cost(regrouped(Op::Gather, &inter, 0, 4.0 * MIB, Regroup::Always), &inter, &net);
    let gv = cost(regrouped(Op::Gatherv, &inter, 0, 4.0 * MIB, Regroup::Always), &inter, &net);
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
    let c = cost(regrouped(Op::Allreduce, &five, 0, 4.0 * MIB, Regroup::Always), &five, &net);
    assert!(c.wan_hops > 1, "{c:?}");
    let floor = cost(regrouped(Op::Allreduce, &five, 0, 4.0 * MIB, Regroup::Floor), &five, &net);
    assert_eq!(floor.wan_hops, 1);
    // Broadcast to four sites: three copies from the root's leader, one crossing.
    let c = cost(regrouped(Op::Bcast, &four, 0, MIB, Regroup::Always), &four, &net);
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
    let one = cost(vec![vec![(0, 1, 4.0 * MIB)]], &[0, 1], &Net::bed(10.0, 100.0));
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
    let lib = cost(library(Op::Reduce, Alg::Binomial, 8, 0, 4.0 * MIB), &lone, &net);
    assert_eq!((lib.ab, lib.ba), (0.0, 3.0 * 4.0 * MIB));
    assert!(lib.time >= 12.0 * MIB / net.wan.rate + lat - 1e-9, "{} vs {one}", lib.time);
    // Opposite directions do not wait for each other.
    let both_ways = cost(vec![vec![(0, 1, 4.0 * MIB), (1, 0, 4.0 * MIB)]], &[0, 1], &net);
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
    let t = cost(vec![vec![(0, 1, 4.0 * MIB), (1, 0, 1.0 * MIB)]], &[0, 1], &busy).time;
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
    let c = cost(vec![(0..4).flat_map(|i| [(i, 4 + i, 4.0 * MIB), (4 + i, i, 4.0 * MIB)]).collect()], &site, &net);
    assert!((c.time - 1.8).abs() < 1e-9, "{}", c.time);
    let c = cost(vec![(0..4).map(|i| (i, 4 + i, 4.0 * MIB)).collect()], &site, &net);
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
    let first = cost(vec![ring0.clone(), vec![(0, 4, 8.0)]], &site, &net).time;
    assert!(first > 16.0 * MIB / net.host.large, "{first}");
    let all = cost(vec![ring0, vec![(0, 4, 8.0)], vec![(4, 5, 4.0 * MIB)]], &site, &net).time;
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
    let leaders = cost(regrouped(Op::Scan, &three_five, 0, 4.0 * MIB, Regroup::Floor), &three_five, &net);
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
    let whole = cost(regrouped(Op::Reduce, &three_five, 0, 4.0 * MIB, Regroup::Floor), &three_five, &net);
    assert!(whole.time > c.time, "{whole:?} against {c:?}");
    // Rooted on the other site: the pieces go the other way, from rank 0.
    let c5 = cost(regrouped(Op::Reduce, &three_five, 5, 4.0 * MIB, Regroup::Pays), &three_five, &net);
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
    let whole = cost(regrouped(Op::Allreduce, &three_five, 0, 4.0 * MIB, Regroup::Floor), &three_five, &net);
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
    let whole = cost(regrouped(Op::Allgather, &blocks, 0, 4.0 * MIB, Regroup::Floor), &blocks, &net);
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
    let whole = cost(regrouped(Op::ReduceScatter, &blocks, 0, 4.0 * MIB, Regroup::Floor), &blocks, &net);
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
