//! Image references, parsed and normalised as Docker does
//! (<https://github.com/distribution/reference/blob/main/reference.go>,
//! `ParseNormalizedNamed` in `normalize.go`).
//!
//! Grammar (from distribution/reference):
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [domain '/'] remote-name
//! domain     := host [':' port-number]
//! host       := domain-name | IPv4address | '[' IPv6address ']'
//! remote-name:= path-component ['/' path-component]*
//! path-component := [a-z0-9]+ (separator [a-z0-9]+)*
//! separator  := [_.] | '__' | [-]+
//! tag        := [\w][\w.-]{0,127}
//! ```
//!
//! The first component is a domain only if it contains `.` or `:` or is
//! `localhost` (upper case alone does not make one: `UPPER/x` is a
//! repository name, refused because it is not lower case, as the Docker
//! CLI refuses it); otherwise the domain is
//! `docker.io`, and single-component names on Docker Hub get `library/`.
//! A bare name gets the tag `latest`.

use std::fmt;
use std::str::FromStr;

use super::digest::{Digest, DigestError};

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const MAX_NAME_LEN: usize = 255;

/// Why a reference is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: empty reference")]
    Empty,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error("invalid reference format: {0:?} is not a valid image name (expected [registry/]name[:tag][@digest])")]
    Format(String),
    #[error("invalid reference format: tag {0:?} is not valid (up to 128 characters from [A-Za-z0-9_.-], not starting with . or -)")]
    Tag(String),
    #[error("invalid reference format: repository name {0:?} is longer than 255 characters")]
    TooLong(String),
    #[error("invalid reference format: {0}")]
    Digest(#[from] DigestError),
}

/// A normalised image reference: registry, repository, optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference as `docker pull` does.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        Self::parse_inner(s, true)
    }

    /// Parses without adding `:latest` to a bare name.
    pub fn parse_name_only(s: &str) -> Result<Self, ReferenceError> {
        Self::parse_inner(s, false)
    }

    fn parse_inner(s: &str, default_tag: bool) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(ReferenceError::Tag(tag.to_string()));
            }
        }
        if name.is_empty() {
            return Err(ReferenceError::Format(s.to_string()));
        }
        let (mut registry, mut repository) = match name.split_once('/') {
            Some((first, remainder)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if registry == LEGACY_DOMAIN {
            registry = DEFAULT_DOMAIN.to_string();
        }
        if !valid_domain(&registry) {
            return Err(ReferenceError::Format(s.to_string()));
        }
        if repository.to_lowercase() != repository {
            return Err(ReferenceError::Uppercase(repository));
        }
        if !repository.split('/').all(valid_path_component) {
            return Err(ReferenceError::Format(s.to_string()));
        }
        if registry == DEFAULT_DOMAIN && !repository.contains('/') {
            repository = format!("{OFFICIAL_REPO_PREFIX}{repository}");
        }
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong(format!("{registry}/{repository}")));
        }
        let tag = match tag {
            Some(t) => Some(t.to_string()),
            None if digest.is_none() && default_tag => Some("latest".to_string()),
            None => None,
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry host (and port), e.g. `docker.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Docker's short form of the name: `busybox`, `user/repo`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_DOMAIN {
            self.repository
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        }
    }

    /// Docker's short form: `busybox:latest`, `user/repo:tag`, `localhost:5000/x:y`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The same name with tag `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Tag(tag.to_string()));
        }
        Ok(Self {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same name pinned to `digest` (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same name without tag or digest.
    pub fn name_only(&self) -> Self {
        Self {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]`, host a dotted name of `[a-zA-Z0-9-]` labels or `[IPv6]`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip6, tail)) => {
                if ip6.is_empty()
                    || !ip6
                        .bytes()
                        .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
                {
                    return false;
                }
                (
                    None,
                    tail.strip_prefix(':')
                        .map(Some)
                        .unwrap_or(if tail.is_empty() { None } else { Some("") }),
                )
            }
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        };
        if !host.split('.').all(label_ok) {
            return false;
        }
    }
    match port {
        Some(p) => !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// Expected (full normalised form, familiar form) or an error substring.
    type Want = Result<(String, String), &'static str>;

    /// input -> want
    fn table() -> Vec<(String, Want)> {
        let ok = |i: &str, full: &str, fam: &str| {
            (i.to_string(), Ok((full.to_string(), fam.to_string())))
        };
        let err = |i: &str, e: &'static str| (i.to_string(), Err(e));
        vec![
            ok(
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ok(
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            ok(
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ok(
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ok(
                "index.docker.io/library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ok("user/repo:tag", "docker.io/user/repo:tag", "user/repo:tag"),
            ok(
                "user/repo/sub",
                "docker.io/user/repo/sub:latest",
                "user/repo/sub:latest",
            ),
            ok(
                "docker.io/library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
            ),
            ok("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            ok(
                "localhost:5000/x:y",
                "localhost:5000/x:y",
                "localhost:5000/x:y",
            ),
            ok(
                "example.com/a.b_c__d-e---f:v1.0_x-y",
                "example.com/a.b_c__d-e---f:v1.0_x-y",
                "example.com/a.b_c__d-e---f:v1.0_x-y",
            ),
            ok(
                &format!("host:5000/repo@{D}"),
                &format!("host:5000/repo@{D}"),
                &format!("host:5000/repo@{D}"),
            ),
            ok(
                &format!("busybox:1@{D}"),
                &format!("docker.io/library/busybox:1@{D}"),
                &format!("busybox:1@{D}"),
            ),
            ok(
                &format!("busybox@{D}"),
                &format!("docker.io/library/busybox@{D}"),
                &format!("busybox@{D}"),
            ),
            ok(
                "Registry.Example.com/x",
                "Registry.Example.com/x:latest",
                "Registry.Example.com/x:latest",
            ),
            ok("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
            ok(
                "127.0.0.1:5000/a/b:c",
                "127.0.0.1:5000/a/b:c",
                "127.0.0.1:5000/a/b:c",
            ),
            ok("x:_tag", "docker.io/library/x:_tag", "x:_tag"),
            err("", "empty"),
            err("Busybox", "must be lowercase"),
            err("user/Repo", "must be lowercase"),
            err("localhost/Up", "must be lowercase"),
            // Upper case alone does not make a registry host: `UPPER/x` is a
            // repository name, and those are lower case.
            err("UPPER/x:1", "must be lowercase"),
            err("Foo/bar", "must be lowercase"),
            err(
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "64-byte hexadecimal",
            ),
            err("busybox:", "tag"),
            err("busybox:-x", "tag"),
            err(&format!("busybox:{}", "a".repeat(129)), "tag"),
            err("busybox:a b", "tag"),
            err("bu$ybox", "not a valid image name"),
            err("-busybox", "not a valid image name"),
            err("busybox-", "not a valid image name"),
            err("a..b", "not a valid image name"),
            err("a/", "not a valid image name"),
            err("/a", "not a valid image name"),
            err("a//b", "not a valid image name"),
            err(":tag", "not a valid image name"),
            err("host:port/x", "not a valid image name"),
            err("-host.com/x", "not a valid image name"),
            err("busybox@sha256:abc", "invalid digest"),
            err("busybox@md5:abc", "invalid digest"),
            err("busybox@sha512:abcd", "unsupported digest algorithm"),
            err(&format!("{}/x", "a".repeat(250)), "longer than 255"),
        ]
    }

    #[test]
    fn normalises_like_docker() {
        for (input, want) in table() {
            let got = Reference::parse(&input);
            match (&want, &got) {
                (Ok((full, fam)), Ok(r)) => {
                    assert_eq!(&r.to_string(), full, "{input}");
                    assert_eq!(&r.familiar(), fam, "{input}");
                    assert_eq!(
                        Reference::parse(&r.to_string()).as_ref(),
                        Ok(r),
                        "round trip {input}"
                    );
                    assert_eq!(
                        Reference::parse(&r.familiar()).as_ref(),
                        Ok(r),
                        "familiar round trip {input}"
                    );
                }
                (Err(w), Err(e)) => assert!(e.to_string().contains(w), "{input}: {e}"),
                _ => panic!("{input}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn accessors_and_builders() {
        let r = Reference::parse("localhost:5000/team/app:v2").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "team/app");
        assert_eq!(r.tag(), Some("v2"));
        assert_eq!(r.digest(), None);
        let d = Digest::parse(D).unwrap();
        let pinned = r.with_digest(d.clone());
        assert_eq!(pinned.to_string(), format!("localhost:5000/team/app@{D}"));
        assert_eq!(pinned.digest(), Some(&d));
        assert_eq!(
            r.with_tag("v3").unwrap().familiar(),
            "localhost:5000/team/app:v3"
        );
        assert!(r.with_tag("bad tag").is_err());
        assert_eq!(Reference::parse_name_only("busybox").unwrap().tag(), None);
    }
}
