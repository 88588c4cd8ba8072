//! The plane admits whole jobs, keeps changes before applying them, and refuses damaged
//! state at start.

use std::sync::Arc;

use straddle_model::traffic::Limits;

use super::*;
use crate::state::faulty::FaultyStore;
use crate::state::memory::MemoryStore;
use crate::state::StateStore;

fn topo() -> Arc<Topology> {
    Arc::new(
        Topology::from_yaml(
            "sites:\n  - {name: A, hosts: [{name: a1, vm_capacity: 4}]}\n  - {name: B, hosts: [{name: b1, vm_capacity: 4}]}\n\
             links:\n  - {between: [A, B], bandwidth_mbit: 1000, latency_ms: 5}\n\
             vms:\n  - {name: v0, host: a1, memory_mib: 512}\n  - {name: v1, host: b1, memory_mib: 512}\n  - {name: v2, host: b1, memory_mib: 512}\n",
        )
        .unwrap(),
    )
}

fn plane_on(store: Arc<dyn StateStore>) -> ControlPlane {
    let reg = Arc::new(Registry::new(Clock::new(), Limits::default(), 100));
    ControlPlane::new(topo(), reg, Store::new(store))
}

fn spec(job: &str, vms: &[&str]) -> JobSpec {
    JobSpec {
        job: job.into(),
        world_size: u32::try_from(vms.len()).unwrap(),
        cluster: String::new(),
        rank_vms: vms.iter().map(|s| s.to_string()).collect(),
        credential: String::new(),
    }
}

#[tokio::test]
async fn submit_publishes_epoch_one_and_moves_bump_it() {
    let p = plane_on(Arc::new(MemoryStore::default()));
    let (map, token) = p.submit(&spec("cg", &["v0", "v1"])).await.unwrap();
    assert_eq!(map.epoch, 1);
    assert_eq!(p.credential("cg"), Some(crate::credential::digest(&token)), "only the digest is kept");
    assert!(!p.view().jobs["cg"].spec.credential.contains(&token));
    let m = p.registry.site_maps.current("cg").unwrap();
    assert_eq!((m.epoch, m.rank_site.clone(), m.sites.clone()), (1, vec![0, 1], vec!["A".to_string(), "B".to_string()]));
    assert_eq!(p.moved(1, 0, Some(7), vec![]).await.unwrap(), vec![("cg".to_string(), 2)]);
    assert_eq!(p.registry.site_maps.current("cg").unwrap().rank_site, vec![0, 0]);
    assert_eq!(p.view().vm_changed[&1], (2, Some(7)));
    assert!(p.moved(2, 0, None, vec![]).await.unwrap().is_empty(), "v2 serves no job");
    // Several ranks may share a VM.
    assert!(p.submit(&spec("two", &["v2", "v2"])).await.is_ok());
}

#[tokio::test]
async fn bad_jobs_are_refused_whole() {
    let p = plane_on(Arc::new(MemoryStore::default()));
    assert!(matches!(p.submit(&spec("x", &["v0", "nope"])).await, Err(PlaneError::UnknownVm { rank: 1, .. })));
    assert!(p.registry.get("x").is_none(), "nothing half-applied");
    p.submit(&spec("a", &["v0"])).await.unwrap();
    assert!(matches!(p.submit(&spec("a", &["v1"])).await, Err(PlaneError::Exists(_))));
    assert!(matches!(p.submit(&spec("b", &["v1", "v0"])).await, Err(PlaneError::VmTaken { rank: 1, .. })));
    let mut s = spec("c", &["v1"]);
    s.world_size = 3;
    assert!(matches!(p.submit(&s).await, Err(PlaneError::WorldSize { world: 3, ranks: 1 })));
    let big = JobSpec { job: "big".into(), world_size: 70_000, rank_vms: vec!["v1".into(); 70_000], ..Default::default() };
    let e = p.submit(&big).await.unwrap_err().to_string();
    assert_eq!(e, "world_size 70000 exceeds the largest job this controller accepts (65536 ranks)");
    assert!(matches!(p.cancel("zz").await, Err(PlaneError::UnknownJob(_))));
}

/// A full disk refuses the change and nothing of it is applied or pushed.
#[tokio::test]
async fn a_refused_write_changes_nothing() {
    let store = Arc::new(FaultyStore::default());
    let p = plane_on(store.clone());
    p.submit(&spec("cg", &["v0", "v1"])).await.unwrap();
    store.set_full(true);
    assert!(matches!(p.submit(&spec("ep", &["v2"])).await, Err(PlaneError::Store(_))));
    assert!(!p.view().jobs.contains_key("ep") && p.registry.site_maps.current("ep").is_none());
    assert!(p.set_pinned("v0", true).await.is_err());
    assert!(p.view().pinned.is_empty(), "a refused pin is not applied");
    assert!(p.moved(1, 0, None, vec![]).await.is_err());
    assert_eq!((p.view().vm_host[1], p.registry.site_maps.current("cg").unwrap().epoch), (1, 1));
    assert!(p.cancel("cg").await.is_err());
    assert!(p.view().jobs.contains_key("cg"));
    store.set_full(false);
    assert!(p.submit(&spec("ep", &["v2"])).await.is_ok(), "writes work again once the disk has room");
}

#[tokio::test]
async fn restore_brings_back_what_was_kept_and_refuses_what_disagrees() {
    let store = Arc::new(MemoryStore::default());
    let p = plane_on(store.clone());
    p.submit(&spec("cg", &["v0", "v1"])).await.unwrap();
    p.moved(1, 0, None, vec![]).await.unwrap();
    p.set_pinned("v2", true).await.unwrap();
    let snap = store.load().unwrap();
    let q = plane_on(Arc::new(MemoryStore::default()));
    q.restore(&snap).unwrap();
    assert_eq!(q.view().vm_host, p.view().vm_host);
    assert_eq!(q.registry.site_maps.current("cg").unwrap().epoch, 2);
    assert_eq!(q.view().pinned.len(), 1);
    // A map that disagrees with the placements (an epoch gone back) is damage.
    let mut bad = snap.clone();
    bad.site_maps.get_mut("cg").unwrap().rank_site = vec![0, 1];
    let e = plane_on(Arc::new(MemoryStore::default())).restore(&bad).unwrap_err().to_string();
    assert!(e.contains("table site_maps, key cg"), "{e}");
    let mut bad = snap.clone();
    bad.placements.insert("v9".into(), "a1".into());
    let e = plane_on(Arc::new(MemoryStore::default())).restore(&bad).unwrap_err().to_string();
    assert!(e.contains("table placements, key v9"), "{e}");
    let mut bad = snap;
    bad.jobs.get_mut("cg").unwrap().world_size = 3;
    let e = plane_on(Arc::new(MemoryStore::default())).restore(&bad).unwrap_err().to_string();
    assert!(e.contains("table jobs, key cg") && e.contains("world_size 3"), "{e}");
}
