//! Every decision, in order, and a feed of new ones and their changes. Each change is kept
//! in the store before it is announced; ids come from the store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::clock::Clock;
use crate::records::Decision;
use crate::state::{Sequence, Store, StoreError, Write};

/// Decisions kept in memory (the newest; older ones stay in the store).
pub const KEEP_IN_MEMORY: usize = 10_000;

pub struct DecisionLog {
    all: Mutex<BTreeMap<u64, Decision>>,
    feed: broadcast::Sender<Decision>,
    store: Store,
    clock: Clock,
    /// Orders read-modify-write updates of one decision.
    writer: tokio::sync::Mutex<()>,
}

impl DecisionLog {
    pub fn new(store: Store, clock: Clock, restored: BTreeMap<u64, Decision>) -> DecisionLog {
        let mut all = restored;
        while all.len() > KEEP_IN_MEMORY {
            all.pop_first();
        }
        DecisionLog { all: Mutex::new(all), feed: broadcast::channel(1024).0, store, clock, writer: tokio::sync::Mutex::new(()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Decision>> {
        self.all.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn keep(&self, d: Decision) {
        let mut all = self.lock();
        all.insert(d.id, d.clone());
        while all.len() > KEEP_IN_MEMORY {
            all.pop_first();
        }
        drop(all);
        let _ = self.feed.send(d);
    }

    /// Records a new decision; returns it with its id and time.
    pub async fn record(&self, d: Decision) -> Result<Decision, StoreError> {
        self.record_with(d, |_, _| vec![]).await
    }

    /// Records `d` (setting its id and time) together with the writes `extra` makes for
    /// it (given the decision with its id), in one transaction.
    pub async fn record_with(&self, mut d: Decision, extra: impl FnOnce(&mut Decision, u64) -> Vec<Write>) -> Result<Decision, StoreError> {
        let _w = self.writer.lock().await;
        d.id = self.store.issue(Sequence::Decision, 1).await?;
        d.unix_ms = self.clock.unix_ms();
        let id = d.id;
        let more = extra(&mut d, id);
        let mut writes = vec![Write::Decision(d.clone())];
        writes.extend(more);
        self.store.commit(writes).await?;
        self.keep(d.clone());
        Ok(d)
    }

    /// Changes a decision by `f`, kept before announced.
    pub async fn update(&self, id: u64, f: impl FnOnce(&mut Decision)) -> Result<Option<Decision>, StoreError> {
        self.update_with(id, |d| {
            f(d);
            vec![]
        })
        .await
    }

    /// Changes a decision by `f`, kept in one transaction with the writes `f` returns.
    pub async fn update_with(&self, id: u64, f: impl FnOnce(&mut Decision) -> Vec<Write>) -> Result<Option<Decision>, StoreError> {
        let _w = self.writer.lock().await;
        let Some(mut d) = self.get(id) else { return Ok(None) };
        let extra = f(&mut d);
        let mut writes = vec![Write::Decision(d.clone())];
        writes.extend(extra);
        self.store.commit(writes).await?;
        self.keep(d.clone());
        Ok(Some(d))
    }

    /// Reserves operation ids (kept with the decision that uses them).
    pub async fn operation_ids(&self, n: u64) -> Result<u64, StoreError> {
        self.store.issue(Sequence::Operation, n).await
    }

    pub fn get(&self, id: u64) -> Option<Decision> {
        self.lock().get(&id).cloned()
    }

    pub fn snapshot(&self) -> Vec<Decision> {
        self.lock().values().cloned().collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Decision> {
        self.feed.subscribe()
    }
}

/// Appends `more` to a decision's detail.
pub fn add_detail(d: &mut Decision, more: &str) {
    if more.is_empty() {
        return;
    }
    if !d.detail.is_empty() {
        d.detail.push_str("; ");
    }
    d.detail.push_str(more);
}
