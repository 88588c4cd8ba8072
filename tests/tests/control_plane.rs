//! The control plane as a process: jobs submitted with a token get their site map
//! (epoch 1) pushed to every rank that attaches; bad topology and scenario files and
//! unauthenticated callers are refused with the field or the reason.

use std::process::Command;
use std::time::Duration;

use straddle_proto::telemetry_client::TelemetryClient;
use straddle_proto::{controller_message, shim_message, Hello, ShimMessage, SiteMap};
use straddle_tests::controller::{runtime, traffic, traffic_with, two_site_topology, ControllerProcess};
use straddle_tests::paths::{controller_bin, Scratch};

fn cli(url: &str, args: &[&str]) -> (bool, String) {
    straddle_tests::controller::cli(url, None, args)
}

/// Attaches as `rank` of `job` and returns the first site map pushed.
fn first_map(url: &str, token: Option<&str>, job: &str, rank: u32, world: u32) -> Result<SiteMap, tonic::Status> {
    runtime().block_on(async {
        let mut c = TelemetryClient::connect(url.to_string()).await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let hello = ShimMessage {
            body: Some(shim_message::Body::Hello(Hello { job: job.into(), rank, world_size: world, incarnation: 1, ..Default::default() })),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(hello).await.unwrap();
        let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        if let Some(t) = token {
            req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let mut inbound = c.attach(req).await?.into_inner();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), inbound.message()).await {
                Ok(Ok(Some(m))) => {
                    if let Some(controller_message::Body::SiteMap(map)) = m.body {
                        return Ok(map);
                    }
                }
                Ok(Ok(None)) => return Err(tonic::Status::aborted("stream ended")),
                Ok(Err(s)) => return Err(s),
                Err(_) => return Err(tonic::Status::deadline_exceeded("no site map")),
            }
        }
    })
}

#[test]
fn submitted_jobs_get_their_site_map_and_bad_requests_are_refused() {
    let dir = Scratch::new("plane");
    let topo = dir.0.join("topology.yaml");
    let topology = two_site_topology(1024, "");
    std::fs::write(&topo, &topology).unwrap();
    let ctl = ControllerProcess::start_with("127.0.0.1:0", &["--topology", topo.to_str().unwrap(), "--token", "s3cret"]);
    let url = ctl.url();

    // Changing placement needs the token.
    let (ok, out) = cli(&url, &["submit", "cg", "--vms", "v0,v2,v1,v3"]);
    assert!(!ok && out.contains("unauthenticated"), "{out}");
    let (ok, out) = cli(&url, &["submit", "cg", "--vms", "v0,v2,v1,v3", "--token", "wrong"]);
    assert!(!ok && out.contains("unauthenticated"), "{out}");
    let (ok, out) = cli(&url, &["submit", "cg", "--vms", "v0,v2,v1,v3", "--token", "s3cret"]);
    assert!(ok, "{out}");
    let cg = out.lines().find_map(|l| l.strip_prefix("job token: ")).unwrap().trim().to_string();
    // A rank without the job's credential is refused; nothing is created for it.
    assert_eq!(first_map(&url, None, "cg", 0, 4).unwrap_err().code(), tonic::Code::Unauthenticated);
    assert_eq!(first_map(&url, Some("guess"), "cg", 0, 4).unwrap_err().code(), tonic::Code::Unauthenticated);

    // Every rank, early or late, gets epoch 1: ranks 0 and 2 on tokyo, 1 and 3 on sapporo.
    for rank in [0, 3] {
        let m = first_map(&url, Some(&cg), "cg", rank, 4).unwrap();
        assert_eq!((m.epoch, m.rank_site.clone()), (1, vec![0, 1, 0, 1]), "rank {rank}");
        assert_eq!(m.sites, vec!["tokyo".to_string(), "sapporo".to_string()]);
    }
    // A rank of another size is refused: the job is known with 4 ranks.
    assert_eq!(first_map(&url, Some(&cg), "cg", 0, 8).unwrap_err().code(), tonic::Code::FailedPrecondition);
    assert_eq!(traffic_with(&url, Some("s3cret"), "cg").unwrap().world_size, 4);
    assert_eq!(traffic_with(&url, Some(&cg), "cg").unwrap().world_size, 4, "a job's credential reads its own traffic");
    assert_eq!(traffic(&url, "cg").unwrap_err().code(), tonic::Code::Unauthenticated, "traffic is not open to anyone");

    // Refused jobs name the field; nothing is half-applied.
    let (ok, out) = cli(&url, &["submit", "bt", "--vms", "v9", "--token", "s3cret"]);
    assert!(!ok && out.contains("rank_vms[0]: unknown VM \"v9\""), "{out}");
    let (ok, out) = cli(&url, &["submit", "bt", "--vms", "v1", "--token", "s3cret"]);
    assert!(!ok && out.contains("rank_vms[0]: VM \"v1\" already runs job \"cg\""), "{out}");
    assert_eq!(traffic_with(&url, Some("s3cret"), "bt").unwrap_err().code(), tonic::Code::NotFound);
    let (ok, out) = cli(&url, &["submit", "cg", "--vms", "v1", "--token", "s3cret"]);
    assert!(!ok && out.contains("already exists"), "{out}");

    // Scenarios: checked whole, then jobs arrive on time.
    let bad = dir.0.join("bad.yaml");
    std::fs::write(&bad, "name: x\njobs:\n  - {job: lu, arrival_s: 0, rank_vms: [v0, vx]}\n").unwrap();
    let (ok, out) = cli(&url, &["scenario", bad.to_str().unwrap(), "--token", "s3cret"]);
    assert!(!ok && out.contains("jobs[0].rank_vms[1]: unknown VM \"vx\""), "{out}");
    let (ok, _) = cli(&url, &["cancel", "cg", "--token", "s3cret"]);
    assert!(ok);
    let good = dir.0.join("paper.yaml");
    std::fs::write(&good, "name: paper\njobs:\n  - {job: ep1, arrival_s: 0, rank_vms: [v0, v1], workload: {kind: ep}}\n  - {job: lu, arrival_s: 1, rank_vms: [v2, v3]}\n").unwrap();
    let (ok, out) = cli(&url, &["scenario", good.to_str().unwrap(), "--token", "s3cret"]);
    assert!(ok && out.contains("ep1, lu"), "{out}");
    let lu = out.lines().find_map(|l| l.strip_prefix("job token lu: ")).unwrap().trim().to_string();
    // lu arrives a second in; a rank attaching before would make a job of its own.
    let start = std::time::Instant::now();
    while traffic_with(&url, Some(&lu), "lu").is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "the scenario's lu never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(first_map(&url, Some(&lu), "lu", 1, 2).unwrap().rank_site, vec![1, 1]);

    // With --submitted-only, ranks of a job nobody submitted are refused: unknown job.
    let strict = ControllerProcess::start_with("127.0.0.1:0", &["--topology", topo.to_str().unwrap(), "--submitted-only"]);
    let e = first_map(&strict.url(), None, "rogue", 0, 2).unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    assert!(e.message().contains("unknown job \"rogue\""), "{e:?}");
    assert!(strict.log().contains("unknown job"), "logged: {}", strict.log());

    // A bad topology keeps the controller from starting, naming the field.
    let broken = dir.0.join("broken.yaml");
    std::fs::write(&broken, topology.replace("host: s1", "host: s9")).unwrap();
    let o = Command::new(controller_bin())
        .args(["controller", "--listen", "127.0.0.1:0", "--topology", broken.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("vms[2].host: unknown host \"s9\""), "{err}");
}

/// A real MPI job under the shim, submitted with its rank → VM map: every rank receives
/// the site map (epoch 1) while it runs.
#[test]
fn real_mpi_ranks_receive_their_site_map() {
    use straddle_tests::mpi::{exclusive, Launch, BOTH};
    use straddle_tests::paths::program;
    let _x = exclusive();
    let dir = Scratch::new("plane-mpi");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(1024, "")).unwrap();
    let ctl = ControllerProcess::start_with("127.0.0.1:0", &["--topology", topo.to_str().unwrap(), "--token", "t"]);
    let url = ctl.url();
    for mpi in BOTH {
        let job = format!("mapped-{}", mpi.name());
        let job_token = straddle_tests::controller::submit(&url, "t", &job, "v0,v2,v1,v3");
        let exe = mpi.compile(&program("traffic.c"), &dir.0);
        let run = Launch::new(mpi, 4, &exe)
            .arg(10)
            .arg(50)
            .env("STRADDLE_CONTROLLER", &url)
            .env("STRADDLE_JOB", &job)
            .env("STRADDLE_JOB_TOKEN", &job_token)
            .env("STRADDLE_VERBOSE", 1)
            .run();
        assert!(run.success, "{}: {}", mpi.name(), run.stderr);
        for rank in 0..4 {
            let line = format!("straddle[{job} rank {rank}]: site map epoch 1: tokyo,sapporo,tokyo,sapporo");
            assert!(run.stderr.contains(&line), "{}: missing {line:?} in:\n{}", mpi.name(), run.stderr);
        }
        let (ok, _) = straddle_tests::controller::cli(&url, Some("t"), &["cancel", &job]);
        assert!(ok);
    }
}
