//! The shared repository test suite on SQLite (a new temporary database file per test).

use quicktok_meta::testsuite::{TestDb, fresh_sqlite};

async fn fresh() -> Option<TestDb> {
    Some(fresh_sqlite().await)
}

quicktok_meta::meta_testsuite!(fresh);
