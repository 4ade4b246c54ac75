//! The shared `JobStore` contract suite on the in-memory reference model.

use std::sync::Arc;

use quicktok_pipeline::jobs::{JobStore, MemoryJobStore, testsuite};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_job_store_passes_the_suite() {
    testsuite::run_all(|| async { Arc::new(MemoryJobStore::new()) as Arc<dyn JobStore> }).await;
}
