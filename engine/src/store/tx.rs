//! The store's transactions, and the shelf of connections they leave for the next one.
//!
//! sqlx's pool tests every connection given back to it with a round trip of its own (a `Sync`
//! answered by Postgres, sent from a task spawned for it): a fifth round trip on a transition's
//! four, a backend woken for nothing, and a task per transaction. Measured with the benchmark
//! (8 and 32 clients, the same machine, back to back), skipping that test gave 3-6 points of
//! pgbench's throughput on every path (engine 69% -> 75% at 8 clients, HTTP 60% -> 64% at 32).
//!
//! A transaction that ended with its `COMMIT` or `ROLLBACK` answered leaves its connection in a
//! known state: idle, nothing in flight. So [`Tx`] puts such a connection on the store's
//! [`Shelf`], and the next [`Shelf::begin`] takes it from there (the most recently used first)
//! without asking the pool. Anything else goes back to the pool the way sqlx does it, with its
//! test: a transaction dropped unfinished (an error, a refusal, a cancelled request) queues its
//! `ROLLBACK`, which the pool's test sends and waits for; a failed `COMMIT` likewise.
//!
//! The shelf must not starve the pool's other users (the workers, logins, the CLI) of
//! connections it holds idle, nor keep a connection forever:
//!
//! * it holds at most three quarters of the pool ([`Shelf::new`]), the rest circulates;
//! * a connection waits on it at most [`PARKED_AT_MOST`]; a task ([`Shelf::sweep_every`])
//!   returns older ones to the pool, so a quiet server holds none and a pool's `close` completes;
//! * a connection taken from the pool before the last connection death noted
//!   ([`super::conn::note`]) is never taken from the shelf again (it may be dead), nor one taken
//!   from the pool longer than [`CIRCULATE_AFTER`] ago (so the pool's lifetime checks still see
//!   every connection now and then).

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgRow, PgTransactionManager};
use sqlx::{Executor, PgPool, Postgres, TransactionManager};

use super::conn;

/// How long a connection may wait on the shelf before it goes back to the pool.
pub const PARKED_AT_MOST: Duration = Duration::from_millis(250);

/// How long after it left the pool a connection goes back to it at the end of a transaction
/// anyway (where the pool applies its idle and lifetime limits).
pub const CIRCULATE_AFTER: Duration = Duration::from_secs(60);

/// An open transaction of the store on a pooled connection. Dereferences to the connection, so
/// statements run on `&mut *tx` as on sqlx's `Transaction`; ends with [`Tx::commit`] or
/// [`Tx::rollback`], or is rolled back when dropped.
pub struct Tx {
    /// `None` only while the transaction is being dropped.
    conn: Option<PoolConnection<Postgres>>,
    shelf: Arc<Shelf>,
    /// When the connection left the pool.
    taken: Instant,
    /// Begun and not yet answered a `COMMIT` or `ROLLBACK`.
    open: bool,
    /// Begun by a statement of the store's own ([`Shelf::begin_fetching`]), not by sqlx's
    /// transaction manager: sqlx does not know it is open, so the store ends it itself.
    by_hand: bool,
}

impl std::fmt::Debug for Tx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").field("open", &self.open).finish_non_exhaustive()
    }
}

impl Tx {
    /// Commits. On success the connection goes on the shelf; on failure the transaction is
    /// rolled back (as when dropped).
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        if self.by_hand {
            (&mut *self).execute("commit").await?;
        } else {
            PgTransactionManager::commit(&mut self).await?;
        }
        self.open = false;
        Ok(())
    }

    /// Sends the transaction's last statements and its `COMMIT` as one simple query (one round
    /// trip where a last statement and [`Tx::commit`] take two), and returns the statements'
    /// rows. Only for a transaction [`Shelf::begin_fetching`] began (its statements may
    /// `EXECUTE` what that prepared; every value a literal the caller made safe, as there). On
    /// an error the transaction is rolled back as when dropped: a statement that failed skipped
    /// the `COMMIT`, and a `COMMIT` that failed has ended it already (the `ROLLBACK` only warns).
    pub async fn commit_fetching(mut self, statements: &str) -> Result<Vec<PgRow>, sqlx::Error> {
        if !self.by_hand {
            return Err(sqlx::Error::Protocol("a transaction sqlx began is committed by sqlx".into()));
        }
        let rows = (&mut *self).fetch_all(statements).await?;
        self.open = false;
        Ok(rows)
    }

    /// Whether the store, not sqlx, ends this transaction ([`Shelf::begin_fetching`] began it).
    pub fn by_hand(&self) -> bool {
        self.by_hand
    }

    /// Rolls back. On success the connection goes on the shelf.
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        if self.by_hand {
            (&mut *self).execute("rollback").await?;
        } else {
            PgTransactionManager::rollback(&mut self).await?;
        }
        self.open = false;
        Ok(())
    }
}

impl Deref for Tx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn.as_deref().expect("a transaction's connection is gone only while it is dropped")
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_deref_mut().expect("a transaction's connection is gone only while it is dropped")
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else { return };
        if self.open && self.by_hand {
            // Unfinished, and sqlx cannot queue its `ROLLBACK` (it does not know a transaction
            // is open): sent from a task, and the connection goes back to the pool only once it
            // is answered; closed if it is not (or if there is no runtime to send it from).
            let mut unfinished = Unfinished(Some(conn));
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Some(conn) = unfinished.0.as_mut() {
                        if conn.execute("rollback").await.is_ok() {
                            // Answered: back to the pool.
                            unfinished.0.take();
                        }
                    }
                });
            }
            return;
        }
        if self.open {
            // Unfinished: sqlx's own way, a `ROLLBACK` queued on the connection, which the
            // pool's test on release sends and waits for (and closes the connection if that
            // fails).
            PgTransactionManager::start_rollback(&mut conn);
            return;
        }
        self.shelf.put(conn, self.taken);
    }
}

/// A connection whose transaction (begun by hand) may still be open: closed when dropped, unless
/// taken out of it once its `ROLLBACK` was answered. So it never goes back to the pool inside a
/// transaction: not when the rollback fails, nor when its task is dropped unrun (a runtime
/// shutting down), nor when there is no runtime to send it from.
struct Unfinished(Option<PoolConnection<Postgres>>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(mut conn) = self.0.take() {
            conn.close_on_drop();
        }
    }
}

/// Connections whose last transaction ended cleanly, kept for the next one.
#[derive(Debug)]
pub struct Shelf {
    parked: Mutex<Vec<Parked>>,
    capacity: usize,
    /// The pool the connections come from: once it is closed, the shelf gives them back at
    /// once (a pool's `close` waits for every connection it handed out).
    pool: PgPool,
}

#[derive(Debug)]
struct Parked {
    conn: PoolConnection<Postgres>,
    /// When it left the pool.
    taken: Instant,
    /// When it was put on the shelf.
    since: Instant,
}

impl Shelf {
    /// A shelf for connections of `pool`: it holds at most three quarters of the pool's
    /// connections (none for a pool of one).
    pub fn new(pool: &PgPool) -> Arc<Shelf> {
        let max = pool.options().get_max_connections() as usize;
        let shelf = Arc::new(Shelf { parked: Mutex::default(), capacity: max * 3 / 4, pool: pool.clone() });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(Shelf::sweep_every(Arc::downgrade(&shelf), PARKED_AT_MOST / 2));
        }
        shelf
    }

    /// Begins a transaction with `statement` (a `BEGIN` and what goes with it) on a connection
    /// from the shelf, or else from the pool (whose errors it returns: closed, timed out).
    pub async fn begin(self: &Arc<Self>, statement: impl Into<Cow<'static, str>>) -> Result<Tx, sqlx::Error> {
        let (mut conn, taken) = match self.take() {
            Some(parked) => (parked.conn, parked.taken),
            None => (self.pool.acquire().await?, Instant::now()),
        };
        if let Err(e) = PgTransactionManager::begin(&mut conn, Some(statement.into())).await {
            // Dead, or in a state nobody should inherit (a `BEGIN` that went through and what
            // came with it that did not): closed, not given to anyone.
            conn.close_on_drop();
            return Err(e);
        }
        Ok(Tx { conn: Some(conn), shelf: self.clone(), taken, open: true, by_hand: false })
    }

    /// Begins a transaction with `statements` (a `BEGIN`, what goes with it, and then
    /// statements whose rows it returns), sent as one simple query: one round trip where
    /// [`Shelf::begin`] and a first query take two. The statements after `BEGIN` must be
    /// `EXECUTE`s of statements prepared on the connection (a simple query's statements are
    /// planned anew each time; a prepared one keeps its plan): `prepare` prepares them, and is
    /// run (once per connection) when the connection does not have them yet. Every value in
    /// `statements` must be a literal the caller made safe (the simple protocol has no
    /// parameters); the rows come in text format, which sqlx decodes as it does binary.
    pub async fn begin_fetching(
        self: &Arc<Self>,
        statements: String,
        prepare: &'static str,
    ) -> Result<(Tx, Vec<PgRow>), sqlx::Error> {
        let (conn, taken) = match self.take() {
            Some(parked) => (parked.conn, parked.taken),
            None => (self.pool.acquire().await?, Instant::now()),
        };
        // Open from here: whatever fails below, the drop rolls back what may have begun.
        let mut tx = Tx { conn: Some(conn), shelf: self.clone(), taken, open: true, by_hand: true };
        match (&mut *tx).fetch_all(statements.as_str()).await {
            Ok(rows) => Ok((tx, rows)),
            Err(e) if not_prepared(&e) => {
                // The connection's first such transaction: the aborted one rolled back, the
                // statements prepared, and once more.
                (&mut *tx).execute("rollback").await?;
                (&mut *tx).execute(prepare).await?;
                let rows = (&mut *tx).fetch_all(statements.as_str()).await?;
                Ok((tx, rows))
            }
            Err(e) => Err(e),
        }
    }

    /// How many connections wait on the shelf now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no connection waits on the shelf.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Parked>> {
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently parked connection that may still be used.
    fn take(&self) -> Option<Parked> {
        if self.pool.is_closed() {
            drop(std::mem::take(&mut *self.lock()));
            return None;
        }
        let mut stale = Vec::new();
        let found = {
            let mut parked = self.lock();
            loop {
                match parked.pop() {
                    None => break None,
                    Some(p) if p.fresh(Instant::now()) && conn::taken_after_last_death(p.taken) => break Some(p),
                    Some(p) => stale.push(p),
                }
            }
        };
        // Back to the pool, outside the lock (each drop spawns the pool's test).
        drop(stale);
        found
    }

    fn put(&self, conn: PoolConnection<Postgres>, taken: Instant) {
        let now = Instant::now();
        let in_transaction = PgTransactionManager::get_transaction_depth(&conn) > 0;
        if in_transaction || now.duration_since(taken) >= CIRCULATE_AFTER || !conn::taken_after_last_death(taken) {
            return;
        }
        let mut parked = self.lock();
        if parked.len() < self.capacity && !self.pool.is_closed() {
            parked.push(Parked { conn, taken, since: now });
        }
    }

    /// Returns every connection parked for [`PARKED_AT_MOST`] or longer to the pool, every
    /// `period`, for as long as the shelf exists.
    async fn sweep_every(shelf: Weak<Shelf>, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(shelf) = shelf.upgrade() else { return };
            let now = Instant::now();
            let closed = shelf.pool.is_closed();
            let stale: Vec<Parked> = {
                let mut parked = shelf.lock();
                // Oldest first: parked in order, taken from the end.
                let keep_from = if closed {
                    parked.len()
                } else {
                    parked.iter().position(|p| p.fresh(now)).unwrap_or(parked.len())
                };
                parked.drain(..keep_from).collect()
            };
            drop(stale);
        }
    }
}

/// Postgres's "prepared statement does not exist" (`invalid_sql_statement_name`).
fn not_prepared(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "26000"))
}

impl Parked {
    fn fresh(&self, now: Instant) -> bool {
        now.duration_since(self.since) < PARKED_AT_MOST
    }
}
