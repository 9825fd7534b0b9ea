//! Enrichment at ingest: where an event's source address is, from
//! MaxMind-format databases (GeoLite2 or DB-IP Lite; a country or city
//! database and an ASN database), read into memory.
//!
//! The [`Enricher`] holds the databases an operator named (`--geoip`,
//! `--asn`, `[enrichment]`). At start a file that is missing, truncated or
//! not a MaxMind database of the right kind is an error naming the file.
//! Afterwards [`Enricher::reload`] (SIGHUP, and a check of the files'
//! modification times every 10 s) opens them again; a file that cannot be
//! read then is logged and the database already loaded is kept.
//!
//! Lookups run on the store's writer thread, for each batch, through a
//! [`Cache`] of recent sources: attackers repeat themselves.

pub mod net;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// What is known of one source address. All `None`: nothing (stored NULL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Geo {
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<String>,
    /// The country's English name.
    pub country_name: Option<String>,
    /// The city's English name, where the database has one.
    pub city: Option<String>,
    /// Autonomous system number.
    pub asn: Option<i64>,
    /// The autonomous system's organisation.
    pub as_org: Option<String>,
    /// A special-purpose range ([`net::label`]), never looked up.
    pub net: Option<String>,
}

impl Geo {
    /// Whether anything is known.
    pub fn is_empty(&self) -> bool {
        self.country.is_none()
            && self.country_name.is_none()
            && self.city.is_none()
            && self.asn.is_none()
            && self.as_org.is_none()
            && self.net.is_none()
    }

    /// The API's `geo` object: `null` when nothing is known, `{"net": …}`
    /// for a labelled range, else every field (null where unknown).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        if self.is_empty() {
            return serde_json::Value::Null;
        }
        if let Some(net) = &self.net {
            return json!({ "net": net });
        }
        json!({
            "country": self.country,
            "country_name": self.country_name,
            "city": self.city,
            "asn": self.asn,
            "as_org": self.as_org,
            "net": null,
        })
    }
}

/// Longest name kept from a database (names are short; a database is input).
const MAX_NAME: usize = 200;

fn name(s: Option<&str>) -> Option<String> {
    let s = s?.trim();
    if s.is_empty() {
        return None;
    }
    Some(if s.len() <= MAX_NAME {
        s.to_string()
    } else {
        crate::node::budget::clip(s, MAX_NAME)
    })
}

fn iso_code(s: Option<&str>) -> Option<String> {
    let s = s?;
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic())).then(|| s.to_ascii_uppercase())
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct Place<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct City<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

/// The fields of a GeoLite2 / DB-IP country or city record that are used.
#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow, default)]
    country: Option<Place<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<Place<'a>>,
    #[serde(borrow, default)]
    city: Option<City<'a>>,
}

/// The fields of a GeoLite2 / DB-IP ASN record.
#[derive(Deserialize)]
struct AsnRecord<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

/// Which database a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Country or city (`--geoip`).
    Location,
    /// Autonomous systems (`--asn`).
    Asn,
}

impl Kind {
    fn flag(self) -> &'static str {
        match self {
            Kind::Location => "--geoip",
            Kind::Asn => "--asn",
        }
    }
}

/// One opened database and what identifies the file it came from.
struct Db {
    reader: maxminddb::Reader<Vec<u8>>,
    /// Modification time and length when read.
    stamp: Option<(SystemTime, u64)>,
}

/// A file's modification time and length (`None`: it cannot be read).
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reads and checks one database file. The error names the file and says
/// what is wrong with it.
pub fn open(path: &Path, kind: Kind) -> Result<(maxminddb::Reader<Vec<u8>>, String), String> {
    let what = format!("{} {}", kind.flag(), path.display());
    let bytes = std::fs::read(path).map_err(|e| format!("{what}: cannot read the file: {e}"))?;
    if bytes.is_empty() {
        return Err(format!("{what}: the file is empty"));
    }
    let reader = maxminddb::Reader::from_source(bytes)
        .map_err(|e| format!("{what}: not a MaxMind DB (.mmdb) file, or a truncated one: {e}"))?;
    let kind_name = reader.metadata().database_type.clone();
    let lower = kind_name.to_ascii_lowercase();
    let fits = match kind {
        Kind::Asn => lower.contains("asn"),
        Kind::Location => {
            (lower.contains("city") || lower.contains("country")) && !lower.contains("asn")
        }
    };
    if !fits {
        let want = match kind {
            Kind::Asn => "an ASN database (e.g. GeoLite2-ASN, DBIP-ASN-Lite)",
            Kind::Location => {
                "a country or city database (e.g. GeoLite2-City, GeoLite2-Country, DBIP-City-Lite)"
            }
        };
        return Err(format!(
            "{what}: the database is of type `{kind_name}`, but {} takes {want}",
            kind.flag()
        ));
    }
    // Decoding a record the way lookups will proves the data section is
    // readable (a file cut short in the data fails here).
    let probe: IpAddr = if reader.metadata().ip_version == 6 {
        "2001:4860::1".parse().unwrap_or(IpAddr::from([0u8; 16]))
    } else {
        IpAddr::from([8, 8, 8, 8])
    };
    if let Ok(found) = reader.lookup(probe) {
        let decoded = match kind {
            Kind::Asn => found.decode::<AsnRecord>().map(|_| ()),
            Kind::Location => found.decode::<CityRecord>().map(|_| ()),
        };
        decoded.map_err(|e| format!("{what}: the database's data cannot be read: {e}"))?;
    }
    Ok((reader, kind_name))
}

/// The databases in use, swapped whole on reload.
#[derive(Default)]
struct Dbs {
    location: Option<Arc<Db>>,
    asn: Option<Arc<Db>>,
}

/// The configured databases, their reloads, and lookups.
pub struct Enricher {
    location_path: Option<PathBuf>,
    asn_path: Option<PathBuf>,
    dbs: RwLock<Arc<Dbs>>,
    /// The stamp of each file (location, ASN) that failed to load on a
    /// periodic check: warned about once, not every check.
    failed: Mutex<[Option<Stamp>; 2]>,
    /// Grows with every reload that changed a database: caches drop what
    /// they remembered.
    generation: AtomicU64,
}

/// How often the files' modification times are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

impl Enricher {
    /// Opens the databases; `None` paths are not used. An error names the
    /// file and what is wrong with it.
    pub fn open(location: Option<&Path>, asn: Option<&Path>) -> Result<Enricher, String> {
        let load = |path: Option<&Path>, kind: Kind| -> Result<Option<Arc<Db>>, String> {
            let Some(path) = path else { return Ok(None) };
            let before = stamp(path);
            let (reader, kind_name) = open(path, kind)?;
            log::info!(
                "enrichment: {} is {kind_name}, built {}",
                path.display(),
                built(&reader)
            );
            Ok(Some(Arc::new(Db {
                reader,
                stamp: before,
            })))
        };
        let dbs = Dbs {
            location: load(location, Kind::Location)?,
            asn: load(asn, Kind::Asn)?,
        };
        Ok(Enricher {
            location_path: location.map(Path::to_path_buf),
            asn_path: asn.map(Path::to_path_buf),
            dbs: RwLock::new(Arc::new(dbs)),
            failed: Mutex::new([None, None]),
            generation: AtomicU64::new(0),
        })
    }

    /// No databases: nothing is enriched.
    pub fn none() -> Enricher {
        Enricher {
            location_path: None,
            asn_path: None,
            dbs: RwLock::new(Arc::new(Dbs::default())),
            failed: Mutex::new([None, None]),
            generation: AtomicU64::new(0),
        }
    }

    /// Whether any database is configured.
    pub fn active(&self) -> bool {
        self.location_path.is_some() || self.asn_path.is_some()
    }

    fn current(&self) -> Arc<Dbs> {
        self.dbs.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Opens the files again: every one when `force` (SIGHUP), else those
    /// whose modification time or length changed since they were read. A
    /// file that cannot be read is logged and its database kept. Returns how
    /// many databases were replaced.
    pub fn reload(&self, force: bool) -> usize {
        let old = self.current();
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        let mut one = |slot: usize, path: &Option<PathBuf>, kind: Kind, old: &Option<Arc<Db>>| {
            let path = path.as_ref()?;
            let now = stamp(path);
            let loaded = old.as_ref().and_then(|d| d.stamp);
            if !force && (now == loaded || failed.get(slot).copied().flatten() == Some(now)) {
                return None;
            }
            match open(path, kind) {
                Ok((reader, kind_name)) => {
                    log::info!(
                        "enrichment: reloaded {} ({kind_name}, built {})",
                        path.display(),
                        built(&reader)
                    );
                    if let Some(f) = failed.get_mut(slot) {
                        *f = None;
                    }
                    Some(Arc::new(Db { reader, stamp: now }))
                }
                Err(e) => {
                    log::warn!("enrichment: reloading: {e}; keeping the database loaded before");
                    if let Some(f) = failed.get_mut(slot) {
                        *f = Some(now);
                    }
                    None
                }
            }
        };
        let location = one(0, &self.location_path, Kind::Location, &old.location);
        let asn = one(1, &self.asn_path, Kind::Asn, &old.asn);
        drop(failed);
        let replaced = usize::from(location.is_some()) + usize::from(asn.is_some());
        if replaced == 0 {
            return 0;
        }
        let mut guard = self.dbs.write().unwrap_or_else(|e| e.into_inner());
        let prev = guard.clone();
        *guard = Arc::new(Dbs {
            location: location.or_else(|| prev.location.clone()),
            asn: asn.or_else(|| prev.asn.clone()),
        });
        drop(guard);
        self.generation.fetch_add(1, Ordering::Relaxed);
        replaced
    }

    /// Starts the thread that checks the files every [`CHECK_EVERY`].
    pub fn watch(self: &Arc<Self>) {
        if !self.active() {
            return;
        }
        let me = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("enrichment".into())
            .spawn(move || loop {
                std::thread::sleep(CHECK_EVERY);
                match me.upgrade() {
                    Some(e) => {
                        e.reload(false);
                    }
                    None => return,
                }
            });
        if let Err(e) = spawned {
            log::warn!("enrichment: cannot watch the database files: {e}");
        }
    }

    /// What is known of `src_ip` (the event's `data.src_ip`): nothing for a
    /// value that is not an address, a label for a special-purpose range,
    /// else what the databases say.
    pub fn lookup(&self, src_ip: &str) -> Geo {
        if !self.active() {
            return Geo::default();
        }
        let Ok(ip) = src_ip.trim().parse::<IpAddr>() else {
            return Geo::default();
        };
        if let Some(label) = net::label(ip) {
            return Geo {
                net: Some(label.to_string()),
                ..Geo::default()
            };
        }
        let ip = net::canonical(ip);
        let dbs = self.current();
        let mut geo = Geo::default();
        if let Some(db) = &dbs.location {
            if let Some(rec) = db
                .reader
                .lookup(ip)
                .ok()
                .and_then(|r| r.decode::<CityRecord>().ok().flatten())
            {
                let place = rec
                    .country
                    .filter(|c| c.iso_code.is_some())
                    .or(rec.registered_country);
                if let Some(place) = place {
                    geo.country = iso_code(place.iso_code);
                    geo.country_name = name(place.names.and_then(|n| n.en));
                }
                geo.city = name(rec.city.and_then(|c| c.names).and_then(|n| n.en));
            }
        }
        if let Some(db) = &dbs.asn {
            if let Some(rec) = db
                .reader
                .lookup(ip)
                .ok()
                .and_then(|r| r.decode::<AsnRecord>().ok().flatten())
            {
                geo.asn = rec.autonomous_system_number.map(i64::from);
                geo.as_org = name(rec.autonomous_system_organization);
            }
        }
        geo
    }

    /// Changes each time a reload replaced a database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}

fn built(reader: &maxminddb::Reader<Vec<u8>>) -> String {
    let secs = i64::try_from(reader.metadata().build_epoch).unwrap_or(0);
    honeybee_proto::time::format_rfc3339(secs, 0)
}

/// Sources remembered per cache; past this it starts over.
const CACHE: usize = 65_536;

/// Recent lookups by source text, for one thread (the store writer); each
/// answer is shared by the events that carry it.
#[derive(Default)]
pub struct Cache {
    generation: u64,
    known: HashMap<String, Option<Arc<Geo>>>,
    /// Lookups made and answered from the cache (for the benchmark).
    pub hits: u64,
    /// Lookups made in the databases.
    pub misses: u64,
}

impl Cache {
    /// `enricher.lookup(src_ip)`, remembered; `None` when nothing is known.
    pub fn lookup(&mut self, enricher: &Enricher, src_ip: &str) -> Option<Arc<Geo>> {
        let generation = enricher.generation();
        if generation != self.generation || self.known.len() >= CACHE {
            self.known.clear();
            self.generation = generation;
        }
        if let Some(g) = self.known.get(src_ip) {
            self.hits += 1;
            return g.clone();
        }
        self.misses += 1;
        let g = Some(enricher.lookup(src_ip))
            .filter(|g| !g.is_empty())
            .map(Arc::new);
        self.known.insert(src_ip.to_string(), g.clone());
        g
    }
}
