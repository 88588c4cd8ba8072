//! Benchmark: the test bed's WAN, measured against what it was configured to be. A bed of
//! two sites of two nodes (root; built and torn down here) at 10 ms and at 50 ms one way:
//! the cross-site RTT against twice the delay (200 pings 10 ms apart, measured again up to
//! three times while the self-test's bars miss), this machine's timer lateness over the
//! seconds of the RTTs kept (a real-time thread's 1 ms absolute sleeps: the floor under
//! any user-space delay), and at 10 ms TCP across (iperf3, 4 s after 1 s of slow start) under caps of 100
//! and 1000 Mbit/s against the cap's TCP ceiling (1448 bytes of payload per 1514-byte
//! frame). Baseline in the same run: TCP inside a site, which nothing shapes, so the cap and
//! not the machine is what holds TCP across. Goal: TCP across within 10% of the ceiling,
//! RTT medians within 1 ms of twice the delay. The last line is machine-readable.
//!
//! Run: `cargo bench -p straddle-tests --bench bed_wan` after `cargo build --release
//! --workspace` (about two minutes).

use std::time::{Duration, Instant};

use straddle_tests::bed::selftest::SelfTest;
use straddle_tests::bed::{self, Bed, BedSpec};

/// TCP payload per frame at the bed's MTU: what a cap leaves for goodput.
const GOODPUT: f64 = 1448.0 / 1514.0;

fn main() {
    if let Err(why) = bed::can_run() {
        println!("bed_wan skipped: {why}");
        return;
    }
    let mut line = vec!["bed_wan".to_string()];
    let mut goals = Vec::new();
    for delay_ms in [10u32, 50] {
        let t = Instant::now();
        let mut b = Bed::up(BedSpec::new("bw", 2, 2).delay(Duration::from_millis(delay_ms.into())).rate_mbit(Some(100))).expect("bed up");
        let up = t.elapsed().as_secs_f64();
        let st = SelfTest::run(&b, 200, 0).expect("self-test");
        let rtt = st.cross_site_rtt.expect("two sites");
        let want = 2.0 * f64::from(delay_ms);
        println!("\n{delay_ms} ms one way: bed up in {up:.1} s\n{st}");
        println!("cross-site RTT median {:.2} ms against {want:.0} ms: ratio {:.4}", rtt.median, rtt.median / want);
        goals.push(((rtt.median - want).abs() <= 1.0, format!("RTT median at {delay_ms} ms")));
        line.push(format!(
            "rtt{delay_ms}_median_ms={:.2} rtt{delay_ms}_p99_ms={:.2} rtt{delay_ms}_ratio={:.4} timer{delay_ms}_p99_ms={:.3} up{delay_ms}_s={up:.1}",
            rtt.median,
            rtt.p99,
            rtt.median / want,
            st.timers.p99
        ));
        if delay_ms == 10 {
            for rate in [100u32, 1000] {
                b.set_rate(Some(rate)).expect("set the cap");
                let mbit = b.tcp_mbit(0, 2, 4).expect("TCP across");
                let ceiling = f64::from(rate) * GOODPUT;
                println!(
                    "cross-site TCP under a {rate} Mbit/s cap: {mbit:.1} Mbit/s, {:.3} of the {ceiling:.1} Mbit/s ceiling",
                    mbit / ceiling
                );
                goals.push(((mbit / ceiling - 1.0).abs() <= 0.1, format!("TCP at {rate} Mbit/s")));
                line.push(format!("tcp{rate}_mbit={mbit:.1} tcp{rate}_ratio={:.3}", mbit / ceiling));
            }
            b.set_rate(Some(100)).expect("set the cap");
            let local = b.tcp_mbit(0, 1, 4).expect("TCP in a site");
            println!("in-site TCP (unshaped, the baseline): {local:.0} Mbit/s");
            line.push(format!("in_site_mbit={local:.0}"));
        }
        drop(b);
    }
    for (ok, what) in &goals {
        println!("goal {what}: {}", if *ok { "PASS" } else { "FAIL" });
    }
    line.push(format!("goals={}/{}", goals.iter().filter(|g| g.0).count(), goals.len()));
    println!("{}", line.join(" "));
}
