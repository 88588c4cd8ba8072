//! A cluster built, moved and torn down by the product on the test bed: two libvirt sites
//! (10 ms and 100 Mbit/s apart) with an agent daemon each; the controller builds the
//! cluster `red` through the agents (its segment on both sites, a tiny guest on each, their
//! MACs and addresses from the addressing scheme), moves a guest through libvirt because of
//! its job's traffic, and tears the cluster down. A probe namespace on site east's segment
//! stands in for a peer that nobody reconfigures.

use std::process::{Command, Stdio};
use std::time::Duration;

use straddle_tests::bed::agent_sites::{AgentSites, OPERATOR};
use straddle_tests::bed::two_sites::{defined, need_bed, running, wait};
use straddle_tests::mpi::exclusive;

fn ping_once(ns: &str, to: &str) -> bool {
    Command::new("ip").args(["netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-W", "1", to]).output().unwrap().status.success()
}

/// A ping every 50 ms with each reply's time (`-D`), until interrupted.
fn pinger(ns: &str, to: &str) -> std::process::Child {
    Command::new("ip").args(["netns", "exec", ns, "ping", "-n", "-D", "-i", "0.05", "-W", "1", to]).stdout(Stdio::piped()).spawn().unwrap()
}

/// Interrupts a pinger; the longest time without a reply (between two, or from the last
/// to the interruption), and how many came.
fn longest_gap(p: std::process::Child) -> (Duration, usize) {
    let end = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    // SAFETY: signalling our own child (ping, exec'd by ip netns exec).
    unsafe { libc::kill(p.id() as i32, libc::SIGINT) };
    let out = p.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let times: Vec<f64> =
        text.lines().filter(|l| l.contains("bytes from")).filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok()).collect();
    let tail = times.last().map_or(f64::INFINITY, |last| end - last);
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(tail, f64::max);
    (Duration::from_secs_f64(gap), times.len())
}

#[test]
#[ignore = "needs root, the test bed and libvirt (run by scripts/test.sh as root)"]
fn a_cluster_is_built_moved_and_torn_down_through_the_agents() {
    need_bed();
    let _x = exclusive();
    let s = AgentSites::up("av", 100, 128);
    wait(Duration::from_secs(60), "both agents registered", || {
        let out = s.cli(&["agents"]).1;
        out.contains("he (site east)") && out.contains("hw (site west)")
    });
    // Built through the controller: the segment on both sites, a guest on each.
    let (kernel, initrd) = (s.kernel.display().to_string(), s.initrd.display().to_string());
    let (ok, out) = s.cli(&["cluster", "build", "red", "--kernel", &kernel, "--initrd", &initrd]);
    assert!(ok, "build: {out}\n{}\n{}", s.agent_log(0), s.agent_log(1));
    assert!(out.contains("built g0 on he") && out.contains("built g1 on hw"), "{out}");
    for (site, vm, mac) in [(0, "g0", "02:53:00:01:00:01"), (1, "g1", "02:53:00:01:01:01")] {
        assert!(running(&s.sites[site]).contains(&vm.to_string()), "{vm} runs on site {site}");
        let xml = s.sites[site].virsh(&["dumpxml", vm]).unwrap();
        assert!(xml.contains(&format!("<mac address='{mac}'/>")) && xml.contains("<source bridge='sbr101'/>"), "{vm}: {xml}");
    }
    // A build again changes nothing (idempotent).
    let (ok, out) = s.cli(&["cluster", "build", "red", "--kernel", &kernel, "--initrd", &initrd]);
    assert!(ok, "{out}");
    // A peer on east's segment reaches both guests, one across the sites.
    let probe = s.probe(0, 9);
    wait(Duration::from_secs(180), "the probe reaches g0 (10.1.0.1) and g1 (10.1.1.1)", || {
        ping_once(&probe, "10.1.0.1") && ping_once(&probe, "10.1.1.1")
    });
    // The job on g0 and g1 talks heavily: the controller moves g1 to g0's site through
    // libvirt (g0 is pinned: east keeps members, so the probe there keeps its segment; the
    // destination's segment is ensured first). g1 keeps its MAC and address; the probe,
    // never reconfigured, keeps reaching it.
    let (ok, out) = s.cli(&["override", "pin", "g0"]);
    assert!(ok, "{out}");
    let (ok, out) = s.cli(&["submit", "pair", "--vms", "g0,g1"]);
    assert!(ok, "{out}");
    let pings = [pinger(&probe, "10.1.0.1"), pinger(&probe, "10.1.1.1")];
    let (ns, url) = (format!("{}-a0", s.bed.spec.prefix), s.url());
    let driving = std::thread::spawn(move || {
        let until = std::time::Instant::now() + Duration::from_secs(40);
        straddle_tests::bed::in_netns(&ns, || {
            straddle_tests::controller::drive_ranks_with(&url, Some(OPERATOR), "pair", 2, 20_000_000, until)
        })
        .unwrap()
    });
    wait(Duration::from_secs(150), "g1 moved to he, beside g0", || {
        let p = s.cli(&["placements"]).1;
        let host = |vm: &str| p.lines().find(|l| l.starts_with(vm)).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("").to_string();
        host("g0") == "he" && host("g1") == "he"
    });
    let (vm, addr, mac, to) = ("g1", "10.1.1.1", "02:53:00:01:01:01", 0);
    std::thread::sleep(Duration::from_secs(3));
    let gaps: Vec<(Duration, usize)> = pings.into_iter().map(longest_gap).collect();
    let (gap, replies) = gaps[usize::from(vm == "g1")];
    eprintln!("{vm} moved to site {to}; longest gap in the probe's replies: {gap:?} of {replies}");
    assert!(replies > 20, "the probe heard {vm} throughout: {replies} replies");
    assert!(gap < Duration::from_secs(1), "{vm} was unreachable for {gap:?} (more than a second) across its move");
    assert!(gaps[0].0 < Duration::from_secs(1), "g0, which stayed, was unreachable for {:?}", gaps[0].0);
    let xml = s.sites[to].virsh(&["dumpxml", vm]).unwrap();
    assert!(xml.contains(&format!("<mac address='{mac}'/>")), "{vm} keeps its MAC: {xml}");
    assert!(ping_once(&probe, addr), "{vm} answers at its address on the new site");
    driving.join().unwrap();
    // Torn down: no VM, no segment, no forwarding entry left on either site.
    let (ok, out) = s.cli(&["cluster", "down", "red"]);
    assert!(ok, "{out}");
    for site in 0..2 {
        assert!(defined(&s.sites[site]).is_empty(), "site {site} keeps no VM: {:?}", defined(&s.sites[site]));
    }
    // The probe's own port stays on east's bridge until the probe goes; then nothing is left.
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    for site in 0..2 {
        wait(Duration::from_secs(30), &format!("site {site}'s segments removed"), || s.segments(site) == (vec![], vec![]));
    }
}
