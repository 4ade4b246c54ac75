//! A whole QuickTok app for one benchmark: every role, embedded defaults, a temporary data
//! directory, port 0 and no rate limits, stopped gracefully at the end.

use std::sync::Arc;

use quicktok_social::CounterService;

/// A running app and what benchmarks reach into.
pub struct BenchApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub state: quicktok_api::AppState,
    pub counters: Arc<CounterService>,
    pub config: quicktok::Config,
    shutdown: quicktok_core::Shutdown,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl BenchApp {
    pub async fn start() -> anyhow::Result<BenchApp> {
        let dir = tempfile::tempdir()?;
        let mut config = quicktok::Config::default();
        config.server.data_dir = dir.path().to_owned();
        config.server.listen = "127.0.0.1:0".into();
        config.rate_limit.enabled = false;
        let shutdown = quicktok_core::Shutdown::new();
        let app = quicktok::App::start(config.clone(), shutdown.clone()).await?;
        let base = app.url().ok_or_else(|| anyhow::anyhow!("no api"))?;
        let state = app.api_state().ok_or_else(|| anyhow::anyhow!("no api"))?.clone();
        let counters = app.counters().clone();
        let running = tokio::spawn(app.run_until_stopped());
        Ok(BenchApp { base, state, counters, config, shutdown, running, _dir: dir })
    }

    /// Graceful shutdown; the app's own error, if it failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.running.await?
    }
}
