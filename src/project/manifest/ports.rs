//! Published ports: Compose's short strings and long tables.
//!
//! Short syntax (<https://docs.docker.com/reference/compose-file/services/#ports>):
//! `[ip:][host:]container[/proto]`, where `host` and `container` are a port
//! or a range `a-b`, `ip` an IPv4 address or a bracketed IPv6 one
//! (`[::1]:8080:80`), `proto` `tcp` (default), `udp` or `sctp`. A bare
//! `container` (or an integer) publishes on an ephemeral host port, as in Compose. Long syntax:
//! `{ target, published, host_ip, protocol }`.

use std::fmt;
use std::net::IpAddr;

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::units::schema;

/// A port or an inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn single(port: u16) -> Self {
        PortRange {
            start: port,
            end: port,
        }
    }
    pub fn len(&self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }
    pub fn is_empty(&self) -> bool {
        false
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    let n: u32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a port number"))?;
    if n == 0 || n > 65535 {
        return Err(format!("port {n} is out of range 1-65535"));
    }
    Ok(n as u16)
}

/// Parses `80` or `8000-8010`.
pub fn parse_range(s: &str) -> Result<PortRange, String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (start, end) = (parse_port(a)?, parse_port(b)?);
            if start > end {
                return Err(format!("port range {s} runs backwards"));
            }
            Ok(PortRange { start, end })
        }
        None => parse_port(s).map(PortRange::single),
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number or a range like \"8000-8010\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRange, E> {
                parse_range(&v.to_string()).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRange, E> {
                parse_range(&v.to_string()).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PortRange, E> {
                parse_range(s).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.start == self.end {
            s.serialize_u16(self.start)
        } else {
            s.collect_str(self)
        }
    }
}

impl JsonSchema for PortRange {
    fn schema_name() -> String {
        "PortRange".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schema(serde_json::json!({
            "description": "A port number, or a range like \"8000-8010\"",
            "anyOf": [
                { "type": "integer", "minimum": 1, "maximum": 65535 },
                { "type": "string", "pattern": "^[0-9]+(-[0-9]+)?$" }
            ]
        }))
    }
}

/// A transport protocol of a published port.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// A port of a service: the container side and, when published, the host side.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields, expecting = "a port table with `target`")]
pub struct Port {
    /// The port (or range) inside the container.
    pub target: PortRange,
    /// The host port (or range) it is published on; none means an ephemeral port chosen when the container starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<PortRange>,
    /// The host address to listen on (all addresses when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    /// `tcp` (default), `udp` or `sctp`.
    #[serde(default)]
    pub protocol: Protocol,
}

const SHORT_FORM: &str = "expected [ip:][host:]container[/proto]";

/// Parses the short syntax `[ip:][host:]container[/proto]`.
pub fn parse_port_spec(spec: &str) -> Result<Port, String> {
    let structural = || format!("invalid port {spec:?}: {SHORT_FORM}");
    let detail = |why: String| format!("invalid port {spec:?}: {why}");
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, proto)) => {
            let protocol = match proto {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                _ => {
                    return Err(detail(format!(
                        "unknown protocol {proto:?}, expected tcp, udp or sctp"
                    )))
                }
            };
            (rest, protocol)
        }
        None => (spec, Protocol::Tcp),
    };
    let (ip, rest) = if let Some(after) = rest.strip_prefix('[') {
        let (ip, after) = after.split_once("]:").ok_or_else(structural)?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| detail(format!("{ip:?} is not an IP address")))?;
        (Some(ip), after)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (None, [i, h, c]) => {
            let ip: IpAddr = i.parse().map_err(|_| structural())?;
            (Some(ip), Some(*h), *c)
        }
        (Some(ip), [h, c]) => (Some(ip), Some(*h), *c),
        _ => return Err(structural()),
    };
    if container.is_empty() {
        return Err(structural());
    }
    let target = parse_range(container).map_err(detail)?;
    let published = match host {
        None | Some("") => None,
        Some(h) => Some(parse_range(h).map_err(detail)?),
    };
    if let Some(p) = published {
        if p.len() != target.len() {
            return Err(detail(format!(
                "host range {p} and container range {target} differ in length"
            )));
        }
    }
    if ip.is_some() && published.is_none() && host.is_none() {
        return Err(structural());
    }
    Ok(Port {
        target,
        published,
        host_ip: ip,
        protocol,
    })
}

/// A `ports` entry as written: a short string, an integer or a long table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortEntry(pub Port);

impl<'de> Deserialize<'de> for PortEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PortEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a port string like \"8080:80\", a port number or a table with `target`",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PortEntry, E> {
                parse_port_spec(s).map(PortEntry).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortEntry, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortEntry, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<PortEntry, A::Error> {
                let port = Port::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if let Some(p) = port.published {
                    if p.len() != port.target.len() {
                        return Err(de::Error::custom(format!(
                            "invalid port: published range {p} and target range {} differ in length",
                            port.target
                        )));
                    }
                }
                Ok(PortEntry(port))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for PortEntry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl JsonSchema for PortEntry {
    fn schema_name() -> String {
        "PortEntry".into()
    }
    fn json_schema(gen: &mut SchemaGenerator) -> Schema {
        let long = gen.subschema_for::<Port>();
        schema(serde_json::json!({
            "description": "A port: \"[ip:][host:]container[/proto]\" (ports may be ranges), a container port number, or a long table",
            "anyOf": [
                { "type": "string", "pattern": "^(\\[[0-9a-fA-F:.]+\\]:|([0-9.]+:))?([0-9]+(-[0-9]+)?)?:?[0-9]+(-[0-9]+)?(/(tcp|udp|sctp))?$" },
                { "type": "integer", "minimum": 1, "maximum": 65535 },
                long
            ]
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(target: &str, published: Option<&str>, ip: Option<&str>, protocol: Protocol) -> Port {
        Port {
            target: parse_range(target).unwrap(),
            published: published.map(|p| parse_range(p).unwrap()),
            host_ip: ip.map(|i| i.parse().unwrap()),
            protocol,
        }
    }

    #[test]
    fn short_syntax() {
        use Protocol::*;
        let cases = [
            ("80", p("80", None, None, Tcp)),
            ("8080:80", p("80", Some("8080"), None, Tcp)),
            ("8080:80/udp", p("80", Some("8080"), None, Udp)),
            (
                "127.0.0.1:8080:80",
                p("80", Some("8080"), Some("127.0.0.1"), Tcp),
            ),
            ("127.0.0.1::80", p("80", None, Some("127.0.0.1"), Tcp)),
            ("[::1]:8080:80", p("80", Some("8080"), Some("::1"), Tcp)),
            (
                "8000-8010:9000-9010",
                p("9000-9010", Some("8000-8010"), None, Tcp),
            ),
            ("6060-6061/sctp", p("6060-6061", None, None, Sctp)),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_port_spec(spec), Ok(want), "{spec}");
        }
    }

    #[test]
    fn bad_short_syntax() {
        let cases = [
            ("80:90:100", "invalid port \"80:90:100\": expected [ip:][host:]container[/proto]"),
            ("", "invalid port \"\": expected [ip:][host:]container[/proto]"),
            ("8080:", "invalid port \"8080:\": expected [ip:][host:]container[/proto]"),
            ("70000:80", "invalid port \"70000:80\": port 70000 is out of range 1-65535"),
            ("80/tcpx", "invalid port \"80/tcpx\": unknown protocol \"tcpx\", expected tcp, udp or sctp"),
            ("8000-8010:80", "invalid port \"8000-8010:80\": host range 8000-8010 and container range 80 differ in length"),
            ("http", "invalid port \"http\": \"http\" is not a port number"),
            ("90-80", "invalid port \"90-80\": port range 90-80 runs backwards"),
            ("[::1:80:80", "invalid port \"[::1:80:80\": expected [ip:][host:]container[/proto]"),
            ("1:2:3:4", "invalid port \"1:2:3:4\": expected [ip:][host:]container[/proto]"),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_port_spec(spec).unwrap_err(), want, "{spec}");
        }
    }
}
