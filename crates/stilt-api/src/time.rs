//! `Time` (RFC 3339, seconds) and `MicroTime` (RFC 3339, microseconds), as Kubernetes writes them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;

macro_rules! timestamp {
    ($name:ident, $format:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub DateTime<Utc>);

        impl $name {
            pub fn now() -> Self {
                Self(Utc::now())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(DateTime::<Utc>::UNIX_EPOCH)
            }
        }

        impl From<DateTime<Utc>> for $name {
            fn from(t: DateTime<Utc>) -> Self {
                Self(t)
            }
        }

        impl From<std::time::SystemTime> for $name {
            fn from(t: std::time::SystemTime) -> Self {
                Self(t.into())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0.to_rfc3339_opts($format, true))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        /// Parses RFC 3339 (any precision and offset).
        impl std::str::FromStr for $name {
            type Err = chrono::ParseError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                DateTime::parse_from_rfc3339(text).map(|t| Self(t.with_timezone(&Utc)))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse()
                    .map_err(|e| serde::de::Error::custom(format!("invalid timestamp {text:?}: {e}")))
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "format": "date-time", "description": $doc })
            }
        }
    };
}

timestamp!(
    Time,
    SecondsFormat::Secs,
    "A timestamp with second precision (RFC 3339)."
);
timestamp!(
    MicroTime,
    SecondsFormat::Micros,
    "A timestamp with microsecond precision (RFC 3339)."
);
