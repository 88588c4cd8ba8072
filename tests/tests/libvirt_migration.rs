//! Real live migration through libvirt on the test bed: two sites 10 ms and 100 Mbit/s
//! apart, a libvirt daemon each, a tiny guest on each. The controller runs with
//! `--hypervisor libvirt` over a topology naming the two daemons; ranks of a job spanning
//! both guests report heavy traffic to each other, and the controller moves a guest to the
//! other's site: the guest keeps running (its console's counter goes on, it does not boot
//! again), placement and site map change, and the decision carries libvirt's figures.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use straddle_tests::bed::guest::{build_initramfs, GuestKernel};
use straddle_tests::bed::libvirt::{GuestSpec, LibvirtSite};
use straddle_tests::bed::{Bed, BedSpec};
use straddle_tests::controller::{cli, drive_ranks_with, submit, ControllerProcess};
use straddle_tests::mpi::exclusive;
use straddle_tests::paths::Scratch;

fn need_bed() {
    if let Err(why) = straddle_tests::bed::can_run() {
        panic!("{why}");
    }
    assert!(
        std::process::Command::new("libvirtd").arg("--version").output().is_ok(),
        "this test needs libvirtd, which is not installed (scripts/setup.sh installs it)"
    );
}

/// The highest `STRADDLE-TICK <name> N` on a console, and how many times it booted.
fn ticks(console: &Path, name: &str) -> (Option<u64>, usize) {
    let text = std::fs::read_to_string(console).unwrap_or_default();
    let tick = format!("STRADDLE-TICK {name} ");
    let max = text.lines().filter_map(|l| l.split(&tick).nth(1)).filter_map(|n| n.trim().parse().ok()).max();
    (max, text.matches(&format!("STRADDLE-GUEST-UP {name} ")).count())
}

/// Waits until `f` holds, or panics with `what` after `limit`.
fn wait(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn running(site: &LibvirtSite) -> Vec<String> {
    site.virsh(&["list", "--name"]).unwrap_or_default().lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

fn defined(site: &LibvirtSite) -> Vec<String> {
    site.virsh(&["list", "--all", "--name"])
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A topology of the bed's two sites with one host each, driven through their daemons.
fn topology(sites: &[LibvirtSite], mib: u32, mbit: u32) -> String {
    let host = |s: &LibvirtSite, name: &str| {
        format!(
            "{{name: {name}, vm_capacity: 2, libvirt_uri: \"{}\", peer_uri: \"{}\", migration_address: \"{}\"}}",
            s.uri, s.tcp_uri, s.address
        )
    };
    format!(
        "sites:\n  - {{name: east, hosts: [{}]}}\n  - {{name: west, hosts: [{}]}}\n\
         links:\n  - {{between: [east, west], bandwidth_mbit: {mbit}, latency_ms: 10}}\n\
         vms:\n  - {{name: g0, host: he, memory_mib: {mib}}}\n  - {{name: g1, host: hw, memory_mib: {mib}}}\n",
        host(&sites[0], "he"),
        host(&sites[1], "hw")
    )
}

struct Guests {
    consoles: Vec<PathBuf>,
}

fn boot(dir: &Path, sites: &[LibvirtSite], mib: u32) -> Guests {
    let kernel = GuestKernel::get(&straddle_tests::paths::target_dir().join("straddle-guest")).unwrap();
    let initrd = dir.join("initrd.cpio");
    build_initramfs(&kernel, None, &initrd).unwrap();
    let mut consoles = Vec::new();
    for (s, site) in sites.iter().enumerate() {
        let g = GuestSpec {
            name: format!("g{s}"),
            kernel: kernel.vmlinuz.clone(),
            initrd: initrd.clone(),
            ip: format!("10.77.{s}.100/16"),
            report: String::new(),
            mac: format!("52:54:00:78:0{s}:64"),
            memory_mib: mib,
        };
        consoles.push(site.boot(&g).unwrap());
    }
    for (s, c) in consoles.iter().enumerate() {
        let name = format!("g{s}");
        wait(Duration::from_secs(120), &format!("{name} ticking"), || ticks(c, &name).0.is_some_and(|t| t >= 2));
    }
    Guests { consoles }
}

/// Two libvirt sites with a guest each, a controller moving them through libvirt, and a
/// job whose two ranks sit on the two guests.
struct Case {
    sites: Vec<LibvirtSite>,
    guests: Guests,
    ctl: ControllerProcess,
    url: String,
    job_token: String,
    _bed: Bed,
    _dir: Scratch,
}

fn case(prefix: &str, mbit: u32, mib: u32) -> Case {
    let dir = Scratch::new(prefix);
    let b = Bed::up(BedSpec::new(prefix, 2, 1).rate_mbit(Some(mbit))).unwrap();
    let sites: Vec<LibvirtSite> = (0..2).map(|s| LibvirtSite::start(&b, s).unwrap()).collect();
    let guests = boot(&dir.0, &sites, mib);
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, topology(&sites, mib, mbit)).unwrap();
    let ctl = ControllerProcess::start_with(
        "127.0.0.1:0",
        &[
            "--topology",
            topo.to_str().unwrap(),
            "--hypervisor",
            "libvirt",
            "--token",
            "tk",
            "--decide-every",
            "0.5",
            "--window",
            "3",
            "--dwell",
            "0",
        ],
    );
    let url = ctl.url();
    let job_token = submit(&url, "tk", "pair", "g0,g1");
    Case { sites, guests, ctl, url, job_token, _bed: b, _dir: dir }
}

impl Case {
    /// Ranks 0 (on g0, east) and 1 (on g1, west) send each other 20 MB/s for `secs`.
    fn drive(&self, secs: u64) -> std::thread::JoinHandle<Vec<straddle_tests::controller::SeenMap>> {
        let (url, token) = (self.url.clone(), self.job_token.clone());
        std::thread::spawn(move || drive_ranks_with(&url, Some(&token), "pair", 2, 20_000_000, Instant::now() + Duration::from_secs(secs)))
    }

    fn cli(&self, args: &[&str]) -> String {
        let (ok, out) = cli(&self.url, Some("tk"), args);
        assert!(ok, "straddle {args:?}: {out}");
        out
    }

    /// The first decision line saying `state` with migrations, once there is one.
    fn decision(&self, state: &str, limit: Duration) -> String {
        let mut line = String::new();
        wait(limit, &format!("a decision {state}"), || {
            let log = self.cli(&["decisions"]);
            line = log.lines().find(|l| l.contains(state) && l.trim_end().ends_with(']')).unwrap_or_default().to_string();
            !line.is_empty()
        });
        line
    }
}

fn decision_id(line: &str) -> String {
    line.trim_start_matches('#').split_whitespace().next().unwrap().to_string()
}

#[test]
#[ignore = "needs root, the test bed and libvirt (run by scripts/test.sh as root)"]
fn a_guest_moves_to_its_peers_site_because_of_traffic_and_keeps_running() {
    need_bed();
    let _x = exclusive();
    let c = case("lm", 100, 128);
    let (sites, guests) = (&c.sites, &c.guests);
    let before: Vec<Option<u64>> = (0..2).map(|s| ticks(&guests.consoles[s], &format!("g{s}")).0).collect();

    // 40 s of traffic; the migration it causes may end after that.
    let driving = c.drive(40);
    let applied = c.decision("applied", Duration::from_secs(150));
    let why = c.cli(&["explain", &decision_id(&applied)]);
    eprintln!("{why}");

    // Which guest moved, and where libvirt now runs it.
    let moved = if applied.contains("g0 ") { 0 } else { 1 };
    let (from, to) = (&sites[moved], &sites[1 - moved]);
    let name = format!("g{moved}");
    assert!(running(to).contains(&name), "{name} runs on the other site: {:?}\n{}", running(to), c.ctl.log());
    assert!(!defined(from).contains(&name), "{name} is gone from its first site (undefined there): {:?}", defined(from));
    // It kept running: the counter goes on from where it was, and it never booted again.
    let was = before[moved].unwrap();
    wait(Duration::from_secs(60), &format!("{name}'s counter going on past {was}"), || {
        ticks(&guests.consoles[moved], &name).0.is_some_and(|t| t > was + 2)
    });
    assert!(ticks(&guests.consoles[moved], &name).1 <= 1, "{name} booted again");

    // The controller's view: both guests on one site, the job's map on a new epoch, and
    // libvirt's figures beside the estimate.
    let placements = c.cli(&["placements", "--job", "pair"]);
    let where_: std::collections::HashSet<&str> = placements.lines().skip(1).filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(where_.len(), 1, "{placements}");
    assert!(why.contains("pair epoch"), "the map changed: {why}");
    assert!(why.contains("downtime") && why.contains("passes"), "libvirt's statistics on the decision: {why}");
    let maps = driving.join().unwrap();
    let last = maps.iter().rfind(|m| m.0 == 0).unwrap_or_else(|| panic!("rank 0 got no map: {maps:?}"));
    assert!(last.1 >= 2 && last.2[0] == last.2[1], "rank 0 ends on one site at epoch 2 or later: {maps:?}");
}

/// The running operation's (vm, from host, to host), once there is one.
fn running_operation(c: &Case, limit: Duration) -> (String, String, String) {
    let mut found = None;
    wait(limit, "a migration running", || {
        let ops = c.cli(&["operations"]);
        // "#1    decision #2    g1               running      hw -> he  pair  ..."
        found = ops
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|t| t.len() > 7 && t[4] == "running")
            .map(|t| (t[3].to_string(), t[5].to_string(), t[7].to_string()));
        found.is_some()
    });
    found.unwrap()
}

/// The destination's libvirt daemon dies while a guest migrates to it (a slow link keeps
/// the copy going): the migration fails, the guest runs on where it was, placement and
/// map stay, the decision says what happened, and the controller goes on serving.
#[test]
#[ignore = "needs root, the test bed and libvirt (run by scripts/test.sh as root)"]
fn the_destination_daemon_dying_mid_migration_leaves_the_guest_where_it_was() {
    need_bed();
    let _x = exclusive();
    // 20 Mbit/s: about 90 MiB to copy take half a minute.
    let mut c = case("lf", 20, 128);
    let driving = c.drive(20);
    let (vm, from, to) = running_operation(&c, Duration::from_secs(120));
    let (src, dst) = if from == "he" { (0, 1) } else { (1, 0) };
    assert_eq!(to, if dst == 0 { "he" } else { "hw" });
    std::thread::sleep(Duration::from_secs(3));
    let ticking = ticks(&c.guests.consoles[src], &vm).0.unwrap();
    c.sites[dst].kill_daemon();
    let failed = c.decision("failed", Duration::from_secs(180));
    let why = c.cli(&["explain", &decision_id(&failed)]);
    eprintln!("{why}");
    assert!(why.contains(&format!("#1 {vm} failed")) || why.contains(&format!("{vm} failed")), "the decision says the move failed: {why}");
    // The guest runs where it was, still ticking, and the controller says so.
    assert!(running(&c.sites[src]).contains(&vm), "{vm} runs on {from}: {:?}", running(&c.sites[src]));
    wait(Duration::from_secs(60), &format!("{vm} ticking on past {ticking}"), || {
        ticks(&c.guests.consoles[src], &vm).0.is_some_and(|t| t > ticking + 2)
    });
    let placements = c.cli(&["placements", "--job", "pair"]);
    assert!(placements.lines().any(|l| l.starts_with(&format!("{vm} ")) && l.contains(&format!(" {from} "))), "{placements}");
    assert!(c.cli(&["health"]).starts_with("healthy"), "the controller serves");
    let _ = driving.join();
}
