//! A store whose disk can be made to fail, for tests of "a refused write changes nothing".

use std::sync::atomic::{AtomicBool, Ordering};

use super::memory::MemoryStore;
use super::{Sequence, Snapshot, StateStore, StoreError, Write};

#[derive(Default)]
pub struct FaultyStore {
    pub inner: MemoryStore,
    pub full: AtomicBool,
}

impl FaultyStore {
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.full.load(Ordering::SeqCst) {
            return Err(StoreError::Io("No space left on device (os error 28)".into()));
        }
        Ok(())
    }
}

impl StateStore for FaultyStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.inner.load()
    }

    fn commit(&self, writes: &[Write]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.commit(writes)
    }

    fn issue(&self, seq: Sequence, n: u64) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.issue(seq, n)
    }
}
