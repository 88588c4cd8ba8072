//! Generated input against every parser and the report path of the model: nothing panics,
//! a refused report changes nothing, an accepted topology is sound enough to plan on.

use std::collections::HashSet;

use proptest::prelude::*;
use straddle_model::classify::{Class, JobProfile, PairRate};
use straddle_model::migration_learnt::Learnt;
use straddle_model::plan::{plan, PlanConfig, PlanInput, PlanJob};
use straddle_model::time::Time;
use straddle_model::topology::{HostConfig, LinkConfig, SiteConfig, Topology, TopologyConfig, VmConfig};
use straddle_model::traffic::{JobTraffic, Limits, PeerCounters, RankHello, RankReport};

fn cfg() -> ProptestConfig {
    ProptestConfig { cases: 400, max_shrink_iters: 200, ..ProptestConfig::default() }
}

/// Numbers a careless or hostile file holds.
fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(1e300),
        Just(f64::MIN_POSITIVE),
        0.001f64..1e6
    ]
}

fn name() -> impl Strategy<Value = String> {
    // Empty, blank, duplicates of generated names, forbidden characters, too long.
    prop_oneof![Just(String::new()), Just(" ".to_string()), Just("s1".to_string()), "[a-z,\\n]{0,3}", "x{200}"]
}

/// A sound topology, then (most of the time) one field set to something hostile.
fn topology_config() -> impl Strategy<Value = TopologyConfig> {
    (1usize..4, 1usize..3, 0usize..6, prop::collection::vec(0.1f64..1e4, 3), 0u8..16, number(), name()).prop_map(
        |(nsites, per_site, nvms, vals, mutation, bad, bad_name)| {
            let sites: Vec<SiteConfig> = (0..nsites)
                .map(|s| SiteConfig {
                    name: format!("s{s}"),
                    hosts: (0..per_site)
                        .map(|h| HostConfig {
                            name: format!("s{s}h{h}"),
                            vm_capacity: 3,
                            memory_gib: 0.0,
                            libvirt_uri: String::new(),
                            peer_uri: String::new(),
                            migration_address: String::new(),
                        })
                        .collect(),
                    max_concurrent_migrations: 2,
                })
                .collect();
            let links: Vec<LinkConfig> = (1..nsites)
                .map(|s| LinkConfig {
                    between: [format!("s{}", s - 1), format!("s{s}")],
                    bandwidth_mbit: vals[0],
                    latency_ms: vals[1],
                    max_concurrent_migrations: 1,
                })
                .collect();
            let hosts: Vec<String> = sites.iter().flat_map(|s| s.hosts.iter().map(|h| h.name.clone())).collect();
            let vms: Vec<VmConfig> = (0..nvms.min(hosts.len() * 3))
                .map(|k| VmConfig {
                    name: format!("v{k}"),
                    host: hosts[k % hosts.len()].clone(),
                    memory_mib: vals[2],
                    dirty_mib_per_s: 0.0,
                    cluster: String::new(),
                    node: 0,
                })
                .collect();
            let mut c = TopologyConfig { sites, links, vms, clusters: vec![] };
            match mutation {
                0 => c.sites[0].name = bad_name,
                1 if !c.links.is_empty() => c.links[0].bandwidth_mbit = bad,
                2 if !c.links.is_empty() => c.links[0].latency_ms = bad,
                3 if !c.vms.is_empty() => c.vms[0].memory_mib = bad,
                4 if !c.vms.is_empty() => c.vms[0].dirty_mib_per_s = bad,
                5 => c.sites[0].hosts[0].vm_capacity = 0,
                6 if !c.links.is_empty() => c.links.push(c.links[0].clone()),
                7 if !c.links.is_empty() => c.links[0].max_concurrent_migrations = 0,
                8 => c.sites[0].max_concurrent_migrations = 0,
                9 => c.links.clear(),
                10 if !c.vms.is_empty() => c.vms[0].host = bad_name,
                11 => c.sites.clear(),
                _ => {}
            }
            c
        },
    )
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn any_text_is_a_topology_or_an_error(s in "\\PC{0,300}") {
        let _ = Topology::from_yaml(&s);
    }

    /// An accepted topology is one the planner can run on: finite positive links, a path
    /// between every two sites, hosts within capacity.
    #[test]
    fn an_accepted_topology_is_sound_and_plannable(c in topology_config(), rate in 0.0f64..1e8) {
        let Ok(t) = Topology::from_config(&c) else { return Ok(()) };
        for a in 0..t.sites.len() {
            for b in 0..t.sites.len() {
                let p = t.path(a, b).expect("connected");
                prop_assert!(p.bandwidth_bps > 0.0 && p.latency_s.is_finite() && p.latency_s >= 0.0);
            }
        }
        let vm_host: Vec<usize> = t.vms.iter().map(|v| v.host).collect();
        let n = t.vms.len();
        if n >= 2 {
            let pairs = (0..n).map(|i| PairRate { src: u32::try_from(i).unwrap(), dst: u32::try_from((i + 1) % n).unwrap(), bytes: rate, messages: rate / 65536.0 }).collect();
            let job = PlanJob { id: "j".into(), class: Class::Network, rank_vm: (0..n).collect(), profile: JobProfile { ranks: n, pairs, collectives: vec![] } };
            let none = HashSet::new();
            let input = PlanInput { topo: &t, vm_host: &vm_host, jobs: std::slice::from_ref(&job), pinned: &none, drained: &none, cooling: &none, learnt: &Learnt::default(), host_cpu: &[] };
            let p = plan(&input, &PlanConfig::default());
            prop_assert!(p.objective_after.is_finite());
            let mut load = vec![0u32; t.hosts.len()];
            for &h in &p.vm_host_after { load[h] += 1; }
            prop_assert!(load.iter().zip(&t.hosts).all(|(l, h)| *l <= h.vm_capacity));
        }
    }

    /// Reports of any shape: a refused one leaves the job exactly as it was.
    #[test]
    fn reports_apply_whole_or_not_at_all(
        world in 1u32..6,
        reports in prop::collection::vec((0u32..7, any::<u64>(), prop::collection::vec((0u32..8, 0u64..1000, 0u64..50, 0u64..100), 0..6)), 0..12),
    ) {
        let mut j = JobTraffic::new("j", world, Limits { max_pairs: 10, ..Limits::default() });
        for r in 0..world {
            j.attach(&RankHello { job: "j".into(), rank: r, world_size: world, node: String::new(), incarnation: 1 }).unwrap();
        }
        for (i, (rank, seq, peers)) in reports.into_iter().enumerate() {
            if rank >= world { continue; }
            let rep = RankReport {
                seq,
                peers: peers.into_iter().map(|(dest, b, m, g)| PeerCounters { dest, p2p_bytes: b, p2p_messages: m, rma_get_bytes: g, ..Default::default() }).collect(),
                ..Default::default()
            };
            let before = j.cumulative();
            let now = Time::from_secs(u64::try_from(i).unwrap());
            if j.apply(rank, &rep, now, 0).is_err() {
                prop_assert_eq!(j.cumulative(), before);
            }
            let r = j.rate(now, 10);
            prop_assert!(r.pairs.iter().all(|p| p.bytes.is_finite() && p.bytes >= 0.0));
        }
        prop_assert!(j.pair_count() <= 10);
    }
}

/// The generator reaches accepted topologies too (else the property above would be empty).
#[test]
fn some_generated_topologies_are_accepted() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = topology_config();
    let accepted = (0..2000).filter(|_| Topology::from_config(&strategy.new_tree(&mut runner).unwrap().current()).is_ok()).count();
    assert!(accepted >= 400, "only {accepted} of 2000 generated topologies were valid");
}
