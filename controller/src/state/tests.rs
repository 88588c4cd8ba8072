//! The stores keep what they were given, issue ids once, and refuse damaged files.

use super::*;
use crate::records::{Decision, DecisionKind, DecisionState, JobSpec, SiteMap};

fn writes() -> Vec<Write> {
    let spec = JobSpec { job: "cg".into(), world_size: 2, rank_vms: vec!["v0".into(), "v1".into()], ..Default::default() };
    let map = SiteMap { job: "cg".into(), epoch: 1, rank_site: vec![0, 1], sites: vec!["A".into(), "B".into()] };
    let mut d = Decision::new("cg", DecisionKind::Migration, None, "why".into(), DecisionState::Applying);
    d.id = 1;
    vec![
        Write::Job(spec),
        Write::SiteMap(map.clone()),
        Write::Placement { vm: "v1".into(), host: "a2".into() },
        Write::SiteMap(SiteMap { epoch: 2, rank_site: vec![0, 0], ..map }),
        Write::Decision(d.clone()),
        Write::Decision(Decision { detail: "applied".into(), state: DecisionState::Applied, ..d }),
        Write::Setting { key: "mode".into(), value: "approve".into() },
        Write::Pin { vm: "v0".into(), pinned: true },
        Write::Drain { site: "B".into(), drained: true },
    ]
}

fn check(s: &Snapshot) {
    assert_eq!(s.jobs.len(), 1);
    assert_eq!(s.placements["v1"], "a2");
    assert_eq!((s.site_maps["cg"].epoch, s.site_maps["cg"].rank_site.clone()), (2, vec![0, 0]));
    assert_eq!(s.decisions.len(), 1);
    assert_eq!(s.decisions[&1].detail, "applied");
    assert_eq!(s.settings["mode"], "approve");
    assert_eq!((s.pinned.clone(), s.drained.clone()), (vec!["v0".to_string()], vec!["B".to_string()]));
}

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("straddle-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn what_is_written_is_there_after_reopening() {
    let dir = scratch("reopen");
    let path = dir.join("state.redb");
    {
        let s = redb::RedbStore::open(&path).unwrap();
        s.commit(&writes()).unwrap();
        assert_eq!(s.issue(Sequence::Decision, 1).unwrap(), 1);
        assert_eq!(s.issue(Sequence::Decision, 3).unwrap(), 2);
        assert_eq!(s.issue(Sequence::Operation, 1).unwrap(), 1);
    }
    let s = redb::RedbStore::open(&path).unwrap();
    check(&s.load().unwrap());
    assert_eq!(s.issue(Sequence::Decision, 1).unwrap(), 5, "ids are never issued twice, across restarts");
    let m = memory::MemoryStore::default();
    m.commit(&writes()).unwrap();
    check(&m.load().unwrap());
    assert_eq!((m.issue(Sequence::Operation, 2).unwrap(), m.issue(Sequence::Operation, 1).unwrap()), (1, 3));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_empty_or_foreign_file_refuses_to_open() {
    let dir = scratch("refuse");
    let empty = dir.join("empty.redb");
    std::fs::write(&empty, b"").unwrap();
    let e = redb::RedbStore::open(&empty).err().unwrap().to_string();
    assert!(e.contains("the file is empty"), "{e}");
    let foreign = dir.join("foreign.redb");
    std::fs::write(&foreign, vec![7u8; 4096]).unwrap();
    assert!(redb::RedbStore::open(&foreign).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Flipping any single byte of a stored record is caught at load, naming the table and key.
#[test]
fn a_changed_byte_in_a_record_is_caught() {
    let rec = encode(&SiteMap { job: "cg".into(), epoch: 3, rank_site: vec![0, 1], sites: vec!["A".into(), "B".into()] });
    for i in 0..rec.len() {
        let mut bad = rec.clone();
        bad[i] ^= 0x01;
        match decode::<SiteMap>("site_maps", "cg", &bad) {
            Err(StoreError::Damaged { table: "site_maps", key, .. }) => assert_eq!(key, "cg"),
            other => panic!("byte {i}: {other:?}"),
        }
    }
    let ok: SiteMap = decode("site_maps", "cg", &rec).unwrap();
    assert_eq!(ok.epoch, 3);
}
