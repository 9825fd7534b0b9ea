//! The few fields of an event's `data` that the analyst's views read
//! (`GET /api/v1/sources/{ip}`, `/api/v1/sessions`), parsed from the stored
//! JSON text without building a tree: every other key is skipped.
//!
//! `data` comes from attackers through pots: a field may be any JSON value.
//! A string or a number is its text; anything else (an object, an array,
//! `null`, a boolean) is no value, never an error. JSON that does not parse
//! gives no fields at all.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A scalar field as text; `None` for anything else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loose(pub Option<String>);

impl Loose {
    /// The text, if any and not empty.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Loose, E> {
                Ok(Loose(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
                Ok(Loose(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
                Ok(Loose(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
                Loose::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Loose, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Loose, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// What the views read of one event's `data`. Field names are the ones the
/// pots send: Cowrie (`session`, `version` of `cowrie.client.version`,
/// `hassh`, `input`), the native pots (`session`, `input`) and Extension mode's
/// fingerprints (`client_version` of SSH and MySQL clients, `version` of HTTP
/// and SMB, `user_agent`, `ja3`, `ja3_hash`, `sni`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Facts {
    /// `data.src_ip`.
    pub src_ip: Loose,
    /// `data.src_port`.
    pub src_port: Loose,
    /// `data.dst_port`.
    pub dst_port: Loose,
    /// `data.protocol`.
    pub protocol: Loose,
    /// `data.username`.
    pub username: Loose,
    /// `data.password`.
    pub password: Loose,
    /// `data.input`: a command typed into a pot.
    pub input: Loose,
    /// `data.session`: the connection the event belongs to.
    pub session: Loose,
    /// `data.version`: Cowrie's SSH client version, or an HTTP/SMB version.
    pub version: Loose,
    /// `data.client_version`: Extension mode's SSH (or MySQL) client version.
    pub client_version: Loose,
    /// `data.user_agent`.
    pub user_agent: Loose,
    /// `data.ja3`: the JA3 string of a TLS ClientHello.
    pub ja3: Loose,
    /// `data.ja3_hash`: its MD5.
    pub ja3_hash: Loose,
    /// `data.sni`.
    pub sni: Loose,
    /// `data.hassh`: Cowrie's SSH key-exchange fingerprint.
    pub hassh: Loose,
}

impl Facts {
    /// The fields of `data` (JSON text); none when it does not parse.
    pub fn parse(data: &str) -> Facts {
        serde_json::from_str(data).unwrap_or_default()
    }

    /// The SSH client version, from whichever field carries it: a version
    /// string an SSH client sent starts with `SSH-`, which keeps HTTP and
    /// SMB `version`s and MySQL `client_version`s out.
    pub fn ssh_client(&self) -> Option<&str> {
        [self.version.get(), self.client_version.get()]
            .into_iter()
            .flatten()
            .find(|v| v.starts_with("SSH-"))
    }

    /// `data.dst_port` as a port number.
    pub fn dst_port(&self) -> Option<u16> {
        self.dst_port.get().and_then(|p| p.trim().parse().ok())
    }

    /// `data.src_port` as a port number.
    pub fn src_port(&self) -> Option<u16> {
        self.src_port.get().and_then(|p| p.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_text_and_the_rest_is_nothing() {
        let f = Facts::parse(
            r#"{"username":"root","password":1234,"dst_port":"22","src_port":51000,
                "input":{"a":[1,2]},"session":["x"],"sni":null,"ja3":true,"other":{"deep":[{}]}}"#,
        );
        assert_eq!(f.username.get(), Some("root"));
        assert_eq!(f.password.get(), Some("1234"));
        assert_eq!((f.dst_port(), f.src_port()), (Some(22), Some(51000)));
        assert_eq!(
            (f.input.get(), f.session.get(), f.sni.get(), f.ja3.get()),
            (None, None, None, None)
        );
        assert!(Facts::parse("not json").username.get().is_none());
        assert!(Facts::parse("[1,2]").username.get().is_none());
        assert_eq!(Facts::parse(r#"{"dst_port": 70000}"#).dst_port(), None);
    }

    #[test]
    fn the_ssh_client_version_comes_from_either_field_and_only_from_ssh() {
        let cowrie = Facts::parse(r#"{"version":"SSH-2.0-Go"}"#);
        assert_eq!(cowrie.ssh_client(), Some("SSH-2.0-Go"));
        let ext = Facts::parse(r#"{"protocol":"ssh","client_version":"SSH-2.0-libssh_0.9.6"}"#);
        assert_eq!(ext.ssh_client(), Some("SSH-2.0-libssh_0.9.6"));
        let http = Facts::parse(r#"{"protocol":"http","version":"HTTP/1.1"}"#);
        assert_eq!(http.ssh_client(), None);
        let mysql = Facts::parse(r#"{"protocol":"mysql","client_version":"8.0.36"}"#);
        assert_eq!(mysql.ssh_client(), None);
    }
}
