//! Two libvirt sites of the bed with a tiny guest each (`g0` on host `he` in site east,
//! `g1` on `hw` in west) and a controller moving them through libvirt: what the live
//! migration tests and the migration benchmark share. A job's two ranks sit on the two
//! guests; a reporting client stands in for the shims.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::guest::{build_initramfs, static_program, GuestKernel};
use super::libvirt::{GuestSpec, LibvirtSite};
use super::{Bed, BedSpec};
use crate::controller::{cli, drive_ranks_with, submit, ControllerProcess, SeenMap};
use crate::paths::Scratch;

/// Panics unless this machine can run the bed and libvirt.
pub fn need_bed() {
    if let Err(why) = super::can_run() {
        panic!("{why}");
    }
    assert!(
        std::process::Command::new("libvirtd").arg("--version").output().is_ok(),
        "this needs libvirtd, which is not installed (scripts/setup.sh installs it)"
    );
}

/// The highest `STRADDLE-TICK <name> N` on a console, and how many times it booted.
pub fn ticks(console: &Path, name: &str) -> (Option<u64>, usize) {
    let text = std::fs::read_to_string(console).unwrap_or_default();
    let tick = format!("STRADDLE-TICK {name} ");
    let max = text.lines().filter_map(|l| l.split(&tick).nth(1)).filter_map(|n| n.trim().parse().ok()).max();
    (max, text.matches(&format!("STRADDLE-GUEST-UP {name} ")).count())
}

/// Waits until `f` holds, or panics with `what` after `limit`.
pub fn wait(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn names(out: Result<String, super::BedError>) -> Vec<String> {
    out.unwrap_or_default().lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// Domains a site runs.
pub fn running(site: &LibvirtSite) -> Vec<String> {
    names(site.virsh(&["list", "--name"]))
}

/// Domains a site knows, running or not.
pub fn defined(site: &LibvirtSite) -> Vec<String> {
    names(site.virsh(&["list", "--all", "--name"]))
}

/// What the two sites' guests and the controller are like.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The bed's prefix (at most 5 letters or digits).
    pub prefix: String,
    /// The WAN cap, Mbit/s (`None`: as fast as the relay goes); the topology says
    /// `topology_mbit`.
    pub mbit: Option<u32>,
    pub topology_mbit: u32,
    pub memory_mib: u32,
    /// MiB each guest rewrites over and over (0: idle).
    pub dirty_mib: u32,
    /// MiB whose every page each guest dirties as fast as its CPU goes (0: none).
    pub touch_mib: u32,
    /// Where the guests' heartbeats go (`host:port`; empty: no heartbeat).
    pub beat: String,
    /// More arguments for the controller.
    pub controller_args: Vec<String>,
    /// Keep the controller's state in a file (it survives a restart).
    pub durable: bool,
}

impl Spec {
    pub fn new(prefix: &str, mbit: u32, memory_mib: u32) -> Spec {
        Spec {
            prefix: prefix.into(),
            mbit: Some(mbit),
            topology_mbit: mbit,
            memory_mib,
            dirty_mib: 0,
            touch_mib: 0,
            beat: String::new(),
            controller_args: Vec::new(),
            durable: false,
        }
    }

    pub fn args(mut self, a: &[&str]) -> Spec {
        self.controller_args.extend(a.iter().map(|s| s.to_string()));
        self
    }
}

/// The sites and link of the bed's two libvirt sites, a host each (he in east, hw in west)
/// driven through its daemon: the start of a topology file.
pub fn sites_yaml(sites: &[LibvirtSite], mbit: u32) -> String {
    let host = |s: &LibvirtSite, name: &str| {
        format!(
            "{{name: {name}, vm_capacity: 2, libvirt_uri: \"{}\", peer_uri: \"{}\", migration_address: \"{}\"}}",
            s.uri, s.tcp_uri, s.address
        )
    };
    format!(
        "sites:\n  - {{name: east, hosts: [{}]}}\n  - {{name: west, hosts: [{}]}}\n\
         links:\n  - {{between: [east, west], bandwidth_mbit: {mbit}, latency_ms: 10}}\n",
        host(&sites[0], "he"),
        host(&sites[1], "hw")
    )
}

/// The topology of the bed's two sites with guest g0 on he and g1 on hw.
pub fn topology(sites: &[LibvirtSite], mib: u32, mbit: u32) -> String {
    format!(
        "{}vms:\n  - {{name: g0, host: he, memory_mib: {mib}}}\n  - {{name: g1, host: hw, memory_mib: {mib}}}\n",
        sites_yaml(sites, mbit)
    )
}

/// Two libvirt sites with a guest each, a controller moving them through libvirt, and a
/// job whose two ranks sit on the two guests.
pub struct Case {
    pub sites: Vec<LibvirtSite>,
    /// Guest `g<s>`'s console (it started on site `s`).
    pub consoles: Vec<PathBuf>,
    pub ctl: ControllerProcess,
    pub url: String,
    pub job_token: String,
    args: Vec<String>,
    memory_mib: u32,
    pub bed: Bed,
    pub dir: Scratch,
}

impl Case {
    /// Brings up the bed, both daemons, both guests (each ticking), and the controller.
    pub fn up(spec: &Spec) -> Case {
        let dir = Scratch::new(&spec.prefix);
        let b = Bed::up(BedSpec::new(&spec.prefix, 2, 1).rate_mbit(spec.mbit)).unwrap();
        let sites: Vec<LibvirtSite> = (0..2).map(|s| LibvirtSite::start(&b, s).unwrap()).collect();
        let consoles = boot(&dir.0, &sites, spec);
        let topo = dir.0.join("topology.yaml");
        std::fs::write(&topo, topology(&sites, spec.memory_mib, spec.topology_mbit)).unwrap();
        let mut args: Vec<String> = [
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
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if spec.durable {
            args.extend(["--state".to_string(), dir.0.join("state.redb").display().to_string()]);
        }
        args.extend(spec.controller_args.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let ctl = ControllerProcess::start_with("127.0.0.1:0", &refs);
        let url = ctl.url();
        let job_token = submit(&url, "tk", "pair", "g0,g1");
        Case { sites, consoles, ctl, url, job_token, args, memory_mib: spec.memory_mib, bed: b, dir }
    }

    /// Kills the controller with SIGKILL and starts it again on the same state.
    pub fn restart_after_kill(&mut self) {
        self.ctl.kill();
        let refs: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.ctl = ControllerProcess::start_with("127.0.0.1:0", &refs);
        self.url = self.ctl.url();
    }

    /// Replaces the controller with a fresh one (nothing learnt, nothing kept, the same
    /// arguments) over a topology declaring `topology_mbit` between the sites; the job is
    /// submitted again. A guest libvirt runs elsewhere than the topology places it is
    /// adopted where it runs.
    pub fn fresh_controller(&mut self, topology_mbit: u32) {
        self.ctl.kill();
        std::fs::write(self.dir.0.join("topology.yaml"), topology(&self.sites, self.memory_mib, topology_mbit)).unwrap();
        let refs: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.ctl = ControllerProcess::start_with("127.0.0.1:0", &refs);
        self.url = self.ctl.url();
        self.job_token = submit(&self.url, "tk", "pair", "g0,g1");
    }

    /// Ranks 0 (on g0, east) and 1 (on g1, west) send each other 20 MB/s for `secs`.
    pub fn drive(&self, secs: u64) -> std::thread::JoinHandle<Vec<SeenMap>> {
        let (url, token) = (self.url.clone(), self.job_token.clone());
        std::thread::spawn(move || drive_ranks_with(&url, Some(&token), "pair", 2, 20_000_000, Instant::now() + Duration::from_secs(secs)))
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let (ok, out) = cli(&self.url, Some("tk"), args);
        assert!(ok, "straddle {args:?}: {out}");
        out
    }

    /// The first decision line saying `state` with migrations, once there is one.
    pub fn decision(&self, state: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let log = self.cli(&["decisions"]);
            if let Some(line) = log.lines().find(|l| l.contains(state) && l.trim_end().ends_with(']')) {
                return line.to_string();
            }
            if start.elapsed() > limit {
                let ctl = self.ctl.log();
                let tail: Vec<&str> = ctl.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
                panic!("no decision {state} within {limit:?}:\n{log}\n{}\ncontroller:\n{}", self.cli(&["operations"]), tail.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The running operation's (vm, from host, to host), once there is one.
    pub fn running_operation(&self, limit: Duration) -> (String, String, String) {
        let mut found = None;
        wait(limit, "a migration running", || {
            let ops = self.cli(&["operations"]);
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

    /// The site index of a host name of the topology.
    pub fn site_of(host: &str) -> usize {
        usize::from(host == "hw")
    }

    /// The guest's console (`g0` or `g1`).
    pub fn console(&self, vm: &str) -> &Path {
        &self.consoles[usize::from(vm == "g1")]
    }

    /// The host the controller has `vm` placed on.
    pub fn placed(&self, vm: &str) -> String {
        let placements = self.cli(&["placements"]);
        placements
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|t| t.first() == Some(&vm))
            .and_then(|t| t.get(1).map(|h| h.to_string()))
            .unwrap_or_else(|| panic!("{vm} in placements:\n{placements}"))
    }

    /// Waits until `vm`'s counter goes on past where it is now (it runs, it was not
    /// rebooted).
    pub fn still_ticking(&self, vm: &str) {
        let was = ticks(self.console(vm), vm).0.unwrap_or(0);
        wait(Duration::from_secs(60), &format!("{vm}'s counter going on past {was}"), || {
            ticks(self.console(vm), vm).0.is_some_and(|t| t > was + 2)
        });
        assert!(ticks(self.console(vm), vm).1 <= 1, "{vm} booted again");
    }
}

/// The decision id of a `straddle decisions` line.
pub fn decision_id(line: &str) -> String {
    line.trim_start_matches('#').split_whitespace().next().unwrap().to_string()
}

fn boot(dir: &Path, sites: &[LibvirtSite], spec: &Spec) -> Vec<PathBuf> {
    let cache = crate::paths::target_dir();
    let kernel = GuestKernel::get(&cache.join("straddle-guest")).unwrap();
    let mut tools = Vec::new();
    if !spec.beat.is_empty() {
        tools.push(static_program(&dir.join("tools"), "beat").unwrap());
    }
    if spec.touch_mib > 0 {
        tools.push(static_program(&dir.join("tools"), "touch").unwrap());
    }
    let initrd = dir.join("initrd.cpio");
    build_initramfs(&kernel, None, &tools.iter().map(PathBuf::as_path).collect::<Vec<_>>(), &initrd).unwrap();
    let mut consoles = Vec::new();
    for (s, site) in sites.iter().enumerate() {
        let g = GuestSpec {
            name: format!("g{s}"),
            kernel: kernel.vmlinuz.clone(),
            initrd: initrd.clone(),
            ip: format!("10.77.{s}.100/16"),
            report: String::new(),
            mac: format!("52:54:00:78:0{s}:64"),
            memory_mib: spec.memory_mib,
            dirty_mib: spec.dirty_mib,
            touch_mib: spec.touch_mib,
            beat: spec.beat.clone(),
        };
        consoles.push(site.boot(&g).unwrap());
    }
    for (s, c) in consoles.iter().enumerate() {
        let name = format!("g{s}");
        wait(Duration::from_secs(120), &format!("{name} ticking"), || ticks(c, &name).0.is_some_and(|t| t >= 2));
    }
    consoles
}
