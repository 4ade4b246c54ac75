//! Runs the backend-neutral `testsuite` against `FileLog`, with and without fsync and with
//! segments small enough that the suite's data spans many of them.

use std::sync::{Arc, Mutex};

use quicktok_log::{EventLog, FileLog, LogConfig, SyncPolicy, testsuite};
use tempfile::TempDir;

async fn run(config: LogConfig) {
    // The directories must outlive the logs the factory hands out.
    let dirs: Arc<Mutex<Vec<TempDir>>> = Arc::default();
    testsuite::run_all(|| {
        let dirs = Arc::clone(&dirs);
        let config = config.clone();
        async move {
            let dir = tempfile::tempdir().unwrap();
            let log = FileLog::open(dir.path(), config).await.unwrap();
            dirs.lock().unwrap().push(dir);
            Arc::new(log) as Arc<dyn EventLog>
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_default_config() {
    run(LogConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_small_segments_no_fsync() {
    run(crate::small(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_interval_sync() {
    let sync = SyncPolicy::Interval(std::time::Duration::from_millis(5));
    run(LogConfig { sync, ..crate::small(1000) }).await;
}
