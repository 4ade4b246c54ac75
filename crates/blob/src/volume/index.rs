//! The in-memory index: blob id -> (volume, offset), packed into one `u64` per blob. Its
//! memory cost is computed by [`Index::memory_bytes`] and documented in [`crate::volume`].

use std::collections::HashMap;

use super::format::ALIGN;
use crate::error::{BlobError, Result};

/// Packs a location: volume id in the high 32 bits, offset in 8-byte units in the low 32.
fn pack(volume: u32, offset: u64) -> Result<u64> {
    let units = u32::try_from(offset / ALIGN)
        .ok()
        .filter(|_| offset.is_multiple_of(ALIGN))
        .ok_or_else(|| {
            // Unreachable with a valid configuration (volumes stay below 32 GiB).
            BlobError::Integrity {
                what: format!("volume {volume}"),
                detail: format!("needle offset {offset} cannot be indexed"),
            }
        })?;
    Ok((u64::from(volume) << 32) | u64::from(units))
}

fn unpack(v: u64) -> (u32, u64) {
    ((v >> 32) as u32, (v & 0xffff_ffff) * ALIGN)
}

/// id -> packed location of every live blob.
#[derive(Debug, Default)]
pub(crate) struct Index {
    map: HashMap<u64, u64>,
}

impl Index {
    pub(crate) fn with_capacity(n: usize) -> Index {
        Index { map: HashMap::with_capacity(n) }
    }

    pub(crate) fn get(&self, id: u64) -> Option<(u32, u64)> {
        self.map.get(&id).copied().map(unpack)
    }

    pub(crate) fn insert(&mut self, id: u64, volume: u32, offset: u64) -> Result<()> {
        self.map.insert(id, pack(volume, offset)?);
        Ok(())
    }

    /// Removes `id` if it is still at `(volume, offset)`.
    pub(crate) fn remove_if(&mut self, id: u64, volume: u32, offset: u64) -> bool {
        if self.get(id) == Some((volume, offset)) {
            self.map.remove(&id);
            true
        } else {
            false
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// (offset, id) of every live blob in `volume`, by offset. A full pass over the index.
    pub(crate) fn in_volume(&self, volume: u32) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .map
            .iter()
            .map(|(id, p)| (unpack(*p), *id))
            .filter(|((vol, _), _)| *vol == volume)
            .map(|((_, off), id)| (off, id))
            .collect();
        v.sort_unstable();
        v
    }

    /// Heap bytes of the table, computed from its capacity with the layout of std's
    /// `HashMap` (hashbrown, SwissTable): `buckets` slots of 16 bytes (key and value), one
    /// control byte per bucket plus 16 trailing control bytes; `buckets` is a power of two
    /// and the table holds at most 7/8 of it.
    pub(crate) fn memory_bytes(&self) -> usize {
        table_bytes(self.map.capacity())
    }
}

/// Heap bytes of a `HashMap<u64, u64>` with this `capacity()`.
pub(crate) fn table_bytes(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 { (capacity + 1).next_power_of_two() } else { capacity / 7 * 8 };
    buckets * (16 + 1) + 16
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_locations() {
        let mut ix = Index::default();
        ix.insert(1, 7, 64).unwrap();
        ix.insert(2, u32::MAX, (u64::from(u32::MAX)) * 8).unwrap();
        assert_eq!(ix.get(1), Some((7, 64)));
        assert_eq!(ix.get(2), Some((u32::MAX, u64::from(u32::MAX) * 8)));
        assert!(ix.insert(3, 1, 32 << 30).is_err(), "offsets stop at 32 GiB");
        assert!(ix.insert(3, 1, 65).is_err(), "offsets are 8-aligned");
        assert!(!ix.remove_if(1, 7, 72));
        assert!(ix.remove_if(1, 7, 64));
        assert_eq!(ix.get(1), None);
        ix.insert(4, 2, 800).unwrap();
        ix.insert(5, 2, 80).unwrap();
        assert_eq!(ix.in_volume(2), vec![(80, 5), (800, 4)]);
    }

    /// The figure quoted in the module docs: between 19.4 and 38.9 bytes per blob depending
    /// on where the table is in its doubling cycle.
    #[test]
    fn memory_cost_per_blob() {
        let mut ix = Index::default();
        let mut worst: f64 = 0.0;
        let mut best = f64::MAX;
        for id in 0..200_000u64 {
            ix.insert(id, 1, id * 8).unwrap();
            if id > 1000 {
                let per = ix.memory_bytes() as f64 / ix.len() as f64;
                worst = worst.max(per);
                best = best.min(per);
            }
        }
        assert!(best > 19.0 && best < 20.0, "best {best}");
        assert!(worst > 38.0 && worst < 39.5, "worst {worst}");
        // The capacity -> bucket mapping matches std's growth (power-of-two buckets).
        for n in [1usize, 3, 7, 8, 100, 1000, 5000, 100_000] {
            let cap = HashMap::<u64, u64>::with_capacity(n).capacity();
            let buckets = (table_bytes(cap) - 16) / 17;
            assert!(buckets.is_power_of_two() && cap >= n, "capacity {cap} -> {buckets} buckets");
            assert!(buckets * 7 / 8 >= cap || buckets < 8, "capacity {cap} -> {buckets} buckets");
        }
    }
}
