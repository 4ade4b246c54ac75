//! 64-bit time-ordered ids (Snowflake layout) rendered as decimal strings in JSON.
//!
//! Layout, most significant first: 1 sign bit (always 0), 41 bits of milliseconds since
//! [`EPOCH_MS`] (about 69 years), 10 bits of node id, 12 bits of sequence. Ids made by one
//! generator are strictly increasing; ids from different nodes sort by time to within the
//! clocks' skew. JSON carries them as strings because JavaScript numbers lose precision above
//! 2^53.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::Clock;
use crate::error::CoreError;

/// 2024-01-01T00:00:00Z in Unix milliseconds: the zero of the id's time field.
pub const EPOCH_MS: i64 = 1_704_067_200_000;
const NODE_BITS: u32 = 10;
const SEQUENCE_BITS: u32 = 12;
const TIME_BITS: u32 = 41;
/// The largest node id a generator accepts.
pub const MAX_NODE: u16 = (1 << NODE_BITS) - 1;
const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;
const MAX_TIME: u64 = (1 << TIME_BITS) - 1;

/// A 64-bit, time-ordered identifier.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub u64);

impl Id {
    /// Builds an id from its parts; `None` when a part is out of range.
    pub fn from_parts(unix_ms: i64, node: u16, sequence: u16) -> Option<Id> {
        let since = u64::try_from(unix_ms.checked_sub(EPOCH_MS)?).ok()?;
        if since > MAX_TIME || node > MAX_NODE || u64::from(sequence) > MAX_SEQUENCE {
            return None;
        }
        Some(Id((since << (NODE_BITS + SEQUENCE_BITS))
            | (u64::from(node) << SEQUENCE_BITS)
            | u64::from(sequence)))
    }

    /// The smallest id that could have been made at `unix_ms`: a lower bound for range scans
    /// by time.
    pub fn min_at(unix_ms: i64) -> Id {
        let since = unix_ms.saturating_sub(EPOCH_MS).clamp(0, MAX_TIME as i64) as u64;
        Id(since << (NODE_BITS + SEQUENCE_BITS))
    }

    /// Unix milliseconds at which the id was made.
    pub fn unix_ms(self) -> i64 {
        (self.0 >> (NODE_BITS + SEQUENCE_BITS)) as i64 + EPOCH_MS
    }

    /// The node that made the id.
    pub fn node(self) -> u16 {
        ((self.0 >> SEQUENCE_BITS) & u64::from(MAX_NODE)) as u16
    }

    /// The sequence number within the millisecond.
    pub fn sequence(self) -> u16 {
        (self.0 & MAX_SEQUENCE) as u16
    }

    /// The id as a signed integer for databases without unsigned 64-bit columns. Ids made
    /// by [`IdGenerator`] never set the sign bit, so the value is non-negative.
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    /// The inverse of [`Id::as_i64`].
    pub fn from_i64(value: i64) -> Id {
        Id(value as u64)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0)
    }
}

impl FromStr for Id {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only plain decimal digits: no sign, no whitespace, no leading '+'.
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CoreError::InvalidId(s.chars().take(32).collect()));
        }
        s.parse::<u64>().map(Id).map_err(|_| CoreError::InvalidId(s.chars().take(32).collect()))
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-bit id as a decimal string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Id, E> {
                v.parse().map_err(E::custom)
            }
            // Accept plain numbers too (internal formats, old clients); never emitted.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl utoipa::PartialSchema for Id {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9]{1,20}$"))
            .description(Some("64-bit time-ordered id as a decimal string"))
            .examples([serde_json::json!("7261839467622400001")])
            .into()
    }
}

impl utoipa::ToSchema for Id {}

/// Makes strictly increasing ids for one node.
///
/// When the clock steps backwards the generator keeps using its last timestamp (borrowing
/// sequence numbers) rather than repeating ids; when a millisecond's 4096 sequence numbers
/// are used up it moves to the next millisecond early. Either way ids stay unique and
/// increasing, and drift back to the real clock once it catches up.
#[derive(Debug)]
pub struct IdGenerator {
    node: u16,
    state: Mutex<(u64, u64)>, // (last time since epoch, last sequence)
}

impl IdGenerator {
    /// A generator for `node` (0..=[`MAX_NODE`]).
    pub fn new(node: u16) -> Result<Self, CoreError> {
        if node > MAX_NODE {
            return Err(CoreError::InvalidNode(node));
        }
        Ok(IdGenerator { node, state: Mutex::new((0, 0)) })
    }

    /// The next id, using `clock` for the time field.
    pub fn next(&self, clock: &dyn Clock) -> Id {
        let now = clock.now_ms().saturating_sub(EPOCH_MS).clamp(0, MAX_TIME as i64) as u64;
        // A poisoned lock only means another thread panicked mid-update; the pair is still
        // consistent because it is written in one assignment.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (last_time, last_seq) = *state;
        let (time, seq) = if now > last_time {
            (now, 0)
        } else if last_seq < MAX_SEQUENCE {
            (last_time, last_seq + 1)
        } else {
            (last_time + 1, 0)
        };
        *state = (time, seq);
        Id((time << (NODE_BITS + SEQUENCE_BITS)) | (u64::from(self.node) << SEQUENCE_BITS) | seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use proptest::prelude::*;

    #[test]
    fn parts_round_trip() {
        let id = Id::from_parts(EPOCH_MS + 123_456, 7, 42).unwrap();
        assert_eq!(id.unix_ms(), EPOCH_MS + 123_456);
        assert_eq!(id.node(), 7);
        assert_eq!(id.sequence(), 42);
        assert!(Id::from_parts(EPOCH_MS - 1, 0, 0).is_none());
        assert!(Id::from_parts(EPOCH_MS, MAX_NODE + 1, 0).is_none());
    }

    #[test]
    fn json_is_a_string() {
        let id = Id(18_446_744_073_709_551_615);
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"18446744073709551615\"");
        let back: Id = serde_json::from_str("\"18446744073709551615\"").unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<Id>("\"-1\"").is_err());
        assert!(serde_json::from_str::<Id>("\" 1\"").is_err());
        assert!(serde_json::from_str::<Id>("\"18446744073709551616\"").is_err());
        assert!(serde_json::from_str::<Id>("\"\"").is_err());
    }

    #[test]
    fn increasing_when_clock_stalls_or_steps_back() {
        let clock = ManualClock::new(EPOCH_MS + 10_000);
        let generator = IdGenerator::new(3).unwrap();
        let mut last = Id(0);
        for i in 0..10_000 {
            if i == 5000 {
                clock.set(EPOCH_MS + 5_000); // the clock jumps back five seconds
            }
            let id = generator.next(&clock);
            assert!(id > last, "{id:?} after {last:?}");
            assert_eq!(id.node(), 3);
            last = id;
        }
    }

    #[test]
    fn rejects_out_of_range_node() {
        assert!(IdGenerator::new(MAX_NODE + 1).is_err());
    }

    proptest! {
        #[test]
        fn ids_sort_by_time(a in 0i64..(1 << 40), b in 0i64..(1 << 40), n1 in 0u16..1024, n2 in 0u16..1024) {
            let x = Id::from_parts(EPOCH_MS + a, n1, 0).unwrap();
            let y = Id::from_parts(EPOCH_MS + b, n2, 0).unwrap();
            if a < b { prop_assert!(x < y); }
            prop_assert!(Id::min_at(EPOCH_MS + a) <= x);
        }
    }
}
