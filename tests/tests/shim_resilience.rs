//! The program runs unchanged whatever the controller does: absent, killed mid-run, or
//! accepting connections and never answering. And the shim stays inert in the launcher,
//! its proxies and shells that inherit LD_PRELOAD.

use std::net::TcpListener;
use std::time::Duration;

use straddle_tests::controller::{wait_for, ControllerProcess};
use straddle_tests::mpi::{exclusive, Launch, Mpi, Run, BOTH};
use straddle_tests::paths::{program, Scratch};

const LOOPS: u32 = 20;
const SLEEP_MS: u32 = 100;

fn launch<'a>(mpi: Mpi, exe: &'a std::path::Path) -> Launch<'a> {
    Launch::new(mpi, 4, exe).arg(LOOPS).arg(SLEEP_MS)
}

fn checksums(r: &Run) -> String {
    assert!(r.success, "run failed:\n{}\n{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().filter(|l| l.contains("checksum")).collect();
    assert_eq!(lines.len(), 4, "every rank's checksum: {}", r.stdout);
    lines.join("\n")
}

/// Runs the program without the shim, then under each controller fault; output must match
/// and the run may take at most a few seconds longer (the bounded final flush).
fn faults(mpi: Mpi) {
    let _x = exclusive();
    let dir = Scratch::new("faults");
    let exe = mpi.compile(&program("traffic.c"), &dir.0);
    let base = launch(mpi, &exe).without_shim().run();
    let want = checksums(&base);
    let slack = base.elapsed + Duration::from_secs(6);

    // Absent: nothing listens on the port.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = launch(mpi, &exe).env("STRADDLE_CONTROLLER", format!("127.0.0.1:{port}")).env("STRADDLE_JOB", "absent").run();
    assert_eq!(checksums(&r), want, "{}: controller absent", mpi.name());
    assert!(r.elapsed < slack, "{}: absent controller slowed the run: {:?} vs {:?}", mpi.name(), r.elapsed, base.elapsed);

    // Killed mid-run with SIGKILL, after the ranks attached.
    let mut ctl = ControllerProcess::start();
    let url = ctl.url();
    let job = format!("killed-{}", mpi.name());
    let l = launch(mpi, &exe).env("STRADDLE_CONTROLLER", &url).env("STRADDLE_JOB", &job).env("STRADDLE_INTERVAL_MS", 100);
    let r = std::thread::scope(|s| {
        let h = s.spawn(|| l.run());
        let seen = wait_for(&url, &job, Duration::from_secs(20), |m| m.ranks.iter().filter(|r| r.reports > 0).count() == 4);
        assert!(seen.ranks.iter().all(|r| r.reports > 0), "ranks attached before the kill");
        ctl.kill();
        h.join().unwrap()
    });
    assert!(!ctl.is_running());
    assert_eq!(checksums(&r), want, "{}: controller killed mid-run", mpi.name());
    assert!(r.elapsed < slack + Duration::from_secs(2), "{}: killed controller slowed the run: {:?}", mpi.name(), r.elapsed);

    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in silent.incoming().flatten() {
            keep.lock().unwrap().push(c);
        }
    });
    let r = launch(mpi, &exe).env("STRADDLE_CONTROLLER", addr.to_string()).env("STRADDLE_JOB", "silent").run();
    assert_eq!(checksums(&r), want, "{}: silent controller", mpi.name());
    assert!(r.elapsed < slack, "{}: silent controller slowed the run: {:?} vs {:?}", mpi.name(), r.elapsed, base.elapsed);
    assert!(!held.lock().unwrap().is_empty(), "the ranks did try the silent controller");
}

#[test]
fn mpich_runs_unchanged_whatever_the_controller_does() {
    faults(Mpi::Mpich);
}

#[test]
fn open_mpi_runs_unchanged_whatever_the_controller_does() {
    faults(Mpi::OpenMpi);
}

/// The controller is killed and restarted on the same address while the job runs: the
/// shims reconnect and resend their cumulative counts, so the new controller's matrix ends
/// exact although it never saw the first part of the run.
fn restart(mpi: Mpi) {
    let _x = exclusive();
    let dir = Scratch::new("restart");
    let exe = mpi.compile(&program("traffic.c"), &dir.0);
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut first = ControllerProcess::start_on(&listen);
    let url = first.url();
    let job = format!("restart-{}", mpi.name());
    let loops = 40;
    let l = Launch::new(mpi, 4, &exe)
        .arg(loops)
        .arg(SLEEP_MS)
        .env("STRADDLE_CONTROLLER", &url)
        .env("STRADDLE_JOB", &job)
        .env("STRADDLE_INTERVAL_MS", 100);
    let (run, second) = std::thread::scope(|s| {
        let h = s.spawn(|| l.run());
        wait_for(&url, &job, Duration::from_secs(20), |m| m.ranks.iter().all(|r| r.reports > 0));
        first.kill();
        std::thread::sleep(Duration::from_millis(500));
        let second = ControllerProcess::start_on(&listen);
        (h.join().unwrap(), second)
    });
    assert!(run.success, "{}", run.stderr);
    let m = wait_for(&second.url(), &job, Duration::from_secs(10), |m| m.ranks.iter().all(|r| r.reports > 0 && !r.attached));
    let e = straddle_tests::expect::traffic_c(4, loops as u64, mpi.has_large_count());
    let (bytes, messages) = straddle_tests::controller::dense(&m);
    assert_eq!(bytes, e.bytes_flat(), "{}: bytes after a controller restart", mpi.name());
    assert_eq!(messages, e.messages_flat(), "{}: messages after a controller restart", mpi.name());
}

#[test]
fn mpich_counts_survive_a_controller_restart() {
    restart(Mpi::Mpich);
}

#[test]
fn open_mpi_counts_survive_a_controller_restart() {
    restart(Mpi::OpenMpi);
}

#[test]
fn inert_in_launchers_proxies_and_shells() {
    let _x = exclusive();
    let dir = Scratch::new("inert");
    for mpi in BOTH {
        let shim = straddle_tests::paths::shim(mpi);
        // A shell and a plain program that never initialise MPI.
        let out = std::process::Command::new("sh")
            .args(["-c", "echo inert; ls / >/dev/null"])
            .env("LD_PRELOAD", &shim)
            .env("STRADDLE_CONTROLLER", "127.0.0.1:9")
            .output()
            .unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout) == "inert\n", "{:?}", out);
        assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));

        // The launcher itself (and so its proxies/daemons) inherits LD_PRELOAD.
        let exe = mpi.compile(&program("traffic.c"), &dir.0);
        let ctl = ControllerProcess::start();
        let job = format!("inherited-{}", mpi.name());
        let l = Launch::new(mpi, 4, &exe).without_shim().env("STRADDLE_JOB", &job).env("STRADDLE_INTERVAL_MS", 100);
        let mut cmd = l.command();
        cmd.env("LD_PRELOAD", &shim).env("STRADDLE_CONTROLLER", ctl.url()).env("STRADDLE_JOB", &job);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}: {}", mpi.name(), String::from_utf8_lossy(&out.stderr));
        // Only the four ranks report, not the launcher or its helpers.
        let m = wait_for(&ctl.url(), &job, Duration::from_secs(10), |m| m.ranks.iter().all(|r| r.reports > 0 && !r.attached));
        assert_eq!(m.world_size, 4);
        assert!(m.ranks.iter().all(|r| r.reports > 0));
        assert!(!ctl.log().contains("refused"), "{}", ctl.log());
    }
}
