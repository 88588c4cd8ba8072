//! The controller builds the clusters' networks through agent daemons (`straddle_tests::
//! agents`): two hosts in two sites, two clusters, the simulated hypervisor moving VMs and
//! the members (namespaces standing in for VMs) plugged where the placement says.

use std::process::Command;
use std::time::{Duration, Instant};

use straddle_proto::{ClusterNet, FabricSpec, HostVtep, MemberAt, VmSpec};
use straddle_tests::agents::{call_agent, wait, Fleet, FABRIC};
use straddle_tests::segments::MEMBERS;

fn need_root() {
    // SAFETY: getuid cannot fail.
    assert_eq!(unsafe { libc::getuid() }, 0, "this test needs root (network namespaces)");
}

const ALL: [&str; 4] = ["sbr101", "sbr102", "svx101", "svx102"];

/// Waits until both hosts carry both clusters, then plugs every member where it starts.
fn built(p: &str) -> Fleet {
    let f = Fleet::up(p);
    for h in ["h1", "h2"] {
        wait(Duration::from_secs(60), &format!("{h}'s agent builds both clusters"), || {
            let mut l = f.net.ours(h);
            l.sort();
            l == ALL
        });
    }
    for (m, _, _, h, _) in MEMBERS {
        f.net.plug(m, h);
    }
    f
}

fn registered(f: &Fleet, h: &str) -> bool {
    f.cli(&["agents"]).1.contains(&format!("{h} (site"))
}

/// Pings `to` from member `from` until it answers; how long that took.
fn reach(f: &Fleet, from: &str, to: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let ok = Command::new("ip")
            .args(["netns", "exec", &f.net.ns(from), "ping", "-n", "-q", "-c", "1", "-W", "0.2", to])
            .output()
            .unwrap()
            .status
            .success();
        if ok {
            return Some(start.elapsed());
        }
    }
    None
}

#[test]
#[ignore = "needs root (run by scripts/test.sh as root)"]
fn the_controller_builds_the_clusters_networks_and_the_entries_follow_a_move() {
    need_root();
    let f = built("dm");
    assert!(f.net.ping("r1", "10.1.1.1", 2), "red reaches red across sites");
    assert!(f.net.ping("b2", "10.2.0.1", 2), "blue reaches blue across sites");
    assert!(!f.net.ping("r1", "10.2.1.1", 1), "red cannot reach blue");
    // Usage reaches the controller; the network is in line.
    wait(Duration::from_secs(30), "both agents report usage and their network is in place", || {
        let out = f.cli(&["agents"]).1;
        out.matches("host cpu").count() == 2 && out.matches("network in place").count() == 2
    });
    // A network-intensive job on r1 and r2 and site b drained: r2 moves to h1 (the
    // simulated hypervisor moves it; the member is plugged on h1 as libvirt would, same MAC
    // and address). The forwarding entries follow: its peer reaches it within a second,
    // nobody reconfigured.
    let ranks = f.run_job("redjob", "r1,r2", 20_000_000, 20);
    let (ok, out) = f.cli(&["override", "drain", "b"]);
    assert!(ok, "{out}");
    wait(Duration::from_secs(60), "r2 is moved to h1", || f.placed("r2").as_deref() == Some("h1"));
    f.net.plug("r2", "h1");
    let red = reach(&f, "r1", "10.1.1.1", Duration::from_secs(10)).expect("red1 reaches red2 on h1");
    assert!(red < Duration::from_secs(1), "within a second: {red:?}");
    // h2 carries no red member now: red's segment is gone there, blue's stays; h1 sends
    // nothing of red's to h2.
    wait(Duration::from_secs(30), "red's segment is removed from h2", || {
        let mut l = f.net.ours("h2");
        l.sort();
        l == ["sbr102", "svx102"]
    });
    let (_, fdb) = f.data_path("h1");
    assert!(!fdb.lines().any(|l| l.starts_with("02:53:00:01:01:01") && l.contains("192.0.2.2")), "r2's entry follows it: {fdb}");
    assert!(f.net.ping("b1", "10.2.1.1", 2), "blue still reaches across sites");
    assert!(!f.net.ping("r1", "10.2.1.1", 1), "still red cannot reach blue");
    ranks.join().unwrap();
}

#[test]
#[ignore = "needs root (run by scripts/test.sh as root)"]
fn killing_an_agent_or_the_controller_changes_nothing_on_the_data_path() {
    need_root();
    let mut f = built("dk");
    assert!(f.net.ping("r1", "10.1.1.1", 2));
    wait(Duration::from_secs(30), "both networks in place", || f.cli(&["agents"]).1.matches("network in place").count() == 2);
    let before = (f.data_path("h1"), f.data_path("h2"));
    // A ping every 50 ms across the sites throughout.
    let pinger = Command::new("ip")
        .args(["netns", "exec", &f.net.ns("r1"), "ping", "-n", "-q", "-i", "0.05", "-w", "12", "10.1.1.1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log_before = f.agent_log("h2").len();
    f.kill_agent("h2");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!((f.data_path("h1"), f.data_path("h2")), before, "an agent's death changes nothing");
    f.start_agent("h2");
    // It registers again; the controller pushes the fabric; the agent finds all in place.
    wait(Duration::from_secs(30), "the restarted agent finds its network in place", || {
        f.agent_log("h2")[log_before..].contains("fabric in place")
    });
    let after_restart = &f.agent_log("h2")[log_before..];
    assert!(!after_restart.contains("fabric ensured"), "the restarted agent changed something:\n{after_restart}");
    assert_eq!((f.data_path("h1"), f.data_path("h2")), before, "a restarted agent changes nothing");
    // The controller dies (SIGKILL): the network stays as it was; the agents keep trying.
    f.ctl.as_mut().unwrap().kill();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!((f.data_path("h1"), f.data_path("h2")), before, "the controller's death changes nothing");
    let out = pinger.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" 0% packet loss"), "no packet lost throughout: {text}");
    // Back on its state: it pushes the same fabric and nothing changes.
    let log_before = f.agent_log("h1").len();
    f.start_controller();
    wait(Duration::from_secs(30), "h1's agent registered with the new controller", || registered(&f, "h1"));
    wait(Duration::from_secs(30), "the new controller's fabric is in place", || {
        f.agent_log("h1")[log_before..].contains("fabric in place")
    });
    assert!(!f.agent_log("h1")[log_before..].contains("fabric ensured"));
    assert_eq!((f.data_path("h1"), f.data_path("h2")), before);
    assert!(f.net.ping("r1", "10.1.1.1", 1));
}

fn fabric() -> FabricSpec {
    let c = |name: &str, id, vni| ClusterNet { name: name.into(), id, vni, hosts: vec![] };
    FabricSpec {
        clusters: vec![c("red", 1, 101), c("blue", 2, 102)],
        hosts: vec![HostVtep { name: "h1".into(), vtep: "192.0.2.1".into() }, HostVtep { name: "h2".into(), vtep: "192.0.2.2".into() }],
        members: vec![MemberAt { cluster: "red".into(), home_site: 1, node: 1, host: "h2".into() }],
        underlay_mtu: 0,
    }
}

/// A change that makes a good fabric bad.
type Spoil = Box<dyn Fn(&mut FabricSpec)>;

fn ensure(f: &Fleet, token: Option<&str>, spec: FabricSpec) -> Result<Vec<String>, tonic::Status> {
    call_agent(f, "h2", token, async move |mut c, md| {
        let mut req = tonic::Request::new(spec);
        *req.metadata_mut() = md;
        Ok(c.ensure_fabric(req).await?.into_inner().changes)
    })
}

#[test]
#[ignore = "needs root (run by scripts/test.sh as root)"]
fn only_the_controller_commands_an_agent_and_bad_input_builds_nothing() {
    need_root();
    let f = built("db");
    wait(Duration::from_secs(30), "both networks in place", || f.cli(&["agents"]).1.matches("network in place").count() == 2);
    let before = f.data_path("h2");
    // Without the fabric token, or with another, nothing is done (an empty fabric for h2
    // would tear its segments down).
    let empty = FabricSpec { clusters: vec![], hosts: fabric().hosts, members: vec![], underlay_mtu: 0 };
    for t in [None, Some("guess"), Some("")] {
        let e = ensure(&f, t, empty.clone()).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{t:?}: {e}");
        assert!(e.message().contains("fabric token"), "{e}");
    }
    assert_eq!(f.data_path("h2"), before, "an unauthenticated caller changed nothing");
    // Bad fabrics, each refused whole with the field named; nothing half-built.
    let cases: [(&str, Spoil); 5] = [
        ("clusters[1].vni", Box::new(|s| s.clusters[1].vni = 101)),
        ("clusters[1].id", Box::new(|s| s.clusters[1].id = 1)),
        ("members[0].cluster", Box::new(|s| s.members[0].cluster = "purple".into())),
        ("hosts", Box::new(|s| s.hosts.truncate(1))),
        ("hosts[1].vtep", Box::new(|s| s.hosts[1].vtep = "192.0.2.1".into())),
    ];
    for (field, spoil) in cases {
        let mut s = fabric();
        s.clusters.push(ClusterNet { name: "green".into(), id: 3, vni: 103, hosts: vec!["h2".into()] });
        spoil(&mut s);
        let e = ensure(&f, Some(FABRIC), s).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{field}: {e}");
        assert!(e.message().contains(field), "{field}: {}", e.message());
        assert_eq!(f.data_path("h2"), before, "{field}: nothing built or removed");
        assert!(!f.net.ours("h2").iter().any(|l| l.contains("103")), "{field}: green was not half-built");
    }
    // VMs on a host whose agent has no libvirt: said, not attempted; a bad spec names its field.
    let vm = VmSpec {
        name: "r9".into(),
        cluster: "red".into(),
        cluster_id: 1,
        vni: 101,
        home_site: 1,
        node: 9,
        memory_mib: 64,
        vcpus: 1,
        kernel: "/proc/self/exe".into(),
        initrd: "/proc/self/exe".into(),
        cmdline: String::new(),
    };
    let define = |spec: VmSpec| {
        call_agent(&f, "h2", Some(FABRIC), async move |mut c, md| {
            let mut req = tonic::Request::new(spec);
            *req.metadata_mut() = md;
            Ok(c.define_vm(req).await?.into_inner())
        })
    };
    let e = define(vm.clone()).unwrap_err();
    assert!(e.code() == tonic::Code::FailedPrecondition && e.message().contains("--libvirt-uri"), "{e}");
    let e = define(VmSpec { node: 255, ..vm }).unwrap_err();
    assert!(e.code() == tonic::Code::InvalidArgument && e.message().contains("node"), "{e}");
    // The controller's registry: the fabric token, and a host of its topology.
    let url = f.url();
    let register = |token: &str, host: &str| {
        let url = url.clone();
        straddle_tests::bed::in_netns(&f.net.ns("h1"), || {
            straddle_tests::controller::runtime().block_on(async move {
                let mut c = straddle_proto::agent_registry_client::AgentRegistryClient::connect(url).await.unwrap();
                let mut req = tonic::Request::new(straddle_proto::HostInfo {
                    host: host.into(),
                    vtep: "192.0.2.9".into(),
                    agent_url: "http://192.0.2.9:7070".into(),
                    ..Default::default()
                });
                req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
                c.register(req).await.map(|_| ())
            })
        })
        .unwrap()
    };
    let e = register("guess", "h2").unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e}");
    let e = register(FABRIC, "h9").unwrap_err();
    assert!(e.code() == tonic::Code::InvalidArgument && e.message().contains("host = \"h9\""), "{e}");
    assert!(registered(&f, "h2") && !registered(&f, "h9"));
    assert_eq!(f.data_path("h2"), before);
}
