//! berth's configuration file: registry mirrors, insecure registries and
//! per-registry CA certificates.
//!
//! The file is TOML, read from `/etc/berth/config.toml` and then from the
//! user's config dir (`$XDG_CONFIG_HOME/berth/config.toml`, by default
//! `~/.config/berth/config.toml`), the user's file winning key by key. The
//! environment variable `BERTH_CONFIG` names one file to read instead of both
//! (tests use it). Keys follow Docker's `daemon.json`:
//!
//! ```toml
//! insecure-registries = ["myhost:5000", "10.0.0.0/8"]
//!
//! [registry-mirrors]
//! "docker.io" = ["https://mirror.example.com", "http://127.0.0.1:5000"]
//! "ghcr.io/myorg" = ["https://ghcr-cache.internal"]
//! ```
//!
//! A mirror key is a reference prefix (a registry, or a registry plus leading
//! path components); mirrors are tried in order for pulls, falling back to the
//! registry itself. An insecure registry may be reached over plain http;
//! as in Docker, 127.0.0.0/8, `::1` and `localhost` are insecure by default.
//! CA certificates are found like Docker's `/etc/docker/certs.d`: every
//! `*.crt` file in `certs.d/HOST[:PORT]/` next to each config file read
//! (so `/etc/berth/certs.d/…`), see
//! <https://docs.docker.com/engine/security/certificates/>.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The system-wide config file.
pub const SYSTEM_CONFIG: &str = "/etc/berth/config.toml";
/// The environment variable naming a config file to use instead.
pub const CONFIG_ENV: &str = "BERTH_CONFIG";

/// Errors reading the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config file {path}: {message}; fix or remove the entry")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileConfig {
    #[serde(default)]
    registry_mirrors: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    insecure_registries: Vec<String>,
}

/// An `insecure-registries` entry: a host (with optional port) or a CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Insecure {
    Host(String),
    Cidr(IpAddr, u8),
}

/// The registry part of berth's configuration, merged from all files read.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    mirrors: BTreeMap<String, Vec<String>>,
    insecure: Vec<Insecure>,
    certs_dirs: Vec<PathBuf>,
}

impl RegistryConfig {
    /// Loads the config from `BERTH_CONFIG`, or the system and user files.
    pub fn load() -> Result<Self, ConfigError> {
        if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            let mut config = Self::default();
            config.merge_file(&path, true)?;
            return Ok(config);
        }
        let mut config = Self::default();
        config.merge_file(Path::new(SYSTEM_CONFIG), false)?;
        if let Some(user) = user_config_path() {
            config.merge_file(&user, false)?;
        }
        Ok(config)
    }

    /// Parses one file's text (used by `load` and by tests).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        config.merge_text(text, path)?;
        Ok(config)
    }

    fn merge_file(&mut self, path: &Path, required: bool) -> Result<(), ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                // The certs.d next to a missing file is still honoured.
                if let Some(dir) = path.parent() {
                    self.certs_dirs.push(dir.join("certs.d"));
                }
                return Ok(());
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        self.merge_text(&text, path)
    }

    fn merge_text(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        for (prefix, list) in file.registry_mirrors {
            let prefix = prefix.trim_end_matches('/').to_string();
            if prefix.is_empty() || prefix.contains("://") {
                return Err(invalid(format!(
                    "registry-mirrors key {prefix:?} must be a registry host or reference prefix, without a scheme"
                )));
            }
            for mirror in &list {
                parse_mirror(mirror).map_err(&invalid)?;
            }
            self.mirrors.insert(prefix, list);
        }
        for entry in file.insecure_registries {
            let parsed = parse_insecure(&entry).map_err(&invalid)?;
            if !self.insecure.contains(&parsed) {
                self.insecure.push(parsed);
            }
        }
        if let Some(dir) = path.parent() {
            self.certs_dirs.push(dir.join("certs.d"));
        }
        Ok(())
    }

    /// Whether `host` (as in a reference: `name[:port]`) may be reached over
    /// plain http.
    pub fn is_insecure(&self, host: &str) -> bool {
        if is_loopback_host(host) {
            return true;
        }
        let (name, _) = split_host_port(host);
        self.insecure.iter().any(|entry| match entry {
            Insecure::Host(h) => h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(name),
            Insecure::Cidr(net, bits) => name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map(|ip| cidr_contains(*net, *bits, ip))
                .unwrap_or(false),
        })
    }

    /// The mirrors configured for a reference `registry/repository`: the
    /// entry of the longest matching prefix, in the order written.
    pub fn mirrors_for(&self, registry: &str, repository: &str) -> Vec<MirrorUrl> {
        let full = format!("{registry}/{repository}");
        let best = self
            .mirrors
            .iter()
            .filter(|(prefix, _)| {
                full == **prefix
                    || full.starts_with(&format!("{prefix}/"))
                    || (registry == prefix.as_str())
            })
            .max_by_key(|(prefix, _)| prefix.len());
        match best {
            Some((_, list)) => list.iter().filter_map(|m| parse_mirror(m).ok()).collect(),
            None => Vec::new(),
        }
    }

    /// PEM files of extra CA certificates for `host`, from every `certs.d`.
    pub fn ca_files(&self, host: &str) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for dir in &self.certs_dirs {
            let Ok(entries) = std::fs::read_dir(dir.join(host)) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "crt"))
                .collect();
            found.sort();
            files.extend(found);
        }
        files
    }
}

/// A parsed mirror: scheme (if written) and host[:port].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorUrl {
    /// `Some("http")`/`Some("https")` when the entry named a scheme.
    pub scheme: Option<String>,
    pub host: String,
}

fn parse_mirror(entry: &str) -> Result<MirrorUrl, String> {
    let (scheme, rest) = match entry.split_once("://") {
        Some((s, rest)) if s == "http" || s == "https" => (Some(s.to_string()), rest),
        Some((s, _)) => {
            return Err(format!(
                "mirror {entry:?} has scheme {s:?}; use http:// or https://"
            ))
        }
        None => (None, entry),
    };
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return Err(format!(
            "mirror {entry:?} must be [http[s]://]HOST[:PORT] without a path"
        ));
    }
    Ok(MirrorUrl {
        scheme,
        host: host.to_string(),
    })
}

fn parse_insecure(entry: &str) -> Result<Insecure, String> {
    let entry = entry.trim();
    if entry.contains("://") || entry.is_empty() {
        return Err(format!(
            "insecure-registries entry {entry:?} must be HOST[:PORT] or a CIDR, without a scheme"
        ));
    }
    if let Some((ip, bits)) = entry.split_once('/') {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("insecure-registries entry {entry:?} is not a valid CIDR"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits: u8 = bits.parse().ok().filter(|b| *b <= max).ok_or_else(|| {
            format!("insecure-registries entry {entry:?} has a bad prefix length")
        })?;
        return Ok(Insecure::Cidr(ip, bits));
    }
    Ok(Insecure::Host(entry.to_string()))
}

fn cidr_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Splits `host[:port]` (IPv6 literals in brackets) into name and port.
pub fn split_host_port(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let name = &host[..end + 2];
            let port = host[end + 2..].strip_prefix(':');
            return (name, port);
        }
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (host, None),
    }
}

/// Docker's default insecure set: `localhost` and loopback addresses.
pub fn is_loopback_host(host: &str) -> bool {
    let (name, _) = split_host_port(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

fn user_config_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("berth/config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RegistryConfig, ConfigError> {
        RegistryConfig::from_toml(text, Path::new("/etc/berth/config.toml"))
    }

    #[test]
    fn loopback_is_insecure_by_default() {
        let c = RegistryConfig::default();
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(c.is_insecure(host), "{host}");
        }
        for host in [
            "docker.io",
            "10.0.0.1:5000",
            "example.com:5000",
            "[2001:db8::1]",
        ] {
            assert!(!c.is_insecure(host), "{host}");
        }
    }

    #[test]
    fn insecure_hosts_and_cidrs() {
        let c = parse(r#"insecure-registries = ["myreg:5000", "other", "10.0.0.0/8", "fd00::/8"]"#)
            .unwrap();
        let cases = [
            ("myreg:5000", true),
            ("myreg:5001", false),
            ("myreg", false),
            ("other", true),
            ("other:443", true),
            ("10.1.2.3:5000", true),
            ("11.1.2.3:5000", false),
            ("[fd00::1]:5000", true),
            ("[fe80::1]", false),
        ];
        for (host, want) in cases {
            assert_eq!(c.is_insecure(host), want, "{host}");
        }
    }

    #[test]
    fn mirrors_by_longest_prefix() {
        let c = parse(
            r#"
[registry-mirrors]
"docker.io" = ["https://m1.example", "http://127.0.0.1:5000/"]
"docker.io/myorg" = ["m2.example:443"]
"#,
        )
        .unwrap();
        let m = c.mirrors_for("docker.io", "library/busybox");
        assert_eq!(
            m,
            vec![
                MirrorUrl {
                    scheme: Some("https".into()),
                    host: "m1.example".into()
                },
                MirrorUrl {
                    scheme: Some("http".into()),
                    host: "127.0.0.1:5000".into()
                }
            ]
        );
        let m = c.mirrors_for("docker.io", "myorg/app");
        assert_eq!(m[0].host, "m2.example:443");
        assert_eq!(m[0].scheme, None);
        assert!(c.mirrors_for("docker.io", "myorgx/app")[0].host == "m1.example");
        assert!(c.mirrors_for("ghcr.io", "x/y").is_empty());
        // A prefix does not match a longer registry name.
        assert!(c.mirrors_for("docker.iox", "a").is_empty());
    }

    #[test]
    fn bad_entries_are_refused() {
        let bad = [
            r#"insecure-registries = ["http://x"]"#,
            r#"insecure-registries = ["10.0.0.0/33"]"#,
            r#"insecure-registries = ["zz/8"]"#,
            r#"[registry-mirrors]
"docker.io" = ["ftp://x"]"#,
            r#"[registry-mirrors]
"docker.io" = ["https://x/path"]"#,
            r#"[registry-mirrors]
"https://docker.io" = ["x"]"#,
            r#"insecure-registries = "x""#,
            "registry-mirrors = [",
        ];
        for text in bad {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn unknown_keys_belong_to_other_parts() {
        assert!(parse("[network]\ndefault-bridge = \"x\"\n").is_ok());
    }

    #[test]
    fn certs_d_next_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "").unwrap();
        let host_dir = dir.path().join("certs.d/127.0.0.1:5443");
        std::fs::create_dir_all(&host_dir).unwrap();
        std::fs::write(host_dir.join("ca.crt"), "x").unwrap();
        std::fs::write(host_dir.join("notes.txt"), "x").unwrap();
        let c = RegistryConfig::from_toml("", &path).unwrap();
        assert_eq!(c.ca_files("127.0.0.1:5443"), vec![host_dir.join("ca.crt")]);
        assert!(c.ca_files("127.0.0.1:5444").is_empty());
    }

    #[test]
    fn split_host_port_cases() {
        assert_eq!(split_host_port("a:1"), ("a", Some("1")));
        assert_eq!(split_host_port("a"), ("a", None));
        assert_eq!(split_host_port("[::1]:5000"), ("[::1]", Some("5000")));
        assert_eq!(split_host_port("[::1]"), ("[::1]", None));
    }
}
