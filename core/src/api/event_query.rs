//! `GET /api/v1/events` parameters: the query string parsed into an
//! [`EventFilter`], with an error that names the bad parameter.

use honeybee_proto::time::parse_rfc3339;

use crate::store::EventFilter;

/// Default and largest page.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u32 = 1000;

/// Splits `a=1&b=x%20y` into decoded pairs. Malformed escapes are an error.
pub fn pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Percent-decoding with `+` as space, into UTF-8.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent-escape in `{s}`"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` is not UTF-8 once decoded"))
}

/// An RFC 3339 parameter as unix microseconds; the error names it.
pub fn time(name: &str, v: &str) -> Result<i64, String> {
    let (s, n) = parse_rfc3339(v).ok_or_else(|| {
        format!("{name}: `{v}` is not an RFC 3339 time (e.g. 2026-01-15T10:30:00Z)")
    })?;
    Ok(s.saturating_mul(1_000_000)
        .saturating_add(i64::from(n / 1000)))
}

/// An ISO 3166-1 alpha-2 country code, any case, as stored (upper case).
pub fn country(v: &str) -> Result<String, String> {
    if v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(v.to_ascii_uppercase())
    } else {
        Err(format!(
            "country: `{v}` is not a two-letter ISO 3166-1 country code (e.g. DE)"
        ))
    }
}

/// An autonomous system number, 0..=4294967295 (`AS` prefix allowed).
pub fn asn(v: &str) -> Result<i64, String> {
    let digits = v
        .strip_prefix("AS")
        .or_else(|| v.strip_prefix("as"))
        .unwrap_or(v);
    digits
        .parse::<u32>()
        .ok()
        .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
        .map(i64::from)
        .ok_or_else(|| format!("asn: `{v}` is not an AS number 0..=4294967295 (e.g. 3320)"))
}

/// A page size 1..=[`MAX_LIMIT`]; the error names the parameter.
pub fn limit(v: &str) -> Result<u32, String> {
    v.parse()
        .ok()
        .filter(|l| (1..=MAX_LIMIT).contains(l))
        .ok_or_else(|| format!("limit: `{v}` is not an integer 1..={MAX_LIMIT}"))
}

/// A paging cursor (the `next_cursor` of a previous page).
pub fn cursor(v: &str) -> Result<i64, String> {
    v.parse()
        .ok()
        .filter(|c: &i64| *c > 0)
        .ok_or_else(|| format!("cursor: `{v}` is not a cursor from a previous page"))
}

/// The filter for a query string. `limit` is the page size; callers fetch
/// one more row to learn whether a next page exists.
pub fn parse(query: &str) -> Result<EventFilter, String> {
    let mut f = EventFilter {
        limit: DEFAULT_LIMIT,
        ..EventFilter::default()
    };
    for (k, v) in pairs(query)? {
        match k.as_str() {
            "node_id" => {
                f.node_id = Some(
                    v.parse()
                        .map_err(|_| format!("node_id: `{v}` is not an integer 0..=2^64-1"))?,
                )
            }
            "pot_id" => f.pot_id = Some(v),
            "event_type" => f.event_type = Some(v),
            "src_ip" => f.src_ip = Some(v),
            "country" => f.country = Some(country(&v)?),
            "asn" => f.asn = Some(asn(&v)?),
            "since" => f.since_us = Some(time("since", &v)?),
            "until" => f.until_us = Some(time("until", &v)?),
            "limit" => {
                f.limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| format!("limit: `{v}` is not an integer 1..={MAX_LIMIT}"))?
            }
            "cursor" => {
                f.before_id =
                    Some(v.parse().ok().filter(|c: &i64| *c > 0).ok_or_else(|| {
                        format!("cursor: `{v}` is not a cursor from a previous page")
                    })?)
            }
            other => return Err(format!("unknown parameter `{other}`")),
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter() {
        let f = parse("node_id=18446744073709551615&pot_id=cowrie%2D01&event_type=a.b&src_ip=1.2.3.4&since=2026-01-15T10:30:00Z&until=2026-01-15T10:30:01Z&limit=5&cursor=77").unwrap();
        assert_eq!(f.node_id, Some(u64::MAX));
        assert_eq!(f.pot_id.as_deref(), Some("cowrie-01"));
        assert_eq!(f.since_us, Some(1_768_473_000_000_000));
        assert_eq!(f.until_us, Some(1_768_473_001_000_000));
        assert_eq!((f.limit, f.before_id), (5, Some(77)));
        assert_eq!(parse("").unwrap().limit, DEFAULT_LIMIT);
        let f = parse("country=de&asn=AS3320").unwrap();
        assert_eq!((f.country.as_deref(), f.asn), (Some("DE"), Some(3320)));
        assert_eq!(parse("asn=4294967295").unwrap().asn, Some(4_294_967_295));
    }

    #[test]
    fn errors_name_the_parameter() {
        for (q, name) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=x", "limit"),
            ("since=yesterday", "since"),
            ("cursor=-1", "cursor"),
            ("node_id=-5", "node_id"),
            ("colour=red", "colour"),
            ("src_ip=%zz", "%zz"),
            ("country=DEU", "country"),
            ("country=1x", "country"),
            ("country=", "country"),
            ("asn=-1", "asn"),
            ("asn=4294967296", "asn"),
            ("asn=+5", "asn"),
            ("asn=x", "asn"),
        ] {
            let e = parse(q).unwrap_err();
            assert!(e.contains(name), "{q}: {e}");
        }
    }

    #[test]
    fn metacharacters_stay_values() {
        let f = parse("src_ip=1%27%20OR%20%271%27%3D%271&event_type=%25").unwrap();
        assert_eq!(f.src_ip.as_deref(), Some("1' OR '1'='1"));
        assert_eq!(f.event_type.as_deref(), Some("%"));
    }
}
