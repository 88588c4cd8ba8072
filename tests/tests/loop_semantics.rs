//! The decision loop as operators expect it, on real MPI runs under the shim (Open MPI, four
//! ranks, a ring that talks steadily): a network-intensive job shorter than the class dwell
//! is classified at its first window of traffic and consolidated while it runs; once it
//! finishes it keeps its class and leaves the plan; dry-run records one proposal per
//! distinct plan; a job name used by a second run starts new counts.

use std::time::{Duration, Instant};

use straddle_tests::controller::{cli, submit, traffic, two_site_topology, wait_for, wait_for_with, ControllerProcess};
use straddle_tests::mpi::{exclusive, Launch, Mpi};
use straddle_tests::paths::{program, Scratch};

fn ok(url: &str, args: &[&str]) -> String {
    let (ok, out) = cli(url, Some("tk"), args);
    assert!(ok, "straddle {args:?}: {out}");
    out
}

/// Four ranks of `chatter` for `iters` rounds of `bytes` each `pause_ms`, as job `job`.
fn chatter(dir: &Scratch, url: &str, job: &str, job_token: &str, iters: u32, bytes: u32, pause_ms: u32) -> straddle_tests::mpi::Run {
    let exe = Mpi::OpenMpi.compile(&program("chatter.c"), &dir.0);
    let mut l = Launch::new(Mpi::OpenMpi, 4, &exe)
        .arg(iters)
        .arg(bytes)
        .arg(pause_ms)
        .env("STRADDLE_CONTROLLER", url)
        .env("STRADDLE_JOB", job)
        .env("STRADDLE_JOB_TOKEN", job_token)
        .env("STRADDLE_INTERVAL_MS", 500)
        .env("STRADDLE_VERBOSE", 1);
    // The rounds themselves take iters × pause; the rest is start-up on a busy machine.
    l.deadline = Duration::from_millis(u64::from(iters) * u64::from(pause_ms)) + Duration::from_secs(120);
    let run = l.run();
    assert!(run.success, "chatter failed:\n{}\n{}", run.stdout, run.stderr);
    run
}

fn decisions(url: &str) -> Vec<String> {
    ok(url, &["decisions", "--job", "cg"]).lines().map(str::to_string).collect()
}

#[test]
fn a_short_network_job_is_consolidated_while_it_runs_and_keeps_its_class_when_done() {
    let _one = exclusive();
    let dir = Scratch::new("loop-short");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(256, "")).unwrap();
    // The default dwell (60 s) is longer than the job: its first class must not wait for it.
    let ctl = ControllerProcess::start_with(
        "127.0.0.1:0",
        &["--topology", topo.to_str().unwrap(), "--token", "tk", "--decide-every", "0.5", "--window", "3"],
    );
    let url = ctl.url();
    let token = submit(&url, "tk", "cg", "v0,v2,v1,v3");
    // About 25 s of 256 KiB every 40 ms to the next rank; every ring edge crosses sites.
    let start = Instant::now();
    let run = chatter(&dir, &url, "cg", &token, 600, 262_144, 40);
    let ran = start.elapsed();
    assert!(ran < Duration::from_secs(60), "the job is shorter than the dwell: {ran:?}");
    let log = decisions(&url);
    assert!(log.iter().any(|l| l.contains("network-intensive") && l.contains("first classification")), "{log:#?}");
    let moved = log.iter().find(|l| l.trim_end().ends_with(']') && l.contains("->")).unwrap_or_else(|| panic!("no migration: {log:#?}"));
    assert!(moved.contains("applied"), "consolidated while it ran: {log:#?}");
    // The ranks saw the new placement while they ran.
    assert!(run.stderr.contains("site map epoch 2") || run.stderr.contains("site map epoch 3"), "{}", run.stderr);
    let placements = ok(&url, &["placements", "--job", "cg"]);
    let sites: std::collections::HashSet<&str> = placements.lines().skip(1).filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(sites.len(), 1, "{placements}");

    // Finished: its rate decays, yet it keeps its class, and nothing more is decided.
    wait_for_with(&url, Some("tk"), "cg", Duration::from_secs(30), |m| m.ranks.iter().all(|r| !r.attached));
    let before = decisions(&url);
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(decisions(&url), before, "a finished job leaves the plan");
    let jobs = ok(&url, &["jobs"]);
    let row = jobs.lines().find(|l| l.starts_with("cg ")).unwrap_or_else(|| panic!("{jobs}"));
    assert!(row.contains("finished") && row.contains("network-intensive"), "{jobs}");
}

#[test]
fn dry_run_records_one_proposal_per_distinct_plan() {
    let _one = exclusive();
    let dir = Scratch::new("loop-dry");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(256, "")).unwrap();
    let ctl = ControllerProcess::start_with(
        "127.0.0.1:0",
        &["--topology", topo.to_str().unwrap(), "--token", "tk", "--decide-every", "0.3", "--window", "3", "--mode", "dry-run"],
    );
    let url = ctl.url();
    let token = submit(&url, "tk", "cg", "v0,v2,v1,v3");
    // About 12 s: some 30 rounds of the loop see the same plan.
    chatter(&dir, &url, "cg", &token, 300, 262_144, 40);
    let log = decisions(&url);
    let proposed: Vec<&String> = log.iter().filter(|l| l.contains("proposed")).collect();
    assert_eq!(proposed.len(), 1, "{log:#?}");
    let placements = ok(&url, &["placements", "--job", "cg"]);
    let sites: std::collections::HashSet<&str> = placements.lines().skip(1).filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(sites.len(), 2, "dry-run moves nothing: {placements}");
}

#[test]
fn a_job_name_used_again_starts_new_counts() {
    let _one = exclusive();
    let dir = Scratch::new("loop-rerun");
    let ctl = ControllerProcess::start();
    let url = ctl.url();
    let want = 4.0 * 20.0 * 65536.0;
    for run in 1..=2 {
        chatter(&dir, &url, "rerun", "", 20, 65_536, 1);
        let m = wait_for(&url, "rerun", Duration::from_secs(30), |m| m.ranks.iter().all(|r| !r.attached && r.reports > 0));
        let total = m.total_bytes;
        assert_eq!(total, want, "run {run}: the counts of this run only");
    }
    assert_eq!(traffic(&url, "rerun").unwrap().total_bytes, want);
}
