//! Summary tables for statistics over long ranges: for every hour and every
//! day (UTC, by the event's own time), how many events there were, and per
//! dimension (source, username, password, command, credential pair, event
//! type, country, AS number) how many carried each value.
//!
//! Every backend keeps two tables of the same shape, `rollup_hour` and
//! `rollup_day` (`dim`, `bucket`, `value`, `n`), updated by the store
//! writer in the transaction that stores the events, and lowered again by
//! retention for each event it deletes, so that counts stay exact. What is
//! added or taken away is worked out here, once, as a [`Delta`].

use std::collections::HashMap;

use crate::store::event_row::EventRecord;

/// Microseconds in an hour.
pub const HOUR_US: i64 = 3_600_000_000;
/// Microseconds in a day.
pub const DAY_US: i64 = 86_400_000_000;
/// Longest value kept in a summary (longer ones are cut, with `…`).
pub const MAX_VALUE: usize = 512;

/// What a summary row counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// Every event (value `""`).
    All = 0,
    /// `data.src_ip`.
    SrcIp = 1,
    /// `data.username`.
    Username = 2,
    /// `data.password`.
    Password = 3,
    /// `data.input`.
    Command = 4,
    /// `username:password`, when both are present.
    Credential = 5,
    /// The event type.
    EventType = 6,
    /// The source's country (ISO code).
    Country = 7,
    /// The source's AS number (as decimal text).
    Asn = 8,
}

impl Dim {
    /// Every dimension but [`Dim::All`].
    pub const VALUES: [Dim; 8] = [
        Dim::SrcIp,
        Dim::Username,
        Dim::Password,
        Dim::Command,
        Dim::Credential,
        Dim::EventType,
        Dim::Country,
        Dim::Asn,
    ];

    /// The number stored in `dim`.
    pub fn id(self) -> i64 {
        self as i64
    }

    /// Its SQL expression on the `events` table, the same in SQLite and
    /// PostgreSQL (constants, never input).
    pub fn expression(self) -> &'static str {
        match self {
            Dim::All => "''",
            Dim::SrcIp => "src_ip",
            Dim::Username => "username",
            Dim::Password => "password",
            Dim::Command => "input",
            Dim::Credential => "username || ':' || password",
            Dim::EventType => "event_type",
            Dim::Country => "country",
            Dim::Asn => "CAST(asn AS TEXT)",
        }
    }
}

/// Which table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// `rollup_hour`, buckets of [`HOUR_US`].
    Hour,
    /// `rollup_day`, buckets of [`DAY_US`].
    Day,
}

/// The `(value, n)` rows of `dim` in every span (a tier and a bucket
/// range), as one `UNION ALL` both backends sum over. Every piece is a
/// number or a constant of this crate, so the text is safe to splice.
pub fn spans_sql(dim: Dim, spans: &[(Tier, i64, i64)]) -> String {
    spans
        .iter()
        .map(|(tier, a, b)| {
            format!(
                "SELECT value, n FROM {} WHERE dim = {} AND bucket >= {a} AND bucket < {b}",
                tier.table(),
                dim.id()
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

impl Tier {
    /// The table's name (a constant, spliced into SQL).
    pub fn table(self) -> &'static str {
        match self {
            Tier::Hour => "rollup_hour",
            Tier::Day => "rollup_day",
        }
    }

    /// Microseconds per bucket.
    pub fn width(self) -> i64 {
        match self {
            Tier::Hour => HOUR_US,
            Tier::Day => DAY_US,
        }
    }

    /// The bucket holding `time_us` (floor division: before 1970 too).
    pub fn bucket(self, time_us: i64) -> i64 {
        time_us.div_euclid(self.width())
    }
}

/// The summary key of one value: cut to [`MAX_VALUE`] bytes.
pub fn value_key(v: &str) -> String {
    if v.len() <= MAX_VALUE {
        v.to_string()
    } else {
        crate::node::budget::clip(v, MAX_VALUE)
    }
}

/// The columns of one event that the summaries count.
#[derive(Clone, Copy, Debug, Default)]
pub struct Keys<'a> {
    /// Unix microseconds.
    pub time_us: i64,
    /// `data.src_ip`.
    pub src_ip: Option<&'a str>,
    /// `data.username`.
    pub username: Option<&'a str>,
    /// `data.password`.
    pub password: Option<&'a str>,
    /// `data.input`.
    pub input: Option<&'a str>,
    /// Event type.
    pub event_type: Option<&'a str>,
    /// Country code.
    pub country: Option<&'a str>,
    /// AS number.
    pub asn: Option<i64>,
}

impl<'a> Keys<'a> {
    /// The keys of an event about to be stored.
    pub fn of(e: &'a EventRecord) -> Keys<'a> {
        Keys {
            time_us: e.time_us,
            src_ip: e.src_ip.as_deref(),
            username: e.username.as_deref(),
            password: e.password.as_deref(),
            input: e.input.as_deref(),
            event_type: Some(&e.event_type),
            country: e.geo().country.as_deref(),
            asn: e.geo().asn,
        }
    }
}

/// Changes to the summary tables: `(tier, dim, bucket, value) → count`.
#[derive(Clone, Debug, Default)]
pub struct Delta {
    /// The counts to add (negative: to take away).
    pub rows: HashMap<(Tier, Dim, i64, String), i64>,
    /// Names seen for countries and AS numbers: `(dim, value) → name`.
    pub labels: HashMap<(Dim, String), String>,
}

impl Delta {
    /// Counts one event, `sign` times (+1 stored, -1 deleted).
    pub fn add(&mut self, k: &Keys, sign: i64) {
        self.add_to(k, sign, &[Tier::Hour, Tier::Day]);
    }

    /// Counts one event in these tables only.
    pub fn add_to(&mut self, k: &Keys, sign: i64, tiers: &[Tier]) {
        let credential = match (k.username, k.password) {
            (Some(u), Some(p)) => Some(format!("{u}:{p}")),
            _ => None,
        };
        let asn = k.asn.map(|a| a.to_string());
        let values: [(Dim, Option<&str>); 9] = [
            (Dim::All, Some("")),
            (Dim::SrcIp, k.src_ip),
            (Dim::Username, k.username),
            (Dim::Password, k.password),
            (Dim::Command, k.input),
            (Dim::Credential, credential.as_deref()),
            (Dim::EventType, k.event_type),
            (Dim::Country, k.country),
            (Dim::Asn, asn.as_deref()),
        ];
        for &tier in tiers {
            let bucket = tier.bucket(k.time_us);
            for (dim, value) in values {
                let Some(value) = value else { continue };
                *self
                    .rows
                    .entry((tier, dim, bucket, value_key(value)))
                    .or_insert(0) += sign;
            }
        }
    }

    /// Counts a batch of stored events, with the names of their countries
    /// and AS numbers. Counted first by hour over the events' own strings
    /// (no copy per event), then each distinct value copied once and its
    /// hours added up into days.
    pub fn of_events<'a>(events: &[&'a EventRecord]) -> Delta {
        let mut hours: HashMap<(Dim, i64, &'a str), i64> = HashMap::with_capacity(events.len());
        let mut credentials: HashMap<(i64, &'a str, &'a str), i64> = HashMap::new();
        let mut asns: HashMap<(i64, i64), i64> = HashMap::new();
        let mut countries: HashMap<&'a str, &'a str> = HashMap::new();
        let mut orgs: HashMap<i64, &'a str> = HashMap::new();
        let mut d = Delta::default();
        for &e in events {
            let geo = e.geo();
            let h = Tier::Hour.bucket(e.time_us);
            for (dim, v) in [
                (Dim::SrcIp, &e.src_ip),
                (Dim::Username, &e.username),
                (Dim::Password, &e.password),
                (Dim::Command, &e.input),
                (Dim::Country, &geo.country),
            ] {
                if let Some(v) = v {
                    *hours.entry((dim, h, v.as_str())).or_insert(0) += 1;
                }
            }
            *hours.entry((Dim::All, h, "")).or_insert(0) += 1;
            *hours
                .entry((Dim::EventType, h, e.event_type.as_str()))
                .or_insert(0) += 1;
            if let (Some(u), Some(p)) = (&e.username, &e.password) {
                *credentials.entry((h, u.as_str(), p.as_str())).or_insert(0) += 1;
            }
            if let Some(a) = geo.asn {
                *asns.entry((h, a)).or_insert(0) += 1;
            }
            if let (Some(c), Some(name)) = (&geo.country, &geo.country_name) {
                countries.entry(c.as_str()).or_insert(name.as_str());
            }
            if let (Some(a), Some(org)) = (geo.asn, &geo.as_org) {
                orgs.entry(a).or_insert(org.as_str());
            }
        }
        for (c, name) in countries {
            d.labels
                .insert((Dim::Country, c.to_string()), name.to_string());
        }
        for (a, org) in orgs {
            d.labels.insert((Dim::Asn, a.to_string()), org.to_string());
        }
        let mut put = |dim: Dim, h: i64, value: String, n: i64| {
            let day = (h * HOUR_US).div_euclid(DAY_US);
            *d.rows
                .entry((Tier::Day, dim, day, value.clone()))
                .or_insert(0) += n;
            *d.rows.entry((Tier::Hour, dim, h, value)).or_insert(0) += n;
        };
        for ((dim, h, v), n) in hours {
            put(dim, h, value_key(v), n);
        }
        for ((h, u, p), n) in credentials {
            put(Dim::Credential, h, value_key(&format!("{u}:{p}")), n);
        }
        for ((h, a), n) in asns {
            put(Dim::Asn, h, a.to_string(), n);
        }
        d
    }

    /// The rows, sorted (so that concurrent writers lock rows in one order),
    /// without the ones that cancel out.
    pub fn sorted(&self) -> Vec<(Tier, Dim, i64, &str, i64)> {
        let mut rows: Vec<_> = self
            .rows
            .iter()
            .filter(|(_, &n)| n != 0)
            .map(|((t, d, b, v), &n)| (*t, *d, *b, v.as_str(), n))
            .collect();
        rows.sort_by(|a, b| (a.0 as u8, a.1, a.2, a.3).cmp(&(b.0 as u8, b.1, b.2, b.3)));
        rows
    }

    /// Adds `other` to this.
    pub fn merge(&mut self, other: Delta) {
        if self.rows.is_empty() {
            self.rows = other.rows;
        } else {
            for (k, n) in other.rows {
                *self.rows.entry(k).or_insert(0) += n;
            }
        }
        self.labels.extend(other.labels);
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.rows.values().all(|&n| n == 0) && self.labels.is_empty()
    }
}

/// Stored events not yet written to the summary tables, counted by
/// dimension, hour and value (days are added up from the hours when they
/// are written). A value already counted costs a lookup, no copy.
#[derive(Debug, Default)]
pub struct Pending {
    hours: HashMap<(Dim, i64), HashMap<String, i64>>,
    countries: HashMap<String, String>,
    orgs: HashMap<i64, String>,
    rows: usize,
    buf: String,
}

impl Pending {
    fn bump(&mut self, dim: Dim, h: i64, value: &str, sign: i64) {
        let inner = self.hours.entry((dim, h)).or_default();
        match inner.get_mut(value) {
            Some(n) => *n += sign,
            None => {
                inner.insert(value_key(value), sign);
                self.rows += 1;
            }
        }
    }

    /// Counts one event's keys, `sign` times.
    pub fn count_keys(&mut self, k: &Keys, sign: i64) {
        use std::fmt::Write;
        let h = Tier::Hour.bucket(k.time_us);
        self.bump(Dim::All, h, "", sign);
        for (dim, v) in [
            (Dim::EventType, k.event_type),
            (Dim::SrcIp, k.src_ip),
            (Dim::Username, k.username),
            (Dim::Password, k.password),
            (Dim::Command, k.input),
            (Dim::Country, k.country),
        ] {
            if let Some(v) = v {
                self.bump(dim, h, v, sign);
            }
        }
        let mut buf = std::mem::take(&mut self.buf);
        if let (Some(u), Some(p)) = (k.username, k.password) {
            buf.clear();
            buf.push_str(u);
            buf.push(':');
            buf.push_str(p);
            self.bump(Dim::Credential, h, &buf, sign);
        }
        if let Some(a) = k.asn {
            buf.clear();
            let _ = write!(buf, "{a}");
            self.bump(Dim::Asn, h, &buf, sign);
        }
        self.buf = buf;
    }

    /// The `k` most frequent values of `dim` over every hour counted
    /// (count descending, then value).
    pub fn top(&self, dim: Dim, k: usize) -> Vec<(String, u64)> {
        let mut sums: HashMap<&str, i64> = HashMap::new();
        for ((d, _), values) in &self.hours {
            if *d == dim {
                for (v, n) in values {
                    *sums.entry(v.as_str()).or_insert(0) += n;
                }
            }
        }
        let mut all: Vec<(String, u64)> = sums
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(v, n)| (v.to_string(), n as u64))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    /// Counts `events`, `sign` times (-1 takes back a batch that did not
    /// commit).
    pub fn count(&mut self, events: &[&EventRecord], sign: i64) {
        for &e in events {
            self.count_keys(&Keys::of(e), sign);
            let geo = e.geo();
            if sign > 0 {
                if let (Some(c), Some(name)) = (&geo.country, &geo.country_name) {
                    if !self.countries.contains_key(c.as_str()) {
                        self.countries.insert(c.clone(), name.clone());
                    }
                }
                if let (Some(a), Some(org)) = (geo.asn, &geo.as_org) {
                    self.orgs.entry(a).or_insert_with(|| org.clone());
                }
            }
        }
    }

    /// Distinct (dimension, hour, value) rows waiting.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Forgets everything (once written).
    pub fn clear(&mut self) {
        self.hours.clear();
        self.countries.clear();
        self.orgs.clear();
        self.rows = 0;
    }

    /// What to write: the hour rows and the day rows they add up to.
    pub fn to_delta(&self) -> Delta {
        let mut d = Delta::default();
        for ((dim, h), values) in &self.hours {
            let day = (h * HOUR_US).div_euclid(DAY_US);
            for (v, &n) in values {
                if n == 0 {
                    continue;
                }
                *d.rows.entry((Tier::Day, *dim, day, v.clone())).or_insert(0) += n;
                d.rows.insert((Tier::Hour, *dim, *h, v.clone()), n);
            }
        }
        for (c, name) in &self.countries {
            d.labels.insert((Dim::Country, c.clone()), name.clone());
        }
        for (a, org) in &self.orgs {
            d.labels.insert((Dim::Asn, a.to_string()), org.clone());
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_counts_once_per_dimension_and_tier_and_cancels_out() {
        let k = Keys {
            time_us: 2 * DAY_US + 3 * HOUR_US + 5,
            src_ip: Some("81.2.69.160"),
            username: Some("root"),
            password: Some("x"),
            input: None,
            event_type: Some("cowrie.login.failed"),
            country: Some("GB"),
            asn: Some(20712),
        };
        let mut d = Delta::default();
        d.add(&k, 1);
        d.add(&k, 1);
        assert_eq!(d.rows.len(), 2 * 8, "input is absent");
        assert_eq!(
            d.rows
                .get(&(Tier::Hour, Dim::Credential, 51, "root:x".into())),
            Some(&2)
        );
        assert_eq!(
            d.rows.get(&(Tier::Day, Dim::Asn, 2, "20712".into())),
            Some(&2)
        );
        assert_eq!(
            d.rows.get(&(Tier::Day, Dim::All, 2, String::new())),
            Some(&2)
        );
        d.add(&k, -1);
        d.add(&k, -1);
        assert!(d.is_empty());
    }

    #[test]
    fn a_batch_counts_as_its_events_one_by_one() {
        let mut events = Vec::new();
        for i in 0..50i64 {
            let mut e = EventRecord::new(
                1,
                honeybee_proto::PotEvent {
                    node_id: 1,
                    pot_id: "p".into(),
                    pot_type: "t".into(),
                    event_type: format!("e.{}", i % 3),
                    timestamp: honeybee_proto::time::format_rfc3339(
                        1_700_000_000 + i * 1_800 - 50_000,
                        0,
                    ),
                    seq: None,
                    data: serde_json::from_value(serde_json::json!({
                        "src_ip": format!("192.0.2.{}", i % 7),
                        "username": if i % 2 == 0 { "root" } else { "admin" },
                        "password": format!("p{}", i % 5),
                        "input": if i % 4 == 0 { Some("uname -a") } else { None },
                    }))
                    .unwrap(),
                },
            );
            if i % 3 == 0 {
                e.geo = Some(std::sync::Arc::new(crate::geo::Geo {
                    country: Some("DE".into()),
                    country_name: Some("Germany".into()),
                    asn: Some(3320),
                    as_org: Some("DTAG".into()),
                    ..Default::default()
                }));
            }
            events.push(e);
        }
        let refs: Vec<&EventRecord> = events.iter().collect();
        let batch = Delta::of_events(&refs);
        let mut one_by_one = Delta::default();
        for e in &events {
            one_by_one.add(&Keys::of(e), 1);
        }
        assert_eq!(batch.rows, one_by_one.rows);
        let mut pending = Pending::default();
        let (a, b) = refs.split_at(20);
        pending.count(a, 1);
        pending.count(b, 1);
        pending.count(b, -1);
        pending.count(b, 1);
        assert_eq!(pending.to_delta().rows, one_by_one.rows);
        assert_eq!(pending.to_delta().labels, batch.labels);
        assert_eq!(
            batch
                .labels
                .get(&(Dim::Asn, "3320".into()))
                .map(String::as_str),
            Some("DTAG")
        );
    }

    #[test]
    fn buckets_floor_before_1970_and_long_values_are_cut() {
        assert_eq!(Tier::Hour.bucket(-1), -1);
        assert_eq!(Tier::Day.bucket(DAY_US - 1), 0);
        let long = "é".repeat(600);
        let key = value_key(&long);
        assert!(
            key.len() <= MAX_VALUE && key.ends_with('…'),
            "{}",
            key.len()
        );
    }
}
