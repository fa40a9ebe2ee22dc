//! `login` and `logout`: check credentials against a registry and keep them
//! in Docker's config file (see [`super::credentials`]).
//!
//! Login pings `/v2/` and proves the credentials the way the registry asks:
//! Basic auth on `/v2/`, or a token request to the realm (only when the
//! realm may receive them, see [`super::auth`]). Nothing is written unless
//! the registry accepted them.

use super::client::Client;
use super::credentials::{key_host, Credentials, DockerConfig, DOCKER_HUB_KEY};
use super::pull::{api_host, runtime};
use super::{RegistryConfig, RegistryError};

/// The registry host a `login`/`logout` argument names
/// (`https://index.docker.io/v1/` and no argument mean Docker Hub).
pub fn server_host(server: Option<&str>) -> String {
    match server {
        None => "docker.io".to_string(),
        Some(s) if s == DOCKER_HUB_KEY => "docker.io".to_string(),
        Some(s) => {
            let host = key_host(s);
            match host {
                "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
                other => other.to_string(),
            }
        }
    }
}

/// Verifies `creds` with the registry at `registry` and stores them.
/// Returns the path of the config file written.
pub fn login(registry: &str, creds: Credentials) -> Result<std::path::PathBuf, RegistryError> {
    let rt = runtime()?;
    let config = RegistryConfig::load()?;
    rt.block_on(async {
        let client =
            Client::connect(&config, api_host(registry), None, Some(creds.clone())).await?;
        client.verify_login().await
    })
    .map_err(|e| e.context("logging in to", registry))?;
    let mut docker = DockerConfig::load()?;
    docker.store(registry, &creds)?;
    Ok(docker.path().to_path_buf())
}

/// Removes the credentials for `registry`; false when there were none.
pub fn logout(registry: &str) -> Result<bool, RegistryError> {
    let mut docker = DockerConfig::load()?;
    Ok(docker.erase(registry)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        let cases = [
            (None, "docker.io"),
            (Some("https://index.docker.io/v1/"), "docker.io"),
            (Some("index.docker.io"), "docker.io"),
            (Some("localhost:5000"), "localhost:5000"),
            (Some("https://reg.example:5000/v2/"), "reg.example:5000"),
        ];
        for (input, want) in cases {
            assert_eq!(server_host(input), want, "{input:?}");
        }
    }
}
