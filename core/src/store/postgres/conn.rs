//! A connection that prepares each statement once.
//!
//! PostgreSQL parses and plans a statement sent as text every time; a
//! registration sends about a dozen small ones across the fleet, and that
//! overhead, not the work, was most of the database's CPU (a failover of
//! thousands of nodes waited on it). Statements are constants (or built from
//! a bounded set of filter combinations), so the cache stays small.

use std::collections::HashMap;

use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use crate::store::postgres::url::PgUrl;
use crate::store::postgres::{connect_as, describe};
use crate::store::StoreError;

/// A client and its prepared statements.
pub struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Conn {
    /// Connects under `application_name`.
    pub fn open(url: &PgUrl, application_name: &str) -> Result<Conn, String> {
        Ok(Conn {
            client: connect_as(url, application_name)?,
            statements: HashMap::new(),
        })
    }

    /// Whether the connection broke.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The client, for transactions and what is not worth preparing.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn prepared(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// `Client::query` with a prepared statement.
    pub fn query(&mut self, sql: &str, params: Params) -> Result<Vec<Row>, postgres::Error> {
        let s = self.prepared(sql)?;
        self.client.query(&s, params)
    }

    /// `Client::query_opt` with a prepared statement.
    pub fn query_opt(&mut self, sql: &str, params: Params) -> Result<Option<Row>, postgres::Error> {
        let s = self.prepared(sql)?;
        self.client.query_opt(&s, params)
    }

    /// `Client::query_one` with a prepared statement.
    pub fn query_one(&mut self, sql: &str, params: Params) -> Result<Row, postgres::Error> {
        let s = self.prepared(sql)?;
        self.client.query_one(&s, params)
    }

    /// `Client::execute` with a prepared statement.
    pub fn execute(&mut self, sql: &str, params: Params) -> Result<u64, postgres::Error> {
        let s = self.prepared(sql)?;
        self.client.execute(&s, params)
    }
}

/// Runs `f` on the connection in `slot`, opening it first if there is none
/// or it broke. A connection found broken by `f` (the server restarted since
/// it was last used) is opened again and `f` runs once more, so the first
/// request after a database restart does not fail.
pub fn on_connection<T>(
    slot: &mut Option<Conn>,
    url: &PgUrl,
    what: &str,
    mut f: impl FnMut(&mut Conn) -> Result<T, postgres::Error>,
) -> Result<T, StoreError> {
    for attempt in 0..2 {
        if slot.as_ref().is_none_or(|c| c.is_closed()) {
            *slot = None;
            *slot = Some(
                Conn::open(url, "honeybee-core").map_err(|e| StoreError(format!("{what}: {e}")))?,
            );
        }
        let Some(conn) = slot.as_mut() else {
            break;
        };
        match f(conn) {
            Ok(v) => return Ok(v),
            Err(e) if attempt == 0 && conn.is_closed() => {
                log::info!("store: {what}: {}; connecting again", describe(&e));
            }
            Err(e) => return Err(StoreError(format!("{what}: {}", describe(&e)))),
        }
    }
    Err(StoreError(format!("{what}: no database connection")))
}
