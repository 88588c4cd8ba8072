//! The state in an embedded, transactional database file (redb). Every commit is synced
//! before it returns; every record carries a checksum that loading verifies. A file that
//! exists but holds no straddle state (empty, truncated, foreign) refuses to open rather
//! than start an empty controller over it. After a failed write (a full disk) the next
//! write reopens the database, so one I/O error does not fail every later write.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{decode, encode, Snapshot, StateStore, StoreError, Write};
use crate::state::Sequence;

const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs");
const PLACEMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("placements");
const SITE_MAPS: TableDefinition<&str, &[u8]> = TableDefinition::new("site_maps");
const DECISIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("decisions");
const OPERATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("operations");
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
const PINS: TableDefinition<&str, &[u8]> = TableDefinition::new("pins");
const DRAINS: TableDefinition<&str, &[u8]> = TableDefinition::new("drains");
const ARRIVALS: TableDefinition<&str, &[u8]> = TableDefinition::new("arrivals");
const SEQUENCES: TableDefinition<&str, u64> = TableDefinition::new("sequences");

/// Written once when the file is created; its absence means the file is not ours.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "straddle-state-1";

pub struct RedbStore {
    path: PathBuf,
    db: Mutex<Option<Database>>,
}

fn io(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Io(Box::new(e))
}

impl RedbStore {
    /// Opens the state at `path`, creating it when there is no file there.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let shown = path.display().to_string();
        let fresh = match std::fs::metadata(path) {
            Ok(m) if m.len() == 0 => {
                return Err(StoreError::Refused {
                    path: shown,
                    why: "the file is empty (truncated, or never written); to start afresh, move it away and start again".into(),
                })
            }
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(StoreError::Open { path: shown, source: Box::new(e) }),
        };
        let db = Database::builder()
            .set_repair_callback(|_| {
                tracing::warn!("the state file was not closed cleanly (a crash): recovering its last complete commit");
            })
            .create(path)
            .map_err(|e| StoreError::Open { path: shown.clone(), source: Box::new(e) })?;
        let s = RedbStore { path: path.to_path_buf(), db: Mutex::new(Some(db)) };
        if fresh {
            s.commit(&[Write::Setting { key: FORMAT_KEY.into(), value: FORMAT.into() }])?;
        } else {
            let snap = s.load()?;
            match snap.settings.get(FORMAT_KEY).map(String::as_str) {
                Some(FORMAT) => {}
                Some(other) => {
                    return Err(StoreError::Refused {
                        path: shown,
                        why: format!("it holds state format {other:?}, this controller reads {FORMAT:?}"),
                    })
                }
                None => {
                    return Err(StoreError::Refused {
                        path: shown,
                        why: "it holds no straddle state (no format marker); to start afresh, move it away and start again".into(),
                    })
                }
            }
        }
        Ok(s)
    }

    fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut g = self.db.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let db = Database::create(&self.path).map_err(|e| StoreError::Poisoned(e.to_string()))?;
            *g = Some(db);
        }
        let r = f(g.as_ref().expect("opened above"));
        if matches!(r, Err(StoreError::Io(_))) {
            // redb refuses every write after an I/O error until the file is reopened.
            *g = None;
        }
        r
    }
}

fn put(tx: &redb::WriteTransaction, w: &Write) -> Result<(), redb::Error> {
    match w {
        Write::Job(j) => {
            tx.open_table(JOBS)?.insert(j.job.as_str(), encode(j).as_slice())?;
        }
        Write::RemoveJob(j) => {
            tx.open_table(JOBS)?.remove(j.as_str())?;
        }
        Write::SiteMap(m) => {
            tx.open_table(SITE_MAPS)?.insert(m.job.as_str(), encode(m).as_slice())?;
        }
        Write::RemoveSiteMap(j) => {
            tx.open_table(SITE_MAPS)?.remove(j.as_str())?;
        }
        Write::Placement { vm, host } => {
            tx.open_table(PLACEMENTS)?.insert(vm.as_str(), encode(host).as_slice())?;
        }
        Write::Decision(d) => {
            tx.open_table(DECISIONS)?.insert(d.id, encode(d).as_slice())?;
        }
        Write::Operation(o) => {
            tx.open_table(OPERATIONS)?.insert(o.id, encode(o).as_slice())?;
        }
        Write::Setting { key, value } => {
            tx.open_table(SETTINGS)?.insert(key.as_str(), encode(value).as_slice())?;
        }
        Write::Pin { vm, pinned } => {
            let mut t = tx.open_table(PINS)?;
            if *pinned {
                t.insert(vm.as_str(), encode(vm).as_slice())?;
            } else {
                t.remove(vm.as_str())?;
            }
        }
        Write::Drain { site, drained } => {
            let mut t = tx.open_table(DRAINS)?;
            if *drained {
                t.insert(site.as_str(), encode(site).as_slice())?;
            } else {
                t.remove(site.as_str())?;
            }
        }
        Write::Arrival(a) => {
            tx.open_table(ARRIVALS)?.insert(a.spec.job.as_str(), encode(a).as_slice())?;
        }
        Write::RemoveArrival(j) => {
            tx.open_table(ARRIVALS)?.remove(j.as_str())?;
        }
    }
    Ok(())
}

fn open_all(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    tx.open_table(JOBS)?;
    tx.open_table(PLACEMENTS)?;
    tx.open_table(SITE_MAPS)?;
    tx.open_table(DECISIONS)?;
    tx.open_table(OPERATIONS)?;
    tx.open_table(SETTINGS)?;
    tx.open_table(PINS)?;
    tx.open_table(DRAINS)?;
    tx.open_table(ARRIVALS)?;
    tx.open_table(SEQUENCES)?;
    Ok(())
}

/// Reads one table of checked records keyed by name.
macro_rules! read_named {
    ($tx:expr, $def:expr, $name:literal, |$k:ident, $v:ident| $body:expr) => {{
        let t = $tx.open_table($def).map_err(io)?;
        for r in t.iter().map_err(io)? {
            let (k, v) = r.map_err(io)?;
            let $k: String = k.value().to_string();
            let $v = v.value();
            $body;
        }
    }};
}

impl StateStore for RedbStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_read().map_err(io)?;
            let mut s = Snapshot::default();
            read_named!(tx, JOBS, "jobs", |k, v| {
                let j: crate::records::JobSpec = decode("jobs", &k, v)?;
                if j.job != k {
                    return Err(StoreError::Damaged { table: "jobs", key: k, why: format!("the record names job {:?}", j.job) });
                }
                s.jobs.insert(k, j)
            });
            read_named!(tx, PLACEMENTS, "placements", |k, v| s.placements.insert(k.clone(), decode("placements", &k, v)?));
            read_named!(tx, SITE_MAPS, "site_maps", |k, v| {
                let m: crate::records::SiteMap = decode("site_maps", &k, v)?;
                if m.job != k {
                    return Err(StoreError::Damaged { table: "site_maps", key: k, why: format!("the record names job {:?}", m.job) });
                }
                s.site_maps.insert(k, m)
            });
            read_named!(tx, SETTINGS, "settings", |k, v| s.settings.insert(k.clone(), decode("settings", &k, v)?));
            read_named!(tx, PINS, "pins", |k, v| {
                let vm: String = decode("pins", &k, v)?;
                s.pinned.push(vm)
            });
            read_named!(tx, DRAINS, "drains", |k, v| {
                let site: String = decode("drains", &k, v)?;
                s.drained.push(site)
            });
            read_named!(tx, ARRIVALS, "arrivals", |k, v| s.arrivals.insert(k.clone(), decode("arrivals", &k, v)?));
            for r in tx.open_table(DECISIONS).map_err(io)?.iter().map_err(io)? {
                let (k, v) = r.map_err(io)?;
                let d: crate::records::Decision = decode("decisions", &k.value().to_string(), v.value())?;
                if d.id != k.value() {
                    return Err(StoreError::Damaged {
                        table: "decisions",
                        key: k.value().to_string(),
                        why: format!("the record says id {}", d.id),
                    });
                }
                s.decisions.insert(k.value(), d);
            }
            for r in tx.open_table(OPERATIONS).map_err(io)?.iter().map_err(io)? {
                let (k, v) = r.map_err(io)?;
                let o: crate::records::Operation = decode("operations", &k.value().to_string(), v.value())?;
                if o.id != k.value() {
                    return Err(StoreError::Damaged {
                        table: "operations",
                        key: k.value().to_string(),
                        why: format!("the record says id {}", o.id),
                    });
                }
                s.operations.insert(k.value(), o);
            }
            Ok(s)
        })
    }

    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.with_db(|db| {
            let tx = db.begin_write().map_err(io)?;
            open_all(&tx).map_err(io)?;
            for w in writes {
                put(&tx, w).map_err(io)?;
            }
            tx.commit().map_err(io)
        })
    }

    fn issue(&self, seq: Sequence, n: u64) -> Result<u64, StoreError> {
        self.with_db(|db| {
            let tx = db.begin_write().map_err(io)?;
            open_all(&tx).map_err(io)?;
            let first = {
                let mut t = tx.open_table(SEQUENCES).map_err(io)?;
                let next = t.get(seq.name()).map_err(io)?.map_or(1, |v| v.value());
                t.insert(seq.name(), next + n).map_err(io)?;
                next
            };
            tx.commit().map_err(io)?;
            Ok(first)
        })
    }
}
