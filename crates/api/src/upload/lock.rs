//! One lock per upload, in process: a `PATCH` or `DELETE` holds its upload's lock from
//! before it reads the stored offset until the new offset is stored, so two requests never
//! write the same partial file. A second request waits a bounded time, then is refused
//! (423 Locked). Entries are removed when nobody holds or awaits them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use quicktok_core::Id;
use tokio::sync::OwnedMutexGuard;

type Slot = Arc<tokio::sync::Mutex<()>>;

/// The lock table.
#[derive(Debug, Default)]
pub struct UploadLocks {
    slots: Mutex<HashMap<Id, Slot>>,
}

/// Holds one upload's lock until dropped.
#[derive(Debug)]
pub struct UploadLock {
    id: Id,
    guard: Option<OwnedMutexGuard<()>>,
    locks: Arc<UploadLocks>,
}

impl UploadLocks {
    /// Takes upload `id`'s lock, waiting at most `wait`; `None` when it stayed busy.
    pub async fn acquire(self: &Arc<Self>, id: Id, wait: Duration) -> Option<UploadLock> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.entry(id).or_default().clone()
        };
        let guard = match slot.clone().try_lock_owned() {
            Ok(g) => Some(g),
            Err(_) => tokio::time::timeout(wait, slot.clone().lock_owned()).await.ok(),
        };
        // The guard keeps its own reference; ours must go before the slot can be released.
        drop(slot);
        match guard {
            Some(guard) => Some(UploadLock { id, guard: Some(guard), locks: self.clone() }),
            None => {
                self.release_slot(id);
                None
            }
        }
    }

    /// Forgets `id`'s slot if nobody else holds or awaits it. Called with this caller's
    /// guard and slot reference already dropped; every clone is made under the table's
    /// mutex, so a count of 1 (the table's own) means nobody else has it.
    fn release_slot(&self, id: Id) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.get(&id).is_some_and(|s| Arc::strong_count(s) == 1) {
            slots.remove(&id);
        }
    }

    /// How many uploads have a slot (held or awaited).
    pub fn len(&self) -> usize {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for UploadLock {
    fn drop(&mut self) {
        // The guard holds a reference to the slot: drop it before counting.
        drop(self.guard.take());
        self.locks.release_slot(self.id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time() {
        let locks = Arc::new(UploadLocks::default());
        let a = locks.acquire(Id(1), Duration::ZERO).await.unwrap();
        assert!(locks.acquire(Id(1), Duration::from_millis(20)).await.is_none());
        let other = locks.acquire(Id(2), Duration::ZERO).await.unwrap();
        assert_eq!(locks.len(), 2);
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(
                async move { locks.acquire(Id(1), Duration::from_secs(5)).await.is_some() },
            )
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        assert!(waiter.await.unwrap());
        drop(other);
        assert!(locks.is_empty());
    }
}
