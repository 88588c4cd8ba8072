//! Live migration through libvirt on the test bed, as the controller runs it: a 256 MiB
//! guest (TCG) moved back and forth between the two sites by draining one site, then the
//! other, ≥ 10 times per configuration: idle and memory-dirtying guests, over an unlimited
//! and a 100 Mbit/s WAN. The guest sends a UDP heartbeat every 5 ms to an observer outside
//! it, in site east's namespace; per run: libvirt's downtime, the largest gap between
//! heartbeats the observer saw (against the largest gap of a quiet spell before the runs:
//! the baseline of this machine's jitter), total time, and the controller's estimate made
//! before the run against the actual time, for the declared model (the first run's
//! estimate, before anything is learnt) and for the learnt one (runs 3 onwards). A run
//! aborted by the policy counts as within its deadline; one the executor had to time out
//! does not.
//!
//! Root only. `LMBENCH_RUNS` sets the runs per configuration (default 10). The last line is
//! `LMBENCH {json}`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use straddle_tests::bed::heartbeat::{largest_gap, missing, Observer};
use straddle_tests::bed::two_sites::{need_bed, wait, Case, Spec};
use straddle_tests::controller::explain;

const MIB: f64 = 1048576.0;
const PORT: u16 = 7400;

/// One migration as measured.
#[derive(Debug, Clone)]
struct Run {
    succeeded: bool,
    timed_out: bool,
    predicted_s: f64,
    total_s: f64,
    downtime_ms: f64,
    gap_ms: f64,
    lost: u64,
    passes: u32,
    sent_mib: f64,
}

/// The `p`th percentile (nearest rank) of `v`; NaN when empty.
fn pct(v: &[f64], p: u32) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((s.len() - 1) * p.min(100) as usize + 50) / 100;
    s[i]
}

/// The newest decision id with a migration of `vm`, from `straddle decisions`.
fn newest_move(c: &Case, vm: &str) -> Option<u64> {
    c.cli(&["decisions"])
        .lines()
        .filter(|l| l.trim_end().ends_with(']') && l.contains(&format!("[{vm} ")))
        .filter_map(|l| l.trim_start_matches('#').split_whitespace().next()?.parse().ok())
        .max()
}

/// Moves g0 to the other site by draining its site; waits for the decision's end.
fn one_run(c: &Case, obs: &Observer, g0: IpAddr) -> Run {
    let at = c.placed("g0");
    let (here, there) = if at == "he" { ("east", "west") } else { ("west", "east") };
    let before = newest_move(c, "g0");
    c.cli(&["override", "undrain", there]);
    let start = Instant::now();
    c.cli(&["override", "drain", here]);
    let mut id = None;
    wait(Duration::from_secs(900), "the move of g0 to end", || {
        id = newest_move(c, "g0").filter(|&n| Some(n) != before);
        id.is_some_and(|n| {
            let d = explain(&c.url, "tk", n).unwrap();
            d.migrations.first().is_some_and(|m| m.outcome != 0)
        })
    });
    let end = Instant::now();
    let d = explain(&c.url, "tk", id.unwrap()).unwrap();
    let m = &d.migrations[0];
    let beats = obs.beats(g0, start, end + Duration::from_secs(1));
    let a = m.actual.unwrap_or_default();
    let outcome = straddle_proto::OperationState::try_from(m.outcome).unwrap_or(straddle_proto::OperationState::Unspecified);
    if outcome != straddle_proto::OperationState::OperationSucceeded {
        eprintln!("  not moved ({outcome:?}): {}", d.detail);
    }
    Run {
        succeeded: outcome == straddle_proto::OperationState::OperationSucceeded,
        timed_out: outcome == straddle_proto::OperationState::OperationTimedOut,
        predicted_s: m.predicted_seconds,
        total_s: a.total_seconds,
        downtime_ms: a.downtime_ms,
        gap_ms: largest_gap(&beats).map_or(f64::NAN, |g| g.as_secs_f64() * 1e3),
        lost: missing(&beats),
        passes: a.passes,
        sent_mib: a.transferred_bytes / MIB,
    }
}

struct Summary {
    name: String,
    runs: Vec<Run>,
    quiet_gap_ms: f64,
}

impl Summary {
    fn ok(&self) -> Vec<&Run> {
        self.runs.iter().filter(|r| r.succeeded).collect()
    }

    /// |estimate − actual| / actual of the runs from the third on (once learnt), and of the
    /// first run's estimate (the declared model) over the same runs.
    fn errors(&self) -> (Vec<f64>, Vec<f64>) {
        let declared = self.runs.first().map_or(f64::NAN, |r| r.predicted_s);
        let later: Vec<&Run> = self.runs.iter().skip(2).filter(|r| r.succeeded && r.total_s > 0.0).collect();
        (
            later.iter().map(|r| (r.predicted_s - r.total_s).abs() / r.total_s).collect(),
            later.iter().map(|r| (declared - r.total_s).abs() / r.total_s).collect(),
        )
    }

    fn print(&self) {
        let ok = self.ok();
        let col = |f: fn(&Run) -> f64| ok.iter().map(|r| f(r)).collect::<Vec<f64>>();
        let (down, gap, total) = (col(|r| r.downtime_ms), col(|r| r.gap_ms), col(|r| r.total_s));
        let (learnt, declared) = self.errors();
        println!(
            "{:<22} {:>2}/{:<2} moved  downtime p50 {:>6.0} ms p90 {:>6.0}  gap p50 {:>6.0} ms p90 {:>6.0} (quiet {:>4.0}, ratio {:>5.1})  total p50 {:>5.1} s p90 {:>5.1}  estimate error learnt p50 {:>5.1}% max {:>5.1}% vs declared p50 {:>6.1}%  timed out {}",
            self.name,
            ok.len(),
            self.runs.len(),
            pct(&down, 50),
            pct(&down, 90),
            pct(&gap, 50),
            pct(&gap, 90),
            self.quiet_gap_ms,
            pct(&gap, 90) / self.quiet_gap_ms,
            pct(&total, 50),
            pct(&total, 90),
            pct(&learnt, 50) * 100.0,
            pct(&learnt, 100) * 100.0,
            pct(&declared, 50) * 100.0,
            self.runs.iter().filter(|r| r.timed_out).count()
        );
    }

    fn json(&self) -> String {
        let ok = self.ok();
        let col = |f: fn(&Run) -> f64| ok.iter().map(|r| f(r)).collect::<Vec<f64>>();
        let (learnt, declared) = self.errors();
        let num = |v: f64| if v.is_finite() { format!("{v:.4}") } else { "null".into() };
        format!(
            "{{\"config\":\"{}\",\"runs\":{},\"moved\":{},\"timed_out\":{},\"downtime_ms_p50\":{},\"gap_ms_p90\":{},\"quiet_gap_ms\":{},\"total_s_p50\":{},\"estimate_error_learnt_p50\":{},\"estimate_error_learnt_max\":{},\"estimate_error_declared_p50\":{}}}",
            self.name,
            self.runs.len(),
            ok.len(),
            self.runs.iter().filter(|r| r.timed_out).count(),
            num(pct(&col(|r| r.downtime_ms), 50)),
            num(pct(&col(|r| r.gap_ms), 90)),
            num(self.quiet_gap_ms),
            num(pct(&col(|r| r.total_s), 50)),
            num(pct(&learnt, 50)),
            num(pct(&learnt, 100)),
            num(pct(&declared, 50)),
        )
    }
}

fn main() {
    need_bed();
    let runs: usize = std::env::var("LMBENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10).max(3);
    let g0: IpAddr = "10.77.0.100".parse().unwrap();
    let mut all = Vec::new();
    for (guest, dirty) in [("idle", 0), ("dirtying 8 MiB", 8)] {
        let mut spec = Spec::new("bm", 100, 256).args(&["--cooldown", "0", "--discover-every", "5"]);
        spec.mbit = None;
        spec.dirty_mib = dirty;
        spec.beat = format!("10.77.0.254:{PORT}");
        let mut c = Case::up(&spec);
        let obs = Observer::start(&c.bed, 0, PORT).unwrap();
        for (link, rate, declared) in [("unlimited", None, 10_000), ("100 Mbit/s", Some(100), 100)] {
            c.bed.set_rate(rate).unwrap();
            c.fresh_controller(declared);
            c.cli(&["override", "pin", "g1"]);
            // A job is planned only once its traffic has been seen: light traffic, so it
            // is compute-intensive and only the drains move it.
            let (url, token) = (c.url.clone(), c.job_token.clone());
            let driving = std::thread::spawn(move || {
                straddle_tests::controller::drive_ranks_with(
                    &url,
                    Some(&token),
                    "pair",
                    2,
                    1000,
                    Instant::now() + Duration::from_secs(7200),
                )
            });
            // A quiet spell first: the heartbeat's own jitter on this machine.
            let q0 = Instant::now();
            std::thread::sleep(Duration::from_secs(6));
            let quiet = largest_gap(&obs.beats(g0, q0, Instant::now())).map_or(f64::NAN, |g| g.as_secs_f64() * 1e3);
            let name = format!("{guest}, {link}");
            eprintln!("{name}: quiet gap {quiet:.0} ms");
            let mut s = Summary { name, runs: Vec::new(), quiet_gap_ms: quiet };
            for i in 0..runs {
                let r = one_run(&c, &obs, g0);
                eprintln!(
                    "  run {i}: moved {} in {:.2} s (estimated {:.2} s), downtime {:.0} ms, gap {:.0} ms, {} beats lost, {} passes, {:.1} MiB",
                    r.succeeded, r.total_s, r.predicted_s, r.downtime_ms, r.gap_ms, r.lost, r.passes, r.sent_mib
                );
                s.runs.push(r);
            }
            c.cli(&["override", "undrain", "east"]);
            c.cli(&["override", "undrain", "west"]);
            all.push(s);
            drop(driving);
        }
    }
    println!();
    for s in &all {
        s.print();
    }
    println!("LMBENCH [{}]", all.iter().map(Summary::json).collect::<Vec<_>>().join(","));
}
