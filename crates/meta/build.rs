//! Build script: rebuilds the crate when a migration changes, since `sqlx::migrate!` embeds
//! the migration files at compile time but cannot tell cargo to watch them.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
