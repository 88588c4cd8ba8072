//! `kill -9` the controller while it applies a plan, restart it on the same state file:
//! every acknowledged job, placement, epoch and decision is there, and the half-applied
//! plan is reported — finished or failed — never silently lost.

use std::time::{Duration, Instant};

use straddle_tests::controller::{drive_ranks_with, traffic_with, two_site_topology, ControllerProcess};
use straddle_tests::paths::Scratch;

fn cli(url: &str, args: &[&str]) -> String {
    let (ok, out) = straddle_tests::controller::cli(url, Some("tk"), args);
    assert!(ok, "straddle {args:?}: {out}");
    out
}

#[test]
fn kill_9_during_a_plan_loses_nothing_acknowledged() {
    let dir = Scratch::new("crash");
    let topo = dir.0.join("topology.yaml");
    // 512 MiB guests over 1 Gbit/s: each simulated migration takes about 4.3 s, one at a time.
    std::fs::write(&topo, two_site_topology(512, "  - {name: w0, host: t1, memory_mib: 64}\n")).unwrap();
    let state = dir.0.join("state.redb");
    let args = [
        "--topology",
        topo.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--token",
        "tk",
        "--decide-every",
        "0.5",
        "--window",
        "3",
        "--dwell",
        "0",
    ];
    let mut first = ControllerProcess::start_with("127.0.0.1:0", &args);
    let url = first.url();
    cli(&url, &["submit", "cg", "--vms", "v0,v2,v1,v3"]);
    cli(&url, &["submit", "ep", "--vms", "w0"]);
    cli(&url, &["override", "pin", "w0"]);

    // Heavy cross-site traffic until the controller starts applying a plan; then kill -9.
    let (seen, before) = std::thread::scope(|s| {
        let driver = s.spawn(|| drive_ranks_with(&url, Some("tk"), "cg", 4, 20_000_000, Instant::now() + Duration::from_secs(30)));
        let start = Instant::now();
        let log = loop {
            let log = cli(&url, &["decisions"]);
            if log.lines().any(|l| l.contains("applying")) {
                break log;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no plan started:\n{log}");
            std::thread::sleep(Duration::from_millis(100));
        };
        first.kill();
        (driver.join().unwrap(), log)
    });
    let applying_id =
        before.lines().find(|l| l.contains("applying")).unwrap().trim_start_matches('#').split_whitespace().next().unwrap().to_string();
    let ids_before: Vec<String> =
        before.lines().map(|l| l.trim_start_matches('#').split_whitespace().next().unwrap().to_string()).collect();
    let max_epoch_seen = seen.iter().map(|m| m.1).max().unwrap_or(0);
    assert!(max_epoch_seen >= 1);

    // Restart on the same state.
    let second = ControllerProcess::start_with("127.0.0.1:0", &args);
    let url = second.url();
    let after = cli(&url, &["decisions"]);
    for id in &ids_before {
        assert!(after.lines().any(|l| l.trim_start_matches('#').split_whitespace().next() == Some(id)), "decision {id} kept:\n{after}");
    }
    // The interrupted plan is settled, with the reason.
    let why = cli(&url, &["explain", &applying_id]);
    assert!(why.contains("state:   failed") || why.contains("state:   applied"), "{why}");
    assert!(why.contains("controller restart"), "{why}");
    assert!(!after.lines().any(|l| l.contains("applying") && l.starts_with(&format!("#{applying_id} "))), "{after}");
    // Its operations were settled from the hypervisor, none left in flight to run again.
    let ops = cli(&url, &["operations"]);
    assert!(ops.contains("no migration in flight"), "{ops}");

    // Jobs, pins and placements are back; the map a late rank gets matches the placements
    // and is no older than what ranks saw before the crash.
    assert_eq!(traffic_with(&url, Some("tk"), "cg").unwrap().world_size, 4);
    assert_eq!(traffic_with(&url, Some("tk"), "ep").unwrap().world_size, 1);
    let placements = cli(&url, &["placements"]);
    assert!(placements.lines().any(|l| l.starts_with("w0 ") && l.trim_end().ends_with("yes")), "pin kept:\n{placements}");
    let site_of = |vm: &str| {
        placements.lines().find(|l| l.starts_with(&format!("{vm} "))).and_then(|l| l.split_whitespace().nth(2)).unwrap().to_string()
    };
    let want: Vec<u32> = ["v0", "v2", "v1", "v3"].iter().map(|v| if site_of(v) == "tokyo" { 0 } else { 1 }).collect();
    // Long enough for a rank to attach and get its map on a busy machine.
    let late = drive_ranks_with(&url, Some("tk"), "cg", 4, 0, Instant::now() + Duration::from_secs(3));
    let (_, epoch, map) = late.into_iter().find(|m| m.0 == 0).expect("a site map on attach");
    assert!(epoch >= max_epoch_seen, "epoch {epoch} after restart, {max_epoch_seen} before");
    assert_eq!(map, want, "the map matches the kept placements:\n{placements}");
}
