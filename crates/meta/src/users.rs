//! The `users` table: accounts, looked up by id or by (normalised) username.

use quicktok_core::Id;

use crate::error::{MetaError, Result, db, unique_violation};
use crate::read_conns::{all, params_of, with_read};
use crate::store::{MetaStore, with_pool};

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Id,
    /// Normalised (lowercase) form, as stored.
    pub username: String,
    /// PHC string (argon2id); never leaves the server.
    pub password_hash: String,
    pub display_name: Option<String>,
    pub created_at_ms: i64,
}

/// What [`Users::create`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub id: Id,
    /// Expected to be normalised already; lowercased again here so the unique index also
    /// catches names that differ only in case.
    pub username: String,
    pub password_hash: String,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    password_hash: String,
    display_name: Option<String>,
    created_at_ms: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: Id::from_i64(r.id),
            username: r.username,
            password_hash: r.password_hash,
            display_name: r.display_name,
            created_at_ms: r.created_at_ms,
        }
    }
}

const USER_BY_ID: &str =
    "SELECT id, username, password_hash, display_name, created_at_ms FROM users WHERE id = $1";
const USER_BY_USERNAME: &str = "SELECT id, username, password_hash, display_name, created_at_ms \
     FROM users WHERE username = $1";

/// Repository for accounts; get one from [`MetaStore::users`].
#[derive(Debug, Clone, Copy)]
pub struct Users<'a> {
    store: &'a MetaStore,
}

impl<'a> Users<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Users { store }
    }

    /// Creates an account. [`MetaError::Conflict`] with `what = "username"` when the name
    /// is taken (`"id"` when the id is).
    pub async fn create(&self, new: NewUser) -> Result<User> {
        let username = normalise(&new.username);
        let result = with_pool!(self.store, |pool| {
            sqlx::query(
                "INSERT INTO users (id, username, password_hash, display_name, created_at_ms) \
                 VALUES ($1, $2, $3, NULL, $4)",
            )
            .bind(new.id.as_i64())
            .bind(&username)
            .bind(&new.password_hash)
            .bind(new.created_at_ms)
            .execute(pool)
            .await
            .map(drop)
        });
        if let Err(e) = result {
            return Err(match unique_violation(&e) {
                // SQLite names the column ("users.username"), PostgreSQL the constraint
                // ("users_username_key"); the primary key is the only other unique.
                Some(detail) if detail.contains("username") => {
                    MetaError::Conflict { what: "username" }
                }
                Some(_) => MetaError::Conflict { what: "id" },
                None => db(e),
            });
        }
        Ok(User {
            id: new.id,
            username,
            password_hash: new.password_hash,
            display_name: None,
            created_at_ms: new.created_at_ms,
        })
    }

    /// The account with this id, if any.
    pub async fn by_id(&self, id: Id) -> Result<Option<User>> {
        let row = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, UserRow>(USER_BY_ID).bind(id.as_i64()).fetch_optional(pool).await
        });
        Ok(row.map_err(db)?.map(User::from))
    }

    /// The accounts with these ids (a page's authors: one query per 500); unknown ids are
    /// absent.
    pub async fn by_ids(&self, ids: &[Id]) -> Result<std::collections::HashMap<Id, User>> {
        let mut keys: Vec<i64> = ids.iter().map(|i| i.as_i64()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut out = std::collections::HashMap::new();
        for chunk in keys.chunks(crate::store::IN_CHUNK) {
            let placeholders = crate::store::in_placeholders(chunk.len());
            let sql = format!(
                "SELECT id, username, password_hash, display_name, created_at_ms \
                 FROM users WHERE id IN ({placeholders})"
            );
            let rows = with_read!(
                self.store,
                |c| all(c, &sql, &params_of(chunk), |r| Ok(UserRow {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    password_hash: r.get(2)?,
                    display_name: r.get(3)?,
                    created_at_ms: r.get(4)?,
                })),
                |pool| {
                    let mut query = sqlx::query_as::<_, UserRow>(&sql);
                    for id in chunk {
                        query = query.bind(*id);
                    }
                    query.fetch_all(pool).await
                }
            )?;
            for row in rows {
                let user = User::from(row);
                out.insert(user.id, user);
            }
        }
        Ok(out)
    }

    /// The account with this username (compared in normalised form), if any.
    pub async fn by_username(&self, username: &str) -> Result<Option<User>> {
        let username = normalise(username);
        let row = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, UserRow>(USER_BY_USERNAME)
                .bind(&username)
                .fetch_optional(pool)
                .await
        });
        Ok(row.map_err(db)?.map(User::from))
    }

    /// Sets or clears the display name. [`MetaError::NotFound`] if there is no such user.
    pub async fn set_display_name(&self, id: Id, display_name: Option<&str>) -> Result<()> {
        let done = with_pool!(self.store, |pool| {
            sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
                .bind(display_name)
                .bind(id.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        match done.map_err(db)? {
            0 => Err(MetaError::NotFound),
            _ => Ok(()),
        }
    }
}

fn normalise(username: &str) -> String {
    username.to_lowercase()
}
