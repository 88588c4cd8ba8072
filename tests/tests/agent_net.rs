//! The agent's cluster segments on real kernel networking (`straddle_tests::segments`):
//! two hosts, two clusters, a member of each on each host.

use std::process::Command;
use std::time::{Duration, Instant};

use straddle_tests::bed::sh;
use straddle_tests::segments::{broadcast_reaches, fabric_json, Net};

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
