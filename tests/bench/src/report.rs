//! The figures, as lines while running and a table at the end.

pub struct Row {
    pub nodes: usize,
    pub tls: bool,
    pub enroll_per_sec: f64,
    pub enroll_secs: f64,
    pub register_per_sec: f64,
    pub register_secs: f64,
    pub register_cpu_us: f64,
    pub heartbeats: u64,
    pub heartbeats_counted: u64,
    pub heartbeat_secs: f64,
    pub heartbeat_cpu_us: f64,
    pub connected: u64,
    pub idle_rss_mb: f64,
    pub rss_mb: f64,
    pub hwm_mb: f64,
    /// "SQLite", or "PostgreSQL, N cores" (`rss_mb`/`hwm_mb` are then the
    /// largest core's, and CPU figures the sum of all cores).
    pub store: String,
    /// Each core's RSS after the heartbeats, MB.
    pub core_rss_mb: Vec<f64>,
    /// PostgreSQL's CPU per registration and per heartbeat (µs), when the
    /// benchmark runs the server.
    pub pg_register_cpu_us: Option<f64>,
    pub pg_heartbeat_cpu_us: Option<f64>,
}

fn transport(r: &Row) -> &'static str {
    if r.tls {
        "TLS 1.3"
    } else {
        "TCP"
    }
}

/// The figures of runs over PostgreSQL (several cores): CPU per
/// registration and heartbeat of all cores together and of PostgreSQL, and
/// each core's RSS.
pub fn print_fleet_table(rows: &[Row]) {
    println!();
    println!("| nodes | transport | store | enrol/s | TOTP register/s | all registered (s) | µs CPU/registration: cores + PostgreSQL | µs CPU/heartbeat: cores + PostgreSQL | RSS per core MB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.1} + {} | {:.2} + {} | {} |",
            r.nodes,
            transport(r),
            r.store,
            r.enroll_per_sec,
            r.register_per_sec,
            r.register_secs,
            r.register_cpu_us,
            us(r.pg_register_cpu_us),
            r.heartbeat_cpu_us,
            us(r.pg_heartbeat_cpu_us),
            mb_list(&r.core_rss_mb)
        );
    }
}

pub fn print_row(r: &Row) {
    println!(
        "{} nodes over {}: enrolled in {:.2} s ({:.0}/s); registered with TOTP in {:.2} s ({:.0}/s, {:.1} µs core CPU each); \
         {} heartbeats in {:.1} s (core counted {}), {:.2} µs core CPU each; {} connected; core RSS {:.1} MB (idle {:.1}, peak {:.1})",
        r.nodes, transport(r), r.enroll_secs, r.enroll_per_sec, r.register_secs, r.register_per_sec, r.register_cpu_us,
        r.heartbeats, r.heartbeat_secs, r.heartbeats_counted, r.heartbeat_cpu_us, r.connected, r.rss_mb, r.idle_rss_mb, r.hwm_mb
    );
    if r.store != "SQLite" {
        println!(
            "  {}: core RSS {} MB; PostgreSQL CPU {} µs per registration, {} µs per heartbeat",
            r.store,
            mb_list(&r.core_rss_mb),
            us(r.pg_register_cpu_us),
            us(r.pg_heartbeat_cpu_us)
        );
    }
}

fn mb_list(v: &[f64]) -> String {
    v.iter()
        .map(|m| format!("{m:.1}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn us(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}"))
}

pub fn print_table(rows: &[Row]) {
    if rows.iter().any(|r| r.store != "SQLite") {
        print_fleet_table(rows);
        return;
    }
    println!();
    println!("| nodes | transport | enrol/s | TOTP register/s | all registered (s) | µs CPU/registration | µs CPU/heartbeat | core RSS MB | peak MB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {:.1} | {:.2} | {:.1} | {:.1} |",
            r.nodes,
            transport(r),
            r.enroll_per_sec,
            r.register_per_sec,
            r.register_secs,
            r.register_cpu_us,
            r.heartbeat_cpu_us,
            r.rss_mb,
            r.hwm_mb
        );
    }
    println!("| 5000 | TCP (reference: existing tokio core, no persistence) | – | – | – | – | ~11 | ~38 | – |");
}

/// "met" or "MISSED", beside a target.
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}
