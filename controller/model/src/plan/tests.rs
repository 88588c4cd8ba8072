//! The planner's tests: behaviour on small cases, against an exhaustive search, and against
//! ping-pong under flapping traffic.

use std::collections::HashSet;
use std::time::Duration;

use ndarray::Array2;

use super::*;
use crate::time::Time;

/// Sites A, B, C (C far and thin) with `cap` slots per host, two hosts each.
fn topo(cap: u32, vms: &[(&str, &str, f64)]) -> Topology {
    let mut y = format!(
        "sites:\n  - {{name: A, max_concurrent_migrations: 1, hosts: [{{name: a1, vm_capacity: {cap}}}, {{name: a2, vm_capacity: {cap}}}]}}\n\
         \x20 - {{name: B, hosts: [{{name: b1, vm_capacity: {cap}}}, {{name: b2, vm_capacity: {cap}}}]}}\n\
         \x20 - {{name: C, hosts: [{{name: c1, vm_capacity: {cap}}}, {{name: c2, vm_capacity: {cap}}}]}}\n\
         links:\n  - {{between: [A, B], bandwidth_mbit: 1000, latency_ms: 5, max_concurrent_migrations: 2}}\n\
         \x20 - {{between: [B, C], bandwidth_mbit: 100, latency_ms: 20}}\n  - {{between: [A, C], bandwidth_mbit: 100, latency_ms: 20}}\nvms:\n"
    );
    for (name, host, mib) in vms {
        y.push_str(&format!("  - {{name: {name}, host: {host}, memory_mib: {mib}}}\n"));
    }
    Topology::from_yaml(&y).unwrap()
}

/// Ring neighbours exchange `rate` bytes/s in messages of 64 KiB.
fn ring(n: usize, rate: f64) -> JobProfile {
    let mut bytes = Array2::zeros((n, n));
    let mut messages = Array2::zeros((n, n));
    for i in 0..n {
        bytes[[i, (i + 1) % n]] = rate;
        messages[[i, (i + 1) % n]] = rate / 65536.0;
    }
    JobProfile::from_dense(&bytes, &messages, vec![])
}

fn job(id: &str, class: Class, vms: &[VmId], rate: f64) -> PlanJob {
    PlanJob { id: id.into(), class, rank_vm: vms.to_vec(), profile: ring(vms.len(), rate) }
}

fn hosts(t: &Topology) -> Vec<HostId> {
    t.vms.iter().map(|v| v.host).collect()
}

fn run(t: &Topology, jobs: &[PlanJob], pinned: &[VmId], drained: &[SiteId], cooling: &[VmId]) -> Plan {
    let vm_host = hosts(t);
    let (p, d, c): (HashSet<_>, HashSet<_>, HashSet<_>) =
        (pinned.iter().copied().collect(), drained.iter().copied().collect(), cooling.iter().copied().collect());
    let input =
        PlanInput { topo: t, vm_host: &vm_host, jobs, pinned: &p, drained: &d, cooling: &c, learnt: &Learnt::default(), host_cpu: &[] };
    plan(&input, &PlanConfig::default())
}

#[test]
fn network_job_goes_where_it_is_cheapest_to_gather() {
    // Three VMs on A, one on B: moving the one is cheapest.
    let t = topo(4, &[("v0", "a1", 512.0), ("v1", "a1", 512.0), ("v2", "a2", 512.0), ("v3", "b1", 512.0)]);
    let p = run(&t, &[job("cg", Class::Network, &[0, 1, 2, 3], 5e6)], &[], &[], &[]);
    assert_eq!(p.moves.len(), 1, "{p:#?}");
    assert_eq!((p.moves[0].vm, t.site_of_host(p.moves[0].to)), (3, 0));
    let d = &p.decisions[0];
    assert_eq!(d.target_site, Some(0));
    assert_eq!(d.slowdown_after, 0.0);
    assert!(d.gain_s > d.cost_s && d.reason.contains("moving 1 VM(s) to A"), "{}", d.reason);
    assert!(p.objective_after < p.objective_before);
}

#[test]
fn not_worth_it_when_migration_costs_more_than_it_saves() {
    // A trickle of traffic, 32 GiB guests over a 100 Mbit/s link.
    let t = topo(4, &[("v0", "a1", 32768.0), ("v1", "c1", 32768.0)]);
    let p = run(&t, &[job("ep", Class::Network, &[0, 1], 1e3)], &[], &[], &[]);
    assert!(p.moves.is_empty());
    assert!(p.decisions[0].reason.contains("not worth it"), "{}", p.decisions[0].reason);
}

#[test]
fn compute_jobs_stay_spread_and_make_room() {
    // B is full of a compute job; the network job must gather on B (its pinned VM).
    let t = topo(2, &[("n0", "a1", 256.0), ("n1", "b1", 256.0), ("c0", "b1", 256.0), ("c1", "b2", 256.0), ("c2", "b2", 256.0)]);
    let jobs = [job("net", Class::Network, &[0, 1], 20e6), job("cpu", Class::Compute, &[2, 3, 4], 1e3)];
    let p = run(&t, &jobs, &[1], &[], &[]);
    let site = |v: VmId| t.site_of_host(p.vm_host_after[v]);
    assert_eq!((site(0), site(1)), (1, 1), "{p:#?}");
    assert!(p.decisions[1].reason.starts_with("compute-intensive"));
    assert!([2, 3, 4].iter().any(|&v| site(v) != 1), "a compute VM made room");
    // Never over capacity.
    let mut load = vec![0; t.hosts.len()];
    for &h in &p.vm_host_after {
        load[h] += 1;
    }
    assert!(load.iter().zip(&t.hosts).all(|(l, h)| *l <= h.vm_capacity));
}

#[test]
fn pinned_and_cooling_vms_stay_and_drained_sites_empty() {
    let t = topo(4, &[("v0", "a1", 256.0), ("v1", "b1", 256.0), ("w0", "c1", 256.0)]);
    let jobs = [job("net", Class::Network, &[0, 1], 20e6), job("cpu", Class::Compute, &[2], 0.0)];
    // v1 pinned on B: the job gathers on B.
    let p = run(&t, &jobs, &[1], &[], &[]);
    assert_eq!(t.site_of_host(p.vm_host_after[0]), 1);
    // Both ends cooling: nothing moves, and the reason says why.
    let p = run(&t, &jobs, &[], &[], &[0, 1]);
    assert!(p.moves.is_empty());
    assert!(p.decisions[0].reason.contains("pinned or cooling"), "{}", p.decisions[0].reason);
    // C drained: w0 leaves it.
    let p = run(&t, &jobs, &[], &[2], &[]);
    assert_ne!(t.site_of_host(p.vm_host_after[2]), 2);
}

#[test]
fn waves_respect_site_and_link_limits() {
    // Four VMs from B to A: A takes one migration at a time.
    let t = topo(
        8,
        &[
            ("a", "a1", 256.0),
            ("b", "a1", 256.0),
            ("c", "a1", 256.0),
            ("d", "a2", 256.0),
            ("e", "a2", 256.0),
            ("w", "b1", 256.0),
            ("x", "b1", 256.0),
            ("y", "b2", 256.0),
        ],
    );
    let p = run(&t, &[job("net", Class::Network, &[0, 1, 2, 3, 4, 5, 6, 7], 50e6)], &[], &[], &[]);
    assert_eq!(p.moves.len(), 3);
    let waves: HashSet<u32> = p.moves.iter().map(|m| m.wave).collect();
    assert_eq!(waves.len(), 3, "site A allows one at a time: {:?}", p.moves);
}

/// Exhaustive search over every network job's target site (small instances only).
fn exact(input: &PlanInput, cfg: &PlanConfig) -> f64 {
    let topo = input.topo;
    let net: Vec<usize> = (0..input.jobs.len()).filter(|&j| input.jobs[j].class == Class::Network).collect();
    let n = topo.sites.len();
    let mut best = objective(input, cfg, input.vm_host, &[]);
    for code in 0..(n + 1).pow(u32::try_from(net.len()).unwrap()) {
        let mut vm_host = input.vm_host.to_vec();
        let mut free: Vec<i64> = topo.hosts.iter().map(|h| h.vm_capacity as i64).collect();
        for &h in &vm_host {
            free[h] -= 1;
        }
        let mut c = code;
        let mut ok = true;
        for &j in &net {
            let choice = c % (n + 1);
            c /= n + 1;
            if choice == n {
                continue; // leave as is
            }
            for v in input.jobs[j].vms() {
                if topo.site_of_host(vm_host[v]) == choice {
                    continue;
                }
                match topo.sites[choice].hosts.iter().copied().filter(|&h| free[h] > 0).max_by_key(|&h| free[h]) {
                    Some(h) => {
                        free[vm_host[v]] += 1;
                        free[h] -= 1;
                        vm_host[v] = h;
                    }
                    None => ok = false,
                }
            }
        }
        if ok {
            let moves = finish_moves(input, cfg, &vm_host);
            best = best.min(objective(input, cfg, &vm_host, &moves));
        }
    }
    best
}

#[test]
fn within_5_percent_of_exact_and_better_than_first_fit_on_small_instances() {
    let mut rng = 7u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut worse_than_exact = 0.0f64;
    let (mut ours, mut ff) = (0.0, 0.0);
    for _ in 0..20 {
        let mut vms = Vec::new();
        let host_names = ["a1", "a2", "b1", "b2", "c1", "c2"];
        let off = usize::try_from(next() % 6).unwrap();
        for i in 0..12 {
            vms.push((format!("v{i}"), host_names[(i * 5 + off) % 6], 256.0 + (next() % 4096) as f64));
        }
        let spec: Vec<(&str, &str, f64)> = vms.iter().map(|(n, h, m)| (n.as_str(), *h, *m)).collect();
        let t = topo(3, &spec);
        let jobs: Vec<PlanJob> = (0..4)
            .map(|j| {
                let class = if next() % 3 == 0 { Class::Compute } else { Class::Network };
                job(&format!("j{j}"), class, &[3 * j, 3 * j + 1, 3 * j + 2], (next() % 50) as f64 * 1e6)
            })
            .collect();
        let vm_host = hosts(&t);
        let none = HashSet::new();
        let input = PlanInput {
            topo: &t,
            vm_host: &vm_host,
            jobs: &jobs,
            pinned: &none,
            drained: &none,
            cooling: &none,
            learnt: &Learnt::default(),
            host_cpu: &[],
        };
        let cfg = PlanConfig::default();
        let p = plan(&input, &cfg);
        let best = exact(&input, &cfg);
        let g = greedy_first_fit(&input, &cfg);
        assert!(p.objective_after <= p.objective_before + 1e-9);
        worse_than_exact = worse_than_exact.max((p.objective_after - best) / best.max(1.0));
        ours += p.objective_after;
        ff += g.objective_after;
    }
    eprintln!("worst gap to exact {:.2}%, planner {ours:.1} vs first-fit {ff:.1} job-s", worse_than_exact * 100.0);
    assert!(worse_than_exact <= 0.05, "planner is {:.1}% above the exact optimum", worse_than_exact * 100.0);
    assert!(ours < ff, "planner {ours:.1} vs first-fit {ff:.1}");
}

/// Runs 10 minutes of traffic that flips every 20 s between two jobs and an operator
/// who drains and undrains site A every 40 s; returns the migration times of every VM.
fn flapping(cooldown: Duration, policy: crate::classify::Policy) -> Vec<Vec<Time>> {
    use crate::classify::{classify, ClassState};
    let t = topo(
        4,
        &[
            ("x0", "a1", 256.0),
            ("x1", "a2", 256.0),
            ("x2", "b1", 256.0),
            ("x3", "b2", 256.0),
            ("y0", "a1", 256.0),
            ("y1", "b1", 256.0),
            ("y2", "a2", 256.0),
            ("y3", "b2", 256.0),
            ("z0", "c1", 256.0),
        ],
    );
    let mut vm_host = hosts(&t);
    let mut moved: Vec<Vec<Time>> = vec![vec![]; t.vms.len()];
    let mut states: Vec<Option<ClassState>> = vec![None; 3];
    for step in 0..120u64 {
        let now = Time::from_secs(step * 5);
        let secs = now.as_secs();
        let x_heavy = (secs / 20).is_multiple_of(2);
        let rates = [if x_heavy { 50e6 } else { 1e3 }, if x_heavy { 1e3 } else { 50e6 }, 0.0];
        let members: [&[VmId]; 3] = [&[0, 1, 2, 3], &[4, 5, 6, 7], &[8]];
        let mut jobs = Vec::new();
        for j in 0..3 {
            let mut pj = job(["x", "y", "z"][j], Class::Compute, members[j], rates[j]);
            let home = t.site_of_host(vm_host[members[j][0]]);
            let (v, st) = classify(&policy, &t, &pj.profile, home, states[j], now);
            states[j] = Some(st);
            pj.class = v.class;
            jobs.push(pj);
        }
        let drained: HashSet<SiteId> = if (secs / 40) % 2 == 1 { [0].into() } else { HashSet::new() };
        let cooling: HashSet<VmId> = (0..t.vms.len()).filter(|&v| moved[v].last().is_some_and(|&m| now.since(m) < cooldown)).collect();
        let none = HashSet::new();
        let input = PlanInput {
            topo: &t,
            vm_host: &vm_host,
            jobs: &jobs,
            pinned: &none,
            drained: &drained,
            cooling: &cooling,
            learnt: &Learnt::default(),
            host_cpu: &[],
        };
        let p = plan(&input, &PlanConfig::default());
        for m in &p.moves {
            moved[m.vm].push(now);
        }
        vm_host = p.vm_host_after;
    }
    moved
}

fn most_in_window(moved: &[Vec<Time>], window: Duration) -> usize {
    moved
        .iter()
        .map(|ts| ts.iter().map(|&a| ts.iter().filter(|&&b| b >= a && b.since(a) < window).count()).max().unwrap_or(0))
        .max()
        .unwrap_or(0)
}

#[test]
fn flapping_moves_each_vm_at_most_once_per_cooldown() {
    use crate::classify::Policy;
    let cooldown = Duration::from_secs(300);
    // Without cooldown or dwell the same pattern moves VMs back and forth.
    let loose = flapping(Duration::ZERO, Policy { min_dwell: Duration::ZERO, ..Policy::default() });
    assert!(most_in_window(&loose, cooldown) > 1, "the pattern does provoke ping-pong: {loose:?}");
    let held = flapping(cooldown, Policy::default());
    assert!(held.iter().map(|m| m.len()).sum::<usize>() > 0, "some VMs did move");
    assert_eq!(most_in_window(&held, cooldown), 1, "{held:?}");
}

/// The host the one move of `jobs` goes to, with the agents' CPU figures `cpu`.
fn destination(t: &Topology, jobs: &[PlanJob], cpu: &[f64]) -> String {
    let (none, vm_host) = (HashSet::new(), hosts(t));
    let input = PlanInput {
        topo: t,
        vm_host: &vm_host,
        jobs,
        pinned: &none,
        drained: &none,
        cooling: &none,
        learnt: &Learnt::default(),
        host_cpu: cpu,
    };
    let p = plan(&input, &PlanConfig::default());
    assert_eq!(p.moves.len(), 1, "{p:#?}");
    t.hosts[p.moves[0].to].name.clone()
}

#[test]
fn among_hosts_with_room_the_least_busy_takes_the_vm() {
    // v1 on B joins v0 on A.
    let jobs = [job("cg", Class::Network, &[0, 1], 5e6)];
    // a1 holds v0 (3 free), a2 none (4 free): room first, whatever the CPU.
    let t = topo(4, &[("v0", "a1", 512.0), ("v1", "b1", 512.0)]);
    assert_eq!(destination(&t, &jobs, &[0.0, 0.9]), "a2");
    // With equal room (a2 holds another VM), the less busy host wins.
    let t = topo(4, &[("v0", "a1", 512.0), ("v1", "b1", 512.0), ("x", "a2", 512.0)]);
    assert_eq!(destination(&t, &jobs, &[0.9, 0.1, f64::NAN, f64::NAN, 0.0, 0.0]), "a2");
    assert_eq!(destination(&t, &jobs, &[0.1, 0.9, f64::NAN, f64::NAN, 0.0, 0.0]), "a1");
    assert_eq!(destination(&t, &jobs, &[f64::NAN, 0.9]), "a1", "unknown counts as idle");
}
