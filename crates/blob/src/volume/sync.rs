//! Group commit and per-id locks: the two small concurrency helpers of the volume engine.
//!
//! [`GroupSync`] lets many writers of one file share `fdatasync` calls: a writer that needs
//! its bytes durable asks for "a sync that started after my write"; while one sync runs,
//! every writer that finishes meanwhile waits for it and then shares the next one.
//!
//! [`IdLocks`] serialises mutations (put, delete, set_class) of one blob id without
//! serialising different ids, and without a lock table that grows with the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, OwnedMutexGuard};

use crate::error::{BlobError, Result};

/// Locks a mutex, ignoring poisoning: every critical section here leaves consistent state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct SyncState {
    /// Syncs started so far (the running one included).
    started: u64,
    /// Highest sync number that completed successfully.
    completed: u64,
    running: bool,
    /// A failed sync poisons the file: after an fsync error the kernel may have dropped the
    /// dirty pages, so a later successful fsync proves nothing.
    failed: Option<String>,
}

/// Shares fsyncs of one file between concurrent writers.
#[derive(Default)]
pub(crate) struct GroupSync {
    state: Mutex<SyncState>,
    done: Notify,
}

/// Resets `running` if the leader's future is dropped mid-sync, so waiters elect a new one.
struct LeaderGuard<'a> {
    sync: &'a GroupSync,
    armed: bool,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.sync.state).running = false;
            self.sync.done.notify_waiters();
        }
    }
}

impl GroupSync {
    /// Returns once a sync that started after this call has completed. `run` performs the
    /// sync (blocking; run on the blocking pool); it is called by whichever waiter leads.
    /// Returns whether this caller ran a sync itself (for statistics).
    pub(crate) async fn sync<F>(&self, what: &str, run: F) -> Result<bool>
    where
        F: Fn() -> std::io::Result<()> + Send + Sync + Clone + 'static,
    {
        // Any sync already running may have started before the caller's write finished.
        let need = lock(&self.state).started + 1;
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let lead = {
                let mut s = lock(&self.state);
                if let Some(msg) = &s.failed {
                    return Err(BlobError::io(what, std::io::Error::other(msg.clone())));
                }
                if s.completed >= need {
                    return Ok(false);
                }
                if s.running {
                    None
                } else {
                    s.running = true;
                    s.started += 1;
                    Some(s.started)
                }
            };
            let Some(n) = lead else {
                notified.await;
                continue;
            };
            let mut guard = LeaderGuard { sync: self, armed: true };
            let run = run.clone();
            let outcome = tokio::task::spawn_blocking(run)
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            guard.armed = false;
            {
                let mut s = lock(&self.state);
                s.running = false;
                match &outcome {
                    Ok(()) => s.completed = s.completed.max(n),
                    Err(e) => s.failed = Some(e.to_string()),
                }
            }
            self.done.notify_waiters();
            outcome.map_err(|e| BlobError::io(what, e))?;
            if n >= need {
                return Ok(true);
            }
        }
    }
}

/// Per-id async mutexes, created on demand and dropped when nobody holds or waits for them.
#[derive(Default)]
pub(crate) struct IdLocks {
    map: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds the lock of one id; releases it (and forgets the mutex if unused) on drop.
pub(crate) struct IdGuard {
    locks: Arc<IdLocks>,
    id: u64,
    held: Option<OwnedMutexGuard<()>>,
    mutex: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl IdLocks {
    /// Owned, so it can move into a task that finishes a mutation.
    pub(crate) async fn lock(self: &Arc<Self>, id: u64) -> IdGuard {
        let mutex = Arc::clone(lock(&self.map).entry(id).or_default());
        // Built before waiting so a cancelled wait still cleans up the table entry.
        let mut guard =
            IdGuard { locks: Arc::clone(self), id, held: None, mutex: Some(Arc::clone(&mutex)) };
        guard.held = Some(mutex.lock_owned().await);
        guard
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.map).len()
    }
}

impl Drop for IdGuard {
    fn drop(&mut self) {
        // Every clone except waiters' in-flight futures is created and dropped under the map
        // lock, so a count of 1 (the map's own) means nobody else holds or waits.
        let mut map = lock(&self.locks.map);
        self.held.take();
        self.mutex.take();
        if map.get(&self.id).is_some_and(|m| Arc::strong_count(m) == 1) {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_share_syncs() {
        let sync = Arc::new(GroupSync::default());
        let runs = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (sync, runs) = (Arc::clone(&sync), Arc::clone(&runs));
            tasks.push(tokio::spawn(async move {
                sync.sync("test", move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    Ok(())
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let n = runs.load(Ordering::SeqCst);
        assert!((1..=4).contains(&n), "20 concurrent waiters needed {n} syncs");
        // A later caller always gets a sync of its own.
        let before = runs.load(Ordering::SeqCst);
        let r = Arc::clone(&runs);
        sync.sync("test", move || {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), before + 1);
    }

    #[tokio::test]
    async fn a_failed_sync_poisons() {
        let sync = GroupSync::default();
        assert!(sync.sync("t", || Err(std::io::Error::other("disk gone"))).await.is_err());
        assert!(sync.sync("t", || Ok(())).await.is_err(), "no sync may succeed after a failure");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn id_locks_exclude_and_clean_up() {
        let locks = Arc::new(IdLocks::default());
        let g = locks.lock(1).await;
        let other = locks.lock(2).await;
        let waiter = {
            let locks = Arc::clone(&locks);
            tokio::spawn(async move {
                let _g = locks.lock(1).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(g);
        waiter.await.unwrap();
        drop(other);
        assert_eq!(locks.len(), 0);
        // A cancelled wait leaves nothing behind either.
        let g = locks.lock(3).await;
        let cancelled = tokio::time::timeout(Duration::from_millis(10), locks.lock(3)).await;
        assert!(cancelled.is_err());
        drop(g);
        assert_eq!(locks.len(), 0);
    }
}
