//! Benchmark: site-aware collectives against the library's own on the test bed. Eight
//! ranks, one per node, over two sites 10 ms and 100 Mbit/s apart, in four layouts
//! (interleaved, site blocks, 3+5, 1+7); every blocking collective at 8 B, 64 KiB and 4 MiB
//! (`tests/programs/collbench.c` defines what size means per operation); the library's
//! algorithm pinned by its own variables (`model::mpich_pin`). One launch per layout
//! and size, each on a bed built afresh, the shim preloaded with STRADDLE_REGROUP=1: each case
//! alternates the library's own call (through PMPI, which the shim does not see) and the same
//! call through the shim, in runs of calls (library, shim, shim, library, ..., six runs each;
//! twelve where either mode's calls spread widely; where the shim passes through, up to
//! twenty-four, or more while the case's runs so far took under 40 s, until the modes' ratio
//! is known to about 1.7%; a case the machine disturbed, its calls spread over 35% of their
//! median in either mode, measured again from its first run up to twice, the last
//! measurement kept and the row marked `retaken N`; the first call of each run
//! untimed, so no timed call inherits the other mode's connections), so both see the same
//! machine and drift. Per case
//! and mode: time per call (`trimmed_mean` of the calls that started on time), payload bytes
//! that crossed the WAN each way per call (the relay's counters, framing and the program's
//! own hand-out subtracted), next
//! to the model's prediction for both algorithms, and the goals as PASS/FAIL. The model's
//! path figures come from the same launch: before its cases, single messages of 8 B, 64 KiB
//! and 4 MiB timed one way across (a size whose median sits over 10% above its least, the
//! machine's doing on a shaped path, timed again up to twice; the launch's paths line says
//! so and the summary counts such launches) and inside a site; after them, four 4 MiB
//! messages each way across at once.
//!
//! Run (root; builds and tears down its own bed): `cargo bench -p straddle-tests --bench
//! collectives_bed` after `cargo build --release --workspace`: everything, about 95 minutes.
//! `-- --quick` (or COLLBENCH_QUICK=1): a representative slice in under ten minutes, the
//! broadcast, allreduce and gather over interleaved sites at 64 KiB and 4 MiB and over 1+7
//! at 4 MiB (`QUICK_OPS`, `QUICK_LAUNCHES`; COLLBENCH_OPS, or COLLBENCH_SIZES and
//! COLLBENCH_LAYOUTS, override them). Knobs: COLLBENCH_OPS=bcast,
//! allreduce  COLLBENCH_SIZES=8,65536  COLLBENCH_LAYOUTS=blocks,1+7  COLLBENCH_SECS=1.5 (timed
//! work per case and mode)  COLLBENCH_MPI=mpich (only MPICH has pins and a model so far)
//! COLLBENCH_RAW=1 (print collbench's own lines)  COLLBENCH_UCX_RNDV_THRESH=auto (UCX's
//! rendezvous back; the default, inf, sends every size eagerly)  COLLBENCH_SHIM=path (another
//! build of the shim's library to preload)  COLLBENCH_MORE_FLOWS='0>3;0>3,3>0' (more sets of
//! 4 MiB messages at once to time after the calibration, `;` between sets, printed as `flows
//! set=2…` with COLLBENCH_RAW=1, not used by the model)  COLLBENCH_BOTH_LIB=1 (an A/A run: the
//! shim's mode calls the library too, so the ratios show what the schedule and noise alone
//! do; regrouped rows then fail their goals, as they should). The last line is machine-readable.
//! COLLBENCH_REPLAY=log (no bed: score the measurements of an earlier run's COLLBENCH_RAW=1
//! output with this tree's model). Column "sa": whether the shim regroups that row (`model::shim_regroups`, the shim's own
//! `regroup::pays`); where it does not, both modes run the library's algorithm and the model
//! of both is one. Note `lib first-come T`: where one sender has long messages across on
//! several connections at once, the library's time had the WAN carried them whole in the
//! order posted rather than in turns (the model); shown where the two differ by over 5%,
//! not scored (`model::cost_served`).

mod model;

use std::time::{Duration, Instant};

use model::{
    cost, cost_served, layouts, library, mpich_env, mpich_pin, regrouped, shim_regroups, sites_of, Cost, Host, Link, Net, Op, Regroup,
};
use straddle_tests::bed::launch::BedLaunch;
use straddle_tests::bed::{self, Bed, BedSpec, SiteSpec};
use straddle_tests::mpi::Mpi;
use straddle_tests::paths::{program, shim, Scratch};

/// Ethernet (14) + IPv4 (20) + TCP (20) + timestamp option (12) bytes of every frame the
/// relay counts: payload = bytes - frames x this.
const FRAME_OVERHEAD: u64 = 66;
const DELAY_MS: u64 = 10;
const RATE_MBIT: u32 = 100;
/// Messages each way at once when calibrating the WAN's rate with data both ways.
const FLOWS: usize = 4;

/// The quick slice: these operations in these launches (layout, size). Regrouped rows with
/// the 2x goal, rows the shim passes through (the gathers), the bytes goal's rows (every
/// 4 MiB row here) and the model's, over the layout where the library crosses most and
/// the most uneven one.
const QUICK_OPS: &str = "bcast,allreduce,gather";
const QUICK_LAUNCHES: [(&str, u64); 3] = [("interleaved", 65536), ("interleaved", 4194304), ("1+7", 4194304)];

fn knob(name: &str, default: &str) -> Vec<String> {
    std::env::var(name).unwrap_or_else(|_| default.into()).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

use straddle_tests::paths::idle_sleep;

/// One operation and size of a launch, one mode (library through PMPI, or the shim),
/// reduced to per-call figures over its windows.
#[derive(Debug, Clone, Default)]
struct Measured {
    /// Per call: the trimmed mean of the calls that started on time.
    time_s: f64,
    iters: u64,
    /// Calls that started late (the previous call overran its slot), not in `time_s`.
    late: usize,
    overruns: u64,
    /// How often collbench measured the case again since the machine disturbed it.
    retakes: u64,
    errors: u64,
    /// Payload bytes per call, site 0 to 1 and back.
    ab: f64,
    ba: f64,
}

fn field(line: &str, key: &str) -> Option<f64> {
    text(line, key).and_then(|v| v.parse().ok())
}

/// A count collbench prints as a whole number.
fn count(line: &str, key: &str) -> Option<u64> {
    text(line, key).and_then(|v| v.parse().ok())
}

fn text<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

/// Payload of a counter pair: bytes minus the framing of every frame.
fn payload(line: &str, dir: &str) -> f64 {
    let bytes = field(line, &format!("{dir}_bytes")).unwrap_or(0.0);
    let frames = field(line, &format!("{dir}_frames")).unwrap_or(0.0);
    bytes - frames * FRAME_OVERHEAD as f64
}

/// The mean of the middle 60% (a fifth cut from each end). Not the median: calls whose
/// crossing flows lose packets fall in two groups some 15% apart, and where each holds
/// about half the calls the median sits in one group or the other by chance (a 3+5
/// all-to-all of the library's algorithm in both modes: medians 0.90-0.96x in three runs,
/// trimmed means 0.96-0.98x). Cutting a fifth from each end keeps rare stalls (BBR's
/// PROBE_RTT on the leaders' connection, +50%) out.
fn trimmed_mean(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let cut = v.len() / 5;
    let mid = &v[cut..v.len() - cut];
    if mid.is_empty() {
        f64::NAN
    } else {
        mid.iter().sum::<f64>() / mid.len() as f64
    }
}

/// The figures of `op` at `size` in `mode` ("lib" or "shim") from a launch's output: every
/// window's calls that started on time pooled (trimmed mean), its counters less any hand-out's,
/// per call.
fn measured(stdout: &str, op: &str, size: u64, mode: &str) -> Option<Measured> {
    let mine = |l: &&str| text(l, "op") == Some(op) && field(l, "bytes") == Some(size as f64) && text(l, "mode") == Some(mode);
    let null = stdout.lines().find(|l| l.starts_with("null "));
    let (n_ab, n_ba) = null.map(|l| (payload(l, "ab"), payload(l, "ba"))).unwrap_or((0.0, 0.0));
    let windows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("window ")).filter(mine).collect();
    if windows.is_empty() {
        return None;
    }
    // A comma list of microseconds (`times_us`, `late_us`) of every window, in seconds.
    let list = |key: &str| -> Vec<f64> {
        windows.iter().flat_map(|l| text(l, key).unwrap_or("").split(',').filter_map(|t| t.parse::<f64>().ok())).map(|t| t / 1e6).collect()
    };
    let times = list("times_us");
    let sum = |f: &dyn Fn(&str) -> f64| windows.iter().map(|l| f(l)).sum::<f64>();
    // Every timed call's counters are summed, late or not.
    let counted = |key: &str| windows.iter().filter_map(|l| count(l, key)).sum::<u64>();
    let iters = counted("iters").max(1);
    // Hand-outs inside the counted windows (none where every slot is counted alone).
    let nulls = sum(&|l| field(l, "nulls").unwrap_or(1.0));
    Some(Measured {
        time_s: trimmed_mean(times),
        iters,
        late: list("late_us").len(),
        overruns: counted("overruns"),
        retakes: counted("retakes"),
        errors: count(stdout.lines().filter(|l| l.starts_with("check ")).find(mine)?, "errors")?,
        ab: ((sum(&|l| payload(l, "ab")) - n_ab * nulls) / iters as f64).max(0.0),
        ba: ((sum(&|l| payload(l, "ba")) - n_ba * nulls) / iters as f64).max(0.0),
    })
}

/// The launch's single-message times (`link` lines) from rank `a` to `b`: 8 B, 64 KiB,
/// 4 MiB, one way, in seconds.
fn link_times(stdout: &str, a: usize, b: usize) -> Option<Link> {
    let t = |bytes: f64| {
        stdout
            .lines()
            .filter(|l| l.starts_with("link "))
            .find(|l| field(l, "from") == Some(a as f64) && field(l, "to") == Some(b as f64) && field(l, "bytes") == Some(bytes))
            .and_then(|l| field(l, "oneway_us"))
            .map(|us| us / 1e6)
    };
    Link::calibrated(t(8.0)?, t(65536.0)?, t(4194304.0)?)
}

/// The model's path figures in one line.
fn describe(what: &str, net: &Net) -> String {
    let l = |k: &Link| {
        format!(
            "{:.2} ms (8 B) / {:.2} ms (64 KiB on) + bytes / {:.1} MB/s ({:.1} MB/s with data both ways)",
            k.small * 1e3,
            k.large * 1e3,
            k.rate / 1e6,
            k.busy / 1e6
        )
    };
    format!(
        "model paths {what}: WAN {}; in a site {}; all in-site messages together {:.1} MB/s (1 MiB each) / {:.1} MB/s (4 MiB each)",
        l(&net.wan),
        l(&net.lan),
        net.host.small / 1e6,
        net.host.large / 1e6
    )
}

fn human(b: f64) -> String {
    if b >= 1048576.0 {
        format!("{:.2}M", b / 1048576.0)
    } else if b >= 1024.0 {
        format!("{:.1}K", b / 1024.0)
    } else {
        format!("{b:.0}")
    }
}

fn verdict(applies: bool, ok: bool) -> &'static str {
    match (applies, ok) {
        (false, _) => "-",
        (true, true) => "PASS",
        (true, false) => "FAIL",
    }
}

#[derive(Default)]
struct Tally {
    pass: u32,
    of: u32,
}

impl Tally {
    fn add(&mut self, applies: bool, ok: bool) {
        if applies {
            self.of += 1;
            self.pass += ok as u32;
        }
    }
}

/// The program's output of one launch (layout `lname`, `size`) in a log of an earlier run
/// made with COLLBENCH_RAW=1: the lines after `{lname} {size}:` up to the harness's own
/// `model paths` line for it.
fn logged_launch(log: &str, lname: &str, size: u64) -> Option<String> {
    let head = format!("{lname} {size}:");
    let mut lines = log.lines().skip_while(|l| *l != head);
    lines.next()?;
    Some(lines.take_while(|l| !l.starts_with("model paths ")).collect::<Vec<_>>().join("\n"))
}

fn main() {
    // COLLBENCH_REPLAY=log: score an earlier run's measurements (its COLLBENCH_RAW=1 output)
    // with this tree's model, without a bed.
    let started = Instant::now();
    let replay = std::env::var_os("COLLBENCH_REPLAY")
        .map(|p| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("COLLBENCH_REPLAY={}: {e}", p.to_string_lossy())));
    if replay.is_none() {
        if let Err(why) = bed::can_run() {
            println!("collectives_bed skipped: {why}");
            return;
        }
    }
    let mpis: Vec<Mpi> = knob("COLLBENCH_MPI", "mpich")
        .iter()
        .filter_map(|m| match m.as_str() {
            "mpich" => Some(Mpi::Mpich),
            _ => {
                eprintln!("COLLBENCH_MPI={m}: only mpich has pinned algorithms and a model so far; skipped");
                None
            }
        })
        .collect();
    let quick = std::env::args().any(|a| a == "--quick") || std::env::var_os("COLLBENCH_QUICK").is_some();
    // The quick slice's launches, unless sizes or layouts are asked for.
    let quick_launches = quick && std::env::var_os("COLLBENCH_SIZES").is_none() && std::env::var_os("COLLBENCH_LAYOUTS").is_none();
    let all_ops = Op::ALL.map(|o| o.name()).join(",");
    let ops_default = if quick { QUICK_OPS } else { all_ops.as_str() };
    if quick {
        println!("quick slice: {QUICK_OPS} in launches {QUICK_LAUNCHES:?} (COLLBENCH_OPS, or _SIZES and _LAYOUTS, override)");
    }
    let ops: Vec<Op> = knob("COLLBENCH_OPS", ops_default)
        .iter()
        .map(|o| Op::parse(o).unwrap_or_else(|| panic!("COLLBENCH_OPS: unknown operation {o}")))
        .collect();
    let sizes: Vec<u64> = knob("COLLBENCH_SIZES", "8,65536,4194304").iter().map(|s| s.parse().expect("COLLBENCH_SIZES")).collect();
    let wanted = knob("COLLBENCH_LAYOUTS", "interleaved,blocks,3+5,1+7");
    let secs: f64 = std::env::var("COLLBENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(1.5);
    let layouts: Vec<(&str, Vec<usize>)> = layouts().into_iter().filter(|(n, _)| wanted.iter().any(|w| w == n)).collect();
    let nominal = Net::bed(DELAY_MS as f64, RATE_MBIT as f64);
    let rndv = std::env::var("COLLBENCH_UCX_RNDV_THRESH").unwrap_or_else(|_| "inf".into());
    let both_lib = std::env::var_os("COLLBENCH_BOTH_LIB").is_some();
    if both_lib {
        println!("A/A run (COLLBENCH_BOTH_LIB): both modes call the library");
    }

    let dir = Scratch::new("collbench");
    let idle = idle_sleep();
    // Site a holds at most 4 ranks (interleaved, blocks), site b up to 7 (1+7).
    let spec = BedSpec {
        sites: vec![SiteSpec { name: "a".into(), nodes: 4 }, SiteSpec { name: "b".into(), nodes: 7 }],
        ..BedSpec::new("cb", 2, 4).delay(Duration::from_millis(DELAY_MS)).rate_mbit(Some(RATE_MBIT))
    };
    // A fresh bed for every launch (`fresh_bed`): launches share no state of the bed.
    let mut b: Option<Bed> = None;
    let mut launches = 0usize;
    let fresh_bed = |b: &mut Option<Bed>| {
        drop(b.take());
        let t = Instant::now();
        *b = Some(Bed::up(spec.clone()).expect("bed up"));
        t.elapsed().as_secs_f64()
    };
    match &replay {
        Some(_) => println!("replay: measurements from COLLBENCH_REPLAY, model from this tree"),
        None => println!(
            "bed: 2 sites (4 + 7 nodes), {DELAY_MS} ms one way, {RATE_MBIT} Mbit/s, built afresh for every launch (up in {:.1} s)",
            fresh_bed(&mut b)
        ),
    }
    println!("{}", describe("nominal", &nominal));

    let mut summary = Vec::new();
    for mpi in mpis {
        // The program, unless replaying.
        let exe = replay.is_none().then(|| mpi.compile(&program("collbench.c"), &dir.0));
        // COLLBENCH_SHIM: another build of the shim (an instrumented copy, say).
        let shim_lib = std::env::var_os("COLLBENCH_SHIM").map(std::path::PathBuf::from).unwrap_or_else(|| shim(mpi));
        let (mut speed, mut slower, mut bytes, mut model, mut wrong) =
            (Tally::default(), Tally::default(), Tally::default(), Tally::default(), 0u64);
        let mut speedups = Vec::new();
        // Cases collbench measured again (the machine disturbed them).
        let mut retaken = 0u32;
        // Launches whose single messages across collbench timed again.
        let mut links_retaken = 0u32;
        println!(
            "\n{:<6} {:<11} {:<20} {:>7} {:<22} {:>2} {:>5} {:>17} {:>17} {:>13} {:>23} {:>23}  goals: 2x / >=0.95 / bytes / model",
            "mpi",
            "layout",
            "op",
            "size",
            "library algorithm",
            "sa",
            "hops",
            "lib ms meas/mod",
            "reg ms meas/mod",
            "speedup m/mod",
            "lib a>b b>a (model a>b)",
            "reg a>b b>a (model a>b)"
        );
        for (lname, site) in &layouts {
            let map: String = site.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(",");
            // Rank r on the next free node of its site.
            let mut next = [0usize, 4];
            let placement: Vec<usize> = site
                .iter()
                .map(|&s| {
                    next[s] += 1;
                    next[s] - 1
                })
                .collect();
            for (si, &size) in sizes.iter().enumerate() {
                let these: Vec<Op> = ops.iter().cloned().filter(|&o| o != Op::Barrier || si == 0).collect();
                if these.is_empty() || (quick_launches && !QUICK_LAUNCHES.contains(&(*lname, size))) {
                    continue;
                }
                let names: Vec<&str> = these.iter().map(|o| o.name()).collect();
                // Single messages timed before the cases: across (rank 0 to the other site's
                // first rank) and inside the larger site (its first two ranks).
                let sites = sites_of(site);
                let wan_pair = (0, sites[1][0]);
                let big = sites.iter().max_by_key(|m| m.len()).unwrap();
                let lan_pair = (big[0], big[1]);
                // Four 4 MiB messages each way across at once, between the sites' ranks.
                let flows: Vec<(usize, usize)> = (0..FLOWS)
                    .flat_map(|j| {
                        let (x, y) = (sites[1][j % sites[1].len()], sites[0][j % sites[0].len()]);
                        [(x, y), (y, x)]
                    })
                    .collect();
                // Every rank at once sends 4 MiB to the next rank of its site (a ring per
                // site): what in-site data the bed's CPUs move together.
                let host: Vec<(usize, usize)> =
                    sites.iter().filter(|m| m.len() > 1).flat_map(|m| (0..m.len()).map(move |i| (m[i], m[(i + 1) % m.len()]))).collect();
                let pairs = |v: &[(usize, usize)]| v.iter().map(|(a, b)| format!("{a}>{b}")).collect::<Vec<_>>().join(",");
                let stdout = if let Some(log) = &replay {
                    match logged_launch(log, lname, size) {
                        Some(out) => out,
                        None => {
                            println!("{} {lname} size {size}: not in the replayed log", mpi.name());
                            continue;
                        }
                    }
                } else {
                    // Once a full run had carried about 40 minutes of launches on one bed,
                    // its later 4 MiB all-to-alls of the library's algorithm in both modes
                    // came out 0.93-0.98x in five runs of five, while the same launch on a
                    // new bed came out 0.99x (with or without the shim, with or without the
                    // launch's other cases before them). Whatever the bed carried over
                    // (the relay's state, the nodes' TCP metrics), no launch inherits it.
                    if launches > 0 {
                        fresh_bed(&mut b);
                    }
                    launches += 1;
                    let b = b.as_ref().expect("a bed unless replaying");
                    let exe = exe.as_ref().expect("a program unless replaying");
                    let mut l = BedLaunch::new(b, mpi, placement.clone(), exe)
                        .arg(names.join(","))
                        .arg(size)
                        .arg(secs)
                        .env("LD_PRELOAD", format!("{} {}", shim_lib.display(), idle.display()))
                        .env("STRADDLE_REGROUP", 1)
                        .env("STRADDLE_SITE_MAP", &map)
                        .env("STRADDLE_VERBOSE", 1)
                        .env("STRADDLE_JOB", "collbench")
                        .env("COLLBENCH_STATS", b.dir.join("wan.stats").display())
                        .env("COLLBENCH_LINKS", format!("{}>{}:fixed,{}>{}", wan_pair.0, wan_pair.1, lan_pair.0, lan_pair.1))
                        .env(
                            "COLLBENCH_FLOWS",
                            format!(
                                "{};{}{}",
                                pairs(&flows),
                                pairs(&host),
                                std::env::var("COLLBENCH_MORE_FLOWS").map(|v| format!(";{v}")).unwrap_or_default()
                            ),
                        );
                    // Where the shim passes through, both modes run the library's algorithm:
                    // the ratio is 1 but for noise, and the program samples those until its
                    // standard error leaves the 0.95 bound well clear (decided before
                    // measuring, from the shim's own rule).
                    let tight: Vec<&str> = these
                        .iter()
                        .filter(|&&o| !shim_regroups(o, site, 0, if o == Op::Barrier { 0.0 } else { size as f64 }))
                        .map(|o| o.name())
                        .collect();
                    l = l.env("COLLBENCH_TIGHT", tight.join(","));
                    // UCX's rendezvous over TCP costs several extra WAN trips per message
                    // (40-60 ms at 10 ms); eager for every size, for both modes alike.
                    l = l.env("UCX_RNDV_THRESH", &rndv);
                    if both_lib {
                        l = l.env("COLLBENCH_BOTH_LIB", 1);
                    }
                    for (k, v) in mpich_env(size) {
                        l = l.env(&k, v);
                    }
                    // Calls of up to a few seconds (4 MiB, library, interleaved): room for
                    // calibration and up to four halves of six untimed and at least twelve
                    // timed calls per mode; the links. (A guard against a hung launch.)
                    let per_op = if size >= 1 << 20 { 400 } else { 80 };
                    l.deadline = Duration::from_secs(90 + per_op * these.len() as u64);
                    let run = l.run();
                    if !run.success {
                        println!(
                            "{} {lname} size {size}: launch failed after {:.0} s (timed out: {})\n{}\n{}",
                            mpi.name(),
                            run.elapsed.as_secs_f64(),
                            run.timed_out,
                            run.stdout.trim(),
                            run.stderr.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
                        );
                    }
                    if std::env::var_os("COLLBENCH_RAW").is_some() {
                        println!("{lname} {size}:\n{}", run.stdout.trim());
                    }
                    if !run.stderr.contains("site-aware collectives") {
                        println!("{} {lname}: the shim never said it regrouped (STRADDLE_VERBOSE)", mpi.name());
                    }
                    run.stdout
                };
                // The model's path figures from this launch's single messages.
                let net = match (link_times(&stdout, wan_pair.0, wan_pair.1), link_times(&stdout, lan_pair.0, lan_pair.1)) {
                    (Some(wan), Some(lan)) => {
                        let all = |set: usize, key: &str| {
                            stdout.lines().find(|l| l.starts_with(&format!("flows set={set} "))).and_then(|l| field(l, key))
                        };
                        // Across, the median (losses are part of what several flows get);
                        // inside the sites, the least of five (what the cores can move; a
                        // slower figure is interference).
                        let wan = all(0, "all_us").map(|us| wan.with_flows(FLOWS, 4194304.0, us / 1e6)).unwrap_or(wan);
                        // Up to 1 MiB unlimited: rings of 1 MiB messages in every site at
                        // once ran at the rate of one pair inside the cases (regrouped 4 MiB
                        // allgather, interleaved: 266-282 ms measured, 272 modelled so)
                        // though a calibration ring of them took 3-5 times one alone.
                        let net = Net { wan, lan, host: Host::UNLIMITED };
                        all(1, "min_us").map(|us| net.with_host_flows(&host, site, 4194304.0, us / 1e6)).unwrap_or(net)
                    }
                    _ => {
                        println!("{} {lname} {size}: no single-message times; the model uses the bed's nominal figures", mpi.name());
                        nominal
                    }
                };
                let link_retakes: f64 = stdout.lines().filter(|l| l.starts_with("link ")).filter_map(|l| field(l, "retaken")).sum();
                links_retaken += u32::from(link_retakes > 0.0);
                println!(
                    "{}{}",
                    describe(&format!("{} {lname} {}", mpi.name(), human(size as f64)), &net),
                    if link_retakes > 0.0 { format!(" (single messages across timed again {link_retakes} times)") } else { String::new() }
                );
                for &op in &these {
                    let sz = if op == Op::Barrier { 0 } else { size };
                    let (Some(lib), Some(reg)) = (measured(&stdout, op.name(), sz, "lib"), measured(&stdout, op.name(), sz, "shim")) else {
                        println!(
                            "{:<6} {lname:<11} {:<20} {:>7} missing (see the launch output above)",
                            mpi.name(),
                            op.name(),
                            human(sz as f64)
                        );
                        continue;
                    };
                    let alg = mpich_pin(op, sz).0;
                    let sa = shim_regroups(op, site, 0, sz as f64);
                    let lib_plan = library(op, alg, site.len(), 0, sz as f64);
                    let ml: Cost = cost(&lib_plan, site, &net);
                    // The library's time had the WAN served its messages whole, first come
                    // first served (`cost_served`): shown where it differs, not scored.
                    let first_come = cost_served(&lib_plan, site, &net, f64::INFINITY).time;
                    let mr: Cost = cost(regrouped(op, site, 0, sz as f64, Regroup::Pays), site, &net);
                    let floor: Cost = cost(regrouped(op, site, 0, sz as f64, Regroup::Floor), site, &net);
                    let (s_meas, s_model) = (lib.time_s / reg.time_s, ml.time / mr.time);
                    speedups.push(s_meas);
                    let g_speed = (s_model >= 2.5, s_meas >= 2.0);
                    let g_slower = (true, s_meas >= 0.95);
                    let copy_ops = matches!(op, Op::Bcast | Op::Gather | Op::Gatherv | Op::Allgather | Op::Allgatherv | Op::Allreduce);
                    let g_bytes = (copy_ops && sz >= 1 << 20, reg.ab.max(reg.ba) <= 1.1 * floor.ab.max(floor.ba));
                    let near = |m: f64, p: f64| (m / p - 1.0).abs() <= 0.2;
                    let g_model = (true, near(lib.time_s, ml.time) && near(reg.time_s, mr.time));
                    speed.add(g_speed.0, g_speed.1);
                    slower.add(g_slower.0, g_slower.1);
                    bytes.add(g_bytes.0, g_bytes.1);
                    model.add(g_model.0, g_model.1);
                    wrong += lib.errors + reg.errors;
                    // Both modes' windows carry the case's count.
                    retaken += u32::from(reg.retakes > 0);
                    let mut notes = String::new();
                    if lib.errors + reg.errors > 0 {
                        notes.push_str(&format!(" WRONG RESULTS lib {} reg {}", lib.errors, reg.errors));
                    }
                    if lib.overruns + reg.overruns > 0 {
                        notes.push_str(&format!(" overruns {}+{} of {}+{}", lib.overruns, reg.overruns, lib.iters, reg.iters));
                    }
                    if (first_come / ml.time - 1.0).abs() > 0.05 {
                        notes.push_str(&format!(" lib first-come {:.1}", first_come * 1e3));
                    }
                    if reg.retakes > 0 {
                        notes.push_str(&format!(" retaken {}", reg.retakes));
                    }
                    if lib.late + reg.late > 0 {
                        notes.push_str(&format!(" late (left out) {}+{}", lib.late, reg.late));
                    }
                    println!(
                        "{:<6} {lname:<11} {:<20} {:>7} {:<22} {:>2} {:>2}/{:<2} {:>8.1}/{:<8.1} {:>8.1}/{:<8.1} {:>6.2}/{:<6.2} {:>7} {:>7} ({:>7}) {:>7} {:>7} ({:>7})  {} / {} / {} / {}{notes}",
                        mpi.name(),
                        op.name(),
                        human(sz as f64),
                        alg.cvar(),
                        if sa { "y" } else { "n" },
                        ml.wan_hops,
                        mr.wan_hops,
                        lib.time_s * 1e3,
                        ml.time * 1e3,
                        reg.time_s * 1e3,
                        mr.time * 1e3,
                        s_meas,
                        s_model,
                        human(lib.ab),
                        human(lib.ba),
                        human(ml.ab),
                        human(reg.ab),
                        human(reg.ba),
                        human(mr.ab),
                        verdict(g_speed.0, g_speed.1),
                        verdict(g_slower.0, g_slower.1),
                        verdict(g_bytes.0, g_bytes.1),
                        verdict(g_model.0, g_model.1),
                    );
                }
            }
        }
        speedups.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let median = speedups.get(speedups.len() / 2).cloned().unwrap_or(f64::NAN);
        summary.push(format!(
            "{m}_cases={} {m}_median_speedup={median:.2} {m}_speed2x={}/{} {m}_not_slower={}/{} {m}_bytes={}/{} {m}_model={}/{} {m}_wrong_elements={wrong} {m}_retaken={retaken} {m}_links_retaken={links_retaken}",
            speedups.len(),
            speed.pass,
            speed.of,
            slower.pass,
            slower.of,
            bytes.pass,
            bytes.of,
            model.pass,
            model.of,
            m = mpi.name()
        ));
    }
    drop(b);
    println!("\n{launches} launches in {:.1} min", started.elapsed().as_secs_f64() / 60.0);
    println!("collectives_bed delay_ms={DELAY_MS} rate_mbit={RATE_MBIT} secs_per_case={secs} {}", summary.join(" "));
}
