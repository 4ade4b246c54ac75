//! The shared repository test suite on PostgreSQL, in a schema of its own per test. Runs
//! only when `QUICKTOK_TEST_POSTGRES_URL` is set; otherwise each test prints
//! `skipped: no postgres` and passes.

use quicktok_meta::testsuite::{TestDb, fresh_postgres_from_env};

async fn fresh() -> Option<TestDb> {
    fresh_postgres_from_env().await
}

quicktok_meta::meta_testsuite!(fresh);
