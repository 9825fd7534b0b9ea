//! The fleet over PostgreSQL: requests on a small pool of connections, and
//! one `fleet-listen` thread with its own connection that LISTENs, renews
//! this core's lease, and holds the leader's advisory lock while it lives
//! (PostgreSQL frees the lock the moment that session ends, so a core that
//! dies hands leadership over without anyone waiting for a timeout).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use honeybee_proto::{CoreMessage, PotEvent};
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;

use crate::fleet::notice::{self, Notice};
use crate::fleet::{CoreView, Fleet, Routed, SharedNode};
use crate::node::lockout::{LockoutPolicy, MAX_SOURCES_PER_NODE};
use crate::store::postgres::conn::{on_connection, Conn};
use crate::store::postgres::schema::LOCK;
use crate::store::postgres::url::PgUrl;
use crate::store::postgres::{describe, load_stored_node};
use crate::store::StoreError;

/// The advisory lock the leader holds.
const LEADER: i64 = LOCK + 1;
/// Connections for requests (registrations, commands, the API).
const POOL: usize = 4;
/// How often a core that is not the leader tries to become it.
const LEADER_TRY: Duration = Duration::from_secs(1);
/// Events fetched for the live stream per notification, at most.
const MAX_FETCH: i64 = 8192;
/// This core's own committed batches kept for the live stream until their
/// notice arrives (then they need not be read back from the database).
const STASHED_BATCHES: usize = 256;
/// How often the leader removes routed commands nobody took and lockout
/// rows nobody used for a day.
const TIDY_EVERY: Duration = Duration::from_secs(10);
/// The `lockouts.source` that failures from sources past
/// [`MAX_SOURCES_PER_NODE`] share, as a core alone shares one overflow
/// lockout (never an address).
const OVERFLOW_SOURCE: &str = "*";
/// A lockout row unused this long (no failure in its window, no lockout)
/// is removed, and its growth forgotten.
const LOCKOUT_MEMORY_MS: i64 = 24 * 3600 * 1000;

/// The source's lockout, or the overflow's for a source without a row of
/// its own.
const LOCKED_UNTIL: &str = "
SELECT COALESCE(
    (SELECT locked_until FROM lockouts WHERE node_id = $1::BIGINT AND source = $2::TEXT),
    (SELECT locked_until FROM lockouts WHERE node_id = $1::BIGINT AND source = $3::TEXT))";

/// One failed check: counted in the source's row (or the overflow's once
/// the node has as many active sources as a core alone tracks), within the
/// window that started with the row's first failure, or as the first of a
/// new window when that one has passed. Atomic: cores failing at the same
/// moment are counted one after the other.
const COUNT_FAILURE: &str = "
WITH counted AS (
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM lockouts WHERE node_id = $1::BIGINT AND source = $2::TEXT)
            THEN $2::TEXT
        WHEN (SELECT count(*) FROM lockouts
              WHERE node_id = $1::BIGINT AND source <> $6::TEXT
                AND (window_start >= $3::BIGINT - $4::BIGINT OR locked_until > $3::BIGINT))
             < $5::BIGINT
            THEN $2::TEXT
        ELSE $6::TEXT END AS source)
INSERT INTO lockouts AS l (node_id, source, failures, window_start, locked_until, lockouts)
SELECT $1::BIGINT, source, 1, $3::BIGINT, 0, 0 FROM counted
ON CONFLICT (node_id, source) DO UPDATE SET
    failures = CASE WHEN l.window_start >= $3::BIGINT - $4::BIGINT
                    THEN l.failures + 1 ELSE 1 END,
    window_start = CASE WHEN l.window_start >= $3::BIGINT - $4::BIGINT
                        THEN l.window_start ELSE $3::BIGINT END
RETURNING source, failures, lockouts";

/// The lockout the count reached, imposed once: of cores that counted past
/// the limit at the same moment, the first resets the count and the others
/// find nothing to update.
const IMPOSE: &str = "
UPDATE lockouts SET failures = 0, window_start = 0,
    lockouts = LEAST(lockouts + 1, 1000000),
    locked_until = GREATEST(locked_until, $3::BIGINT)
WHERE node_id = $1::BIGINT AND source = $2::TEXT AND failures >= $4::BIGINT";

/// The step, claimed by one core; a won claim forgets the source's failures.
const CLAIM_STEP: &str = "
WITH claimed AS (
    UPDATE nodes SET last_totp_step = $2::BIGINT
    WHERE node_id = $1::BIGINT AND (last_totp_step IS NULL OR last_totp_step < $2::BIGINT)
    RETURNING node_id),
forgotten AS (
    UPDATE lockouts SET failures = 0
    WHERE node_id = $1::BIGINT AND source = $3::TEXT AND failures > 0
      AND EXISTS (SELECT 1 FROM claimed))
SELECT count(*) FROM claimed";

/// A command queued for the live core that holds the node, and its notice,
/// in one statement: both commit together, or neither (no holder).
const ROUTE: &str = "
WITH holder AS (
    SELECT p.core_name FROM presence p JOIN cores k USING (core_name)
    WHERE p.node_id = $1::BIGINT AND k.lease_until > now() AND p.core_name <> $2::TEXT),
queued AS (
    INSERT INTO routed_commands (core_name, node_id, message)
    SELECT core_name, $1::BIGINT, $3::TEXT FROM holder
    RETURNING id, core_name)
SELECT core_name, pg_notify($4::TEXT, core_name || E'\\t' || $1::BIGINT::TEXT || E'\\t' || id::TEXT)
FROM queued";

/// Committed events with their ids (cursors), in commit order.
pub type Batch = Vec<(PotEvent, i64)>;

/// What the listener hands to the rest of the core.
pub trait Deliveries: Send + Sync {
    /// Another core took the node: close this core's connection to it.
    fn moved_away(&self, node_id: u64);
    /// The node's stored state changed (`None`: deleted).
    fn node_changed(&self, node_id: u64, node: Option<SharedNode>);
    /// A command for a node this core holds.
    fn command(&self, node_id: u64, message: CoreMessage);
    /// Whether anyone here listens to events (else they are not fetched).
    fn wants_events(&self) -> bool;
    /// Events committed (by any core, this one too), with their ids
    /// (cursors), in commit order.
    fn events(&self, events: Vec<(PotEvent, i64)>);
    /// Notifications may have been missed (the listener reconnected).
    fn resync(&self);
}

/// Several cores over one PostgreSQL database.
pub struct SharedFleet {
    core_name: String,
    url: PgUrl,
    pool: Vec<Mutex<Option<Conn>>>,
    /// Nodes other live cores hold.
    holders: Mutex<HashMap<u64, String>>,
    /// Nodes this core holds: their connection and the hold's epoch.
    held: Mutex<HashMap<u64, (u64, u64)>>,
    leader: AtomicBool,
    trouble: Mutex<Option<String>>,
    lease: Duration,
    deliveries: OnceLock<Arc<dyn Deliveries>>,
    stopping: AtomicBool,
    /// This core's committed batches by first id, oldest first.
    stash: Mutex<VecDeque<(i64, Batch)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SharedFleet {
    /// A fleet member named `core_name` whose lease lasts `lease` (twice the
    /// heartbeat interval: a dead core stops counting within that).
    pub fn new(
        core_name: String,
        url: PgUrl,
        lease: Duration,
    ) -> Result<Arc<SharedFleet>, StoreError> {
        let fleet = Arc::new(SharedFleet {
            core_name,
            url,
            pool: (0..POOL).map(|_| Mutex::new(None)).collect(),
            holders: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
            leader: AtomicBool::new(false),
            trouble: Mutex::new(None),
            lease,
            deliveries: OnceLock::new(),
            stopping: AtomicBool::new(false),
            stash: Mutex::new(VecDeque::new()),
        });
        // A core restarting under the same name held nothing since, and
        // commands routed to its previous run are void.
        fleet.with("joining the fleet", |c| {
            c.execute(
                "DELETE FROM presence WHERE core_name = $1",
                &[&fleet.core_name],
            )?;
            c.execute(
                "DELETE FROM routed_commands WHERE core_name = $1",
                &[&fleet.core_name],
            )?;
            renew(c, &fleet.core_name, fleet.lease, "ok")
        })?;
        Ok(fleet)
    }

    /// Starts the listener thread; `deliveries` receives what it hears.
    pub fn listen(self: &Arc<Self>, deliveries: Arc<dyn Deliveries>) -> Result<(), StoreError> {
        let _ = self.deliveries.set(deliveries);
        // The first session and its try for leadership happen before the
        // core serves: a core that leads from the start runs its modules
        // from the start, and an operator's first stop is not undone by a
        // leadership gained a moment later.
        let mut first = Conn::open(&self.url, &self.listener_name()).map_err(StoreError)?;
        self.try_lead(&mut first)
            .map_err(|e| StoreError(format!("trying to lead: {}", describe(&e))))?;
        let fleet = self.clone();
        std::thread::Builder::new()
            .name("fleet-listen".into())
            .spawn(move || fleet.listen_loop(Some(first)))
            .map(|_| ())
            .map_err(|e| StoreError(format!("starting the fleet listener: {e}")))
    }

    /// Keeps a batch this core committed until its notice arrives: every
    /// core, this one too, publishes batches in the order PostgreSQL
    /// delivers their notices, which is commit order, so that a subscriber's
    /// cursor never jumps over a batch another core committed first.
    pub fn stash_stored(&self, events: Vec<(PotEvent, i64)>) {
        let Some(&(_, first)) = events.first() else {
            return;
        };
        let mut stash = lock(&self.stash);
        if stash.len() >= STASHED_BATCHES {
            stash.pop_front();
        }
        stash.push_back((first, events));
    }

    fn stashed(&self, first: i64) -> Option<Batch> {
        let mut stash = lock(&self.stash);
        let at = stash.iter().position(|(f, _)| *f == first)?;
        stash.remove(at).map(|(_, events)| events)
    }

    /// Stops the listener and gives up leadership and this core's nodes.
    pub fn leave(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.with("leaving the fleet", |c| {
            c.execute(
                "DELETE FROM presence WHERE core_name = $1",
                &[&self.core_name],
            )?;
            c.execute(
                "UPDATE cores SET lease_until = now() WHERE core_name = $1",
                &[&self.core_name],
            )
            .map(|_| ())
        });
    }

    /// Runs `f` on a pooled connection, opening it again if it broke.
    fn with<T>(
        &self,
        what: &str,
        f: impl FnMut(&mut Conn) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut slot = self
            .pool
            .iter()
            .find_map(|m| m.try_lock().ok())
            .unwrap_or_else(|| lock(&self.pool[0]));
        on_connection(&mut slot, &self.url, what, f)
    }

    fn notify(&self, c: &mut Conn, notice: &Notice) -> Result<(), postgres::Error> {
        let (channel, payload) = notice.encode();
        c.execute("SELECT pg_notify($1, $2)", &[&channel, &payload])
            .map(|_| ())
    }

    fn listener_name(&self) -> String {
        format!("honeybee-core/{}", self.core_name)
    }

    /// Takes the leader's lock on `c`'s session if it is free.
    fn try_lead(&self, c: &mut Conn) -> Result<(), postgres::Error> {
        let got: bool = c
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER])?
            .get(0);
        if got && !self.leader.swap(true, Ordering::Relaxed) {
            log::info!(
                "fleet: {} leads (modules and retention run here)",
                self.core_name
            );
        }
        Ok(())
    }

    fn listen_loop(self: Arc<Self>, mut first: Option<Conn>) {
        let mut wait = Duration::from_millis(500);
        while !self.stopping.load(Ordering::Relaxed) {
            let conn = match first.take() {
                Some(c) => Ok(c),
                None => Conn::open(&self.url, &self.listener_name()),
            };
            let result = conn.and_then(|mut c| {
                wait = Duration::from_millis(500);
                self.session(&mut c)
            });
            self.leader.store(false, Ordering::Relaxed);
            if self.stopping.load(Ordering::Relaxed) {
                break;
            }
            if let Err(e) = result {
                log::error!("fleet: {e}; listening again in {} ms", wait.as_millis());
                *lock(&self.trouble) = Some(format!("database: {e}"));
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// One listening session; returns when the connection fails.
    fn session(&self, c: &mut Conn) -> Result<(), String> {
        let err = |e: postgres::Error| describe(&e);
        for channel in notice::CHANNELS {
            c.client()
                .batch_execute(&format!("LISTEN {channel}"))
                .map_err(err)?;
        }
        *lock(&self.trouble) = None;
        if let Some(d) = self.deliveries.get() {
            d.resync();
            // Commands whose notice came while this core was not listening.
            self.take_commands(c, d.as_ref(), None).map_err(err)?;
        }
        let renew_every = (self.lease / 4).max(Duration::from_millis(250));
        let mut last_renew = Instant::now() - renew_every;
        let mut last_try = Instant::now() - LEADER_TRY;
        let mut last_tidy = Instant::now() - TIDY_EVERY;
        while !self.stopping.load(Ordering::Relaxed) {
            if last_renew.elapsed() >= renew_every {
                renew(c, &self.core_name, self.lease, "ok").map_err(err)?;
                self.reload_holders(c).map_err(err)?;
                last_renew = Instant::now();
            }
            if self.leader.load(Ordering::Relaxed) && last_tidy.elapsed() >= TIDY_EVERY {
                tidy(c).map_err(err)?;
                last_tidy = Instant::now();
            }
            if !self.leader.load(Ordering::Relaxed) && last_try.elapsed() >= LEADER_TRY {
                self.try_lead(c).map_err(err)?;
                last_try = Instant::now();
            }
            let heard = hear(c.client()).map_err(err)?;
            for (channel, payload) in heard {
                match Notice::parse(&channel, &payload) {
                    Some(n) => self.handle(c, n).map_err(err)?,
                    None => log::debug!("fleet: malformed notice on {channel} ignored"),
                }
            }
            if c.is_closed() {
                return Err("the listening connection closed".into());
            }
        }
        Ok(())
    }

    fn handle(&self, c: &mut Conn, n: Notice) -> Result<(), postgres::Error> {
        let Some(d) = self.deliveries.get() else {
            return Ok(());
        };
        match n {
            Notice::Moved {
                core,
                node_id,
                epoch,
            } => {
                if core == self.core_name {
                    return Ok(());
                }
                if epoch == 0 {
                    let mut holders = lock(&self.holders);
                    if holders.get(&node_id) == Some(&core) {
                        holders.remove(&node_id);
                    }
                    return Ok(());
                }
                // Notices arrive late: only a hold newer than this core's
                // own closes this core's connection. A registration here
                // whose hold is still being written takes a newer epoch.
                let ours = lock(&self.held).get(&node_id).map(|&(_, e)| e);
                if ours.is_none_or(|ours| ours < epoch) {
                    lock(&self.holders).insert(node_id, core);
                    if ours.is_some() {
                        lock(&self.held).remove(&node_id);
                        d.moved_away(node_id);
                    }
                }
            }
            Notice::Node { core, node_id } if core != self.core_name => {
                let node = load_stored_node(c, node_id)?;
                d.node_changed(
                    node_id,
                    node.map(|node| SharedNode {
                        node,
                        locked_until_ms: None,
                    }),
                );
            }
            Notice::Command { core, id, .. } if core == self.core_name => {
                self.take_commands(c, d.as_ref(), Some(id))?;
            }
            Notice::Events { core, first, count } => {
                let own = if core == self.core_name {
                    self.stashed(first)
                } else {
                    None
                };
                if !d.wants_events() {
                    return Ok(());
                }
                let events = match own {
                    Some(events) => events,
                    None => fetch_events(c, first, count.min(MAX_FETCH))?,
                };
                if !events.is_empty() {
                    d.events(events);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Takes the command `id` (`None`: every command waiting for this
    /// core) out of `routed_commands` and delivers it.
    fn take_commands(
        &self,
        c: &mut Conn,
        d: &dyn Deliveries,
        id: Option<i64>,
    ) -> Result<(), postgres::Error> {
        let rows = match id {
            Some(id) => c.query(
                "DELETE FROM routed_commands WHERE id = $1 AND core_name = $2
                 RETURNING id, node_id, message",
                &[&id, &self.core_name],
            )?,
            None => c.query(
                "DELETE FROM routed_commands WHERE core_name = $1
                 RETURNING id, node_id, message",
                &[&self.core_name],
            )?,
        };
        let mut commands: Vec<(i64, i64, String)> = rows
            .iter()
            .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?, r.try_get(2).ok()?)))
            .collect();
        // In the order they were routed.
        commands.sort_unstable_by_key(|&(id, _, _)| id);
        for (id, node_id, json) in &commands {
            match serde_json::from_str::<CoreMessage>(json) {
                Ok(message) => d.command(*node_id as u64, message),
                Err(e) => log::warn!("fleet: routed command {id} is not a message: {e}"),
            }
        }
        if let (Some(id), true) = (id, commands.is_empty()) {
            // Taken already when this core listened again, or expired.
            log::debug!("fleet: routed command {id} was no longer waiting");
        }
        Ok(())
    }

    fn reload_holders(&self, c: &mut Conn) -> Result<(), postgres::Error> {
        let rows = c.query(
            "SELECT p.node_id, p.core_name FROM presence p JOIN cores k USING (core_name)
             WHERE k.lease_until > now() AND p.core_name <> $1",
            &[&self.core_name],
        )?;
        let fresh: HashMap<u64, String> = rows
            .iter()
            .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, String>(1)))
            .collect();
        *lock(&self.holders) = fresh;
        Ok(())
    }
}

/// Most notices handled per turn of the listening loop.
const NOTICES_PER_TURN: usize = 1024;

/// Waits up to 200 ms for a notice, then takes the ones already there
/// without waiting again: under a steady stream of notices the loop still
/// turns (handling them at once, renewing the lease on time).
fn hear(c: &mut Client) -> Result<Vec<(String, String)>, postgres::Error> {
    let mut heard = Vec::new();
    let mut notes = c.notifications();
    if let Some(n) = notes.timeout_iter(Duration::from_millis(200)).next()? {
        heard.push((n.channel().to_string(), n.payload().to_string()));
    }
    let mut pending = notes.iter();
    while heard.len() < NOTICES_PER_TURN {
        match pending.next()? {
            Some(n) => heard.push((n.channel().to_string(), n.payload().to_string())),
            None => break,
        }
    }
    Ok(heard)
}

/// Removes what nothing will use: routed commands no core took within a
/// minute (their core died, or their notice was lost with its connection),
/// and lockout rows without a failure or a lockout for a day.
fn tidy(c: &mut Conn) -> Result<(), postgres::Error> {
    let stale = c.execute(
        "DELETE FROM routed_commands WHERE created < now() - interval '1 minute'",
        &[],
    )?;
    if stale > 0 {
        log::warn!("fleet: {stale} routed commands not taken within a minute removed");
    }
    let forgotten = unix_ms().saturating_sub(LOCKOUT_MEMORY_MS);
    c.execute(
        "DELETE FROM lockouts WHERE window_start < $1 AND locked_until < $1",
        &[&forgotten],
    )?;
    Ok(())
}

/// The core's clock in unix ms, as the lockouts record it.
fn unix_ms() -> i64 {
    let (secs, nanos) = honeybee_proto::time::now_unix();
    secs.saturating_mul(1000)
        .saturating_add(i64::from(nanos / 1_000_000))
}

/// Milliseconds as the database stores them.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Extends `core`'s lease.
fn renew(c: &mut Conn, core: &str, lease: Duration, health: &str) -> Result<(), postgres::Error> {
    let secs = lease.as_secs_f64();
    c.execute(
        "INSERT INTO cores (core_name, lease_until, health)
         VALUES ($1, now() + make_interval(secs => $2), $3)
         ON CONFLICT (core_name) DO UPDATE SET lease_until = EXCLUDED.lease_until,
             health = EXCLUDED.health",
        &[&core, &secs, &health],
    )
    .map(|_| ())
}

/// The events of one committed batch, in id order, as `PotEvent`s.
fn fetch_events(
    c: &mut Conn,
    first: i64,
    count: i64,
) -> Result<Vec<(PotEvent, i64)>, postgres::Error> {
    let rows = c.query(
        "SELECT node_id, seq, pot_id, pot_type, event_type, timestamp, data, id FROM events
         WHERE id >= $1 AND id < $2 ORDER BY id",
        &[&first, &(first.saturating_add(count))],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let event = PotEvent {
                node_id: r.get::<_, i64>(0) as u64,
                seq: r.get::<_, Option<i64>>(1).map(|s| s as u64),
                pot_id: r.get(2),
                pot_type: r.get(3),
                event_type: r.get(4),
                timestamp: r.get(5),
                data: serde_json::from_str(r.get::<_, &str>(6)).unwrap_or_default(),
            };
            (event, r.get::<_, i64>(7))
        })
        .collect())
}

impl Fleet for SharedFleet {
    fn core_name(&self) -> &str {
        &self.core_name
    }

    fn shared(&self) -> bool {
        true
    }

    fn load_node(&self, node_id: u64, source: IpAddr) -> Result<Option<SharedNode>, StoreError> {
        self.with("reading the node's shared state", |c| {
            let Some(node) = load_stored_node(c, node_id)? else {
                return Ok(None);
            };
            let locked: Option<i64> = c
                .query_one(
                    LOCKED_UNTIL,
                    &[&(node_id as i64), &source.to_string(), &OVERFLOW_SOURCE],
                )?
                .try_get(0)?;
            Ok(Some(SharedNode {
                node,
                locked_until_ms: locked.map(|l| l.max(0) as u64),
            }))
        })
    }

    fn claim_step(&self, node_id: u64, step: u64, source: IpAddr) -> Result<bool, StoreError> {
        self.with("claiming a TOTP step", |c| {
            let won: i64 = c
                .query_one(
                    CLAIM_STEP,
                    &[&(node_id as i64), &(step as i64), &source.to_string()],
                )?
                .try_get(0)?;
            Ok(won == 1)
        })
    }

    fn count_failure(
        &self,
        node_id: u64,
        source: IpAddr,
        policy: &LockoutPolicy,
        now_ms: u64,
    ) -> Result<Option<Duration>, StoreError> {
        let (id, now) = (node_id as i64, i64::try_from(now_ms).unwrap_or(i64::MAX));
        self.with("counting a failed TOTP check", |c| {
            let row = c.query_one(
                COUNT_FAILURE,
                &[
                    &id,
                    &source.to_string(),
                    &now,
                    &millis(policy.window),
                    &(MAX_SOURCES_PER_NODE as i64),
                    &OVERFLOW_SOURCE,
                ],
            )?;
            let counted: String = row.try_get(0)?;
            let failures: i32 = row.try_get(1)?;
            let earlier: i32 = row.try_get(2)?;
            let count = |n: i32| u32::try_from(n).unwrap_or(0);
            let Some(period) = policy.verdict(count(failures), count(earlier)) else {
                return Ok(None);
            };
            let until = now.saturating_add(millis(period));
            let imposed = c.execute(
                IMPOSE,
                &[&id, &counted, &until, &i64::from(policy.failures)],
            )?;
            Ok((imposed == 1).then_some(period))
        })
    }

    fn hold(&self, node_id: u64, conn_id: u64) -> Result<(), StoreError> {
        lock(&self.holders).remove(&node_id);
        // One statement: the hold and its notice commit together.
        let epoch = self.with("recording where the node is", |c| {
            let row = c.query_one(
                "WITH held AS (
                     INSERT INTO presence (node_id, core_name, connection, epoch)
                     VALUES ($1, $2, $3, nextval('presence_epoch'))
                     ON CONFLICT (node_id) DO UPDATE SET core_name = EXCLUDED.core_name,
                         connection = EXCLUDED.connection, epoch = EXCLUDED.epoch,
                         since = now()
                     RETURNING epoch)
                 SELECT epoch, pg_notify($4, $2 || E'\\t' || $1::TEXT || E'\\t' || epoch::TEXT)
                 FROM held",
                &[
                    &(node_id as i64),
                    &self.core_name,
                    &(conn_id as i64),
                    &notice::MOVED,
                ],
            )?;
            Ok(row.get::<_, i64>(0) as u64)
        })?;
        lock(&self.held).insert(node_id, (conn_id, epoch));
        Ok(())
    }

    fn release(&self, node_id: u64, conn_id: u64) {
        {
            let mut held = lock(&self.held);
            if held.get(&node_id).is_some_and(|&(c, _)| c == conn_id) {
                held.remove(&node_id);
            }
        }
        let result = self.with("releasing the node", |c| {
            let n = c.execute(
                "DELETE FROM presence WHERE node_id = $1 AND core_name = $2 AND connection = $3",
                &[&(node_id as i64), &self.core_name, &(conn_id as i64)],
            )?;
            if n > 0 {
                self.notify(
                    c,
                    &Notice::Moved {
                        core: self.core_name.clone(),
                        node_id,
                        epoch: 0,
                    },
                )?;
            }
            Ok(())
        });
        if let Err(e) = result {
            log::warn!("fleet: {e}");
        }
    }

    fn holder(&self, node_id: u64) -> Option<String> {
        lock(&self.holders).get(&node_id).cloned()
    }

    fn route(&self, node_id: u64, message: &CoreMessage) -> Result<Routed, StoreError> {
        let json = serde_json::to_string(message)
            .map_err(|e| StoreError(format!("routing a command: {e}")))?;
        self.with("routing a command", |c| {
            let queued = c.query_opt(
                ROUTE,
                &[&(node_id as i64), &self.core_name, &json, &notice::COMMAND],
            )?;
            Ok(match queued {
                Some(row) => Routed::Sent {
                    core_name: row.try_get(0)?,
                },
                None => Routed::NotHeld,
            })
        })
    }

    fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    fn cores(&self, _local_nodes: u64) -> Result<Vec<CoreView>, StoreError> {
        self.with("listing the cores", |c| {
            // The leader's listening session holds the advisory lock and is
            // named after its core.
            let leader: Option<String> = c
                .query_opt(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                     WHERE l.locktype = 'advisory' AND l.granted
                       AND ((l.classid::bigint << 32) | l.objid::bigint) = $1
                     LIMIT 1",
                    &[&LEADER],
                )?
                .and_then(|r| r.get::<_, Option<String>>(0))
                .and_then(|a| a.strip_prefix("honeybee-core/").map(String::from));
            let rows = c.query(
                "SELECT k.core_name, k.lease_until > now(), k.health,
                        to_char(k.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                        (SELECT COUNT(*) FROM presence p WHERE p.core_name = k.core_name)
                 FROM cores k WHERE k.lease_until > now() - interval '1 day'
                 ORDER BY k.core_name",
                &[],
            )?;
            let mut seen = HashSet::new();
            Ok(rows
                .iter()
                .filter(|r| seen.insert(r.get::<_, String>(0)))
                .map(|r| {
                    let name: String = r.get(0);
                    CoreView {
                        leader: leader.as_deref() == Some(name.as_str()),
                        core_name: name,
                        alive: r.get(1),
                        health: r.get(2),
                        started_at: r.get(3),
                        nodes: r.get::<_, i64>(4) as u64,
                    }
                })
                .collect())
        })
    }

    fn trouble(&self) -> Option<String> {
        lock(&self.trouble).clone()
    }
}
