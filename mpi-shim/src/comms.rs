//! Communicators the shim has seen: world-rank translation tables (read on the hot path
//! through an MPI attribute) and the descriptions the reporter ships once per process.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// How one communicator maps to MPI_COMM_WORLD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommInfo {
    /// Process-local id, starting at 1; 0 means "not tracked" (registry full).
    pub id: u32,
    /// Local group in communicator rank order, as world ranks.
    pub world_ranks: Vec<u32>,
    pub inter: bool,
    /// Remote group of an intercommunicator, as world ranks.
    pub remote_world_ranks: Vec<u32>,
}

impl CommInfo {
    /// World rank of a destination given as a rank of this communicator (the remote group
    /// on an intercommunicator).
    #[inline(always)]
    pub fn dest_world(&self, dest: i32) -> Option<u32> {
        let table = if self.inter { &self.remote_world_ranks } else { &self.world_ranks };
        table.get(usize::try_from(dest).ok()?).copied()
    }
}

/// Most communicator descriptions kept for the report; later ones are counted for
/// point-to-point traffic but their collectives are recorded under id 0.
pub const MAX_TRACKED: usize = 65_536;

#[derive(Default)]
pub struct CommRegistry {
    next_id: AtomicU32,
    known: Mutex<Vec<Arc<CommInfo>>>,
}

impl CommRegistry {
    /// Registers a new communicator (first sight; not on the steady-state hot path).
    pub fn register(&self, world_ranks: Vec<u32>, inter: bool, remote_world_ranks: Vec<u32>) -> Arc<CommInfo> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let id = if known.len() < MAX_TRACKED { self.next_id.fetch_add(1, Relaxed) + 1 } else { 0 };
        let info = Arc::new(CommInfo { id, world_ranks, inter, remote_world_ranks });
        if id != 0 {
            known.push(info.clone());
        }
        info
    }

    /// Descriptions from index `from` on (the reporter keeps its own cursor).
    pub fn since(&self, from: usize) -> Vec<Arc<CommInfo>> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.get(from..).map(|s| s.to_vec()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_intra_and_inter() {
        let r = CommRegistry::default();
        let a = r.register(vec![4, 2, 7], false, vec![]);
        assert_eq!(a.id, 1);
        assert_eq!(a.dest_world(2), Some(7));
        assert_eq!(a.dest_world(3), None);
        assert_eq!(a.dest_world(-1), None);
        let b = r.register(vec![0, 1], true, vec![5, 6]);
        assert_eq!(b.id, 2);
        assert_eq!(b.dest_world(1), Some(6));
        assert_eq!(r.since(1).len(), 1);
        assert_eq!(r.since(5).len(), 0);
    }
}
