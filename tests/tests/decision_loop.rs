//! The whole control loop on a simulated hypervisor: ranks report heavy cross-site
//! traffic, the controller classifies the job network-intensive, plans, migrates, records
//! the decision and pushes the new site map (epoch 2) to the running ranks; operators see
//! and explain it.

use std::process::Command;
use std::time::{Duration, Instant};

use straddle_tests::controller::{drive_ranks_with, two_site_topology, ControllerProcess};
use straddle_tests::paths::{controller_bin, Scratch};

fn cli(url: &str, args: &[&str]) -> String {
    let (ok, out) = straddle_tests::controller::cli(url, Some("tk"), args);
    assert!(ok, "straddle {args:?}: {out}");
    out
}

#[test]
fn heavy_cross_site_job_is_consolidated_and_ranks_get_epoch_2() {
    let dir = Scratch::new("loop");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(64, "")).unwrap();
    let ctl = ControllerProcess::start_with(
        "127.0.0.1:0",
        &["--topology", topo.to_str().unwrap(), "--token", "tk", "--decide-every", "0.5", "--window", "3", "--dwell", "0"],
    );
    let url = ctl.url();
    // Ranks 0..3 on v0 (tokyo), v2 (sapporo), v1 (tokyo), v3 (sapporo): every ring edge crosses.
    cli(&url, &["submit", "cg", "--vms", "v0,v2,v1,v3"]);

    // 20 MB/s from each rank to the next for 12 s.
    let maps = drive_ranks_with(&url, Some("tk"), "cg", 4, 20_000_000, Instant::now() + Duration::from_secs(12));

    // Every rank ends on epoch 2 or later with all ranks on one site, its maps in epoch
    // order; epoch 1 is the spread one. Ranks attach at their own pace: one that attached
    // after the decision gets the new map first, so only the ranks whose reports made the
    // decision (some did) are sure to have seen epoch 1.
    for rank in 0..4 {
        let mine: Vec<_> = maps.iter().filter(|m| m.0 == rank).collect();
        let last = mine.last().unwrap_or_else(|| panic!("rank {rank} got no map"));
        assert!(last.1 >= 2, "rank {rank} got a new epoch: {mine:?}");
        assert!(last.2.iter().all(|&s| s == last.2[0]), "rank {rank}: one site at the end: {mine:?}");
        assert!(mine.windows(2).all(|w| w[0].1 < w[1].1), "rank {rank}: maps in epoch order: {mine:?}");
        assert!(mine.iter().filter(|m| m.1 == 1).all(|m| m.2 == vec![0, 1, 0, 1]), "rank {rank}: epoch 1 spread: {mine:?}");
    }
    assert!(maps.iter().any(|m| m.1 == 1), "the ranks that reported saw epoch 1: {maps:?}");

    // The operator's view: a classification and an applied consolidation, explained.
    let log = cli(&url, &["decisions"]);
    assert!(log.contains("network-intensive"), "{log}");
    // A migration's line ends in its moves, "[vm from->to, ...]" (a class change's reason
    // may hold "->" too, e.g. "Compute -> Network").
    let applied = log
        .lines()
        .find(|l| l.contains("applied") && l.trim_end().ends_with(']') && l.contains("->"))
        .unwrap_or_else(|| panic!("no applied migration:\n{log}"));
    let id = applied.trim_start_matches('#').split_whitespace().next().unwrap();
    let why = cli(&url, &["explain", id]);
    assert!(why.contains("migrations:") && why.contains("applied:") && why.contains("cg epoch"), "{why}");
    let placements = cli(&url, &["placements", "--job", "cg"]);
    let sites: std::collections::HashSet<&str> = placements.lines().skip(1).filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(sites.len(), 1, "{placements}");

    // Overrides name what they do not know and need the token.
    let o =
        Command::new(controller_bin()).args(["override", "pin", "v9", "--controller", &url]).env("STRADDLE_TOKEN", "tk").output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("unknown VM \"v9\""));
    let o = Command::new(controller_bin())
        .args(["override", "drain", "tokyo", "--controller", &url])
        .env_remove("STRADDLE_TOKEN")
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("unauthenticated"));
    assert!(cli(&url, &["override", "pin", "v0"]).contains("v0 pinned"));
    assert!(cli(&url, &["override", "mode", "dry-run"]).contains("dry-run"));
}
