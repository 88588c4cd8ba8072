//! Persistent requests (`MPI_Send_init`, `MPI_Bcast_init`, ...): what each one sends, so
//! every `MPI_Start` counts it. A fixed-size lock-free table keyed by request handle;
//! `MPI_Request_free` removes the entry, since handles are recycled.

use std::sync::atomic::{
    AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};

const CAPACITY: usize = 1 << 14;
const MAX_PROBE: usize = 128;
const EMPTY: usize = 0;
const TOMBSTONE: usize = usize::MAX;

/// What starting a persistent request sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    /// A point-to-point send of `bytes` to world rank `dest`.
    Send { dest: u32, bytes: u64 },
    /// A collective call recorded under `key` (see `collectives::key`).
    Collective { key: u64, bytes: u64 },
}

const COLL_TAG: u64 = 1 << 63;

struct Entry {
    handle: AtomicUsize,
    what: AtomicU64,
    bytes: AtomicU64,
}

pub struct PersistentTable {
    entries: Box<[Entry]>,
    dropped: AtomicU64,
}

impl Default for PersistentTable {
    fn default() -> Self {
        Self::new()
    }
}

#[inline(always)]
fn slot(handle: usize) -> usize {
    ((handle as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 50) as usize & (CAPACITY - 1)
}

impl PersistentTable {
    pub fn new() -> PersistentTable {
        let entries =
            (0..CAPACITY).map(|_| Entry { handle: AtomicUsize::new(EMPTY), what: AtomicU64::new(0), bytes: AtomicU64::new(0) }).collect();
        PersistentTable { entries, dropped: AtomicU64::new(0) }
    }

    /// Remembers what `handle` sends at each start. Handles 0 and `usize::MAX` are never
    /// valid requests of either ABI and are ignored.
    pub fn insert(&self, handle: usize, planned: Planned) {
        if handle == EMPTY || handle == TOMBSTONE {
            return;
        }
        self.remove(handle);
        let (what, bytes) = match planned {
            Planned::Send { dest, bytes } => (dest as u64, bytes),
            Planned::Collective { key, bytes } => (key | COLL_TAG, bytes),
        };
        let mut i = slot(handle);
        for _ in 0..MAX_PROBE {
            let e = &self.entries[i];
            let h = e.handle.load(Acquire);
            if h == EMPTY || h == TOMBSTONE {
                e.what.store(what, Relaxed);
                e.bytes.store(bytes, Relaxed);
                if e.handle.compare_exchange(h, handle, Release, Relaxed).is_ok() {
                    return;
                }
            }
            i = (i + 1) & (CAPACITY - 1);
        }
        self.dropped.fetch_add(1, Relaxed);
    }

    /// What starting `handle` sends, if it is a persistent request we saw created.
    #[inline]
    pub fn get(&self, handle: usize) -> Option<Planned> {
        if handle == EMPTY || handle == TOMBSTONE {
            return None;
        }
        let mut i = slot(handle);
        for _ in 0..MAX_PROBE {
            let e = &self.entries[i];
            let h = e.handle.load(Acquire);
            if h == handle {
                let what = e.what.load(Relaxed);
                let bytes = e.bytes.load(Relaxed);
                return if what & COLL_TAG != 0 {
                    Some(Planned::Collective { key: what & !COLL_TAG, bytes })
                } else {
                    // A send's `what` is its destination, a u32 (`insert`).
                    u32::try_from(what).ok().map(|dest| Planned::Send { dest, bytes })
                };
            }
            if h == EMPTY {
                return None;
            }
            i = (i + 1) & (CAPACITY - 1);
        }
        None
    }

    pub fn remove(&self, handle: usize) {
        let mut i = slot(handle);
        for _ in 0..MAX_PROBE {
            let e = &self.entries[i];
            let h = e.handle.load(Acquire);
            if h == handle {
                e.handle.store(TOMBSTONE, Release);
                return;
            }
            if h == EMPTY {
                return;
            }
            i = (i + 1) & (CAPACITY - 1);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_and_reuse() {
        let t = PersistentTable::new();
        t.insert(0x2c00_0001, Planned::Send { dest: 3, bytes: 400 });
        t.insert(0x7f00_1234_5678, Planned::Collective { key: 42, bytes: 8 });
        assert_eq!(t.get(0x2c00_0001), Some(Planned::Send { dest: 3, bytes: 400 }));
        assert_eq!(t.get(0x7f00_1234_5678), Some(Planned::Collective { key: 42, bytes: 8 }));
        t.remove(0x2c00_0001);
        assert_eq!(t.get(0x2c00_0001), None);
        // A recycled handle gets its new meaning.
        t.insert(0x7f00_1234_5678, Planned::Send { dest: 1, bytes: 1 });
        assert_eq!(t.get(0x7f00_1234_5678), Some(Planned::Send { dest: 1, bytes: 1 }));
        assert_eq!(t.get(0), None);
        // Many inserts and removals never lose live entries.
        for h in 1..5000usize {
            t.insert(h * 8, Planned::Send { dest: u32::try_from(h).unwrap(), bytes: h as u64 });
            if h % 2 == 0 {
                t.remove(h * 8);
            }
        }
        for h in 1..5000usize {
            let want = (h % 2 == 1).then_some(Planned::Send { dest: u32::try_from(h).unwrap(), bytes: h as u64 });
            assert_eq!(t.get(h * 8), want, "handle {h}");
        }
        assert_eq!(t.dropped(), 0);
    }
}
