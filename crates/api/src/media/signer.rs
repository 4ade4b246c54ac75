//! Signed, expiring media URLs: `/media/{id}?exp=<unix secs>&sig=<HMAC-SHA256>`, so blobs of
//! unpublished or removed videos cannot be fetched by guessing their time-ordered ids, and a
//! leaked URL stops working after its lifetime.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use quicktok_core::Id;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks media URLs.
#[derive(Clone)]
pub struct MediaSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for MediaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaSigner")
    }
}

impl MediaSigner {
    /// A signer keyed by a key derived from the server secret, so a media signature can never
    /// be replayed as a token signature or the reverse.
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).unwrap_or_else(|_| {
            // HMAC accepts keys of any length; this branch cannot run.
            HmacSha256::new_from_slice(&[0u8; 32]).unwrap_or_else(|_| unreachable!())
        });
        mac.update(b"quicktok media url key v1");
        let mut key = [0u8; 32];
        key.copy_from_slice(&mac.finalize().into_bytes());
        MediaSigner { key }
    }

    fn mac(&self, id: Id, exp: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(format!("media:{id}:{exp}").as_bytes());
        mac
    }

    /// The signature of (`id`, `exp`).
    pub fn sign(&self, id: Id, exp: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(id, exp).finalize().into_bytes())
    }

    /// A path with query for blob `id`, valid until `exp` (Unix seconds).
    pub fn path(&self, id: Id, exp: i64) -> String {
        format!("/media/{id}?exp={exp}&sig={}", self.sign(id, exp))
    }

    /// As [`MediaSigner::path`], with a file extension after the id (`/media/{id}.m4s`):
    /// some players (ffmpeg's HLS demuxer) only fetch segments whose URL has a media
    /// extension. The signature is the same; the extension is not part of it.
    pub fn path_with_extension(&self, id: Id, extension: &str, exp: i64) -> String {
        format!("/media/{id}.{extension}?exp={exp}&sig={}", self.sign(id, exp))
    }

    fn manifest_mac(&self, video: Id, exp: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!());
        mac.update(format!("manifest:{video}:{exp}").as_bytes());
        mac
    }

    /// A path with query for manifest `file` (`master.m3u8`, `manifest.mpd`, a rung's
    /// playlist) of `video`, valid until `exp`. One signature covers every manifest of the
    /// video, so a master playlist can link its rung playlists.
    pub fn manifest_path(&self, video: Id, file: &str, exp: i64) -> String {
        let sig = URL_SAFE_NO_PAD.encode(self.manifest_mac(video, exp).finalize().into_bytes());
        format!("/media/v/{video}/{file}?exp={exp}&sig={sig}")
    }

    /// Whether `sig` signs the manifests of `video` until `exp`, and `exp` is not past.
    pub fn verify_manifest(&self, video: Id, exp: i64, sig: &str, now_secs: i64) -> bool {
        if exp < now_secs {
            return false;
        }
        let Ok(raw) = URL_SAFE_NO_PAD.decode(sig) else { return false };
        self.manifest_mac(video, exp).verify_slice(&raw).is_ok()
    }

    /// Whether `sig` is a valid signature of (`id`, `exp`) and `exp` is not past `now_secs`.
    /// The comparison is constant-time.
    pub fn verify(&self, id: Id, exp: i64, sig: &str, now_secs: i64) -> bool {
        if exp < now_secs {
            return false;
        }
        let Ok(raw) = URL_SAFE_NO_PAD.decode(sig) else { return false };
        self.mac(id, exp).verify_slice(&raw).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = MediaSigner::from_secret(&[9u8; 64]);
        let sig = s.sign(Id(7), 2000);
        assert!(s.verify(Id(7), 2000, &sig, 1999));
        assert!(s.verify(Id(7), 2000, &sig, 2000));
        assert!(!s.verify(Id(7), 2000, &sig, 2001), "expired");
        assert!(!s.verify(Id(8), 2000, &sig, 1000), "other blob");
        assert!(!s.verify(Id(7), 2001, &sig, 1000), "other expiry");
        assert!(!s.verify(Id(7), 2000, "not base64!", 1000));
        // Blob and manifest signatures are not interchangeable.
        let manifest = s.manifest_path(Id(7), "master.m3u8", 2000);
        let msig = manifest.rsplit("sig=").next().unwrap();
        assert!(s.verify_manifest(Id(7), 2000, msig, 1000));
        assert!(!s.verify(Id(7), 2000, msig, 1000));
        assert!(!s.verify_manifest(Id(7), 2000, &sig, 1000));
        assert!(!s.verify_manifest(Id(7), 2000, msig, 2001), "expired");
        let other = MediaSigner::from_secret(&[8u8; 64]);
        assert!(!other.verify(Id(7), 2000, &sig, 1000), "other server");
        assert!(s.path(Id(7), 2000).starts_with("/media/7?exp=2000&sig="));
    }
}
