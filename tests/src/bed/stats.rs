//! The WAN relay's counters: a small file the relay maps shared and bumps with atomic adds,
//! so any process can read exact bytes and frames per site pair at any moment.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const MAGIC: u64 = 0x5354_5244_5741_4e31; // "STRDWAN1"
/// Counters per ordered site pair.
pub const FIELDS: usize = 4;
pub const SENT_BYTES: usize = 0;
pub const SENT_FRAMES: usize = 1;
pub const DELIVERED_BYTES: usize = 2;
pub const DROPPED_FRAMES: usize = 3;

/// Bytes and frames that crossed from one site to another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairCounters {
    /// Entered the relay from the source site, bound for the destination.
    pub sent_bytes: u64,
    pub sent_frames: u64,
    /// Written into the destination site after the delay.
    pub delivered_bytes: u64,
    /// Dropped by the loss model.
    pub dropped_frames: u64,
}

fn len(sites: usize) -> usize {
    8 * (2 + sites * sites * FIELDS)
}

/// The relay's writable view.
pub struct StatsMap {
    ptr: *mut AtomicU64,
    sites: usize,
}

// SAFETY: the mapping is only accessed through atomics.
unsafe impl Send for StatsMap {}
// SAFETY: as above.
unsafe impl Sync for StatsMap {}

impl StatsMap {
    pub fn create(path: &Path, sites: usize) -> std::io::Result<StatsMap> {
        let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        f.set_len(len(sites) as u64)?;
        use std::os::fd::AsRawFd;
        // SAFETY: mapping a file we just sized; the mapping outlives nothing it points to.
        let p =
            unsafe { libc::mmap(std::ptr::null_mut(), len(sites), libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, f.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let s = StatsMap { ptr: p as *mut AtomicU64, sites };
        s.word(1).store(sites as u64, Relaxed);
        s.word(0).store(MAGIC, Relaxed);
        Ok(s)
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < len(self.sites) / 8);
        // SAFETY: in bounds of the mapping, 8-byte aligned (page-aligned base).
        unsafe { &*self.ptr.add(i) }
    }

    #[inline]
    pub fn add(&self, src: usize, dst: usize, field: usize, v: u64) {
        self.word(2 + (src * self.sites + dst) * FIELDS + field).fetch_add(v, Relaxed);
    }
}

/// Reads the counters of every ordered pair: `out[src][dst]`.
pub fn read(path: &Path) -> std::io::Result<Vec<Vec<PairCounters>>> {
    let bytes = std::fs::read(path)?;
    let word = |i: usize| -> u64 { u64::from_ne_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap()) };
    if bytes.len() < 16 || word(0) != MAGIC {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is no relay stats file", path.display())));
    }
    let n = usize::try_from(word(1)).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "relay stats: too many sites"))?;
    if bytes.len() < len(n) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "relay stats file too short"));
    }
    Ok((0..n)
        .map(|s| {
            (0..n)
                .map(|d| {
                    let b = 2 + (s * n + d) * FIELDS;
                    PairCounters {
                        sent_bytes: word(b + SENT_BYTES),
                        sent_frames: word(b + SENT_FRAMES),
                        delivered_bytes: word(b + DELIVERED_BYTES),
                        dropped_frames: word(b + DROPPED_FRAMES),
                    }
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_written_by_the_map_are_read_back() {
        let dir = std::env::temp_dir().join(format!("straddle-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("wan.stats");
        let m = StatsMap::create(&p, 3).unwrap();
        m.add(0, 2, SENT_BYTES, 1500);
        m.add(0, 2, SENT_FRAMES, 1);
        m.add(2, 1, DROPPED_FRAMES, 4);
        let r = read(&p).unwrap();
        assert_eq!(r[0][2], PairCounters { sent_bytes: 1500, sent_frames: 1, delivered_bytes: 0, dropped_frames: 0 });
        assert_eq!(r[2][1].dropped_frames, 4);
        assert_eq!(r[1][0], PairCounters::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
