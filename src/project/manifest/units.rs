//! Durations and byte sizes as Compose writes them.
//!
//! Durations use Go's `time.ParseDuration` syntax, which Compose uses for
//! `interval`, `timeout`, `start_period` and `stop_grace_period`: a sequence
//! of decimal numbers with a unit each, `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`
//! (`1m30s`, `10s`, `500ms`, `1.5h`). Byte sizes use Docker's `RAMInBytes`
//! syntax for `memory`: a number with an optional binary unit `b k m g t p`
//! (`512m`, `1g`, `1.5GiB`) or an integer count of bytes.

use std::fmt;

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub(crate) fn schema(value: serde_json::Value) -> Schema {
    serde_json::from_value(value).expect("hand-written schema is valid")
}

/// A duration written like Compose's: `1m30s`, `10s`, `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

/// Parses Go's duration syntax; the error says what was wrong.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || {
        format!("invalid duration {s:?}: expected a number and a unit (ns, us, ms, s, m, h), like \"1m30s\", \"10s\" or \"500ms\"")
    };
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0; // nanoseconds
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad());
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut nanos = int.checked_mul(scale).ok_or_else(bad)?;
        let mut frac_scale = scale;
        for digit in frac.chars() {
            frac_scale /= 10;
            nanos += u128::from(digit.to_digit(10).ok_or_else(bad)?) * frac_scale;
        }
        total = total.checked_add(nanos).ok_or_else(bad)?;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
    Ok(std::time::Duration::new(
        secs,
        (total % 1_000_000_000) as u32,
    ))
}

impl fmt::Display for Duration {
    /// The shortest exact form in h, m, s, ms, us, ns parts: `1m30s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (unit, scale) in [
            ("h", 3_600_000_000_000u128),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
            ("ns", 1),
        ] {
            if nanos >= scale {
                write!(f, "{}{unit}", nanos / scale)?;
                nanos %= scale;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string like \"1m30s\", \"10s\" or \"500ms\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
                parse_duration(s).map(Duration).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> String {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "type": "string",
            "description": "A duration: numbers with units ns, us, ms, s, m, h, like \"1m30s\", \"10s\" or \"500ms\"",
            "pattern": "^(0|([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|ms|s|m|h))+$"
        }))
    }
}

/// A size in bytes: an integer, or a number with a unit like `512m`, `1g`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// Parses Docker's `RAMInBytes` syntax (binary units, case-insensitive).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid size {s:?}: expected a number of bytes or a number with a unit b, k, m, g, t, p, like \"512m\" or \"1g\""
        )
    };
    let t = s.trim();
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(num_len);
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(bad()),
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size like \"512m\" or \"1g\", or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ByteSize, E> {
                parse_bytes(s).map(ByteSize).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("invalid size {v}: must not be negative")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // TOML integers are i64; sizes beyond that print as text.
        match i64::try_from(self.0) {
            Ok(v) => s.serialize_i64(v),
            Err(_) => s.collect_str(&self.0),
        }
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> String {
        "ByteSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "description": "A size: a number of bytes, or a number with a unit b, k, m, g, t, p (binary), like \"512m\"",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)? ?([kKmMgGtTpP]?[iI]?[bB]?)$" }
            ]
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as D;

    #[test]
    fn durations() {
        let ok = [
            ("10s", D::from_secs(10)),
            ("1m30s", D::from_secs(90)),
            ("500ms", D::from_millis(500)),
            ("1.5s", D::from_millis(1500)),
            ("1h", D::from_secs(3600)),
            ("0", D::ZERO),
            ("2us", D::from_micros(2)),
            ("1h2m3s4ms", D::from_millis(3_723_004)),
            (".5s", D::from_millis(500)),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for s in ["", "10", "1x", "s", "1.2.3s", "-1s", "1 s", "1m30"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
        assert_eq!(Duration(D::from_secs(90)).to_string(), "1m30s");
        assert_eq!(Duration(D::from_millis(1500)).to_string(), "1s500ms");
        assert_eq!(Duration(D::ZERO).to_string(), "0s");
        for d in ["1m30s", "1s500ms", "3h", "7ns"] {
            let parsed = Duration(parse_duration(d).unwrap());
            assert_eq!(parsed.to_string(), d);
        }
    }

    #[test]
    fn byte_sizes() {
        let ok = [
            ("512m", 512 << 20),
            ("1g", 1 << 30),
            ("1G", 1 << 30),
            ("1GiB", 1 << 30),
            ("64kb", 64 << 10),
            ("100", 100),
            ("100b", 100),
            ("1.5g", 3 << 29),
            ("2 m", 2 << 20),
        ];
        for (s, want) in ok {
            assert_eq!(parse_bytes(s), Ok(want), "{s}");
        }
        for s in ["", "m", "12x", "1.g", "-1m", "1e3", "99999999999p"] {
            assert!(parse_bytes(s).is_err(), "{s}");
        }
    }
}
