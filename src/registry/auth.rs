//! Registry authentication: `WWW-Authenticate` challenges and bearer tokens.
//!
//! A registry answers an unauthenticated request with `401` and a challenge
//! (RFC 7235): `Basic realm="…"` means "send Basic credentials on every
//! request"; `Bearer realm="https://auth.example/token",service="…",scope="…"`
//! means "get a token from the realm and send it as `Bearer TOKEN`", as
//! described in <https://distribution.github.io/distribution/spec/auth/token/>.
//! The token request is `GET realm?service=S&scope=repository:NAME:pull[,push]`,
//! with Basic credentials when the user has some for the registry, and the
//! answer is JSON with `token` (or `access_token`) and `expires_in`.
//!
//! Credential policy (stricter than Docker's): the user's credentials for a
//! registry go to a token realm only when the realm is on the same host as
//! the registry, or when the realm is https and shares the registry's parent
//! domain (Docker Hub: `registry-1.docker.io` → `auth.docker.io`). A token
//! issued for a registry is only ever sent to that registry's own origin.

use std::collections::BTreeMap;

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value; `None` when it is neither a
/// Basic nor a usable Bearer challenge.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.split_once(char::is_whitespace) {
        Some((s, r)) => (s, r),
        None => (header, ""),
    };
    let params = parse_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let realm = params.get("realm")?.clone();
        if realm.is_empty() {
            return None;
        }
        return Some(Challenge::Bearer {
            realm,
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        });
    }
    None
}

/// `key=value` and `key="quoted, value"` pairs separated by commas.
fn parse_params(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        let key = key.trim().to_ascii_lowercase();
        if !key.is_empty() {
            out.insert(key, value.trim().to_string());
        }
        if chars.peek().is_none() {
            break;
        }
    }
    out
}

/// The answer of a token endpoint.
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token, whichever field carried it.
    pub fn into_token(self) -> Option<String> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
    }
}

/// The scope string for a repository: `repository:NAME:ACTIONS`.
pub fn repository_scope(repository: &str, push: bool) -> String {
    if push {
        format!("repository:{repository}:pull,push")
    } else {
        format!("repository:{repository}:pull")
    }
}

/// Whether the user's credentials for the registry at `registry_host`
/// (scheme `registry_scheme`) may be sent to a token realm.
pub fn realm_may_get_credentials(
    registry_scheme: &str,
    registry_host: &str,
    realm: &url::Url,
) -> bool {
    let Some(realm_host) = realm.host_str() else {
        return false;
    };
    let realm_port = realm.port_or_known_default();
    let (reg_name, reg_port) = crate::registry::config::split_host_port(registry_host);
    let reg_name = reg_name.trim_start_matches('[').trim_end_matches(']');
    let realm_name = realm_host.trim_start_matches('[').trim_end_matches(']');
    if realm_name.eq_ignore_ascii_case(reg_name) {
        let reg_port: Option<u16> = match reg_port {
            Some(p) => p.parse().ok(),
            None => Some(if registry_scheme == "http" { 80 } else { 443 }),
        };
        // Same host and port; never downgrade from https to http.
        return realm_port == reg_port && !(registry_scheme == "https" && realm.scheme() == "http");
    }
    if realm.scheme() != "https" {
        return false;
    }
    let is_name = |h: &str| h.parse::<std::net::IpAddr>().is_err() && h.contains('.');
    if !is_name(realm_name) || !is_name(reg_name) {
        return false;
    }
    parent_domain(realm_name).eq_ignore_ascii_case(parent_domain(reg_name))
}

/// The last two labels of a DNS name.
fn parent_domain(name: &str) -> &str {
    let name = name.trim_end_matches('.');
    let mut dots = name.rmatch_indices('.');
    dots.next();
    match dots.next() {
        Some((i, _)) => &name[i + 1..],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let cases: &[(&str, Option<Challenge>)] = &[
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
                Some(Challenge::Bearer {
                    realm: "https://auth.docker.io/token".into(),
                    service: Some("registry.docker.io".into()),
                    scope: Some("repository:samalba/my-app:pull,push".into()),
                }),
            ),
            (
                r#"bearer realm=http://127.0.0.1:1/t, service="a \"b\"""#,
                Some(Challenge::Bearer {
                    realm: "http://127.0.0.1:1/t".into(),
                    service: Some("a \"b\"".into()),
                    scope: None,
                }),
            ),
            (r#"Basic realm="Registry Realm""#, Some(Challenge::Basic)),
            ("Basic", Some(Challenge::Basic)),
            (r#"Bearer service="x""#, None),
            (r#"Bearer realm="""#, None),
            ("Negotiate abc", None),
            ("", None),
            (
                r#"Bearer realm="unterminated"#,
                Some(Challenge::Bearer {
                    realm: "unterminated".into(),
                    service: None,
                    scope: None,
                }),
            ),
        ];
        for (header, want) in cases {
            assert_eq!(&parse_challenge(header), want, "{header}");
        }
    }

    #[test]
    fn token_fields() {
        let t: TokenResponse = serde_json::from_str(r#"{"token":"a","expires_in":60}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("a"));
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("b"));
        let t: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert_eq!(t.into_token(), None);
    }

    #[test]
    fn realm_credential_policy() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        let cases = [
            (
                "https",
                "registry-1.docker.io",
                "https://auth.docker.io/token",
                true,
            ),
            (
                "https",
                "registry-1.docker.io",
                "http://auth.docker.io/token",
                false,
            ),
            (
                "https",
                "reg.example.com",
                "https://auth.evil.com/token",
                false,
            ),
            (
                "https",
                "reg.example.com",
                "https://reg.example.com/token",
                true,
            ),
            (
                "https",
                "reg.example.com",
                "https://reg.example.com:444/token",
                false,
            ),
            (
                "https",
                "reg.example.com:5000",
                "https://reg.example.com:5000/t",
                true,
            ),
            (
                "https",
                "reg.example.com:5000",
                "http://reg.example.com:5000/t",
                false,
            ),
            ("http", "127.0.0.1:5000", "http://127.0.0.1:5000/t", true),
            ("http", "127.0.0.1:5000", "http://127.0.0.1:5001/t", false),
            ("http", "127.0.0.1:5000", "http://127.0.0.2:5000/t", false),
            ("https", "10.0.0.1", "https://10.0.0.2/t", false),
            ("https", "localhost:5000", "https://localhost:5000/t", true),
        ];
        for (scheme, host, realm, want) in cases {
            assert_eq!(
                realm_may_get_credentials(scheme, host, &u(realm)),
                want,
                "{scheme} {host} {realm}"
            );
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(
            repository_scope("library/busybox", false),
            "repository:library/busybox:pull"
        );
        assert_eq!(repository_scope("a/b", true), "repository:a/b:pull,push");
    }
}
