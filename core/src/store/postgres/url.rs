//! The PostgreSQL connection URL: parsed and checked before the core binds
//! a port, and shown anywhere (logs, `--print-config`, errors) only with its
//! password replaced.
//!
//! `tokio-postgres` parses most of the URL, but knows neither `sslrootcert`
//! nor the `verify-ca` / `verify-full` modes that a database on another host
//! needs, so those two parameters are taken out here first.

use std::fmt;
use std::str::FromStr;

/// What the password is shown as.
pub const REDACTED: &str = "<redacted>";

/// How the connection to the database is protected (libpq's `sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP (or a Unix socket).
    Disable,
    /// TLS when the server offers it, plain otherwise; libpq's default.
    Prefer,
    /// TLS, without checking the server's certificate.
    Require,
    /// TLS, certificate signed by `sslrootcert`.
    VerifyCa,
    /// TLS, certificate signed by `sslrootcert` and naming the host.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// A checked database URL.
#[derive(Clone)]
pub struct PgUrl {
    /// What `tokio-postgres` connects with.
    pub config: postgres::Config,
    /// The TLS mode.
    pub ssl_mode: SslMode,
    /// CA file (PEM) for the `verify-*` modes.
    pub root_cert: Option<String>,
    shown: String,
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgUrl {
    /// Parses `postgres://user[:password]@host[:port]/db?sslmode=…`. The
    /// error never contains the password.
    pub fn parse(url: &str) -> Result<PgUrl, String> {
        let shown = redact(url);
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| {
                format!("postgres URL {shown}: must start with postgres:// or postgresql://")
            })?;
        let (before, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let mut ssl_mode = SslMode::Prefer;
        let mut root_cert = None;
        let mut kept: Vec<&str> = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("sslmode", v)) => {
                    ssl_mode = SslMode::parse(v).ok_or_else(|| {
                        format!(
                            "postgres URL {shown}: unknown sslmode `{v}` (one of disable, prefer, \
                             require, verify-ca, verify-full)"
                        )
                    })?
                }
                Some(("sslrootcert", v)) => root_cert = Some(v.to_string()),
                _ => kept.push(pair),
            }
        }
        if matches!(ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
            return Err(format!(
                "postgres URL {shown}: sslmode=verify-ca and verify-full need \
                 sslrootcert=FILE, the CA (PEM) that signed the server's certificate"
            ));
        }
        let mut plain = format!("postgresql://{before}");
        if !kept.is_empty() {
            plain.push('?');
            plain.push_str(&kept.join("&"));
        }
        // tokio-postgres names options, never their values, in its errors.
        let mut config = postgres::Config::from_str(&plain).map_err(|e| {
            match std::error::Error::source(&e) {
                Some(cause) => format!("postgres URL {shown}: {e}: {cause}"),
                None => format!("postgres URL {shown}: {e}"),
            }
        })?;
        if config.get_hosts().is_empty() {
            return Err(format!("postgres URL {shown}: no host"));
        }
        if config.get_user().is_none() {
            return Err(format!("postgres URL {shown}: no user"));
        }
        config.ssl_mode(match ssl_mode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        config.application_name("honeybee-core");
        Ok(PgUrl {
            config,
            ssl_mode,
            root_cert,
            shown,
        })
    }
}

/// `url` with the password (in the user info or a `password=` parameter)
/// replaced by [`REDACTED`]. Works on text that does not parse, too.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (before, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let before = match before.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            None => before.to_string(),
        },
        None => before.to_string(),
    };
    let mut shown = match scheme {
        Some(s) => format!("{s}://{before}"),
        None => before,
    };
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                    format!("{k}={REDACTED}")
                }
                _ => pair.to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for url in [
            "postgres://hb:s3cret@db.example:5432/hb?sslmode=require",
            "postgresql://hb:s3cret@db/hb?password=s3cret&sslmode=bogus",
            "postgres://hb@db/hb?password=s3cret",
            "nonsense://hb:s3cret@",
            "hb:s3cret@db",
        ] {
            let shown = redact(url);
            assert!(!shown.contains("s3cret"), "{shown}");
            let error_or_display = match PgUrl::parse(url) {
                Ok(u) => format!("{u} {u:?}"),
                Err(e) => e,
            };
            assert!(!error_or_display.contains("s3cret"), "{error_or_display}");
        }
        assert_eq!(
            redact("postgres://hb:x@db:5432/hb?sslmode=require"),
            "postgres://hb:<redacted>@db:5432/hb?sslmode=require"
        );
    }

    #[test]
    fn modes_and_their_requirements() {
        let u = PgUrl::parse("postgres://hb@127.0.0.1:5433/hb").unwrap();
        assert_eq!(u.ssl_mode, SslMode::Prefer);
        let u =
            PgUrl::parse("postgres://hb@db/hb?sslmode=verify-full&sslrootcert=/ca.pem").unwrap();
        assert_eq!(
            (u.ssl_mode, u.root_cert.as_deref()),
            (SslMode::VerifyFull, Some("/ca.pem"))
        );
        let e = PgUrl::parse("postgres://hb@db/hb?sslmode=verify-ca").unwrap_err();
        assert!(e.contains("sslrootcert"), "{e}");
        let e = PgUrl::parse("postgres://hb@db/hb?sslmode=maybe").unwrap_err();
        assert!(e.contains("unknown sslmode `maybe`"), "{e}");
        let e = PgUrl::parse("mysql://hb@db/hb").unwrap_err();
        assert!(e.contains("postgres://"), "{e}");
        let e = PgUrl::parse("postgres://hb@db:notaport/hb").unwrap_err();
        assert!(e.contains("postgres URL") && e.contains("`port`"), "{e}");
        assert!(PgUrl::parse("postgres://db/hb").is_err(), "no user");
    }
}
