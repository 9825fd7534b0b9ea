//! Reading and writing externally tagged enums the tolerant way.
//!
//! serde's derive accepts `"Unit"` and `{"Unit": null}` but not `{"Unit": {}}`,
//! and it fails on unknown variants. Peers use all three unit forms and may
//! send variants we do not know, so every message enum goes through here.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::Deserializer;

/// A set of variants that can be read from `"Name"` or `{"Name": payload}`.
pub(crate) trait Variants: Sized {
    /// What the error message says was expected.
    const EXPECTING: &'static str;
    /// The value for the bare string form `"Name"` (unit variants and unknown
    /// names); `None` when `Name` is a variant that needs a payload.
    fn from_name(name: &str) -> Option<Self>;
    /// Reads the payload of variant `name` from the map's next value.
    fn from_payload<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Self, A::Error>;
}

/// Deserializes any [`Variants`] type from either form.
pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Variants>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(VariantVisitor(PhantomData))
}

struct VariantVisitor<T>(PhantomData<T>);

impl<'de, T: Variants> Visitor<'de> for VariantVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<T, E> {
        T::from_name(name)
            .ok_or_else(|| E::custom(format_args!("variant `{name}` needs a payload")))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let name: String = map
            .next_key()?
            .ok_or_else(|| de::Error::custom(format_args!("empty object, {}", T::EXPECTING)))?;
        let value = T::from_payload(&name, &mut map)?;
        // A peer that adds keys beside the variant is tolerated, not trusted.
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(value)
    }
}

/// Reads the payload of a unit variant: `{}` (with any fields), `null` or nothing.
pub(crate) fn unit_payload<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|_| ())
}

/// Reads a payload of type `P`.
pub(crate) fn payload<'de, A: MapAccess<'de>, P: DeserializeOwned>(
    map: &mut A,
) -> Result<P, A::Error> {
    map.next_value::<P>()
}

/// Skips the payload of a variant this version does not know.
pub(crate) fn skip_payload<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|_| ())
}

/// Writes `{"name": payload}`.
pub(crate) fn serialize_variant<S: Serializer, P: Serialize + ?Sized>(
    s: S,
    name: &str,
    payload: &P,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry(name, payload)?;
    map.end()
}

/// Writes a unit variant as `{"name": {}}`, the canonical form.
pub(crate) fn serialize_unit<S: Serializer>(s: S, name: &str) -> Result<S::Ok, S::Error> {
    serialize_variant(s, name, &Empty)
}

/// An empty JSON object.
struct Empty;

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// Implements `Serialize`/`Deserialize` for an enum that implements
/// [`Variants`] and has a `serialize_variants` method.
macro_rules! tolerant_enum_serde {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.serialize_variants(s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::variant::deserialize(d)
            }
        }
    };
}
pub(crate) use tolerant_enum_serde;
