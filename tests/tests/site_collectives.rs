//! Site-aware collectives: every collective the shim regroups gives exactly the library's
//! result (the same call through PMPI, on identical inputs) in layouts that break naive
//! code — interleaved, site blocks, 1+7, 3+5, three and five sites — on the world and on split
//! sub-communicators, with odd counts, MPI_IN_PLACE, vector and struct types and a
//! non-commutative user op, on both MPIs, from C and from Fortran; the regrouped path really
//! runs; without a map nothing changes; a rank that cannot build communicators keeps every
//! rank flat; and a map the controller changes mid-run is adopted by all ranks together
//! while results stay right.

use std::time::Duration;

use straddle_proto::CollectiveMode;
use straddle_tests::controller::{cli, wait_for_with, ControllerProcess};
use straddle_tests::mpi::{exclusive, run_with_deadline, Launch, Mpi, Run, BOTH, CASE_BUDGET};
use straddle_tests::paths::{program, Scratch};

const LAYOUTS: [(&str, &str); 6] = [
    ("interleaved", "0,1,0,1,0,1,0,1"),
    ("site blocks", "0,0,0,0,1,1,1,1"),
    ("1+7", "0,1,1,1,1,1,1,1"),
    ("3+5", "0,0,0,1,1,1,1,1"),
    ("three sites", "0,1,2,0,1,2,0,1"),
    // More than DIRECT_SITES: the leaders run the library's algorithms among themselves and
    // a root that does not lead its site hands over to its leader.
    ("five sites", "0,1,2,3,4,0,1,2"),
];

/// Cases per rank in a round of `collectives.c` with every size (4,988) and with the first
/// two sizes (2,238): what the launches' deadlines grow by.
const CASES_PER_ROUND: u32 = 5000;
const CASES_PER_ROUND_TWO_SIZES: u32 = 2300;
/// Rounds of the map-change test, 200 ms apart (16 s and more): time for the drain's
/// migrations to finish and their maps to arrive and be adopted, however late the ranks
/// got to run site-aware.
const ROUNDS: u32 = 80;

/// The "<what>: N cases, M failures" line: (N, M).
fn tally(run: &Run, what: &str) -> (u64, u64) {
    let line =
        run.stdout.lines().find(|l| l.starts_with(what)).unwrap_or_else(|| panic!("no {what:?} line:\n{}\n{}", run.stdout, run.stderr));
    let nums: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|t| t.parse().ok()).collect();
    (nums[0], nums[1])
}

/// Site-aware calls per rank, from the shim's verbose summary at MPI_Finalize.
fn site_aware_calls(run: &Run) -> Vec<u64> {
    let mut per_rank = vec![0; 8];
    for l in run.stderr.lines().filter(|l| l.contains("collectives ran site-aware")) {
        let rank: usize = l.split("rank ").nth(1).and_then(|t| t.split(']').next()).and_then(|t| t.parse().ok()).unwrap();
        per_rank[rank] = l.split("]: ").nth(1).and_then(|t| t.split_whitespace().next()).and_then(|t| t.parse().ok()).unwrap();
    }
    per_rank
}

fn regrouped(mpi: Mpi, exe: &std::path::Path, rounds: u32, mode: &str, map: &str) -> Run {
    regrouped_at(mpi, exe, rounds, mode, map, 0)
}

/// `regrouped` with the static map at `epoch`: each site's leader is its member number
/// `epoch` mod its size.
fn regrouped_at(mpi: Mpi, exe: &std::path::Path, rounds: u32, mode: &str, map: &str, epoch: u64) -> Run {
    Launch::new(mpi, 8, exe)
        .work(rounds * CASES_PER_ROUND, CASE_BUDGET)
        .arg(rounds)
        .env("STRADDLE_REGROUP", mode)
        .env("STRADDLE_SITE_MAP", map)
        .env("STRADDLE_SITE_EPOCH", epoch)
        .env("STRADDLE_AGREE_EVERY", 4)
        .env("STRADDLE_VERBOSE", 1)
        .env("STRADDLE_JOB", "sitecoll")
        .run()
}

#[test]
fn every_collective_matches_the_library_in_every_layout() {
    let _x = exclusive();
    let dir = Scratch::new("sitecoll");
    for mpi in BOTH {
        let exe = mpi.compile(&program("collectives.c"), &dir.0);
        // STRADDLE_REGROUP=always: every call that can run site-aware does.
        for (name, map) in LAYOUTS {
            let run = regrouped(mpi, &exe, 2, "always", map);
            assert!(run.success, "{} [{name}]: {}", mpi.name(), run.stderr);
            let (cases, failures) = tally(&run, "collectives:");
            assert!(cases > 8000 && failures == 0, "{} [{name}]: {cases} cases, {failures} failures:\n{}", mpi.name(), run.stderr);
            let calls = site_aware_calls(&run);
            assert!(calls.iter().all(|&c| c > 500), "{} [{name}]: site-aware calls per rank {calls:?}", mpi.name());
            let adopted = run.stderr.lines().filter(|l| l.contains("site-aware collectives over") && l.contains("of 8 ranks")).count();
            assert_eq!(adopted, 8, "{} [{name}]: every rank regrouped the world:\n{}", mpi.name(), run.stderr);
        }
        // Leaders inside their sites (the second member of each), so that pieces reach them
        // from below and from above.
        let run = regrouped_at(mpi, &exe, 1, "always", "0,0,0,1,1,1,1,1", 1);
        assert!(run.success, "{} [3+5, epoch 1]: {}", mpi.name(), run.stderr);
        let (cases, failures) = tally(&run, "collectives:");
        assert!(cases > 4000 && failures == 0, "{} [3+5, epoch 1]: {cases} cases, {failures} failures:\n{}", mpi.name(), run.stderr);
        let adopted = run.stderr.lines().filter(|l| l.contains("epoch 1: site-aware collectives over") && l.contains("of 8 ranks")).count();
        assert_eq!(adopted, 8, "{} [3+5, epoch 1]: every rank regrouped the world at epoch 1:\n{}", mpi.name(), run.stderr);
        // By default only where the library's algorithm would cross the WAN more than once.
        let run = regrouped(mpi, &exe, 1, "1", "0,0,0,1,1,1,1,1");
        assert!(run.success, "{}: {}", mpi.name(), run.stderr);
        assert_eq!(tally(&run, "collectives:").1, 0, "{}", run.stderr);
        let (default, always) = (site_aware_calls(&run)[0], site_aware_calls(&regrouped(mpi, &exe, 1, "always", "0,0,0,1,1,1,1,1"))[0]);
        assert!(default > 0 && default < always, "{}: {default} site-aware by default, {always} always", mpi.name());
    }
}

#[test]
fn fortran_callers_get_site_aware_collectives() {
    let _x = exclusive();
    let dir = Scratch::new("sitecoll-f");
    for mpi in BOTH {
        let exe = mpi.compile(&program("collectives.f90"), &dir.0);
        for (name, map) in [LAYOUTS[0], LAYOUTS[3]] {
            let run = regrouped(mpi, &exe, 3, "always", map);
            assert!(run.success, "{} [{name}]: {}", mpi.name(), run.stderr);
            let (cases, failures) = tally(&run, "fortran:");
            assert!(cases >= 300 && failures == 0, "{} [{name}]: {cases} cases, {failures} failures:\n{}", mpi.name(), run.stderr);
            let calls = site_aware_calls(&run);
            assert!(calls.iter().all(|&c| c >= 40), "{} [{name}]: site-aware calls per rank {calls:?}", mpi.name());
        }
    }
}

#[test]
fn without_a_map_collectives_stay_the_librarys() {
    let _x = exclusive();
    let dir = Scratch::new("sitecoll-off");
    for mpi in BOTH {
        let exe = mpi.compile(&program("collectives.c"), &dir.0);
        // Regrouping on, but no map and no controller: every agreement finds no map.
        let run = Launch::new(mpi, 8, &exe)
            .work(CASES_PER_ROUND, CASE_BUDGET)
            .arg(1)
            .env("STRADDLE_REGROUP", "always")
            .env("STRADDLE_VERBOSE", 1)
            .run();
        assert!(run.success && tally(&run, "collectives:").1 == 0, "{}", run.stderr);
        assert!(!run.stderr.contains("site-aware"), "{}", run.stderr);
        // A map, but regrouping off.
        let run = Launch::new(mpi, 8, &exe)
            .work(CASES_PER_ROUND, CASE_BUDGET)
            .arg(1)
            .env("STRADDLE_REGROUP", 0)
            .env("STRADDLE_SITE_MAP", LAYOUTS[0].1)
            .env("STRADDLE_VERBOSE", 1)
            .run();
        assert!(run.success && tally(&run, "collectives:").1 == 0, "{}", run.stderr);
        assert!(!run.stderr.contains("site-aware"), "{}", run.stderr);
    }
}

/// Three sites, eight VMs: tokyo v0-v2, sapporo v3-v5, osaka v6-v7.
fn three_site_topology() -> String {
    let mut t = String::from("sites:\n");
    for (s, h) in [("tokyo", "t1"), ("sapporo", "s1"), ("osaka", "o1")] {
        t += &format!("  - {{name: {s}, hosts: [{{name: {h}, vm_capacity: 8}}]}}\n");
    }
    t += "links:\n  - {between: [tokyo, sapporo], bandwidth_mbit: 1000, latency_ms: 10}\n";
    t += "  - {between: [tokyo, osaka], bandwidth_mbit: 1000, latency_ms: 10}\n";
    t += "  - {between: [sapporo, osaka], bandwidth_mbit: 1000, latency_ms: 10}\nvms:\n";
    for (v, h) in [("v0", "t1"), ("v1", "t1"), ("v2", "t1"), ("v3", "s1"), ("v4", "s1"), ("v5", "s1"), ("v6", "o1"), ("v7", "o1")] {
        t += &format!("  - {{name: {v}, host: {h}, memory_mib: 64}}\n");
    }
    t
}

/// The controller places a job over three sites (epoch 1); once every rank has run
/// collectives site-aware over them, an operator drains osaka and new maps (epoch 2 on)
/// reach the ranks. All ranks adopt the same groupings in the same order, results stay
/// right throughout, and the last grouping leaves osaka out. Ranks attach, receive maps and
/// report at their own pace: nothing here assumes which rank gets a map first, or which
/// of the controller's epochs a rank sees (a rank may skip one).
#[test]
fn a_map_changed_mid_run_is_adopted_by_all_ranks_together() {
    let _x = exclusive();
    let dir = Scratch::new("sitecoll-live");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, three_site_topology()).unwrap();
    for mpi in BOTH {
        // A fresh controller each time: the drain moves VMs for good.
        let ctl = ControllerProcess::start_with(
            "127.0.0.1:0",
            &["--topology", topo.to_str().unwrap(), "--token", "tk", "--decide-every", "0.3", "--dwell", "0", "--mode", "dry-run"],
        );
        let url = ctl.url();
        let job = format!("live-{}", mpi.name());
        let job_token = straddle_tests::controller::submit(&url, "tk", &job, "v0,v3,v6,v1,v4,v7,v2,v5");
        let exe = mpi.compile(&program("collectives.c"), &dir.0);
        let launch = Launch::new(mpi, 8, &exe)
            .work(ROUNDS * CASES_PER_ROUND_TWO_SIZES, CASE_BUDGET)
            .arg(ROUNDS)
            .arg(200)
            .arg(2)
            .env("STRADDLE_CONTROLLER", &url)
            .env("STRADDLE_JOB", &job)
            .env("STRADDLE_JOB_TOKEN", &job_token)
            .env("STRADDLE_REGROUP", "always")
            .env("STRADDLE_AGREE_EVERY", 8)
            .env("STRADDLE_VERBOSE", 1);
        let (cmd, deadline) = (launch.command(), launch.deadline + Duration::from_millis(200) * ROUNDS);
        let running = std::thread::spawn(move || run_with_deadline(cmd, deadline, || {}));
        // Until every rank has reported collectives run site-aware on the world (epoch 1 is
        // the only map so far), then drain osaka: the planner moves v6 and v7 away and the
        // controller pushes the new map.
        let world_site_aware = |m: &straddle_proto::TrafficMatrix| {
            (0..8).all(|rank| {
                m.collectives.iter().filter(|c| c.rank == rank).filter_map(|c| c.traffic.as_ref()).any(|t| {
                    let world = m.communicators.iter().any(|k| {
                        k.reporter_rank == rank && k.info.as_ref().is_some_and(|i| i.comm_id == t.comm_id && i.world_ranks.len() == 8)
                    });
                    world && t.mode == CollectiveMode::SiteAware as i32 && t.calls > 0
                })
            })
        };
        let m = wait_for_with(&url, Some("tk"), &job, deadline, world_site_aware);
        assert!(world_site_aware(&m), "{}: not every rank ran collectives site-aware on epoch 1: {:?}", mpi.name(), m.collectives);
        let (ok, out) = cli(&url, Some("tk"), &["override", "drain", "osaka"]);
        assert!(ok, "{out}");
        let (ok, out) = cli(&url, Some("tk"), &["override", "mode", "automatic"]);
        assert!(ok, "{out}");
        let run = running.join().unwrap();
        assert!(run.success && !run.timed_out, "{}: {}", mpi.name(), run.stderr);
        assert_eq!(tally(&run, "collectives:").1, 0, "{}: {}", mpi.name(), run.stderr);
        // Per rank: the maps it received and the groupings it adopted, in its own order (a
        // rank announces a map before it holds it, and adopts only what it holds).
        let mut world_groupings = Vec::new();
        for rank in 0..8 {
            let tag = format!("[{job} rank {rank}]");
            let mine: Vec<&str> = run.stderr.lines().filter(|l| l.contains(&tag)).map(|l| l.split("]: ").nth(1).unwrap_or(l)).collect();
            let all = mine.join("\n");
            let epoch = |l: &str, key: &str| l.strip_prefix(key).and_then(|t| t.split(':').next()).and_then(|e| e.parse::<u64>().ok());
            let received: Vec<(usize, u64)> =
                mine.iter().enumerate().filter_map(|(i, l)| epoch(l, "site map epoch ").map(|e| (i, e))).collect();
            // Epoch 1 over three sites ran on the world before the drain (waited for above).
            assert!(
                mine.contains(&"epoch 1: site-aware collectives over 3 sites on a communicator of 8 ranks"),
                "{} rank {rank}: epoch 1 over three sites:\n{all}",
                mpi.name()
            );
            // The drain changed the map, and the world went to a grouping without osaka (two
            // sites, or one: flat) at an epoch this rank had received or passed (a rank that
            // got a newer map straight away takes part in the others' older agreed epoch).
            assert!(received.iter().any(|&(_, e)| e >= 2), "{} rank {rank}: the drain changed the map:\n{all}", mpi.name());
            let without_osaka = mine.iter().enumerate().any(|(at, l)| {
                let e = epoch(l, "epoch ").unwrap_or(0);
                let grouping =
                    l.ends_with("site-aware collectives over 2 sites on a communicator of 8 ranks") || l.contains(": collectives flat");
                e >= 2 && grouping && received.iter().any(|&(i, got)| got >= e && i < at)
            });
            assert!(without_osaka, "{} rank {rank}: no grouping without osaka adopted:\n{all}", mpi.name());
            world_groupings.push(mine.into_iter().filter(|l| l.ends_with("on a communicator of 8 ranks")).collect::<Vec<_>>());
        }
        // All ranks together: the world's groupings, the same ones in the same order on every rank.
        assert!(world_groupings.iter().all(|g| *g == world_groupings[0]), "{}: {world_groupings:#?}", mpi.name());
        // The controller sees which calls ran site-aware and the bytes they sent across.
        let (ok, table) = cli(&url, Some("tk"), &["traffic", &job]);
        assert!(ok && table.contains("site-aware collectives sent"), "{table}");
        let (ok, json) = cli(&url, Some("tk"), &["traffic", &job, "--json"]);
        assert!(ok && json.contains("\"site_aware\"") && json.contains("\"regrouped_cross_site_bytes\""), "{json}");
    }
}

/// A rank that has used up its communicator context ids cannot build site communicators:
/// every rank stays on the library's algorithms, with right results, instead of aborting
/// or waiting forever (MPICH's MPI_Comm_create_group would wait for an id). Open MPI's
/// context ids do not run out this way.
#[test]
fn ranks_out_of_communicators_keep_every_rank_flat() {
    let _x = exclusive();
    let dir = Scratch::new("sitecoll-exhaust");
    let exe = Mpi::Mpich.compile(&program("exhaust.c"), &dir.0);
    let run = regrouped(Mpi::Mpich, &exe, 0, "always", LAYOUTS[0].1);
    assert!(run.success, "{}", run.stderr);
    let (dups, _) = tally(&run, "exhaust:");
    assert!(dups > 1000, "rank 0 used up its context ids: {}", run.stdout);
    assert!(run.stdout.contains(" 0 failures"), "{}", run.stdout);
    let gave_up = run.stderr.lines().filter(|l| l.contains("could not build site communicators; collectives stay flat")).count();
    assert_eq!(gave_up, 8, "every rank gave up once, together:\n{}", run.stderr);
    assert!(!run.stderr.contains("site-aware collectives over"), "{}", run.stderr);
}
