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

/// `quicktok counters repair`: recomputes every counter from the tables the counts come
/// from and overwrites the `counters` table. Returns how many counters it wrote.
pub async fn repair(meta: &MetaStore) -> anyhow::Result<u64> {
    Ok(meta.counters().rebuild().await?)
}
