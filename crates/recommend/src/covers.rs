//! Cover choice (F7.4): Thompson sampling over a video's candidate covers, per audience
//! segment. Each cover's play-through rate (plays per impression) has a Beta posterior; a
//! request draws one sample per cover and shows the best, so covers that earn plays are
//! shown more while the others still get explored in proportion to their uncertainty.

use rand::Rng;
use rand_distr::{Beta, Distribution};

use crate::codec::Reader;
use crate::error::RecommendError;

/// What one cover earned in one segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoverStats {
    pub impressions: u64,
    /// Impressions that led to a play (never more than impressions).
    pub plays: u64,
}

impl CoverStats {
    /// The posterior mean play rate (uniform prior).
    pub fn mean(&self) -> f64 {
        let plays = self.plays.min(self.impressions) as f64;
        (plays + 1.0) / (self.impressions as f64 + 2.0)
    }
}

/// Most covers a stored entry may list (the pipeline keeps a handful per video).
const MAX_STORED_COVERS: u64 = 256;
const FORMAT_V1: u8 = 1;

/// One (video, segment)'s statistics as compact, versioned bytes (to keep them across
/// restarts): the count, then impressions and plays per cover as varints.
pub fn to_bytes(covers: &[CoverStats]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + covers.len() * 4);
    out.push(FORMAT_V1);
    crate::codec::put_varint(&mut out, covers.len() as u64);
    for c in covers {
        crate::codec::put_varint(&mut out, c.impressions);
        crate::codec::put_varint(&mut out, c.plays);
    }
    out
}

/// Statistics from [`to_bytes`]; fails on damaged bytes or another format.
pub fn from_bytes(bytes: &[u8]) -> Result<Vec<CoverStats>, RecommendError> {
    let mut r = Reader::new(bytes);
    if r.u8()? != FORMAT_V1 {
        return Err(RecommendError::BadState("unknown cover statistics format"));
    }
    let n = r.varint()?;
    if n > MAX_STORED_COVERS {
        return Err(RecommendError::BadState("too many covers"));
    }
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let impressions = r.varint()?;
        // Plays never exceed impressions (the bandit's invariant).
        let plays = r.varint()?.min(impressions);
        out.push(CoverStats { impressions, plays });
    }
    r.finish()?;
    Ok(out)
}

/// The cover to show: the index of the highest Thompson sample (`None` without covers).
pub fn choose(covers: &[CoverStats], rng: &mut impl Rng) -> Option<usize> {
    let mut best: Option<(f64, usize)> = None;
    for (i, s) in covers.iter().enumerate() {
        let plays = s.plays.min(s.impressions) as f64;
        let misses = (s.impressions as f64) - plays;
        // Both shape parameters are >= 1, which Beta always accepts.
        let sample = Beta::new(plays + 1.0, misses + 1.0).map_or(0.5, |b| b.sample(rng));
        if best.is_none_or(|(b, _)| sample > b) {
            best = Some((sample, i));
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stats_round_trip_as_bytes() {
        let stats = vec![
            CoverStats { impressions: 0, plays: 0 },
            CoverStats { impressions: 1_000_000, plays: 120_000 },
            CoverStats { impressions: u64::MAX, plays: 3 },
        ];
        let bytes = to_bytes(&stats);
        assert_eq!(from_bytes(&bytes), Ok(stats));
        assert_eq!(from_bytes(&to_bytes(&[])), Ok(Vec::new()));
        assert!(from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(from_bytes(&[2, 0]).is_err());
        assert!(from_bytes(&[]).is_err());
    }

    #[test]
    fn no_covers_no_choice() {
        assert_eq!(choose(&[], &mut rand::rngs::StdRng::seed_from_u64(1)), None);
    }

    /// Simulated audience: cover 2 is clicked 12% of the time, the others 5%. The bandit
    /// ends up showing cover 2 most, and keeps exploring the others a little.
    #[test]
    fn converges_on_the_cover_that_earns_plays() {
        let truth = [0.05, 0.05, 0.12, 0.05];
        let mut stats = [CoverStats::default(); 4];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut shown = [0u32; 4];
        for step in 0..20_000 {
            let Some(c) = choose(&stats, &mut rng) else { panic!("no choice") };
            stats[c].impressions += 1;
            if rng.r#gen::<f64>() < truth[c] {
                stats[c].plays += 1;
            }
            if step >= 10_000 {
                shown[c] += 1;
            }
        }
        assert!(shown[2] > 8_000, "{shown:?}");
        assert!(stats.iter().all(|s| s.impressions > 20), "{stats:?}");
        assert!((stats[2].mean() - 0.12).abs() < 0.02, "{:?}", stats[2]);
    }
}
