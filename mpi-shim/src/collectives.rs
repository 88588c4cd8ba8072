//! Collective calls per (communicator, operation, mode, root): a fixed-size lock-free hash
//! table, so recording a call is a probe and two atomic adds.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub use straddle_proto::{CollectiveMode as Mode, CollectiveOp as Op};

const CAPACITY: usize = 4096; // power of two
const MAX_PROBE: usize = 64;

/// Packs (communicator id, op, mode, root) into one non-zero key.
#[inline(always)]
pub fn key(comm_id: u32, op: Op, mode: Mode, root: i32) -> u64 {
    ((comm_id as u64 & 0x7f_ffff) << 41) | ((op as u64 & 0x3f) << 35) | ((mode as u64 & 0x7) << 32) | (root as u32 as u64)
}

/// The parts of a key, for the report.
#[allow(clippy::cast_possible_truncation)] // each field is masked to fewer bits than its type holds
pub fn unpack(key: u64) -> (u32, i32, i32, i32) {
    let comm_id = ((key >> 41) & 0x7f_ffff) as u32;
    let op = ((key >> 35) & 0x3f) as i32;
    let mode = ((key >> 32) & 0x7) as i32;
    let root = (key & 0xffff_ffff) as u32 as i32;
    (comm_id, op, mode, root)
}

struct Entry {
    key: AtomicU64,
    calls: AtomicU64,
    bytes: AtomicU64,
}

pub struct CollectiveTable {
    entries: Box<[Entry]>,
    dropped: AtomicU64,
}

impl Default for CollectiveTable {
    fn default() -> Self {
        Self::new()
    }
}

impl CollectiveTable {
    pub fn new() -> CollectiveTable {
        let entries = (0..CAPACITY).map(|_| Entry { key: AtomicU64::new(0), calls: AtomicU64::new(0), bytes: AtomicU64::new(0) }).collect();
        CollectiveTable { entries, dropped: AtomicU64::new(0) }
    }

    /// Records one call. `key` must be non-zero (communicator ids start at 1).
    #[inline]
    pub fn record(&self, key: u64, bytes: u64) {
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize & (CAPACITY - 1);
        for _ in 0..MAX_PROBE {
            let e = &self.entries[i];
            let k = e.key.load(Relaxed);
            let hit = k == key
                || (k == 0
                    && match e.key.compare_exchange(0, key, Relaxed, Relaxed) {
                        Ok(_) => true,
                        Err(other) => other == key,
                    });
            if hit {
                e.calls.fetch_add(1, Relaxed);
                e.bytes.fetch_add(bytes, Relaxed);
                return;
            }
            i = (i + 1) & (CAPACITY - 1);
        }
        self.dropped.fetch_add(1, Relaxed);
    }

    /// Every used entry as (key, calls, bytes).
    pub fn snapshot(&self, out: &mut Vec<(u64, u64, u64)>) {
        out.clear();
        for e in self.entries.iter() {
            let k = e.key.load(Relaxed);
            if k != 0 {
                out.push((k, e.calls.load(Relaxed), e.bytes.load(Relaxed)));
            }
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
    fn keys_round_trip_including_negative_roots() {
        let k = key(7, Op::Bcast, Mode::Persistent, -3);
        assert_eq!(unpack(k), (7, Op::Bcast as i32, Mode::Persistent as i32, -3));
        let k = key(0x7f_ffff, Op::NeighborAlltoallw, Mode::SiteAware, 12345);
        assert_eq!(unpack(k), (0x7f_ffff, Op::NeighborAlltoallw as i32, Mode::SiteAware as i32, 12345));
    }

    #[test]
    fn records_and_counts_overflow() {
        let t = CollectiveTable::new();
        let a = key(1, Op::Allreduce, Mode::Blocking, -1);
        t.record(a, 8);
        t.record(a, 8);
        let mut s = Vec::new();
        t.snapshot(&mut s);
        assert_eq!(s, vec![(a, 2, 16)]);
        for c in 1..=(u32::try_from(CAPACITY).unwrap() + 10) {
            t.record(key(c, Op::Bcast, Mode::Blocking, 0), 1);
        }
        t.snapshot(&mut s);
        assert!(s.len() <= CAPACITY);
        assert_eq!(s.len() as u64 + t.dropped(), CAPACITY as u64 + 11);
    }
}
