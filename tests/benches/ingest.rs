//! Benchmark: ingestion through the real gRPC path. 1,024 concurrent shim streams (the ranks
//! of one job), each sending one batch per second with a realistic all-to-all delta (1,000
//! changed destinations); the controller is pinned to one core, this generator to the
//! other. Goal: ≥ 1,000,000 records/s with p99 report-to-visible ≤ 100 ms. A report is
//! visible in the matrix before the controller acknowledges it, so report-to-ack time is an
//! upper bound on report-to-visible.
//!
//! Run: `cargo bench -p straddle-tests --bench ingest` (after `cargo build --release`);
//! INGEST_SECS, INGEST_STREAMS, INGEST_PEERS change the load. Last line machine-readable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use straddle_proto::telemetry_client::TelemetryClient;
use straddle_proto::{controller_message, shim_message, Hello, PeerTraffic, Report, ShimMessage};
use straddle_tests::controller::ControllerProcess;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn pin(pid: u32, cpu: usize) {
    let _ = std::process::Command::new("taskset").args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()]).output();
}

fn main() {
    let secs: u64 = env("INGEST_SECS", 10);
    let streams: u32 = env("INGEST_STREAMS", 1024);
    let peers: u32 = env("INGEST_PEERS", 1000).min(streams - 1);
    let ctl = ControllerProcess::start();
    let pid = ctl_pid(&ctl);
    pin(pid, 0);
    pin(std::process::id(), 1);
    let url = ctl.url();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let records: Arc<Mutex<u64>> = Arc::default();
    let warmup = Duration::from_secs(2);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + Duration::from_secs(secs);
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url.clone()).unwrap().connect().await.unwrap();
        let mut tasks = Vec::new();
        for rank in 0..streams {
            let channel = channel.clone();
            let (latencies, records) = (latencies.clone(), records.clone());
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
                let mut inbound = c.attach(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
                let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
                let sent_r = sent.clone();
                let reader = tokio::spawn(async move {
                    while let Ok(Some(m)) = inbound.message().await {
                        if let Some(controller_message::Body::Ack(a)) = m.body {
                            let now = Instant::now();
                            if let Some(t) = sent_r.lock().unwrap().remove(&a.seq) {
                                if t >= measure_from && t < end {
                                    latencies.lock().unwrap().push((now - t).as_secs_f64() * 1e3);
                                    *records.lock().unwrap() += peers as u64;
                                }
                            }
                        }
                    }
                });
                // Stagger the streams over the second, like ranks started at different times.
                tokio::time::sleep(Duration::from_micros(rank as u64 * 1_000_000 / streams as u64)).await;
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
                                let v = seq * (1000 + k as u64);
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
    l.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // The sample nearest the quantile of `per_mille` thousandths (rounded half up).
    let q = |per_mille: usize| if l.is_empty() { f64::NAN } else { l[((l.len() - 1) * per_mille + 500) / 1000] };
    let rate = *records.lock().unwrap() as f64 / secs as f64;
    println!("{streams} streams x {peers} records per batch per second, {secs} s measured after {warmup:?} warm-up");
    println!("controller pinned to CPU 0, generator to CPU 1");
    println!("acknowledged records/s: {rate:.0} (goal 1,000,000: ratio {:.3})", rate / 1e6);
    println!(
        "report-to-visible (<= report-to-ack) ms: p50 {:.1} p99 {:.1} max {:.1} over {} reports (goal p99 <= 100)",
        q(500),
        q(990),
        q(1000),
        l.len()
    );
    println!(
        "ingest_bench streams={streams} records_per_s={rate:.0} ratio_to_goal={:.3} p50_ms={:.2} p99_ms={:.2} goal_rate={} goal_p99={}",
        rate / 1e6,
        q(500),
        q(990),
        rate >= 1e6,
        q(990) <= 100.0
    );
}

fn ctl_pid(ctl: &ControllerProcess) -> u32 {
    ctl.pid()
}
