//! Two libvirt sites of the bed built by the product: an agent daemon per site (in the
//! site's namespace, its tunnel endpoint the site's address, its VMs through the site's
//! libvirt daemon) and a controller on site a's node (moving VMs through libvirt, building
//! the cluster `red` through the agents). Everything is removed on drop, even after a
//! failure.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::guest::{build_initramfs, GuestKernel};
use super::libvirt::LibvirtSite;
use super::{sh, Bed, BedSpec};
use crate::controller::ControllerProcess;
use crate::paths::{agent_bin, Scratch};

pub const OPERATOR: &str = "tk";
pub const FABRIC: &str = "fabric-5e1d77";
/// Where the controller listens: site a's node.
pub const CONTROLLER: &str = "10.77.0.1:50551";
pub const HOSTS: [&str; 2] = ["he", "hw"];
pub const SITES: [&str; 2] = ["east", "west"];

pub struct AgentSites {
    agents: Vec<Child>,
    pub ctl: Option<ControllerProcess>,
    pub sites: Vec<LibvirtSite>,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub dir: Scratch,
    /// Last: the namespaces go after everything in them.
    pub bed: Bed,
}

/// The two sites, a host each, and the cluster red: g0 built on he (east), g1 on hw (west).
pub fn topology(sites: &[LibvirtSite], mib: u32, mbit: u32) -> String {
    format!(
        "{}clusters:\n  - {{name: red, id: 1, vni: 101}}\n\
         vms:\n  - {{name: g0, host: he, memory_mib: {mib}, cluster: red, node: 1}}\n  - {{name: g1, host: hw, memory_mib: {mib}, cluster: red, node: 1}}\n",
        super::two_sites::sites_yaml(sites, mbit)
    )
}

impl AgentSites {
    /// The bed (WAN capped at `mbit`), both libvirt daemons, the controller, both agents.
    pub fn up(prefix: &str, mbit: u32, memory_mib: u32) -> AgentSites {
        let dir = Scratch::new(prefix);
        let bed = Bed::up(BedSpec::new(prefix, 2, 1).rate_mbit(Some(mbit))).unwrap();
        let sites: Vec<LibvirtSite> = (0..2).map(|s| LibvirtSite::start(&bed, s).unwrap()).collect();
        let kernel = GuestKernel::get(&crate::paths::target_dir().join("straddle-guest")).unwrap();
        let initrd = dir.0.join("initrd.cpio");
        build_initramfs(&kernel, None, &[], &initrd).unwrap();
        std::fs::write(dir.0.join("topology.yaml"), topology(&sites, memory_mib, mbit)).unwrap();
        std::fs::write(dir.0.join("fabric.token"), FABRIC).unwrap();
        let mut s = AgentSites { agents: Vec::new(), ctl: None, sites, kernel: kernel.vmlinuz, initrd, dir, bed };
        s.start_controller();
        for site in 0..2 {
            s.start_agent(site);
        }
        s
    }

    fn node_ns(&self) -> String {
        format!("{}-a0", self.bed.spec.prefix)
    }

    pub fn start_controller(&mut self) {
        let d = &self.dir.0;
        let args = [
            "--topology",
            &d.join("topology.yaml").display().to_string(),
            "--hypervisor",
            "libvirt",
            "--token",
            OPERATOR,
            "--fabric-token-file",
            &d.join("fabric.token").display().to_string(),
            "--agent-heartbeat",
            "0.5",
            "--decide-every",
            "0.5",
            "--discover-every",
            "1",
            "--window",
            "3",
            "--dwell",
            "0",
        ]
        .map(|s| s.to_string());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ctl = Some(ControllerProcess::start_in(&self.node_ns(), CONTROLLER, &refs));
    }

    fn start_agent(&mut self, site: usize) {
        let addr = self.bed.site_address(site);
        let log = std::fs::File::create(self.dir.0.join(format!("agent-{site}.log"))).unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.bed.site_ns(site)])
            .arg(agent_bin())
            .args(["serve", "--host", HOSTS[site], "--site", SITES[site], "--vtep", &addr])
            .args(["--listen", &format!("{addr}:7070"), "--controller", &format!("http://{CONTROLLER}")])
            .args(["--token-file", self.dir.0.join("fabric.token").to_str().unwrap()])
            .args(["--libvirt-uri", &self.sites[site].uri, "--state-dir", self.dir.0.join(format!("vms-{site}")).to_str().unwrap()])
            .env("RUST_LOG", "info,straddle_agent=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.contains("listening on"), "agent of site {site}: {line:?} {}", self.agent_log(site));
        self.agents.push(child);
    }

    pub fn agent_log(&self, site: usize) -> String {
        std::fs::read_to_string(self.dir.0.join(format!("agent-{site}.log"))).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://{CONTROLLER}")
    }

    /// `straddle ARGS` as the operator, from site a's node.
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        crate::controller::cli_in(&self.node_ns(), &self.url(), OPERATOR, args)
    }

    /// A guest's console (the agent writes it in its state folder).
    pub fn console(&self, site: usize, vm: &str) -> PathBuf {
        self.dir.0.join(format!("vms-{site}")).join(format!("{vm}.console"))
    }

    /// Plugs a probe namespace into site `site`'s segment of red, as node `node` of that
    /// site (MAC and address from the addressing scheme); returns its namespace.
    pub fn probe(&self, site: usize, node: u8) -> String {
        let ns = format!("{}-p{site}{node}", self.bed.spec.prefix);
        let sns = self.bed.site_ns(site);
        let port = format!("pr{node}");
        sh(&["ip", "netns", "add", &ns]).unwrap();
        sh(&["ip", "-n", &sns, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]).unwrap();
        sh(&["ip", "-n", &sns, "link", "set", &port, "mtu", "1450", "master", "sbr101", "up"]).unwrap();
        sh(&["ip", "-n", &ns, "link", "set", "eth0", "address", &format!("02:53:00:01:{site:02x}:{node:02x}"), "mtu", "1450", "up"])
            .unwrap();
        sh(&["ip", "-n", &ns, "addr", "add", &format!("10.1.{site}.{node}/16"), "dev", "eth0"]).unwrap();
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]).unwrap();
        ns
    }

    /// The agent's links in site `site` and its forwarding entries towards other sites.
    pub fn segments(&self, site: usize) -> (Vec<String>, Vec<String>) {
        let ns = self.bed.site_ns(site);
        let links = sh(&["ip", "-n", &ns, "-o", "link", "show"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_string())
            .filter(|n| n.starts_with("sbr") || n.starts_with("svx"))
            .collect();
        let fdb = sh(&["ip", "netns", "exec", &ns, "bridge", "fdb", "show"])
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("dst 10.77."))
            .map(str::to_string)
            .collect();
        (links, fdb)
    }
}

impl Drop for AgentSites {
    fn drop(&mut self) {
        for mut c in std::mem::take(&mut self.agents) {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.ctl = None;
        for site in 0..2 {
            for node in 1..20u8 {
                let _ = Command::new("ip")
                    .args(["netns", "del", &format!("{}-p{site}{node}", self.bed.spec.prefix)])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
