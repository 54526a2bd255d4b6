//! `moviola-store`: Moviola's persistent state on sea-orm — SQLite (the embedded default) or
//! PostgreSQL, with the same migrations and the same queries.
//!
//! [`Store`] is the one handle; its query methods live in `queries/`, grouped by table. Every
//! method that must be atomic runs in one transaction. Times are milliseconds since the Unix
//! epoch, passed in by the caller so tests control the clock.
//!
//! # Crate features
//! None: both database drivers are always built.

pub mod migrations;
mod queries;
pub mod tables;

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;

pub use queries::assets::{Asset, NewAsset};
pub use queries::audit::AuditEntry;
pub use queries::credits::Balance;
pub use queries::documents::StoredDocument;
pub use queries::jobs::{Job, NewJob, Outcome};
pub use queries::projects::ProjectWithRole;
pub use tables::credit_entry::Model as CreditEntry;
pub use tables::{AssetId, JobId, JobState, ProjectId, Role, TokenId, UserId};
pub use tables::{membership::Model as Membership, project::Model as Project, user::Model as User};

/// Errors from the store, with what the caller needs to decide what to tell a user.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} already exists")]
    Conflict { what: &'static str },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("cannot open database {url}: {source}")]
    Connect { url: String, source: DbErr },
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("not enough credits: the job needs {needed}, {available} are available")]
    InsufficientCredits { needed: i64, available: i64 },
    #[error("{message}")]
    Invalid { message: String },
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
fn conflict_or(err: DbErr, what: &'static str) -> StoreError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict { what },
        _ => StoreError::Db(err),
    }
}

/// A connection pool to the database.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Starts a transaction that will write. On SQLite it takes the write lock at BEGIN
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails at once
    /// with "database is locked" when another writer got in between, instead of waiting.
    pub(crate) async fn begin_write(&self) -> Result<sea_orm::DatabaseTransaction> {
        use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
        Ok(self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?)
    }

    /// Opens (creating if needed) the database at `url` and runs pending migrations.
    ///
    /// `sqlite://path/file.db` creates the folder and the file; `postgres://…` must name an
    /// existing database.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store> {
        let mut url = url.to_owned();
        let is_sqlite = url.starts_with("sqlite:");
        if is_sqlite {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or_default().to_owned();
            if path != ":memory:" && !path.is_empty() {
                if let Some(parent) = std::path::Path::new(&path).parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                        path: parent.display().to_string(),
                        source,
                    })?;
                }
                if !url.contains('?') {
                    url.push_str("?mode=rwc");
                }
            }
        }
        let mut options = ConnectOptions::new(url.clone());
        options
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        if is_sqlite {
            // WAL lets readers run beside the one writer; NORMAL sync survives a process crash
            // (kill -9) without losing a committed transaction, which is what an acknowledged
            // edit needs. A busy timeout makes writers queue instead of failing.
            options.map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
            });
        }
        let db = Database::connect(options)
            .await
            .map_err(|source| StoreError::Connect { url: redact(&url), source })?;
        migrations::Migrator::up(&db, None).await?;
        Ok(Store { db })
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.db.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    pub async fn close(self) -> Result<()> {
        self.db.close().await?;
        Ok(())
    }
}

/// Hides a password in a database URL before it goes into an error message.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
