//! RFC 3339 timestamps.
//!
//! Only UTC is written; offsets are accepted on input. Parsing is the `time`
//! crate's; writing is Howard Hinnant's civil-from-days arithmetic, which
//! the tests check against that parser over centuries.

/// Formats unix time as `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (microseconds when
/// `nanos` is not zero).
pub fn format_rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if nanos == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        let micros = nanos / 1000;
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{micros:06}Z")
    }
}

/// The current time as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    let (secs, nanos) = now_unix();
    format_rfc3339(secs, nanos)
}

/// The current unix time as seconds and nanoseconds.
pub fn now_unix() -> (i64, u32) {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(_) => (0, 0),
    }
}

/// Parses an RFC 3339 timestamp into unix seconds and nanoseconds.
///
/// The `time` crate does the parsing, so impossible dates (`2026-02-31`)
/// and offsets (`+99:99`) are refused rather than rolled over. A space
/// instead of `T` is accepted, as RFC 3339 §5.6 allows.
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((t.unix_timestamp(), t.nanosecond()))
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_768_473_000, 0), "2026-01-15T10:30:00Z");
        assert_eq!(format_rfc3339(951_782_400, 0), "2000-02-29T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2026-11-25T22:17:59.277635Z"),
            Some((1_795_645_079, 277_635_000))
        );
        assert_eq!(
            parse_rfc3339("2026-01-15T11:30:00+01:00"),
            Some((1_768_473_000, 0))
        );
    }

    #[test]
    fn accepts_what_rfc3339_allows() {
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some((1_709_164_800, 0))
        );
        assert_eq!(
            parse_rfc3339("2026-01-15 10:30:00Z"),
            Some((1_768_473_000, 0))
        );
        assert_eq!(
            parse_rfc3339("2026-01-15t10:30:00.5z"),
            Some((1_768_473_000, 500_000_000))
        );
        assert_eq!(
            parse_rfc3339("2026-01-15T05:00:00-05:30"),
            Some((1_768_473_000, 0))
        );
    }

    #[test]
    fn round_trip_over_centuries() {
        for secs in (-5_000_000_000i64..5_000_000_000).step_by(86_399 * 97 + 13) {
            let text = format_rfc3339(secs, 0);
            if secs >= -62_135_596_800 {
                assert_eq!(parse_rfc3339(&text), Some((secs, 0)), "{text}");
            }
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-01-01",
            "2026-01-01T00:00:00",
            "x026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+1:00",
            // Dates that do not exist are not rolled over into March.
            "2026-02-31T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T12:00:00Z",
            // Offsets past ±23:59.
            "2026-01-01T00:00:00+99:99",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00-00:60",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:00:00Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
