//! `straddle-bed`: an emulated multi-site deployment on one machine.
//!
//!   straddle-bed up [--prefix sd] [--sites 2] [--nodes 2] [--delay-ms 10] [--rate-mbit 100]
//!   straddle-bed status [--prefix sd]     # nodes and WAN counters
//!   straddle-bed selftest [--delay-ms 10] [--rate-mbit 100]   # on a bed of its own
//!   straddle-bed down [--prefix sd]
//!   straddle-bed relay ...                # internal: the WAN relay process

use std::time::Duration;

use straddle_tests::bed::{self, relay, Bed, BedSpec};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => match args.get(i + 1).map(|v| v.parse::<T>()) {
            Some(Ok(v)) => v,
            _ => fail(&format!("{name} needs a value")),
        },
        None => default,
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("straddle-bed: {msg}");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().cloned() else { fail("usage: straddle-bed up|status|selftest|down [--prefix P] ...") };
    let prefix: String = arg(&args, "--prefix", "sd".to_string());
    match cmd.as_str() {
        "relay" => run_relay(&args),
        "up" => {
            let sites: u32 = arg(&args, "--sites", 2);
            let nodes: u32 = arg(&args, "--nodes", 2);
            let delay: f64 = arg(&args, "--delay-ms", 10.0);
            let rate: u32 = arg(&args, "--rate-mbit", 100);
            let spec =
                BedSpec::new(&prefix, sites, nodes).delay(Duration::from_secs_f64(delay / 1000.0)).rate_mbit((rate > 0).then_some(rate));
            let t = std::time::Instant::now();
            let mut b = Bed::up(spec).unwrap_or_else(|e| fail(&e.to_string()));
            b.keep = true;
            println!("bed {prefix} up in {:.1} s", t.elapsed().as_secs_f64());
            for n in &b.nodes {
                println!(
                    "  {:<10} site {:<3} {:<12} nsenter --net=/run/netns/{} --uts={}",
                    n.name,
                    b.spec.sites[n.site].name,
                    n.ip,
                    n.name,
                    b.uts_path(&n.name).display()
                );
            }
            println!("  launcher remote shell: {}", b.launcher().display());
        }
        "down" => {
            bed::teardown(&prefix);
            let left = bed::leftovers(&prefix);
            if !left.is_empty() {
                fail(&format!("left behind: {left:?}"));
            }
            println!("bed {prefix} down");
        }
        "selftest" => {
            let delay: f64 = arg(&args, "--delay-ms", 10.0);
            let rate: u32 = arg(&args, "--rate-mbit", 100);
            let spec = BedSpec::new("st", 2, 2).delay(Duration::from_secs_f64(delay / 1000.0)).rate_mbit((rate > 0).then_some(rate));
            let b = Bed::up(spec).unwrap_or_else(|e| fail(&e.to_string()));
            let t = bed::selftest::SelfTest::run(&b, 200, 4).unwrap_or_else(|e| fail(&e.to_string()));
            println!("{t}");
            let failed = !t.failures().is_empty();
            drop(b);
            if failed {
                std::process::exit(1);
            }
        }
        "status" => {
            let stats = std::path::PathBuf::from(bed::RUN_DIR).join(&prefix).join("wan.stats");
            match bed::stats::read(&stats) {
                Ok(c) => {
                    for (s, row) in c.iter().enumerate() {
                        for (d, p) in row.iter().enumerate() {
                            if s != d {
                                println!(
                                    "site {s} -> {d}: {} bytes in {} frames sent, {} delivered, {} dropped",
                                    p.sent_bytes, p.sent_frames, p.delivered_bytes, p.dropped_frames
                                );
                            }
                        }
                    }
                }
                Err(e) => fail(&format!("no bed {prefix}: {e}")),
            }
        }
        other => fail(&format!("unknown command {other}")),
    }
}

fn run_relay(args: &[String]) {
    let mut sites = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--site" {
            let v = args.get(i + 1).unwrap_or_else(|| fail("--site needs NAME=NETNS"));
            let (name, ns) = v.split_once('=').unwrap_or_else(|| fail("--site needs NAME=NETNS"));
            sites.push(relay::RelaySite { name: name.into(), netns: ns.into(), tap: "wan".into() });
            i += 1;
        }
        i += 1;
    }
    let delay = Duration::from_micros(arg(args, "--delay-us", 0u64));
    let n = sites.len();
    let cfg = relay::RelayConfig {
        delay: vec![vec![delay; n]; n],
        loss: arg(args, "--loss", 0.0),
        stats: arg(args, "--stats", std::path::PathBuf::new()),
        sites,
    };
    if let Err(e) = relay::run(cfg) {
        fail(&format!("relay: {e}"));
    }
}
