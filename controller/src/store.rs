//! Durable state in an embedded database (redb): jobs, placements, site-map epochs, the
//! decision log and operators' settings. Every change is committed (fsync'd) before it is
//! acknowledged, so a crash loses nothing acknowledged.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use straddle_proto::{Decision, JobSpec, SiteMap};

const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
const PLACEMENTS: TableDefinition<&str, &str> = TableDefinition::new("placements");
const SITE_MAPS: TableDefinition<&str, &[u8]> = TableDefinition::new("site_maps");
const DECISIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("decisions");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

#[derive(Debug, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(String);

fn e(x: impl std::fmt::Display) -> StoreError {
    StoreError(x.to_string())
}

/// Everything the store holds, as loaded at start.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub jobs: Vec<JobSpec>,
    /// VM name → host name, for every VM that ever moved.
    pub placements: HashMap<String, String>,
    pub site_maps: Vec<SiteMap>,
    pub decisions: Vec<Decision>,
    pub meta: HashMap<String, String>,
}

pub struct Store {
    db: Database,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::create(path).map_err(e)?;
        let s = Store { db };
        // Create the tables, so reads on a new file find them.
        s.write(|_| Ok(()))?;
        Ok(s)
    }

    fn write(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(e)?;
        {
            tx.open_table(JOBS).map_err(e)?;
            tx.open_table(PLACEMENTS).map_err(e)?;
            tx.open_table(SITE_MAPS).map_err(e)?;
            tx.open_table(DECISIONS).map_err(e)?;
            tx.open_table(META).map_err(e)?;
        }
        f(&tx).map_err(e)?;
        tx.commit().map_err(e)
    }

    /// A new job and its first site map, together.
    pub fn put_job(&self, spec: &JobSpec, map: Option<&SiteMap>) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(JOBS)?.insert(spec.job.as_str(), spec.encode_to_vec().as_slice())?;
            if let Some(m) = map {
                tx.open_table(SITE_MAPS)?.insert(m.job.as_str(), m.encode_to_vec().as_slice())?;
            }
            Ok(())
        })
    }

    pub fn remove_job(&self, job: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(JOBS)?.remove(job)?;
            tx.open_table(SITE_MAPS)?.remove(job)?;
            Ok(())
        })
    }

    /// A VM's new host and the site maps that changed with it, together.
    pub fn put_move(&self, vm: &str, host: &str, maps: &[SiteMap]) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(PLACEMENTS)?.insert(vm, host)?;
            let mut t = tx.open_table(SITE_MAPS)?;
            for m in maps {
                t.insert(m.job.as_str(), m.encode_to_vec().as_slice())?;
            }
            Ok(())
        })
    }

    pub fn put_decision(&self, d: &Decision) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(DECISIONS)?.insert(d.id, d.encode_to_vec().as_slice())?;
            Ok(())
        })
    }

    pub fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(META)?.insert(key, value)?;
            Ok(())
        })
    }

    pub fn load(&self) -> Result<Snapshot, StoreError> {
        let tx = self.db.begin_read().map_err(e)?;
        let mut s = Snapshot::default();
        for r in tx.open_table(JOBS).map_err(e)?.iter().map_err(e)? {
            let (_, v) = r.map_err(e)?;
            s.jobs.push(JobSpec::decode(v.value()).map_err(e)?);
        }
        for r in tx.open_table(PLACEMENTS).map_err(e)?.iter().map_err(e)? {
            let (k, v) = r.map_err(e)?;
            s.placements.insert(k.value().to_string(), v.value().to_string());
        }
        for r in tx.open_table(SITE_MAPS).map_err(e)?.iter().map_err(e)? {
            let (_, v) = r.map_err(e)?;
            s.site_maps.push(SiteMap::decode(v.value()).map_err(e)?);
        }
        for r in tx.open_table(DECISIONS).map_err(e)?.iter().map_err(e)? {
            let (_, v) = r.map_err(e)?;
            s.decisions.push(Decision::decode(v.value()).map_err(e)?);
        }
        for r in tx.open_table(META).map_err(e)?.iter().map_err(e)? {
            let (k, v) = r.map_err(e)?;
            s.meta.insert(k.value().to_string(), v.value().to_string());
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_is_there_after_reopening() {
        let dir = std::env::temp_dir().join(format!("straddle-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.redb");
        {
            let s = Store::open(&path).unwrap();
            let spec = JobSpec { job: "cg".into(), world_size: 2, cluster: String::new(), rank_vms: vec!["v0".into(), "v1".into()] };
            let map = SiteMap { job: "cg".into(), epoch: 1, rank_site: vec![0, 1], sites: vec!["A".into(), "B".into()] };
            s.put_job(&spec, Some(&map)).unwrap();
            s.put_move("v1", "a2", &[SiteMap { epoch: 2, rank_site: vec![0, 0], ..map }]).unwrap();
            s.put_decision(&Decision { id: 1, job: "cg".into(), reason: "why".into(), ..Default::default() }).unwrap();
            s.put_decision(&Decision { id: 1, job: "cg".into(), reason: "why".into(), detail: "applied".into(), ..Default::default() })
                .unwrap();
            s.put_meta("mode", "approve").unwrap();
        }
        let s = Store::open(&path).unwrap().load().unwrap();
        assert_eq!(s.jobs.len(), 1);
        assert_eq!(s.placements["v1"], "a2");
        assert_eq!((s.site_maps[0].epoch, s.site_maps[0].rank_site.clone()), (2, vec![0, 0]));
        assert_eq!(s.decisions.len(), 1);
        assert_eq!(s.decisions[0].detail, "applied");
        assert_eq!(s.meta["mode"], "approve");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
