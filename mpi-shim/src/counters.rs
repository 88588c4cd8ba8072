//! Per-destination point-to-point and one-sided counters: one cache line per world rank,
//! relaxed atomic adds, read by the reporter thread.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters towards one destination rank. Aligned so ranks never share a cache line.
#[repr(align(64))]
#[derive(Default)]
pub struct PeerSlot {
    pub p2p_bytes: AtomicU64,
    pub p2p_messages: AtomicU64,
    pub rma_put_bytes: AtomicU64,
    pub rma_get_bytes: AtomicU64,
    pub rma_operations: AtomicU64,
}

/// A plain copy of one slot, as the reporter sees it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PeerValues {
    pub p2p_bytes: u64,
    pub p2p_messages: u64,
    pub rma_put_bytes: u64,
    pub rma_get_bytes: u64,
    pub rma_operations: u64,
}

impl PeerValues {
    pub fn is_zero(&self) -> bool {
        *self == PeerValues::default()
    }
}

/// Counters for every world rank, plus one extra slot (index `world_size`) that benchmarks
/// use to take the full counting path for `MPI_PROC_NULL`; it is never reported.
pub struct PeerCounters {
    slots: Box<[PeerSlot]>,
    world_size: usize,
    /// Several application threads may count at once (MPI_THREAD_MULTIPLE): adds are
    /// locked read-modify-writes. Otherwise one thread counts at a time and a plain load
    /// and store suffice (the reporter only reads).
    concurrent: bool,
}

#[inline(always)]
fn add(c: &AtomicU64, v: u64, concurrent: bool) {
    if concurrent {
        c.fetch_add(v, Relaxed);
    } else {
        c.store(c.load(Relaxed).wrapping_add(v), Relaxed);
    }
}

impl PeerCounters {
    pub fn new(world_size: usize, concurrent: bool) -> PeerCounters {
        let slots = (0..=world_size).map(|_| PeerSlot::default()).collect();
        PeerCounters { slots, world_size, concurrent }
    }

    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// The slot that absorbs benchmark-only `MPI_PROC_NULL` counting.
    pub fn bench_slot(&self) -> usize {
        self.world_size
    }

    #[inline(always)]
    pub fn add_p2p(&self, dest: usize, bytes: u64) {
        if let Some(s) = self.slots.get(dest) {
            add(&s.p2p_bytes, bytes, self.concurrent);
            add(&s.p2p_messages, 1, self.concurrent);
        }
    }

    #[inline(always)]
    pub fn add_rma(&self, target: usize, put_bytes: u64, get_bytes: u64) {
        if let Some(s) = self.slots.get(target) {
            add(&s.rma_put_bytes, put_bytes, self.concurrent);
            add(&s.rma_get_bytes, get_bytes, self.concurrent);
            add(&s.rma_operations, 1, self.concurrent);
        }
    }

    /// Current values towards `dest` (a world rank or the bench slot).
    pub fn read(&self, dest: usize) -> PeerValues {
        let s = &self.slots[dest];
        PeerValues {
            p2p_bytes: s.p2p_bytes.load(Relaxed),
            p2p_messages: s.p2p_messages.load(Relaxed),
            rma_put_bytes: s.rma_put_bytes.load(Relaxed),
            rma_get_bytes: s.rma_get_bytes.load(Relaxed),
            rma_operations: s.rma_operations.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_adds_lose_nothing() {
        let c = PeerCounters::new(2, true);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..10_000).for_each(|_| c.add_p2p(1, 3)));
            }
        });
        assert_eq!(c.read(1).p2p_messages, 40_000);
        assert_eq!(c.read(1).p2p_bytes, 120_000);
    }

    #[test]
    fn counts_per_destination_and_ignores_out_of_range() {
        let c = PeerCounters::new(4, false);
        c.add_p2p(1, 100);
        c.add_p2p(1, 28);
        c.add_rma(3, 8, 0);
        c.add_rma(3, 0, 16);
        c.add_p2p(99, 5);
        assert_eq!(c.read(1).p2p_bytes, 128);
        assert_eq!(c.read(1).p2p_messages, 2);
        assert_eq!(c.read(3).rma_put_bytes, 8);
        assert_eq!(c.read(3).rma_get_bytes, 16);
        assert_eq!(c.read(3).rma_operations, 2);
        assert!(c.read(0).is_zero());
        c.add_p2p(c.bench_slot(), 1);
        assert_eq!(c.read(4).p2p_messages, 1);
    }
}
