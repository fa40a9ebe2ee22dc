//! Published-port specifications: the text of Docker's `-p` flag.
//!
//! Grammar (see <https://docs.docker.com/engine/network/#published-ports>):
//!
//! ```text
//! [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp]
//! IP        = IPv4 address | "[" IPv6 address "]"
//! HOSTPORT  = PORT | PORT "-" PORT | ""        ("" = random host port)
//! CONTAINER = PORT | PORT "-" PORT
//! ```
//!
//! A host range must be as long as the container range, except that a host
//! range with a single container port means "any one free port of that
//! range" (as Docker allows). No host port means a random free host port per
//! container port. Parsing is pure; choosing the actual host ports happens in
//! [`super::ports`].

use std::fmt;
use std::net::IpAddr;

/// Transport protocol of a published port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// An inclusive port range (`start == end` for a single port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    pub fn len(&self) -> usize {
        usize::from(self.end - self.start) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn ports(&self) -> impl Iterator<Item = u16> {
        self.start..=self.end
    }
}

/// How the host port of one container port is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPort {
    /// Exactly this port.
    Fixed(u16),
    /// Any free port of this range.
    AnyOf(PortRange),
    /// Any free port the kernel would hand out.
    Random,
}

/// One container port to publish, before a host port is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRequest {
    /// Host address to listen on; `None` means every host address.
    pub host_ip: Option<IpAddr>,
    pub host: HostPort,
    pub container_port: u16,
    pub proto: Proto,
}

/// Errors in a `-p` specification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port spec {spec:?}: {reason} (expected [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp])")]
pub struct PortSpecError {
    pub spec: String,
    pub reason: String,
}

/// Parses one `-p` value into the container ports it publishes.
pub fn parse(spec: &str) -> Result<Vec<PortRequest>, PortSpecError> {
    let err = |reason: String| PortSpecError {
        spec: spec.to_string(),
        reason,
    };
    if spec.is_empty() {
        return Err(err("it is empty".into()));
    }
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Proto::Tcp),
        Some((rest, "udp")) => (rest, Proto::Udp),
        Some((_, other)) => {
            return Err(err(format!(
                "unsupported protocol {other:?}, use tcp or udp"
            )))
        }
        None => (spec, Proto::Tcp),
    };
    // Split off a bracketed IPv6 address first: its colons are not separators.
    let (host_ip, rest): (Option<IpAddr>, &str) = if let Some(after) = rest.strip_prefix('[') {
        let (ip, tail) = after
            .split_once(']')
            .ok_or_else(|| err("missing ] after the IPv6 address".into()))?;
        let ip: std::net::Ipv6Addr = ip
            .parse()
            .map_err(|_| err(format!("{ip:?} is not an IPv6 address")))?;
        let tail = tail
            .strip_prefix(':')
            .ok_or_else(|| err("expected : after the bracketed IPv6 address".into()))?;
        if !tail.contains(':') {
            return Err(err(
                "an IP address needs a host port part, e.g. [::1]:8080:80 or [::1]::80".into(),
            ));
        }
        (Some(IpAddr::V6(ip)), tail)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip_text, host_text, container_text) = match (host_ip, parts.as_slice()) {
        (Some(_), [h, c]) => (None, Some(*h), *c),
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (None, [ip, h, c]) => (Some(*ip), Some(*h), *c),
        _ => {
            return Err(err(
                "too many colons; put an IPv6 address in brackets, e.g. [::1]:8080:80".into(),
            ))
        }
    };
    let host_ip = match ip_text {
        Some(text) => Some(
            text.parse::<IpAddr>()
                .map_err(|_| err(format!("{text:?} is not an IP address")))?,
        ),
        None => host_ip,
    };
    let container = parse_range(container_text, "container port").map_err(err)?;
    let host = match host_text {
        None | Some("") => None,
        Some(text) => Some(parse_range(text, "host port").map_err(err)?),
    };
    let mut out = Vec::new();
    match host {
        None => {
            for p in container.ports() {
                out.push((HostPort::Random, p));
            }
        }
        Some(h) if container.len() == 1 && h.len() > 1 => {
            out.push((HostPort::AnyOf(h), container.start));
        }
        Some(h) if h.len() == container.len() => {
            for (hp, cp) in h.ports().zip(container.ports()) {
                out.push((HostPort::Fixed(hp), cp));
            }
        }
        Some(h) => {
            return Err(err(format!(
                "host range {}-{} has {} ports but container range {}-{} has {}; they must be equally long",
                h.start,
                h.end,
                h.len(),
                container.start,
                container.end,
                container.len()
            )))
        }
    }
    Ok(out
        .into_iter()
        .map(|(host, container_port)| PortRequest {
            host_ip,
            host,
            container_port,
            proto,
        })
        .collect())
}

/// Parses all `-p` values of one container.
pub fn parse_all<S: AsRef<str>>(specs: &[S]) -> Result<Vec<PortRequest>, PortSpecError> {
    let mut out = Vec::new();
    for s in specs {
        out.extend(parse(s.as_ref())?);
    }
    Ok(out)
}

/// `-P`: every port of the image's `ExposedPorts` (`"80/tcp"`, `"53/udp"`,
/// `"8000-8002/tcp"`) published on a random host port.
pub fn exposed<S: AsRef<str>>(keys: &[S]) -> Result<Vec<PortRequest>, PortSpecError> {
    let mut out = Vec::new();
    for k in keys {
        let k = k.as_ref();
        if k.contains(':') {
            return Err(PortSpecError {
                spec: k.to_string(),
                reason: "an exposed port names no host port".into(),
            });
        }
        out.extend(parse(k)?);
    }
    out.sort_by_key(|r| (r.container_port, r.proto));
    out.dedup();
    Ok(out)
}

fn parse_port(text: &str, what: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err(format!("{what} is missing"));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {text:?} is not a number"));
    }
    match text.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(format!("{what} {text} is out of range 1-65535")),
    }
}

fn parse_range(text: &str, what: &str) -> Result<PortRange, String> {
    match text.split_once('-') {
        None => {
            let p = parse_port(text, what)?;
            Ok(PortRange { start: p, end: p })
        }
        Some((a, b)) => {
            let start = parse_port(a, what)?;
            let end = parse_port(b, what)?;
            if end < start {
                return Err(format!("{what} range {text} ends before it starts"));
            }
            Ok(PortRange { start, end })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(reqs: &[PortRequest]) -> String {
        reqs.iter()
            .map(|r| {
                let ip = r
                    .host_ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "*".into());
                let host = match r.host {
                    HostPort::Fixed(p) => p.to_string(),
                    HostPort::AnyOf(rg) => format!("{}-{}", rg.start, rg.end),
                    HostPort::Random => "?".into(),
                };
                format!("{ip}:{host}->{}/{}", r.container_port, r.proto)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn valid_specs() {
        let cases = [
            ("80", "*:?->80/tcp"),
            ("8080:80", "*:8080->80/tcp"),
            ("8080:80/udp", "*:8080->80/udp"),
            ("127.0.0.1:8080:80", "127.0.0.1:8080->80/tcp"),
            ("127.0.0.1::80", "127.0.0.1:?->80/tcp"),
            ("[::1]:8080:80", "::1:8080->80/tcp"),
            ("[::1]::80/udp", "::1:?->80/udp"),
            (
                "8000-8002:80-82",
                "*:8000->80/tcp *:8001->81/tcp *:8002->82/tcp",
            ),
            ("8000-8010:80", "*:8000-8010->80/tcp"),
            ("80-81", "*:?->80/tcp *:?->81/tcp"),
            ("53:53/udp", "*:53->53/udp"),
            (":80", "*:?->80/tcp"),
            ("65535:1", "*:65535->1/tcp"),
        ];
        for (spec, want) in cases {
            let got = parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(show(&got), want, "spec {spec}");
        }
    }

    #[test]
    fn exposed_ports_get_random_host_ports() {
        let got = exposed(&["8080/tcp", "53/udp", "80", "80/tcp", "9000-9001/tcp"]).unwrap();
        assert_eq!(
            show(&got),
            "*:?->53/udp *:?->80/tcp *:?->8080/tcp *:?->9000/tcp *:?->9001/tcp"
        );
        assert!(exposed(&["1:2/tcp"]).is_err());
        assert!(exposed(&["x/tcp"]).is_err());
    }

    #[test]
    fn invalid_specs_say_why() {
        let cases = [
            ("8080:80:90", "\"8080\" is not an IP address"),
            ("abc", "container port \"abc\" is not a number"),
            ("70000:80", "host port 70000 is out of range 1-65535"),
            (
                "80-85:90-92",
                "host range 80-85 has 6 ports but container range 90-92 has 3",
            ),
            ("", "it is empty"),
            ("80/sctp", "unsupported protocol \"sctp\""),
            ("0:80", "host port 0 is out of range"),
            ("8080:", "container port is missing"),
            ("90-80:90-80", "ends before it starts"),
            ("::1:80:80", "too many colons"),
            ("1.2.3.4:5:6:7", "too many colons"),
            ("[::1:80:80", "missing ]"),
            ("[zz]:80:80", "is not an IPv6 address"),
            ("[::1]80", "expected : after"),
            ("[::1]:80", "needs a host port part"),
            ("8080:80-81", "host range 8080-8080 has 1 ports"),
            ("-5:80", "host port is missing"),
            ("+80", "is not a number"),
            ("80/TCP", "unsupported protocol"),
        ];
        for (spec, want) in cases {
            let e = parse(spec).expect_err(spec).to_string();
            assert!(e.contains(want), "spec {spec:?}: got {e:?}, want {want:?}");
            assert!(e.contains("expected [IP:][HOSTPORT:]CONTAINERPORT"), "{e}");
        }
    }
}
