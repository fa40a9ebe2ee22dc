//! Pulling an image: manifest (by tag or digest), platform choice from an
//! index, config, and layers streamed into the store.
//!
//! Following the distribution spec's "Pulling an image"
//! (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests>):
//! `GET /v2/NAME/manifests/REF` with every manifest type in `Accept`; the
//! bytes are hashed and must match the digest asked for (or the
//! `Docker-Content-Digest` the registry announced); an index is resolved to
//! the entry for the wanted platform, fetched by digest. Blobs come from
//! `GET /v2/NAME/blobs/DIGEST` (following redirects to storage without
//! credentials), three at a time, skipping those already in the store; each
//! is streamed into a store staging file while its size is counted and its
//! digest computed, and renamed into the store only when both match. A
//! dropped connection or a 5xx is retried with backoff; a wrong size or
//! digest is not. The image is named in the store only when everything is
//! there, and a failed pull removes the blobs it wrote that nothing else uses,
//! so it leaves no partial image behind.
//!
//! Endpoints are tried in order: the configured mirrors for the reference,
//! then the registry itself (Docker Hub's API host for `docker.io`).

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::client::{error_chain, error_detail, Client};
use super::credentials::DockerConfig;
use super::manifest::{self, Descriptor, ImageManifest, Manifest};
use super::progress::{Item, Progress};
use super::sources::Sources;
use super::{auth, Platform, RegistryConfig, RegistryError};
use crate::image::{Digest, Image, ImageStore, Reference};
use crate::state::StateRoot;

/// Layers downloaded at once (Docker's max-concurrent-downloads).
const CONCURRENT_DOWNLOADS: usize = 3;
/// Attempts per blob before a transient failure is final.
const ATTEMPTS: u32 = 4;
/// First retry delay; doubled each time.
const BACKOFF: Duration = Duration::from_millis(500);
/// Largest config blob read into memory.
const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// Docker Hub's API host, which `docker.io` references are pulled from.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The image now in the store.
    pub image: Image,
    /// The digest the registry serves for the reference (the index's for a
    /// multi-platform image): Docker's repo digest.
    pub digest: Digest,
    /// False when the store already had this image under the reference.
    pub downloaded: bool,
}

/// One place to pull from.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub host: String,
    pub scheme: Option<String>,
    pub mirror: bool,
}

/// The registry host to talk to for a reference's registry.
pub(crate) fn api_host(registry: &str) -> &str {
    if registry == "docker.io" {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Mirrors for `reference` in order, then the registry itself.
pub(crate) fn endpoints(config: &RegistryConfig, reference: &Reference) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = config
        .mirrors_for(reference.registry(), reference.repository())
        .into_iter()
        .map(|m| Endpoint {
            host: m.host,
            scheme: m.scheme,
            mirror: true,
        })
        .collect();
    out.push(Endpoint {
        host: api_host(reference.registry()).to_string(),
        scheme: None,
        mirror: false,
    });
    out
}

/// Runs a short blocking step (file creation, fsync, the state lock) from
/// async code: off the worker on a multi-threaded runtime, in place on a
/// current-thread one (where `block_in_place` is not allowed).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A multi-threaded runtime for the blocking entry points.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, RegistryError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(RegistryError::Runtime)
}

/// Pulls `reference` into the store under `root` (blocking). This is what
/// `run`/`create` call when an image is missing. `platform` defaults to the
/// host's. Errors name the reference and the registry.
pub fn pull(
    root: &StateRoot,
    reference: &Reference,
    platform: Option<&Platform>,
    progress: &Progress,
) -> Result<Image, RegistryError> {
    Ok(pull_outcome(root, reference, platform, progress)?.image)
}

/// Pulls an image a command needs but the store lacks, the way `docker run`
/// does: `Unable to find image 'busybox:latest' locally`, the progress, then
/// `Digest: …` and `Status: Downloaded newer image for busybox:latest`, all
/// on stderr so the container's own stdout stays clean.
pub fn pull_missing(
    root: &StateRoot,
    reference: &Reference,
    platform: Option<&Platform>,
) -> Result<Image, RegistryError> {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "Unable to find image '{}' locally",
        reference.familiar()
    );
    drop(err);
    let outcome = pull_outcome(root, reference, platform, &Progress::auto())?;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "Digest: {}", outcome.digest);
    let _ = writeln!(
        err,
        "Status: Downloaded newer image for {}",
        reference.familiar()
    );
    Ok(outcome.image)
}

/// Like [`pull`], returning what the pull did.
pub fn pull_outcome(
    root: &StateRoot,
    reference: &Reference,
    platform: Option<&Platform>,
    progress: &Progress,
) -> Result<PullOutcome, RegistryError> {
    runtime()?.block_on(pull_async(root, reference, platform, progress))
}

/// The async form of [`pull_outcome`].
pub async fn pull_async(
    root: &StateRoot,
    reference: &Reference,
    platform: Option<&Platform>,
    progress: &Progress,
) -> Result<PullOutcome, RegistryError> {
    pull_inner(root, reference, platform, progress)
        .await
        .map_err(|e| e.context("pulling", reference.familiar()))
}

async fn pull_inner(
    root: &StateRoot,
    reference: &Reference,
    platform: Option<&Platform>,
    progress: &Progress,
) -> Result<PullOutcome, RegistryError> {
    let config = RegistryConfig::load()?;
    let docker = DockerConfig::load()?;
    let store = ImageStore::open(root)?;
    // Blobs are fetched (or found and reused) before the manifest names them.
    let _lease = store.lease()?;
    let mut last: Option<RegistryError> = None;
    for endpoint in endpoints(&config, reference) {
        let creds = docker.get(if endpoint.mirror {
            &endpoint.host
        } else {
            reference.registry()
        })?;
        let attempt = async {
            let client =
                Client::connect(&config, &endpoint.host, endpoint.scheme.as_deref(), creds).await?;
            pull_from(&store, &client, reference, platform, progress).await
        }
        .await;
        match attempt {
            Ok(outcome) => return Ok(outcome),
            Err(e) if endpoint.mirror => {
                tracing::warn!(mirror = %endpoint.host, "mirror failed, trying the next endpoint: {e}");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least the registry itself is tried"))
}

/// Reads a response body of at most `limit` bytes.
async fn read_limited(
    client: &Client,
    resp: reqwest::Response,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(RegistryError::Protocol {
            registry: client.host().to_string(),
            message: format!("{what} is larger than {limit} bytes"),
        });
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Transfer {
            registry: client.host().to_string(),
            message: format!("reading {what}: {}", error_chain(&e)),
        })?;
        body.extend_from_slice(&chunk);
        if body.len() as u64 > limit {
            return Err(RegistryError::Protocol {
                registry: client.host().to_string(),
                message: format!("{what} is larger than {limit} bytes"),
            });
        }
    }
    Ok(body)
}

/// Maps a non-success answer to an error about `what`.
pub(crate) async fn status_error(
    client: &Client,
    resp: reqwest::Response,
    what: &str,
) -> RegistryError {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let detail = error_detail(status, &body);
    let registry = client.host().to_string();
    match status {
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            registry,
            what: what.to_string(),
            detail,
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            RegistryError::Unauthorized { registry, detail }
        }
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => RegistryError::Transfer {
            registry,
            message: format!("{what}: {detail}"),
        },
        _ => RegistryError::Status {
            registry,
            detail: format!("{detail} for {what}"),
        },
    }
}

/// Fetches and checks a manifest by tag or digest. Returns the bytes, the
/// parsed manifest and its digest.
async fn fetch_manifest(
    client: &Client,
    reference: &Reference,
    by: &str,
    expected: Option<&Digest>,
) -> Result<(Vec<u8>, Manifest, Digest), RegistryError> {
    let repo = reference.repository();
    let scopes = [auth::repository_scope(repo, false)];
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(manifest::ACCEPT));
    let url = client.url(&format!("v2/{repo}/manifests/{by}"));
    let resp = client
        .send(Method::GET, url, headers, None, &scopes)
        .await?;
    if !resp.status().is_success() {
        let what = format!("manifest for {}", reference.familiar());
        return Err(status_error(client, resp, &what).await);
    }
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let announced = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Digest::parse(v).ok());
    let bytes = read_limited(client, resp, manifest::MAX_MANIFEST_SIZE as u64, "manifest").await?;
    let digest = Digest::of_bytes(&bytes);
    for want in expected.into_iter().chain(announced.as_ref()) {
        if want != &digest {
            return Err(RegistryError::DigestMismatch {
                registry: client.host().to_string(),
                what: format!("manifest {by}"),
                expected: want.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    let parsed = manifest::parse(&bytes, content_type.as_deref()).map_err(|source| {
        RegistryError::Manifest {
            registry: client.host().to_string(),
            digest: digest.to_string(),
            source,
        }
    })?;
    Ok((bytes, parsed, digest))
}

fn descriptor_digest(client: &Client, d: &Descriptor) -> Result<Digest, RegistryError> {
    Digest::parse(&d.digest).map_err(|_| RegistryError::Manifest {
        registry: client.host().to_string(),
        digest: d.digest.clone(),
        source: manifest::ManifestError::BadDigest(d.digest.clone()),
    })
}

/// The platform fields of an image config.
#[derive(serde::Deserialize)]
struct ConfigHead {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    rootfs: RootFs,
}

#[derive(serde::Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

async fn pull_from(
    store: &ImageStore,
    client: &Client,
    reference: &Reference,
    platform: Option<&Platform>,
    progress: &Progress,
) -> Result<PullOutcome, RegistryError> {
    let by = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let (top_bytes, top, repo_digest) =
        fetch_manifest(client, reference, &by, reference.digest()).await?;
    let (bytes, image_manifest, manifest_digest, from_index) = match top {
        Manifest::Image(m) => (top_bytes, m, repo_digest.clone(), false),
        Manifest::Index(index) => {
            let want = platform.cloned().unwrap_or_else(Platform::host);
            let entry = manifest::select(&index, &want).map_err(|available| {
                RegistryError::NoMatchingPlatform {
                    platform: want.to_string(),
                    available: if available.is_empty() {
                        "none".into()
                    } else {
                        available.join(", ")
                    },
                }
            })?;
            let d = descriptor_digest(client, entry)?;
            let (bytes, m, digest) =
                fetch_manifest(client, reference, &d.to_string(), Some(&d)).await?;
            if bytes.len() as u64 != entry.size {
                return Err(RegistryError::SizeMismatch {
                    registry: client.host().to_string(),
                    what: format!("manifest {d}"),
                    expected: entry.size,
                    actual: bytes.len().to_string(),
                });
            }
            match m {
                Manifest::Image(m) => (bytes, m, digest, true),
                Manifest::Index(_) => {
                    return Err(RegistryError::Manifest {
                        registry: client.host().to_string(),
                        digest: d.to_string(),
                        source: manifest::ManifestError::ShapeMismatch {
                            media_type: entry.media_type.clone(),
                            reason: "an index entry must be an image manifest, not another index",
                        },
                    })
                }
            }
        }
    };
    let pulling = format!("{by}: Pulling from {}", reference.repository());

    // Already here under this name: nothing to download.
    if let Ok(existing) = store.resolve(&reference.to_string()) {
        if existing.manifest_digest == manifest_digest {
            progress.line(&pulling);
            record(store, reference, &repo_digest, &manifest_digest)?;
            let image = store.resolve(&reference.to_string())?;
            return Ok(PullOutcome {
                image,
                digest: repo_digest,
                downloaded: false,
            });
        }
    }

    let mut written: Vec<Digest> = Vec::new();
    let result = fetch_blobs(
        &Source {
            store,
            client,
            reference,
        },
        &image_manifest,
        platform.filter(|_| !from_index),
        progress,
        &pulling,
        &mut written,
    )
    .await;
    let result = match result {
        Ok(()) => {
            let media_type = image_manifest.media_type.clone();
            blocking(|| {
                store.with_lock(|locked| {
                    let d = locked.put_manifest(&bytes, &media_type)?;
                    if let Some(tagged) = tag_reference(reference) {
                        locked.tag(&tagged, &d)?;
                    }
                    locked.set_repo_digest(
                        &reference.name_only().with_digest(repo_digest.clone()),
                        &d,
                    )?;
                    Ok(d)
                })
            })
            .map_err(RegistryError::from)
        }
        Err(e) => Err(e),
    };
    let stored = match result {
        Ok(d) => d,
        Err(e) => {
            if !written.is_empty() {
                if let Err(cleanup) = store.discard_unreferenced(&written) {
                    tracing::warn!("cannot remove the blobs of the failed pull: {cleanup}");
                }
            }
            return Err(e);
        }
    };
    if stored != manifest_digest {
        return Err(RegistryError::DigestMismatch {
            registry: client.host().to_string(),
            what: "stored manifest".into(),
            expected: manifest_digest.to_string(),
            actual: stored.to_string(),
        });
    }
    record_sources(store, reference, &image_manifest);
    let image = store.resolve(&reference.to_string())?;
    Ok(PullOutcome {
        image,
        digest: repo_digest,
        downloaded: true,
    })
}

/// The tag-only form of a reference (`name:tag`), if it has a tag.
fn tag_reference(reference: &Reference) -> Option<Reference> {
    reference.tag().and_then(|t| reference.with_tag(t).ok())
}

/// Names an up-to-date image again (its repo digest may be new).
fn record(
    store: &ImageStore,
    reference: &Reference,
    repo_digest: &Digest,
    manifest_digest: &Digest,
) -> Result<(), RegistryError> {
    store.with_lock(|locked| {
        locked.set_repo_digest(
            &reference.name_only().with_digest(repo_digest.clone()),
            manifest_digest,
        )
    })?;
    Ok(())
}

fn record_sources(store: &ImageStore, reference: &Reference, m: &ImageManifest) {
    let root = store.state_root();
    let mut sources = Sources::load(root);
    for d in std::iter::once(&m.config).chain(&m.layers) {
        sources.add(&d.digest, reference.registry(), reference.repository());
    }
    let saved = root
        .lock()
        .map_err(|e| e.to_string())
        .and_then(|_lock| sources.save(root).map_err(|e| e.to_string()));
    if let Err(e) = saved {
        tracing::warn!("cannot record blob sources: {e}");
    }
}

/// Where blobs come from and go to.
struct Source<'a> {
    store: &'a ImageStore,
    client: &'a Client,
    reference: &'a Reference,
}

async fn fetch_blobs(
    source: &Source<'_>,
    m: &ImageManifest,
    check_platform: Option<&Platform>,
    progress: &Progress,
    pulling: &str,
    written: &mut Vec<Digest>,
) -> Result<(), RegistryError> {
    let Source {
        store,
        client,
        reference,
    } = *source;
    // The config first: it is small and says whether the layers fit.
    let config_digest = descriptor_digest(client, &m.config)?;
    if m.config.size > MAX_CONFIG_SIZE {
        return Err(RegistryError::Protocol {
            registry: client.host().to_string(),
            message: format!("image config is larger than {MAX_CONFIG_SIZE} bytes"),
        });
    }
    let config_bytes = if store.has_blob(&config_digest) {
        store.read_blob(&config_digest)?
    } else {
        let bytes = fetch_small_blob(client, reference, &m.config, &config_digest).await?;
        store.put_blob(&bytes[..], Some(&config_digest))?;
        written.push(config_digest.clone());
        bytes
    };
    let head: ConfigHead =
        serde_json::from_slice(&config_bytes).map_err(|e| RegistryError::Protocol {
            registry: client.host().to_string(),
            message: format!("image config {config_digest} is invalid: {e}"),
        })?;
    if head.rootfs.diff_ids.len() != m.layers.len() {
        return Err(RegistryError::Protocol {
            registry: client.host().to_string(),
            message: format!(
                "image config lists {} layers but the manifest has {}",
                head.rootfs.diff_ids.len(),
                m.layers.len()
            ),
        });
    }
    if let Some(want) = check_platform {
        let actual = Platform::new(&head.os, &head.architecture, head.variant.as_deref());
        if !want.matches(&actual) {
            return Err(RegistryError::PlatformMismatch {
                wanted: want.to_string(),
                actual: actual.to_string(),
            });
        }
    }

    progress.line(pulling);

    // Layers: skip those present, download the rest three at a time.
    let mut seen = std::collections::HashSet::new();
    let mut jobs = Vec::new();
    for layer in &m.layers {
        let digest = descriptor_digest(client, layer)?;
        if !seen.insert(digest.clone()) {
            continue;
        }
        if store.has_blob(&digest) {
            progress.line(&format!("{}: Already exists", digest_short(&digest)));
            continue;
        }
        let item = progress.item(digest_short(&digest), "Pulling fs layer");
        jobs.push((layer.clone(), digest, item));
    }
    for (_, _, item) in jobs.iter().skip(CONCURRENT_DOWNLOADS) {
        item.status("Waiting");
    }
    let done = Arc::new(std::sync::Mutex::new(Vec::new()));
    let result = futures_util::stream::iter(jobs.into_iter().map(|(layer, digest, item)| {
        let done = done.clone();
        async move {
            download_layer(store, client, reference, &layer, &digest, &item).await?;
            done.lock().expect("lock").push(digest);
            Ok::<(), RegistryError>(())
        }
    }))
    .buffer_unordered(CONCURRENT_DOWNLOADS)
    .try_collect::<Vec<()>>()
    .await;
    written.extend(done.lock().expect("lock").drain(..));
    result.map(|_| ())
}

fn digest_short(d: &Digest) -> &str {
    d.short()
}

async fn fetch_small_blob(
    client: &Client,
    reference: &Reference,
    d: &Descriptor,
    digest: &Digest,
) -> Result<Vec<u8>, RegistryError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let resp = get_blob(client, reference, digest).await?;
            let bytes = read_limited(client, resp, d.size, "image config").await?;
            check_blob(
                client,
                digest,
                d.size,
                bytes.len() as u64,
                Digest::of_bytes(&bytes),
            )?;
            Ok(bytes)
        }
        .await;
        match result {
            Err(e) if is_transient(&e) && attempt < ATTEMPTS => {
                tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
            }
            other => return other,
        }
    }
}

async fn get_blob(
    client: &Client,
    reference: &Reference,
    digest: &Digest,
) -> Result<reqwest::Response, RegistryError> {
    let repo = reference.repository();
    let scopes = [auth::repository_scope(repo, false)];
    let url = client.url(&format!("v2/{repo}/blobs/{digest}"));
    let resp = client
        .send(Method::GET, url, HeaderMap::new(), None, &scopes)
        .await?;
    if !resp.status().is_success() {
        return Err(status_error(client, resp, &format!("blob {digest}")).await);
    }
    Ok(resp)
}

fn check_blob(
    client: &Client,
    digest: &Digest,
    size: u64,
    got_size: u64,
    got: Digest,
) -> Result<(), RegistryError> {
    if got_size != size {
        return Err(RegistryError::SizeMismatch {
            registry: client.host().to_string(),
            what: format!("blob {digest}"),
            expected: size,
            actual: got_size.to_string(),
        });
    }
    if &got != digest {
        return Err(RegistryError::DigestMismatch {
            registry: client.host().to_string(),
            what: format!("blob {digest}"),
            expected: digest.to_string(),
            actual: got.to_string(),
        });
    }
    Ok(())
}

/// Whether an error may go away when the request is repeated.
fn is_transient(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Transfer { .. } | RegistryError::Unreachable { .. }
    )
}

async fn download_layer(
    store: &ImageStore,
    client: &Client,
    reference: &Reference,
    layer: &Descriptor,
    digest: &Digest,
    item: &Item,
) -> Result<(), RegistryError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_download(store, client, reference, layer, digest, item).await {
            Err(e) if is_transient(&e) && attempt < ATTEMPTS => {
                let wait = BACKOFF * 2u32.pow(attempt - 1);
                tracing::debug!(%digest, attempt, "retrying blob download: {e}");
                item.reset(&format!("Retrying in {}ms", wait.as_millis()));
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                item.finish("Failed");
                return Err(e);
            }
            Ok(()) => {
                item.finish("Pull complete");
                return Ok(());
            }
        }
    }
}

async fn try_download(
    store: &ImageStore,
    client: &Client,
    reference: &Reference,
    layer: &Descriptor,
    digest: &Digest,
    item: &Item,
) -> Result<(), RegistryError> {
    let resp = get_blob(client, reference, digest).await?;
    let registry = client.host().to_string();
    if let Some(len) = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len != layer.size {
            return Err(RegistryError::SizeMismatch {
                registry,
                what: format!("blob {digest}"),
                expected: layer.size,
                actual: len.to_string(),
            });
        }
    }
    item.start("Downloading", layer.size);
    let mut writer = blocking(|| store.blob_writer())?;
    let mut count: u64 = 0;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Transfer {
            registry: registry.clone(),
            message: format!("downloading blob {digest}: {}", error_chain(&e)),
        })?;
        count += chunk.len() as u64;
        if count > layer.size {
            return Err(RegistryError::SizeMismatch {
                registry,
                what: format!("blob {digest}"),
                expected: layer.size,
                actual: format!("more than {}", layer.size),
            });
        }
        writer.write_all(&chunk).map_err(|e| {
            RegistryError::Store(crate::image::StoreError::Io {
                path: store.state_root().tmp_dir(),
                source: e,
            })
        })?;
        item.advance(chunk.len() as u64);
    }
    if count < layer.size {
        return Err(RegistryError::Transfer {
            registry,
            message: format!("blob {digest} ended after {count} of {} bytes", layer.size),
        });
    }
    item.status("Verifying Checksum");
    blocking(|| writer.commit(Some(digest))).map_err(|e| match e {
        crate::image::StoreError::DigestMismatch { expected, actual } => {
            RegistryError::DigestMismatch {
                registry,
                what: format!("blob {digest}"),
                expected: expected.to_string(),
                actual: actual.to_string(),
            }
        }
        other => RegistryError::Store(other),
    })?;
    item.status("Download complete");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_mirrors_then_the_registry() {
        let config = RegistryConfig::from_toml(
            "[registry-mirrors]\n\"docker.io\" = [\"http://127.0.0.1:5000\", \"m.example\"]\n",
            std::path::Path::new("/x/config.toml"),
        )
        .unwrap();
        let r = Reference::parse("busybox").unwrap();
        let e = endpoints(&config, &r);
        let got: Vec<(&str, Option<&str>, bool)> = e
            .iter()
            .map(|e| (e.host.as_str(), e.scheme.as_deref(), e.mirror))
            .collect();
        assert_eq!(
            got,
            vec![
                ("127.0.0.1:5000", Some("http"), true),
                ("m.example", None, true),
                (DOCKER_HUB_API, None, false),
            ]
        );
        let r = Reference::parse("localhost:5000/a/b:c").unwrap();
        let e = endpoints(&config, &r);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].host, "localhost:5000");
    }

    #[test]
    fn blocking_steps_work_on_both_runtime_flavors() {
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(current.block_on(async { blocking(|| 1) }), 1);
        let multi = runtime().unwrap();
        assert_eq!(multi.block_on(async { blocking(|| 2) }), 2);
        assert_eq!(blocking(|| 3), 3);
    }
}
