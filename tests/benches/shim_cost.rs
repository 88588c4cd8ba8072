//! Benchmark: nanoseconds the shim adds per MPI call on its counting path, for a predefined
//! and a derived datatype, under MPICH and Open MPI. Blocks through the shim and straight to
//! PMPI alternate in one process; each pair gives one difference; we print the median and
//! spread of those differences and the ratio of medians.
//!
//! Run: `cargo bench -p straddle-tests --bench shim_cost` (after `cargo build --release`).
//! The last line is machine-readable.

use straddle_tests::mpi::{Launch, BOTH};
use straddle_tests::paths::{program, Scratch};

/// The sample nearest the quantile of `per_mille` thousandths (rounded half up).
fn quantile(sorted: &[f64], per_mille: usize) -> f64 {
    sorted[((sorted.len() - 1) * per_mille + 500) / 1000]
}

fn main() {
    let pairs: u32 = std::env::var("SHIM_COST_PAIRS").ok().and_then(|v| v.parse().ok()).unwrap_or(41);
    let calls: u64 = std::env::var("SHIM_COST_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let dir = Scratch::new("shim-cost");
    let mut summary = Vec::new();
    println!(
        "{:<8} {:<11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "mpi", "type", "shim ns", "direct ns", "added p10", "added med", "added p90", "ratio"
    );
    for mpi in BOTH {
        let exe = mpi.compile(&program("shim_cost.c"), &dir.0);
        let run = Launch::new(mpi, 1, &exe).arg(pairs).arg(calls).env("STRADDLE_COUNT_PROC_NULL", 1).env("STRADDLE_JOB", "shim-cost").run();
        assert!(run.success, "{}: {}\n{}", mpi.name(), run.stdout, run.stderr);
        assert!(run.stdout.contains("interposed 1"), "{}: the shim did not interpose MPI_Send:\n{}", mpi.name(), run.stdout);
        for ty in ["predefined", "derived"] {
            let mut shim = Vec::new();
            let mut direct = Vec::new();
            let mut added = Vec::new();
            for l in run.stdout.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() == 4 && f[0] == "pair" && f[1] == ty {
                    let (a, b): (f64, f64) = (f[2].parse().unwrap(), f[3].parse().unwrap());
                    shim.push(a);
                    direct.push(b);
                    added.push(a - b);
                }
            }
            assert_eq!(added.len(), pairs as usize, "{}: {ty} pairs", mpi.name());
            for v in [&mut shim, &mut direct, &mut added] {
                v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            }
            let (ms, md) = (quantile(&shim, 500), quantile(&direct, 500));
            let row = (mpi.name(), ty, ms, md, quantile(&added, 100), quantile(&added, 500), quantile(&added, 900), ms / md);
            println!(
                "{:<8} {:<11} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>7.3}",
                row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7
            );
            summary.push(format!("{}_{}_added_ns={:.2} {}_{}_ratio={:.3}", row.0, row.1, row.5, row.0, row.1, row.7));
        }
    }
    println!("shim_cost pairs={pairs} calls_per_block={calls} {}", summary.join(" "));
}
