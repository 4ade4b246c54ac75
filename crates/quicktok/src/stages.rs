//! The pipeline's stage work on the running platform: [`MediaStages`] implements the
//! pipeline's [`Stages`] with the media crate (ffprobe/ffmpeg), the blob store and the
//! metadata store, and reflects each job's outcome on its video.
//!
//! Where things are while a video is processed: the completed upload is moved (renamed,
//! so instantly) from `uploads/<upload>.part` to `work/<video>/source` and, once probe
//! accepts it, copied into the blob store as the video's `source` blob. Every later stage
//! reads the local copy, or fetches the blob again when the job resumes on a node that
//! does not have it. Stage outputs are blobs attached to the video (`video_blobs`, kinds
//! `source`, `cover`, `contact_sheet`, `rendition:<rung>`) and rows in the metadata store
//! (renditions, fingerprint, tags, cover, media info), each written so that running the
//! stage again replaces rather than duplicates them.
//!
//! Time to first play is what the order serves: the `transcode` stage starts one encoding
//! pass for every rung and the audio track (one decode) whose segments are stored as they
//! are finished, and samples frames beside it for dedup and covers. `publish` makes the
//! video playable once enough is stored that a viewer starting now cannot catch up with the
//! encoder; until the pass ends its HLS playlists are EVENT playlists that grow. `ladder`
//! waits for the pass. Total work is one ladder plus one extra decode (the sampling).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use quicktok_blob::{BlobBody, BlobStore, StorageClass};
use quicktok_core::clock::SharedClock;
use quicktok_core::{Event, Id, IdGenerator};
use quicktok_log::{EventLog, NewRecord};
use quicktok_media::{MediaConfig, MediaError, ProbeInfo, Rendition, Rung};
use quicktok_meta::{Fingerprint, MetaError, MetaStore, RenditionRow, VideoKind, VideoStatus};
use quicktok_pipeline::jobs::{Job, JobStatus, Stage, StageOutcome, Stages};
use quicktok_pipeline::{
    ComplianceFilter, DedupIndex, DedupVerdict, DuplicateAction, FrameClassifier, PipelineConfig,
    Severity, TagExtractor, WordMatch,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Job-state keys written by the stages (and `upload_id`, written at enqueue time).
pub mod keys {
    pub const UPLOAD_ID: &str = "upload_id";
    pub const SOURCE_BLOB: &str = "source_blob";
    pub const CONTENT_HASH: &str = "content_hash";
    pub const PROBE: &str = "probe";
    pub const COMPLIANCE: &str = "compliance";
    pub const DEDUP: &str = "dedup";
    pub const TAGS: &str = "tags";
    pub const FRAME_HASHES: &str = "frame_hashes";
    /// Cover candidates stored by the transcode stage, best first.
    pub const COVER_CANDIDATES: &str = "cover_candidates";
}

/// Blob kinds in `video_blobs`.
const KIND_SOURCE: &str = "source";
const KIND_COVER: &str = "cover";
const KIND_SHEET: &str = "contact_sheet";

fn rendition_kind(rung: &str) -> String {
    format!("rendition:{rung}")
}

/// Why a stage stopped early.
#[derive(Debug, Clone)]
enum Failure {
    /// Ours or the machine's (storage, a crashed tool): try again later.
    Transient(String),
    /// The input's fault: refuse the video with this reason.
    Input(String),
}

impl From<MetaError> for Failure {
    fn from(e: MetaError) -> Self {
        Failure::Transient(format!("metadata store: {e}"))
    }
}

impl From<quicktok_blob::BlobError> for Failure {
    fn from(e: quicktok_blob::BlobError) -> Self {
        Failure::Transient(format!("blob store: {e}"))
    }
}

impl From<quicktok_log::LogError> for Failure {
    fn from(e: quicktok_log::LogError) -> Self {
        Failure::Transient(format!("event log: {e}"))
    }
}

impl From<MediaError> for Failure {
    fn from(e: MediaError) -> Self {
        match e.rejection() {
            Some(r) => Failure::Input(r.to_string()),
            None => Failure::Transient(e.to_string()),
        }
    }
}

/// For tools reading the upload itself (probe): a crash, a resource cap or a timeout on a
/// file nobody vetted yet is the file's fault, not a reason to retry.
fn input_fault(e: MediaError) -> Failure {
    match e {
        MediaError::Rejected(r) => Failure::Input(r.to_string()),
        MediaError::Timeout { .. }
        | MediaError::ResourceLimit { .. }
        | MediaError::ToolFailed { .. }
        | MediaError::OutputTooLarge { .. }
        | MediaError::BadOutput(_) => {
            // The tool's own words (paths, stderr) are for the logs, not the uploader.
            tracing::info!(error = %e, "upload unreadable");
            Failure::Input("unreadable media: the file could not be decoded".into())
        }
        other => Failure::Transient(other.to_string()),
    }
}

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure::Transient(format!("{what}: {e}"))
}

type StageResult = Result<StageOutcome, Failure>;

/// Everything the stages use.
#[derive(Clone)]
pub struct StageDeps {
    pub meta: MetaStore,
    pub blobs: Arc<dyn BlobStore>,
    pub log: Arc<dyn EventLog>,
    pub clock: SharedClock,
    pub ids: Arc<IdGenerator>,
    pub data_dir: PathBuf,
    pub media: MediaConfig,
    pub pipeline: PipelineConfig,
    /// Stories' longest duration and lifetime (`[social.stories]`).
    pub stories: quicktok_social::StoriesConfig,
}

impl StageDeps {
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn new_id(&self) -> Id {
        self.ids.next(self.clock.as_ref())
    }

    /// Stores the file at `path` as a new blob of `video` with `kind`; returns its id.
    async fn store_file(
        &self,
        video: Id,
        kind: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<Id, Failure> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| io_failure(&format!("opening {}", path.display()), e))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| io_failure(&format!("reading {}", path.display()), e))?
            .len();
        let body: BlobBody = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10).boxed();
        let id = self.new_id();
        // New media is hot: it is about to be watched, and tiering cools it later.
        self.blobs.put(id, StorageClass::Hot, size, content_type, body).await?;
        self.meta.video_blobs().attach(video, id, kind, self.now()).await?;
        Ok(id)
    }

    /// Deletes `video`'s blobs of `kind` (the leftovers of an interrupted earlier run).
    async fn drop_blobs(&self, video: Id, kind: &str) -> Result<(), Failure> {
        for blob in self.meta.video_blobs().for_video(video).await? {
            if blob.kind == kind {
                self.blobs.delete(blob.blob_id).await?;
                self.meta.video_blobs().detach(blob.blob_id).await?;
            }
        }
        Ok(())
    }
}

/// The in-memory near-duplicate index and how far it has read the stored fingerprints.
struct DedupState {
    index: DedupIndex,
    /// The highest video id loaded from the metadata store.
    loaded_up_to: Option<Id>,
}

/// The platform's [`Stages`].
pub struct MediaStages {
    d: StageDeps,
    compliance: ComplianceFilter,
    tags: TagExtractor,
    classifier: Arc<dyn FrameClassifier>,
    dedup: tokio::sync::Mutex<DedupState>,
    /// The encoding pass of each video being processed on this node (see `transcode`).
    passes: std::sync::Mutex<HashMap<Id, LivePass>>,
}

/// A video's encoding pass: one decode feeding every rung and the audio track, whose
/// segments are stored (and so playable) as they are finished.
struct LivePass {
    task: tokio::task::JoinHandle<()>,
    state: tokio::sync::watch::Receiver<PassState>,
    started: std::time::Instant,
}

impl Drop for LivePass {
    /// Forgetting a pass stops it (and its ffmpeg).
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How far a pass has got.
#[derive(Debug, Clone, Default)]
struct PassState {
    /// Media stored for the lowest rung and the audio track (the shorter of the two), ms.
    playable_ms: u64,
    /// ffmpeg's progress reports of the last second: `(when, media ms encoded)`.
    reports: std::collections::VecDeque<(std::time::Instant, u64)>,
    /// How it ended, once it did.
    finished: Option<Result<(), Failure>>,
}

/// Aborts a task when dropped: the pass's ffmpeg dies with the task that stores its output.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What is stored of one rendition while its pass runs.
#[derive(Debug, Default)]
struct Uploaded {
    init: Option<Id>,
    /// Whether `init` (stored by an interrupted earlier pass) was compared with this pass's.
    init_checked: bool,
    segments: Vec<Id>,
    duration_ms: u64,
    complete: bool,
}

/// A played-from-the-start viewer must never catch up with the encoder: assume the rest of
/// the pass runs this much slower than it has so far.
const PLAYBACK_MARGIN: f64 = 1.25;

/// Whether a video whose pass has stored `ready_ms` of `total_ms` and encodes `speed` ms of
/// media per wall-clock ms can be published: played from the start at 1x, what is stored
/// plus what the pass adds meanwhile (at `speed` / [`PLAYBACK_MARGIN`]) stays ahead of the
/// player to the end. At a margined speed `v` < 1 that needs `ready >= total * (1 - v)`; at
/// `v` >= 1 one segment.
fn playable_now(ready_ms: u64, speed: f64, total_ms: u64) -> bool {
    if ready_ms == 0 {
        return false;
    }
    if ready_ms >= total_ms {
        return true;
    }
    let v = speed / PLAYBACK_MARGIN;
    v >= 1.0 || ready_ms as f64 >= total_ms as f64 * (1.0 - v)
}

/// The pass's speed over the progress reports made since `since`, once they span 300 ms
/// (ffmpeg reports ten times a second).
fn speed_since(
    reports: &std::collections::VecDeque<(std::time::Instant, u64)>,
    since: std::time::Instant,
) -> Option<f64> {
    let mut after = reports.iter().filter(|(t, _)| *t >= since);
    let (first, first_ms) = *after.next()?;
    let (last, last_ms) = *after.next_back()?;
    let span_ms = last.duration_since(first).as_secs_f64() * 1000.0;
    (span_ms >= 300.0).then(|| last_ms.saturating_sub(first_ms) as f64 / span_ms)
}

/// Keeps ffmpeg's progress reports `(when, media ms)` of the last second (the pass's speed
/// changes as other work starts and stops: the frame sampling beside it ends, and the pass
/// gets the whole machine).
fn keep_last_second(reports: &mut std::collections::VecDeque<(std::time::Instant, u64)>) {
    let Some(&(newest, _)) = reports.back() else { return };
    while reports.len() > 2
        && reports.get(1).is_some_and(|(t, _)| newest.duration_since(*t).as_secs_f64() >= 1.0)
    {
        reports.pop_front();
    }
}

/// The pass's speed over `reports`, once they span half a second.
fn recent_speed(reports: &std::collections::VecDeque<(std::time::Instant, u64)>) -> Option<f64> {
    let (newest, newest_ms) = *reports.back()?;
    let (oldest, oldest_ms) = *reports.front()?;
    let span_ms = newest.duration_since(oldest).as_secs_f64() * 1000.0;
    (span_ms >= 500.0).then(|| newest_ms.saturating_sub(oldest_ms) as f64 / span_ms)
}

impl std::fmt::Debug for MediaStages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStages").finish_non_exhaustive()
    }
}

/// A stage output entry.
fn entry(key: &str, value: impl Serialize) -> Result<Map<String, Value>, Failure> {
    let value = serde_json::to_value(value)
        .map_err(|e| Failure::Transient(format!("encoding {key}: {e}")))?;
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    Ok(map)
}

/// A value an earlier stage stored.
fn from_state<T: DeserializeOwned>(job: &Job, key: &str) -> Result<T, Failure> {
    let value =
        job.state.get(key).ok_or_else(|| Failure::Transient(format!("job state lacks {key:?}")))?;
    serde_json::from_value(value.clone())
        .map_err(|e| Failure::Transient(format!("job state {key:?}: {e}")))
}

/// Why a story lasting `duration_ms` is refused, when `max_ms` (set for stories only) is
/// below it.
fn story_too_long(duration_ms: u64, max_ms: Option<u64>) -> Option<String> {
    let max = max_ms?;
    (duration_ms > max).then(|| {
        format!(
            "story too long: a story may last at most {:.1} s, this one lasts {:.1} s",
            max as f64 / 1000.0,
            duration_ms as f64 / 1000.0
        )
    })
}

/// One human-readable line for a moderator or uploader from sensitive-word matches.
fn describe_matches(matches: &[WordMatch]) -> String {
    let mut seen = Vec::new();
    for m in matches {
        let field = match m.field {
            quicktok_pipeline::Field::Title => "title".to_owned(),
            quicktok_pipeline::Field::Description => "description".to_owned(),
            quicktok_pipeline::Field::Tag(i) => format!("tag {}", i + 1),
        };
        let item = format!("{:?} in the {field}", m.word);
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen.join(", ")
}

impl MediaStages {
    /// Builds the word filter and tag extractor (jieba's dictionaries load here) and the
    /// duplicate index from every stored fingerprint.
    pub async fn new(d: StageDeps) -> anyhow::Result<MediaStages> {
        let compliance = ComplianceFilter::new(&d.pipeline.compliance)?;
        let tags = TagExtractor::new(d.pipeline.tags.clone())?;
        let index = DedupIndex::new(d.pipeline.dedup.clone())?;
        let stages = MediaStages {
            d,
            compliance,
            tags,
            classifier: Arc::new(quicktok_pipeline::NoopClassifier),
            dedup: tokio::sync::Mutex::new(DedupState { index, loaded_up_to: None }),
            passes: std::sync::Mutex::new(HashMap::new()),
        };
        {
            let mut dedup = stages.dedup.lock().await;
            stages.load_fingerprints(&mut dedup).await.map_err(|e| match e {
                Failure::Transient(m) | Failure::Input(m) => anyhow::anyhow!(m),
            })?;
            tracing::info!(videos = dedup.index.len(), "duplicate index loaded");
        }
        Ok(stages)
    }

    /// Replaces the frame classifier (the default passes every frame).
    pub fn with_classifier(mut self, classifier: Arc<dyn FrameClassifier>) -> Self {
        self.classifier = classifier;
        self
    }

    fn now(&self) -> i64 {
        self.d.now()
    }

    /// This node's working directory for `video`.
    fn work_dir(&self, video: Id) -> PathBuf {
        self.d.data_dir.join("work").join(video.to_string())
    }

    /// Reads fingerprints stored since the last load (by this or another worker).
    async fn load_fingerprints(&self, dedup: &mut DedupState) -> Result<(), Failure> {
        loop {
            let page = self.d.meta.fingerprints().page(dedup.loaded_up_to, 1000).await?;
            let Some(last) = page.last().map(|f| f.video_id) else { return Ok(()) };
            for fp in page {
                if let Err(e) = dedup.index.insert(fp.video_id, &fp.content_hash, fp.frame_hashes) {
                    tracing::warn!(video = %fp.video_id, error = %e, "skipping a bad fingerprint");
                }
            }
            dedup.loaded_up_to = Some(last);
        }
    }

    /// The source file on this node, fetched from the blob store if this node lacks it.
    async fn source(&self, job: &Job) -> Result<PathBuf, Failure> {
        let path = self.work_dir(job.id).join("source");
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(path);
        }
        let blob = self
            .stored_source(job.id)
            .await?
            .ok_or_else(|| Failure::Input("the uploaded file is no longer on this node".into()))?;
        let dir = self.work_dir(job.id);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| io_failure("creating work dir", e))?;
        self.fetch_blob(blob, &path).await?;
        Ok(path)
    }

    /// The source blob stored for `video`, if any.
    async fn stored_source(&self, video: Id) -> Result<Option<Id>, Failure> {
        let blobs = self.d.meta.video_blobs().for_video(video).await?;
        Ok(blobs.iter().find(|b| b.kind == KIND_SOURCE).map(|b| b.blob_id))
    }

    /// Keeps the source in the blob store (once), so a job resumed on another node, or after
    /// this node lost its work dir, can fetch it back.
    async fn keep_source(&self, video: Id, source: &Path) -> Result<Id, Failure> {
        match self.stored_source(video).await? {
            Some(blob) => Ok(blob),
            None => self.d.store_file(video, KIND_SOURCE, source, "application/octet-stream").await,
        }
    }

    /// Copies blob `blob` to the file `path`, atomically (a crash leaves no half file).
    async fn fetch_blob(&self, blob: Id, path: &Path) -> Result<(), Failure> {
        let partial = path.with_extension("fetching");
        let mut read = self.d.blobs.get(blob, None).await?;
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| io_failure("fetching source", e))?;
        while let Some(chunk) = read.body.next().await {
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk?)
                .await
                .map_err(|e| io_failure("fetching source", e))?;
        }
        file.sync_all().await.map_err(|e| io_failure("fetching source", e))?;
        tokio::fs::rename(&partial, path).await.map_err(|e| io_failure("fetching source", e))?;
        Ok(())
    }

    async fn append_event(&self, event: Event) -> Result<(), Failure> {
        let at = event.at_ms();
        self.d
            .log
            .append(event.topic(), vec![NewRecord { timestamp_ms: at, payload: event.encode() }])
            .await?;
        Ok(())
    }

    // ---- the stages ----

    /// Takes the completed upload over, checks it is a real video within limits, and keeps
    /// it in the blob store.
    async fn probe(&self, job: &Job) -> StageResult {
        let dir = self.work_dir(job.id);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| io_failure("creating work dir", e))?;
        let source = dir.join("source");
        if !tokio::fs::try_exists(&source).await.unwrap_or(false) {
            let upload: Id = from_state(job, keys::UPLOAD_ID)?;
            let part = quicktok_api::upload::part_path(&self.d.data_dir, upload);
            match tokio::fs::rename(&part, &source).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // An earlier run may have stored it before failing: fetch it back.
                    let blobs = self.d.meta.video_blobs().for_video(job.id).await?;
                    let Some(stored) = blobs.iter().find(|b| b.kind == KIND_SOURCE) else {
                        return Err(Failure::Input(
                            "the uploaded file is no longer on this node".into(),
                        ));
                    };
                    self.fetch_blob(stored.blob_id, &source).await?;
                }
                Err(e) => return Err(io_failure("taking the upload over", e)),
            }
        }
        // A story's length is checked before anything is encoded for it.
        let max_ms = (self.video(job.id).await?.kind == VideoKind::Story)
            .then_some(self.d.stories.max_duration_ms);
        // All three read the whole file, side by side (the page cache serves the others):
        // its hash, ffprobe's verdict, and a copy in the blob store so that a job resumed on
        // another node (or after this one lost its work dir) can fetch it back.
        let probed = async {
            let info = quicktok_media::probe(&self.d.media, &source).await;
            if let Ok(info) = &info
                && story_too_long(info.duration_ms, max_ms).is_none()
                && !quicktok_media::plan_ladder_for(info, &self.d.media).is_empty()
            {
                // Encoding starts as soon as ffprobe vouches for the file, before the text
                // checks: they refuse few uploads, and every other one saves their time
                // (a refusal or a review stops the pass).
                if let Err(e) = self.ensure_pass(job, info).await {
                    tracing::warn!(video = %job.id, error = ?e, "encoding pass not started early");
                }
            }
            info
        };
        let (hash, info, kept) = tokio::join!(
            quicktok_media::sha256_file(&source),
            probed,
            self.keep_source(job.id, &source)
        );
        let info = match info {
            Ok(info) => match story_too_long(info.duration_ms, max_ms) {
                None => Ok(info),
                Some(reason) => Err(Failure::Input(reason)),
            },
            Err(e) => Err(input_fault(e)),
        };
        let info = match info {
            Ok(info) => info,
            Err(refused) => {
                // A refused upload is not kept.
                if let Ok(blob) = kept {
                    self.d.blobs.delete(blob).await?;
                    self.d.meta.video_blobs().detach(blob).await?;
                }
                return Err(refused);
            }
        };
        let (hash, blob) = (hash?, kept?);
        let duration = i64::try_from(info.duration_ms).unwrap_or(i64::MAX);
        let (w, h) =
            (i32::try_from(info.width).unwrap_or(0), i32::try_from(info.height).unwrap_or(0));
        self.d.meta.videos().set_media_info(job.id, duration, w, h, self.now()).await?;
        let mut out = entry(keys::PROBE, &info)?;
        out.extend(entry(keys::CONTENT_HASH, hash.to_hex())?);
        out.extend(entry(keys::SOURCE_BLOB, blob)?);
        Ok(StageOutcome::Next(out))
    }

    /// Sensitive words in the title, description and tags.
    async fn compliance(&self, job: &Job) -> StageResult {
        let video = self.video(job.id).await?;
        let verdict = self.compliance.check(&video.title, &video.description, &video.tags);
        let severity = verdict.severity();
        let reason = describe_matches(verdict.matches());
        let out = entry(keys::COMPLIANCE, &verdict)?;
        match severity {
            Severity::Pass => Ok(StageOutcome::Next(out)),
            Severity::Reject => Ok(StageOutcome::Reject(format!("blocked words: {reason}"))),
            Severity::Review => {
                self.contact_sheet(job).await?;
                Ok(StageOutcome::Review(format!("words needing review: {reason}")))
            }
        }
    }

    /// Byte-identical and visually near copies of videos already on the platform.
    async fn dedup(&self, job: &Job) -> StageResult {
        let hash: String = from_state(job, keys::CONTENT_HASH)?;
        // Sampled during the transcode stage's single decode.
        let frames: Vec<u64> = from_state(job, keys::FRAME_HASHES)?;
        // Check and record under one lock, so two copies processed at once cannot both pass.
        let mut dedup = self.dedup.lock().await;
        self.load_fingerprints(&mut dedup).await?;
        // A re-run must not find the video's own fingerprint from an interrupted first run.
        dedup.index.remove(job.id);
        // Another node may have refused (or someone deleted) the matched video since it was
        // indexed: such a match is dropped and the check repeated.
        let verdict = loop {
            let verdict = dedup
                .index
                .check(&hash, &frames)
                .map_err(|e| Failure::Transient(format!("duplicate check: {e}")))?;
            let of = match &verdict {
                DedupVerdict::Unique => break verdict,
                DedupVerdict::Exact(of) | DedupVerdict::Near { of, .. } => *of,
            };
            let still_there = self.d.meta.fingerprints().get(of).await?.is_some();
            if still_there {
                break verdict;
            }
            dedup.index.remove(of);
        };
        // The in-memory index is this node's; the claim on the source's hash is everyone's:
        // of two copies processed on two workers at once, one claims it first.
        let verdict = match verdict {
            DedupVerdict::Exact(_) => verdict,
            _ if self.d.pipeline.exact_duplicate == DuplicateAction::Allow => verdict,
            other => {
                let holder = self.d.meta.fingerprints().claim_content(&hash, job.id).await?;
                if holder == job.id { other } else { DedupVerdict::Exact(holder) }
            }
        };
        let (action, what) = match &verdict {
            DedupVerdict::Unique => (DuplicateAction::Allow, String::new()),
            DedupVerdict::Exact(of) => {
                (self.d.pipeline.exact_duplicate, format!("an exact copy of video {of}"))
            }
            DedupVerdict::Near { of, distance, matching_frames } => (
                self.d.pipeline.near_duplicate,
                format!(
                    "a near copy of video {of} ({matching_frames} matching frames, mean distance {distance:.1} bits)"
                ),
            ),
        };
        if action == DuplicateAction::Reject {
            return Ok(StageOutcome::Reject(format!("duplicate: {what}")));
        }
        let fp = Fingerprint {
            video_id: job.id,
            content_hash: hash.clone(),
            frame_hashes: frames.clone(),
            created_at_ms: self.now(),
        };
        self.d.meta.fingerprints().put(&fp).await?;
        if let Err(e) = dedup.index.insert(job.id, &hash, frames) {
            tracing::warn!(video = %job.id, error = %e, "fingerprint not indexed");
        }
        drop(dedup);
        let out = entry(keys::DEDUP, &verdict)?;
        if action == DuplicateAction::Review {
            self.contact_sheet(job).await?;
            return Ok(StageOutcome::Review(format!("possible duplicate: {what}")));
        }
        Ok(StageOutcome::Next(out))
    }

    /// Hashtags (stored as the video's tags) and keywords (kept for search and
    /// recommendation).
    async fn tags(&self, job: &Job) -> StageResult {
        let video = self.video(job.id).await?;
        let tags = self.tags.extract(&video.title, &video.description, &video.tags);
        self.d.meta.videos().set_tags(job.id, &tags.hashtags, self.now()).await?;
        Ok(StageOutcome::Next(entry(
            keys::TAGS,
            serde_json::json!({"hashtags": tags.hashtags, "keywords": tags.keywords}),
        )?))
    }

    /// The frame-classifier hook over the cover candidates (frames from different moments,
    /// chosen by the transcode stage: not black, not blurry), then the best one becomes the
    /// video's cover; the others stay stored for a creator's choice.
    async fn covers(&self, job: &Job) -> StageResult {
        let candidates: Vec<Value> = from_state(job, keys::COVER_CANDIDATES)?;
        let mut jpegs = Vec::with_capacity(candidates.len());
        for c in &candidates {
            let Some(blob) = c["images"][0]["blob"].as_str().and_then(|b| b.parse::<Id>().ok())
            else {
                continue;
            };
            let mut read = self.d.blobs.get(blob, None).await?;
            let mut bytes = Vec::new();
            while let Some(chunk) = read.body.next().await {
                bytes.extend_from_slice(&chunk?);
            }
            jpegs.push(bytes);
        }
        let verdicts = quicktok_pipeline::classify_frames(self.classifier.as_ref(), &jpegs)
            .map_err(|e| Failure::Transient(format!("frame classifier: {e}")))?;
        let outcome = quicktok_pipeline::combine_verdicts(
            quicktok_pipeline::ComplianceVerdict::Pass,
            &verdicts,
        );
        let findings: Vec<String> = outcome
            .frame_findings
            .iter()
            .map(|f| match &f.verdict {
                quicktok_pipeline::FrameVerdict::Review { reason }
                | quicktok_pipeline::FrameVerdict::Reject { reason } => reason.clone(),
                quicktok_pipeline::FrameVerdict::Pass => String::new(),
            })
            .collect();
        if outcome.severity == Severity::Reject {
            return Ok(StageOutcome::Reject(format!("frames refused: {}", findings.join("; "))));
        }
        let best = candidates
            .first()
            .and_then(|c| c["images"][0]["blob"].as_str())
            .and_then(|s| s.parse::<Id>().ok());
        self.d.meta.videos().set_cover(job.id, best, self.now()).await?;
        // Every candidate stays available: the recommender's bandit chooses among them.
        let all: Vec<Id> = candidates
            .iter()
            .filter_map(|c| c["images"][0]["blob"].as_str().and_then(|s| s.parse::<Id>().ok()))
            .collect();
        self.d.meta.videos().set_cover_candidates(job.id, &all, self.now()).await?;
        // The candidates are already in the job state (the transcode stage's output).
        let out = Map::new();
        if outcome.severity == Severity::Review {
            self.contact_sheet(job).await?;
            return Ok(StageOutcome::Review(format!(
                "frames need review: {}",
                findings.join("; ")
            )));
        }
        Ok(StageOutcome::Next(out))
    }

    /// Starts the video's encoding pass (every rung and the audio track in one decode, each
    /// segment stored as it is finished) and, beside it, samples frames evenly over the clip:
    /// their fingerprints for dedup, the best of them stored as cover candidates. Sampling
    /// decodes the clip once more, but it is what publication waits for, and it lets the
    /// video be checked before any of it plays.
    async fn transcode(&self, job: &Job) -> StageResult {
        let info: ProbeInfo = from_state(job, keys::PROBE)?;
        if quicktok_media::plan_ladder_for(&info, &self.d.media).is_empty() {
            return Err(Failure::Input("no rendition can be made from this video".into()));
        }
        self.ensure_pass(job, &info).await?;
        let source = self.source(job).await?;
        let dir = quicktok_media::JobDir::new(&self.d.media)?;
        let p = &self.d.pipeline;
        let sampling = quicktok_media::Sampling {
            count: (p.fingerprint_frames.max(1) as usize).max(p.covers as usize * 4),
            cover_widths: quicktok_media::COVER_WIDTHS.to_vec(),
        };
        let started = std::time::Instant::now();
        let pass = quicktok_media::transcode_pass(
            &self.d.media,
            &dir,
            &source,
            &info,
            &[],
            false,
            Some(&sampling),
        )
        .await?;
        tracing::info!(video = %job.id, elapsed_ms = started.elapsed().as_millis() as u64, "frames sampled");
        let hashes: Vec<u64> = pass
            .samples
            .iter()
            .map(|f| quicktok_media::dhash_gray(&f.gray, f.width as usize, f.height as usize))
            .collect();
        if hashes.is_empty() {
            return Err(Failure::Input("no frame of the video could be decoded".into()));
        }
        let chosen = quicktok_media::choose_covers(&pass.samples, p.covers.max(1) as usize);
        self.d.drop_blobs(job.id, KIND_COVER).await?;
        let mut stored = Vec::new();
        for cover in &chosen {
            let mut images = Vec::new();
            let all = std::iter::once((&cover.path, cover.width, cover.height))
                .chain(cover.thumbnails.iter().map(|t| (&t.path, t.width, t.height)));
            for (path, width, height) in all {
                let blob = self.d.store_file(job.id, KIND_COVER, path, "image/jpeg").await?;
                images.push(serde_json::json!({"blob": blob, "width": width, "height": height}));
            }
            stored.push(serde_json::json!({"at_ms": cover.at_ms, "images": images}));
        }
        let mut out = entry(keys::FRAME_HASHES, &hashes)?;
        out.extend(entry(keys::COVER_CANDIDATES, &stored)?);
        Ok(StageOutcome::Next(out))
    }

    /// Makes the video playable (unless it was taken down meanwhile) as soon as enough of
    /// its lowest rung and audio is stored for a viewer starting now never to catch up with
    /// the encoder ([`playable_now`]): its HLS playlists grow until the pass ends.
    async fn publish(&self, job: &Job) -> StageResult {
        let video = self.video(job.id).await?;
        match video.status {
            VideoStatus::Removed | VideoStatus::Rejected => {
                return Ok(StageOutcome::Reject(format!(
                    "the video was {} during processing",
                    video.status
                )));
            }
            VideoStatus::Published => {}
            _ => {
                let info: ProbeInfo = from_state(job, keys::PROBE)?;
                let (mut state, started) = self.ensure_pass(job, &info).await?;
                // The frame sampling beside the pass has ended when this stage starts: the
                // pass's speed from now on is what it will keep, other work aside.
                let since = std::time::Instant::now();
                loop {
                    let now = state.borrow_and_update().clone();
                    if let Some(end) = now.finished {
                        end?;
                        break;
                    }
                    // Until ffmpeg's progress tells, the average since the pass started.
                    let average =
                        now.playable_ms as f64 / (started.elapsed().as_millis().max(1) as f64);
                    let speed = speed_since(&now.reports, since)
                        .or_else(|| recent_speed(&now.reports))
                        .unwrap_or(average);
                    if playable_now(now.playable_ms, speed, info.duration_ms) {
                        break;
                    }
                    // Judged again on every stored segment, and twice a second: the pass's
                    // speed so far changes with time too.
                    let changed = tokio::time::timeout(
                        std::time::Duration::from_millis(500),
                        state.changed(),
                    )
                    .await;
                    if let Ok(Err(_)) = changed {
                        return Err(Failure::Transient("the encoding pass stopped".into()));
                    }
                }
                // A story's expiry is fixed in the same statement.
                let lifetime = self.d.stories.lifetime_ms_i64();
                self.d.meta.videos().publish(job.id, self.now(), lifetime).await?;
            }
        }
        // At least once: consumers treat a repeated event as the same publication.
        self.append_event(Event::VideoPublished {
            video_id: job.id,
            author: video.author_id,
            at_ms: self.now(),
        })
        .await?;
        tracing::info!(video = %job.id, "video published");
        Ok(StageOutcome::Next(Map::new()))
    }

    /// Waits for the encoding pass to store every rendition complete.
    async fn ladder(&self, job: &Job) -> StageResult {
        let info: ProbeInfo = from_state(job, keys::PROBE)?;
        let started = std::time::Instant::now();
        let (mut state, _) = self.ensure_pass(job, &info).await?;
        loop {
            if let Some(end) = state.borrow_and_update().finished.clone() {
                end?;
                break;
            }
            if state.changed().await.is_err() {
                return Err(Failure::Transient("the encoding pass stopped".into()));
            }
        }
        self.forget_pass(job.id);
        let rows = self.d.meta.renditions().for_video(job.id).await?;
        let complete: HashSet<String> = rows
            .iter()
            .filter(|row| {
                serde_json::from_str::<Rendition>(&row.spec_json)
                    .is_ok_and(|r| !r.growing && !r.truncated)
            })
            .map(|row| row.name.clone())
            .collect();
        let planned = quicktok_media::plan_ladder_for(&info, &self.d.media);
        let audio = info.has_audio.then_some(quicktok_media::AUDIO_RENDITION);
        for name in planned.iter().map(|r| r.name.as_str()).chain(audio) {
            if !complete.contains(name) {
                return Err(Failure::Transient(format!("rendition {name} is incomplete")));
            }
        }
        tracing::info!(video = %job.id, waited_ms = started.elapsed().as_millis() as u64, "ladder complete");
        Ok(StageOutcome::Next(Map::new()))
    }

    /// The state of `job`'s encoding pass on this node, started if there is none (a new job,
    /// a resumed one, or a retry after the pass failed).
    async fn ensure_pass(
        &self,
        job: &Job,
        info: &ProbeInfo,
    ) -> Result<(tokio::sync::watch::Receiver<PassState>, std::time::Instant), Failure> {
        if let Ok(passes) = self.passes.lock()
            && let Some(pass) = passes.get(&job.id)
            && !matches!(pass.state.borrow().finished, Some(Err(_)))
        {
            return Ok((pass.state.clone(), pass.started));
        }
        let source = self.source(job).await?;
        let (tx, rx) = tokio::sync::watch::channel(PassState::default());
        let task = tokio::spawn(run_pass(self.d.clone(), job.id, source, info.clone(), tx));
        let started = std::time::Instant::now();
        let pass = LivePass { task, state: rx.clone(), started };
        if let Ok(mut passes) = self.passes.lock() {
            passes.insert(job.id, pass);
        }
        Ok((rx, started))
    }

    /// Stops and forgets `video`'s encoding pass, if any.
    fn forget_pass(&self, video: Id) {
        let pass = self.passes.lock().ok().and_then(|mut p| p.remove(&video));
        drop(pass);
    }

    /// A grid of frames for the moderator, replacing an earlier one.
    async fn contact_sheet(&self, job: &Job) -> Result<(), Failure> {
        let info: ProbeInfo = from_state(job, keys::PROBE)?;
        let source = self.source(job).await?;
        let dir = quicktok_media::JobDir::new(&self.d.media)?;
        let p = &self.d.pipeline;
        let sheet = quicktok_media::contact_sheet(
            &self.d.media,
            &dir,
            &source,
            &info,
            p.contact_sheet_cols,
            p.contact_sheet_rows,
            p.contact_sheet_tile_width,
        )
        .await?;
        self.d.drop_blobs(job.id, KIND_SHEET).await?;
        self.d.store_file(job.id, KIND_SHEET, &sheet.path, "image/jpeg").await?;
        Ok(())
    }

    /// Ends the growing renditions of `video` where they stand (`truncated`): no player
    /// waits for segments a failed pass will not make. A retried pass completes them.
    async fn truncate_growing(&self, video: Id) -> Result<(), Failure> {
        for mut row in self.d.meta.renditions().for_video(video).await? {
            let Ok(mut r) = serde_json::from_str::<Rendition>(&row.spec_json) else { continue };
            if !r.growing {
                continue;
            }
            r.growing = false;
            r.truncated = true;
            row.spec_json = serde_json::to_string(&r)
                .map_err(|e| Failure::Transient(format!("encoding rendition: {e}")))?;
            self.d.meta.renditions().put(&row).await?;
        }
        Ok(())
    }

    async fn video(&self, id: Id) -> Result<quicktok_meta::Video, Failure> {
        self.d
            .meta
            .videos()
            .by_id(id)
            .await?
            .ok_or_else(|| Failure::Input("the video was deleted".into()))
    }

    /// Marks the video refused (unless it was removed meanwhile) and forgets its
    /// fingerprint, so a fixed re-upload is not called a duplicate of it.
    async fn refuse(&self, job: &Job, reason: &str) -> Result<(), Failure> {
        let Some(video) = self.d.meta.videos().by_id(job.id).await? else { return Ok(()) };
        if video.status != VideoStatus::Removed {
            self.d
                .meta
                .videos()
                .set_status(job.id, VideoStatus::Rejected, Some(reason), self.now())
                .await?;
        }
        self.d.meta.fingerprints().delete(job.id).await?;
        self.dedup.lock().await.index.remove(job.id);
        self.append_event(Event::VideoRejected {
            video_id: job.id,
            author: video.author_id,
            reason: reason.to_owned(),
            at_ms: self.now(),
        })
        .await
    }

    async fn settle(&self, job: &Job) -> Result<(), Failure> {
        // A refused, parked or failed video needs no pass (approval starts another).
        self.forget_pass(job.id);
        let reason = job.reason.clone().unwrap_or_default();
        match job.status {
            JobStatus::Done => {}
            // After publication (the ladder) a failure costs the higher rungs, not the video:
            // it stays published with what it has, and an operator can retry the job.
            JobStatus::Rejected | JobStatus::Dead if job.stage > Stage::Publish => {
                tracing::error!(video = %job.id, %reason, "the encoding pass failed after publication; the video stays published with what is stored");
                self.truncate_growing(job.id).await?;
                return Ok(());
            }
            JobStatus::Rejected => self.refuse(job, &reason).await?,
            JobStatus::Dead => {
                // The details (tool output, store errors) stay in the job, for operators.
                self.refuse(job, "processing failed; the operators can retry it").await?;
                // Keep the work dir (the source may exist only there): a retry resumes from it.
                return Ok(());
            }
            JobStatus::Review => {
                self.d
                    .meta
                    .videos()
                    .set_status(job.id, VideoStatus::Review, Some(&reason), self.now())
                    .await?;
                // Keep the work dir: approval continues from it.
                return Ok(());
            }
            JobStatus::Queued | JobStatus::Running => return Ok(()),
        }
        match tokio::fs::remove_dir_all(self.work_dir(job.id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_failure("removing work dir", e)),
        }
    }
}

impl MediaStages {
    /// Settles again what the `settled` hook could not finish (it runs once, and a store
    /// error there was only logged) or never saw (an admin's refusal of a reviewed video):
    /// every job with a work dir on this node that has ended is settled again, which is
    /// idempotent. Dead jobs keep their work dir, so they are re-settled only while their
    /// video still says `processing`. Returns how many were settled.
    pub async fn sweep(&self, jobs: &dyn quicktok_pipeline::jobs::JobStore) -> usize {
        let Ok(mut dir) = tokio::fs::read_dir(self.d.data_dir.join("work")).await else {
            return 0;
        };
        let mut settled = 0;
        while let Ok(Some(entry)) = dir.next_entry().await {
            // `work/jobs` (the media job dirs) and anything else not a video id is not ours.
            let Some(video) = entry.file_name().to_str().and_then(|n| n.parse::<Id>().ok()) else {
                continue;
            };
            let job = match jobs.get(video).await {
                Ok(Some(job)) => job,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(%video, error = %e, "sweep: reading the job");
                    continue;
                }
            };
            let again = match job.status {
                JobStatus::Done | JobStatus::Rejected => true,
                JobStatus::Dead => matches!(
                    self.d.meta.videos().by_id(video).await,
                    Ok(Some(v)) if v.status == VideoStatus::Processing
                ),
                JobStatus::Queued | JobStatus::Running | JobStatus::Review => false,
            };
            if again {
                tracing::info!(%video, status = ?job.status, "sweep: settling an ended job again");
                self.settled(&job).await;
                settled += 1;
            }
        }
        settled
    }
}

/// The body of a [`LivePass`]: runs it and records how it ended.
async fn run_pass(
    d: StageDeps,
    video: Id,
    source: PathBuf,
    info: ProbeInfo,
    state: tokio::sync::watch::Sender<PassState>,
) {
    let started = std::time::Instant::now();
    let result = encode(&d, video, source, info, &state).await;
    match &result {
        Ok(()) => {
            tracing::info!(%video, elapsed_ms = started.elapsed().as_millis() as u64, "encoding pass done")
        }
        Err(e) => tracing::warn!(%video, error = ?e, "encoding pass failed"),
    }
    state.send_modify(|s| s.finished = Some(result));
}

/// Encodes the renditions `video` lacks in one pass, storing each segment as it is finished
/// and then each rendition's final description. Renditions an interrupted earlier pass left
/// growing keep their stored segments when this pass's init segment is byte-identical (same
/// encoder settings, so the same segment grid and decoder setup): a viewer already playing
/// them keeps valid URLs.
async fn encode(
    d: &StageDeps,
    video: Id,
    source: PathBuf,
    info: ProbeInfo,
    state: &tokio::sync::watch::Sender<PassState>,
) -> Result<(), Failure> {
    let ladder = quicktok_media::plan_ladder_for(&info, &d.media);
    let lowest = ladder
        .first()
        .map(|r| r.name.clone())
        .ok_or_else(|| Failure::Input("no rendition can be made from this video".into()))?;
    let mut uploaded: HashMap<String, Uploaded> = HashMap::new();
    for row in d.meta.renditions().for_video(video).await? {
        let Ok(r) = serde_json::from_str::<Rendition>(&row.spec_json) else { continue };
        let segments: Vec<Id> =
            r.segments.iter().filter_map(|s| s.path.to_str()?.parse().ok()).collect();
        let init = r.init.to_str().and_then(|p| p.parse().ok());
        let complete = !r.growing && !r.truncated;
        uploaded.insert(
            row.name,
            Uploaded {
                init,
                init_checked: complete,
                segments,
                duration_ms: r.duration_ms,
                complete,
            },
        );
    }
    let has_audio = info.has_audio;
    let playable = |uploaded: &HashMap<String, Uploaded>| {
        let stored = |name: &str| uploaded.get(name).map_or(0, |u| u.duration_ms);
        let video_ms = stored(&lowest);
        if has_audio { video_ms.min(stored(quicktok_media::AUDIO_RENDITION)) } else { video_ms }
    };
    state.send_modify(|s| s.playable_ms = playable(&uploaded));
    let is_complete = |name: &str| uploaded.get(name).is_some_and(|u| u.complete);
    let todo: Vec<Rung> = ladder.into_iter().filter(|r| !is_complete(&r.name)).collect();
    let audio = info.has_audio && !is_complete(quicktok_media::AUDIO_RENDITION);
    if todo.is_empty() && !audio {
        return Ok(());
    }
    let mut cfg = d.media.clone();
    cfg.niceness = cfg.niceness.max(cfg.encode_niceness);
    let dir = quicktok_media::JobDir::new(&cfg)?;
    let (progress, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut pass = AbortOnDrop(tokio::spawn(async move {
        let pass =
            quicktok_media::transcode_pass_live(&cfg, &dir, &source, &info, &todo, audio, progress)
                .await;
        (dir, pass)
    }));
    // The channel closes when the pass ends.
    let mut reports = std::collections::VecDeque::new();
    while let Some(event) = events.recv().await {
        match event {
            quicktok_media::PassProgress::Segments(snapshot) => {
                d.store_snapshot(video, snapshot, &mut uploaded).await?;
                state.send_modify(|s| s.playable_ms = playable(&uploaded));
            }
            quicktok_media::PassProgress::Encoded { media_ms } => {
                reports.push_back((std::time::Instant::now(), media_ms));
                keep_last_second(&mut reports);
                state.send_modify(|s| s.reports = reports.clone());
            }
        }
    }
    let (dir, result) = match (&mut pass.0).await {
        Ok(done) => done,
        Err(e) => return Err(Failure::Transient(format!("encoding pass task: {e}"))),
    };
    let result = result?;
    for rendition in result.renditions.into_iter().chain(result.audio) {
        d.store_snapshot(video, rendition, &mut uploaded).await?;
    }
    state.send_modify(|s| s.playable_ms = playable(&uploaded));
    drop(dir);
    Ok(())
}

impl StageDeps {
    /// Stores what a pass finished of one rendition: the segments not stored yet, then its
    /// description (blob ids in place of paths) as the rendition row the manifests read.
    async fn store_snapshot(
        &self,
        video: Id,
        mut r: Rendition,
        uploaded: &mut HashMap<String, Uploaded>,
    ) -> Result<(), Failure> {
        let kind = rendition_kind(&r.rung.name);
        let up = uploaded.entry(r.rung.name.clone()).or_default();
        if let (Some(old), false) = (up.init, up.init_checked) {
            let mine = tokio::fs::read(&r.init).await.map_err(|e| io_failure("reading init", e))?;
            let mut read = self.blobs.get(old, None).await?;
            let mut theirs = Vec::new();
            while let Some(chunk) = read.body.next().await {
                theirs.extend_from_slice(&chunk?);
            }
            if mine != theirs {
                // Other encoder settings: the old segments would not decode with this init.
                self.drop_blobs(video, &kind).await?;
                *up = Uploaded::default();
            }
            up.init_checked = true;
        }
        if r.segments.len() <= up.segments.len() && r.growing {
            return Ok(()); // an earlier pass stored these already
        }
        let init = match up.init {
            Some(id) => id,
            None => {
                let id = self.store_file(video, &kind, &r.init, "video/mp4").await?;
                up.init = Some(id);
                up.init_checked = true;
                id
            }
        };
        for seg in r.segments.iter().skip(up.segments.len()) {
            let id = self.store_file(video, &kind, &seg.path, "video/iso.segment").await?;
            up.segments.push(id);
        }
        r.init = PathBuf::from(init.to_string());
        for (seg, id) in r.segments.iter_mut().zip(&up.segments) {
            seg.path = PathBuf::from(id.to_string());
        }
        r.dir = PathBuf::new();
        let spec = serde_json::to_string(&r)
            .map_err(|e| Failure::Transient(format!("encoding rendition: {e}")))?;
        let row = RenditionRow {
            video_id: video,
            name: r.rung.name.clone(),
            height: i32::try_from(r.height).unwrap_or(i32::MAX),
            bandwidth: i64::try_from(r.bandwidth).unwrap_or(i64::MAX),
            spec_json: spec,
            created_at_ms: self.now(),
        };
        self.meta.renditions().put(&row).await?;
        up.duration_ms = r.duration_ms;
        up.complete = !r.growing;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Stages for MediaStages {
    async fn run(&self, stage: Stage, job: &Job) -> StageOutcome {
        let started = std::time::Instant::now();
        let result = match stage {
            Stage::Probe => self.probe(job).await,
            Stage::Compliance => self.compliance(job).await,
            Stage::Dedup => self.dedup(job).await,
            Stage::Tags => self.tags(job).await,
            Stage::Covers => self.covers(job).await,
            Stage::Transcode => self.transcode(job).await,
            Stage::Publish => self.publish(job).await,
            Stage::Ladder => self.ladder(job).await,
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        metrics::histogram!("quicktok_pipeline_stage_seconds", "stage" => stage.as_str())
            .record(elapsed_ms as f64 / 1000.0);
        match result {
            Ok(outcome) => {
                tracing::debug!(video = %job.id, stage = stage.as_str(), elapsed_ms, "stage done");
                outcome
            }
            Err(Failure::Input(reason)) => StageOutcome::Reject(reason),
            Err(Failure::Transient(error)) => {
                tracing::warn!(video = %job.id, stage = stage.as_str(), %error, "stage failed; will retry");
                StageOutcome::Retry(error)
            }
        }
    }

    async fn settled(&self, job: &Job) {
        if let Err(Failure::Transient(e) | Failure::Input(e)) = self.settle(job).await {
            tracing::error!(video = %job.id, status = ?job.status, error = %e, "could not record a job's outcome on its video");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{playable_now, story_too_long};

    #[test]
    fn only_stories_over_the_limit_are_too_long() {
        assert_eq!(story_too_long(60_000, None), None, "videos have no such limit");
        assert_eq!(story_too_long(15_000, Some(15_000)), None);
        let reason = story_too_long(15_001, Some(15_000)).unwrap();
        assert!(reason.contains("at most 15.0 s") && reason.contains("lasts 15.0 s"), "{reason}");
        assert!(story_too_long(16_000, Some(15_000)).unwrap().contains("lasts 16.0 s"));
    }

    #[test]
    fn publication_waits_until_a_viewer_cannot_catch_up() {
        // Nothing stored: never.
        assert!(!playable_now(0, 5.0, 15_000));
        // Everything stored: always.
        assert!(playable_now(15_000, 0.01, 15_000));
        // 2x real time, 1.6x with the margin: one segment is enough.
        assert!(playable_now(2_000, 2.0, 15_000));
        // 0.5x, 0.4x with the margin: 60% of the clip must be stored.
        assert!(!playable_now(2_000, 0.5, 15_000));
        assert!(!playable_now(8_000, 0.5, 15_000));
        assert!(playable_now(9_000, 0.5, 15_000));
    }

    #[test]
    fn speed_since_counts_only_later_reports() {
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut reports = std::collections::VecDeque::new();
        for i in 0..10 {
            reports.push_back((at(i * 100), i * 40)); // 0.4x while sampling ran beside
        }
        assert_eq!(super::speed_since(&reports, at(1000)), None, "nothing after");
        for i in 0..4 {
            reports.push_back((at(1000 + i * 100), 360 + i * 200)); // 2x since
        }
        let fast = super::speed_since(&reports, at(1000)).unwrap();
        assert!((fast - 2.0).abs() < 1e-9, "{fast}");
        assert_eq!(super::speed_since(&reports, at(1150)), None, "under 300 ms of reports");
    }

    #[test]
    fn recent_speed_follows_the_last_second() {
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut reports = std::collections::VecDeque::new();
        let speed = |r: &mut std::collections::VecDeque<_>| {
            super::keep_last_second(r);
            super::recent_speed(r)
        };
        assert_eq!(speed(&mut reports), None);
        reports.push_back((at(0), 0));
        reports.push_back((at(250), 100));
        assert_eq!(speed(&mut reports), None, "a quarter second tells nothing");
        // Slow while something else ran (0.4x), then fast (2x): the window forgets the start.
        for i in 2..=8 {
            reports.push_back((at(i * 250), i * 100));
        }
        let slow = speed(&mut reports).unwrap();
        assert!((slow - 0.4).abs() < 1e-9, "{slow}");
        for i in 1..=6 {
            reports.push_back((at(2000 + i * 250), 800 + i * 500));
        }
        let fast = speed(&mut reports).unwrap();
        assert!((fast - 2.0).abs() < 1e-9, "{fast}");
        assert!(reports.len() <= 6, "old reports are dropped: {}", reports.len());
    }

    /// Whatever the numbers, a viewer starting at publication and playing at 1x never
    /// reaches a segment that is not stored yet, if the pass keeps its speed with margin.
    #[test]
    fn a_viewer_starting_at_publication_never_stalls() {
        for total in [2_000u64, 15_000, 60_000, 600_000] {
            for speed_pct in [10u64, 30, 50, 79, 80, 100, 150, 400] {
                // The pass stores `speed` media ms per wall ms; find the first publication.
                let speed = speed_pct as f64 / 100.0;
                let mut t = 1u64;
                let ready = loop {
                    let ready = ((t as f64 * speed) as u64).min(total);
                    if playable_now(ready, speed, total) {
                        break ready;
                    }
                    t += 10;
                };
                // From then on the pass runs at speed / margin at worst.
                let slow = speed / super::PLAYBACK_MARGIN;
                let mut watched = 0.0f64;
                let mut stored = ready as f64;
                while watched < total as f64 {
                    assert!(
                        watched <= stored + 1.0,
                        "total {total} speed {speed}: the viewer at {watched} passed {stored}"
                    );
                    watched += 10.0;
                    stored = (stored + 10.0 * slow).min(total as f64);
                }
            }
        }
    }
}
