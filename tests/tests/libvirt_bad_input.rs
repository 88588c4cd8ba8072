//! `--hypervisor libvirt` given what it cannot use, without root or a daemon: libvirt's own
//! in-process test driver (`test:///default`, which runs one domain named "test") stands in
//! for a host that answers, a socket nobody listens on for one that does not. Each case
//! ends in a clear error naming the thing, and nothing half-done.

use std::time::{Duration, Instant};

use straddle_tests::controller::{cli, drive_ranks_with, submit, ControllerProcess};
use straddle_tests::paths::{controller_bin, Scratch};

const SILENT: &str = "qemu+unix:///system?socket=/nonexistent/straddle-test/libvirt-sock";

fn topology(vms: &str) -> String {
    format!(
        "sites:\n  - {{name: a, hosts: [{{name: ha, vm_capacity: 4, libvirt_uri: \"test:///default\"}}]}}\n\
         \x20 - {{name: b, hosts: [{{name: hb, vm_capacity: 4, libvirt_uri: \"{SILENT}\"}}]}}\n\
         links:\n  - {{between: [a, b], bandwidth_mbit: 1000, latency_ms: 5}}\nvms:\n{vms}"
    )
}

/// Starts the controller on `topo`; returns its exit status and output if it ended within
/// a few seconds.
fn start_fails(dir: &Scratch, topo: &str, extra: &[&str]) -> (bool, String) {
    let path = dir.0.join("topology.yaml");
    std::fs::write(&path, topo).unwrap();
    let out = std::process::Command::new(controller_bin())
        .args(["controller", "--listen", "127.0.0.1:0", "--topology", path.to_str().unwrap(), "--hypervisor", "libvirt"])
        .args(extra)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn a_vm_libvirt_lacks_or_a_host_without_a_uri_is_refused_at_start() {
    let dir = Scratch::new("lvbad");
    let (ok, out) =
        start_fails(&dir, &topology("  - {name: test, host: ha, memory_mib: 128}\n  - {name: ghost, host: ha, memory_mib: 128}\n"), &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("VM \"ghost\" runs on no host (asked ha; hb did not answer)"), "{out}");

    let no_uri = topology("  - {name: test, host: ha, memory_mib: 128}\n").replace(&format!(", libvirt_uri: \"{SILENT}\""), "");
    let (ok, out) = start_fails(&dir, &no_uri, &[]);
    assert!(!ok && out.contains("host \"hb\" has no libvirt_uri"), "{out}");

    let bad = topology("  - {name: test, host: ha, memory_mib: 128}\n").replace("test:///default", "not a uri");
    let (ok, out) = start_fails(&dir, &bad, &[]);
    assert!(!ok && out.contains("libvirt_uri") && out.contains("not a uri"), "{out}");
}

/// Starts the controller on `topo` (VM `vm` on ha), lets a job on `vm` report, drains site
/// a, and returns the failed decision's explanation once the move fails, after checking
/// that `vm` stayed on ha and nothing is left in flight.
fn drain_fails(prefix: &str, topo: &str, vm: &str) -> (String, String) {
    let dir = Scratch::new(prefix);
    let path = dir.0.join("topology.yaml");
    std::fs::write(&path, topo).unwrap();
    let ctl = ControllerProcess::start_with(
        "127.0.0.1:0",
        &[
            "--topology",
            path.to_str().unwrap(),
            "--hypervisor",
            "libvirt",
            "--token",
            "tk",
            "--decide-every",
            "0.3",
            "--window",
            "2",
            "--dwell",
            "0",
        ],
    );
    let url = ctl.url();
    let job_token = submit(&url, "tk", "solo", &format!("{vm},{vm}"));
    // A job is planned once it has a window of traffic: its two ranks (both on `vm`)
    // report for 6 s.
    let driving = {
        let url = url.clone();
        std::thread::spawn(move || drive_ranks_with(&url, Some(&job_token), "solo", 2, 1000, Instant::now() + Duration::from_secs(6)))
    };
    // Draining site a asks the planner to move `vm` to hb.
    let (ok, out) = cli(&url, Some("tk"), &["override", "drain", "a"]);
    assert!(ok, "{out}");
    let start = Instant::now();
    let failed = loop {
        let (_, log) = cli(&url, Some("tk"), &["decisions"]);
        if let Some(l) = log.lines().find(|l| l.contains("failed")) {
            break l.to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no failed migration:\n{log}\n{}", ctl.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    let id = failed.trim_start_matches('#').split_whitespace().next().unwrap();
    let (_, why) = cli(&url, Some("tk"), &["explain", id]);
    let (_, placements) = cli(&url, Some("tk"), &["placements"]);
    assert!(placements.lines().any(|l| l.starts_with(&format!("{vm} ")) && l.contains(" ha ")), "{vm} stays on ha:\n{placements}");
    driving.join().unwrap();
    let (_, ops) = cli(&url, Some("tk"), &["operations"]);
    assert!(!ops.contains("running"), "nothing left in flight:\n{ops}");
    (why, ctl.log())
}

#[test]
fn a_migration_to_a_host_that_does_not_answer_fails_naming_it_and_moves_nothing() {
    let (why, log) = drain_fails("lvdown", &topology("  - {name: test, host: ha, memory_mib: 128}\n"), "test");
    assert!(log.contains("hb") && log.contains("does not answer"), "the silent host is named at start:\n{log}");
    assert!(why.contains("\"hb\" is unreachable") && why.contains("/nonexistent/straddle-test/libvirt-sock"), "{why}");
}

/// The destination answers but has no memory for the guest: libvirt's default test host
/// (a few MiB free) receives g0 (128 MiB) from a test host of its own. Refused before libvirt
/// starts anything there.
#[test]
fn a_migration_to_a_host_without_room_fails_naming_it_and_moves_nothing() {
    let dir = Scratch::new("lvroom");
    let source = dir.0.join("source-host.xml");
    std::fs::write(
        &source,
        "<node><cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets><cores>2</cores>\
         <threads>1</threads><active>2</active></cpu><memory>1048576</memory>\
         <domain type='test'><name>g0</name><memory unit='MiB'>128</memory><os><type>hvm</type></os></domain></node>\n",
    )
    .unwrap();
    let topo = topology("  - {name: g0, host: ha, memory_mib: 128}\n").replace(SILENT, "test:///default").replacen(
        "test:///default",
        &format!("test://{}", source.display()),
        1,
    );
    let (why, _) = drain_fails("lvroom", &topo, "g0");
    // The test host's free memory is a few MiB (its own figure).
    assert!(why.contains("host \"hb\" has ") && why.contains(" MiB of memory free and \"g0\" needs 128 MiB"), "{why}");
}
