//! Two hosts (network namespaces) joined by an underlay link, each running
//! `straddle-agent net` over one fabric of two clusters, red and blue, with a member of
//! each on each host: what the agent's network tests and the segment benchmark share.
//! Members are namespaces with a veth on their cluster's bridge, standing in for VMs
//! (libvirt plugs a VM's tap the same way), their MAC, address and name from the
//! addressing scheme.

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use crate::bed::{in_netns, sh};
use crate::paths::{agent_bin, Scratch};

/// Two hosts and four members, all named with `p`; removed on drop, even after a failure.
pub struct Net {
    p: String,
    pub fabric: Scratch,
    /// The encrypted tunnels' processes, when up.
    tunnels: std::cell::RefCell<Vec<std::process::Child>>,
}

/// (member, cluster number, home site, host, VNI).
pub const MEMBERS: [(&str, u8, u8, &str, u32); 4] =
    [("r1", 1, 0, "h1", 101), ("r2", 1, 1, "h2", 101), ("b1", 2, 0, "h1", 102), ("b2", 2, 1, "h2", 102)];

/// The fabric, with red2 on `red2_on`.
pub fn fabric_json(red2_on: &str) -> String {
    fabric_json_over(red2_on, ["192.0.2.1", "192.0.2.2"], 1500)
}

/// The fabric with the hosts' tunnel endpoints at `vteps` over an underlay of `mtu`.
pub fn fabric_json_over(red2_on: &str, vteps: [&str; 2], mtu: u32) -> String {
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
         \"hosts\":[{{\"name\":\"h1\",\"vtep\":\"{}\"}},{{\"name\":\"h2\",\"vtep\":\"{}\"}}],\"members\":[{}],\"underlay_mtu\":{mtu}}}",
        vteps[0],
        vteps[1],
        members.join(",")
    )
}

impl Net {
    pub fn up(p: &str) -> Net {
        let n = Net { p: p.to_string(), fabric: Scratch::new(p), tunnels: Default::default() };
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

    /// Up, with both agents run over the fabric (red2 on h2) and every member plugged
    /// where the fabric places it; the fabric too.
    pub fn built(p: &str) -> (Net, String) {
        let n = Net::up(p);
        let f = fabric_json("h2");
        n.ensure("h1", &f);
        n.ensure("h2", &f);
        for (m, _, _, h, _) in MEMBERS {
            n.plug(m, h);
        }
        (n, f)
    }

    pub fn ns(&self, what: &str) -> String {
        format!("{}{what}", self.p)
    }

    /// Runs `straddle-agent net ARGS` in host `h`; (success, output).
    pub fn agent(&self, h: &str, args: &[&str]) -> (bool, String) {
        let o = Command::new("ip").args(["netns", "exec", &self.ns(h)]).arg(agent_bin()).arg("net").args(args).output().unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    }

    pub fn ensure(&self, h: &str, fabric: &str) -> String {
        let f = self.fabric.0.join("fabric.json");
        std::fs::write(&f, fabric).unwrap();
        let (ok, out) = self.agent(h, &["ensure", "--fabric", f.to_str().unwrap(), "--host", h]);
        assert!(ok, "ensure on {h}: {out}");
        out
    }

    /// Plugs member `m` into its cluster's bridge on host `h` (as libvirt plugs a VM).
    pub fn plug(&self, m: &str, h: &str) {
        self.plug_mtu(m, h, 1450);
    }

    /// `plug`, with the member's MTU (the segment's).
    pub fn plug_mtu(&self, m: &str, h: &str, mtu: u32) {
        let mtu = mtu.to_string();
        let (_, c, s, _, vni) = MEMBERS.iter().find(|x| x.0 == m).copied().unwrap();
        let port = format!("p{m}");
        let _ = sh(&["ip", "-n", &self.ns(m), "link", "del", "eth0"]);
        sh(&["ip", "-n", &self.ns(h), "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &self.ns(m)]).unwrap();
        sh(&["ip", "-n", &self.ns(h), "link", "set", &port, "mtu", &mtu, "master", &format!("sbr{vni}"), "up"]).unwrap();
        let mac = format!("02:53:00:{c:02x}:{s:02x}:01");
        sh(&["ip", "-n", &self.ns(m), "link", "set", "eth0", "address", &mac, "mtu", &mtu, "up"]).unwrap();
        let _ = sh(&["ip", "-n", &self.ns(m), "addr", "add", &format!("10.{c}.{s}.1/16"), "dev", "eth0"]);
        sh(&["ip", "-n", &self.ns(m), "link", "set", "lo", "up"]).unwrap();
        // Limited broadcasts (255.255.255.255) leave by eth0.
        let _ = sh(&["ip", "-n", &self.ns(m), "route", "add", "default", "dev", "eth0"]);
    }

    pub fn ping(&self, from: &str, to: &str, count: u32) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(from), "ping", "-n", "-q", "-c", &count.to_string(), "-W", "1", to])
            .output()
            .unwrap()
            .status
            .success()
    }

    /// The agent's links left in host `h`.
    pub fn ours(&self, h: &str) -> Vec<String> {
        sh(&["ip", "-n", &self.ns(h), "-o", "link", "show"])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_string())
            .filter(|n| n.starts_with("sbr") || n.starts_with("svx"))
            .collect()
    }

    /// Joins the hosts with the encrypted tunnel (`straddle-agent tunnel up`, a key pair
    /// each, inner addresses 10.255.0.1 and .2 over the underlay's UDP port 51820) and
    /// carries the segments over it: the fabric's endpoints become the inner addresses,
    /// its underlay the tunnel's MTU (1440), every member re-plugged at the segment's 1390.
    pub fn encrypt(&self) {
        let dir = &self.fabric.0;
        let mut public = Vec::new();
        for h in ["h1", "h2"] {
            let key = dir.join(format!("{h}.key"));
            let _ = std::fs::remove_file(&key);
            let o = Command::new(agent_bin()).args(["tunnel", "keygen", "--out", key.to_str().unwrap()]).output().unwrap();
            assert!(o.status.success(), "keygen: {}", String::from_utf8_lossy(&o.stderr));
            public.push(String::from_utf8_lossy(&o.stdout).trim().to_string());
        }
        for (i, h) in ["h1", "h2"].iter().enumerate() {
            let (me, peer) = (i + 1, 2 - i);
            let cfg = format!(
                "{{\"address\":\"10.255.0.{me}/24\",\"listen\":\"192.0.2.{me}:51820\",\"private_key_file\":\"{}\",                 \"peers\":[{{\"name\":\"h{peer}\",\"public_key\":\"{}\",\"endpoint\":\"192.0.2.{peer}:51820\",\"address\":\"10.255.0.{peer}\"}}]}}",
                dir.join(format!("{h}.key")).display(),
                public[peer - 1]
            );
            let path = dir.join(format!("{h}.tunnel.json"));
            std::fs::write(&path, cfg).unwrap();
            let mut child = Command::new("ip")
                .args(["netns", "exec", &self.ns(h)])
                .arg(agent_bin())
                .args(["tunnel", "up", "--config", path.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
            assert!(line.contains("tunnel up on stun0 10.255.0."), "tunnel on {h}: {line:?}");
            self.tunnels.borrow_mut().push(child);
        }
        let f = fabric_json_over("h2", ["10.255.0.1", "10.255.0.2"], 1440);
        self.ensure("h1", &f);
        self.ensure("h2", &f);
        for (m, _, _, h, _) in MEMBERS {
            self.plug_mtu(m, h, 1390);
        }
    }

    pub fn down(&self) {
        for mut t in self.tunnels.borrow_mut().drain(..) {
            let _ = t.kill();
            let _ = t.wait();
        }
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
pub fn broadcast_reaches(n: &Net, from: &str, bcast: &str, to: &str) -> bool {
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

/// Frames seen on device `dev` of namespace `ns` for `secs` (a raw packet socket).
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss)]
pub fn sniff(ns: &str, dev: &str, secs: f64) -> Vec<Vec<u8>> {
    let (ns, dev) = (ns.to_string(), dev.to_string());
    std::thread::spawn(move || {
        in_netns(&ns, || {
            let proto = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain socket calls on a descriptor this closure owns and closes.
            unsafe {
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, libc::c_int::from(proto));
                assert!(fd >= 0, "packet socket: {}", std::io::Error::last_os_error());
                let name = std::ffi::CString::new(dev.clone()).unwrap();
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_protocol = proto;
                sll.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
                assert!(sll.sll_ifindex > 0, "no device {dev}");
                let r = libc::bind(fd, (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32);
                assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
                let tv = libc::timeval { tv_sec: 0, tv_usec: 100_000 };
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as u32,
                );
                let mut out = Vec::new();
                let start = std::time::Instant::now();
                let mut buf = vec![0u8; 65536];
                while start.elapsed().as_secs_f64() < secs {
                    let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
                    if n > 0 {
                        out.push(buf[..n as usize].to_vec());
                    }
                }
                libc::close(fd);
                out
            }
        })
        .unwrap()
    })
    .join()
    .unwrap()
}
