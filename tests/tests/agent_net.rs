//! The agent's cluster segments on real kernel networking: two hosts (network namespaces)
//! joined by an underlay link, each running `straddle-agent net ensure` over the same
//! fabric of two clusters, red and blue, with a member of each on each host. Members are
//! namespaces with a veth on their cluster's bridge, standing in for VMs (libvirt plugs a
//! VM's tap the same way), their MAC, address and name from the addressing scheme.

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use straddle_tests::bed::{in_netns, sh};
use straddle_tests::paths::{agent_bin, Scratch};

fn need_root() {
    // SAFETY: getuid cannot fail.
    assert_eq!(unsafe { libc::getuid() }, 0, "this test needs root (network namespaces)");
}

/// Two hosts and four members, all named with `p`; removed on drop, even after a failure.
struct Net {
    p: String,
    fabric: Scratch,
}

const MEMBERS: [(&str, u8, u8, &str, u32); 4] =
    [("r1", 1, 0, "h1", 101), ("r2", 1, 1, "h2", 101), ("b1", 2, 0, "h1", 102), ("b2", 2, 1, "h2", 102)];

fn fabric_json(red2_on: &str) -> String {
    let members: Vec<String> = MEMBERS
        .iter()
        .map(|(n, c, s, h, _)| {
            let host = if *n == "r2" { red2_on } else { h };
            format!(
                "{{\"cluster\":\"{}\",\"mac\":\"02:53:00:{c:02x}:{s:02x}:01\",\"host\":\"{host}\"}}",
                if *c == 1 { "red" } else { "blue" }
            )
        })
        .collect();
    format!(
        "{{\"clusters\":[{{\"name\":\"red\",\"id\":1,\"vni\":101}},{{\"name\":\"blue\",\"id\":2,\"vni\":102}}],\
         \"hosts\":[{{\"name\":\"h1\",\"vtep\":\"192.0.2.1\"}},{{\"name\":\"h2\",\"vtep\":\"192.0.2.2\"}}],\"members\":[{}]}}",
        members.join(",")
    )
}

impl Net {
    fn up(p: &str) -> Net {
        let n = Net { p: p.to_string(), fabric: Scratch::new(p) };
        n.down();
        for h in ["h1", "h2"] {
            sh(&["ip", "netns", "add", &n.ns(h)]).unwrap();
            sh(&["ip", "-n", &n.ns(h), "link", "set", "lo", "up"]).unwrap();
        }
        sh(&["ip", "-n", &n.ns("h1"), "link", "add", "u0", "type", "veth", "peer", "name", "u0", "netns", &n.ns("h2")]).unwrap();
        for (h, a) in [("h1", "192.0.2.1/24"), ("h2", "192.0.2.2/24")] {
            sh(&["ip", "-n", &n.ns(h), "addr", "add", a, "dev", "u0"]).unwrap();
            sh(&["ip", "-n", &n.ns(h), "link", "set", "u0", "up"]).unwrap();
        }
        for (m, ..) in MEMBERS {
            sh(&["ip", "netns", "add", &n.ns(m)]).unwrap();
        }
        n
    }

    fn ns(&self, what: &str) -> String {
        format!("{}{what}", self.p)
    }

    /// Runs `straddle-agent net ARGS` in host `h`; (success, output).
    fn agent(&self, h: &str, args: &[&str]) -> (bool, String) {
        let o = Command::new("ip").args(["netns", "exec", &self.ns(h)]).arg(agent_bin()).arg("net").args(args).output().unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    }

    fn ensure(&self, h: &str, fabric: &str) -> String {
        let f = self.fabric.0.join("fabric.json");
        std::fs::write(&f, fabric).unwrap();
        let (ok, out) = self.agent(h, &["ensure", "--fabric", f.to_str().unwrap(), "--host", h]);
        assert!(ok, "ensure on {h}: {out}");
        out
    }

    /// Plugs member `m` into its cluster's bridge on host `h` (as libvirt plugs a VM).
    fn plug(&self, m: &str, h: &str) {
        let (_, c, s, _, vni) = MEMBERS.iter().find(|x| x.0 == m).copied().unwrap();
        let port = format!("p{m}");
        let _ = sh(&["ip", "-n", &self.ns(m), "link", "del", "eth0"]);
        sh(&["ip", "-n", &self.ns(h), "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &self.ns(m)]).unwrap();
        sh(&["ip", "-n", &self.ns(h), "link", "set", &port, "mtu", "1450", "master", &format!("sbr{vni}"), "up"]).unwrap();
        let mac = format!("02:53:00:{c:02x}:{s:02x}:01");
        sh(&["ip", "-n", &self.ns(m), "link", "set", "eth0", "address", &mac, "mtu", "1450", "up"]).unwrap();
        let _ = sh(&["ip", "-n", &self.ns(m), "addr", "add", &format!("10.{c}.{s}.1/16"), "dev", "eth0"]);
        sh(&["ip", "-n", &self.ns(m), "link", "set", "lo", "up"]).unwrap();
        // Limited broadcasts (255.255.255.255) leave by eth0.
        let _ = sh(&["ip", "-n", &self.ns(m), "route", "add", "default", "dev", "eth0"]);
    }

    fn ping(&self, from: &str, to: &str, count: u32) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(from), "ping", "-n", "-q", "-c", &count.to_string(), "-W", "1", to])
            .output()
            .unwrap()
            .status
            .success()
    }

    /// The agent's links left in host `h`.
    fn ours(&self, h: &str) -> Vec<String> {
        sh(&["ip", "-n", &self.ns(h), "-o", "link", "show"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_string())
            .filter(|n| n.starts_with("sbr") || n.starts_with("svx"))
            .collect()
    }

    fn down(&self) {
        for what in ["h1", "h2", "r1", "r2", "b1", "b2"] {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(what)]).stderr(std::process::Stdio::null()).status();
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.down();
    }
}

/// Whether a UDP broadcast from member `from` on port 9999 reaches a listener in `to`.
fn broadcast_reaches(n: &Net, from: &str, bcast: &str, to: &str) -> bool {
    let sock = in_netns(&n.ns(to), || UdpSocket::bind("0.0.0.0:9999")).unwrap().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let tx = in_netns(&n.ns(from), || UdpSocket::bind("0.0.0.0:0")).unwrap().unwrap();
    tx.set_broadcast(true).unwrap();
    let mut buf = [0u8; 16];
    for _ in 0..5 {
        tx.send_to(b"hello", (bcast, 9999)).unwrap();
        if sock.recv_from(&mut buf).is_ok() {
            return true;
        }
    }
    false
}

#[test]
#[ignore = "needs root (run by scripts/test.sh as root)"]
fn members_reach_their_cluster_across_hosts_and_nothing_else() {
    need_root();
    let n = Net::up("an");
    let f = fabric_json("h2");
    n.ensure("h1", &f);
    n.ensure("h2", &f);
    for (m, _, _, h, _) in MEMBERS {
        n.plug(m, h);
    }
    assert!(n.ping("r1", "10.1.1.1", 3), "red reaches red across hosts");
    assert!(n.ping("b2", "10.2.0.1", 3), "blue reaches blue across hosts");
    // Broadcasts stay in their cluster: red2 hears red1's, blue2 (same host) does not.
    assert!(broadcast_reaches(&n, "r1", "255.255.255.255", "r2"), "a red broadcast reaches red on the other host");
    assert!(!broadcast_reaches(&n, "r1", "255.255.255.255", "b2"), "a red broadcast never reaches blue");
    assert!(!n.ping("r1", "10.2.1.1", 1), "red cannot reach blue");
    assert!(!n.ping("b1", "10.1.1.1", 1), "blue cannot reach red");
    // The segments' MTU leaves room for VXLAN: a full 1450-byte packet crosses unfragmented.
    let o = Command::new("ip")
        .args(["netns", "exec", &n.ns("r1"), "ping", "-n", "-q", "-c", "2", "-W", "1", "-M", "do", "-s", "1422", "10.1.1.1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "1450-byte packets cross: {}", String::from_utf8_lossy(&o.stdout));
}

#[test]
#[ignore = "needs root (run by scripts/test.sh as root)"]
fn a_rerun_changes_nothing_a_move_follows_and_teardown_leaves_nothing() {
    need_root();
    let n = Net::up("am");
    let f = fabric_json("h2");
    n.ensure("h1", &f);
    n.ensure("h2", &f);
    for (m, _, _, h, _) in MEMBERS {
        n.plug(m, h);
    }
    assert!(n.ping("r1", "10.1.1.1", 2));
    // An agent run again (as after a restart) finds everything in place.
    assert_eq!(n.ensure("h1", &f).trim(), "", "nothing to change");
    // red2 moves to h1: the fabric says so; h1's agent drops its entries towards h2, the
    // member is plugged on h1 with the same MAC and address and red1 reaches it at once;
    // h2, which no longer carries red, removes red's segment (and only it).
    let moved = fabric_json("h1");
    let out = n.ensure("h1", &moved);
    assert!(out.contains("DelFdb") && !out.contains("DelLink"), "{out}");
    let start = Instant::now();
    n.plug("r2", "h1");
    assert!(n.ping("r1", "10.1.1.1", 1), "red1 reaches red2 on its new host");
    assert!(start.elapsed() < Duration::from_secs(1), "within a second: {:?}", start.elapsed());
    let out = n.ensure("h2", &moved);
    assert!(out.contains("DelLink { name: \"svx101\" }") && !out.contains("102"), "{out}");
    assert!(n.ping("b2", "10.2.0.1", 1), "blue is untouched");
    // Teardown leaves none of the agent's links or entries.
    for h in ["h1", "h2"] {
        let (ok, out) = n.agent(h, &["down"]);
        assert!(ok, "{out}");
        assert_eq!(n.ours(h), Vec::<String>::new(), "{h}: links left");
        let fdb = sh(&["ip", "netns", "exec", &n.ns(h), "bridge", "fdb", "show"]).unwrap_or_default();
        assert!(!fdb.contains("dst 192.0.2."), "{h}: entries left: {fdb}");
        assert_eq!(n.agent(h, &["show"]).1.trim(), "");
    }
}

#[test]
#[ignore = "needs root (run by scripts/test.sh as root)"]
fn a_bad_fabric_builds_nothing_and_names_the_fault() {
    need_root();
    let n = Net::up("ab");
    let overlapping = fabric_json("h2").replace("\"vni\":102", "\"vni\":101");
    let f = n.fabric.0.join("bad.json");
    std::fs::write(&f, &overlapping).unwrap();
    let (ok, out) = n.agent("h1", &["ensure", "--fabric", f.to_str().unwrap(), "--host", "h1"]);
    assert!(!ok && out.contains("clusters[1].vni = 101: cluster \"red\" has it already"), "{out}");
    std::fs::write(&f, fabric_json("h2").replace("\"id\":2", "\"id\":1")).unwrap();
    let (ok, out) = n.agent("h1", &["ensure", "--fabric", f.to_str().unwrap(), "--host", "h1"]);
    assert!(!ok && out.contains("overlap cluster \"red\""), "{out}");
    std::fs::write(&f, fabric_json("h2")).unwrap();
    let (ok, out) = n.agent("h1", &["ensure", "--fabric", f.to_str().unwrap(), "--host", "h9"]);
    assert!(!ok && out.contains("host \"h9\" is not in"), "{out}");
    assert_eq!(n.ours("h1"), Vec::<String>::new(), "nothing half-built");
}
