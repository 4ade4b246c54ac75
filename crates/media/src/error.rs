//! The crate's error type and the typed rejection of bad input.

use std::path::PathBuf;
use std::time::Duration;

use quicktok_core::ErrorCode;
use serde::Serialize;

/// Why an upload was refused. The `snake_case` spelling is stable: the pipeline stores it
/// and the API shows it to the uploader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The file has no bytes.
    EmptyFile,
    /// The file is larger than `MediaConfig::max_input_bytes`.
    FileTooLarge,
    /// The container is not on the allow-list (playlists, concat lists, images, text, ...).
    FormatNotAllowed,
    /// The container is allowed but ffprobe cannot read it (corrupt or cut early).
    Unreadable,
    /// The container declares more media than the file holds.
    Truncated,
    /// No video stream at all.
    NoVideoStream,
    /// Only audio streams (a video upload that is really a song or voice memo).
    AudioOnly,
    /// The video codec is not on the allow-list.
    CodecNotAllowed,
    /// Duration is zero or unknown.
    ZeroDuration,
    /// Longer than `MediaConfig::max_duration_ms`.
    TooLong,
    /// Zero, absurd or too many pixels (see the `max_*` dimension settings).
    DimensionsOutOfRange,
    /// Frame rate is zero, unknown or absurd.
    InvalidFrameRate,
}

impl RejectReason {
    /// The reason code as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::EmptyFile => "empty_file",
            RejectReason::FileTooLarge => "file_too_large",
            RejectReason::FormatNotAllowed => "format_not_allowed",
            RejectReason::Unreadable => "unreadable",
            RejectReason::Truncated => "truncated",
            RejectReason::NoVideoStream => "no_video_stream",
            RejectReason::AudioOnly => "audio_only",
            RejectReason::CodecNotAllowed => "codec_not_allowed",
            RejectReason::ZeroDuration => "zero_duration",
            RejectReason::TooLong => "too_long",
            RejectReason::DimensionsOutOfRange => "dimensions_out_of_range",
            RejectReason::InvalidFrameRate => "invalid_frame_rate",
        }
    }

    /// The platform error code an API should answer with.
    pub fn error_code(self) -> ErrorCode {
        match self {
            RejectReason::FileTooLarge => ErrorCode::PayloadTooLarge,
            RejectReason::FormatNotAllowed | RejectReason::CodecNotAllowed => {
                ErrorCode::UnsupportedMediaType
            }
            _ => ErrorCode::ValidationFailed,
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused input: a machine reason plus a message fit for the uploader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Rejection { reason, message: message.into() }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

/// Errors of the media crate. `Rejected` is the uploader's fault; the others are ours or
/// the machine's.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("input rejected: {0}")]
    Rejected(Rejection),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not start {tool} ({path}): {source}")]
    ToolMissing {
        tool: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} exceeded its wall-clock limit of {limit:?} and was killed")]
    Timeout { tool: &'static str, limit: Duration },
    #[error("{tool} hit a resource cap ({what}); stderr: {stderr}")]
    ResourceLimit { tool: &'static str, what: String, stderr: String },
    #[error("{tool} failed ({status}): {stderr}")]
    ToolFailed { tool: &'static str, status: String, stderr: String },
    #[error("{tool} wrote more than {limit} bytes to stdout")]
    OutputTooLarge { tool: &'static str, limit: usize },
    #[error("unexpected tool output: {0}")]
    BadOutput(String),
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl MediaError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        MediaError::Io { context: context.into(), source }
    }

    pub(crate) fn reject(reason: RejectReason, message: impl Into<String>) -> Self {
        MediaError::Rejected(Rejection::new(reason, message))
    }

    /// The rejection, when the error is the input's fault.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            MediaError::Rejected(r) => Some(r),
            _ => None,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = MediaError> = std::result::Result<T, E>;
