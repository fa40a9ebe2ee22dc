//! An HTTP client for one registry endpoint: scheme discovery, TLS trust,
//! authentication and a redirect policy that never leaks credentials.
//!
//! The distribution API (<https://distribution.github.io/distribution/spec/api/>,
//! and the OCI distribution spec <https://github.com/opencontainers/distribution-spec>)
//! is rooted at `/v2/`. [`Client::connect`] pings `GET /v2/` to choose the
//! scheme (https; plain http only for insecure registries, after https
//! failed) and to learn the auth challenge. [`Client::send`] attaches the
//! right `Authorization` (Basic, or a Bearer token fetched for the request's
//! scope and cached), answers a later `401` by fetching a token for the
//! challenge's scope and retrying once, and follows redirects itself: an
//! `Authorization` header goes only to the endpoint's own origin (scheme,
//! host and port), never to the host a redirect points at.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use url::Url;

use super::auth::{self, Challenge};
use super::config::RegistryConfig;
use super::credentials::Credentials;
use super::RegistryError;

/// The user name credential helpers give for an identity (refresh) token.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;

/// A connected registry endpoint.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    host: String,
    creds: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, String>>,
}

/// Joins an error and its sources into one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Builds the HTTP client for `host`, trusting its `certs.d` CAs.
fn http_client(config: &RegistryConfig, host: &str) -> Result<reqwest::Client, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
    for file in config.ca_files(host) {
        let pem = std::fs::read(&file).map_err(|e| RegistryError::Tls {
            registry: host.to_string(),
            message: format!("cannot read CA certificate {}: {e}", file.display()),
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| RegistryError::Tls {
                registry: host.to_string(),
                message: format!("invalid CA certificate {}: {e}", file.display()),
            })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| RegistryError::Tls {
        registry: host.to_string(),
        message: error_chain(&e),
    })
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

impl Client {
    /// Connects to the registry at `host` (`name[:port]`). `scheme` forces
    /// http or https (a mirror written with one); otherwise https is tried
    /// first and plain http only when the registry is insecure.
    pub async fn connect(
        config: &RegistryConfig,
        host: &str,
        scheme: Option<&str>,
        creds: Option<Credentials>,
    ) -> Result<Self, RegistryError> {
        let http = http_client(config, host)?;
        let schemes: Vec<&str> = match scheme {
            Some(s) => vec![s],
            None if config.is_insecure(host) => vec!["https", "http"],
            None => vec!["https"],
        };
        let mut first_error: Option<RegistryError> = None;
        for scheme in schemes {
            let base = Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
                RegistryError::Unreachable {
                    registry: host.to_string(),
                    message: format!("invalid registry address: {e}"),
                }
            })?;
            let ping = base.join("v2/").expect("static path");
            match http.get(ping).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    // An https server answering plain http says 400; keep
                    // the https error, which is the useful one.
                    if scheme == "http"
                        && first_error.is_some()
                        && status == StatusCode::BAD_REQUEST
                    {
                        break;
                    }
                    let challenge = if status == StatusCode::UNAUTHORIZED {
                        resp.headers()
                            .get_all(WWW_AUTHENTICATE)
                            .iter()
                            .filter_map(|v| v.to_str().ok())
                            .find_map(auth::parse_challenge)
                    } else {
                        None
                    };
                    tracing::debug!(%host, %scheme, %status, ?challenge, "registry ping");
                    // Credentials travel over plain http only to registries
                    // the configuration calls insecure (loopback included).
                    let creds = if scheme == "http" && !config.is_insecure(host) {
                        if creds.is_some() {
                            tracing::warn!(%host, "not sending credentials over plain http to a registry that is not in insecure-registries");
                        }
                        None
                    } else {
                        creds
                    };
                    return Ok(Self {
                        http,
                        base,
                        host: host.to_string(),
                        creds,
                        challenge: Mutex::new(challenge),
                        tokens: Mutex::new(HashMap::new()),
                    });
                }
                Err(e) => {
                    let message = error_chain(&e);
                    tracing::debug!(%host, %scheme, %message, "registry ping failed");
                    if first_error.is_none() {
                        let tls = scheme == "https"
                            && (message.contains("certificate") || message.contains("tls"));
                        first_error = Some(if tls {
                            RegistryError::Tls {
                                registry: host.to_string(),
                                message: format!(
                                    "{message}; put the registry's CA certificate in certs.d/{host}/ca.crt next to berth's config file"
                                ),
                            }
                        } else {
                            RegistryError::Unreachable {
                                registry: host.to_string(),
                                message,
                            }
                        });
                    }
                }
            }
        }
        Err(first_error.unwrap_or_else(|| RegistryError::Unreachable {
            registry: host.to_string(),
            message: "no usable scheme".into(),
        }))
    }

    /// The registry host this client talks to (`name[:port]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The endpoint's base URL (`scheme://host/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// A URL under the endpoint, e.g. `v2/library/busybox/manifests/latest`.
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("registry paths are valid URLs")
    }

    /// Resolves a `Location` header against the request URL.
    pub fn resolve_location(&self, from: &Url, resp: &Response) -> Result<Url, RegistryError> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.host.clone(),
                message: format!(
                    "{} answer to {} has no Location header",
                    resp.status(),
                    from.path()
                ),
            })?;
        from.join(loc).map_err(|e| RegistryError::Protocol {
            registry: self.host.clone(),
            message: format!("invalid Location {loc:?}: {e}"),
        })
    }

    /// The Authorization header for `scopes`, fetching a token if needed.
    async fn authorization(&self, scopes: &[String]) -> Result<Option<String>, RegistryError> {
        let challenge = self.challenge.lock().expect("lock").clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.creds.as_ref().map(Credentials::basic_header)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = scopes.join(" ");
                if let Some(token) = self.tokens.lock().expect("lock").get(&key) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes).await?;
                self.tokens.lock().expect("lock").insert(key, token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, RegistryError> {
        let mut url = Url::parse(realm).map_err(|e| RegistryError::Protocol {
            registry: self.host.clone(),
            message: format!("invalid token realm {realm:?}: {e}"),
        })?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(RegistryError::Protocol {
                registry: self.host.clone(),
                message: format!("token realm {realm:?} is not http(s)"),
            });
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for scope in scopes {
                q.append_pair("scope", scope);
            }
        }
        let creds = match &self.creds {
            Some(c) if auth::realm_may_get_credentials(self.base.scheme(), &self.host, &url) => {
                Some(c)
            }
            Some(_) => {
                tracing::warn!(realm = %url, registry = %self.host, "not sending credentials to a token realm on another host");
                None
            }
            None => None,
        };
        let request = match creds {
            // An identity token (from `docker login` with OAuth, or a
            // credential helper) is exchanged with the OAuth2 refresh-token
            // grant: distribution's spec/auth/oauth.md.
            Some(c) if c.username == IDENTITY_TOKEN_USER => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                form.append_pair("scope", &scopes.join(" "));
                form.append_pair("client_id", "berth");
                form.append_pair("refresh_token", &c.secret);
                let mut post = Url::parse(realm).expect("parsed above");
                post.set_query(None);
                let mut headers = HeaderMap::new();
                headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                (
                    Method::POST,
                    post,
                    headers,
                    Some(Bytes::from(form.finish())),
                    None,
                )
            }
            Some(c) => (
                Method::GET,
                url.clone(),
                HeaderMap::new(),
                None,
                Some(c.basic_header()),
            ),
            None => (Method::GET, url.clone(), HeaderMap::new(), None, None),
        };
        let (method, target, headers, body, auth) = request;
        let resp = self
            .follow(method, target.clone(), headers, body, auth, &target)
            .await
            .map_err(|e| match e {
                RegistryError::Unreachable { message, .. } => RegistryError::Unreachable {
                    registry: self.host.clone(),
                    message: format!("token service {}: {message}", url.host_str().unwrap_or("")),
                },
                other => other,
            })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Unauthorized {
                registry: self.host.clone(),
                detail: format!("token service answered {status}"),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Protocol {
                registry: self.host.clone(),
                message: format!("token service answered {status}"),
            });
        }
        let body = resp.bytes().await.map_err(|e| RegistryError::Unreachable {
            registry: self.host.clone(),
            message: error_chain(&e),
        })?;
        let token: auth::TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                registry: self.host.clone(),
                message: format!("token service answer is not JSON: {e}"),
            })?;
        token.into_token().ok_or_else(|| RegistryError::Protocol {
            registry: self.host.clone(),
            message: "token service answer has no token".into(),
        })
    }

    /// Sends one request, following redirects for GET and HEAD. `auth` is
    /// sent only to URLs with the same origin as `auth_origin`.
    async fn follow(
        &self,
        method: Method,
        mut url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        auth: Option<String>,
        auth_origin: &Url,
    ) -> Result<Response, RegistryError> {
        let may_redirect = method == Method::GET || method == Method::HEAD;
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(a) = &auth {
                if same_origin(&url, auth_origin) {
                    if let Ok(v) = HeaderValue::from_str(a) {
                        req = req.header(AUTHORIZATION, v);
                    }
                }
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            let resp = req.send().await.map_err(|e| RegistryError::Unreachable {
                registry: self.host.clone(),
                message: error_chain(&e),
            })?;
            if may_redirect && is_redirect(resp.status()) {
                let next = self.resolve_location(&url, &resp)?;
                tracing::debug!(from = %url, to = %next, "following redirect");
                url = next;
                continue;
            }
            return Ok(resp);
        }
        Err(RegistryError::Protocol {
            registry: self.host.clone(),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// Sends a request to the registry with authentication for `scopes`.
    /// A `401` with a new challenge is answered once (token refetched).
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<Bytes>,
        scopes: &[String],
    ) -> Result<Response, RegistryError> {
        let auth = self.authorization(scopes).await?;
        let resp = self
            .follow(
                method.clone(),
                url.clone(),
                headers.clone(),
                body.clone(),
                auth.clone(),
                &self.base,
            )
            .await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(auth::parse_challenge);
        let Some(challenge) = challenge else {
            return Ok(resp);
        };
        let mut scopes = scopes.to_vec();
        if let Challenge::Bearer { scope: Some(s), .. } = &challenge {
            for part in s.split(' ') {
                if !part.is_empty() && !scopes.iter().any(|x| x == part) {
                    scopes.push(part.to_string());
                }
            }
        }
        let retry_useful = {
            let mut current = self.challenge.lock().expect("lock");
            let changed = current.as_ref() != Some(&challenge);
            *current = Some(challenge.clone());
            changed || matches!(challenge, Challenge::Bearer { .. })
        };
        if !retry_useful || (matches!(challenge, Challenge::Basic) && self.creds.is_none()) {
            return Ok(resp);
        }
        // Drop the cached token for these scopes and retry once.
        self.tokens.lock().expect("lock").remove(&scopes.join(" "));
        let auth = self.authorization(&scopes).await?;
        if auth.is_none() {
            return Ok(resp);
        }
        self.follow(method, url, headers, body, auth, &self.base)
            .await
    }

    /// Checks that the client's credentials are accepted, as `login` does:
    /// `GET /v2/` with Basic auth, or a token fetched with them.
    pub async fn verify_login(&self) -> Result<(), RegistryError> {
        let challenge = self.challenge.lock().expect("lock").clone();
        let denied = |detail: String| RegistryError::Unauthorized {
            registry: self.host.clone(),
            detail,
        };
        match challenge {
            None => Ok(()),
            Some(Challenge::Basic) => {
                let auth = self.creds.as_ref().map(Credentials::basic_header);
                let resp = self
                    .follow(
                        Method::GET,
                        self.url("v2/"),
                        HeaderMap::new(),
                        None,
                        auth,
                        &self.base,
                    )
                    .await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(denied(format!(
                        "{}: invalid username or password",
                        resp.status()
                    )))
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                let url = Url::parse(&realm).map_err(|e| RegistryError::Protocol {
                    registry: self.host.clone(),
                    message: format!("invalid token realm {realm:?}: {e}"),
                })?;
                if !auth::realm_may_get_credentials(self.base.scheme(), &self.host, &url) {
                    return Err(RegistryError::Protocol {
                        registry: self.host.clone(),
                        message: format!(
                            "its token service {} is on another host; berth does not send credentials there",
                            url.host_str().unwrap_or("")
                        ),
                    });
                }
                self.fetch_token(&realm, service.as_deref(), &[])
                    .await
                    .map(|_| ())
            }
        }
    }

    /// The Authorization header value for a request built by the caller
    /// (streaming uploads), or None.
    pub async fn auth_header(&self, scopes: &[String]) -> Result<Option<String>, RegistryError> {
        self.authorization(scopes).await
    }

    /// A request builder for the endpoint's own origin with auth attached
    /// (for streaming bodies, which cannot be replayed after a redirect).
    pub async fn request(
        &self,
        method: Method,
        url: Url,
        scopes: &[String],
    ) -> Result<reqwest::RequestBuilder, RegistryError> {
        let mut req = self.http.request(method, url.clone());
        if same_origin(&url, &self.base) {
            if let Some(a) = self.authorization(scopes).await? {
                req = req.header(AUTHORIZATION, a);
            }
        }
        Ok(req)
    }
}

/// The first error of a distribution error body, as `CODE: message`.
pub fn error_detail(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(b) = serde_json::from_slice::<Body>(body) {
        if let Some(e) = b.errors.first() {
            return format!("{} {}: {}", status.as_u16(), e.code, e.message);
        }
    }
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    if text.trim().is_empty() {
        status.to_string()
    } else {
        format!("{status}: {}", text.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(&u("https://a:443/x"), &u("https://a/y")));
        assert!(!same_origin(&u("https://a/x"), &u("http://a/x")));
        assert!(!same_origin(&u("http://a:1/x"), &u("http://a:2/x")));
        assert!(!same_origin(&u("http://a/x"), &u("http://b/x")));
        assert!(same_origin(&u("http://A/x"), &u("http://a/x")));
    }

    #[test]
    fn error_details() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            error_detail(StatusCode::NOT_FOUND, body),
            "404 MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(error_detail(StatusCode::NOT_FOUND, b""), "404 Not Found");
        assert_eq!(
            error_detail(StatusCode::BAD_GATEWAY, b"oops\n\x1b[31m"),
            "502 Bad Gateway: oops[31m"
        );
    }
}
