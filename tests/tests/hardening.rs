//! The controller as an attacker or a careless operator would try it, on loopback: one
//! message never kills it, nobody without a credential moves a VM or touches a job's data,
//! memory stays bounded, bad files stop the start naming the field, acknowledged scenario
//! jobs survive kill -9, idle connections do not lock operators out, TLS means TLS, and
//! tokens never travel in argv. Each finding here broke an earlier controller.

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use straddle_proto::telemetry_client::TelemetryClient;
use straddle_proto::{controller_message, shim_message, CollectiveTraffic, Hello, PeerTraffic, Report, ShimMessage};
use straddle_tests::controller::{certs, cli, drive_ranks_with, runtime, submit, traffic_with, two_site_topology, ControllerProcess};
use straddle_tests::mpi::{exclusive, Launch, Mpi};
use straddle_tests::paths::{controller_bin, program, Scratch};

/// Opens a rank's stream (with `token`), says hello, sends `reports`, and returns the
/// controller's first answer: a site map's epoch, an ack, or its refusal.
fn stream(url: &str, token: Option<&str>, hello: Hello, reports: Vec<Report>) -> Result<&'static str, tonic::Status> {
    runtime().block_on(async {
        let mut c = TelemetryClient::connect(url.to_string()).await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(reports.len() + 2);
        tx.send(ShimMessage { body: Some(shim_message::Body::Hello(hello)) }).await.unwrap();
        let sent = reports.len();
        for r in reports {
            tx.send(ShimMessage { body: Some(shim_message::Body::Report(r)) }).await.unwrap();
        }
        let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        if let Some(t) = token {
            req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let quiet = if sent == 0 { Duration::from_millis(300) } else { Duration::from_secs(5) };
        let mut inbound = c.attach(req).await?.into_inner();
        let mut got = "nothing";
        loop {
            match tokio::time::timeout(quiet, inbound.message()).await {
                Ok(Ok(Some(m))) => {
                    got = match m.body {
                        Some(controller_message::Body::Ack(_)) => "ack",
                        Some(controller_message::Body::SiteMap(_)) => "map",
                        None => "empty",
                    };
                    if got == "ack" {
                        return Ok(got);
                    }
                }
                Ok(Ok(None)) => return Ok(got),
                Ok(Err(s)) => return Err(s),
                Err(_) => return Ok(got),
            }
        }
    })
}

fn hello(job: &str, rank: u32, world: u32) -> Hello {
    Hello { job: job.into(), rank, world_size: world, node: "n".into(), incarnation: 1, ..Default::default() }
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// CPU seconds a process has used.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // Fields after the name: state, ppid, ... utime is the 14th field of the line, 12th here.
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

fn ok(url: &str, token: &str, args: &[&str]) -> String {
    let (ok, out) = cli(url, Some(token), args);
    assert!(ok, "straddle {args:?}: {out}");
    out
}

#[test]
fn hostile_sizes_are_refused_and_it_keeps_serving() {
    let ctl = ControllerProcess::start();
    let url = ctl.url();
    for world in [65_537u32, 1_000_000_000, u32::MAX] {
        let e = stream(&url, None, hello(&format!("big{world}"), 0, world), vec![]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "world {world}: {e:?}");
        assert!(e.message().contains("hello.world_size"), "{e:?}");
    }
    // A job name of 3 MB is refused without being written back or logged whole.
    let long = "j".repeat(3 << 20);
    let e = stream(&url, None, hello(&long, 0, 2), vec![]).unwrap_err();
    assert!(e.message().contains("longer than 256 bytes") && e.message().len() < 200, "{}", &e.message()[..200.min(e.message().len())]);
    // Fifty hellos of the largest allowed world cost what their one rank each does.
    for i in 0..50 {
        assert_eq!(stream(&url, None, hello(&format!("wide{i}"), 0, 65_536), vec![]).unwrap(), "nothing");
    }
    assert!(rss_mib(ctl.pid()) < 150.0, "{} MiB", rss_mib(ctl.pid()));
    assert!(ctl.log().len() < 200_000, "the log stayed small: {} bytes", ctl.log().len());
    let mut ctl = ctl;
    assert!(ctl.is_running());
    let (ok, out) = cli(&url, None, &["jobs"]);
    assert!(ok, "{out}");

    // A token-holding submit of 70,000 ranks: refused by field, the controller serves on.
    let dir = Scratch::new("hostile");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(256, "")).unwrap();
    let mut sec = ControllerProcess::start_with("127.0.0.1:0", &["--topology", topo.to_str().unwrap(), "--token", "tk"]);
    let e = runtime()
        .block_on(async {
            let mut c = straddle_proto::scheduler_client::SchedulerClient::connect(sec.url()).await.unwrap();
            let spec = straddle_proto::JobSpec {
                job: "huge".into(),
                world_size: 70_000,
                cluster: String::new(),
                rank_vms: vec!["v0".into(); 70_000],
            };
            let mut req = tonic::Request::new(spec);
            req.metadata_mut().insert("authorization", "Bearer tk".parse().unwrap());
            c.submit_job(req).await
        })
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("world_size 70000 exceeds"), "{}", e.message());
    assert!(sec.is_running());
}

#[test]
fn without_a_credential_nobody_moves_a_vm_or_touches_a_job() {
    let dir = Scratch::new("anon");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(256, "  - {name: w0, host: t1, memory_mib: 64}\n  - {name: w1, host: s1, memory_mib: 64}\n"))
        .unwrap();
    let ctl = ControllerProcess::start_with(
        "127.0.0.1:0",
        &["--topology", topo.to_str().unwrap(), "--token", "tk", "--decide-every", "0.3", "--window", "2", "--dwell", "0"],
    );
    let url = ctl.url();
    let cg = submit(&url, "tk", "cg", "v0,v2,v1,v3");
    // Anonymous ranks reporting heavy cross-site traffic for 6 s: refused, nothing moves.
    let maps = drive_ranks_with(&url, None, "cg", 4, 50_000_000, Instant::now() + Duration::from_secs(6));
    assert!(maps.is_empty(), "no map to anonymous ranks: {maps:?}");
    let log = ok(&url, "tk", &["decisions"]);
    assert!(!log.contains("->"), "no migration: {log}");
    let m = traffic_with(&url, Some("tk"), "cg").unwrap();
    assert_eq!(m.total_bytes, 0.0, "no forged bytes");
    // A forged, larger counter cannot knock the real rank off: it was never accepted.
    let forged =
        Report { seq: 1, peers: vec![PeerTraffic { dest: 1, p2p_bytes: u64::MAX / 2, ..Default::default() }], ..Default::default() };
    assert_eq!(stream(&url, None, hello("cg", 0, 4), vec![forged]).unwrap_err().code(), tonic::Code::Unauthenticated);
    let real = Report {
        seq: 1,
        peers: vec![PeerTraffic { dest: 1, p2p_bytes: 100, p2p_messages: 1, ..Default::default() }],
        ..Default::default()
    };
    assert_eq!(stream(&url, Some(&cg), hello("cg", 0, 4), vec![real]).unwrap(), "ack");
    assert_eq!(traffic_with(&url, Some(&cg), "cg").unwrap().total_bytes, 100.0);
    // Another job's credential is not this one's.
    let other = submit(&url, "tk", "other", "w0");
    assert_eq!(stream(&url, Some(&other), hello("cg", 1, 4), vec![]).unwrap_err().code(), tonic::Code::Unauthenticated);
    // Nobody can claim a job name before its scheduler.
    assert_eq!(stream(&url, None, hello("later", 0, 2), vec![]).unwrap_err().code(), tonic::Code::Unauthenticated);
    let _ = submit(&url, "tk", "later", "w1");
    // Traffic reads need a token too.
    let (ok_, out) = cli(&url, None, &["traffic", "cg"]);
    assert!(!ok_ && out.contains("unauthenticated"), "{out}");
}

#[test]
fn memory_is_bounded_and_released() {
    let ctl = ControllerProcess::start_with("127.0.0.1:0", &["--forget-after", "2"]);
    let url = ctl.url();
    let pid = ctl.pid();
    // A 1,200-rank job with one rank talking to every other, 30 reports.
    let reports: Vec<Report> = (1..=30u64)
        .map(|s| Report {
            seq: s,
            peers: (1..1200).map(|d| PeerTraffic { dest: d, p2p_bytes: s * 1000, p2p_messages: s, ..Default::default() }).collect(),
            ..Default::default()
        })
        .collect();
    assert_eq!(stream(&url, None, hello("big", 0, 1200), reports).unwrap(), "ack");
    // Keys flood: 40,000 collective records from one rank; the rest are counted, not kept.
    let flood: Vec<Report> = (1..=20u32)
        .map(|s| Report {
            seq: u64::from(s),
            collectives: (0..2000u32)
                .map(|k| CollectiveTraffic { comm_id: s * 2000 + k, op: 4, mode: 1, root: -1, calls: 1, bytes: 8 })
                .collect(),
            ..Default::default()
        })
        .collect();
    assert_eq!(stream(&url, None, hello("keys", 0, 2), flood).unwrap(), "ack");
    let rss = rss_mib(pid);
    assert!(rss < 150.0, "{rss} MiB");
    // The big job's view fits a reply, and the CLI shows it.
    let (ok_, out) = cli(&url, None, &["traffic", "big"]);
    assert!(ok_ && out.contains("1199 pairs of ranks talk"), "{}", &out[..out.len().min(500)]);
    let (_, jobs) = cli(&url, None, &["jobs"]);
    assert!(jobs.contains("keys"), "{jobs}");
    // With no rank attached they are forgotten after --forget-after (the janitor runs every 30 s).
    let start = Instant::now();
    loop {
        let (_, jobs) = cli(&url, None, &["jobs"]);
        if !jobs.contains("big") && !jobs.contains("keys") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never forgotten: {jobs}");
        std::thread::sleep(Duration::from_secs(1));
    }
    // A stream that never says hello is closed.
    let start = Instant::now();
    let ended = runtime().block_on(async {
        let mut c = TelemetryClient::connect(url.clone()).await.unwrap();
        let (_tx, rx) = tokio::sync::mpsc::channel::<ShimMessage>(1);
        let mut inbound = c.attach(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
        tokio::time::timeout(Duration::from_secs(30), inbound.message()).await
    });
    let code = ended.expect("closed within 30 s").unwrap_err().code();
    assert_eq!(code, tonic::Code::DeadlineExceeded);
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn bad_topologies_stop_the_start_naming_the_field() {
    let dir = Scratch::new("badtopo");
    let cases = [
        (
            "  - {between: [tokyo, sapporo], bandwidth_mbit: 1000, latency_ms: 10}",
            "  - {between: [tokyo, sapporo], bandwidth_mbit: 1000, latency_ms: 10, max_concurrent_migrations: 0}",
            "links[0].max_concurrent_migrations: 0",
        ),
        ("latency_ms: 10}", "latency_ms: .inf}", "links[0].latency_ms: inf"),
        (
            "{name: v3, host: s1, memory_mib: 256}",
            "{name: v3, host: s1, memory_mib: 256, dirty_mib_per_s: -3.6}",
            "vms[3].dirty_mib_per_s: -3.6",
        ),
        ("{name: v3, host: s1, memory_mib: 256}", "{name: v3, host: s1, memory_mib: .nan}", "vms[3].memory_mib: NaN"),
        ("  - {between: [tokyo, sapporo], bandwidth_mbit: 1000, latency_ms: 10}\n", "", "no path joins sites"),
    ];
    for (from, to, want) in cases {
        let y = two_site_topology(256, "").replace(from, to);
        assert_ne!(y, two_site_topology(256, ""), "{want}: the case applies");
        let p = dir.0.join("t.yaml");
        std::fs::write(&p, y).unwrap();
        let o = Command::new(controller_bin())
            .args(["controller", "--listen", "127.0.0.1:0", "--topology", p.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{want}: {err}");
    }
}

#[test]
fn acknowledged_scenario_jobs_survive_kill_9_and_clashes_are_refused_whole() {
    let dir = Scratch::new("arrivals");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(256, "")).unwrap();
    let state = dir.0.join("state.redb");
    let args = ["--topology", topo.to_str().unwrap(), "--state", state.to_str().unwrap(), "--token", "tk"];
    let mut first = ControllerProcess::start_with("127.0.0.1:0", &args);
    let url = first.url();
    let _ = submit(&url, "tk", "running", "v0");
    let write = |name: &str, yaml: &str| {
        let p = dir.0.join(name);
        std::fs::write(&p, yaml).unwrap();
        p
    };
    // Refused whole: a VM of a running job, an infinite arrival.
    let clash =
        write("clash.yaml", "name: c\njobs:\n  - {job: a, arrival_s: 0, rank_vms: [v1]}\n  - {job: b, arrival_s: 1, rank_vms: [v0]}\n");
    let (ok_, out) = cli(&url, Some("tk"), &["scenario", clash.to_str().unwrap()]);
    assert!(!ok_ && out.contains("jobs[1] (b)") && out.contains("already runs job \"running\""), "{out}");
    let inf = write("inf.yaml", "name: i\njobs:\n  - {job: a, arrival_s: .inf, rank_vms: [v1]}\n");
    let (ok_, out) = cli(&url, Some("tk"), &["scenario", inf.to_str().unwrap()]);
    assert!(!ok_ && out.contains("jobs[0].arrival_s"), "{out}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!ok(&url, "tk", &["placements"]).contains(" a "), "nothing of a refused scenario arrived");
    // Accepted, then the controller dies before the arrival.
    let later = write("later.yaml", "name: l\njobs:\n  - {job: late, arrival_s: 4, rank_vms: [v2, v3]}\n");
    ok(&url, "tk", &["scenario", later.to_str().unwrap()]);
    first.kill();
    let second = ControllerProcess::start_with("127.0.0.1:0", &args);
    let url = second.url();
    let start = Instant::now();
    loop {
        let p = ok(&url, "tk", &["placements", "--job", "late"]);
        if p.lines().filter(|l| l.contains(" late ")).count() == 2 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the acknowledged job never arrived:\n{p}\n{}", second.log());
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn idle_connections_do_not_lock_operators_out() {
    // As found: a controller limited to 1,024 descriptors, 1,100 idle connections.
    use std::io::BufRead;
    let mut child = Command::new("prlimit")
        .args(["--nofile=1024:1024", "--"])
        .arg(controller_bin())
        .args(["controller", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prlimit (util-linux)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    let url = format!("http://{addr}");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let ctl = Kill(child);
    let pid = ctl.0.id();
    let idle: Vec<std::net::TcpStream> = (0..1100).filter_map(|_| std::net::TcpStream::connect(&addr).ok()).collect();
    assert!(idle.len() >= 1000, "{} connections opened", idle.len());
    std::thread::sleep(Duration::from_secs(1));
    let cpu0 = cpu_secs(pid);
    let t = Instant::now();
    let (ok_, out) = cli(&url, None, &["jobs"]);
    assert!(ok_, "{out}");
    assert!(t.elapsed() < Duration::from_secs(5), "an operator call answered in {:?}", t.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    let busy = (cpu_secs(pid) - cpu0) / 2.0;
    assert!(busy < 0.5, "the accept loop does not spin: {:.0}% of a core", busy * 100.0);
    drop(idle);
    drop(ctl);
}

#[test]
fn tls_means_tls_and_tokens_never_travel_in_argv() {
    let dir = Scratch::new("tls");
    let (ca, cert, key) = certs(&dir.0);
    let tls = ControllerProcess::start_with(
        "127.0.0.1:0",
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap(), "--token", "tk"],
    );
    let https = format!("https://{}", tls.addr);
    let jobs = |url: &str, ca: Option<&std::path::Path>| {
        let mut c = Command::new(controller_bin());
        c.args(["jobs", "--controller", url]).env("STRADDLE_TOKEN", "tk").env_remove("STRADDLE_CA_CERT");
        if let Some(ca) = ca {
            c.args(["--ca-cert", ca.to_str().unwrap()]);
        }
        let o = c.output().unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    };
    let (ok_, out) = jobs(&https, Some(&ca));
    assert!(ok_, "https with the CA: {out}");
    let (ok_, out) = jobs(&https, None);
    assert!(!ok_ && out.contains("--ca-cert"), "https without a CA says what is missing: {out}");
    let (ok_, _) = jobs(&format!("http://{}", tls.addr), None);
    assert!(!ok_, "plain HTTP/2 to a TLS port fails");
    let plain = ControllerProcess::start_with("127.0.0.1:0", &["--token", "tk"]);
    let (ok_, _) = jobs(&format!("https://{}", plain.addr), Some(&ca));
    assert!(!ok_, "https:// to a plain controller fails rather than falling back to clear text");
    // The shim reports over TLS to an https:// controller (an open one here: no token).
    let open_tls =
        ControllerProcess::start_with("127.0.0.1:0", &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let exe = Mpi::OpenMpi.compile(&program("ring.c"), &dir.0);
    let _one = exclusive();
    let run = Launch::new(Mpi::OpenMpi, 2, &exe)
        .env("STRADDLE_CONTROLLER", format!("https://{}", open_tls.addr))
        .env("STRADDLE_CA_CERT", ca.to_str().unwrap())
        .env("STRADDLE_JOB", "over-tls")
        .env("STRADDLE_VERBOSE", 1)
        .run();
    assert!(run.success && run.stderr.contains("attached to https://"), "{}", run.stderr);
    let (ok_, out) = jobs(&format!("https://{}", open_tls.addr), Some(&ca));
    assert!(ok_ && out.contains("over-tls"), "{out}");
    // The token option of old is gone from argv: refused, not accepted.
    let o = Command::new(controller_bin()).args(["controller", "--listen", "127.0.0.1:0", "--token", "secret"]).output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--token"), "{}", String::from_utf8_lossy(&o.stderr));
    // Beyond loopback without a token the controller does not start.
    let o = Command::new(controller_bin()).args(["controller", "--listen", "0.0.0.0:0"]).env_remove("STRADDLE_TOKEN").output().unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("beyond loopback a token is needed"));
}

#[test]
fn a_damaged_state_refuses_to_start_naming_table_and_key() {
    let dir = Scratch::new("damaged");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(256, "")).unwrap();
    let state = dir.0.join("state.redb");
    // An empty file where a state is expected.
    std::fs::write(&state, b"").unwrap();
    let o = Command::new(controller_bin())
        .args(["controller", "--listen", "127.0.0.1:0", "--topology", topo.to_str().unwrap(), "--state", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("the file is empty"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::remove_file(&state).unwrap();
    // A real state with an epoch in it, then one byte of it changed.
    {
        let mut ctl = ControllerProcess::start_with(
            "127.0.0.1:0",
            &["--topology", topo.to_str().unwrap(), "--state", state.to_str().unwrap(), "--token", "tk"],
        );
        let _ = submit(&ctl.url(), "tk", "cg", "v0,v2,v1,v3");
        assert!(ctl.stop(), "the controller stops on Ctrl-C");
    }
    let mut bytes = std::fs::read(&state).unwrap();
    let at: Vec<usize> = bytes.windows(10).enumerate().filter(|(_, w)| *w == b"\"epoch\":1,").map(|(i, _)| i).collect();
    assert!(!at.is_empty(), "the site map's record is in the file");
    for i in at {
        bytes[i + 8] = b'7';
    }
    std::fs::write(&state, &bytes).unwrap();
    let o = Command::new(controller_bin())
        .args(["state", "--state", state.to_str().unwrap(), "--topology", topo.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("table site_maps, key cg") && err.contains("checksum"),
        "{err}{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = Command::new(controller_bin())
        .args(["controller", "--listen", "127.0.0.1:0", "--topology", topo.to_str().unwrap(), "--state", state.to_str().unwrap()])
        .env("STRADDLE_TOKEN", "tk")
        .output()
        .unwrap();
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stderr).contains("table site_maps, key cg"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A full disk: the state lives on a 1 MiB tmpfs that fills up. Refused changes take no
/// effect (no job listed, no site map, no pin), and once there is room again the next
/// change works without a restart.
#[test]
#[ignore = "needs root: mounts a small tmpfs for the state (scripts/test.sh runs it as root)"]
fn a_full_disk_refuses_changes_and_changes_nothing() {
    let dir = Scratch::new("full");
    let mnt = dir.0.join("disk");
    std::fs::create_dir_all(&mnt).unwrap();
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt.to_str().unwrap()]).status().unwrap();
    assert!(st.success(), "mount a tmpfs (as root)");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(256, "  - {name: w0, host: t1, memory_mib: 64}\n")).unwrap();
    let state = mnt.join("state.redb");
    let ctl = ControllerProcess::start_with(
        "127.0.0.1:0",
        &["--topology", topo.to_str().unwrap(), "--state", state.to_str().unwrap(), "--token", "tk"],
    );
    let url = ctl.url();
    let _ = submit(&url, "tk", "cg", "v0,v2");
    // Fill the disk.
    let filler = mnt.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![7u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    drop(f);
    let (ok_, out) = cli(&url, Some("tk"), &["submit", "ep", "--vms", "v1,v3"]);
    assert!(!ok_ && out.contains("unavailable"), "{out}");
    let placements = ok(&url, "tk", &["placements"]);
    assert!(!placements.contains(" ep "), "a refused submit is not listed:\n{placements}");
    assert_eq!(traffic_with(&url, Some("tk"), "ep").unwrap_err().code(), tonic::Code::NotFound);
    let (ok_, _) = cli(&url, Some("tk"), &["override", "pin", "w0"]);
    assert!(!ok_);
    assert!(
        !ok(&url, "tk", &["placements"]).lines().any(|l| l.starts_with("w0 ") && l.trim_end().ends_with("yes")),
        "a refused pin is not applied"
    );
    // Room again: the next change works, with no restart.
    std::fs::remove_file(&filler).unwrap();
    let _ = submit(&url, "tk", "ep", "v1,v3");
    assert!(ok(&url, "tk", &["placements"]).contains(" ep "));
}
