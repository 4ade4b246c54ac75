//! Property test: random operation sequences against `FileLog` and an in-memory model
//! (which simulates segment rolls so retention is predictable); every answer must match.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use quicktok_log::{
    EventLog, FRAME_OVERHEAD_BYTES, FileLog, LogConfig, LogError, NewRecord, Record,
};

const TOPICS: [&str; 3] = ["a", "b", "c"];
const CONSUMERS: [&str; 2] = ["x", "y"];
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

#[derive(Debug, Clone)]
enum Op {
    /// Advances the producers' clock, then appends records with jittered timestamps.
    Append {
        topic: usize,
        advance: i64,
        records: Vec<(i64, usize)>,
    },
    Read {
        topic: usize,
        from: u64,
        max_records: usize,
        max_bytes: usize,
    },
    /// Queries `clock + delta`, or with `pick` exactly a stored timestamp (boundaries).
    OffsetForTime {
        topic: usize,
        delta: i64,
        pick: Option<prop::sample::Index>,
    },
    Commit {
        topic: usize,
        consumer: usize,
        offset: u64,
    },
    Committed {
        topic: usize,
        consumer: usize,
    },
    /// Retention at `clock + lag`, or with `pick` at a cutoff equal to a stored timestamp.
    Retention {
        lag: i64,
        pick: Option<prop::sample::Index>,
    },
    Reopen {
        verify_on_open: bool,
        index_interval_bytes: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let records = prop::collection::vec((-HOUR..HOUR, prop_oneof![Just(0usize), 0usize..40]), 0..6);
    prop_oneof![
        6 => (0..3usize, 0..6 * HOUR, records)
            .prop_map(|(topic, advance, records)| Op::Append { topic, advance, records }),
        3 => (0..3usize, 0..400u64, 0..12usize, 0..200usize).prop_map(
            |(topic, from, max_records, max_bytes)| Op::Read { topic, from, max_records, max_bytes }
        ),
        2 => (0..3usize, -2 * DAY..HOUR, prop::option::of(any::<prop::sample::Index>()))
            .prop_map(|(topic, delta, pick)| Op::OffsetForTime { topic, delta, pick }),
        1 => (0..3usize, 0..2usize, 0..400u64)
            .prop_map(|(topic, consumer, offset)| Op::Commit { topic, consumer, offset }),
        1 => (0..3usize, 0..2usize).prop_map(|(topic, consumer)| Op::Committed { topic, consumer }),
        1 => (0..3 * DAY, prop::option::of(any::<prop::sample::Index>()))
            .prop_map(|(lag, pick)| Op::Retention { lag, pick }),
        1 => (any::<bool>(), 1..300u32).prop_map(|(verify_on_open, index_interval_bytes)| {
            Op::Reopen { verify_on_open, index_interval_bytes }
        }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    segment_bytes: u64,
    index_interval_bytes: u32,
    ops: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (40..400u64, 1..300u32, prop::collection::vec(op(), 1..60)).prop_map(
        |(segment_bytes, index_interval_bytes, ops)| Case {
            segment_bytes,
            index_interval_bytes,
            ops,
        },
    )
}

#[derive(Debug, Clone, Copy)]
struct ModelSegment {
    bytes: u64,
    count: u64,
    max_ts: i64,
}

#[derive(Debug, Default)]
struct ModelTopic {
    start: u64,
    /// Retained records; `records[i]` has offset `start + i`.
    records: Vec<(i64, Vec<u8>)>,
    segments: Vec<ModelSegment>,
}

impl ModelTopic {
    fn end(&self) -> u64 {
        self.start + self.records.len() as u64
    }

    fn append(&mut self, ts: i64, payload: Vec<u8>, segment_bytes: u64) -> u64 {
        let len = (FRAME_OVERHEAD_BYTES + payload.len()) as u64;
        let roll = match self.segments.last() {
            None => true,
            Some(s) => s.bytes > 0 && s.bytes + len > segment_bytes,
        };
        if roll {
            self.segments.push(ModelSegment { bytes: 0, count: 0, max_ts: i64::MIN });
        }
        if let Some(s) = self.segments.last_mut() {
            s.bytes += len;
            s.count += 1;
            s.max_ts = s.max_ts.max(ts);
        }
        self.records.push((ts, payload));
        self.end() - 1
    }

    fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> Vec<Record> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let from = from.max(self.start);
        for (i, (ts, p)) in self.records.iter().enumerate().skip((from - self.start) as usize) {
            if out.len() >= max_records || (!out.is_empty() && bytes + p.len() > max_bytes) {
                break;
            }
            bytes += p.len();
            out.push(Record {
                offset: self.start + i as u64,
                timestamp_ms: *ts,
                payload: p.clone(),
            });
        }
        out
    }

    fn offset_for_time(&self, t: i64) -> u64 {
        self.records
            .iter()
            .position(|(ts, _)| *ts >= t)
            .map_or(self.end(), |i| self.start + i as u64)
    }

    fn retain(&mut self, cutoff: i64) {
        while self.segments.len() > 1
            && (self.segments[0].count == 0 || self.segments[0].max_ts < cutoff)
        {
            let s = self.segments.remove(0);
            self.records.drain(..s.count as usize);
            self.start += s.count;
        }
    }
}

async fn run_case(case: Case) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogConfig {
        retention_days: 1,
        index_interval_bytes: case.index_interval_bytes,
        ..crate::small(case.segment_bytes)
    };
    let mut log = FileLog::open(dir.path(), config.clone()).await.unwrap();
    let mut model: Vec<ModelTopic> = (0..TOPICS.len()).map(|_| ModelTopic::default()).collect();
    let mut committed: HashMap<(usize, usize), u64> = HashMap::new();
    let mut clock = 10 * DAY;
    let mut seq = 0u64;

    for op in case.ops {
        match op {
            Op::Append { topic, advance, records } => {
                clock += advance;
                let input: Vec<NewRecord> = records
                    .iter()
                    .map(|(jitter, len)| {
                        seq += 1;
                        let payload: Vec<u8> =
                            (0..*len).map(|j| (seq as usize * 31 + j) as u8).collect();
                        NewRecord::new(clock + jitter, payload)
                    })
                    .collect();
                let got = log.append(TOPICS[topic], input.clone()).await.unwrap();
                let want: Vec<u64> = input
                    .into_iter()
                    .map(|r| model[topic].append(r.timestamp_ms, r.payload, case.segment_bytes))
                    .collect();
                prop_assert_eq!(got, want);
            }
            Op::Read { topic, from, max_records, max_bytes } => {
                let got = log.read(TOPICS[topic], from, max_records, max_bytes).await.unwrap();
                prop_assert_eq!(got, model[topic].read(from, max_records, max_bytes));
            }
            Op::OffsetForTime { topic, delta, pick } => {
                let stored = &model[topic].records;
                let t = match pick {
                    Some(i) if !stored.is_empty() => stored[i.index(stored.len())].0,
                    _ => clock + delta,
                };
                let got = log.offset_for_time(TOPICS[topic], t).await.unwrap();
                prop_assert_eq!(got, model[topic].offset_for_time(t), "t = {}", t);
            }
            Op::Commit { topic, consumer, offset } => {
                let end = model[topic].end();
                let offset = offset % (end + 2);
                let got = log.commit(TOPICS[topic], CONSUMERS[consumer], offset).await;
                if offset <= end {
                    prop_assert!(got.is_ok(), "{:?}", got);
                    committed.insert((topic, consumer), offset);
                } else {
                    prop_assert!(
                        matches!(got, Err(LogError::OffsetOutOfRange { .. })),
                        "{:?}",
                        got
                    );
                }
            }
            Op::Committed { topic, consumer } => {
                let got = log.committed(TOPICS[topic], CONSUMERS[consumer]).await.unwrap();
                prop_assert_eq!(got, committed.get(&(topic, consumer)).copied());
            }
            Op::Retention { lag, pick } => {
                let stored: Vec<i64> =
                    model.iter().flat_map(|m| m.records.iter().map(|r| r.0)).collect();
                let now = match pick {
                    Some(i) if !stored.is_empty() => stored[i.index(stored.len())] + DAY,
                    _ => clock + lag,
                };
                let report = log.apply_retention(now).await.unwrap();
                let before: u64 = model.iter().map(|m| m.start).sum();
                for m in &mut model {
                    m.retain(now - DAY);
                }
                let after: u64 = model.iter().map(|m| m.start).sum();
                prop_assert_eq!(report.records_deleted, after - before);
            }
            Op::Reopen { verify_on_open, index_interval_bytes } => {
                log.close().await.unwrap();
                config.verify_on_open = verify_on_open;
                config.index_interval_bytes = index_interval_bytes;
                log = FileLog::open(dir.path(), config.clone()).await.unwrap();
            }
        }
        for (i, m) in model.iter().enumerate() {
            prop_assert_eq!(log.start_offset(TOPICS[i]).await.unwrap(), m.start);
            prop_assert_eq!(log.end_offset(TOPICS[i]).await.unwrap(), m.end());
        }
    }
    for (i, m) in model.iter().enumerate() {
        let all = log.read(TOPICS[i], 0, usize::MAX, usize::MAX).await.unwrap();
        prop_assert_eq!(all, m.read(0, usize::MAX, usize::MAX));
    }
    log.close().await.unwrap();
    Ok(())
}

#[test]
fn file_log_matches_model() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128);
    let mut runner =
        TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let result = runner.run(&case(), |c| rt.block_on(run_case(c)));
    if let Err(e) = result {
        panic!("{e}");
    }
}
