//! A rank whose stream the controller refuses says so (STRADDLE_VERBOSE): one line with
//! the status code and the controller's reason, and never that it attached; the program
//! runs on. A rank the controller takes says it attached, and only then.
//!
//! The controller is secured (an operator token): ranks without a credential are refused
//! (unauthenticated), a job nobody submitted is refused (not found), a submitted one is
//! taken with its credential, and a launch whose world size differs from the submitted
//! job's is refused too (failed precondition). (`traffic.c` needs four ranks.)

use straddle_tests::controller::{cli, submit, two_site_topology, ControllerProcess};
use straddle_tests::mpi::{exclusive, Launch, Mpi, Run};
use straddle_tests::paths::{program, Scratch};

const TOKEN: &str = "t";
const RANKS: u32 = 4;

/// `traffic.c` on four ranks against the controller at `url` as job `job`. The final
/// flush may wait long enough for the controller's answer however busy the machine, so
/// every rank has its answer before it exits.
fn launch(mpi: Mpi, exe: &std::path::Path, url: &str, job: &str, credential: &str) -> Run {
    let run = Launch::new(mpi, RANKS, exe)
        .arg(10)
        .arg(50)
        .env("STRADDLE_CONTROLLER", url)
        .env("STRADDLE_JOB", job)
        .env("STRADDLE_JOB_TOKEN", credential)
        .env("STRADDLE_VERBOSE", 1)
        .env("STRADDLE_INTERVAL_MS", 100)
        .env("STRADDLE_CONNECT_TIMEOUT_MS", 20_000)
        .env("STRADDLE_FLUSH_TIMEOUT_MS", 30_000)
        .run();
    assert!(run.success, "{} {job}: the program must run whatever the controller says:\n{}\n{}", mpi.name(), run.stdout, run.stderr);
    let checksums = run.stdout.lines().filter(|l| l.contains("checksum")).count();
    assert_eq!(checksums, RANKS as usize, "{} {job}: every rank finished:\n{}", mpi.name(), run.stdout);
    run
}

/// The shim's verbose lines of `rank` of `job`.
fn shim_lines<'a>(run: &'a Run, job: &str, rank: u32) -> Vec<&'a str> {
    let prefix = format!("straddle[{job} rank {rank}]: ");
    run.stderr.lines().filter(|l| l.starts_with(&prefix)).collect()
}

/// Every rank says, exactly once, that the controller refused it with `code` and `reason`,
/// and no rank says it attached.
fn assert_refused(mpi: Mpi, run: &Run, job: &str, code: &str, reason: &str) {
    for rank in 0..RANKS {
        let lines = shim_lines(run, job, rank);
        let refused: Vec<&&str> = lines.iter().filter(|l| l.contains("refused by the controller")).collect();
        assert_eq!(refused.len(), 1, "{} {job} rank {rank}: one refusal line:\n{}", mpi.name(), run.stderr);
        assert!(
            refused[0].ends_with(&format!(": {code}: {reason}")),
            "{} {job} rank {rank}: the refusal names the code {code:?} and the reason {reason:?}: {}",
            mpi.name(),
            refused[0]
        );
        assert!(
            !lines.iter().any(|l| l.contains("attached")),
            "{} {job} rank {rank}: never claims it attached:\n{}",
            mpi.name(),
            run.stderr
        );
    }
}

fn refusals(mpi: Mpi) {
    let _x = exclusive();
    let dir = Scratch::new("refusal");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(1024, "")).unwrap();
    let ctl = ControllerProcess::start_with("127.0.0.1:0", &["--topology", topo.to_str().unwrap(), "--token", TOKEN, "--submitted-only"]);
    let url = ctl.url();
    let exe = mpi.compile(&program("traffic.c"), &dir.0);

    // No credential at all: unauthenticated.
    let job = format!("anonymous-{}", mpi.name());
    let run = launch(mpi, &exe, &url, &job, "");
    let reason = "a rank's stream needs its job's credential (STRADDLE_JOB_TOKEN) or an operator token";
    assert_refused(mpi, &run, &job, "unauthenticated", reason);

    // Nobody submitted the job (the operator's token as the credential): not found.
    let job = format!("unsubmitted-{}", mpi.name());
    let run = launch(mpi, &exe, &url, &job, TOKEN);
    assert_refused(
        mpi,
        &run,
        &job,
        "not found",
        &format!("hello.job: unknown job \"{job}\" (this controller only accepts ranks of submitted jobs)"),
    );
    assert!(ctl.log().contains("refused shim stream"), "the controller refused the ranks: {}", ctl.log());

    // The positive control: the same controller takes the job once it is submitted, and
    // every rank says it attached (and is never refused).
    let job = format!("submitted-{}", mpi.name());
    let credential = submit(&url, TOKEN, &job, "v0,v2,v1,v3");
    let run = launch(mpi, &exe, &url, &job, &credential);
    for rank in 0..RANKS {
        let lines = shim_lines(&run, &job, rank);
        assert!(
            lines.contains(&format!("straddle[{job} rank {rank}]: attached to {url}").as_str()),
            "{} rank {rank}: attached:\n{}",
            mpi.name(),
            run.stderr
        );
        assert!(!lines.iter().any(|l| l.contains("refused")), "{} rank {rank}: not refused:\n{}", mpi.name(), run.stderr);
    }

    // A job submitted on two VMs, launched on four ranks: the world sizes differ.
    let (ok, out) = cli(&url, Some(TOKEN), &["cancel", &job]);
    assert!(ok, "{out}");
    let job = format!("two-vms-{}", mpi.name());
    let credential = submit(&url, TOKEN, &job, "v0,v2");
    let run = launch(mpi, &exe, &url, &job, &credential);
    let reason = format!("hello.world_size 4 does not match job {job}'s world size 2");
    assert_refused(mpi, &run, &job, "failed precondition", &reason);
}

#[test]
fn mpich_refused_ranks_say_so_and_never_claim_to_attach() {
    refusals(Mpi::Mpich);
}

#[test]
fn open_mpi_refused_ranks_say_so_and_never_claim_to_attach() {
    refusals(Mpi::OpenMpi);
}
