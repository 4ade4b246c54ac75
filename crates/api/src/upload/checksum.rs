//! The tus checksum extension: `Upload-Checksum: <algorithm> <base64 digest>` verified over
//! one request's bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::Digest;

/// The algorithms offered in `Tus-Checksum-Algorithm`.
pub const ALGORITHMS: &str = "sha1,md5,sha256";

/// A supported checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Md5,
    Sha256,
}

/// Why an `Upload-Checksum` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumHeaderError {
    #[error("Upload-Checksum must be \"<algorithm> <base64 digest>\"")]
    Malformed,
    #[error("checksum algorithm {0:?} is not supported (supported: {ALGORITHMS})")]
    Unsupported(String),
    #[error("the Upload-Checksum digest is not valid base64 of the algorithm's length")]
    BadDigest,
}

/// An expected checksum, parsed from the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub algorithm: Algorithm,
    pub digest: Vec<u8>,
}

impl Algorithm {
    fn parse(name: &str) -> Option<Algorithm> {
        match name.to_ascii_lowercase().as_str() {
            "sha1" => Some(Algorithm::Sha1),
            "md5" => Some(Algorithm::Md5),
            "sha256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Md5 => 16,
            Algorithm::Sha256 => 32,
        }
    }
}

impl Expected {
    /// Parses an `Upload-Checksum` header value.
    pub fn parse(value: &str) -> Result<Expected, ChecksumHeaderError> {
        let (name, digest) = value.trim().split_once(' ').ok_or(ChecksumHeaderError::Malformed)?;
        let algorithm = Algorithm::parse(name)
            .ok_or_else(|| ChecksumHeaderError::Unsupported(name.chars().take(32).collect()))?;
        let digest = STANDARD.decode(digest.trim()).map_err(|_| ChecksumHeaderError::BadDigest)?;
        if digest.len() != algorithm.digest_len() {
            return Err(ChecksumHeaderError::BadDigest);
        }
        Ok(Expected { algorithm, digest })
    }
}

/// A running digest over the bytes of one request.
pub enum Hasher {
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        let data = b"The quick brown fox jumps over the lazy dog";
        for (header, algorithm) in [
            ("sha1 L9ThxnotKPzthJ7hu3bnORuT6xI=", Algorithm::Sha1),
            ("md5 nhB9nTcrtoJr2B01QqQZ1g==", Algorithm::Md5),
            ("SHA256 16j7swfXgJRpypq8sAguT41WUeRtPNt2LQLQvzfJ5ZI=", Algorithm::Sha256),
        ] {
            let expected = Expected::parse(header).unwrap();
            assert_eq!(expected.algorithm, algorithm);
            let mut h = Hasher::new(algorithm);
            h.update(&data[..10]);
            h.update(&data[10..]);
            assert_eq!(h.finish(), expected.digest, "{header}");
        }
    }

    #[test]
    fn bad_headers() {
        assert_eq!(Expected::parse("sha1"), Err(ChecksumHeaderError::Malformed));
        assert!(matches!(Expected::parse("crc32 AAAA"), Err(ChecksumHeaderError::Unsupported(_))));
        assert_eq!(Expected::parse("sha1 !!!"), Err(ChecksumHeaderError::BadDigest));
        assert_eq!(Expected::parse("sha1 AAAA"), Err(ChecksumHeaderError::BadDigest));
    }
}
