//! Benchmark: the controller under attack while it serves. 1,000 honest rank streams of a
//! submitted job report every second (10 peers each) over TLS-less loopback with their
//! credential; meanwhile 1,000 anonymous hellos (large worlds, new job names) arrive and
//! 10,000 idle TCP connections are held open (reopened as the controller closes them).
//! Measured, against the same honest load alone in the same run: the controller's peak
//! resident memory, operator call latency (Health, every 200 ms), honest records/s.
//! Goals: operator p99 <= 100 ms, memory under 512 MiB, honest rate unchanged (>= 0.9x).
//!
//! Run: `cargo bench -p straddle-tests --bench hostile`; HOSTILE_SECS (default 20). The
//! last line is machine-readable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use straddle_proto::operator_client::OperatorClient;
use straddle_proto::telemetry_client::TelemetryClient;
use straddle_proto::{shim_message, Hello, PeerTraffic, Report, ShimMessage};
use straddle_tests::controller::{two_site_topology, ControllerProcess};
use straddle_tests::paths::{controller_bin, Scratch};

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

struct Measured {
    records_per_s: f64,
    op_p50_ms: f64,
    op_p99_ms: f64,
    peak_rss_mib: f64,
    refused: u64,
    idle_held: u64,
}

const RANKS: u32 = 1000;
const PEERS: u32 = 10;

fn run(hostile: bool, secs: u64) -> Measured {
    let dir = Scratch::new("hostile");
    let topo = dir.0.join("topology.yaml");
    std::fs::write(&topo, two_site_topology(256, "")).unwrap();
    let ctl = ControllerProcess::start_with("127.0.0.1:0", &["--topology", topo.to_str().unwrap(), "--token", "tk"]);
    let url = ctl.url();
    let pid = ctl.pid();
    let vms: Vec<&str> = (0..RANKS).map(|r| ["v0", "v1", "v2", "v3"][r as usize % 4]).collect();
    let out = std::process::Command::new(controller_bin())
        .args(["submit", "honest", "--vms", &vms.join(","), "--controller", &url])
        .env("STRADDLE_TOKEN", "tk")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let token = text.lines().find_map(|l| l.strip_prefix("job token: ")).expect("job token").trim().to_string();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let records = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let idle_held = Arc::new(AtomicU64::new(0));
    let lat: Arc<Mutex<Vec<f64>>> = Arc::default();
    let peak = Arc::new(Mutex::new(0.0f64));
    let end = Instant::now() + Duration::from_secs(secs + 3);
    let measure_from = Instant::now() + Duration::from_secs(3);
    rt.block_on(async {
        let mut tasks = Vec::new();
        // Honest ranks: ten connections of a hundred streams.
        for conn in 0..10u32 {
            let channel = tonic::transport::Endpoint::from_shared(url.clone()).unwrap().connect().await.unwrap();
            for r in 0..RANKS / 10 {
                let rank = conn * (RANKS / 10) + r;
                let (channel, token, records) = (channel.clone(), token.clone(), records.clone());
                tasks.push(tokio::spawn(async move {
                    let mut c = TelemetryClient::new(channel);
                    let (tx, rx) = tokio::sync::mpsc::channel(4);
                    let hello = Hello { job: "honest".into(), rank, world_size: RANKS, incarnation: 1, ..Default::default() };
                    tx.send(ShimMessage { body: Some(shim_message::Body::Hello(hello)) }).await.unwrap();
                    let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
                    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
                    let Ok(resp) = c.attach(req).await else { return };
                    let mut inbound = resp.into_inner();
                    let reader = tokio::spawn(async move { while let Ok(Some(_)) = inbound.message().await {} });
                    tokio::time::sleep(Duration::from_micros(u64::from(rank) * 1000)).await;
                    let mut seq = 0u64;
                    while Instant::now() < end {
                        seq += 1;
                        let peers = (1..=PEERS)
                            .map(|k| PeerTraffic {
                                dest: (rank + k) % RANKS,
                                p2p_bytes: seq * 4096,
                                p2p_messages: seq,
                                ..Default::default()
                            })
                            .collect();
                        if tx
                            .send(ShimMessage { body: Some(shim_message::Body::Report(Report { seq, peers, ..Default::default() })) })
                            .await
                            .is_err()
                        {
                            break;
                        }
                        if Instant::now() >= measure_from {
                            records.fetch_add(u64::from(PEERS), Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    drop(tx);
                    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
                }));
            }
        }
        if hostile {
            // 1,000 anonymous hellos with large worlds and fresh names.
            let (hello_url, refused) = (url.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                let channel = tonic::transport::Endpoint::from_shared(hello_url).unwrap().connect().await.unwrap();
                for i in 0..1000u32 {
                    let mut c = TelemetryClient::new(channel.clone());
                    let (tx, rx) = tokio::sync::mpsc::channel(1);
                    let hello = Hello { job: format!("squat{i}"), rank: 0, world_size: 65_536, incarnation: 1, ..Default::default() };
                    let _ = tx.send(ShimMessage { body: Some(shim_message::Body::Hello(hello)) }).await;
                    if let Ok(r) = c.attach(tokio_stream::wrappers::ReceiverStream::new(rx)).await {
                        let mut s = r.into_inner();
                        if let Err(st) = s.message().await {
                            if st.code() == tonic::Code::Unauthenticated {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }));
            // 10,000 idle connections, reopened as they are closed.
            let addr = url.trim_start_matches("http://").to_string();
            let held = idle_held.clone();
            tasks.push(tokio::spawn(async move {
                let mut conns: Vec<tokio::net::TcpStream> = Vec::new();
                while Instant::now() < end {
                    while conns.len() < 10_000 && Instant::now() < end {
                        match tokio::net::TcpStream::connect(&addr).await {
                            Ok(s) => conns.push(s),
                            Err(_) => break,
                        }
                    }
                    held.fetch_max(conns.len() as u64, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    // Drop the ones the controller closed.
                    let mut buf = [0u8; 1];
                    conns.retain(|s| !matches!(s.try_read(&mut buf), Ok(0)));
                }
            }));
        }
        // The operator: a Health call every 200 ms, timed; memory sampled alongside.
        let (lat, peak) = (lat.clone(), peak.clone());
        let op_url = url.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            while Instant::now() < end {
                let t = Instant::now();
                let ch = tonic::transport::Endpoint::from_shared(op_url.clone()).unwrap().connect().await;
                if let Ok(ch) = ch {
                    let mut c = OperatorClient::new(ch);
                    let mut req = tonic::Request::new(straddle_proto::HealthRequest {});
                    req.metadata_mut().insert("authorization", "Bearer tk".parse().unwrap());
                    if c.health(req).await.is_ok() {
                        lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
                {
                    let mut p = peak.lock().unwrap();
                    *p = p.max(rss_mib(pid));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
        for t in tasks {
            let _ = t.await;
        }
    });
    let mut l = lat.lock().unwrap().clone();
    l.sort_by(f64::total_cmp);
    // The sample nearest the quantile of `per_mille` thousandths (rounded half up).
    let q = |per_mille: usize| if l.is_empty() { f64::NAN } else { l[((l.len() - 1) * per_mille + 500) / 1000] };
    let m = Measured {
        records_per_s: records.load(Ordering::Relaxed) as f64 / secs as f64,
        op_p50_ms: q(500),
        op_p99_ms: q(990),
        peak_rss_mib: *peak.lock().unwrap(),
        refused: refused.load(Ordering::Relaxed),
        idle_held: idle_held.load(Ordering::Relaxed),
    };
    drop(ctl);
    m
}

fn main() {
    let secs: u64 = env("HOSTILE_SECS", 20);
    let calm = run(false, secs);
    let attacked = run(true, secs);
    for (name, m) in [("honest load alone", &calm), ("under attack", &attacked)] {
        println!(
            "{name:>18}: honest {:.0} records/s; operator call ms p50 {:.1} p99 {:.1}; controller peak RSS {:.0} MiB; hostile hellos refused {}; idle connections held {}",
            m.records_per_s, m.op_p50_ms, m.op_p99_ms, m.peak_rss_mib, m.refused, m.idle_held
        );
    }
    let ratio = attacked.records_per_s / calm.records_per_s;
    println!(
        "honest rate under attack / alone: {ratio:.3} (goal >= 0.9); operator p99 {:.1} ms (goal <= 100); peak {:.0} MiB (bound 512)",
        attacked.op_p99_ms, attacked.peak_rss_mib
    );
    println!(
        "hostile_bench secs={secs} calm_op_p99_ms={:.2} attacked_op_p99_ms={:.2} calm_rss_mib={:.0} attacked_rss_mib={:.0} rate_ratio={ratio:.3} refused={} idle_held={} goal_op={} goal_mem={} goal_rate={}",
        calm.op_p99_ms,
        attacked.op_p99_ms,
        calm.peak_rss_mib,
        attacked.peak_rss_mib,
        attacked.refused,
        attacked.idle_held,
        attacked.op_p99_ms <= 100.0,
        attacked.peak_rss_mib <= 512.0,
        ratio >= 0.9
    );
}
