//! The shim under programs written elsewhere, modelled on mpi4py's test suite and on real
//! codes (`programs/foreign.c`, `programs/plugin_host.c` + `programs/mpi_plugin.c`), on
//! both MPIs, each checked against the library's own result under two-site maps:
//! MPI reached through a plugin loaded with local scope (as Python, Julia and R load it)
//! runs and is counted; ranks that order a nonblocking collective differently relative to
//! blocking ones (mpi4py's testIAgree) finish; several threads each with a communicator of
//! their own finish; one message described with different datatypes on different ranks
//! arrives whole; datatypes with gaps and non-zero lower bounds keep their gaps on every
//! regrouped collective and path (short, pipelined, leaders); and the large-count (`_c`)
//! forms run site-aware.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use straddle_proto::TrafficMatrix;
use straddle_tests::controller::{wait_for, ControllerProcess};
use straddle_tests::expect::Expected;
use straddle_tests::mpi::{exclusive, Launch, Mpi, Run, BOTH};
use straddle_tests::paths::{program, Scratch};

/// The "<what>: N cases, M failures" line: (N, M).
fn tally(run: &Run, what: &str) -> (u64, u64) {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{what}:")))
        .unwrap_or_else(|| panic!("no {what:?} line:\n{}\n{}", run.stdout, run.stderr));
    let nums: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|t| t.parse().ok()).collect();
    (nums[0], nums[1])
}

/// Site-aware calls per rank, from the shim's verbose summary at MPI_Finalize.
fn site_aware_calls(run: &Run, ranks: usize) -> Vec<u64> {
    let mut per_rank = vec![0; ranks];
    for l in run.stderr.lines().filter(|l| l.contains("collectives ran site-aware")) {
        let rank: usize = l.split("rank ").nth(1).and_then(|t| t.split(']').next()).and_then(|t| t.parse().ok()).unwrap();
        per_rank[rank] = l.split("]: ").nth(1).and_then(|t| t.split_whitespace().next()).and_then(|t| t.parse().ok()).unwrap();
    }
    per_rank
}

/// `foreign SCENARIO ARGS...` on `ranks` ranks under `map`, every collective that can run
/// site-aware doing so, agreements every `agree_every` blocking collectives.
fn foreign(mpi: Mpi, exe: &Path, ranks: u32, map: &str, agree_every: u32, deadline_s: u64, args: &[&str]) -> Run {
    let mut l = Launch::new(mpi, ranks, exe)
        .env("STRADDLE_REGROUP", "always")
        .env("STRADDLE_SITE_MAP", map)
        .env("STRADDLE_AGREE_EVERY", agree_every)
        .env("STRADDLE_VERBOSE", 1)
        .env("STRADDLE_JOB", "foreign");
    for a in args {
        l = l.arg(a);
    }
    l.deadline = Duration::from_secs(deadline_s);
    l.run()
}

/// Runs `args` and checks it finished with no failure and ran site-aware on every rank;
/// returns the run.
#[allow(clippy::too_many_arguments)]
fn passes(mpi: Mpi, exe: &Path, ranks: u32, map: &str, agree_every: u32, deadline_s: u64, args: &[&str]) -> Run {
    let what = format!("{} {args:?} on {map} (agreement every {agree_every})", mpi.name());
    let run = foreign(mpi, exe, ranks, map, agree_every, deadline_s, args);
    assert!(run.success, "{what}: {}\n{}", run.stdout, run.stderr);
    let (cases, failures) = tally(&run, args[0]);
    assert!(cases > 0 && failures == 0, "{what}: {cases} cases, {failures} failures:\n{}", run.stderr);
    let calls = site_aware_calls(&run, ranks as usize);
    assert!(calls.iter().all(|&c| c > 0), "{what}: site-aware calls per rank {calls:?}\n{}", run.stderr);
    run
}

/// mpi4py's testIAgree (Comm.Iagree is MPI_Iallreduce without ULFM): per root, a barrier,
/// the root's Iallreduce, a second barrier, the others' Iallreduce. Counting the
/// nonblocking call toward the agreement moved the adoption to different barriers on
/// different ranks (a hang), and an agreement posted on the application's communicator
/// could pair with the application's Iallreduce (MPI_ERR_TRUNCATE). Agreements every 16
/// collectives (the default) and every 3 (so that they start between the two postings).
#[test]
fn ranks_that_order_nonblocking_collectives_differently_finish() {
    let _x = exclusive();
    let dir = Scratch::new("foreign-iagree");
    for mpi in BOTH {
        let exe = mpi.compile(&program("foreign.c"), &dir.0);
        for every in [16, 3] {
            passes(mpi, &exe, 4, "0,1,0,1", every, 60, &["iagree", "6"]);
        }
    }
}

/// MPI_THREAD_MULTIPLE: four threads per rank, each with its own duplicate of the world,
/// whose first collectives start at once (regrouping state, keyvals and site communicators
/// set up from several threads together). Three launches per MPI: the races were timing.
#[test]
fn threads_with_communicators_of_their_own_finish() {
    let _x = exclusive();
    let dir = Scratch::new("foreign-threads");
    for mpi in BOTH {
        let exe = mpi.compile(&program("foreign.c"), &dir.0);
        for _ in 0..3 {
            passes(mpi, &exe, 4, "0,1,0,1", 4, 90, &["threads", "12", "4"]);
        }
    }
}

/// The root describes a broadcast as N elements of a 6-int type, the others as 6N ints
/// (and the reverse), from a few bytes to over 1 MiB (the pipelined path), with gathers,
/// scatters, all-gathers and all-to-alls described the same way.
#[test]
fn one_message_described_with_different_datatypes_arrives_whole() {
    let _x = exclusive();
    let dir = Scratch::new("foreign-mixed");
    for mpi in BOTH {
        let exe = mpi.compile(&program("foreign.c"), &dir.0);
        for map in ["0,0,1,1", "0,1,0,1"] {
            passes(mpi, &exe, 4, map, 1, 90, &["mixed", "1"]);
        }
    }
}

/// Every regrouped collective with an MPI_INT resized to extent 8 and a struct of two ints
/// with lower bound 4: receive buffers' gaps pre-filled and compared byte for byte with the
/// library's. Short and pipelined counts on two sites (site blocks, interleaved); short
/// counts on five sites (interleaved, and contiguous), where the leaders run the library's
/// algorithms among themselves.
#[test]
fn datatypes_with_gaps_keep_their_gaps() {
    let _x = exclusive();
    let dir = Scratch::new("foreign-gaps");
    for mpi in BOTH {
        let exe = mpi.compile(&program("foreign.c"), &dir.0);
        for map in ["0,0,1,1", "0,1,0,1"] {
            passes(mpi, &exe, 4, map, 1, 150, &["gaps", "1", "2"]);
        }
        // Interleaved, and contiguous (where scans regroup too).
        for map in ["0,1,2,3,4,0,1,2", "0,0,1,1,2,3,4,4"] {
            passes(mpi, &exe, 8, map, 1, 90, &["gaps", "1", "1"]);
        }
    }
}

/// MPICH's mpi4py calls the `_c` collectives: every one runs site-aware once the world has
/// adopted its map (from the second collective on, with an agreement at each).
#[test]
fn large_count_collectives_run_site_aware() {
    let _x = exclusive();
    let dir = Scratch::new("foreign-largecount");
    for mpi in BOTH.into_iter().filter(|m| m.has_large_count()) {
        let exe = mpi.compile(&program("foreign.c"), &dir.0);
        let run = passes(mpi, &exe, 4, "0,0,1,1", 1, 120, &["largecount", "1"]);
        let (cases, _) = tally(&run, "largecount");
        let calls = site_aware_calls(&run, 4);
        assert!(calls.iter().all(|&c| c + 1 >= cases), "{}: {cases} large-count calls, site-aware per rank {calls:?}", mpi.name());
    }
}

/// `plugin_host` (no MPI, built with the plain C compiler) and `libmpi_plugin-<mpi>.so`
/// (linked against the MPI library), in `dir`.
fn plugin_pair(mpi: Mpi, dir: &Path) -> (PathBuf, PathBuf) {
    let host = dir.join("plugin_host");
    if !host.exists() {
        let o = Command::new("gcc").arg("-O1").arg(program("plugin_host.c")).arg("-o").arg(&host).arg("-ldl").output().expect("run gcc");
        assert!(o.status.success(), "building plugin_host.c failed:\n{}", String::from_utf8_lossy(&o.stderr));
    }
    let plugin = dir.join(format!("libmpi_plugin-{}.so", mpi.name()));
    let cc = match mpi {
        Mpi::Mpich => "mpicc.mpich",
        Mpi::OpenMpi => "mpicc.openmpi",
    };
    let o =
        Command::new(cc).args(["-O1", "-shared", "-fPIC"]).arg(program("mpi_plugin.c")).arg("-o").arg(&plugin).output().expect("run mpicc");
    assert!(o.status.success(), "building mpi_plugin.c failed:\n{}", String::from_utf8_lossy(&o.stderr));
    (host, plugin)
}

/// Every rank attached, reported and detached: the final flush has landed.
fn all_detached(m: &TrafficMatrix) -> bool {
    m.ranks.len() == m.world_size as usize && m.ranks.iter().all(|r| r.reports > 0 && !r.attached)
}

/// A program without MPI that opens a plugin linked against MPI with RTLD_LOCAL: the
/// shim's MPI_Init is found first, and the library is in no scope dlsym(RTLD_NEXT) sees.
/// The program runs, its ring of sends is counted exactly, and its collectives regroup.
#[test]
fn mpi_reached_through_a_locally_loaded_plugin_is_counted() {
    let _x = exclusive();
    let dir = Scratch::new("foreign-plugin");
    const RANKS: u32 = 4;
    const ROUNDS: u64 = 5;
    for mpi in BOTH {
        let (host, plugin) = plugin_pair(mpi, &dir.0);
        let ctl = ControllerProcess::start();
        let job = format!("plugin-{}", mpi.name());
        let mut launch = Launch::new(mpi, RANKS, &host)
            .arg(plugin.display())
            .arg(ROUNDS)
            .env("STRADDLE_CONTROLLER", ctl.url())
            .env("STRADDLE_JOB", &job)
            .env("STRADDLE_INTERVAL_MS", 100)
            .env("STRADDLE_REGROUP", "always")
            .env("STRADDLE_SITE_MAP", "0,1,0,1")
            .env("STRADDLE_AGREE_EVERY", 1)
            .env("STRADDLE_VERBOSE", 1);
        launch.deadline = Duration::from_secs(60);
        let run = launch.run();
        assert!(run.success, "{}: {}\n{}", mpi.name(), run.stdout, run.stderr);
        assert_eq!(tally(&run, "plugin"), (3 * ROUNDS, 0), "{}: {}", mpi.name(), run.stderr);
        let calls = site_aware_calls(&run, RANKS as usize);
        assert!(calls.iter().all(|&c| c > 0), "{}: site-aware calls per rank {calls:?}", mpi.name());
        let m = wait_for(&ctl.url(), &job, Duration::from_secs(10), all_detached);
        let mut e = Expected::new(RANKS as usize);
        for r in 0..RANKS as usize {
            e.send(r, (r + 1) % RANKS as usize, 1000 * ROUNDS, ROUNDS);
        }
        let (bytes, messages) = straddle_tests::controller::dense(&m);
        assert_eq!(bytes, e.bytes_flat(), "{}: bytes through the plugin", mpi.name());
        assert_eq!(messages, e.messages_flat(), "{}: messages through the plugin", mpi.name());
    }
}
