//! The `[blob.s3]` configuration of the S3 backend and its validation.

use serde::{Deserialize, Serialize};

use crate::api::StorageClass;
use crate::error::{BlobError, Result};

const MIB: u64 = 1024 * 1024;
/// S3's smallest part (except the last) of a multipart upload.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest single PUT and largest part.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * MIB;
/// S3's largest number of parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;

/// Where and how the S3 backend stores blobs. Plain fields so it reads well in TOML.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// Base URL of an S3-compatible server (SeaweedFS, MinIO, ...), e.g.
    /// `http://127.0.0.1:8333`; requests then use path-style URLs. Empty: Amazon S3 in
    /// `region`, with virtual-hosted-style URLs.
    pub endpoint: String,
    /// The bucket; it must exist (see `S3Store::create_bucket`).
    pub bucket: String,
    /// SigV4 signing region; most S3-compatible servers accept any value.
    pub region: String,
    /// Static credentials. Both empty: unsigned (anonymous) requests. Instance or
    /// environment credentials are deliberately not looked up.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow `http://` endpoints (local servers); off by default so a typo cannot send
    /// credentials in clear text.
    pub allow_http: bool,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// Blobs larger than this are uploaded in parts (streamed); smaller ones in one PUT
    /// (buffered in memory). At most 5 GiB.
    pub multipart_threshold_bytes: u64,
    /// Size of each part of a multipart upload, 5 MiB to 5 GiB; grown automatically when a
    /// blob would need more than 10,000 parts. Two parts per upload are in flight at most.
    pub part_size_bytes: u64,
    /// S3 storage class names per QuickTok class, sent as `x-amz-storage-class`. Empty: send
    /// none (the bucket's default class).
    pub storage_class_hot: String,
    pub storage_class_warm: String,
    pub storage_class_cold: String,
    /// TCP connect timeout.
    pub connect_timeout_secs: u64,
    /// Whole-request timeout including the body, so it bounds the slowest streamed read;
    /// 0 disables it.
    pub request_timeout_secs: u64,
    /// Retries of failed requests (connection errors, 5xx) with exponential backoff.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt.
    pub retry_timeout_secs: u64,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            bucket: "quicktok".to_owned(),
            region: "us-east-1".to_owned(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            allow_http: false,
            prefix: "blobs".to_owned(),
            multipart_threshold_bytes: 16 * MIB,
            part_size_bytes: 8 * MIB,
            storage_class_hot: "STANDARD".to_owned(),
            storage_class_warm: "STANDARD_IA".to_owned(),
            storage_class_cold: "GLACIER_IR".to_owned(),
            connect_timeout_secs: 5,
            request_timeout_secs: 300,
            max_retries: 3,
            retry_timeout_secs: 30,
        }
    }
}

// Hand-written so the secret never reaches a log line.
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.secret_access_key.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &secret)
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .field("multipart_threshold_bytes", &self.multipart_threshold_bytes)
            .field("part_size_bytes", &self.part_size_bytes)
            .field("storage_class_hot", &self.storage_class_hot)
            .field("storage_class_warm", &self.storage_class_warm)
            .field("storage_class_cold", &self.storage_class_cold)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout_secs", &self.retry_timeout_secs)
            .finish()
    }
}

impl S3Config {
    /// The configured S3 storage class name for `class` (empty: none).
    pub fn storage_class_name(&self, class: StorageClass) -> &str {
        match class {
            StorageClass::Hot => &self.storage_class_hot,
            StorageClass::Warm => &self.storage_class_warm,
            StorageClass::Cold => &self.storage_class_cold,
        }
    }

    /// The QuickTok class whose configured S3 name is `name`, when exactly one class has
    /// it. An object stored without a class header is listed as `STANDARD`.
    pub(crate) fn class_for_name(&self, name: &str) -> Option<StorageClass> {
        let mut found = None;
        for class in StorageClass::ALL {
            let mut configured = self.storage_class_name(class);
            if configured.is_empty() {
                configured = "STANDARD";
            }
            if configured == name {
                if found.is_some() {
                    return None;
                }
                found = Some(class);
            }
        }
        found
    }

    /// Checks the configuration; the returned prefix has no surrounding slashes.
    pub(crate) fn validate(&self) -> Result<String> {
        let bad = |why: String| Err(BlobError::InvalidConfig(format!("blob.s3: {why}")));
        if self.bucket.is_empty() {
            return bad("bucket is empty".into());
        }
        if !self.endpoint.is_empty() {
            let url = match url::Url::parse(&self.endpoint) {
                Ok(url) => url,
                Err(e) => return bad(format!("endpoint {:?} is not a URL: {e}", self.endpoint)),
            };
            match url.scheme() {
                "https" => {}
                "http" if self.allow_http => {}
                "http" => return bad("endpoint is http:// but allow_http is false".into()),
                other => return bad(format!("endpoint scheme {other:?} is not http(s)")),
            }
            if url.path() != "/" || url.query().is_some() {
                return bad("endpoint must not have a path or query".into());
            }
        }
        if self.access_key_id.is_empty() != self.secret_access_key.is_empty() {
            return bad("set both access_key_id and secret_access_key, or neither".into());
        }
        let prefix = self.prefix.trim_matches('/');
        let prefix_ok = prefix.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
        if !prefix.is_empty() && !prefix_ok {
            return bad(format!(
                "prefix {:?} may only hold letters, digits, '-', '_', '.' and '/'",
                self.prefix
            ));
        }
        if !(MIN_PART_SIZE..=MAX_PUT_SIZE).contains(&self.part_size_bytes) {
            return bad(format!(
                "part_size_bytes must be between {MIN_PART_SIZE} and {MAX_PUT_SIZE}"
            ));
        }
        if self.multipart_threshold_bytes > MAX_PUT_SIZE {
            return bad(format!("multipart_threshold_bytes must be at most {MAX_PUT_SIZE}"));
        }
        for class in StorageClass::ALL {
            let name = self.storage_class_name(class);
            if !name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
                return bad(format!(
                    "storage class {name:?} for {} is not an S3 name",
                    class.as_str()
                ));
            }
        }
        if self.connect_timeout_secs == 0 {
            return bad("connect_timeout_secs must be positive".into());
        }
        Ok(prefix.to_owned())
    }

    /// Part size for a blob of `size` bytes: the configured one, grown (in whole MiB) when
    /// the blob would otherwise need more than S3's 10,000 parts.
    pub(crate) fn part_size_for(&self, size: u64) -> u64 {
        let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        self.part_size_bytes.max(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_debug_redacts_the_secret() {
        let mut config = S3Config::default();
        assert_eq!(config.validate().ok().as_deref(), Some("blobs"));
        config.secret_access_key = "hunter2".into();
        config.access_key_id = "key".into();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn rejects_bad_values() {
        let check = |f: &dyn Fn(&mut S3Config)| {
            let mut config = S3Config::default();
            f(&mut config);
            assert!(matches!(config.validate(), Err(BlobError::InvalidConfig(_))), "{config:?}");
        };
        check(&|c| c.bucket.clear());
        check(&|c| c.endpoint = "http://127.0.0.1:8333".into());
        check(&|c| c.endpoint = "ftp://x".into());
        check(&|c| c.endpoint = "https://s3.example/path".into());
        check(&|c| c.access_key_id = "only-key".into());
        check(&|c| c.prefix = "a/../b".into());
        check(&|c| c.prefix = "a b".into());
        check(&|c| c.part_size_bytes = MIB);
        check(&|c| c.multipart_threshold_bytes = 6 * 1024 * MIB);
        check(&|c| c.storage_class_cold = "glacier; x".into());
    }

    #[test]
    fn serde_round_trip_and_unknown_fields() {
        let config = S3Config { prefix: "a/b".into(), ..S3Config::default() };
        let json = serde_json::to_string(&config).unwrap();
        let back: S3Config = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        let partial: S3Config = serde_json::from_str(r#"{"bucket":"b"}"#).unwrap();
        assert_eq!(partial.part_size_bytes, 8 * MIB);
        assert!(serde_json::from_str::<S3Config>(r#"{"bukket":"b"}"#).is_err());
    }

    #[test]
    fn class_names_map_back_only_when_unambiguous() {
        let mut config = S3Config::default();
        assert_eq!(config.class_for_name("STANDARD_IA"), Some(StorageClass::Warm));
        assert_eq!(config.class_for_name("GLACIER"), None);
        config.storage_class_warm = "STANDARD".into();
        assert_eq!(config.class_for_name("STANDARD"), None);
        assert_eq!(config.class_for_name("GLACIER_IR"), Some(StorageClass::Cold));
    }

    #[test]
    fn part_size_grows_for_huge_blobs() {
        let config = S3Config::default();
        assert_eq!(config.part_size_for(100 * MIB), 8 * MIB);
        let huge = 200 * 1024 * MIB;
        let part = config.part_size_for(huge);
        assert!(huge.div_ceil(part) <= MAX_PARTS && part % MIB == 0);
    }
}
