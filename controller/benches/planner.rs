//! Benchmark: replanning 10,000 VMs / 1,000 jobs / 20 sites. Goal: ≤ 50 ms, with a
//! predicted total slowdown within 5% of the same planner given 30 s of local search, and
//! better than greedy first-fit. Run: `cargo bench -p straddle-controller --bench planner`
//! (`PLANNER_BUDGET_SECS` shortens the 30 s comparison). The last line is machine-readable.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ndarray::Array2;
use straddle_model::classify::{Class, CollectiveUse, JobProfile};
use straddle_model::collective::CollectiveOp;
use straddle_model::migration_learnt::Learnt;
use straddle_model::plan::{greedy_first_fit, plan, plan_searching, PlanConfig, PlanInput, PlanJob};
use straddle_model::topology::{HostConfig, LinkConfig, SiteConfig, Topology, TopologyConfig, VmConfig};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).expect("below n fits")
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const SITES: usize = 20;
const HOSTS_PER_SITE: usize = 25;
const CAPACITY: u32 = 24;
const JOBS: usize = 1000;
const VMS_PER_JOB: usize = 10;

fn instance(seed: u64) -> (Topology, Vec<PlanJob>) {
    let mut r = Rng(seed);
    let sites: Vec<SiteConfig> = (0..SITES)
        .map(|s| SiteConfig {
            name: format!("s{s}"),
            hosts: (0..HOSTS_PER_SITE)
                .map(|h| HostConfig {
                    name: format!("s{s}h{h}"),
                    vm_capacity: CAPACITY,
                    memory_gib: 256.0,
                    libvirt_uri: String::new(),
                    peer_uri: String::new(),
                    migration_address: String::new(),
                })
                .collect(),
            max_concurrent_migrations: 4,
        })
        .collect();
    let mut links = Vec::new();
    for a in 0..SITES {
        for b in a + 1..SITES {
            links.push(LinkConfig {
                between: [format!("s{a}"), format!("s{b}")],
                bandwidth_mbit: [1000.0, 2500.0, 10000.0][r.index(3)],
                latency_ms: 2.0 + r.below(28) as f64,
                max_concurrent_migrations: 2,
            });
        }
    }
    // Place each job on one to three sites, host by host, within capacity.
    let mut load = vec![0u32; SITES * HOSTS_PER_SITE];
    let mut vms = Vec::new();
    let mut jobs = Vec::new();
    for j in 0..JOBS {
        let spread = 1 + r.index(3);
        let home: Vec<usize> = (0..spread).map(|_| r.index(SITES)).collect();
        let mut rank_vm = Vec::new();
        for k in 0..VMS_PER_JOB {
            let s = home[k % spread];
            let mut h = s * HOSTS_PER_SITE + r.index(HOSTS_PER_SITE);
            let mut tries = 0;
            while load[h] >= CAPACITY {
                h = (h + 1) % load.len();
                tries += 1;
                assert!(tries < load.len(), "instance over capacity");
            }
            load[h] += 1;
            rank_vm.push(vms.len());
            vms.push(VmConfig {
                name: format!("j{j}v{k}"),
                host: format!("s{}h{}", h / HOSTS_PER_SITE, h % HOSTS_PER_SITE),
                memory_mib: [1024.0, 2048.0, 4096.0, 8192.0][r.index(4)],
                dirty_mib_per_s: r.below(20) as f64,
                cluster: format!("c{j}"),
                node: 0,
            });
        }
        let network = r.unit() < 0.4;
        let rate = if network { (5.0 + r.unit() * 45.0) * 1e6 } else { r.unit() * 0.5e6 };
        let n = VMS_PER_JOB;
        let mut bytes = Array2::zeros((n, n));
        let mut messages = Array2::zeros((n, n));
        for i in 0..n {
            for d in [1, n - 1] {
                bytes[[i, (i + d) % n]] = rate / 2.0;
                messages[[i, (i + d) % n]] = rate / 2.0 / 65536.0;
            }
        }
        let collectives = vec![CollectiveUse {
            members: (0..n).collect(),
            op: CollectiveOp::Allreduce,
            root: 0,
            site_aware: false,
            calls_per_s: 10.0,
            bytes_per_call: 8.0,
        }];
        jobs.push(PlanJob {
            id: format!("j{j}"),
            class: if network { Class::Network } else { Class::Compute },
            rank_vm,
            profile: JobProfile::from_dense(&bytes, &messages, collectives),
        });
    }
    let topo = Topology::from_config(&TopologyConfig { sites, links, vms, clusters: vec![] }).expect("generated topology");
    (topo, jobs)
}

fn main() {
    let budget_secs: f64 = std::env::var("PLANNER_BUDGET_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30.0);
    let (topo, jobs) = instance(0x5eed);
    let vm_host: Vec<usize> = topo.vms.iter().map(|v| v.host).collect();
    let none = HashSet::new();
    let input = PlanInput {
        topo: &topo,
        vm_host: &vm_host,
        jobs: &jobs,
        pinned: &none,
        drained: &none,
        cooling: &none,
        learnt: &Learnt::default(),
        host_cpu: &[],
    };
    let cfg = PlanConfig::default();

    let mut times = Vec::new();
    let mut fast = None;
    for _ in 0..7 {
        let t = Instant::now();
        let p = plan(&input, &cfg);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        fast = Some(p);
    }
    times.sort_by(f64::total_cmp);
    let fast = fast.unwrap();
    let t = Instant::now();
    let ff = greedy_first_fit(&input, &cfg);
    let ff_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let budget = Duration::from_secs_f64(budget_secs);
    let long = plan_searching(&input, &cfg, &mut || t.elapsed() >= budget);
    let long_s = t.elapsed().as_secs_f64();

    println!(
        "instance: {} sites, {} hosts, {} VMs, {} jobs ({} network-intensive)",
        SITES,
        topo.hosts.len(),
        topo.vms.len(),
        jobs.len(),
        jobs.iter().filter(|j| j.class == Class::Network).count()
    );
    println!("plan time ms: min {:.1} median {:.1} max {:.1} (goal <= 50)", times[0], times[times.len() / 2], times[times.len() - 1]);
    println!("objective (job-seconds over a {:.0} s horizon, lower is better):", cfg.horizon_s);
    println!("  before                  {:>12.1}", fast.objective_before);
    println!(
        "  planner (fast)          {:>12.1}  {} migrations in {} waves",
        fast.objective_after,
        fast.moves.len(),
        fast.moves.iter().map(|m| m.wave).max().map_or(0, |w| w + 1)
    );
    println!("  planner ({budget_secs:.0} s local search) {:>12.1}  ({long_s:.1} s)", long.objective_after);
    println!("  greedy first-fit        {:>12.1}  ({ff_ms:.1} ms)", ff.objective_after);
    let vs_long = fast.objective_after / long.objective_after;
    let vs_ff = fast.objective_after / ff.objective_after;
    println!(
        "planner_bench median_ms={:.2} fast_over_long={:.4} fast_over_first_fit={:.4} goal_time={} goal_quality={} beats_first_fit={}",
        times[times.len() / 2],
        vs_long,
        vs_ff,
        times[times.len() / 2] <= 50.0,
        vs_long <= 1.05,
        vs_ff < 1.0
    );
}
