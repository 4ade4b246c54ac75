//! Wiring: turns a [`Config`] into a running platform (metadata store, event log, API) and
//! stops it gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use quicktok_api::{ApiDeps, AppState};
use quicktok_blob::{BlobBackend, BlobStore};
use quicktok_core::clock::SharedClock;
use quicktok_core::{IdGenerator, Shutdown, SystemClock};
use quicktok_log::{EventLog, FileLog};
use quicktok_meta::MetaStore;
use quicktok_pipeline::ComplianceFilter;
use quicktok_rank::{RankerService, ViewQualifier};
use quicktok_social::CounterService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::{Config, Role};
use crate::counters::MetaCounterStore;
use crate::jobs::MetaJobStore;
use crate::stages::{MediaStages, StageDeps};
use quicktok_pipeline::jobs::{JobStore, Runner};

/// How often background housekeeping (rate-limit buckets, metrics upkeep, log retention) runs.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// A running QuickTok node.
pub struct App {
    /// The address HTTP is served on (the real port when the config asked for port 0).
    pub addr: Option<SocketAddr>,
    shutdown: Shutdown,
    tasks: JoinSet<anyhow::Result<()>>,
    grace: Duration,
    meta: MetaStore,
    log: Arc<dyn EventLog>,
    blobs: BlobBackend,
    counters: Arc<CounterService>,
    state: Option<AppState>,
    /// The recommender whose state is flushed once more at shutdown (when persisted).
    recommend_state: Option<(Arc<quicktok_recommend::Recommender>, SharedClock)>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl App {
    /// Opens the backends and starts the roles of `config`. Returns once the HTTP listener
    /// is bound, so the server is reachable as soon as this returns.
    pub async fn start(config: Config, shutdown: Shutdown) -> anyhow::Result<App> {
        Self::start_with_clock(config, shutdown, Arc::new(SystemClock)).await
    }

    /// As [`App::start`], with a clock the caller controls.
    pub async fn start_with_clock(
        config: Config,
        shutdown: Shutdown,
        clock: SharedClock,
    ) -> anyhow::Result<App> {
        let data_dir = config.server.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let meta = MetaStore::connect(&config.meta, &data_dir)
            .await
            .context("opening the metadata store")?;
        let log: Arc<dyn EventLog> = Arc::new(
            FileLog::open(&data_dir.join("log"), config.log.clone())
                .await
                .context("opening the event log")?,
        );
        let blobs = BlobBackend::open(&config.blob, &data_dir, clock.clone())
            .await
            .context("opening the blob store")?;
        let ids = Arc::new(IdGenerator::new(config.server.node_id)?);
        let mut tasks = JoinSet::new();
        let jobs: Arc<dyn JobStore> = Arc::new(MetaJobStore::new(meta.clone()));
        // Every role that counts (the API, the play statistics) shares one counter service,
        // flushed on an interval and once more when the node stops.
        let counters = Arc::new(CounterService::new(
            Arc::new(MetaCounterStore::new(meta.clone())),
            config.social.counters.clone(),
            clock.clone(),
        ));
        {
            let (counters, token) = (counters.clone(), shutdown.clone());
            tasks.spawn(async move {
                counters.run_flusher(token).await;
                Ok(())
            });
        }

        if config.server.roles.contains(&Role::Worker) {
            let mut media = config.processing.clone();
            // Job dirs next to the uploads and sources, so importing a source is a hard link.
            if media.work_root.is_none() {
                media.work_root = Some(data_dir.join("work").join("jobs"));
            }
            if let Some(root) = &media.work_root {
                let removed = quicktok_media::JobDir::remove_stale(root);
                if removed > 0 {
                    tracing::info!(removed, "removed job dirs left by an earlier crash");
                }
            }
            let stages = MediaStages::new(StageDeps {
                meta: meta.clone(),
                blobs: blobs.store(),
                log: log.clone(),
                clock: clock.clone(),
                ids: ids.clone(),
                data_dir: data_dir.clone(),
                media,
                pipeline: config.pipeline.clone(),
                stories: config.social.stories.clone(),
            })
            .await
            .context("starting the pipeline stages")?;
            let stages = Arc::new(stages);
            let runner = Runner::new(
                jobs.clone(),
                stages.clone(),
                clock.clone(),
                config.pipeline.runner.clone(),
            );
            let (sweep_jobs, sweep_stop) = (jobs.clone(), shutdown.clone());
            let every = std::time::Duration::from_millis(config.pipeline.sweep_interval_ms.max(10));
            tasks.spawn(async move {
                // At start-up (a crash may have cut a settling short), then periodically.
                loop {
                    stages.sweep(sweep_jobs.as_ref()).await;
                    tokio::select! {
                        _ = sweep_stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(every) => {}
                    }
                }
            });
            let wake = runner.waker();
            let token = shutdown.clone();
            tasks.spawn(async move {
                runner.run(token).await;
                Ok(())
            });
            // The following feed's fan-out, follow backfill and unfollow cleanup.
            for topic in [crate::notifications::VIDEOS_TOPIC, quicktok_core::SOCIAL_TOPIC] {
                let (l, m, c, t) = (log.clone(), meta.clone(), clock.clone(), shutdown.clone());
                let feed = config.social.feed.clone();
                tasks.spawn(supervise("feed", shutdown.clone(), move || {
                    crate::feed::run(
                        l.clone(),
                        m.clone(),
                        feed.clone(),
                        c.clone(),
                        topic,
                        t.clone(),
                    )
                }));
            }
            let (l, j, m, t) = (log.clone(), jobs.clone(), meta.clone(), shutdown.clone());
            tasks.spawn(supervise("pipeline enqueuer", shutdown.clone(), move || {
                crate::pipeline::run_enqueuer(
                    l.clone(),
                    j.clone(),
                    m.clone(),
                    wake.clone(),
                    t.clone(),
                )
            }));
        }

        let mut trending = None;
        if config.server.roles.contains(&Role::Ranker) {
            let service = RankerService::open(
                data_dir.join("rank"),
                log.clone(),
                config.rank.clone(),
                clock.clone(),
            )
            .await
            .context("opening the trending rankers")?;
            trending = Some(service.handle());
            let token = shutdown.clone();
            tasks.spawn(async move { service.run(token).await.context("trending rankers") });
        }
        let views = Arc::new(
            ViewQualifier::new(config.rank.qualifier.clone(), clock.clone())
                .context("view qualifier")?,
        );

        // The search index lives in the data dir of the node that serves or feeds it.
        let search = if config.server.roles.contains(&Role::Api)
            || config.server.roles.contains(&Role::Indexer)
        {
            let dir = data_dir.join("search");
            let search_config = config.search.clone();
            let index = tokio::task::spawn_blocking(move || {
                quicktok_search::SearchIndex::open(&dir, search_config)
            })
            .await?
            .context("opening the search index")?;
            Some(Arc::new(index))
        } else {
            None
        };
        if let (true, Some(index)) = (config.server.roles.contains(&Role::Indexer), &search) {
            let (l, m, c, i, t) =
                (log.clone(), meta.clone(), counters.clone(), index.clone(), shutdown.clone());
            let every = Duration::from_millis(config.search.commit_interval_ms.max(10));
            tasks.spawn(supervise("search indexer", shutdown.clone(), move || {
                crate::search::run_indexer(
                    l.clone(),
                    m.clone(),
                    c.clone(),
                    i.clone(),
                    every,
                    t.clone(),
                )
            }));
            let refresh = Duration::from_secs(config.search.popularity_refresh_secs);
            if !refresh.is_zero() {
                let (m, c, i, t) =
                    (meta.clone(), counters.clone(), index.clone(), shutdown.clone());
                tasks.spawn(async move {
                    loop {
                        tokio::select! {
                            _ = t.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(refresh) => {}
                        }
                        // Committed with the offset already committed: a crash replays from
                        // there, and replays are idempotent.
                        let refreshed = crate::search::refresh_all(&i, &m, &c, |_| {}).await;
                        let offset = i.committed_offset().unwrap_or(0);
                        let committed = {
                            let i = i.clone();
                            tokio::task::spawn_blocking(move || i.commit(offset)).await
                        };
                        match (refreshed, committed) {
                            (Ok(n), Ok(Ok(()))) => {
                                tracing::debug!(videos = n, "search popularity refreshed")
                            }
                            (Err(e), _) => {
                                tracing::warn!(error = %e, "search popularity refresh failed")
                            }
                            (_, Err(e)) => tracing::warn!(error = %e, "search commit failed"),
                            (_, Ok(Err(e))) => tracing::warn!(error = %e, "search commit failed"),
                        }
                    }
                });
            }
        }

        let mut addr = None;
        let mut api_state = None;
        let mut recommend_state = None;
        if config.server.roles.contains(&Role::Api) {
            // Comments go through the same sensitive-word lists as video texts.
            let comment_filter = Arc::new(
                ComplianceFilter::new(&config.pipeline.compliance)
                    .context("loading the sensitive-word lists")?,
            );
            // Each API node keeps its own recommender, fed from the log (see recommend.rs).
            let (recommender, offsets) =
                crate::recommend::load(&config.recommend, &meta, log.as_ref(), &clock)
                    .await
                    .context("loading the recommender")?;
            let feeder = crate::recommend::Feeder {
                rec: recommender.clone(),
                config: config.recommend.clone(),
                meta: meta.clone(),
                log: log.clone(),
                clock: clock.clone(),
            };
            for (topic, next) in offsets {
                tasks.spawn(crate::recommend::follow(
                    feeder.clone(),
                    topic,
                    next,
                    shutdown.clone(),
                ));
            }
            tasks.spawn(crate::recommend::train_periodically(
                recommender.clone(),
                config.recommend.clone(),
                clock.clone(),
                shutdown.clone(),
            ));
            if config.recommend.persist_interval_ms > 0 {
                tasks.spawn(crate::recommend::persist_periodically(
                    recommender.clone(),
                    meta.clone(),
                    config.recommend.clone(),
                    clock.clone(),
                    shutdown.clone(),
                ));
                recommend_state = Some((recommender.clone(), clock.clone()));
            }
            let state = AppState::new(ApiDeps {
                api: config.api.clone(),
                auth: config.auth.clone(),
                rate_limit: config.rate_limit.clone(),
                flags: config.flags.clone(),
                media: config.media.clone(),
                uploads: config.uploads.clone(),
                data_dir: data_dir.clone(),
                meta: meta.clone(),
                log: log.clone(),
                blobs: blobs.store(),
                trending,
                views,
                jobs: jobs.clone(),
                counters: counters.clone(),
                comment_filter,
                recommender: Some(recommender),
                feed: config.social.feed.clone(),
                search: search.clone(),
                clock: clock.clone(),
                ids: ids.clone(),
            })
            .map_err(|e| anyhow::anyhow!("starting the API: {}", e.message))?;
            let listener = TcpListener::bind(&config.server.listen)
                .await
                .with_context(|| format!("binding {}", config.server.listen))?;
            addr = Some(listener.local_addr()?);
            api_state = Some(state.clone());
            // Each API node feeds its own live-delivery hub (see notifications.rs).
            for topic in [quicktok_core::SOCIAL_TOPIC, crate::notifications::VIDEOS_TOPIC] {
                let (l, m, h, t) =
                    (log.clone(), meta.clone(), state.notification_hub().clone(), shutdown.clone());
                let graphs = state.feed_cache().graphs().clone();
                let node = config.server.node_id;
                tasks.spawn(supervise("notifications", shutdown.clone(), move || {
                    crate::notifications::run(
                        l.clone(),
                        m.clone(),
                        h.clone(),
                        graphs.clone(),
                        topic,
                        node,
                        t.clone(),
                    )
                }));
            }
            let router = quicktok_api::router(state.clone());
            let token = shutdown.clone();
            tasks.spawn(async move {
                quicktok_api::serve(listener, router, token).await.context("HTTP server")
            });
            let token = shutdown.clone();
            let clock_for_api = clock.clone();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(HOUSEKEEPING_EVERY) => {
                            state.rate_limits().housekeeping();
                            // Partial uploads live on the API node that received them.
                            match state.cleanup_expired_uploads(clock_for_api.now_ms()).await {
                                Ok(report) => tracing::debug!(?report, "expired uploads cleaned"),
                                Err(e) => tracing::warn!(error = %e.message, "upload cleanup failed"),
                            }
                            if let Some(handle) = quicktok_api::metrics::handle() {
                                handle.run_upkeep();
                            }
                        }
                    }
                }
            });
        }
        let compaction_every =
            Duration::from_secs(u64::from(config.blob.compaction_interval_hours) * 3600);
        if config.server.roles.contains(&Role::Scheduler) && !compaction_every.is_zero() {
            let token = shutdown.clone();
            let blobs = blobs.clone();
            tasks.spawn(async move {
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(compaction_every) => {}
                    }
                    match blobs.maintain().await {
                        Ok(Some(report)) if report.volumes_compacted > 0 => {
                            tracing::info!(?report, "blob volumes compacted");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "blob maintenance failed"),
                    }
                }
            });
        }
        if config.server.roles.contains(&Role::Scheduler) {
            // Play statistics and creator archive requests feed blob tiering.
            let (l, m, c, t) = (log.clone(), meta.clone(), counters.clone(), shutdown.clone());
            tasks.spawn(supervise("play statistics", shutdown.clone(), move || {
                crate::plays::run(l.clone(), m.clone(), c.clone(), t.clone())
            }));
            let (l, m, b, t) = (log.clone(), meta.clone(), blobs.store(), shutdown.clone());
            tasks.spawn(supervise("archive moves", shutdown.clone(), move || {
                crate::tiering::run_archive_consumer(l.clone(), m.clone(), b.clone(), t.clone())
            }));
            if config.blob.tiering.enabled {
                let source =
                    crate::tiering::MetaActivity { meta: meta.clone(), blobs: blobs.store() };
                let job = quicktok_blob::tiering::TieringJob::new(
                    config.blob.tiering.clone(),
                    blobs.store(),
                    Arc::new(source),
                    clock.clone(),
                );
                tasks.spawn(crate::tiering::run_daily(job, clock.clone(), shutdown.clone()));
            }
        }
        if config.server.roles.contains(&Role::Scheduler) {
            let token = shutdown.clone();
            let log = log.clone();
            let clock = clock.clone();
            tasks.spawn(async move {
                loop {
                    if let Err(e) = log.apply_retention(clock.now_ms()).await {
                        tracing::warn!(error = %e, "event log retention failed");
                    }
                    tokio::select! {
                        _ = token.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(HOUSEKEEPING_EVERY) => {}
                    }
                }
            });
        }
        tracing::info!(
            data_dir = %data_dir.display(),
            meta = %meta.backend(),
            blobs = blobs.name(),
            roles = ?config.server.roles,
            "QuickTok started"
        );
        Ok(App {
            addr,
            shutdown,
            tasks,
            grace: Duration::from_secs(config.server.shutdown_grace_secs),
            meta,
            log,
            blobs,
            counters,
            state: api_state,
            recommend_state,
        })
    }

    /// The blob store.
    pub fn blobs(&self) -> Arc<dyn BlobStore> {
        self.blobs.store()
    }

    /// The API's state, when this node runs the api role.
    pub fn api_state(&self) -> Option<&AppState> {
        self.state.as_ref()
    }

    /// The counter service.
    pub fn counters(&self) -> &Arc<CounterService> {
        &self.counters
    }

    /// The URL the API is served on.
    pub fn url(&self) -> Option<String> {
        self.addr.map(|a| format!("http://{a}"))
    }

    /// Waits until shutdown is requested (or a task fails), then stops every task, giving
    /// in-flight work the grace period.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            Some(joined) = self.tasks.join_next() => {
                result = flatten(joined);
                self.shutdown.cancel();
            }
        }
        let drain = async {
            while let Some(joined) = self.tasks.join_next().await {
                if let Err(e) = flatten(joined) {
                    tracing::error!(error = %e, "task failed during shutdown");
                }
            }
        };
        if tokio::time::timeout(self.grace, drain).await.is_err() {
            tracing::warn!("grace period over; aborting remaining tasks");
            self.tasks.abort_all();
        }
        // Requests that finished during the drain may have counted after the flusher's last
        // flush.
        if let Err(e) = self.counters.flush().await {
            tracing::error!(error = %e, pending = self.counters.pending_len(), "flushing counters at shutdown");
        }
        // Pages served during the drain entered seen filters after the last periodic flush.
        if let Some((rec, clock)) = &self.recommend_state
            && let Err(e) = crate::recommend::flush_state(rec, &self.meta, clock.now_ms()).await
        {
            tracing::error!(error = %e, "writing the recommender state at shutdown");
        }
        // Flush and release the backends explicitly (the log's directory lock, the database
        // pool) rather than whenever the last handle happens to drop.
        if let Err(e) = self.log.close().await {
            tracing::error!(error = %e, "closing the event log");
        }
        if let Err(e) = self.blobs.close().await {
            tracing::error!(error = %e, "closing the blob store");
        }
        self.meta.close().await;
        tracing::info!("QuickTok stopped");
        result
    }

    /// Requests shutdown.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

/// Runs a background consumer, restarting it with backoff when it fails, so a transient
/// storage error in one consumer does not take the server down.
async fn supervise<F, Fut>(name: &'static str, shutdown: Shutdown, start: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        match start().await {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::error!(task = name, error = %e, ?backoff, "background task failed; restarting")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

fn flatten(joined: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    joined.map_err(anyhow::Error::from).and_then(|r| r)
}
