//! Registry credentials in Docker's client config file.
//!
//! `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`) holds
//! `auths` (`{"HOST": {"auth": base64("user:password")}}`), an optional
//! `credsStore` (a helper for every registry) and `credHelpers`
//! (`{"HOST": "NAME"}`, a helper per registry). A helper is the program
//! `docker-credential-NAME` speaking the protocol of
//! <https://github.com/docker/docker-credential-helpers>: `get` reads the
//! server URL on stdin and prints `{"ServerURL","Username","Secret"}`,
//! `store` reads that JSON, `erase` reads the server URL.
//!
//! Docker Hub's key is `https://index.docker.io/v1/`; any other registry is
//! keyed by its host (entries written `https://host/…` match too, as in
//! Docker's `ConvertToHostname`). Keys this module does not know are kept
//! as they are when the file is rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::{Map, Value};

/// The key Docker uses for Docker Hub in `auths` and with helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Errors reading or writing credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot read docker config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid docker config {path}: {message}; fix the file or move it away")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write docker config {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credential helper docker-credential-{helper} failed: {message}")]
    Helper { helper: String, message: String },
}

/// A user name and its password (or token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The value of a Basic `Authorization` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The key a registry host is stored under.
pub fn server_key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        other => other.to_string(),
    }
}

/// Docker's `ConvertToHostname`: `https://host:5000/v1/` → `host:5000`.
pub fn key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// Docker's client config file.
#[derive(Debug)]
pub struct DockerConfig {
    path: PathBuf,
    value: Map<String, Value>,
}

impl DockerConfig {
    /// The config dir: `$DOCKER_CONFIG` or `~/.docker`.
    pub fn dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        PathBuf::from(home).join(".docker")
    }

    /// Loads `config.json` from [`DockerConfig::dir`] (empty if missing).
    pub fn load() -> Result<Self, CredentialError> {
        Self::load_from(&Self::dir().join("config.json"))
    }

    /// Loads a config file (empty if missing).
    pub fn load_from(path: &Path) -> Result<Self, CredentialError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(CredentialError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let value = if text.trim().is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(CredentialError::Invalid {
                        path: path.to_path_buf(),
                        message: "the top level is not a JSON object".into(),
                    })
                }
                Err(e) => {
                    return Err(CredentialError::Invalid {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    })
                }
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            value,
        })
    }

    /// The file this config was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper responsible for `registry`, if any.
    fn helper_for(&self, registry: &str) -> Option<String> {
        let key = server_key(registry);
        if let Some(Value::Object(helpers)) = self.value.get("credHelpers") {
            for (k, v) in helpers {
                if (k == &key || key_host(k) == key_host(&key)) && v.is_string() {
                    return v.as_str().map(str::to_string);
                }
            }
        }
        self.value
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// The `auths` entry for `registry`, by exact key or by host.
    fn auth_entry(&self, registry: &str) -> Option<(&String, &Map<String, Value>)> {
        let key = server_key(registry);
        let Some(Value::Object(auths)) = self.value.get("auths") else {
            return None;
        };
        auths
            .iter()
            .filter_map(|(k, v)| v.as_object().map(|o| (k, o)))
            .find(|(k, _)| **k == key)
            .or_else(|| {
                auths
                    .iter()
                    .filter_map(|(k, v)| v.as_object().map(|o| (k, o)))
                    .find(|(k, _)| key_host(k) == key_host(&key))
            })
    }

    /// The credentials stored for `registry` (a reference's registry host).
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, CredentialError> {
        if let Some(helper) = self.helper_for(registry) {
            return helper_get(&helper, &server_key(registry));
        }
        let Some((_, entry)) = self.auth_entry(registry) else {
            return Ok(None);
        };
        let invalid = |message: String| CredentialError::Invalid {
            path: self.path.clone(),
            message,
        };
        if let Some(token) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            return Ok(Some(Credentials {
                username: super::client::IDENTITY_TOKEN_USER.to_string(),
                secret: token.to_string(),
            }));
        }
        if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
            if auth.is_empty() {
                return Ok(None);
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| invalid(format!("auths entry for {registry} is not base64")))?;
            let raw = String::from_utf8(raw)
                .map_err(|_| invalid(format!("auths entry for {registry} is not UTF-8")))?;
            let (user, pass) = raw.split_once(':').ok_or_else(|| {
                invalid(format!("auths entry for {registry} is not user:password"))
            })?;
            return Ok(Some(Credentials {
                username: user.to_string(),
                secret: pass.to_string(),
            }));
        }
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => Ok(Some(Credentials {
                username: u.to_string(),
                secret: p.to_string(),
            })),
            _ => Ok(None),
        }
    }

    /// Stores credentials for `registry` (through the helper when one is
    /// configured, otherwise in `auths`) and writes the file.
    pub fn store(&mut self, registry: &str, creds: &Credentials) -> Result<(), CredentialError> {
        let key = server_key(registry);
        if let Some(helper) = self.helper_for(registry) {
            helper_store(&helper, &key, creds)?;
            // Docker leaves an empty entry so `docker login` lists the server.
            self.auths_mut().insert(key, Value::Object(Map::new()));
        } else {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", creds.username, creds.secret));
            let mut entry = Map::new();
            entry.insert("auth".into(), Value::String(auth));
            // Replace any entry for the same host written another way.
            let host = key_host(&key).to_string();
            self.auths_mut().retain(|k, _| key_host(k) != host);
            self.auths_mut().insert(key, Value::Object(entry));
        }
        self.save()
    }

    /// Removes the credentials for `registry`; false when there were none.
    pub fn erase(&mut self, registry: &str) -> Result<bool, CredentialError> {
        let key = server_key(registry);
        let mut found = false;
        if let Some(helper) = self.helper_for(registry) {
            found |= helper_erase(&helper, &key)?;
        }
        let host = key_host(&key).to_string();
        let auths = self.auths_mut();
        let before = auths.len();
        auths.retain(|k, _| key_host(k) != host);
        found |= auths.len() != before;
        if found {
            self.save()?;
        }
        Ok(found)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let entry = self
            .value
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        entry.as_object_mut().expect("auths is an object")
    }

    fn save(&self) -> Result<(), CredentialError> {
        use std::os::unix::fs::PermissionsExt;
        let werr = |source| CredentialError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(werr)?;
        }
        let mut text = serde_json::to_string_pretty(&Value::Object(self.value.clone()))
            .expect("JSON values serialise");
        text.push('\n');
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(werr)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(werr)?;
        tmp.write_all(text.as_bytes()).map_err(werr)?;
        tmp.as_file().sync_all().map_err(werr)?;
        tmp.persist(&self.path).map_err(|e| werr(e.error))?;
        Ok(())
    }
}

fn run_helper(helper: &str, action: &str, input: &str) -> Result<(bool, String), CredentialError> {
    let program = format!("docker-credential-{helper}");
    let herr = |message: String| CredentialError::Helper {
        helper: helper.to_string(),
        message,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            herr(format!(
                "cannot run {program}: {e}; install it or remove it from the docker config"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| herr(format!("{program} {action}: {e}")))?;
    let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if text.is_empty() {
        text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    Ok((out.status.success(), text))
}

fn helper_get(helper: &str, key: &str) -> Result<Option<Credentials>, CredentialError> {
    let (ok, text) = run_helper(helper, "get", key)?;
    if !ok {
        if text.contains("credentials not found") {
            return Ok(None);
        }
        return Err(CredentialError::Helper {
            helper: helper.to_string(),
            message: format!("get {key}: {text}"),
        });
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let answer: Answer = serde_json::from_str(&text).map_err(|e| CredentialError::Helper {
        helper: helper.to_string(),
        message: format!("get {key}: answer is not JSON: {e}"),
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: answer.username,
        secret: answer.secret,
    }))
}

fn helper_store(helper: &str, key: &str, creds: &Credentials) -> Result<(), CredentialError> {
    let input = serde_json::json!({
        "ServerURL": key,
        "Username": creds.username,
        "Secret": creds.secret,
    })
    .to_string();
    let (ok, text) = run_helper(helper, "store", &input)?;
    if !ok {
        return Err(CredentialError::Helper {
            helper: helper.to_string(),
            message: format!("store {key}: {text}"),
        });
    }
    Ok(())
}

fn helper_erase(helper: &str, key: &str) -> Result<bool, CredentialError> {
    let (ok, text) = run_helper(helper, "erase", key)?;
    if !ok {
        if text.contains("credentials not found") {
            return Ok(false);
        }
        return Err(CredentialError::Helper {
            helper: helper.to_string(),
            message: format!("erase {key}: {text}"),
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, text).unwrap();
        let c = DockerConfig::load_from(&path).unwrap();
        (dir, c)
    }

    #[test]
    fn reads_auths_by_key_or_host() {
        let (_d, c) = config(
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
                "https://reg.example:5000/v2/": {"auth": "YTpiOmM="},
                "plain.example": {"username": "u", "password": "p"},
                "empty.example": {},
                "oauth.example": {"auth": "", "identitytoken": "refresh-me"}
            }, "other": 1}"#,
        );
        let hub = c.get("docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.secret.as_str()),
            ("user", "pass")
        );
        let reg = c.get("reg.example:5000").unwrap().unwrap();
        // The password may contain ':'.
        assert_eq!((reg.username.as_str(), reg.secret.as_str()), ("a", "b:c"));
        assert_eq!(c.get("plain.example").unwrap().unwrap().secret, "p");
        assert!(c.get("empty.example").unwrap().is_none());
        let oauth = c.get("oauth.example").unwrap().unwrap();
        assert_eq!(
            (oauth.username.as_str(), oauth.secret.as_str()),
            ("<token>", "refresh-me")
        );
        assert!(c.get("reg.example").unwrap().is_none());
        assert!(c.get("nowhere").unwrap().is_none());
    }

    #[test]
    fn hostile_files_give_errors() {
        for text in [
            "[1]",
            "{",
            r#"{"auths": {"x": {"auth": "!!"}}}"#,
            r#"{"auths": {"x": {"auth": "bm9jb2xvbg=="}}}"#,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("config.json");
            std::fs::write(&path, text).unwrap();
            let r = DockerConfig::load_from(&path).and_then(|c| c.get("x"));
            assert!(r.is_err(), "{text}");
        }
    }

    #[test]
    fn store_and_erase_keep_other_keys() {
        let (_d, mut c) =
            config(r#"{"auths": {"https://a.example/": {"auth": "eDp5"}}, "psFormat": "x"}"#);
        c.store(
            "a.example",
            &Credentials {
                username: "u".into(),
                secret: "s".into(),
            },
        )
        .unwrap();
        c.store(
            "docker.io",
            &Credentials {
                username: "h".into(),
                secret: "p".into(),
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(c.path()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["psFormat"], "x");
        assert_eq!(v["auths"]["a.example"]["auth"], "dTpz");
        assert!(v["auths"].get("https://a.example/").is_none());
        assert!(v["auths"].get(DOCKER_HUB_KEY).is_some());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(c.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(c.erase("a.example").unwrap());
        assert!(!c.erase("a.example").unwrap());
        let c = DockerConfig::load_from(c.path()).unwrap();
        assert!(c.get("a.example").unwrap().is_none());
        assert_eq!(c.get("docker.io").unwrap().unwrap().username, "h");
    }

    #[test]
    fn helpers_are_run() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let script = bin.join("docker-credential-fake");
        std::fs::write(
            &script,
            "#!/bin/sh\nread server\nif [ \"$1\" = get ] && [ \"$server\" = h.example ]; then\n  printf '{\"ServerURL\":\"h.example\",\"Username\":\"hu\",\"Secret\":\"hs\"}'\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers": {"h.example": "fake", "g.example": "fake"}, "credsStore": "missing-helper"}"#).unwrap();
        let c = DockerConfig::load_from(&path).unwrap();
        // Run with the helper dir on PATH only for this child: set PATH for the process.
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin.clone()];
        paths.extend(std::env::split_paths(&old));
        std::env::set_var("PATH", std::env::join_paths(paths).unwrap());
        let h = c.get("h.example").unwrap().unwrap();
        assert_eq!((h.username.as_str(), h.secret.as_str()), ("hu", "hs"));
        assert!(c.get("g.example").unwrap().is_none());
        // credsStore covers every other registry; a missing helper is an error.
        let err = c.get("other.example").unwrap_err().to_string();
        assert!(err.contains("docker-credential-missing-helper"), "{err}");
    }

    #[test]
    fn debug_redacts_secret() {
        let c = Credentials {
            username: "u".into(),
            secret: "topsecret".into(),
        };
        assert!(!format!("{c:?}").contains("topsecret"));
        assert_eq!(c.basic_header(), "Basic dTp0b3BzZWNyZXQ=");
    }
}
