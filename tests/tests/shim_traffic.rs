//! Real MPI programs of known traffic under the shim, both MPIs, against a live controller
//! process: the controller's matrix must equal the expected bytes and messages exactly.

use std::time::Duration;

use straddle_proto::{CollectiveMode, CollectiveOp, TrafficMatrix};
use straddle_tests::controller::{wait_for, ControllerProcess};
use straddle_tests::expect::{self, Expected};
use straddle_tests::mpi::{exclusive, Launch, Mpi, BOTH};
use straddle_tests::paths::{program, Scratch};

const RANKS: u32 = 4;

fn assert_matrix(m: &TrafficMatrix, e: &Expected, what: &str) {
    let n = e.n;
    assert_eq!(m.world_size as usize, n, "{what}: world size");
    let show = |v: &[f64]| v.chunks(n).map(|r| format!("{r:?}")).collect::<Vec<_>>().join("\n");
    let (bytes, messages) = straddle_tests::controller::dense(m);
    assert_eq!(bytes, e.bytes_flat(), "{what}: bytes\ngot:\n{}\nwant:\n{}", show(&bytes), show(&e.bytes_flat()));
    assert_eq!(messages, e.messages_flat(), "{what}: messages\ngot:\n{}\nwant:\n{}", show(&messages), show(&e.messages_flat()));
    assert_eq!(straddle_tests::controller::dense_of(m, |p| p.rma_operations), e.rma_ops_flat(), "{what}: one-sided operations");
}

/// Every rank attached, reported and detached: the final flush has landed.
fn all_detached(m: &TrafficMatrix) -> bool {
    m.ranks.len() == m.world_size as usize && m.ranks.iter().all(|r| r.reports > 0 && !r.attached)
}

fn run_traffic_c(mpi: Mpi) {
    let _x = exclusive();
    let dir = Scratch::new("traffic-c");
    let exe = mpi.compile(&program("traffic.c"), &dir.0);
    let ctl = ControllerProcess::start();
    let job = format!("traffic-c-{}", mpi.name());
    let run = Launch::new(mpi, RANKS, &exe)
        .arg(3)
        .arg(0)
        .env("STRADDLE_CONTROLLER", ctl.url())
        .env("STRADDLE_JOB", &job)
        .env("STRADDLE_INTERVAL_MS", 100)
        .run();
    assert!(run.success, "{} run failed:\n{}\n{}", mpi.name(), run.stdout, run.stderr);
    let m = wait_for(&ctl.url(), &job, Duration::from_secs(10), all_detached);
    let e = expect::traffic_c(RANKS as usize, 3, mpi.has_large_count());
    assert_matrix(&m, &e, mpi.name());

    // Ranks name their node; communicators and collectives are described.
    assert!(m.ranks.iter().all(|r| !r.node.is_empty()));
    let coll = |rank: u32, op: CollectiveOp| {
        m.collectives
            .iter()
            .filter(|c| c.rank == rank)
            .filter_map(|c| c.traffic.as_ref())
            .filter(|t| t.op == op as i32)
            .cloned()
            .collect::<Vec<_>>()
    };
    for rank in 0..RANKS {
        let ar = coll(rank, CollectiveOp::Allreduce);
        assert!(
            ar.iter().any(|t| t.comm_id == 1 && t.bytes == 8 && t.calls == 1 && t.mode == CollectiveMode::Blocking as i32),
            "rank {rank}: one 8-byte allreduce on the world: {ar:?}"
        );
        let bc = coll(rank, CollectiveOp::Bcast);
        let sub = bc.iter().find(|t| t.bytes == 128 && t.root == 0).unwrap_or_else(|| panic!("rank {rank}: bcast on sub: {bc:?}"));
        // The sub-communicator is described with its world ranks (same parity).
        let info = m
            .communicators
            .iter()
            .filter(|c| c.reporter_rank == rank)
            .filter_map(|c| c.info.as_ref())
            .find(|i| i.comm_id == sub.comm_id)
            .expect("the bcast's communicator is described");
        let want: Vec<u32> = (0..RANKS).filter(|x| x % 2 == rank % 2).collect();
        assert_eq!(info.world_ranks, want);
        assert!(!coll(rank, CollectiveOp::Barrier).is_empty());
        assert!(
            bc.iter().any(|t| t.comm_id == 1
                && t.mode == CollectiveMode::Nonblocking as i32
                && t.root == 1
                && t.bytes == 16
                && t.calls == 1),
            "rank {rank}: one nonblocking 16-byte bcast from rank 1: {bc:?}"
        );
        if mpi.has_large_count() {
            assert!(
                ar.iter().any(|t| t.comm_id == 1 && t.mode == CollectiveMode::Persistent as i32 && t.calls == 2 && t.bytes == 32),
                "rank {rank}: a persistent allreduce started twice: {ar:?}"
            );
        }
        assert!(coll(rank, CollectiveOp::Gather).iter().any(|t| t.bytes == 8 && t.root == 0));
    }
    // The intercommunicator is described with its remote group.
    assert!(m.communicators.iter().filter_map(|c| c.info.as_ref()).any(|i| i.inter && i.remote_world_ranks.len() == 2));

    // The operator CLI shows the same: JSON rows and the readable table.
    let cli = |args: &[&str]| {
        let o = std::process::Command::new(straddle_tests::paths::controller_bin())
            .args(args)
            .args(["--controller", &ctl.url()])
            .output()
            .unwrap();
        assert!(o.status.success(), "straddle {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let j: serde_json::Value = serde_json::from_str(&cli(&["traffic", &job, "--json"])).unwrap();
    for s in 0..RANKS as usize {
        for d in 0..RANKS as usize {
            assert_eq!(j["bytes"][s][d].as_f64().unwrap(), e.bytes_flat()[s * RANKS as usize + d], "json bytes[{s}][{d}]");
        }
    }
    let sent0: f64 = e.bytes_flat()[..RANKS as usize].iter().sum();
    assert_eq!(j["ranks"][0]["sent_bytes"].as_f64().unwrap(), sent0);
    assert!(j["collectives"].as_array().unwrap().iter().any(|c| c["op"] == "allreduce" && c["bytes"] == 8));
    let table = cli(&["traffic", &job]);
    assert!(table.contains(&format!("job {job}  (4 ranks, cumulative)")), "{table}");
    let total: f64 = e.bytes_flat().iter().sum();
    let msgs: f64 = e.messages_flat().iter().sum();
    assert!(table.contains(&format!("in {msgs:.0} messages")), "{table}");
    assert!(total > 0.0);
    let jobs = cli(&["jobs"]);
    assert!(jobs.lines().any(|l| l.starts_with(&job) && l.contains(" 4 ")), "{jobs}");
}

#[test]
fn c_traffic_is_exact_under_mpich() {
    run_traffic_c(Mpi::Mpich);
}

#[test]
fn c_traffic_is_exact_under_open_mpi() {
    run_traffic_c(Mpi::OpenMpi);
}

fn run_fortran(mpi: Mpi, src: &str) {
    let _x = exclusive();
    let dir = Scratch::new("traffic-f");
    let exe = mpi.compile(&program(src), &dir.0);
    let ctl = ControllerProcess::start();
    let job = format!("{src}-{}", mpi.name());
    let run = Launch::new(mpi, RANKS, &exe)
        .env("STRADDLE_CONTROLLER", ctl.url())
        .env("STRADDLE_JOB", &job)
        .env("STRADDLE_INTERVAL_MS", 100)
        .run();
    assert!(run.success, "{} {src} failed:\n{}\n{}", mpi.name(), run.stdout, run.stderr);
    assert!(run.stdout.contains("fortran traffic done"), "{}", run.stdout);
    let m = wait_for(&ctl.url(), &job, Duration::from_secs(10), all_detached);
    assert_matrix(&m, &expect::traffic_fortran(RANKS as usize), &format!("{} {src}", mpi.name()));
    // In-place allreduce of 4 integers: 16 bytes on the world, counted once per rank.
    for rank in 0..RANKS {
        let ar: Vec<_> = m
            .collectives
            .iter()
            .filter(|c| c.rank == rank)
            .filter_map(|c| c.traffic.as_ref())
            .filter(|t| t.op == CollectiveOp::Allreduce as i32)
            .collect();
        assert_eq!(ar.len(), 1, "rank {rank}: {ar:?}");
        assert_eq!((ar[0].calls, ar[0].bytes, ar[0].comm_id), (1, 16, 1), "rank {rank}");
    }
}

#[test]
fn fortran_77_traffic_is_exact_under_both() {
    for mpi in BOTH {
        run_fortran(mpi, "traffic.f");
    }
}

#[test]
fn fortran_90_traffic_is_exact_under_both() {
    for mpi in BOTH {
        run_fortran(mpi, "traffic.f90");
    }
}

#[test]
fn fortran_2008_traffic_is_exact_under_both() {
    for mpi in BOTH {
        run_fortran(mpi, "traffic.f08");
    }
}
