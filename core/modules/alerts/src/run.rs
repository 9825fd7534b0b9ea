//! The running module: the stream feeds the engine on this thread; alerts
//! go to the channels' outboxes, each drained by its own thread; the state
//! is saved every second when it changed, and figures are reported to the
//! core every `report_interval`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::compose::now_ms;
use crate::config::Config;
use crate::core_api::CoreApi;
use crate::delivery::{self, Queue};
use crate::engine::{Engine, Outgoing, Route};
use crate::observed::Observed;
use crate::outbox::Outbox;
use crate::secret::Secret;
use crate::state::{Saved, StateDir};
use crate::stats::Stats;
use crate::stream::{self, End, Handler, Input};

/// Where the module connects and keeps its state.
pub struct Setup {
    /// The stream port (`host:port`).
    pub stream: String,
    /// The REST API (`host:port`), if known.
    pub api: Option<String>,
    /// The API token.
    pub token: Secret,
    /// The state directory.
    pub state_dir: std::path::PathBuf,
    /// The name it registers as.
    pub name: String,
}

struct App {
    engine: Engine,
    state: StateDir,
    cursor: Option<String>,
    queues: Vec<Queue>,
    stats: Stats,
    api: Option<CoreApi>,
    stop: Arc<AtomicBool>,
    dirty: bool,
    saved_at: Instant,
    reported_at: Instant,
    report_every: Duration,
    report_error: Option<String>,
    name: String,
}

/// Runs until `stop` is set; an error only for what retrying cannot fix.
pub fn run(config: Config, setup: Setup, stop: Arc<AtomicBool>) -> Result<(), String> {
    let (state, saved) = StateDir::open(&setup.state_dir)?;
    let stats = Stats::default();
    let mut queues = Vec::new();
    let mut workers = Vec::new();
    let mut routes = Vec::new();
    for spec in &config.channels {
        let channel = spec
            .open()
            .map_err(|e| format!("channel {:?}: {e}", spec.common.name))?;
        let queue = Queue::new(Outbox::open(
            &state.outbox(&spec.common.name),
            config.max_outbox,
        )?);
        let index = stats.add(&spec.common.name, spec.kind);
        let waiting = queue.lock().len() as u64;
        stats.with(index, |s| s.queued = waiting);
        workers.push(
            delivery::spawn(
                index,
                spec.common.name.clone(),
                channel,
                queue.clone(),
                stats.clone(),
                stop.clone(),
            )
            .map_err(|e| format!("starting channel {:?}: {e}", spec.common.name))?,
        );
        queues.push(queue);
        routes.push(Route {
            name: spec.common.name.clone(),
            min_severity: spec.min_severity,
            max_per_minute: spec.max_per_minute,
        });
    }
    let api = match &setup.api {
        Some(a) => Some(CoreApi::new(a, setup.token.clone())?),
        None => None,
    };
    let Saved { cursor, memory } = saved;
    let mut app = App {
        engine: Engine::new(config.rules, routes, memory),
        state,
        cursor,
        queues,
        stats,
        api,
        stop: stop.clone(),
        dirty: false,
        saved_at: Instant::now(),
        reported_at: Instant::now(),
        report_every: config.report_interval,
        report_error: None,
        name: setup.name.clone(),
    };
    log::info!(
        "alerts: {} rules, {} channels; stream {}, resuming {}",
        app.engine.rule_count(),
        app.queues.len(),
        setup.stream,
        app.cursor
            .as_deref()
            .map_or("from live events".into(), |c| format!("after event {c}"))
    );
    app.catch_up_statuses();
    let mut backoff = Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match stream::session(&setup.stream, &setup.token, &setup.name, &mut app) {
            End::Stopped => break,
            End::BadToken => log::error!(
                "stream {}: the core refused the API token; retrying",
                setup.stream
            ),
            End::Lost(e) => log::warn!("{e}; reconnecting"),
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_secs(1);
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            app.idle();
            std::thread::sleep(Duration::from_millis(200));
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    app.save();
    for q in &app.queues {
        q.notify();
    }
    for w in workers {
        let _ = w.join();
    }
    app.report();
    Ok(())
}

impl App {
    fn observe(&mut self, o: Observed) {
        let App {
            engine,
            state,
            queues,
            stats,
            ..
        } = self;
        // Each alert goes to its outbox (on disk) as soon as it is made:
        // none waits in memory for the others.
        engine.observe_each(&o, now_ms(), &mut |x| queue(state, queues, stats, x));
        self.dirty = true;
    }

    fn name_of(&mut self, node_id: u64) -> Option<String> {
        self.api.as_mut().and_then(|a| a.node_name(node_id))
    }

    /// Alerts for nodes whose status changed while the module was away.
    fn catch_up_statuses(&mut self) {
        let Some(api) = &self.api else { return };
        match api.node_statuses() {
            Ok(list) => {
                for (id, status) in list {
                    self.node_status(id, &status);
                }
            }
            Err(e) => log::warn!("reading node statuses: {e}"),
        }
    }

    fn node_status(&mut self, node_id: u64, status: &str) {
        if let Some(previous) = self.engine.status_change(node_id.to_string(), status) {
            let name = self.name_of(node_id);
            let o = Observed::node_status(
                node_id,
                status,
                previous.as_deref(),
                crate::compose::time(now_ms()),
            )
            .with_node_name(name);
            self.observe(o);
        }
    }

    fn save(&mut self) {
        let saved = Saved {
            cursor: self.cursor.clone(),
            memory: std::mem::take(&mut self.engine.memory),
        };
        if let Err(e) = self.state.save(&saved) {
            log::error!("{e}");
        }
        self.engine.memory = saved.memory;
        self.dirty = false;
        self.saved_at = Instant::now();
        release_free_memory();
    }

    fn report(&mut self) {
        self.reported_at = Instant::now();
        let Some(api) = &self.api else { return };
        let body = {
            let all = self.stats.lock();
            let channels: Vec<_> = all
                .iter()
                .map(|(name, kind, s)| {
                    json!({
                        "name": name, "type": kind, "sent": s.sent, "failed": s.failed,
                        "retries": s.retries, "dropped": s.dropped, "queued": s.queued,
                        "latency_ms_p50": s.latency(0.5), "latency_ms_p99": s.latency(0.99),
                        "last_error": s.last_error,
                    })
                })
                .collect();
            // The newest 200 overall: all the core keeps, and a report of
            // many channels stays far below its 256 KiB limit.
            let mut recent: Vec<_> = all
                .iter()
                .flat_map(|(_, _, s)| s.recent.iter().cloned())
                .collect();
            recent.sort_by(|a, b| b.time.cmp(&a.time));
            recent.truncate(200);
            json!({"module": self.name, "channels": channels, "recent": recent})
        };
        match api.report(&body) {
            // Said once per kind of failure, not every few seconds.
            Err(e) if self.report_error.as_deref() != Some(e.as_str()) => {
                log::warn!("reporting to the core: {e}");
                self.report_error = Some(e);
            }
            Err(_) => {}
            Ok(()) => self.report_error = None,
        }
    }
}

impl Handler for App {
    fn input(&mut self, input: Input) {
        match input {
            Input::Event(event, cursor) => {
                if let (Some(c), Some(last)) = (cursor_number(&cursor), cursor_number(&self.cursor))
                {
                    if c <= last {
                        return;
                    }
                }
                let name = self.name_of(event.node_id);
                let o = Observed::from_event(event, cursor.clone()).with_node_name(name);
                self.observe(o);
                if cursor.is_some() {
                    self.cursor = cursor;
                }
            }
            Input::NodeStatus(u) => self.node_status(u.node_id, u.status.as_str()),
            Input::PotStatus(u) => {
                let key = format!("{}/{}", u.node_id, u.pot_id);
                if let Some(previous) = self.engine.status_change(key, u.status.as_str()) {
                    let name = self.name_of(u.node_id);
                    let o = Observed::pot_status(
                        u.node_id,
                        &u.pot_id,
                        &u.pot_type,
                        u.status.as_str(),
                        previous.as_deref(),
                        u.message.as_deref(),
                        crate::compose::time(now_ms()),
                    )
                    .with_node_name(name);
                    self.observe(o);
                }
            }
        }
    }

    fn idle(&mut self) {
        let App {
            engine,
            state,
            queues,
            stats,
            dirty,
            ..
        } = self;
        engine.tick_each(now_ms(), &mut |x| {
            *dirty = true;
            queue(state, queues, stats, x);
        });
        if self.dirty && self.saved_at.elapsed() >= Duration::from_secs(1) {
            self.save();
        }
        if self.reported_at.elapsed() >= self.report_every {
            self.report();
        }
    }

    fn cursor(&self) -> Option<String> {
        self.cursor.clone()
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn forget_cursor(&mut self) {
        self.cursor = None;
        self.dirty = true;
    }
}

/// Hands the allocator's free pages back to the system. Why: what the
/// module holds is small and bounded (under a 100,000-event burst heaptrack
/// measured a peak of 1.5–2.3 MB in use), but glibc keeps the pages freed
/// between the long-lived windows, and with the transient JSON of every
/// event and alert that retention, not the data, made the RSS climb past
/// 10 MB. Called with the save: at most once a second, and only while
/// events or alerts come. musl's allocator returns pages by itself.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; no pointer of
    // ours is touched.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Writes `o` to its channel's outbox, unless it was queued before.
fn queue(state: &mut StateDir, queues: &[Queue], stats: &Stats, o: Outgoing) {
    let key = format!("{}#{}", o.alert.id, o.channel);
    match state.first_time(&key) {
        Ok(false) => return,
        Ok(true) => {}
        Err(e) => log::warn!("{e}"),
    }
    let Some(queue) = queues.get(o.channel) else {
        return;
    };
    let pushed = queue.lock().push(&o.alert);
    match pushed {
        Ok(dropped) => {
            if dropped > 0 {
                stats.with(o.channel, |s| s.dropped += dropped);
            }
            let len = queue.lock().len() as u64;
            stats.with(o.channel, |s| s.queued = len);
            queue.notify();
        }
        Err(e) => log::error!("{e}"),
    }
}

fn cursor_number(c: &Option<String>) -> Option<u64> {
    c.as_deref().and_then(|c| c.parse().ok())
}
