//! The segments' two hosts run by the product: a controller (in host h1's namespace, the
//! simulated hypervisor moving the topology's VMs) and an agent daemon per host, sharing a
//! fabric token; the controller builds the clusters' networks through the agents. Members
//! are the segments' namespaces, plugged where the placement says (as libvirt plugs a VM).
//! Everything is removed on drop, even after a failure.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::controller::ControllerProcess;
use crate::paths::{agent_bin, Scratch};
use crate::segments::Net;

/// The operator's token and the fabric's.
pub const OPERATOR: &str = "op-7f3a";
pub const FABRIC: &str = "fabric-91c2d0e4";

/// Two sites of a host each; red and blue have a member on each (the segments' members).
pub const TOPOLOGY: &str = "sites:
  - name: a
    hosts: [{name: h1, vm_capacity: 8}]
  - name: b
    hosts: [{name: h2, vm_capacity: 8}]
links:
  - {between: [a, b], bandwidth_mbit: 1000, latency_ms: 1}
clusters:
  - {name: red, id: 1, vni: 101}
  - {name: blue, id: 2, vni: 102}
vms:
  - {name: r1, host: h1, memory_mib: 16, cluster: red, node: 1}
  - {name: r2, host: h2, memory_mib: 16, cluster: red, node: 1}
  - {name: b1, host: h1, memory_mib: 16, cluster: blue, node: 1}
  - {name: b2, host: h2, memory_mib: 16, cluster: blue, node: 1}
";

pub struct Fleet {
    agents: BTreeMap<String, Child>,
    pub ctl: Option<ControllerProcess>,
    pub dir: Scratch,
    /// Last: the namespaces go after the processes in them.
    pub net: Net,
}

/// Where each host's agent listens: h1's on loopback (the default), h2's on the underlay
/// (the controller in h1 reaches it there).
pub fn agent_listen(h: &str) -> &'static str {
    if h == "h1" {
        "127.0.0.1:7070"
    } else {
        "192.0.2.2:7070"
    }
}

pub use crate::bed::two_sites::wait;

impl Fleet {
    /// Hosts up, the controller started, both agents started.
    pub fn up(p: &str) -> Fleet {
        let net = Net::up(p);
        let dir = Scratch::new(p);
        std::fs::write(dir.0.join("topology.yaml"), TOPOLOGY).unwrap();
        std::fs::write(dir.0.join("fabric.token"), FABRIC).unwrap();
        let mut f = Fleet { agents: BTreeMap::new(), ctl: None, dir, net };
        f.start_controller();
        f.start_agent("h1");
        f.start_agent("h2");
        f
    }

    pub fn start_controller(&mut self) {
        let topo = self.dir.0.join("topology.yaml");
        let state = self.dir.0.join("state.redb");
        let token = self.dir.0.join("fabric.token");
        let c = ControllerProcess::start_in(
            &self.net.ns("h1"),
            "192.0.2.1:50551",
            &[
                "--topology",
                topo.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
                "--token",
                OPERATOR,
                "--fabric-token-file",
                token.to_str().unwrap(),
                "--agent-heartbeat",
                "0.5",
                "--decide-every",
                "0.5",
                "--cooldown",
                "0",
                "--window",
                "2",
                "--dwell",
                "0",
            ],
        );
        self.ctl = Some(c);
    }

    pub fn url(&self) -> String {
        self.ctl.as_ref().expect("the controller runs").url()
    }

    /// Starts host `h`'s agent and waits until it listens.
    pub fn start_agent(&mut self, h: &str) {
        let url = self.ctl.as_ref().map(|c| c.url()).unwrap_or_else(|| "http://192.0.2.1:1".into());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.0.join(format!("agent-{h}.log"))).unwrap();
        let vtep = if h == "h1" { "192.0.2.1" } else { "192.0.2.2" };
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.net.ns(h)])
            .arg(agent_bin())
            .args(["serve", "--host", h, "--site", if h == "h1" { "a" } else { "b" }, "--vtep", vtep, "--controller", &url])
            .args(["--listen", agent_listen(h), "--token-file", self.dir.0.join("fabric.token").to_str().unwrap()])
            .env("RUST_LOG", "info,straddle_agent=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start the agent");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.contains("listening on"), "agent {h} did not start: {line:?} {}", self.agent_log(h));
        self.agents.insert(h.to_string(), child);
    }

    /// SIGKILL, as a crash.
    pub fn kill_agent(&mut self, h: &str) {
        if let Some(mut c) = self.agents.remove(h) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn agent_log(&self, h: &str) -> String {
        std::fs::read_to_string(self.dir.0.join(format!("agent-{h}.log"))).unwrap_or_default()
    }

    /// `straddle ARGS` against the controller, as the operator, from h1.
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        crate::controller::cli_in(&self.net.ns("h1"), &self.url(), OPERATOR, args)
    }

    /// Submits `job` on `vms` (comma-separated, rank order) and drives its ranks' reports
    /// at `bytes_per_s` from each rank to the next for `secs`, from h1 (in a thread).
    pub fn run_job(&self, job: &str, vms: &str, bytes_per_s: u64, secs: u64) -> std::thread::JoinHandle<()> {
        let (ok, out) = self.cli(&["submit", job, "--vms", vms]);
        assert!(ok, "submit {job}: {out}");
        let (ns, url, job) = (self.net.ns("h1"), self.url(), job.to_string());
        let world = u32::try_from(vms.split(',').count()).unwrap();
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(secs);
            crate::bed::in_netns(&ns, || crate::controller::drive_ranks_with(&url, Some(OPERATOR), &job, world, bytes_per_s, until))
                .unwrap();
        })
    }

    /// The host the controller places `vm` on.
    pub fn placed(&self, vm: &str) -> Option<String> {
        let (ok, out) = self.cli(&["placements"]);
        if !ok {
            return None;
        }
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.first() == Some(&vm))
            .and_then(|w| w.get(1).map(|s| s.to_string()))
    }

    /// The agent's links in host `h` with their interface indexes, and its forwarding
    /// entries (what must not change when an agent or the controller dies).
    pub fn data_path(&self, h: &str) -> (Vec<String>, String) {
        let links = crate::bed::sh(&["ip", "-n", &self.net.ns(h), "-o", "link", "show"])
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(": sbr") || l.contains(": svx"))
            .map(|l| l.split(':').take(2).collect::<Vec<_>>().join(":"))
            .collect();
        let fdb = crate::bed::sh(&["ip", "netns", "exec", &self.net.ns(h), "bridge", "fdb", "show"])
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("dst 192.0.2."))
            .collect::<Vec<_>>()
            .join("\n");
        (links, fdb)
    }
}

/// Calls host `h`'s agent from h1's namespace, presenting `token` (none: no header).
pub fn call_agent<T>(
    fleet: &Fleet,
    h: &str,
    token: Option<&str>,
    f: impl AsyncFnOnce(
        straddle_proto::agent_client::AgentClient<tonic::transport::Channel>,
        tonic::metadata::MetadataMap,
    ) -> Result<T, tonic::Status>,
) -> Result<T, tonic::Status> {
    let url = format!("http://{}", agent_listen(h));
    crate::bed::in_netns(&fleet.net.ns("h1"), || {
        crate::controller::runtime().block_on(async {
            let c = straddle_proto::agent_client::AgentClient::connect(url).await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let mut md = tonic::metadata::MetadataMap::new();
            if let Some(t) = token {
                md.insert("authorization", format!("Bearer {t}").parse().unwrap());
            }
            f(c, md).await
        })
    })
    .expect("enter h1's namespace")
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.agents) {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.ctl = None;
    }
}
