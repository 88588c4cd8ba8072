//! A cluster's L2 segment across hosts against the bare link it rides on: two hosts
//! (namespaces) joined by a veth shaped to 1 Gbit/s (tbf on both ends), the agent's VXLAN
//! segments on them, a member of the red cluster on each host. TCP goodput (iperf3, 5 s
//! after a second of slow start, median of 3) and round-trip time (ping, 50 probes, median)
//! between the hosts' underlay addresses, then between the two members over the segment.
//! Then the same segments carried over the encrypted tunnel between the hosts (WireGuard in
//! user space, `straddle-agent tunnel`; segment MTU 1390), measured the same way.
//! The source paper's OpenVPN reached 290 of 940 Mbit/s; goals: the plain segment ≥ 90% of
//! the bare link, the encrypted one ≥ 50%, added RTT ≤ 0.2 ms. Root only; the last line is
//! `SEGBENCH {json}`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use straddle_tests::bed::sh;
use straddle_tests::segments::Net;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// TCP goodput in Mbit/s from namespace `from` to `to_ip` served in namespace `to`.
fn tcp_mbit(from: &str, to: &str, to_ip: &str) -> f64 {
    let mut runs = Vec::new();
    for _ in 0..3 {
        let mut server = Command::new("ip")
            .args(["netns", "exec", to, "iperf3", "-s", "-1", "-p", "5201"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            let ss = Command::new("ip").args(["netns", "exec", to, "ss", "-ltnH", "sport", "=", ":5201"]).output().unwrap();
            if !ss.stdout.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = Command::new("ip")
            .args(["netns", "exec", from, "iperf3", "-c", to_ip, "-p", "5201", "-t", "5", "-O", "1", "-J"])
            .output()
            .unwrap();
        let _ = server.kill();
        let _ = server.wait();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(b) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
            runs.push(b / 1e6);
        }
    }
    median(runs)
}

/// Median round trip in ms from namespace `from` to `ip`.
fn rtt_ms(from: &str, ip: &str) -> f64 {
    let out = Command::new("ip").args(["netns", "exec", from, "ping", "-n", "-c", "50", "-i", "0.02", "-W", "1", ip]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    median(text.lines().filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok()).collect())
}

fn main() {
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        println!("skipped: the segment benchmark needs root (network namespaces)");
        println!("SEGBENCH {{\"skipped\":true}}");
        return;
    }
    let (n, _) = Net::built("sg");
    for h in ["h1", "h2"] {
        sh(&[
            "ip",
            "netns",
            "exec",
            &n.ns(h),
            "tc",
            "qdisc",
            "add",
            "dev",
            "u0",
            "root",
            "tbf",
            "rate",
            "1gbit",
            "burst",
            "256kb",
            "latency",
            "10ms",
        ])
        .unwrap();
    }
    let (h1, h2) = (n.ns("h1"), n.ns("h2"));
    let bare = tcp_mbit(&h1, &h2, "192.0.2.2");
    let bare_rtt = rtt_ms(&h1, "192.0.2.2");
    let (r1, r2) = (n.ns("r1"), n.ns("r2"));
    let seg = tcp_mbit(&r1, &r2, "10.1.1.1");
    let seg_rtt = rtt_ms(&r1, "10.1.1.1");
    n.encrypt();
    let enc = tcp_mbit(&r1, &r2, "10.1.1.1");
    let enc_rtt = rtt_ms(&r1, "10.1.1.1");
    let ratio = seg / bare;
    let added = seg_rtt - bare_rtt;
    let (enc_ratio, enc_added) = (enc / bare, enc_rtt - bare_rtt);
    println!("bare link (1 Gbit/s tbf):   {bare:7.1} Mbit/s, RTT {bare_rtt:.3} ms");
    println!("plain VXLAN segment:        {seg:7.1} Mbit/s, RTT {seg_rtt:.3} ms");
    println!("segment / bare:             {ratio:.3} (goal >= 0.90), added RTT {added:.3} ms (goal <= 0.2)");
    println!("encrypted segment:          {enc:7.1} Mbit/s, RTT {enc_rtt:.3} ms");
    println!("encrypted / bare:           {enc_ratio:.3} (goal >= 0.50), added RTT {enc_added:.3} ms");
    println!(
        "SEGBENCH {{\"bare_mbit\":{bare:.1},\"segment_mbit\":{seg:.1},\"ratio\":{ratio:.4},\"bare_rtt_ms\":{bare_rtt:.4},\"segment_rtt_ms\":{seg_rtt:.4},\"added_rtt_ms\":{added:.4},\"encrypted_mbit\":{enc:.1},\"encrypted_ratio\":{enc_ratio:.4},\"encrypted_rtt_ms\":{enc_rtt:.4},\"encrypted_added_rtt_ms\":{enc_added:.4}}}"
    );
}
