//! The state in memory: a controller started without `--state`. Same semantics as the
//! database (batches apply whole, ids never repeat), nothing survives the process.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Sequence, Snapshot, StateStore, StoreError, Write};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<(Snapshot, HashMap<&'static str, u64>)>,
}

/// Applies one write to a snapshot (shared with tests that model the store).
pub(crate) fn apply(s: &mut Snapshot, w: &Write) {
    match w {
        Write::Job(j) => {
            s.jobs.insert(j.job.clone(), j.clone());
        }
        Write::RemoveJob(j) => {
            s.jobs.remove(j);
        }
        Write::SiteMap(m) => {
            s.site_maps.insert(m.job.clone(), m.clone());
        }
        Write::RemoveSiteMap(j) => {
            s.site_maps.remove(j);
        }
        Write::Placement { vm, host } => {
            s.placements.insert(vm.clone(), host.clone());
        }
        Write::Decision(d) => {
            s.decisions.insert(d.id, d.clone());
        }
        Write::Operation(o) => {
            s.operations.insert(o.id, o.clone());
        }
        Write::Setting { key, value } => {
            s.settings.insert(key.clone(), value.clone());
        }
        Write::Pin { vm, pinned } => {
            s.pinned.retain(|v| v != vm);
            if *pinned {
                s.pinned.push(vm.clone());
            }
        }
        Write::Drain { site, drained } => {
            s.drained.retain(|v| v != site);
            if *drained {
                s.drained.push(site.clone());
            }
        }
        Write::Arrival(a) => {
            s.arrivals.insert(a.spec.job.clone(), a.clone());
        }
        Write::RemoveArrival(j) => {
            s.arrivals.remove(j);
        }
    }
}

impl StateStore for MemoryStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.clone())
    }

    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for w in writes {
            apply(&mut g.0, w);
        }
        Ok(())
    }

    fn issue(&self, seq: Sequence, n: u64) -> Result<u64, StoreError> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let next = g.1.entry(seq.name()).or_insert(1);
        let first = *next;
        *next += n;
        Ok(first)
    }
}
