//! A multi-site test bed on one machine, the role the source paper's hardware WAN emulator
//! played. Each site is a network namespace with a bridge; each node its own network and UTS
//! namespace (a distinct hostname, so MPI treats it as a separate node, as it would a VM) on
//! its site's bridge; a user-space relay (`relay.rs`) joins the sites' bridges with the
//! configured one-way delay and loss, and `tbf` caps each site's WAN bandwidth. Every node's
//! TCP is pinned (BBR, Reno inside its site, windows kept across idle: `node_tcp`), not the machine's. Everything
//! one bed creates carries its prefix, and teardown — on drop, on `straddle-bed down`, or
//! before the next bed of the same prefix comes up — removes it all. `agent_sites` runs the
//! product on it: an agent daemon per site building the clusters' segments and VMs.

pub mod agent_sites;
pub mod guest;
pub mod heartbeat;
pub mod launch;
pub mod libvirt;
pub mod relay;
pub mod selftest;
pub mod stats;
pub mod two_sites;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use stats::PairCounters;

/// Where beds keep their files (UTS namespace handles, launcher script, stats).
pub const RUN_DIR: &str = "/run/straddle-bed";

#[derive(Debug, Clone)]
pub struct SiteSpec {
    /// Short name (a few characters), used in namespace names.
    pub name: String,
    pub nodes: u32,
}

#[derive(Debug, Clone)]
pub struct BedSpec {
    /// Prefix of everything this bed creates (at most 5 characters).
    pub prefix: String,
    pub sites: Vec<SiteSpec>,
    /// One-way delay between any two sites.
    pub delay: Duration,
    /// Cap on each site's outgoing WAN traffic (tbf), in Mbit/s.
    pub rate_mbit: Option<u32>,
    /// Frame loss probability on the WAN.
    pub loss: f64,
}

/// Site `i`'s name: a, b, c, … (26 at most).
fn site_name(i: u32) -> String {
    let letter = u8::try_from(i).ok().and_then(|i| b'a'.checked_add(i)).filter(u8::is_ascii_lowercase);
    char::from(letter.unwrap_or_else(|| panic!("a bed has at most 26 sites, not {}", i + 1))).to_string()
}

impl BedSpec {
    /// `sites` sites named a, b, c, … of `nodes` nodes each.
    pub fn new(prefix: &str, sites: u32, nodes: u32) -> BedSpec {
        BedSpec {
            prefix: prefix.to_string(),
            sites: (0..sites).map(|i| SiteSpec { name: site_name(i), nodes }).collect(),
            delay: Duration::from_millis(10),
            rate_mbit: Some(100),
            loss: 0.0,
        }
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    pub fn rate_mbit(mut self, r: Option<u32>) -> Self {
        self.rate_mbit = r;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub site: usize,
    pub ip: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BedError {
    #[error("the test bed needs root (network namespaces, bridges, qdiscs); running as uid {0}")]
    NotRoot(u32),
    #[error("bed prefix {0:?} must be 1 to 5 letters or digits")]
    BadPrefix(String),
    #[error("`{cmd}` failed: {stderr}")]
    Command { cmd: String, stderr: String },
    #[error("the WAN relay did not start: {0}")]
    Relay(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Whether this process may build a bed, and if not why (the tests that need one are
/// ignored unless asked for and fail with this reason; benchmarks say they skipped).
pub fn can_run() -> Result<(), String> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if uid != 0 {
        return Err(format!("the test bed needs root (uid {uid})"));
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("the test bed needs /dev/net/tun, which is missing".into());
    }
    Ok(())
}

/// Runs a command, failing with its stderr.
pub fn sh(args: &[&str]) -> Result<String, BedError> {
    let out = Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(BedError::Command { cmd: args.join(" "), stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn site_address(site: usize) -> String {
    format!("10.77.{site}.254")
}

fn netns_path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

/// Runs `f` on this thread inside the named network namespace (sockets it makes stay
/// there), then comes back.
pub fn in_netns<T>(ns: &str, f: impl FnOnce() -> T) -> Result<T, BedError> {
    use std::os::fd::AsRawFd;
    let target = std::fs::File::open(netns_path(ns))?;
    let here = std::fs::File::open("/proc/thread-self/ns/net")?;
    // SAFETY: switch this thread into the namespace and back; nothing else runs on this
    // thread meanwhile.
    unsafe {
        if libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    let out = f();
    // SAFETY: as above.
    unsafe { libc::setns(here.as_raw_fd(), libc::CLONE_NEWNET) };
    Ok(out)
}

pub struct Bed {
    pub spec: BedSpec,
    pub nodes: Vec<Node>,
    pub dir: PathBuf,
    relay: Option<Child>,
    /// Keep everything on drop (the `straddle-bed up` command hands the bed to `down`).
    pub keep: bool,
}

impl Bed {
    pub fn site_ns(&self, site: usize) -> String {
        format!("{}-{}", self.spec.prefix, self.spec.sites[site].name)
    }

    pub fn uts_path(&self, node: &str) -> PathBuf {
        self.dir.join("uts").join(node)
    }

    /// Brings the bed up (after removing any leftovers of the same prefix).
    pub fn up(spec: BedSpec) -> Result<Bed, BedError> {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        if uid != 0 {
            return Err(BedError::NotRoot(uid));
        }
        if spec.prefix.is_empty() || spec.prefix.len() > 5 || !spec.prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(BedError::BadPrefix(spec.prefix.clone()));
        }
        teardown(&spec.prefix);
        let dir = PathBuf::from(RUN_DIR).join(&spec.prefix);
        let mut bed = Bed { spec, nodes: vec![], dir, relay: None, keep: false };
        bed.build()?;
        Ok(bed)
    }

    fn build(&mut self) -> Result<(), BedError> {
        let uts = self.dir.join("uts");
        std::fs::create_dir_all(&uts)?;
        let u = uts.to_str().unwrap();
        // UTS namespace handles are bind mounts: keep them in a private mount.
        sh(&["mount", "--bind", u, u])?;
        sh(&["mount", "--make-private", u])?;
        let p = self.spec.prefix.clone();
        for (si, site) in self.spec.sites.clone().iter().enumerate() {
            let sns = format!("{p}-{}", site.name);
            sh(&["ip", "netns", "add", &sns])?;
            no_ipv6(&sns)?;
            sh(&["ip", "-n", &sns, "link", "set", "lo", "up"])?;
            sh(&["ip", "-n", &sns, "link", "add", "br0", "type", "bridge"])?;
            // Forward at once: no STP delay, no multicast snooping surprises.
            sh(&["ip", "-n", &sns, "link", "set", "br0", "type", "bridge", "forward_delay", "0", "mcast_snooping", "0"])?;
            sh(&["ip", "-n", &sns, "link", "set", "br0", "up"])?;
            // The site's host (where its libvirt daemon listens) on the cluster segment.
            sh(&["ip", "-n", &sns, "addr", "add", &format!("{}/16", site_address(si)), "dev", "br0"])?;
            for i in 0..site.nodes {
                let node = format!("{p}-{}{i}", site.name);
                let ip = format!("10.77.{si}.{}", i + 1);
                sh(&["ip", "netns", "add", &node])?;
                no_ipv6(&node)?;
                let port = format!("n{i}");
                sh(&["ip", "-n", &sns, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &node])?;
                sh(&["ip", "-n", &sns, "link", "set", &port, "master", "br0", "up"])?;
                sh(&["ip", "-n", &node, "addr", "add", &format!("{ip}/16"), "dev", "eth0"])?;
                sh(&["ip", "-n", &node, "link", "set", "eth0", "up"])?;
                sh(&["ip", "-n", &node, "link", "set", "lo", "up"])?;
                // Frames to other sites pass through a user-space relay: no offloads on
                // the way there (no GSO super-frames, no partial checksums).
                ethtool_off(&node, "eth0")?;
                ethtool_off(&sns, &port)?;
                node_tcp(&node, si)?;
                let handle = uts.join(&node);
                std::fs::write(&handle, b"")?;
                sh(&["unshare", &format!("--uts={}", handle.display()), "hostname", &node])?;
                self.nodes.push(Node { name: node, site: si, ip });
            }
        }
        if self.spec.sites.len() > 1 {
            self.start_relay()?;
        }
        self.write_launcher()?;
        Ok(())
    }

    fn start_relay(&mut self) -> Result<(), BedError> {
        let exe = relay_exe();
        let mut cmd = Command::new(&exe);
        cmd.arg("relay").arg("--stats").arg(self.dir.join("wan.stats"));
        cmd.arg("--delay-us").arg(self.spec.delay.as_micros().to_string());
        cmd.arg("--loss").arg(self.spec.loss.to_string());
        for s in 0..self.spec.sites.len() {
            cmd.arg("--site").arg(format!("{}={}", self.spec.sites[s].name, netns_path(&self.site_ns(s)).display()));
        }
        let log = std::fs::File::create(self.dir.join("relay.log"))?;
        let mut child = cmd.stdout(Stdio::piped()).stderr(log).stdin(Stdio::null()).spawn()?;
        std::fs::write(self.dir.join("relay.pid"), child.id().to_string())?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        if line.trim() != "relay ready" {
            let _ = child.kill();
            let log = std::fs::read_to_string(self.dir.join("relay.log")).unwrap_or_default();
            return Err(BedError::Relay(format!("{} {}", line.trim(), log.trim())));
        }
        self.relay = Some(child);
        for s in 0..self.spec.sites.len() {
            let ns = self.site_ns(s);
            sh(&["ip", "-n", &ns, "link", "set", "wan", "master", "br0"])?;
            sh(&["ip", "-n", &ns, "link", "set", "wan", "up"])?;
            ethtool_off(&ns, "wan")?;
            if let Some(rate) = self.spec.rate_mbit {
                add_tbf(&ns, rate)?;
            }
        }
        Ok(())
    }

    /// The launcher's remote shell: maps a node address to its namespaces.
    fn write_launcher(&self) -> Result<(), BedError> {
        let mut s = String::from(
            "#!/bin/sh\n# Remote shell of this test bed: HOST CMD... runs CMD inside that node's namespaces.\nwhile [ $# -gt 0 ]; do case \"$1\" in -*) shift ;; *) break ;; esac; done\nhost=$1; shift\ncase \"$host\" in\n",
        );
        for n in &self.nodes {
            s.push_str(&format!(
                "  {}|{}) exec nsenter --net={} --uts={} sh -c \"$*\" ;;\n",
                n.ip,
                n.name,
                netns_path(&n.name).display(),
                self.uts_path(&n.name).display()
            ));
        }
        s.push_str("  *) echo \"nsrsh: unknown host $host\" >&2; exit 255 ;;\nesac\n");
        let p = self.dir.join("nsrsh");
        std::fs::write(&p, s)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }

    /// The site host's address on the cluster segment.
    pub fn site_address(&self, site: usize) -> String {
        site_address(site)
    }

    pub fn launcher(&self) -> PathBuf {
        self.dir.join("nsrsh")
    }

    /// A command run inside `node`'s network and UTS namespaces.
    pub fn on(&self, node: usize, program: &str) -> Command {
        let n = &self.nodes[node];
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", netns_path(&n.name).display()))
            .arg(format!("--uts={}", self.uts_path(&n.name).display()))
            .arg("--")
            .arg(program);
        c
    }

    /// Exact bytes and frames that crossed between every ordered site pair so far.
    pub fn wan_counters(&self) -> Result<Vec<Vec<PairCounters>>, BedError> {
        Ok(stats::read(&self.dir.join("wan.stats"))?)
    }

    /// Round-trip times in ms from `from` to `to` (ping, `count` probes `interval` apart).
    pub fn rtts(&self, from: usize, to: usize, count: u32, interval: Duration) -> Result<Vec<f64>, BedError> {
        let out = self
            .on(from, "ping")
            .args(["-n", "-c", &count.to_string(), "-i", &format!("{:.3}", interval.as_secs_f64()), "-W", "2"])
            .arg(&self.nodes[to].ip)
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let rtts: Vec<f64> = text
            .lines()
            .filter_map(|l| l.split("time=").nth(1))
            .filter_map(|t| t.split_whitespace().next())
            .filter_map(|v| v.parse().ok())
            .collect();
        if rtts.is_empty() {
            return Err(BedError::Command { cmd: "ping".into(), stderr: format!("{text}{}", String::from_utf8_lossy(&out.stderr)) });
        }
        Ok(rtts)
    }

    /// TCP goodput in Mbit/s from `from` to `to` over `secs` seconds after a first second
    /// of slow start (iperf3).
    pub fn tcp_mbit(&self, from: usize, to: usize, secs: u32) -> Result<f64, BedError> {
        let mut last = String::new();
        for _ in 0..3 {
            // A one-off server; the client starts only once it listens (a client that
            // connects too early can use up a one-off server).
            let mut server = self.on(to, "iperf3").args(["-s", "-1", "-p", "5201"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(3) {
                let ss = self.on(to, "ss").args(["-ltnH", "sport", "=", ":5201"]).output()?;
                if !ss.stdout.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = self
                .on(from, "iperf3")
                .args(["-c", &self.nodes[to].ip, "-p", "5201", "-t", &secs.to_string(), "-O", "1", "-J"])
                .output()?;
            let _ = server.kill();
            let _ = server.wait();
            let parsed: Option<f64> = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v["end"]["sum_received"]["bits_per_second"].as_f64());
            match parsed {
                Some(b) if out.status.success() => return Ok(b / 1e6),
                _ => last = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
            }
        }
        Err(BedError::Command { cmd: "iperf3".into(), stderr: last })
    }

    /// Changes the WAN bandwidth cap of every site (tbf), or removes it.
    pub fn set_rate(&mut self, rate_mbit: Option<u32>) -> Result<(), BedError> {
        for s in 0..self.spec.sites.len() {
            let ns = self.site_ns(s);
            let _ =
                Command::new("ip").args(["netns", "exec", &ns, "tc", "qdisc", "del", "dev", "wan", "root"]).stderr(Stdio::null()).status();
            if let Some(rate) = rate_mbit {
                add_tbf(&ns, rate)?;
            }
        }
        self.spec.rate_mbit = rate_mbit;
        Ok(())
    }

    /// Cuts every site off the WAN (`true`) or joins them again (`false`): the site's WAN
    /// port leaves its bridge, so frames neither leave nor arrive; connections across see
    /// silence, as over a cut fibre, not a reset.
    pub fn cut_wan(&self, cut: bool) -> Result<(), BedError> {
        for s in 0..self.spec.sites.len() {
            let ns = self.site_ns(s);
            if cut {
                sh(&["ip", "-n", &ns, "link", "set", "wan", "nomaster"])?;
            } else {
                sh(&["ip", "-n", &ns, "link", "set", "wan", "master", "br0"])?;
            }
        }
        Ok(())
    }

    /// Whether the relay is still running.
    pub fn relay_running(&mut self) -> bool {
        self.relay.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Some(mut c) = self.relay.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        teardown(&self.spec.prefix);
    }
}

/// Caps what leaves a site towards the WAN: tbf on the TAP the relay reads, with its queue
/// (up to 100 ms of the rate) serving pure acknowledgements first.
///
/// The queue of a site's uplink holds both that site's data and its acknowledgements of
/// what the other site sends. In one first-in first-out queue, data crossing one way holds
/// back the acknowledgements of data crossing the other way, and then each TCP connection
/// going the other way gets less of the path than it would alone. Measured on this bed
/// with one FIFO: four 4 MiB messages each way at once crossed at 7.8–10.5 MB/s per
/// direction (12.0 one way), and a single 512 KiB message each way between two different
/// pairs took 69.7 ms against 59.9 alone. So the tbf's queue is an htb of two classes that
/// only orders packets: IPv4 packets shorter than 128 bytes (acknowledgements without data,
/// with timestamps and SACK blocks) first, everything else after, each class in a byte
/// FIFO as deep as the tbf's own would be. With it, data one way slows the other way far
/// less: four 4 MiB messages each way crossed at 10.1–11.3 MB/s per direction, and one
/// 512 KiB message each way between different pairs took 52.9 ms against 52.5 alone.
fn add_tbf(ns: &str, rate_mbit: u32) -> Result<(), BedError> {
    // Burst: the rate's worth of 1 ms, at least 16 full frames.
    let burst = ((rate_mbit as u64 * 1_000_000 / 8) / 1000).max(16 * 1514);
    // What the tbf alone would queue: 100 ms of the rate plus its burst.
    let limit = (rate_mbit as u64 * 1_000_000 / 8 / 10 + burst).to_string();
    let tc = |args: &[&str]| -> Result<(), BedError> {
        let mut cmd = vec!["ip", "netns", "exec", ns, "tc"];
        cmd.extend_from_slice(args);
        sh(&cmd).map(|_| ())
    };
    tc(&[
        "qdisc",
        "add",
        "dev",
        "wan",
        "root",
        "handle",
        "1:",
        "tbf",
        "rate",
        &format!("{rate_mbit}mbit"),
        "burst",
        &burst.to_string(),
        "latency",
        "100ms",
    ])?;
    tc(&["qdisc", "replace", "dev", "wan", "parent", "1:1", "handle", "10:", "htb", "default", "2"])?;
    for (class, prio) in [("10:1", "0"), ("10:2", "1")] {
        // Far above the tbf's rate: the classes order packets, the tbf shapes them.
        tc(&["class", "add", "dev", "wan", "parent", "10:", "classid", class, "htb", "rate", "10gbit", "prio", prio])?;
        tc(&["qdisc", "add", "dev", "wan", "parent", class, "bfifo", "limit", &limit])?;
    }
    // The IPv4 total length (bytes 2-3 of the header) below 128.
    tc(&[
        "filter", "add", "dev", "wan", "parent", "10:", "protocol", "ip", "prio", "1", "u32", "match", "u16", "0x0000", "0xff80", "at",
        "2", "flowid", "10:1",
    ])?;
    Ok(())
}

/// IPv6 off: its router and neighbour solicitations would cross the WAN and blur the
/// counters of what a test sends.
fn no_ipv6(ns: &str) -> Result<(), BedError> {
    sh(&["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])?;
    Ok(())
}

/// A node's TCP, pinned rather than inherited from the machine, so that the bed's figures
/// do not depend on the machine's choice: BBR, windows kept across idle (as under steady
/// traffic). BBR paces each connection at its own estimate of the path's rate and does not
/// cut that rate at a loss. A loss-based one (Reno; CUBIC need not be on a machine's
/// allowed list) halves a connection's window at every overflow of the shaper's queue, and
/// one that had shared the WAN then crawls back by one segment per round trip: measured
/// here under Reno, two site leaders exchanged 2 MiB each way at about 7.7 MB/s where the
/// path gives 12. BBR's catch is its estimate: a connection that has carried only small
/// messages paces a 64 KiB one at half the path's rate (20 ms across instead of 15), so a
/// benchmark warms its connections first. Where a namespace may not use BBR (not on the
/// machine's allowed list) the node keeps the machine's choice, with a warning: the bed
/// works, its WAN figures may differ from `BENCHMARKS.md`.
///
/// Inside its site (the route to `10.77.{site}.0/24`) a node's connections use Reno. BBR
/// keeps at most about twice its bandwidth estimate times the lowest round trip it has
/// seen in flight, and inside a site that round trip is microseconds: a few dozen
/// segments. On the bed every rank shares two cores with the others, so a receiver often
/// waits milliseconds for a CPU, and a BBR sender stops after those segments until it
/// runs. Reno's window only grows on a lossless veth. Measured in slices (regrouped 4 MiB
/// calls whose sites reduce pieces while the WAN carries earlier ones): reduce-scatter
/// over interleaved sites 242 ms with BBR inside the sites (run 18) and 216 with Reno
/// (model 214); allreduce over 3+5, 451 and 386 (model 405 and 402).
fn node_tcp(ns: &str, site: usize) -> Result<(), BedError> {
    sh(&["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_slow_start_after_idle=0"])?;
    if let Err(e) = sh(&["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_congestion_control=bbr"]) {
        eprintln!("bed: {ns} keeps the machine's TCP congestion control, BBR not allowed here: {e}");
    }
    sh(&["ip", "-n", ns, "route", "add", &format!("10.77.{site}.0/24"), "dev", "eth0", "congctl", "reno"])?;
    Ok(())
}

fn ethtool_off(ns: &str, dev: &str) -> Result<(), BedError> {
    // Not every device supports every offload: ask for all, accept partial success.
    let _ = Command::new("ip")
        .args(["netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    Ok(())
}

/// The binary that runs the relay (`straddle-bed`, next to the tests' binaries).
fn relay_exe() -> PathBuf {
    crate::paths::target_dir().join("straddle-bed")
}

fn bed_namespaces(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(&format!("{prefix}-"))).collect()
        })
        .unwrap_or_default()
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&d))
        .map(str::to_string)
        .collect()
}

/// Removes everything a bed of `prefix` may have left: processes in its namespaces, the
/// relay, namespaces (and with them veths, bridges, TAPs, qdiscs), UTS handles, files.
pub fn teardown(prefix: &str) {
    let dir = PathBuf::from(RUN_DIR).join(prefix);
    if let Ok(pid) = std::fs::read_to_string(dir.join("relay.pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            // SAFETY: signalling a pid we recorded; a stale pid of another program is
            // possible only if the relay died and the pid was reused, accepted for tests.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    for ns in bed_namespaces(prefix) {
        for _ in 0..3 {
            let pids = Command::new("ip").args(["netns", "pids", &ns]).output().map(|o| o.stdout).unwrap_or_default();
            let pids: Vec<i32> = String::from_utf8_lossy(&pids).split_whitespace().filter_map(|p| p.parse().ok()).collect();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                // SAFETY: killing processes that live in this bed's namespaces.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("ip").args(["netns", "del", &ns]).stderr(Stdio::null()).status();
    }
    let mut mounts = mounts_under(&dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = Command::new("umount").arg("-l").arg(&m).stderr(Stdio::null()).status();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a bed of `prefix` left behind: empty after a clean teardown.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let dir = PathBuf::from(RUN_DIR).join(prefix);
    let mut left: Vec<String> = bed_namespaces(prefix).into_iter().map(|n| format!("namespace {n}")).collect();
    left.extend(mounts_under(&dir).into_iter().map(|m| format!("mount {m}")));
    if dir.exists() {
        left.push(format!("folder {}", dir.display()));
    }
    let procs = Command::new("pgrep").args(["-f", &format!("straddle-bed relay .*{RUN_DIR}/{prefix}/")]).output();
    if let Ok(o) = procs {
        for p in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            left.push(format!("relay process {p}"));
        }
    }
    left
}
