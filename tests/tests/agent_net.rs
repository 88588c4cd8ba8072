//! The agent's cluster segments on real kernel networking (`straddle_tests::segments`):
//! two hosts, two clusters, a member of each on each host.

use std::process::Command;
use std::time::{Duration, Instant};

use straddle_tests::bed::sh;
use straddle_tests::segments::{broadcast_reaches, fabric_json, sniff, Net};

fn need_root() {
    // SAFETY: getuid cannot fail.
    assert_eq!(unsafe { libc::getuid() }, 0, "this test needs root (network namespaces)");
}

#[test]
#[ignore = "needs root (run by scripts/test.sh as root)"]
fn members_reach_their_cluster_across_hosts_and_nothing_else() {
    need_root();
    let (n, _) = Net::built("an");
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
    // Whether the kernel has 802.1q VLAN links is said, and said right.
    let h1 = n.ns("h1");
    let vlan = sh(&["ip", "-n", &h1, "link", "add", "link", "sbr101", "name", "vt5", "type", "vlan", "id", "5"]).is_ok();
    if vlan {
        let _ = sh(&["ip", "-n", &h1, "link", "del", "vt5"]);
    }
    let out = n.ensure("h1", &fabric_json("h2"));
    assert_eq!(out.contains("no 802.1q VLAN links"), !vlan, "{out}");
}

#[test]
#[ignore = "needs root (run by scripts/test.sh as root)"]
fn a_rerun_changes_nothing_a_move_follows_and_teardown_leaves_nothing() {
    need_root();
    let (n, f) = Net::built("am");
    assert!(n.ping("r1", "10.1.1.1", 2));
    // An agent run again (as after a restart) finds everything in place.
    let again = n.ensure("h1", &f);
    assert!(again.lines().all(|l| l.starts_with("note:")), "nothing to change: {again}");
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

#[test]
#[ignore = "needs root (run by scripts/test.sh as root)"]
fn the_encrypted_tunnel_carries_the_segments_and_nothing_crosses_in_clear() {
    need_root();
    let (n, _) = Net::built("ae");
    n.encrypt();
    assert!(n.ping("r1", "10.1.1.1", 3), "red reaches red through the tunnel");
    assert!(n.ping("b2", "10.2.0.1", 3), "blue reaches blue through the tunnel");
    assert!(!n.ping("r1", "10.2.1.1", 1), "red still cannot reach blue");
    // The MTU arithmetic: 1390-byte frames cross whole (1362 bytes of ICMP payload), larger
    // ones do not fit.
    let df = |size: &str| {
        Command::new("ip")
            .args(["netns", "exec", &n.ns("r1"), "ping", "-n", "-q", "-c", "2", "-W", "1", "-M", "do", "-s", size, "10.1.1.1"])
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(df("1362"), "1390-byte packets cross");
    assert!(!df("1363"), "a packet over the segment's MTU is refused, not fragmented");
    // A marker sent between the members appears in clear on h2's VXLAN device, never on the
    // underlay, which carries only WireGuard's datagrams (UDP 51820), no VXLAN (4789).
    let marker = b"straddle-marker-in-clear";
    let send = {
        let ns = n.ns("r1");
        std::thread::spawn(move || {
            let s = straddle_tests::bed::in_netns(&ns, || std::net::UdpSocket::bind("0.0.0.0:0")).unwrap().unwrap();
            for _ in 0..30 {
                let _ = s.send_to(marker, "10.1.1.1:9");
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let seen_u0 = {
        let ns = n.ns("h2");
        std::thread::spawn(move || sniff(&ns, "u0", 2.0))
    };
    let seen_seg = sniff(&n.ns("h2"), "svx101", 2.0);
    let seen_u0 = seen_u0.join().unwrap();
    send.join().unwrap();
    let has = |f: &Vec<u8>| f.windows(marker.len()).any(|w| w == marker);
    assert!(seen_seg.iter().any(has), "the marker arrives in clear on the segment ({} frames)", seen_seg.len());
    assert!(!seen_u0.is_empty() && !seen_u0.iter().any(has), "the underlay never carries it in clear ({} frames)", seen_u0.len());
    // IPv4 (no options) in Ethernet: UDP ports at 34..38.
    let udp_port =
        |f: &Vec<u8>, at: usize| (f.len() > 38 && f[12..14] == [8, 0] && f[23] == 17).then(|| u16::from_be_bytes([f[at], f[at + 1]]));
    assert!(seen_u0.iter().any(|f| udp_port(f, 36) == Some(51820)), "WireGuard's datagrams cross the underlay");
    assert!(!seen_u0.iter().any(|f| udp_port(f, 36) == Some(4789)), "no VXLAN crosses the underlay in clear");
}
