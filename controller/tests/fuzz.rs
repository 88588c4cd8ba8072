//! Generated input against the controller's decoders and parsers: wire messages (any
//! bytes), scenario files, stored records and state files. Nothing panics; what is refused
//! says why.

use proptest::prelude::*;
use prost::Message;
use straddle_controller::api::convert;
use straddle_controller::records::{Decision, JobSpec, SiteMap};
use straddle_controller::scenario::Scenario;
use straddle_controller::state::{decode, encode, redb::RedbStore, StateStore};
use straddle_model::time::Time;
use straddle_model::topology::Topology;
use straddle_model::traffic::{JobTraffic, Limits, RankHello};

fn cfg() -> ProptestConfig {
    ProptestConfig { cases: 400, max_shrink_iters: 200, ..ProptestConfig::default() }
}

fn topo() -> Topology {
    Topology::from_yaml(
        "sites:\n  - {name: A, hosts: [{name: a1, vm_capacity: 4}]}\n  - {name: B, hosts: [{name: b1, vm_capacity: 4}]}\n\
         links:\n  - {between: [A, B], bandwidth_mbit: 1000, latency_ms: 5}\n\
         vms:\n  - {name: v0, host: a1, memory_mib: 512}\n  - {name: v1, host: b1, memory_mib: 512}\n",
    )
    .unwrap()
}

proptest! {
    #![proptest_config(cfg())]

    /// Any bytes on the telemetry stream: a message or a decode error, and a decoded report
    /// is applied whole or refused.
    #[test]
    fn any_bytes_as_a_shim_message(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let Ok(m) = straddle_proto::ShimMessage::decode(bytes.as_slice()) else { return Ok(()) };
        let mut j = JobTraffic::new("j", 4, Limits::default());
        match m.body {
            Some(straddle_proto::shim_message::Body::Hello(h)) => {
                let _ = j.attach(&convert::hello(&h));
            }
            Some(straddle_proto::shim_message::Body::Report(r)) => {
                j.attach(&RankHello { job: "j".into(), rank: 0, world_size: 4, node: String::new(), incarnation: 1 }).unwrap();
                if let Ok(r) = convert::report(r) {
                    let before = j.cumulative();
                    if j.apply(0, &r, Time::from_secs(1), 0).is_err() {
                        prop_assert_eq!(j.cumulative(), before);
                    }
                }
            }
            None => {}
        }
    }

    /// Reports built field by field, with any op and mode values.
    #[test]
    fn any_report_converts_or_names_the_bad_field(ops in prop::collection::vec((any::<i32>(), any::<i32>(), any::<i32>()), 0..8)) {
        let r = straddle_proto::Report {
            seq: 1,
            collectives: ops.iter().map(|&(op, mode, root)| straddle_proto::CollectiveTraffic { comm_id: 0, op, mode, root, calls: 1, bytes: 1 }).collect(),
            ..Default::default()
        };
        if let Err(e) = convert::report(r) {
            prop_assert!(e.to_string().starts_with("report.collectives["), "{}", e);
        }
    }

    #[test]
    fn any_text_is_a_scenario_or_an_error(s in "\\PC{0,300}") {
        let _ = Scenario::parse(&s, &topo());
    }

    /// Scenario jobs with any arrival, name and VMs: accepted ones have a finite arrival
    /// within the week and known VMs.
    #[test]
    fn scenario_values_are_checked(arrival in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-1.0), Just(1e20), 0.0f64..1e6], vm in "v[0-3]", job in "[a-z]{0,3}") {
        let yaml = format!("name: s\njobs:\n  - {{job: \"{job}\", arrival_s: {arrival:?}, rank_vms: [{vm}]}}\n");
        let yaml = yaml.replace("NaN", ".nan").replace("inf", ".inf");
        if let Ok(s) = Scenario::parse(&yaml, &topo()) {
            let a = s.jobs[0].arrival_s;
            prop_assert!(a.is_finite() && (0.0..=7.0 * 86_400.0).contains(&a));
            prop_assert!(topo().vm(&s.jobs[0].rank_vms[0]).is_some() && !s.jobs[0].job.is_empty());
        }
    }

    /// Stored records: any bytes are a record or "damaged"; a flipped byte never passes.
    #[test]
    fn stored_records_are_checked(bytes in prop::collection::vec(any::<u8>(), 0..256), flip in any::<prop::sample::Index>()) {
        let _ = decode::<Decision>("decisions", "1", &bytes);
        let _ = decode::<JobSpec>("jobs", "j", &bytes);
        let rec = encode(&SiteMap { job: "cg".into(), epoch: 7, rank_site: vec![0, 1, 1], sites: vec!["A".into(), "B".into()] });
        let mut bad = rec.clone();
        let i = flip.index(bad.len());
        bad[i] ^= 0x20;
        prop_assert!(decode::<SiteMap>("site_maps", "cg", &bad).is_err());
    }
}

/// Files that are not a state: refused at open, never an empty controller over them.
#[test]
fn state_files_of_any_bytes_are_refused_not_started_over() {
    let dir = std::env::temp_dir().join(format!("straddle-fuzz-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for n in [0usize, 1, 17, 512, 4096, 9000] {
        let mut bytes = vec![0u8; n];
        for b in &mut bytes {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed.to_le_bytes()[0];
        }
        let p = dir.join(format!("junk-{n}.redb"));
        std::fs::write(&p, &bytes).unwrap();
        match RedbStore::open(&p) {
            Err(_) => {}
            Ok(s) => panic!("{n} random bytes opened as a state: {:?}", s.load().map(|x| x.jobs.len())),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
