//! Perceptual hashes for near-duplicate detection: 64-bit dHash of evenly spaced frames.

use std::path::Path;

use crate::config::MediaConfig;
use crate::error::Result;
use crate::frames::gray_frames;
use crate::probe::ProbeInfo;
use crate::runner::JobDir;

/// dHash of a 9x8 gray frame (row-major): bit set where a pixel is brighter than its right
/// neighbour, first row in the most significant bits.
pub fn dhash_9x8(pixels: &[u8]) -> u64 {
    let mut h = 0u64;
    for row in 0..8 {
        for col in 0..8 {
            let i = row * 9 + col;
            let (l, r) =
                (pixels.get(i).copied().unwrap_or(0), pixels.get(i + 1).copied().unwrap_or(0));
            h = (h << 1) | u64::from(l > r);
        }
    }
    h
}

/// dHash of a gray `width` x `height` frame (row-major): area-averaged down to 9x8 first,
/// as ffmpeg's `scale=9:8:flags=area` does, so it matches [`frame_hashes`] closely enough
/// for near-duplicate distances (every stored fingerprint is computed one way, this one).
pub fn dhash_gray(pixels: &[u8], width: usize, height: usize) -> u64 {
    if width == 0 || height == 0 || pixels.len() < width * height {
        return 0;
    }
    let mut small = [0u8; 72];
    for row in 0..8 {
        let (y0, y1) = (row * height / 8, ((row + 1) * height / 8).max(row * height / 8 + 1));
        for col in 0..9 {
            let (x0, x1) = (col * width / 9, ((col + 1) * width / 9).max(col * width / 9 + 1));
            let (mut sum, mut count) = (0u64, 0u64);
            for y in y0..y1.min(height) {
                for x in x0..x1.min(width) {
                    sum += u64::from(pixels[y * width + x]);
                    count += 1;
                }
            }
            small[row * 9 + col] = (sum / count.max(1)) as u8;
        }
    }
    dhash_9x8(&small)
}

/// dHashes of `n` evenly spaced frames (fewer if the clip yields fewer).
pub async fn frame_hashes(
    cfg: &MediaConfig,
    job: &JobDir,
    input: &Path,
    info: &ProbeInfo,
    n: usize,
) -> Result<Vec<u64>> {
    let frames = gray_frames(cfg, job, input, info, n, 9, 8).await?;
    Ok(frames.iter().map(|f| dhash_9x8(&f.pixels)).collect())
}

/// Bits that differ.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Distance between two clips' hash sequences, 0 (same) ..= 64 (unrelated or empty): the mean
/// over positions of the minimum Hamming distance to the proportionally aligned hash
/// (+/- one position, which absorbs small offsets), averaged both ways so it is symmetric.
pub fn clip_distance(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 64.0;
    }
    (one_way(a, b) + one_way(b, a)) / 2.0
}

fn one_way(a: &[u64], b: &[u64]) -> f64 {
    let total: u32 = a
        .iter()
        .enumerate()
        .map(|(i, &h)| {
            let k = if a.len() == 1 {
                0
            } else {
                (i * (b.len() - 1) + (a.len() - 1) / 2) / (a.len() - 1)
            };
            let lo = k.saturating_sub(1);
            let hi = (k + 1).min(b.len() - 1);
            (lo..=hi).map(|j| hamming(h, b[j])).min().unwrap_or(64)
        })
        .sum();
    f64::from(total) / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_dhash_downscales_then_compares_neighbours() {
        // A left-to-right ramp: every pixel darker than its right neighbour, no bit set.
        let ramp: Vec<u8> = (0..64 * 32).map(|i| (i % 64 * 3) as u8).collect();
        assert_eq!(dhash_gray(&ramp, 64, 32), 0);
        // Mirrored: every bit set.
        let mirror: Vec<u8> = (0..64 * 32).map(|i| (255 - i % 64 * 3) as u8).collect();
        assert_eq!(dhash_gray(&mirror, 64, 32), u64::MAX);
        // Resizing the same picture barely changes it.
        let big: Vec<u8> = (0..256 * 144).map(|i| ((i % 256) ^ (i / 256 * 2)) as u8).collect();
        let small: Vec<u8> =
            (0..128 * 72).map(|i| big[(i / 128 * 2) * 256 + (i % 128) * 2]).collect();
        assert!(hamming(dhash_gray(&big, 256, 144), dhash_gray(&small, 128, 72)) <= 8);
        assert_eq!(dhash_gray(&[], 0, 0), 0);
    }

    #[test]
    fn dhash_of_gradients() {
        let falling: Vec<u8> = (0..8).flat_map(|_| (0..9).map(|x| 200 - x * 10)).collect();
        assert_eq!(dhash_9x8(&falling), u64::MAX);
        let rising: Vec<u8> = (0..8).flat_map(|_| (0..9).map(|x| x * 10)).collect();
        assert_eq!(dhash_9x8(&rising), 0);
    }

    #[test]
    fn distances() {
        assert_eq!(hamming(0, u64::MAX), 64);
        let a = [1u64, 2, 3, 0xff];
        assert_eq!(clip_distance(&a, &a), 0.0);
        assert_eq!(clip_distance(&a, &[]), 64.0);
        assert!(clip_distance(&[0, 0], &[u64::MAX, u64::MAX]) == 64.0);
        assert_eq!(clip_distance(&a, &[1, 2, 3]), clip_distance(&[1, 2, 3], &a));
    }
}
