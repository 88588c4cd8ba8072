//! The loop and the executor on paused time with the simulated hypervisor: automatic,
//! approve, reject and dry-run modes; a migration failing mid-wave; a stale operation
//! cancelled; two ticks never migrating one VM twice; finished jobs and new runs; the
//! loop's task dying and being reported.

use std::sync::Arc;
use std::time::Duration;

use straddle_model::traffic::{peer, Limits, RankHello, RankReport};

use super::*;
use crate::act::{ExecConfig, Executor};
use crate::health::{supervise, Health, Status};
use crate::hypervisor::SimHypervisor;
use crate::observe::Registry;
use crate::records::{DecisionKind, DecisionState};
use crate::state::Store;

/// Two sites, one migration at a time into or out of `tokyo`; 512 MiB guests over 1 Gbit/s
/// (about 4.3 s each).
const TOPO: &str = r#"
sites:
  - {name: tokyo, max_concurrent_migrations: 1, hosts: [{name: t1, vm_capacity: 8}]}
  - {name: sapporo, hosts: [{name: s1, vm_capacity: 8}]}
links:
  - {between: [tokyo, sapporo], bandwidth_mbit: 1000, latency_ms: 10}
vms:
  - {name: v0, host: t1, memory_mib: 512}
  - {name: v1, host: t1, memory_mib: 512}
  - {name: v2, host: s1, memory_mib: 512}
  - {name: v3, host: s1, memory_mib: 512}
  - {name: w0, host: t1, memory_mib: 64}
"#;

struct Bed {
    control: Arc<ControlLoop>,
    exec: Arc<Executor>,
    sim: SimHypervisor,
    /// Cumulative bytes each rank has sent its ring neighbour.
    sent: Vec<u64>,
    seq: u64,
}

async fn bed(mode: PlannerMode) -> Bed {
    let clock = Clock::new();
    let topo = Arc::new(straddle_model::topology::Topology::from_yaml(TOPO).unwrap());
    let registry = Arc::new(Registry::new(clock.clone(), Limits::default(), 100));
    let plane = Arc::new(ControlPlane::new(topo.clone(), registry, Store::memory()));
    let sim = SimHypervisor::new();
    for v in &topo.vms {
        sim.add_vm(&v.name, &topo.hosts[v.host].name, v.memory_bytes, v.dirty_bps);
    }
    let log = Arc::new(DecisionLog::new(plane.store.clone(), clock.clone(), Default::default()));
    let exec = Arc::new(Executor::new(plane.clone(), Arc::new(sim.clone()), log, ExecConfig::default()));
    let cfg = LoopConfig { window_secs: 3, ..LoopConfig::default() };
    let control = Arc::new(ControlLoop::new(exec.clone(), cfg, mode));
    Bed { control, exec, sim, sent: vec![0; 4], seq: 0 }
}

impl Bed {
    /// Submits `cg` with ranks on v0 (tokyo), v2 (sapporo), v1 (tokyo), v3 (sapporo): every
    /// ring edge crosses. Its four ranks attach.
    async fn submit(&mut self) {
        let spec = crate::records::JobSpec {
            job: "cg".into(),
            world_size: 4,
            cluster: String::new(),
            rank_vms: ["v0", "v2", "v1", "v3"].map(String::from).to_vec(),
            credential: String::new(),
        };
        self.control.plane.submit(&spec).await.unwrap();
        for r in 0..4 {
            self.control
                .plane
                .registry
                .attach(&RankHello { job: "cg".into(), rank: r, world_size: 4, node: format!("n{r}"), incarnation: 1 })
                .unwrap();
        }
    }

    /// `secs` seconds of 20 MB/s from every rank to the next.
    async fn traffic(&mut self, secs: u64) {
        let reg = self.control.plane.registry.clone();
        let job = reg.get("cg").unwrap();
        for _ in 0..secs {
            self.seq += 1;
            for r in 0..4u32 {
                self.sent[r as usize] += 20_000_000;
                let rep = RankReport {
                    seq: self.seq,
                    peers: vec![peer((r + 1) % 4, self.sent[r as usize], self.seq * 100)],
                    ..Default::default()
                };
                reg.apply(&job, r, &rep).unwrap();
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
    }

    fn decisions(&self, kind: DecisionKind) -> Vec<crate::records::Decision> {
        self.control.log.snapshot().into_iter().filter(|d| d.kind == kind).collect()
    }

    fn site_of(&self, vm: &str) -> String {
        let p = &self.control.plane;
        let v = p.topo.vm(vm).unwrap();
        p.topo.sites[p.topo.site_of_host(p.view().vm_host[v])].name.clone()
    }

    /// Lets the executor work for `secs` of paused time.
    async fn run_for(&self, secs: u64) {
        for _ in 0..secs * 10 {
            self.exec.step().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_job_is_unclassified_until_it_has_a_window_then_consolidated_once() {
    let mut b = bed(PlannerMode::Automatic).await;
    b.submit().await;
    assert!(b.control.tick().await.unwrap().is_empty(), "no rank has reported: nothing to judge");
    assert!(b.control.classes().is_empty());
    b.traffic(2).await;
    b.control.tick().await.unwrap();
    assert!(b.control.classes().is_empty(), "two seconds of traffic is not a window of three");
    b.traffic(2).await;
    b.control.tick().await.unwrap();
    // First classification at the window, with no dwell to wait out.
    assert_eq!(b.control.classes()["cg"].0, Class::Network);
    let migs = b.decisions(DecisionKind::Migration);
    assert_eq!(migs.len(), 1, "{migs:?}");
    assert_eq!(migs[0].state, DecisionState::Applying);
    assert_eq!(migs[0].migrations.len(), 2);
    assert!(migs[0].migrations.iter().all(|m| m.operation != 0));
    // More rounds while the migrations run: in-flight VMs are pinned, nothing is moved twice.
    for _ in 0..6 {
        b.traffic(1).await;
        b.control.tick().await.unwrap();
        b.exec.step().await;
    }
    b.run_for(30).await;
    for _ in 0..3 {
        b.control.tick().await.unwrap();
    }
    b.run_for(5).await;
    assert_eq!(b.sim.migrations_started(), 2, "each of the two VMs migrated exactly once");
    assert_eq!(b.decisions(DecisionKind::Migration).len(), 1);
    let d = b.control.log.get(migs[0].id).unwrap();
    assert_eq!(d.state, DecisionState::Applied, "{}", d.detail);
    assert!(d.detail.contains("cg epoch 3"), "{}", d.detail);
    let sites: std::collections::HashSet<String> = ["v0", "v1", "v2", "v3"].iter().map(|v| b.site_of(v)).collect();
    assert_eq!(sites.len(), 1);
    assert_eq!(b.control.plane.registry.site_maps.current("cg").unwrap().epoch, 3);
    assert!(b.exec.operations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn approve_mode_records_one_proposal_and_approval_only_enqueues() {
    let mut b = bed(PlannerMode::Approve).await;
    b.submit().await;
    b.traffic(4).await;
    for _ in 0..12 {
        b.control.tick().await.unwrap();
        b.traffic(1).await;
    }
    let pending = b.decisions(DecisionKind::Migration);
    assert_eq!(pending.len(), 1, "one proposal per distinct plan, not one per tick: {pending:?}");
    assert_eq!(pending[0].state, DecisionState::PendingApproval);
    assert!(matches!(b.control.approve(999, true).await, Err(LoopError::NotPending(999))));
    let d = b.control.approve(pending[0].id, true).await.unwrap();
    assert_eq!(d.state, DecisionState::Applying);
    assert_eq!(b.sim.migrations_started(), 0, "approval enqueues; it runs no migration itself");
    assert_eq!(b.exec.operations().len(), 2);
    b.run_for(30).await;
    assert_eq!(b.control.log.get(d.id).unwrap().state, DecisionState::Applied);
    assert!(matches!(b.control.approve(d.id, true).await, Err(LoopError::NotPending(_))), "approved once");
}

#[tokio::test(start_paused = true)]
async fn reject_and_dry_run_migrate_nothing() {
    let mut b = bed(PlannerMode::Approve).await;
    b.submit().await;
    b.traffic(4).await;
    b.control.tick().await.unwrap();
    let id = b.decisions(DecisionKind::Migration)[0].id;
    let d = b.control.approve(id, false).await.unwrap();
    assert_eq!(d.state, DecisionState::Rejected);
    b.control.set_mode(PlannerMode::DryRun).await.unwrap();
    for _ in 0..10 {
        b.traffic(1).await;
        b.control.tick().await.unwrap();
    }
    let proposed: Vec<_> = b.decisions(DecisionKind::Migration).into_iter().filter(|d| d.state == DecisionState::Proposed).collect();
    assert_eq!(proposed.len(), 1, "{proposed:?}");
    b.run_for(20).await;
    assert_eq!(b.sim.migrations_started(), 0);
    assert_eq!(b.site_of("v2"), "sapporo");
}

#[tokio::test(start_paused = true)]
async fn a_migration_failing_mid_wave_leaves_its_vm_and_says_so() {
    let mut b = bed(PlannerMode::Automatic).await;
    b.submit().await;
    b.traffic(4).await;
    b.control.tick().await.unwrap();
    let id = b.decisions(DecisionKind::Migration)[0].id;
    // tokyo takes one migration at a time: the first runs, the second waits.
    b.run_for(2).await;
    assert_eq!(b.sim.migrations_started(), 1);
    b.run_for(5).await;
    assert_eq!(b.sim.migrations_started(), 2, "the second started after the first");
    // The destination dies during the second.
    b.sim.set_unreachable("t1", true);
    b.run_for(10).await;
    let d = b.control.log.get(id).unwrap();
    assert_eq!(d.state, DecisionState::Failed, "{}", d.detail);
    assert!(d.detail.contains("1 of 2 migrations happened"), "{}", d.detail);
    let moved: Vec<&str> = ["v2", "v3"].into_iter().filter(|v| b.site_of(v) == "tokyo").collect();
    assert_eq!(moved.len(), 1, "one VM moved, the other stayed in sapporo");
    let map = b.control.plane.registry.site_maps.current("cg").unwrap();
    let v3_rank = 3;
    assert_eq!(map.rank_site[v3_rank] == 1, b.site_of("v3") == "sapporo", "the map follows the placement");
    assert!(b.exec.operations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_stale_operation_is_cancelled_not_run() {
    let mut b = bed(PlannerMode::Approve).await;
    b.submit().await;
    b.traffic(4).await;
    b.control.tick().await.unwrap();
    let pending = b.decisions(DecisionKind::Migration)[0].clone();
    // Before the operations run, one of the job's VMs moves by other means.
    let plane = b.control.plane.clone();
    let (v2, t1) = (plane.topo.vm("v2").unwrap(), plane.topo.host("t1").unwrap());
    b.control.approve(pending.id, true).await.unwrap();
    plane.moved(v2, t1, None, vec![]).await.unwrap();
    b.sim.put("v2", "t1");
    b.run_for(10).await;
    let d = b.control.log.get(pending.id).unwrap();
    assert_eq!(d.state, DecisionState::Failed, "{}", d.detail);
    assert!(d.detail.contains("stale, not run"), "{}", d.detail);
    assert_eq!(b.sim.migrations_started(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_finished_job_keeps_its_class_and_a_new_run_starts_unclassified() {
    let mut b = bed(PlannerMode::DryRun).await;
    b.submit().await;
    b.traffic(4).await;
    b.control.tick().await.unwrap();
    assert_eq!(b.control.classes()["cg"], (Class::Network, false));
    let reg = b.control.plane.registry.clone();
    let job = reg.get("cg").unwrap();
    for r in 0..4 {
        reg.detach(&job, r);
    }
    // Long after, with the rate decayed, the finished job is not reclassified or planned.
    tokio::time::advance(Duration::from_secs(600)).await;
    let before = b.control.log.snapshot().len();
    b.control.tick().await.unwrap();
    assert_eq!(b.control.classes()["cg"], (Class::Network, true));
    assert_eq!(b.control.log.snapshot().len(), before, "nothing recorded for a finished job");
    // A second run under the same name: new counts, no class until its own window.
    reg.attach(&RankHello { job: "cg".into(), rank: 0, world_size: 4, node: "n".into(), incarnation: 2 }).unwrap();
    assert_eq!(crate::observe::registry::lock(&reg.get("cg").unwrap()).run, 2);
    b.control.tick().await.unwrap();
    assert!(!b.control.classes().contains_key("cg"), "{:?}", b.control.classes());
}

#[tokio::test(start_paused = true)]
async fn the_loop_dying_is_reported_and_it_comes_back() {
    let b = bed(PlannerMode::Automatic).await;
    let health = Arc::new(Health::default());
    b.control.fail_next_tick.store(true, std::sync::atomic::Ordering::SeqCst);
    let c = b.control.clone();
    let task = supervise("decision loop", health.clone(), move || c.clone().run(Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let comp = health.components().into_iter().find(|c| c.name == "decision loop").unwrap();
    assert!(matches!(&comp.status, Status::Restarting { reason, .. } if reason.contains("injected failure")), "{comp:?}");
    assert!(!health.healthy());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let comp = health.components().into_iter().find(|c| c.name == "decision loop").unwrap();
    assert_eq!((comp.status, comp.deaths), (Status::Running, 1));
    task.abort();
}
