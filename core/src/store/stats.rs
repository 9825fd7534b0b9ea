//! Statistics over a time range, the same for every backend.
//!
//! A range of at most two hours is counted from the events themselves,
//! exactly, to the microsecond. A longer one is counted from the summary
//! tables ([`crate::store::rollup`]): its start is moved back to the start
//! of its hour (and a custom end forward to the end of its hour), so that it
//! is made of whole hours and whole days, whose counts are exact.
//!
//! Top lists over many buckets use the threshold rule: each bucket's most
//! frequent values (read from an index ordered by count) are candidates; a
//! value outside them cannot have more than the sum of each bucket's
//! smallest candidate count. When the tenth candidate's exact total is
//! above that bound the list is exact; otherwise more candidates are read,
//! and in the end every row is grouped.

use std::collections::{HashMap, HashSet};

use crate::store::rollup::{Dim, Pending, Tier, DAY_US, HOUR_US};

/// Microseconds in a minute.
pub const MINUTE_US: i64 = 60_000_000;
/// Ranges up to this long are counted from the events themselves.
pub const RAW_UP_TO: i64 = 2 * HOUR_US;
/// Ranges up to this long have hour buckets; longer ones day buckets.
pub const HOURS_UP_TO: i64 = 7 * DAY_US;
/// The longest custom range.
pub const MAX_RANGE: i64 = 366 * DAY_US;
/// How many values the top lists hold.
pub const TOP: usize = 10;
/// How many countries `top_countries` holds at most (every country there is).
pub const TOP_COUNTRIES: usize = 300;
/// A short range with at most this many events is read in one pass and
/// counted in memory; one with more, by a query per list.
pub const RAW_SCAN_MAX: u64 = 200_000;

/// The width of the series' buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Bucket {
    /// As the API names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Minute => "minute",
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        }
    }
}

/// What to count: a resolved range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatsQuery {
    /// First microsecond counted.
    pub since_us: i64,
    /// Last microsecond counted (inclusive).
    pub until_us: i64,
    /// Counted from the events (true) or from whole hours of the summaries.
    pub raw: bool,
    /// The series' buckets.
    pub bucket: Bucket,
    /// Now, for the totals' last hour per minute.
    pub now_us: i64,
}

fn bucket_for(span: i64) -> Bucket {
    if span <= RAW_UP_TO {
        Bucket::Minute
    } else if span <= HOURS_UP_TO {
        Bucket::Hour
    } else {
        Bucket::Day
    }
}

impl StatsQuery {
    /// The last `span_us` up to `now_us` (`range=`, `hours=`). Over two
    /// hours, the start is moved back to the start of its hour.
    pub fn last(now_us: i64, span_us: i64) -> StatsQuery {
        let since = now_us.saturating_sub(span_us);
        let raw = span_us <= RAW_UP_TO;
        StatsQuery {
            since_us: if raw {
                since
            } else {
                since.div_euclid(HOUR_US) * HOUR_US
            },
            until_us: now_us,
            raw,
            bucket: bucket_for(span_us),
            now_us,
        }
    }

    /// `since=…&until=…` (both inclusive). Over two hours, widened to whole
    /// hours: the start back to the start of its hour, the end forward to
    /// the end of its hour.
    pub fn custom(now_us: i64, since_us: i64, until_us: i64) -> Result<StatsQuery, String> {
        if until_us < since_us {
            return Err("until: before since".into());
        }
        let span = until_us - since_us;
        if span > MAX_RANGE {
            return Err("until: the range is longer than 366 days".into());
        }
        let raw = span <= RAW_UP_TO;
        Ok(StatsQuery {
            since_us: if raw {
                since_us
            } else {
                since_us.div_euclid(HOUR_US) * HOUR_US
            },
            until_us: if raw {
                until_us
            } else {
                (until_us.div_euclid(HOUR_US) + 1) * HOUR_US - 1
            },
            raw,
            bucket: bucket_for(span),
            now_us,
        })
    }

    /// The hours counted, `[first, end)` (summary mode).
    pub fn hours(&self) -> (i64, i64) {
        (
            self.since_us.div_euclid(HOUR_US),
            self.until_us.div_euclid(HOUR_US) + 1,
        )
    }

    /// The hours as spans of the two tables: whole days from `rollup_day`,
    /// the hours before and after them from `rollup_hour`; each
    /// `(tier, first bucket, end bucket)`.
    pub fn spans(&self) -> Vec<(Tier, i64, i64)> {
        let (h0, h1) = self.hours();
        let d0 = (h0 + 23).div_euclid(24);
        let d1 = h1.div_euclid(24);
        if d0 >= d1 {
            return vec![(Tier::Hour, h0, h1)];
        }
        let mut spans = Vec::new();
        if h0 < d0 * 24 {
            spans.push((Tier::Hour, h0, d0 * 24));
        }
        spans.push((Tier::Day, d0, d1));
        if d1 * 24 < h1 {
            spans.push((Tier::Hour, d1 * 24, h1));
        }
        spans
    }
}

/// What the statistics read; each backend answers it with its SQL.
pub trait StatsSource {
    /// Every stored event.
    fn total(&mut self) -> Result<u64, String>;
    /// Events from `since` to `until` (inclusive).
    fn raw_count(&mut self, since: i64, until: i64) -> Result<u64, String>;
    /// Events per minute from `since` to `until`: (minute number, count).
    fn raw_minutes(&mut self, since: i64, until: i64) -> Result<Vec<(i64, u64)>, String>;
    /// The `limit` most frequent values of `dim` from `since` to `until`
    /// (count descending, then value).
    fn raw_top(
        &mut self,
        dim: Dim,
        since: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, String>;
    /// The summary counts of the events from `since` to `until`, read from
    /// the events in one pass (hour table only).
    fn raw_delta(&mut self, since: i64, until: i64) -> Result<Pending, String>;
    /// Events per hour, `[h0, h1)`: (hour number, count).
    fn hours(&mut self, h0: i64, h1: i64) -> Result<Vec<(i64, u64)>, String>;
    /// Each bucket's `m` most frequent values of `dim`: (bucket, value, n).
    fn bucket_tops(
        &mut self,
        tier: Tier,
        dim: Dim,
        buckets: &[i64],
        m: usize,
    ) -> Result<Vec<(i64, String, u64)>, String>;
    /// The counts of these (bucket, value) pairs that exist.
    fn points(
        &mut self,
        tier: Tier,
        dim: Dim,
        pairs: &[(i64, String)],
    ) -> Result<Vec<(i64, String, u64)>, String>;
    /// Every row of `dim` in `spans`, grouped by value: the `limit` most
    /// frequent (count descending, then value).
    fn group(
        &mut self,
        dim: Dim,
        spans: &[(Tier, i64, i64)],
        limit: usize,
    ) -> Result<Vec<(String, u64)>, String>;
    /// The names recorded for these values of `dim` (countries, ASNs).
    fn labels(&mut self, dim: Dim, values: &[String]) -> Result<HashMap<String, String>, String>;
}

/// Event statistics for `GET /api/v1/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Every stored event.
    pub total: u64,
    /// Events in the range.
    pub in_window: u64,
    /// First and last microsecond counted.
    pub since_us: i64,
    /// Last microsecond counted.
    pub until_us: i64,
    /// The series' bucket width.
    pub bucket: Option<Bucket>,
    /// The range's buckets (start, unix µs) with their counts, oldest
    /// first, empty ones included.
    pub series: Vec<(i64, u64)>,
    /// Each of the last 60 minutes (start, unix µs) with its event count,
    /// oldest first; minutes without events are listed with 0.
    pub per_minute: Vec<(i64, u64)>,
    /// Most frequent source addresses.
    pub top_src_ips: Vec<(String, u64)>,
    /// Most frequent usernames.
    pub top_usernames: Vec<(String, u64)>,
    /// Most frequent passwords.
    pub top_passwords: Vec<(String, u64)>,
    /// Most frequent commands typed into pots (`data.input`).
    pub top_commands: Vec<(String, u64)>,
    /// Most frequent `username:password` pairs.
    pub top_credentials: Vec<(String, u64)>,
    /// Most frequent event types.
    pub top_event_types: Vec<(String, u64)>,
    /// Every country of the range (at most [`TOP_COUNTRIES`]): code, name.
    pub top_countries: Vec<(String, Option<String>, u64)>,
    /// Most frequent AS numbers, with their organisations.
    pub top_asns: Vec<(i64, Option<String>, u64)>,
}

/// Computes the statistics of `q` from `src`.
pub fn compute(src: &mut dyn StatsSource, q: &StatsQuery) -> Result<EventStats, String> {
    let total = src.total()?;
    // The last hour per minute, as always (the dashboard's live chart).
    let hour_start = (q.now_us.div_euclid(MINUTE_US) - 59) * MINUTE_US;
    let minutes: HashMap<i64, u64> = src.raw_minutes(hour_start, i64::MAX)?.into_iter().collect();
    let per_minute = (0..60)
        .map(|i| {
            let m = hour_start + i * MINUTE_US;
            (
                m,
                minutes.get(&m.div_euclid(MINUTE_US)).copied().unwrap_or(0),
            )
        })
        .collect();
    let mut stats = EventStats {
        total,
        since_us: q.since_us,
        until_us: q.until_us,
        bucket: Some(q.bucket),
        per_minute,
        ..EventStats::default()
    };
    let mut scanned: Option<Pending> = None;
    if q.raw {
        stats.in_window = src.raw_count(q.since_us, q.until_us)?;
        if stats.in_window <= RAW_SCAN_MAX {
            scanned = Some(src.raw_delta(q.since_us, q.until_us)?);
        }
    }
    let top =
        |src: &mut dyn StatsSource, dim: Dim, k: usize| -> Result<Vec<(String, u64)>, String> {
            if let Some(delta) = &scanned {
                Ok(delta.top(dim, k))
            } else if q.raw {
                src.raw_top(dim, q.since_us, q.until_us, k)
            } else if dim == Dim::Country {
                src.group(dim, &q.spans(), k)
            } else {
                top_k(src, dim, &q.spans(), k)
            }
        };
    if q.raw {
        let minutes: HashMap<i64, u64> = src
            .raw_minutes(q.since_us, q.until_us)?
            .into_iter()
            .collect();
        let (m0, m1) = (
            q.since_us.div_euclid(MINUTE_US),
            q.until_us.div_euclid(MINUTE_US),
        );
        stats.series = (m0..=m1)
            .map(|m| (m * MINUTE_US, minutes.get(&m).copied().unwrap_or(0)))
            .collect();
    } else {
        let (h0, h1) = q.hours();
        let hours: HashMap<i64, u64> = src.hours(h0, h1)?.into_iter().collect();
        stats.in_window = hours.values().sum();
        stats.series = match q.bucket {
            Bucket::Day => {
                let (d0, d1) = (h0.div_euclid(24), (h1 - 1).div_euclid(24));
                let mut days: HashMap<i64, u64> = HashMap::new();
                for (h, n) in &hours {
                    *days.entry(h.div_euclid(24)).or_insert(0) += n;
                }
                (d0..=d1)
                    .map(|d| (d * DAY_US, days.get(&d).copied().unwrap_or(0)))
                    .collect()
            }
            _ => (h0..h1)
                .map(|h| (h * HOUR_US, hours.get(&h).copied().unwrap_or(0)))
                .collect(),
        };
    }
    stats.top_src_ips = top(src, Dim::SrcIp, TOP)?;
    stats.top_usernames = top(src, Dim::Username, TOP)?;
    stats.top_passwords = top(src, Dim::Password, TOP)?;
    stats.top_commands = top(src, Dim::Command, TOP)?;
    stats.top_credentials = top(src, Dim::Credential, TOP)?;
    stats.top_event_types = top(src, Dim::EventType, TOP)?;
    let countries = top(src, Dim::Country, TOP_COUNTRIES)?;
    let asns = top(src, Dim::Asn, TOP)?;
    let names = src.labels(
        Dim::Country,
        &countries.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
    )?;
    stats.top_countries = countries
        .into_iter()
        .map(|(code, n)| {
            let name = names.get(&code).cloned();
            (code, name, n)
        })
        .collect();
    let orgs = src.labels(
        Dim::Asn,
        &asns.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
    )?;
    stats.top_asns = asns
        .into_iter()
        .filter_map(|(asn, n)| {
            let org = orgs.get(&asn).cloned();
            Some((asn.parse().ok()?, org, n))
        })
        .collect();
    Ok(stats)
}

/// Candidates read per bucket at first; multiplied by 8 while the bound
/// does not prove the list exact.
const FIRST_M: usize = 32;
/// Past this many per bucket, every row is grouped instead.
const MAX_M: usize = 2048;
/// Point lookups one list may take to count its candidates exactly; past
/// this, more candidates are read per bucket (or everything is grouped).
const MAX_LOOKUPS: usize = 4096;

/// The exact `k` most frequent values of `dim` over `spans` (count
/// descending, then value), by the threshold rule (see the module).
pub fn top_k(
    src: &mut dyn StatsSource,
    dim: Dim,
    spans: &[(Tier, i64, i64)],
    k: usize,
) -> Result<Vec<(String, u64)>, String> {
    let buckets: Vec<(Tier, i64)> = spans
        .iter()
        .flat_map(|&(t, a, b)| (a..b).map(move |x| (t, x)))
        .collect();
    let mut m = FIRST_M;
    while m <= MAX_M {
        // Per bucket: what its top-m said, and its m-th count (0 when the
        // bucket had fewer rows: then it was read whole).
        let mut seen: HashMap<String, (u64, HashSet<usize>)> = HashMap::new();
        let mut floor = vec![0u64; buckets.len()];
        for tier in [Tier::Hour, Tier::Day] {
            let idx: HashMap<i64, usize> = buckets
                .iter()
                .enumerate()
                .filter(|(_, (t, _))| *t == tier)
                .map(|(i, (_, b))| (*b, i))
                .collect();
            if idx.is_empty() {
                continue;
            }
            let mut list: Vec<i64> = idx.keys().copied().collect();
            list.sort_unstable();
            let mut counts: HashMap<usize, (usize, u64)> = HashMap::new();
            for (b, v, n) in src.bucket_tops(tier, dim, &list, m)? {
                let Some(&i) = idx.get(&b) else { continue };
                let e = seen.entry(v).or_insert((0, HashSet::new()));
                e.0 += n;
                e.1.insert(i);
                let c = counts.entry(i).or_insert((0, u64::MAX));
                c.0 += 1;
                c.1 = c.1.min(n);
            }
            for (i, (rows, smallest)) in counts {
                if rows >= m {
                    if let Some(f) = floor.get_mut(i) {
                        *f = smallest;
                    }
                }
            }
        }
        let tau: u64 = floor.iter().sum();
        // Upper bound of each candidate: what was seen, plus the floor of
        // every bucket where it was not among the top.
        let mut cands: Vec<(u64, String, u64, HashSet<usize>)> = seen
            .into_iter()
            .map(|(v, (sum, at))| {
                let missing: u64 = floor
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !at.contains(i))
                    .map(|(_, f)| f)
                    .sum();
                (sum + missing, v, sum, at)
            })
            .collect();
        cands.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        // Every candidate's count is at least what was seen: the k-th
        // largest of those is a floor no list member is below. Candidates
        // whose upper bound is under it are out; the rest are counted
        // exactly, unless that costs more lookups than reading deeper.
        let mut seen_sums: Vec<u64> = cands.iter().map(|c| c.2).collect();
        seen_sums.sort_unstable_by(|a, b| b.cmp(a));
        let kth_seen = seen_sums.get(k.saturating_sub(1)).copied().unwrap_or(0);
        let lookups: usize = cands
            .iter()
            .filter(|c| c.0 >= kth_seen)
            .map(|c| {
                floor
                    .iter()
                    .enumerate()
                    .filter(|(i, f)| **f > 0 && !c.3.contains(i))
                    .count()
            })
            .sum();
        if tau > 0 && lookups > MAX_LOOKUPS {
            if m < MAX_M {
                m *= 8;
                continue;
            }
            break;
        }
        let mut exact: Vec<(String, u64)> = Vec::new();
        for (upper, value, sum, at) in cands {
            if upper < kth_seen {
                break;
            }
            if exact.len() >= k {
                if let Some((_, kth)) = exact.get(k - 1) {
                    if upper < *kth {
                        break;
                    }
                }
            }
            // Exact total: add the buckets where it was not seen and that
            // were not read whole.
            let mut total = sum;
            for tier in [Tier::Hour, Tier::Day] {
                let pairs: Vec<(i64, String)> = buckets
                    .iter()
                    .enumerate()
                    .filter(|(i, (t, _))| {
                        *t == tier && !at.contains(i) && floor.get(*i).is_some_and(|f| *f > 0)
                    })
                    .map(|(_, (_, b))| (*b, value.clone()))
                    .collect();
                if !pairs.is_empty() {
                    total += src
                        .points(tier, dim, &pairs)?
                        .iter()
                        .map(|(_, _, n)| n)
                        .sum::<u64>();
                }
            }
            exact.push((value, total));
            exact.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            exact.truncate(k);
        }
        let proven =
            tau == 0 || (exact.len() >= k && exact.get(k - 1).is_some_and(|(_, kth)| *kth > tau));
        if proven {
            return Ok(exact);
        }
        m *= 8;
    }
    src.group(dim, spans, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Summary rows in memory, for the rules above.
    #[derive(Default)]
    struct Mem {
        rows: HashMap<(Tier, Dim, i64, String), u64>,
        reads: usize,
    }

    impl StatsSource for Mem {
        fn total(&mut self) -> Result<u64, String> {
            Ok(0)
        }
        fn raw_count(&mut self, _: i64, _: i64) -> Result<u64, String> {
            Ok(0)
        }
        fn raw_minutes(&mut self, _: i64, _: i64) -> Result<Vec<(i64, u64)>, String> {
            Ok(Vec::new())
        }
        fn raw_top(
            &mut self,
            _: Dim,
            _: i64,
            _: i64,
            _: usize,
        ) -> Result<Vec<(String, u64)>, String> {
            Ok(Vec::new())
        }
        fn raw_delta(&mut self, _: i64, _: i64) -> Result<Pending, String> {
            Ok(Pending::default())
        }
        fn hours(&mut self, h0: i64, h1: i64) -> Result<Vec<(i64, u64)>, String> {
            Ok(self
                .rows
                .iter()
                .filter(|((t, d, b, _), _)| {
                    *t == Tier::Hour && *d == Dim::All && (h0..h1).contains(b)
                })
                .map(|((_, _, b, _), n)| (*b, *n))
                .collect())
        }
        fn bucket_tops(
            &mut self,
            tier: Tier,
            dim: Dim,
            buckets: &[i64],
            m: usize,
        ) -> Result<Vec<(i64, String, u64)>, String> {
            let mut out = Vec::new();
            for &b in buckets {
                let mut rows: Vec<(String, u64)> = self
                    .rows
                    .iter()
                    .filter(|((t, d, bb, _), _)| *t == tier && *d == dim && *bb == b)
                    .map(|((_, _, _, v), n)| (v.clone(), *n))
                    .collect();
                rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                rows.truncate(m);
                self.reads += rows.len();
                out.extend(rows.into_iter().map(|(v, n)| (b, v, n)));
            }
            Ok(out)
        }
        fn points(
            &mut self,
            tier: Tier,
            dim: Dim,
            pairs: &[(i64, String)],
        ) -> Result<Vec<(i64, String, u64)>, String> {
            self.reads += pairs.len();
            Ok(pairs
                .iter()
                .filter_map(|(b, v)| {
                    let n = self.rows.get(&(tier, dim, *b, v.clone()))?;
                    Some((*b, v.clone(), *n))
                })
                .collect())
        }
        fn group(
            &mut self,
            dim: Dim,
            spans: &[(Tier, i64, i64)],
            limit: usize,
        ) -> Result<Vec<(String, u64)>, String> {
            let mut sums: HashMap<String, u64> = HashMap::new();
            for ((t, d, b, v), n) in &self.rows {
                if *d == dim
                    && spans
                        .iter()
                        .any(|(st, a, z)| st == t && (*a..*z).contains(b))
                {
                    *sums.entry(v.clone()).or_insert(0) += n;
                    self.reads += 1;
                }
            }
            let mut all: Vec<(String, u64)> = sums.into_iter().collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            all.truncate(limit);
            Ok(all)
        }
        fn labels(&mut self, _: Dim, _: &[String]) -> Result<HashMap<String, String>, String> {
            Ok(HashMap::new())
        }
    }

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// Filled like attack traffic (a few values very often, many rarely),
    /// and, for the fallback, like a uniform flood.
    fn filled(skewed: bool) -> Mem {
        let mut m = Mem::default();
        let mut seed = 7;
        for tier in [Tier::Hour, Tier::Day] {
            for b in 0..40 {
                for _ in 0..3000 {
                    let r = lcg(&mut seed);
                    let v = if skewed {
                        // ~ Zipf: value i with weight 1/i.
                        let u = (r % 1_000_000) as f64 / 1_000_000.0;
                        (5000f64.powf(u)) as u64
                    } else {
                        r % 5000
                    };
                    *m.rows
                        .entry((tier, Dim::SrcIp, b, format!("v{v}")))
                        .or_insert(0) += 1;
                }
            }
        }
        m
    }

    #[test]
    fn the_threshold_rule_matches_grouping_everything() {
        for skewed in [true, false] {
            let spans = [
                (Tier::Hour, 3, 17),
                (Tier::Day, 5, 30),
                (Tier::Hour, 20, 40),
            ];
            let mut m = filled(skewed);
            let want = m.group(Dim::SrcIp, &spans, TOP).unwrap();
            let all_rows = m.reads;
            m.reads = 0;
            let got = top_k(&mut m, Dim::SrcIp, &spans, TOP).unwrap();
            assert_eq!(got, want, "skewed: {skewed}");
            if skewed {
                assert!(
                    m.reads * 4 < all_rows,
                    "read {} of {all_rows} rows",
                    m.reads
                );
            }
        }
    }

    #[test]
    fn few_values_are_read_whole_and_exact() {
        let mut m = Mem::default();
        for b in 0..5 {
            m.rows.insert((Tier::Hour, Dim::Country, b, "DE".into()), 3);
            m.rows
                .insert((Tier::Hour, Dim::Country, b, "GB".into()), 1 + b as u64);
        }
        let got = top_k(&mut m, Dim::Country, &[(Tier::Hour, 0, 5)], 10).unwrap();
        assert_eq!(got, vec![("DE".to_string(), 15), ("GB".to_string(), 15)]);
    }

    #[test]
    fn ranges_resolve_to_raw_or_whole_hours() {
        let now = 1_000 * DAY_US + 10 * HOUR_US + 37 * MINUTE_US;
        let q = StatsQuery::last(now, HOUR_US);
        assert!(q.raw);
        assert_eq!(
            (q.since_us, q.until_us, q.bucket),
            (now - HOUR_US, now, Bucket::Minute)
        );
        let q = StatsQuery::last(now, 24 * HOUR_US);
        assert!(!q.raw);
        assert_eq!(q.since_us, 999 * DAY_US + 10 * HOUR_US);
        assert_eq!(q.bucket, Bucket::Hour);
        assert_eq!(q.hours(), (999 * 24 + 10, 1000 * 24 + 11));
        let q = StatsQuery::last(now, 30 * DAY_US);
        assert_eq!(q.bucket, Bucket::Day);
        assert_eq!(
            q.spans(),
            vec![
                (Tier::Hour, 970 * 24 + 10, 971 * 24),
                (Tier::Day, 971, 1000),
                (Tier::Hour, 1000 * 24, 1000 * 24 + 11)
            ]
        );
        let q = StatsQuery::custom(now, 5 * HOUR_US + 1, 9 * HOUR_US + 5).unwrap();
        assert_eq!((q.since_us, q.until_us), (5 * HOUR_US, 10 * HOUR_US - 1));
        assert_eq!(q.spans(), vec![(Tier::Hour, 5, 10)]);
        assert!(StatsQuery::custom(now, 10, 5).is_err());
        assert!(StatsQuery::custom(now, 0, 367 * DAY_US).is_err());
        let q = StatsQuery::custom(now, 0, 30 * MINUTE_US).unwrap();
        assert!(q.raw);
    }
}
