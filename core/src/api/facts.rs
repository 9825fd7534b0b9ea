//! The few fields of an event's `data` that the analyst's views read
//! (`GET /api/v1/sources/{ip}`, `/api/v1/sessions`), parsed from the stored
//! JSON text without building a tree: every other key is skipped.
//!
//! `data` comes from attackers through pots: a field may be any JSON value.
//! A string or a number is its text; anything else (an object, an array,
//! `null`, a boolean) is no value, never an error. JSON that does not parse
//! gives no fields at all.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A scalar field as text (borrowed from the JSON text when it holds no
/// escapes); `None` for anything else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loose<'a>(pub Option<Cow<'a, str>>);

impl Loose<'_> {
    /// The text, if any and not empty.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Loose<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Loose<'a>, E> {
                Ok(Loose(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose<'a>, E> {
                Ok(Loose(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Loose<'a>, E> {
                Ok(Loose(Some(Cow::Owned(v))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose<'a>, E> {
                Ok(Loose(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose<'a>, E> {
                Ok(Loose(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose<'a>, E> {
                Ok(Loose(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Loose<'a>, E> {
                Ok(Loose(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Loose<'a>, E> {
                Ok(Loose(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Loose<'a>, E> {
                Ok(Loose(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose<'a>, D::Error> {
                Loose::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Loose<'a>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Loose<'a>, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// What the views read of one event's `data`. Field names are the ones the
/// pots send: Cowrie (`session`, `version` of `cowrie.client.version`,
/// `hassh`, `input`), the native pots (`session`, `input`) and Extension mode's
/// fingerprints (`client_version` of SSH and MySQL clients, `version` of HTTP
/// and SMB, `user_agent`, `ja3`, `ja3_hash`, `sni`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Facts<'a> {
    /// `data.src_ip`.
    #[serde(borrow, default)]
    pub src_ip: Loose<'a>,
    /// `data.src_port`.
    #[serde(borrow, default)]
    pub src_port: Loose<'a>,
    /// `data.dst_port`.
    #[serde(borrow, default)]
    pub dst_port: Loose<'a>,
    /// `data.protocol`.
    #[serde(borrow, default)]
    pub protocol: Loose<'a>,
    /// `data.username`.
    #[serde(borrow, default)]
    pub username: Loose<'a>,
    /// `data.password`.
    #[serde(borrow, default)]
    pub password: Loose<'a>,
    /// `data.input`: a command typed into a pot.
    #[serde(borrow, default)]
    pub input: Loose<'a>,
    /// `data.session`: the connection the event belongs to.
    #[serde(borrow, default)]
    pub session: Loose<'a>,
    /// `data.version`: Cowrie's SSH client version, or an HTTP/SMB version.
    #[serde(borrow, default)]
    pub version: Loose<'a>,
    /// `data.client_version`: Extension mode's SSH (or MySQL) client version.
    #[serde(borrow, default)]
    pub client_version: Loose<'a>,
    /// `data.user_agent`.
    #[serde(borrow, default)]
    pub user_agent: Loose<'a>,
    /// `data.ja3`: the JA3 string of a TLS ClientHello.
    #[serde(borrow, default)]
    pub ja3: Loose<'a>,
    /// `data.ja3_hash`: its MD5.
    #[serde(borrow, default)]
    pub ja3_hash: Loose<'a>,
    /// `data.sni`.
    #[serde(borrow, default)]
    pub sni: Loose<'a>,
    /// `data.hassh`: Cowrie's SSH key-exchange fingerprint.
    #[serde(borrow, default)]
    pub hassh: Loose<'a>,
}

impl<'a> Facts<'a> {
    /// The fields of `data` (JSON text); none when it does not parse.
    pub fn parse(data: &'a str) -> Facts<'a> {
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
