//! Durable state behind a small trait: a batch of domain writes commits whole or not at
//! all, ids come from the store, and loading checks every record. `redb` keeps it in an
//! embedded database file; `memory` keeps it in memory (a controller without `--state`).
//!
//! The calls block (a commit syncs to disk): async code goes through `Store`, which runs
//! them on tokio's blocking pool so no async worker waits on a disk.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::records::{Decision, JobSpec, Operation, SiteMap};

#[cfg(test)]
pub mod faulty;
pub mod memory;
pub mod redb;

/// A scenario job waiting for its arrival time (kept so a restart does not lose it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arrival {
    pub spec: JobSpec,
    pub scenario: String,
    /// When it arrives (wall clock, ms since the Unix epoch).
    pub at_unix_ms: u64,
}

/// One change to the durable state.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Job(JobSpec),
    RemoveJob(String),
    SiteMap(SiteMap),
    RemoveSiteMap(String),
    /// VM name → host name.
    Placement {
        vm: String,
        host: String,
    },
    Decision(Decision),
    Operation(Operation),
    Setting {
        key: String,
        value: String,
    },
    Pin {
        vm: String,
        pinned: bool,
    },
    Drain {
        site: String,
        drained: bool,
    },
    Arrival(Arrival),
    RemoveArrival(String),
}

/// Ids the store issues, never twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    Decision,
    Operation,
}

impl Sequence {
    pub fn name(self) -> &'static str {
        match self {
            Sequence::Decision => "decision",
            Sequence::Operation => "operation",
        }
    }
}

/// Everything the store holds, as loaded at start.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    pub jobs: BTreeMap<String, JobSpec>,
    /// VM name → host name, for every VM that ever moved.
    pub placements: BTreeMap<String, String>,
    pub site_maps: BTreeMap<String, SiteMap>,
    pub decisions: BTreeMap<u64, Decision>,
    pub operations: BTreeMap<u64, Operation>,
    pub settings: BTreeMap<String, String>,
    pub pinned: Vec<String>,
    pub drained: Vec<String>,
    pub arrivals: BTreeMap<String, Arrival>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {path}: {source}")]
    Open { path: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("state store: {0}")]
    Io(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("state store: table {table}, key {key}: {why}")]
    Damaged { table: &'static str, key: String, why: String },
    #[error("state store {path}: {why}")]
    Refused { path: String, why: String },
    #[error("state store: the disk refused a write earlier ({0}); restart the controller once the disk is fixed")]
    Poisoned(String),
}

/// What every store does.
pub trait StateStore: Send + Sync {
    /// Everything, checked.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Applies the writes in one transaction, durable on return.
    fn commit(&self, writes: &[Write]) -> Result<(), StoreError>;
    /// Reserves `n` ids of `seq` durably; returns the first.
    fn issue(&self, seq: Sequence, n: u64) -> Result<u64, StoreError>;
}

/// The store as async code uses it.
#[derive(Clone)]
pub struct Store(Arc<dyn StateStore>);

impl Store {
    pub fn new(s: Arc<dyn StateStore>) -> Store {
        Store(s)
    }

    /// A store in memory only.
    pub fn memory() -> Store {
        Store(Arc::new(memory::MemoryStore::default()))
    }

    pub fn load(&self) -> Result<Snapshot, StoreError> {
        self.0.load()
    }

    pub async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let s = self.0.clone();
        blocking(move || s.commit(&writes)).await
    }

    pub async fn issue(&self, seq: Sequence, n: u64) -> Result<u64, StoreError> {
        let s = self.0.clone();
        blocking(move || s.issue(seq, n)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(StoreError::Io(format!("store task: {e}").into())),
    }
}

/// A stored value: a CRC-32 of the JSON, then the JSON. A damaged byte fails the check.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let json = serde_json::to_vec(v).expect("records serialise");
    let mut out = crc32fast::hash(&json).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out
}

pub fn decode<T: for<'de> Deserialize<'de>>(table: &'static str, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    let damaged = |why: String| StoreError::Damaged { table, key: key.to_string(), why };
    if bytes.len() < 4 {
        return Err(damaged(format!("{} bytes, too short for a record", bytes.len())));
    }
    let (sum, json) = bytes.split_at(4);
    let want = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
    if crc32fast::hash(json) != want {
        return Err(damaged("checksum mismatch: the record was changed or damaged".into()));
    }
    serde_json::from_slice(json).map_err(|e| damaged(format!("unreadable record: {e}")))
}

#[cfg(test)]
mod tests;
