//! One way to run the store's SQL on either backend.
//!
//! Every query is written once, with `$N` placeholders, and run through [`query`]:
//!
//! - **SQLite** runs on `rusqlite` connections: a statement takes microseconds, far less
//!   than handing it to a thread pool and waking the task again (which cost more than the
//!   statements themselves under load), so reads and transactions run *in the calling
//!   task*. Writes go through one writer connection behind an async lock, so writers of
//!   this process queue instead of meeting `SQLITE_BUSY`. A write outside a transaction
//!   (the common case: a counter, a state change, an audit event) is handed to the store's
//!   *group commit*: one task takes every write queued, runs them in one transaction (each
//!   in a savepoint when it has several statements, so one failure undoes only its own),
//!   commits once, then answers each caller. A caller still returns only after its write
//!   is committed, but under load a hundred writes cost one commit, not a hundred (a
//!   commit, with its WAL frames, locks and checkpoints, costs far more than a statement).
//!   A read runs on the writer connection when no write holds it (its page cache stays
//!   valid across its own writes, where every other connection must drop its cache after
//!   each commit and read the pages again); otherwise on one of a few read-only
//!   connections, which WAL lets run beside the writer. Prepared statements are cached per
//!   connection. The group commit runs on the async workers, not on a thread of its own:
//!   measured, the hand-over to a thread cost a third of the throughput one at a time and
//!   gained nothing at 32 at once.
//! - **PostgreSQL** runs on sqlx's asynchronous pool.
//!
//! Values are integers, text, blobs and NULL (booleans are 0/1 integers, times epoch
//! seconds), which both backends store the same way.

use super::StoreError;
use rusqlite::types::ValueRef;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Column, Row as _, TypeInfo, ValueRef as _};
use std::borrow::Cow;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How many read-only SQLite connections a store keeps. Reads never wait on I/O for long
/// and never hold a connection across an `.await`, so a few serve every worker thread.
const SQLITE_READERS: usize = 4;
/// Prepared statements kept per SQLite connection (the store has fewer distinct queries).
const STATEMENT_CACHE: usize = 128;

/// The kind of a NULL, which PostgreSQL needs to type a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Text,
    Blob,
}

/// One parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null(Kind),
    Integer(i64),
    Text(Cow<'a, str>),
    Blob(Cow<'a, [u8]>),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::Null(Kind::Integer), Value::Integer)
    }
}
impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Cow::Borrowed(v))
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(Cow::Borrowed(v.as_str()))
    }
}
impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Cow::Owned(v))
    }
}
impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Value::Null(Kind::Text), Value::from)
    }
}
impl From<Option<String>> for Value<'_> {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::Null(Kind::Text), Value::from)
    }
}
impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().into()
    }
}
impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Blob(Cow::Borrowed(v))
    }
}

impl Value<'_> {
    fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null(kind) => Value::Null(kind),
            Value::Integer(i) => Value::Integer(i),
            Value::Text(t) => Value::Text(Cow::Owned(t.into_owned())),
            Value::Blob(b) => Value::Blob(Cow::Owned(b.into_owned())),
        }
    }
}

/// A value read from a column, converted to what the caller asks for.
pub trait FromValue: Sized {
    fn from_value(value: &Value<'static>) -> Option<Self>;
}
impl FromValue for i64 {
    fn from_value(value: &Value<'static>) -> Option<Self> {
        match value {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromValue for String {
    fn from_value(value: &Value<'static>) -> Option<Self> {
        match value {
            Value::Text(t) => Some(t.clone().into_owned()),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(value: &Value<'static>) -> Option<Self> {
        match value {
            Value::Blob(b) => Some(b.clone().into_owned()),
            _ => None,
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value<'static>) -> Option<Self> {
        match value {
            Value::Null(_) => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A row read from either backend.
#[derive(Debug, Clone)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value<'static>>,
}

impl Row {
    /// The column `name` as a `T`; a missing column or another type means the stored data
    /// is not what this version of Twofold expects.
    pub fn try_get<T: FromValue>(&self, name: &str) -> Result<T, StoreError> {
        let index = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {name}")))?;
        T::from_value(&self.values[index]).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "column {name} holds {:?}, not a {}",
                self.values[index],
                std::any::type_name::<T>()
            ))
        })
    }
}

impl Row {
    /// The columns named `prefix…`, under their names without it: the part of a joined row
    /// that one table's reader understands.
    pub fn prefixed(&self, prefix: &str) -> Row {
        let (columns, values): (Vec<String>, Vec<Value<'static>>) = self
            .columns
            .iter()
            .zip(&self.values)
            .filter_map(|(c, v)| c.strip_prefix(prefix).map(|c| (c.to_owned(), v.clone())))
            .unzip();
        Row {
            columns: columns.into(),
            values,
        }
    }
}

/// The outcome of a statement that returns no rows.
#[derive(Debug, Clone, Copy)]
pub struct Done(u64);

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.0
    }
}

/// A statement and its parameters, `$1` being the first [`Query::bind`].
#[must_use]
pub struct Query<'a> {
    sql: Cow<'a, str>,
    args: Vec<Value<'a>>,
}

pub fn query<'a>(sql: impl Into<Cow<'a, str>>) -> Query<'a> {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

/// Where a statement runs: on the store (any connection) or inside a transaction.
pub enum On<'c> {
    Db(&'c Db),
    Tx(&'c mut Tx),
}

impl<'c> From<&'c Db> for On<'c> {
    fn from(db: &'c Db) -> Self {
        On::Db(db)
    }
}
impl<'c> From<&'c mut Tx> for On<'c> {
    fn from(tx: &'c mut Tx) -> Self {
        On::Tx(tx)
    }
}

impl<'a> Query<'a> {
    pub fn bind(mut self, value: impl Into<Value<'a>>) -> Self {
        self.args.push(value.into());
        self
    }

    pub async fn execute<'c>(self, on: impl Into<On<'c>>) -> Result<Done, StoreError> {
        match on.into() {
            On::Db(Db::Sqlite(db)) => {
                let changed = db.write(vec![self.into_owned()]).await?;
                Ok(Done(changed.first().copied().unwrap_or(0)))
            }
            On::Tx(Tx::Sqlite(tx)) => sqlite_execute(tx.conn()?, &self),
            On::Db(Db::Postgres(pool)) => {
                let done = self.postgres().execute(pool).await?;
                Ok(Done(done.rows_affected()))
            }
            On::Tx(Tx::Postgres(tx)) => {
                let done = self.postgres().execute(&mut **tx).await?;
                Ok(Done(done.rows_affected()))
            }
        }
    }

    pub async fn fetch_all<'c>(self, on: impl Into<On<'c>>) -> Result<Vec<Row>, StoreError> {
        match on.into() {
            On::Db(Db::Sqlite(db)) => {
                if is_read_only(&self.sql) {
                    db.read(|conn| sqlite_fetch(conn, &self))
                } else {
                    let conn = db.writer.lock().await;
                    sqlite_fetch(&conn, &self)
                }
            }
            On::Tx(Tx::Sqlite(tx)) => sqlite_fetch(tx.conn()?, &self),
            On::Db(Db::Postgres(pool)) => {
                let rows = self.postgres().fetch_all(pool).await?;
                rows.iter().map(pg_row).collect()
            }
            On::Tx(Tx::Postgres(tx)) => {
                let rows = self.postgres().fetch_all(&mut **tx).await?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    pub async fn fetch_optional<'c>(
        self,
        on: impl Into<On<'c>>,
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.fetch_all(on).await?.into_iter().next())
    }

    pub async fn fetch_one<'c>(self, on: impl Into<On<'c>>) -> Result<Row, StoreError> {
        self.fetch_optional(on).await?.ok_or(StoreError::NotFound)
    }

    fn into_owned(self) -> Query<'static> {
        Query {
            sql: Cow::Owned(self.sql.into_owned()),
            args: self.args.into_iter().map(Value::into_owned).collect(),
        }
    }

    fn postgres(&self) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.sql.as_ref()));
        for arg in &self.args {
            q = match arg {
                Value::Null(Kind::Integer) => q.bind(None::<i64>),
                Value::Null(Kind::Text) => q.bind(None::<&str>),
                Value::Null(Kind::Blob) => q.bind(None::<&[u8]>),
                Value::Integer(i) => q.bind(*i),
                Value::Text(t) => q.bind(t.as_ref()),
                Value::Blob(b) => q.bind(b.as_ref()),
            };
        }
        q
    }
}

fn is_read_only(sql: &str) -> bool {
    let head = sql.trim_start();
    head.get(..6)
        .is_some_and(|h| h.eq_ignore_ascii_case("select"))
}

// ---------------------------------------------------------------------------------------
// The backends

/// The store's connections.
#[derive(Clone)]
pub enum Db {
    Sqlite(Arc<SqliteDb>),
    Postgres(PgPool),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Db::Sqlite(_) => f.write_str("Db::Sqlite"),
            Db::Postgres(_) => f.write_str("Db::Postgres"),
        }
    }
}

pub struct SqliteDb {
    writer: Arc<tokio::sync::Mutex<rusqlite::Connection>>,
    readers: Vec<Mutex<rusqlite::Connection>>,
    next_reader: AtomicUsize,
    /// The group commit's queue; absent outside a Tokio runtime, where each write commits
    /// on its own.
    group: Option<tokio::sync::mpsc::UnboundedSender<WriteJob>>,
}

/// Statements to run as one unit in the next group commit, and where to send how many rows
/// each changed.
struct WriteJob {
    statements: Vec<Query<'static>>,
    done: tokio::sync::oneshot::Sender<Result<Vec<u64>, StoreError>>,
}

/// The most jobs one group commit takes (more wait for the next).
const GROUP_MAX: usize = 256;

/// The group commit: takes the queued jobs, runs them on the writer in one transaction,
/// commits, and answers each job.
async fn group_writer(
    writer: Arc<tokio::sync::Mutex<rusqlite::Connection>>,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<WriteJob>,
) {
    let mut batch = Vec::with_capacity(GROUP_MAX);
    while jobs.recv_many(&mut batch, GROUP_MAX).await > 0 {
        let conn = writer.lock().await;
        // What arrived while waiting for the connection joins this commit.
        while batch.len() < GROUP_MAX {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = run_group(&conn, &batch);
        drop(conn);
        for (job, result) in batch.drain(..).zip(results) {
            let _ = job.done.send(result);
        }
    }
}

/// Runs `jobs` in one transaction; each job's statements succeed or fail together, and a
/// job that fails leaves the others' work in place. If the commit fails, every job fails.
fn run_group(conn: &rusqlite::Connection, jobs: &[WriteJob]) -> Vec<Result<Vec<u64>, StoreError>> {
    if let [job] = jobs {
        // Alone: autocommit (or its own transaction for several statements) costs less than
        // a transaction around it.
        return vec![run_alone(conn, &job.statements)];
    }
    if let Err(e) = run_cached(conn, "BEGIN IMMEDIATE") {
        return jobs.iter().map(|_| Err(e.clone())).collect();
    }
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let result = run_in_savepoint(conn, &job.statements);
        if conn.is_autocommit() {
            // The failure ended the transaction itself (a full disk, an I/O error): what ran
            // before it is gone too.
            let e = match &result {
                Err(e) => e.clone(),
                Ok(_) => StoreError::Database("the transaction was rolled back".into()),
            };
            return jobs.iter().map(|_| Err(e.clone())).collect();
        }
        results.push(result);
    }
    if let Err(e) = run_cached(conn, "COMMIT") {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return jobs.iter().map(|_| Err(e.clone())).collect();
    }
    results
}

fn run_cached(conn: &rusqlite::Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(|_| ())
        .map_err(sqlite_error)
}

fn run_statements(
    conn: &rusqlite::Connection,
    statements: &[Query<'static>],
) -> Result<Vec<u64>, StoreError> {
    statements
        .iter()
        .map(|q| sqlite_execute(conn, q).map(|done| done.0))
        .collect()
}

fn run_in_savepoint(
    conn: &rusqlite::Connection,
    statements: &[Query<'static>],
) -> Result<Vec<u64>, StoreError> {
    if statements.len() == 1 {
        // A failed statement undoes itself and leaves the transaction open.
        return run_statements(conn, statements);
    }
    run_cached(conn, "SAVEPOINT job")?;
    let result = run_statements(conn, statements);
    if result.is_err() && !conn.is_autocommit() {
        let _ = run_cached(conn, "ROLLBACK TO job");
    }
    if !conn.is_autocommit() {
        run_cached(conn, "RELEASE job")?;
    }
    result
}

fn run_alone(
    conn: &rusqlite::Connection,
    statements: &[Query<'static>],
) -> Result<Vec<u64>, StoreError> {
    if statements.len() == 1 {
        return run_statements(conn, statements);
    }
    run_cached(conn, "BEGIN IMMEDIATE")?;
    let result = run_statements(conn, statements)
        .and_then(|changed| run_cached(conn, "COMMIT").map(|()| changed));
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

impl SqliteDb {
    /// Opens the file (which must exist) with WAL, a busy timeout for writers of other
    /// processes (the CLI beside a running server), and foreign keys on.
    pub fn open(path: &Path) -> Result<SqliteDb, StoreError> {
        use rusqlite::OpenFlags;
        let open = |flags: OpenFlags| -> Result<rusqlite::Connection, StoreError> {
            let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(|e| {
                StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
            })?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(sqlite_error)?;
            conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
                .map_err(sqlite_error)?;
            Ok(conn)
        };
        let writer = open(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        // WAL lets readers and the writer work at once. A read-only file cannot switch to it:
        // that is reported on the first write, as for any read-only database.
        let _ = writer.pragma_update(None, "journal_mode", "WAL");
        let mut readers = Vec::with_capacity(SQLITE_READERS);
        for _ in 0..SQLITE_READERS {
            readers.push(Mutex::new(open(
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?));
        }
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let group = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
            runtime.spawn(group_writer(writer.clone(), receiver));
            sender
        });
        Ok(SqliteDb {
            writer,
            readers,
            next_reader: AtomicUsize::new(0),
            group,
        })
    }

    /// Runs `statements` as one unit (all or none) and returns how many rows each changed,
    /// once they are committed.
    async fn write(&self, statements: Vec<Query<'static>>) -> Result<Vec<u64>, StoreError> {
        if let Some(group) = &self.group {
            let (done, wait) = tokio::sync::oneshot::channel();
            match group.send(WriteJob { statements, done }) {
                Ok(()) => {
                    return wait.await.unwrap_or_else(|_| {
                        Err(StoreError::Database(
                            "the store's writer stopped before answering".into(),
                        ))
                    });
                }
                Err(refused) => {
                    // The group commit is gone (its runtime is shutting down): write here.
                    let conn = self.writer.lock().await;
                    return run_alone(&conn, &refused.0.statements);
                }
            }
        }
        let conn = self.writer.lock().await;
        run_alone(&conn, &statements)
    }

    /// Runs `f` on the writer connection if it is free, else on a free read-only connection
    /// (reads hold one only while they run, never across an `.await`, so waiting for one is
    /// short). The writer is free only between transactions, so a read there sees exactly
    /// what is committed, as on a reader.
    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Ok(conn) = self.writer.try_lock() {
            return f(&conn);
        }
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for i in 0..n {
            if let Ok(conn) = self.readers[(start + i) % n].try_lock() {
                return f(&conn);
            }
        }
        let conn = self.readers[start % n]
            .lock()
            .map_err(|_| StoreError::Database("a database connection was poisoned".into()))?;
        f(&conn)
    }

    /// Runs a batch of statements (migrations) on the writer connection.
    pub async fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer.lock().await;
        f(&mut conn)
    }
}

/// A transaction: statements run on it with `.execute(&mut tx)`; it is rolled back unless
/// [`Tx::commit`] is called. On SQLite it holds the writer (`BEGIN IMMEDIATE`), so it
/// should not wait on anything but its own statements.
pub enum Tx {
    Sqlite(SqliteTx),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

pub struct SqliteTx {
    conn: Option<tokio::sync::OwnedMutexGuard<rusqlite::Connection>>,
}

impl SqliteTx {
    fn conn(&self) -> Result<&rusqlite::Connection, StoreError> {
        self.conn
            .as_deref()
            .ok_or_else(|| StoreError::Database("the transaction is over".into()))
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.is_autocommit()
        {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}

impl Db {
    /// Runs `statements` as one unit (all or none) and returns how many rows each changed.
    /// On SQLite they join the group commit; on PostgreSQL they run in a transaction.
    pub async fn execute_all(&self, statements: Vec<Query<'_>>) -> Result<Vec<u64>, StoreError> {
        match self {
            Db::Sqlite(db) => {
                db.write(statements.into_iter().map(Query::into_owned).collect())
                    .await
            }
            Db::Postgres(_) => {
                let mut tx = self.begin().await?;
                let mut changed = Vec::with_capacity(statements.len());
                for q in statements {
                    changed.push(q.execute(&mut tx).await?.rows_affected());
                }
                tx.commit().await?;
                Ok(changed)
            }
        }
    }

    pub async fn begin(&self) -> Result<Tx, StoreError> {
        match self {
            Db::Sqlite(db) => {
                let conn = db.writer.clone().lock_owned().await;
                conn.execute_batch("BEGIN IMMEDIATE")
                    .map_err(sqlite_error)?;
                Ok(Tx::Sqlite(SqliteTx { conn: Some(conn) }))
            }
            Db::Postgres(pool) => Ok(Tx::Postgres(pool.begin().await?)),
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(mut tx) => {
                let conn = tx
                    .conn
                    .take()
                    .ok_or_else(|| StoreError::Database("the transaction is over".into()))?;
                let result = conn.execute_batch("COMMIT").map_err(sqlite_error);
                if result.is_err() && !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                result
            }
            Tx::Postgres(tx) => Ok(tx.commit().await?),
        }
    }
}

// ---------------------------------------------------------------------------------------
// SQLite

fn sqlite_statement<'c>(
    conn: &'c rusqlite::Connection,
    q: &Query<'_>,
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let mut stmt = conn.prepare_cached(&q.sql).map_err(sqlite_error)?;
    // `$N` is a named parameter to SQLite; bind each one to the N-th value.
    for index in 1..=stmt.parameter_count() {
        let position = stmt
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .ok_or_else(|| StoreError::Database(format!("parameter {index} is not $N")))?;
        let value = q
            .args
            .get(position)
            .ok_or_else(|| StoreError::Database(format!("no value bound for ${}", position + 1)))?;
        let result = match value {
            Value::Null(_) => stmt.raw_bind_parameter(index, rusqlite::types::Null),
            Value::Integer(i) => stmt.raw_bind_parameter(index, i),
            Value::Text(t) => stmt.raw_bind_parameter(index, t.as_ref()),
            Value::Blob(b) => stmt.raw_bind_parameter(index, b.as_ref()),
        };
        result.map_err(sqlite_error)?;
    }
    Ok(stmt)
}

fn sqlite_execute(conn: &rusqlite::Connection, q: &Query<'_>) -> Result<Done, StoreError> {
    let mut stmt = sqlite_statement(conn, q)?;
    let changed = stmt.raw_execute().map_err(sqlite_error)?;
    Ok(Done(changed as u64))
}

fn sqlite_fetch(conn: &rusqlite::Connection, q: &Query<'_>) -> Result<Vec<Row>, StoreError> {
    let mut stmt = sqlite_statement(conn, q)?;
    let columns: Arc<[String]> = stmt.column_names().into_iter().map(String::from).collect();
    let width = columns.len();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite_error)? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match row.get_ref(i).map_err(sqlite_error)? {
                ValueRef::Null => Value::Null(Kind::Text),
                ValueRef::Integer(v) => Value::Integer(v),
                ValueRef::Real(v) => {
                    return Err(StoreError::Corrupt(format!(
                        "column {} holds the number {v}, not an integer",
                        columns[i]
                    )));
                }
                ValueRef::Text(t) => {
                    Value::Text(Cow::Owned(String::from_utf8(t.to_vec()).map_err(|_| {
                        StoreError::Corrupt(format!("column {} is not UTF-8", columns[i]))
                    })?))
                }
                ValueRef::Blob(b) => Value::Blob(Cow::Owned(b.to_vec())),
            });
        }
        out.push(Row {
            columns: columns.clone(),
            values,
        });
    }
    Ok(out)
}

pub fn sqlite_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(failure, message) => {
            let text = message.clone().unwrap_or_else(|| failure.to_string());
            match failure.code {
                ErrorCode::ReadOnly => StoreError::ReadOnly(text),
                ErrorCode::CannotOpen
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::PermissionDenied => StoreError::Unavailable(text),
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt(text),
                ErrorCode::ConstraintViolation
                    if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
                {
                    StoreError::Unique(text)
                }
                _ => StoreError::Database(text),
            }
        }
        _ => StoreError::Database(e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

fn pg_row(row: &PgRow) -> Result<Row, StoreError> {
    let columns: Arc<[String]> = row.columns().iter().map(|c| c.name().to_owned()).collect();
    let mut values = Vec::with_capacity(columns.len());
    for (i, column) in row.columns().iter().enumerate() {
        let type_name = column.type_info().name().to_owned();
        let raw = row.try_get_raw(i)?;
        let null = raw.is_null();
        let value = match type_name.as_str() {
            "INT8" | "INT4" | "INT2" if null => Value::Null(Kind::Integer),
            "INT8" => Value::Integer(row.try_get::<i64, _>(i)?),
            "INT4" => Value::Integer(i64::from(row.try_get::<i32, _>(i)?)),
            "INT2" => Value::Integer(i64::from(row.try_get::<i16, _>(i)?)),
            "BOOL" if null => Value::Null(Kind::Integer),
            "BOOL" => Value::Integer(i64::from(row.try_get::<bool, _>(i)?)),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" if null => Value::Null(Kind::Text),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                Value::Text(Cow::Owned(row.try_get::<String, _>(i)?))
            }
            "BYTEA" if null => Value::Null(Kind::Blob),
            "BYTEA" => Value::Blob(Cow::Owned(row.try_get::<Vec<u8>, _>(i)?)),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "column {} has the type {other}, which the store does not read",
                    columns[i]
                )));
            }
        };
        values.push(value);
    }
    Ok(Row { columns, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_table(dir: &Path) -> SqliteDb {
        let path = dir.join("t.db");
        std::fs::File::create(&path).unwrap();
        let db = SqliteDb::open(&path).unwrap();
        db.writer
            .try_lock()
            .unwrap()
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, version INTEGER NOT NULL DEFAULT 0)",
            )
            .unwrap();
        db
    }

    fn insert(name: &str) -> Query<'static> {
        query("INSERT INTO t (name) VALUES ($1)").bind(name.to_owned())
    }

    fn job(statements: Vec<Query<'static>>) -> WriteJob {
        WriteJob {
            statements,
            done: tokio::sync::oneshot::channel().0,
        }
    }

    fn names(db: &SqliteDb) -> Vec<String> {
        let conn = db.writer.try_lock().unwrap();
        let mut stmt = conn.prepare("SELECT name FROM t ORDER BY name").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_failed_write_in_a_group_commit_leaves_the_others_committed() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_table(dir.path());
        let jobs = vec![
            job(vec![insert("a")]),
            job(vec![insert("a")]),
            job(vec![insert("b")]),
        ];
        let results = run_group(&db.writer.try_lock().unwrap(), &jobs);
        assert_eq!(results[0].as_ref().unwrap(), &vec![1]);
        assert!(
            matches!(results[1], Err(StoreError::Unique(_))),
            "{results:?}"
        );
        assert_eq!(results[2].as_ref().unwrap(), &vec![1]);
        assert_eq!(names(&db), ["a", "b"]);
    }

    #[test]
    fn a_unit_of_several_statements_is_undone_whole_when_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_table(dir.path());
        let jobs = vec![
            job(vec![insert("first")]),
            // "second" would be new, but its unit fails on the duplicate "first".
            job(vec![insert("second"), insert("first")]),
            job(vec![insert("third"), insert("fourth")]),
        ];
        let results = run_group(&db.writer.try_lock().unwrap(), &jobs);
        assert!(results[0].is_ok());
        assert!(
            matches!(results[1], Err(StoreError::Unique(_))),
            "{results:?}"
        );
        assert_eq!(results[2].as_ref().unwrap(), &vec![1, 1]);
        assert_eq!(names(&db), ["first", "fourth", "third"]);
    }

    #[test]
    fn conditional_updates_in_one_group_commit_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_table(dir.path());
        run_alone(&db.writer.try_lock().unwrap(), &[insert("row")]).unwrap();
        // Five writers all read version 0 and try to move it on: one may.
        let bump = || {
            job(vec![
                query("UPDATE t SET version = version + 1 WHERE name = 'row' AND version = $1")
                    .bind(0_i64),
            ])
        };
        let jobs: Vec<WriteJob> = (0..5).map(|_| bump()).collect();
        let results = run_group(&db.writer.try_lock().unwrap(), &jobs);
        let changed: Vec<u64> = results.into_iter().map(|r| r.unwrap()[0]).collect();
        assert_eq!(changed, [1, 0, 0, 0, 0]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_each_learn_their_own_outcome_after_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(store_with_table(dir.path()));
        let db_handle = Db::Sqlite(db.clone());
        let mut tasks = Vec::new();
        for i in 0..200 {
            let db_handle = db_handle.clone();
            // Every tenth name is taken twice: one of the two must be refused.
            let name = if i % 10 == 0 {
                format!("n{}", i + 1)
            } else {
                format!("n{i}")
            };
            tasks.push(tokio::spawn(async move {
                let done = insert(&name).execute(&db_handle).await;
                (name, done.map(|d| d.rows_affected()))
            }));
        }
        let mut refused = 0;
        for task in tasks {
            let (name, result) = task.await.unwrap();
            match result {
                Ok(1) => {
                    // Committed before we were told: a fresh connection sees it.
                    let conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
                    let n: i64 = conn
                        .query_row("SELECT count(*) FROM t WHERE name = ?1", [&name], |r| {
                            r.get(0)
                        })
                        .unwrap();
                    assert_eq!(n, 1, "{name}");
                }
                Err(StoreError::Unique(_)) => refused += 1,
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(refused, 20);
        assert_eq!(names(&db).len(), 180);
    }
}
