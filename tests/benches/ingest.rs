//! Benchmark: ingestion through the real gRPC path. 1,024 concurrent shim streams (the ranks
//! of one job), each sending one batch per second with a realistic all-to-all delta (1,000
//! changed destinations); the controller is pinned to one core, this generator to the
//! other. Goal: ≥ 1,000,000 records/s with p99 report-to-visible ≤ 100 ms. A report is
//! visible in the matrix before the controller acknowledges it, so report-to-ack time is an
//! upper bound on report-to-visible.
//!
//! The same load runs twice in one invocation: against an open controller over plain
//! HTTP/2, and against a secured one (TLS, the job submitted by a scheduler, every stream
//! presenting the job's credential). Goal for the second: ≥ 90% of the first's rate.
//!
//! Run: `cargo bench -p straddle-tests --bench ingest` (after `cargo build --release`);
//! INGEST_SECS, INGEST_STREAMS, INGEST_PEERS change the load; INGEST_BASELINE_BIN=PATH
//! also runs the plain load against another build's `straddle` (before and after in one
//! run). Last line machine-readable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::process::Command;
use straddle_proto::telemetry_client::TelemetryClient;
use straddle_proto::{controller_message, shim_message, Hello, PeerTraffic, Report, ShimMessage};

use straddle_tests::controller::{certs, two_site_topology, ControllerProcess};
use straddle_tests::paths::{controller_bin, Scratch};

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn pin(pid: u32, cpu: usize) {
    let _ = std::process::Command::new("taskset").args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()]).output();
}

/// What one run measured.
struct Measured {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    reports: usize,
}

/// How the generator reaches the controller.
struct Target {
    url: String,
    ca: Option<Vec<u8>>,
    token: Option<String>,
}

fn run(target: &Target, pid: u32, streams: u32, peers: u32, secs: u64) -> Measured {
    pin(pid, 0);
    pin(std::process::id(), 1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let records: Arc<Mutex<u64>> = Arc::default();
    let warmup = Duration::from_secs(2);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + Duration::from_secs(secs);
    rt.block_on(async {
        let mut endpoint = tonic::transport::Endpoint::from_shared(target.url.clone()).unwrap();
        if let Some(ca) = &target.ca {
            let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(ca.clone()));
            endpoint = endpoint.tls_config(tls).unwrap();
        }
        let channel = endpoint.connect().await.unwrap();
        let mut tasks = Vec::new();
        for rank in 0..streams {
            let channel = channel.clone();
            let (latencies, records) = (latencies.clone(), records.clone());
            let token = target.token.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = TelemetryClient::new(channel);
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                let hello = Hello {
                    job: "ingest".into(),
                    rank,
                    world_size: streams,
                    node: format!("vm{rank}"),
                    incarnation: 1,
                    ..Default::default()
                };
                tx.send(ShimMessage { body: Some(shim_message::Body::Hello(hello)) }).await.unwrap();
                let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
                if let Some(t) = &token {
                    req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
                }
                let mut inbound = c.attach(req).await.unwrap().into_inner();
                let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
                let sent_r = sent.clone();
                let reader = tokio::spawn(async move {
                    while let Ok(Some(m)) = inbound.message().await {
                        if let Some(controller_message::Body::Ack(a)) = m.body {
                            let now = Instant::now();
                            if let Some(t) = sent_r.lock().unwrap().remove(&a.seq) {
                                if t >= measure_from && t < end {
                                    latencies.lock().unwrap().push((now - t).as_secs_f64() * 1e3);
                                    *records.lock().unwrap() += u64::from(peers);
                                }
                            }
                        }
                    }
                });
                // Stagger the streams over the second, like ranks started at different times.
                tokio::time::sleep(Duration::from_micros(u64::from(rank) * 1_000_000 / u64::from(streams))).await;
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut seq = 0u64;
                while Instant::now() < end {
                    tick.tick().await;
                    seq += 1;
                    let report = Report {
                        seq,
                        peers: (1..=peers)
                            .map(|k| {
                                let v = seq * (1000 + u64::from(k));
                                PeerTraffic { dest: (rank + k) % streams, p2p_bytes: v * 64, p2p_messages: v, ..Default::default() }
                            })
                            .collect(),
                        ..Default::default()
                    };
                    sent.lock().unwrap().insert(seq, Instant::now());
                    if tx.send(ShimMessage { body: Some(shim_message::Body::Report(report)) }).await.is_err() {
                        break;
                    }
                }
                drop(tx);
                let _ = tokio::time::timeout(Duration::from_secs(3), reader).await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(f64::total_cmp);
    // The sample nearest the quantile of `per_mille` thousandths (rounded half up).
    let q = |per_mille: usize| if l.is_empty() { f64::NAN } else { l[((l.len() - 1) * per_mille + 500) / 1000] };
    let rate = *records.lock().unwrap() as f64 / secs as f64;
    Measured { rate, p50: q(500), p99: q(990), max: q(1000), reports: l.len() }
}

fn main() {
    let secs: u64 = env("INGEST_SECS", 10);
    let streams: u32 = env("INGEST_STREAMS", 1024);
    let peers: u32 = env("INGEST_PEERS", 1000).min(streams - 1);
    println!("{streams} streams x {peers} records per batch per second, {secs} s measured after 2 s warm-up");
    println!("controller pinned to CPU 0, generator to CPU 1");

    // Plain: an open controller, HTTP/2 without TLS, no credentials.
    let plain = {
        let ctl = ControllerProcess::start();
        run(&Target { url: ctl.url(), ca: None, token: None }, ctl_pid(&ctl), streams, peers, secs)
    };
    // Secured: TLS, and the job submitted by a scheduler whose credential every stream shows.
    let secure = {
        let dir = Scratch::new("ingest-tls");
        let (ca, cert, key) = certs(&dir.0);
        let topo = dir.0.join("topology.yaml");
        std::fs::write(&topo, two_site_topology(256, "")).unwrap();
        let ctl = ControllerProcess::start_with(
            "127.0.0.1:0",
            &[
                "--topology",
                topo.to_str().unwrap(),
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
                "--token",
                "tk",
                "--max-world-size",
                "65536",
            ],
        );
        let url = format!("https://{}", ctl.addr);
        // Ranks share the four VMs (several ranks per VM).
        let vms: Vec<&str> = (0..streams).map(|r| ["v0", "v1", "v2", "v3"][r as usize % 4]).collect();
        let out = Command::new(controller_bin())
            .args(["submit", "ingest", "--vms", &vms.join(","), "--controller", &url, "--ca-cert", ca.to_str().unwrap()])
            .env("STRADDLE_TOKEN", "tk")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let token = text
            .lines()
            .find_map(|l| l.strip_prefix("job token: "))
            .unwrap_or_else(|| panic!("submit: {text}{}", String::from_utf8_lossy(&out.stderr)))
            .trim()
            .to_string();
        let m = run(&Target { url, ca: Some(std::fs::read(&ca).unwrap()), token: Some(token) }, ctl_pid(&ctl), streams, peers, secs);
        drop(ctl);
        m
    };
    let baseline = std::env::var("INGEST_BASELINE_BIN").ok().map(|bin| {
        let ctl = ControllerProcess::start_bin(std::path::Path::new(&bin), "127.0.0.1:0", &[]);
        run(&Target { url: ctl.url(), ca: None, token: None }, ctl_pid(&ctl), streams, peers, secs)
    });
    if let Some(b) = &baseline {
        println!(
            "{:>18}: {:.0} records/s; report-to-visible ms p50 {:.1} p99 {:.1} max {:.1} over {} reports",
            "plain, baseline build", b.rate, b.p50, b.p99, b.max, b.reports
        );
    }
    for (name, m) in [("plain", &plain), ("TLS + credentials", &secure)] {
        println!(
            "{name:>18}: {:.0} records/s (goal 1,000,000: ratio {:.3}); report-to-visible ms p50 {:.1} p99 {:.1} max {:.1} over {} reports (goal p99 <= 100)",
            m.rate,
            m.rate / 1e6,
            m.p50,
            m.p99,
            m.max,
            m.reports
        );
    }
    let secured_ratio = secure.rate / plain.rate;
    println!("secured / plain rate: {secured_ratio:.3} (goal >= 0.90)");
    println!(
        "ingest_bench streams={streams} records_per_s={:.0} ratio_to_goal={:.3} p50_ms={:.2} p99_ms={:.2} goal_rate={} goal_p99={} secure_records_per_s={:.0} secure_p99_ms={:.2} secure_ratio={secured_ratio:.3} goal_secure={}",
        plain.rate,
        plain.rate / 1e6,
        plain.p50,
        plain.p99,
        plain.rate >= 1e6,
        plain.p99 <= 100.0,
        secure.rate,
        secure.p99,
        secured_ratio >= 0.9
    );
}

fn ctl_pid(ctl: &ControllerProcess) -> u32 {
    ctl.pid()
}
