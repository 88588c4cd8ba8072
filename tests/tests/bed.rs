//! Self-tests of the multi-site test bed. They need root (network namespaces, bridges,
//! qdiscs) and, for the guests, libvirt: ignored unless asked for (`cargo test --
//! --ignored`, which `scripts/test.sh` does as root), and failing, never passing, when asked
//! for without what they need. What the bed's WAN carries, as figures, is the `bed_wan`
//! benchmark's.

use std::time::{Duration, Instant};

use straddle_tests::bed::launch::BedLaunch;
use straddle_tests::bed::selftest::{SelfTest, TimerProbe};
use straddle_tests::bed::{self, Bed, BedSpec};
use straddle_tests::mpi::{exclusive, Mpi};
use straddle_tests::paths::{program, Scratch};

fn need_bed() {
    if let Err(why) = bed::can_run() {
        panic!("{why}: this test needs root and the test bed (scripts/test.sh runs it as root)");
    }
}

fn assert_clean(prefix: &str) {
    let left = bed::leftovers(prefix);
    assert!(left.is_empty(), "bed {prefix} left behind: {left:?}");
}

/// This machine's timers are precise enough for the 1 ms bar on the RTT's p99 when a
/// real-time thread's 1 ms sleeps run late by under this at the p99.
const QUIET_TIMER_P99_MS: f64 = 1.0;

/// The delay as configured, measured, and the relay counts what crossed; the shaper never
/// lets TCP across above its cap, lets it reach at least half of caps of 100 and 20 Mbit/s
/// and more than 100 under one of 1000; inside a site nothing is shaped. The strict delay bars (the self-test's: p99 within 1 ms plus the
/// machine's own timer lateness) are held on a quiet machine; when every attempt misses and
/// the machine's timers ran late over the last one (a busy VM host), only the median is
/// held and the test says so. How close TCP comes to the cap is a performance figure:
/// `cargo bench -p straddle-tests --bench bed_wan`.
#[test]
#[ignore = "needs root and the test bed (run by scripts/test.sh as root)"]
fn wan_delay_is_what_was_asked_and_tcp_stays_under_the_cap() {
    need_bed();
    let _x = exclusive();
    for delay_ms in [10, 50] {
        let t = Instant::now();
        let mut b = Bed::up(BedSpec::new("bd", 2, 2).delay(Duration::from_millis(delay_ms)).rate_mbit(Some(100))).unwrap();
        eprintln!("bed with {delay_ms} ms up in {:?}", t.elapsed());
        // The last attempt's misses, if every attempt missed: (timers late, self-test,
        // misses). A quiet machine must meet the strict bars in one of three.
        let mut last_miss = None;
        for attempt in 1..=3 {
            let before = b.wan_counters().unwrap();
            // The machine's noise over the whole attempt.
            let probe = TimerProbe::start();
            let st = SelfTest::run(&b, 200, 0).unwrap();
            let timers = probe.stop();
            eprintln!("attempt {attempt}:\n{st}");
            // Every probe and reply crossed the WAN and was counted.
            let after = b.wan_counters().unwrap();
            assert!(after[0][1].delivered_bytes - before[0][1].delivered_bytes >= 202 * 98, "pings 0->1 counted");
            assert!(after[1][0].sent_frames - before[1][0].sent_frames >= 202);
            assert_eq!(after[0][1].dropped_frames, 0);
            let misses = st.failures();
            if misses.is_empty() {
                last_miss = None;
                break;
            }
            let noisy = timers.p99 > QUIET_TIMER_P99_MS;
            eprintln!(
                "attempt {attempt} missed on a {} machine (timer lateness over the attempt: {timers}): {misses:?}",
                if noisy { "noisy" } else { "quiet" },
            );
            last_miss = Some((noisy, st, misses));
            std::thread::sleep(Duration::from_secs(3));
        }
        if let Some((noisy, st, misses)) = last_miss {
            assert!(noisy, "{delay_ms} ms on a quiet machine, in all three attempts: {misses:?}");
            // The robust bar only: the median delay.
            let d = st.cross_site_rtt.unwrap();
            let want = 2.0 * delay_ms as f64;
            assert!((d.median - want).abs() <= 1.0, "median RTT {} vs {want}", d.median);
            eprintln!("WARNING: this machine's timers ran late in every attempt; strict bars not assessed for {delay_ms} ms");
        }
        if delay_ms == 10 {
            // The cap holds TCP across under it (goodput is below the line rate) and lets it
            // reach at least half of it, at the bed's default cap and at a fifth of it. Under
            // a cap of ten times that, the relay (user space, sharing the cores with
            // everything else) may carry less than half on a busy machine: the cap must
            // still hold and let through more than the default cap allowed. How close TCP
            // comes is the bed_wan benchmark's figure.
            for rate in [100, 20, 1000] {
                b.set_rate(Some(rate)).unwrap();
                let mbit = b.tcp_mbit(0, 2, 4).unwrap();
                eprintln!("cross-site TCP under a {rate} Mbit/s cap: {mbit:.1} Mbit/s");
                assert!(mbit <= f64::from(rate), "{mbit:.1} Mbit/s across is above the {rate} Mbit/s cap");
                let floor = if rate > 100 { 100.0 } else { 0.5 * f64::from(rate) };
                assert!(mbit > floor, "{mbit:.1} Mbit/s across under a {rate} Mbit/s cap: not above {floor} Mbit/s");
            }
            // Inside a site nothing is shaped: far above the WAN's cap.
            b.set_rate(Some(100)).unwrap();
            let local = b.tcp_mbit(0, 1, 2).unwrap();
            eprintln!("in-site TCP: {local:.0} Mbit/s");
            assert!(local > 5.0 * 100.0, "in-site TCP {local:.0} Mbit/s is not far above the 100 Mbit/s WAN cap");
        }
        drop(b);
        assert_clean("bd");
    }
}

/// A 4-rank job, one rank per node across two sites, runs and exits cleanly 20 times in a
/// row on each MPI; ranks really are on distinct nodes and sites.
#[test]
#[ignore = "needs root and the test bed (run by scripts/test.sh as root)"]
fn mpi_jobs_across_sites_exit_cleanly_20_times() {
    need_bed();
    let _x = exclusive();
    let dir = Scratch::new("bed-mpi");
    let b = Bed::up(BedSpec::new("bm", 2, 2)).unwrap();
    for mpi in [Mpi::OpenMpi, Mpi::Mpich] {
        let exe = mpi.compile(&program("ring.c"), &dir.0);
        let mut times = Vec::new();
        for i in 0..20 {
            let before = b.wan_counters().unwrap();
            let run = BedLaunch::new(&b, mpi, vec![0, 1, 2, 3], &exe).run();
            assert!(run.success, "{} run {i} failed after {:?}:\n{}\n{}", mpi.name(), run.elapsed, run.stdout, run.stderr);
            for (r, node) in b.nodes.iter().enumerate() {
                assert!(run.stdout.contains(&format!("rank {r} of 4 on {} ", node.name)), "{}:\n{}", mpi.name(), run.stdout);
            }
            // 64 KiB from rank 1 to rank 2 and from rank 3 to rank 0 crossed the WAN.
            let after = b.wan_counters().unwrap();
            assert!(after[0][1].delivered_bytes - before[0][1].delivered_bytes > 65536);
            assert!(after[1][0].delivered_bytes - before[1][0].delivered_bytes > 65536);
            times.push(run.elapsed.as_secs_f64());
        }
        eprintln!(
            "{}: 20 clean runs, {:.2}..{:.2} s",
            mpi.name(),
            times.iter().cloned().fold(f64::MAX, f64::min),
            times.iter().cloned().fold(0.0, f64::max)
        );
    }
    drop(b);
    assert_clean("bm");
}

/// Teardown runs when a test panics, and a bed left by a killed process is removed by the
/// next bed of the same prefix; nothing stays behind either way.
#[test]
#[ignore = "needs root and the test bed (run by scripts/test.sh as root)"]
fn teardown_leaves_nothing() {
    need_bed();
    let _x = exclusive();
    let t = Instant::now();
    let r = std::panic::catch_unwind(|| {
        let _b = Bed::up(BedSpec::new("bt", 3, 2)).unwrap();
        panic!("a failing test");
    });
    assert!(r.is_err());
    assert_clean("bt");
    // A bed whose owner died: `straddle-bed up` keeps it as a killed test would.
    let out = std::process::Command::new(straddle_tests::paths::target_dir().join("straddle-bed"))
        .args(["up", "--prefix", "bt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!bed::leftovers("bt").is_empty(), "the kept bed exists");
    let b = Bed::up(BedSpec::new("bt", 2, 1)).unwrap();
    assert_eq!(b.nodes.len(), 2);
    drop(b);
    assert_clean("bt");
    eprintln!("three beds up and down in {:?}", t.elapsed());
}

/// The whole bed — two sites, four nodes, the relay, a libvirt daemon per site — comes up,
/// the two daemons are two hosts to libvirt, and a tiny guest boots on each site and
/// reports over the network.
#[test]
#[ignore = "needs root, the test bed and libvirt (run by scripts/test.sh as root)"]
fn a_tiny_guest_boots_on_each_libvirt_site() {
    use straddle_tests::bed::guest::{build_initramfs, GuestKernel};
    use straddle_tests::bed::libvirt::{listen_in, receive, GuestSpec, LibvirtSite};
    need_bed();
    assert!(
        std::process::Command::new("libvirtd").arg("--version").output().is_ok(),
        "this test needs libvirtd, which is not installed (scripts/setup.sh installs it)"
    );
    let _x = exclusive();
    let dir = Scratch::new("guest");
    // The guest kernel is downloaded once and kept next to the build.
    let kernel = GuestKernel::get(&straddle_tests::paths::target_dir().join("straddle-guest")).unwrap();
    // The init runs a given program once the network is up and reports its output.
    let program = dir.0.join("program.sh");
    std::fs::write(
        &program,
        "#!/bin/busybox sh\necho \"program ran on $(hostname) kernel $(uname -r) addr $(ip -o -4 addr show eth0 | awk '{print $4}')\"\n",
    )
    .unwrap();
    let initrd = dir.0.join("initrd.cpio");
    build_initramfs(&kernel, Some(&program), &[], &initrd).unwrap();

    let t = Instant::now();
    let b = Bed::up(BedSpec::new("bv", 2, 2)).unwrap();
    let sites: Vec<LibvirtSite> = (0..2).map(|s| LibvirtSite::start(&b, s).unwrap()).collect();
    eprintln!("two sites, four nodes, relay and two libvirt daemons up in {:?}", t.elapsed());
    // Two distinct hosts to libvirt: each daemon's host UUID (its capabilities' <host>),
    // which migration between them needs to differ.
    let host_uuid = |s: &LibvirtSite| {
        let caps = s.virsh(&["capabilities"]).unwrap_or_else(|e| panic!("site {}: {e}", s.site));
        let host = caps.split("<host>").nth(1).and_then(|h| h.split("</host>").next()).unwrap_or_default();
        let uuid = host.split("<uuid>").nth(1).and_then(|u| u.split("</uuid>").next()).map(str::trim).unwrap_or_default();
        assert!(!uuid.is_empty(), "site {}: no host UUID in its capabilities:\n{caps}", s.site);
        uuid.to_string()
    };
    let (a, b_uuid) = (host_uuid(&sites[0]), host_uuid(&sites[1]));
    assert_ne!(a, b_uuid, "both sites' daemons report host UUID {a}");

    let listeners: Vec<_> = (0..2).map(|s| listen_in(&b, s, 7000).unwrap()).collect();
    let mut consoles = Vec::new();
    for (s, site) in sites.iter().enumerate() {
        let g = GuestSpec {
            name: format!("tiny-{s}"),
            kernel: kernel.vmlinuz.clone(),
            initrd: initrd.clone(),
            ip: format!("10.77.{s}.100/16"),
            report: format!("{}:7000", site.address),
            mac: format!("52:54:00:77:0{s}:64"),
            memory_mib: 160,
            dirty_mib: 0,
            touch_mib: 0,
            beat: String::new(),
        };
        consoles.push(site.boot(&g).unwrap());
    }
    for (s, l) in listeners.iter().enumerate() {
        let t = Instant::now();
        let report = receive(l, Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("site {s}: {e}\nconsole:\n{}", std::fs::read_to_string(&consoles[s]).unwrap_or_default()));
        eprintln!("site {s}: guest reported after {:?}: {}", t.elapsed(), report.trim());
        assert!(report.starts_with(&format!("booted tiny-{s} uptime ")), "{report}");
        assert!(
            report.contains(&format!("program ran on tiny-{s} kernel ")) && report.contains(&format!("addr 10.77.{s}.100/16")),
            "{report}"
        );
        let console = std::fs::read_to_string(&consoles[s]).unwrap();
        assert!(console.contains(&format!("STRADDLE-GUEST-UP tiny-{s}")), "{console}");
        assert_eq!(sites[s].virsh(&["domstate", &format!("tiny-{s}")]).unwrap().trim(), "running");
    }
    drop(sites);
    drop(b);
    assert_clean("bv");
}
