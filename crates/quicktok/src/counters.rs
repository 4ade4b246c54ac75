//! The counter service's store in production: the metadata store's `counters` table behind
//! the social crate's `CounterStore` trait, and the repair command's work.

use quicktok_meta::{MetaError, MetaStore};
use quicktok_social::{CounterKey, CounterStore, SocialError};

/// [`CounterStore`] over [`MetaStore::counters`].
#[derive(Debug, Clone)]
pub struct MetaCounterStore {
    meta: MetaStore,
}

impl MetaCounterStore {
    pub fn new(meta: MetaStore) -> Self {
        MetaCounterStore { meta }
    }
}

fn meta_key(key: &CounterKey) -> quicktok_meta::CounterKey<'static> {
    quicktok_meta::CounterKey {
        subject: key.subject.as_str(),
        id: key.id,
        metric: key.metric.as_str(),
    }
}

fn store_error(e: MetaError) -> SocialError {
    SocialError::store(matches!(e, MetaError::Unavailable(_)), e)
}

#[async_trait::async_trait]
impl CounterStore for MetaCounterStore {
    async fn load(&self, keys: &[CounterKey]) -> quicktok_social::Result<Vec<i64>> {
        let keys: Vec<_> = keys.iter().map(meta_key).collect();
        self.meta.counters().get(&keys).await.map_err(store_error)
    }

    async fn apply(&self, deltas: &[(CounterKey, i64)]) -> quicktok_social::Result<()> {
        let deltas: Vec<_> = deltas.iter().map(|(k, d)| (meta_key(k), *d)).collect();
        self.meta.counters().add(&deltas).await.map_err(store_error)
    }
}

/// What [`repair`] rewrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    /// Counters written.
    pub counters: u64,
    /// Users' stored followee lists written.
    pub following_lists: u64,
}

/// `quicktok counters repair`: recomputes every counter from the tables the counts come
/// from and overwrites the `counters` table, and rebuilds the stored followee lists (the
/// feed's other figure kept beside its source) from `follows`.
pub async fn repair(meta: &MetaStore) -> anyhow::Result<Repaired> {
    let counters = meta.counters().rebuild().await?;
    let following_lists = meta.social().rebuild_following_lists().await?;
    Ok(Repaired { counters, following_lists })
}
