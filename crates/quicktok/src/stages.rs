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
//! Time to first play is what the order serves: only the lowest rung is encoded before
//! `publish`; the `ladder` stage adds the others, and each joins the manifests as soon as
//! its row is stored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use quicktok_blob::{BlobBody, BlobStore, StorageClass};
use quicktok_core::clock::SharedClock;
use quicktok_core::{Event, Id, IdGenerator};
use quicktok_log::{EventLog, NewRecord};
use quicktok_media::{MediaConfig, MediaError, ProbeInfo, Rendition, Rung};
use quicktok_meta::{Fingerprint, MetaError, MetaStore, RenditionRow, VideoStatus};
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
#[derive(Debug)]
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
    /// Ladder passes started early, at low priority, per video (see `transcode`).
    ladders: std::sync::Mutex<std::collections::HashMap<Id, LadderTask>>,
}

/// A ladder pass running in the background: its job dir (where the outputs are) and pass.
type LadderTask =
    tokio::task::JoinHandle<Result<(quicktok_media::JobDir, quicktok_media::Pass), MediaError>>;

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
            ladders: std::sync::Mutex::new(std::collections::HashMap::new()),
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
        self.d.clock.now_ms()
    }

    fn new_id(&self) -> Id {
        self.d.ids.next(self.d.clock.as_ref())
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
        let blob: Id = from_state(job, keys::SOURCE_BLOB)?;
        let dir = self.work_dir(job.id);
        tokio::fs::create_dir_all(&dir).await.map_err(|e| io_failure("creating work dir", e))?;
        self.fetch_blob(blob, &path).await?;
        Ok(path)
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
        self.d.blobs.put(id, StorageClass::Hot, size, content_type, body).await?;
        self.d.meta.video_blobs().attach(video, id, kind, self.now()).await?;
        Ok(id)
    }

    /// Deletes `video`'s blobs of `kind` (the leftovers of an interrupted earlier run).
    async fn drop_blobs(&self, video: Id, kind: &str) -> Result<(), Failure> {
        for blob in self.d.meta.video_blobs().for_video(video).await? {
            if blob.kind == kind {
                self.d.blobs.delete(blob.blob_id).await?;
                self.d.meta.video_blobs().detach(blob.blob_id).await?;
            }
        }
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
        let hash = quicktok_media::sha256_file(&source).await?;
        let info = quicktok_media::probe(&self.d.media, &source).await.map_err(input_fault)?;
        let existing = self.d.meta.video_blobs().for_video(job.id).await?;
        let blob = match existing.iter().find(|b| b.kind == KIND_SOURCE) {
            Some(b) => b.blob_id,
            None => {
                self.store_file(job.id, KIND_SOURCE, &source, "application/octet-stream").await?
            }
        };
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

    /// One decode of the source for everything a first play and the checks before it need:
    /// the audio track, the lowest rung, and frames sampled evenly over the clip (their
    /// fingerprints for dedup, the best of them stored as cover candidates).
    async fn transcode(&self, job: &Job) -> StageResult {
        let info: ProbeInfo = from_state(job, keys::PROBE)?;
        let ladder = quicktok_media::plan_ladder_for(&info, &self.d.media);
        let Some(first) = ladder.first() else {
            return Err(Failure::Input("no rendition can be made from this video".into()));
        };
        let source = self.source(job).await?;
        if self.d.pipeline.early_ladder {
            let todo = self.ladder_todo(job, &info).await?;
            self.start_ladder(job, source.clone(), info.clone(), todo);
        }
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
            std::slice::from_ref(first),
            true,
            Some(&sampling),
        )
        .await?;
        tracing::info!(video = %job.id, rung = %first.name, elapsed_ms = started.elapsed().as_millis() as u64, "first pass done");
        if let Some(audio) = pass.audio {
            self.save_rendition(job.id, audio).await?;
        }
        for rendition in pass.renditions {
            self.save_rendition(job.id, rendition).await?;
        }
        let hashes: Vec<u64> = pass
            .samples
            .iter()
            .map(|f| quicktok_media::dhash_gray(&f.gray, f.width as usize, f.height as usize))
            .collect();
        if hashes.is_empty() {
            return Err(Failure::Input("no frame of the video could be decoded".into()));
        }
        let chosen = quicktok_media::choose_covers(&pass.samples, p.covers.max(1) as usize);
        self.drop_blobs(job.id, KIND_COVER).await?;
        let mut stored = Vec::new();
        for cover in &chosen {
            let mut images = Vec::new();
            let all = std::iter::once((&cover.path, cover.width, cover.height))
                .chain(cover.thumbnails.iter().map(|t| (&t.path, t.width, t.height)));
            for (path, width, height) in all {
                let blob = self.store_file(job.id, KIND_COVER, path, "image/jpeg").await?;
                images.push(serde_json::json!({"blob": blob, "width": width, "height": height}));
            }
            stored.push(serde_json::json!({"at_ms": cover.at_ms, "images": images}));
        }
        let mut out = entry(keys::FRAME_HASHES, &hashes)?;
        out.extend(entry(keys::COVER_CANDIDATES, &stored)?);
        Ok(StageOutcome::Next(out))
    }

    /// Makes the video playable (unless it was taken down meanwhile).
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
                self.d
                    .meta
                    .videos()
                    .set_status(job.id, VideoStatus::Published, None, self.now())
                    .await?;
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

    /// The remaining rungs, each stored (and so playable) as it finishes.
    async fn ladder(&self, job: &Job) -> StageResult {
        let info: ProbeInfo = from_state(job, keys::PROBE)?;
        let todo = self.ladder_todo(job, &info).await?;
        if todo.is_empty() {
            self.cancel_ladder(job.id);
            return Ok(StageOutcome::Next(Map::new()));
        }
        let started = std::time::Instant::now();
        let early = self.ladders.lock().ok().and_then(|mut l| l.remove(&job.id));
        let (dir, pass) = match early {
            // Started by the transcode stage on this node: wait for it.
            Some(task) => match task.await {
                Ok(result) => result?,
                Err(e) => return Err(Failure::Transient(format!("ladder pass task: {e}"))),
            },
            // One decode for all of them now, at background priority: another video's first
            // rung goes first.
            None => {
                let source = self.source(job).await?;
                let mut cfg = self.d.media.clone();
                cfg.niceness = cfg.background_niceness;
                let dir = quicktok_media::JobDir::new(&cfg)?;
                let pass =
                    quicktok_media::transcode_pass(&cfg, &dir, &source, &info, &todo, false, None)
                        .await?;
                (dir, pass)
            }
        };
        tracing::info!(video = %job.id, rungs = todo.len(), waited_ms = started.elapsed().as_millis() as u64, "ladder pass done");
        for rendition in pass.renditions {
            if todo.iter().any(|r| r.name == rendition.rung.name) {
                self.save_rendition(job.id, rendition).await?;
            }
        }
        drop(dir);
        Ok(StageOutcome::Next(Map::new()))
    }

    /// The planned rungs after the first that have no stored rendition yet.
    async fn ladder_todo(&self, job: &Job, info: &ProbeInfo) -> Result<Vec<Rung>, Failure> {
        let done: Vec<String> =
            self.d.meta.renditions().for_video(job.id).await?.into_iter().map(|r| r.name).collect();
        Ok(quicktok_media::plan_ladder_for(info, &self.d.media)
            .into_iter()
            .skip(1)
            .filter(|rung| !done.contains(&rung.name))
            .collect())
    }

    /// Starts the ladder pass for `job` at background priority beside the first pass
    /// (`pipeline.early_ladder`), unless one is running: it soaks up the CPU the first pass
    /// leaves idle, so the big rungs are done sooner after publication.
    fn start_ladder(&self, job: &Job, source: PathBuf, info: ProbeInfo, todo: Vec<Rung>) {
        let Ok(mut ladders) = self.ladders.lock() else { return };
        if todo.is_empty() || ladders.get(&job.id).is_some_and(|t| !t.is_finished()) {
            return;
        }
        let mut cfg = self.d.media.clone();
        cfg.niceness = cfg.background_niceness;
        let task = tokio::spawn(async move {
            let dir = quicktok_media::JobDir::new(&cfg)?;
            let pass =
                quicktok_media::transcode_pass(&cfg, &dir, &source, &info, &todo, false, None)
                    .await?;
            Ok((dir, pass))
        });
        ladders.insert(job.id, task);
    }

    /// Stops `video`'s background ladder pass, if any (dropping the task kills ffmpeg).
    fn cancel_ladder(&self, video: Id) {
        if let Some(task) = self.ladders.lock().ok().and_then(|mut l| l.remove(&video)) {
            task.abort();
        }
    }

    /// Stores a finished rendition's files as blobs (replacing an earlier run's) and its
    /// description as a rendition row: from then on the manifests list it.
    async fn save_rendition(&self, video: Id, rendition: Rendition) -> Result<(), Failure> {
        let name = rendition.rung.name.clone();
        let kind = rendition_kind(&name);
        self.drop_blobs(video, &kind).await?;
        let stored = self.store_rendition(video, &kind, rendition).await?;
        let spec = serde_json::to_string(&stored)
            .map_err(|e| Failure::Transient(format!("encoding rendition: {e}")))?;
        let row = RenditionRow {
            video_id: video,
            name,
            height: i32::try_from(stored.height).unwrap_or(i32::MAX),
            bandwidth: i64::try_from(stored.bandwidth).unwrap_or(i64::MAX),
            spec_json: spec,
            created_at_ms: self.now(),
        };
        self.d.meta.renditions().put(&row).await?;
        Ok(())
    }

    /// Uploads a rendition's files; the returned description names blob ids where the
    /// local one had paths (the API's playback routes read them back).
    async fn store_rendition(
        &self,
        video: Id,
        kind: &str,
        mut r: Rendition,
    ) -> Result<Rendition, Failure> {
        let init = self.store_file(video, kind, &r.init, "video/mp4").await?;
        r.init = PathBuf::from(init.to_string());
        for seg in &mut r.segments {
            let blob = self.store_file(video, kind, &seg.path, "video/iso.segment").await?;
            seg.path = PathBuf::from(blob.to_string());
        }
        r.dir = PathBuf::new();
        Ok(r)
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
        self.drop_blobs(job.id, KIND_SHEET).await?;
        self.store_file(job.id, KIND_SHEET, &sheet.path, "image/jpeg").await?;
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
        // A refused, parked or failed video needs no ladder (approval starts another).
        self.cancel_ladder(job.id);
        let reason = job.reason.clone().unwrap_or_default();
        match job.status {
            JobStatus::Done => {}
            // After publication (the ladder) a failure costs the higher rungs, not the video:
            // it stays published with what it has, and an operator can retry the job.
            JobStatus::Rejected | JobStatus::Dead if job.stage > Stage::Publish => {
                tracing::error!(video = %job.id, %reason, "the ladder failed; the video stays published with its first rung");
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
