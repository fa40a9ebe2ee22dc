//! Pushing an image: blobs first (skipping those the registry has, mounting
//! those it has in another repository), then the manifest.
//!
//! Following the distribution spec's "Pushing"
//! (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs>):
//! `HEAD /v2/NAME/blobs/DIGEST` tells whether a blob is there; if berth knows
//! the blob lives in another repository of the same registry it asks for a
//! cross-repository mount (`POST …/blobs/uploads/?mount=DIGEST&from=OTHER`,
//! `201` = mounted, `202` = an upload session instead). Otherwise an upload
//! session is opened with `POST …/blobs/uploads/` and the blob sent either
//! monolithically (`PUT <location>?digest=DIGEST` with the body) when it is
//! small, or in chunks (`PATCH <location>` with `Content-Range`, then an
//! empty `PUT …?digest=`). Last, `PUT /v2/NAME/manifests/TAG` with the
//! manifest's own media type; the registry's `Docker-Content-Digest` must
//! be the manifest's digest. Plain layer tars are gzipped on the way out
//! and the manifest sent names the compressed blobs (see [`super::compress`]).

use std::io::Read;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use url::Url;

use super::client::Client;
use super::compress::{compressed_type, gzip_blob, Compressions};
use super::credentials::DockerConfig;
use super::progress::{Item, Progress};
use super::pull::{api_host, runtime, status_error};
use super::sources::Sources;
use super::{auth, RegistryConfig, RegistryError};
use crate::image::{Digest, ImageStore, Reference, StoreError};
use crate::state::StateRoot;

/// Blobs up to this size go in one PUT; larger ones in PATCH chunks of it.
pub const CHUNK_SIZE: usize = 16 << 20;
/// Blobs uploaded at once.
const CONCURRENT_UPLOADS: usize = 3;

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// The tag pushed.
    pub tag: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: usize,
}

/// Pushes `reference` (a tag in the store) to its registry (blocking).
pub fn push(
    root: &StateRoot,
    reference: &Reference,
    progress: &Progress,
) -> Result<PushOutcome, RegistryError> {
    runtime()?.block_on(push_async(root, reference, progress))
}

/// The async form of [`push`].
pub async fn push_async(
    root: &StateRoot,
    reference: &Reference,
    progress: &Progress,
) -> Result<PushOutcome, RegistryError> {
    push_inner(root, reference, progress)
        .await
        .map_err(|e| e.context("pushing", reference.familiar()))
}

/// One blob to push.
struct Blob {
    /// The blob as stored.
    digest: Digest,
    size: u64,
    /// The media type to push a plain layer tar as (gzip), or `None` to push
    /// the blob as stored.
    compress_to: Option<&'static str>,
    item: Item,
}

/// A blob as the registry has it after the push.
#[derive(Debug, Clone)]
struct Pushed {
    digest: Digest,
    size: u64,
}

async fn push_inner(
    root: &StateRoot,
    reference: &Reference,
    progress: &Progress,
) -> Result<PushOutcome, RegistryError> {
    let tag = reference.tag().unwrap_or("latest").to_string();
    let store = ImageStore::open(root)?;
    let image = store.resolve(&reference.to_string()).map_err(|e| match e {
        StoreError::NotFound(_) => RegistryError::NotLocal(reference.familiar()),
        other => other.into(),
    })?;
    let config = RegistryConfig::load()?;
    let creds = DockerConfig::load()?.get(reference.registry())?;
    let host = api_host(reference.registry());
    let client = Client::connect(&config, host, None, creds).await?;
    let repo = reference.repository();

    let mut sources = Sources::load(root);
    let compressions = std::sync::Mutex::new(Compressions::load(root));
    let m = &image.layout_manifest;
    let mut blobs = Vec::new();
    for d in m.layers.iter().rev().chain(std::iter::once(&m.config)) {
        if blobs.iter().any(|b: &Blob| b.digest == d.digest) {
            continue;
        }
        let item = if d.digest == m.config.digest {
            // Docker does not show a line for the config.
            Progress::quiet().item(d.digest.short(), "Preparing")
        } else {
            progress.item(d.digest.short(), "Preparing")
        };
        let compress_to = if d.digest == m.config.digest {
            None
        } else {
            compressed_type(&d.media_type)
        };
        blobs.push(Blob {
            digest: d.digest.clone(),
            size: d.size,
            compress_to,
            item,
        });
    }
    for b in blobs.iter().skip(CONCURRENT_UPLOADS) {
        b.item.status("Waiting");
    }
    let pushed: Vec<Pushed> = futures_util::stream::iter(blobs.iter().map(|b| {
        let client = &client;
        let store = &store;
        let sources = &sources;
        let compressions = &compressions;
        async move { push_one(client, store, reference, b, sources, compressions).await }
    }))
    .buffered(CONCURRENT_UPLOADS)
    .try_collect()
    .await?;
    let pushed_as: std::collections::HashMap<&Digest, &Pushed> =
        blobs.iter().map(|b| &b.digest).zip(pushed.iter()).collect();

    // The manifest, naming the blobs as the registry has them.
    let mut manifest = m.clone();
    let mut rewritten = false;
    for l in &mut manifest.layers {
        if let (Some(to), Some(p)) = (compressed_type(&l.media_type), pushed_as.get(&l.digest)) {
            l.media_type = to.to_string();
            l.digest = p.digest.clone();
            l.size = p.size;
            rewritten = true;
        }
    }
    let manifest_bytes = if rewritten {
        serde_json::to_vec(&manifest).map_err(|e| RegistryError::Protocol {
            registry: client.host().to_string(),
            message: format!("encoding the manifest: {e}"),
        })?
    } else {
        store.read_blob(&image.manifest_digest)?
    };
    let manifest_digest = Digest::of_bytes(&manifest_bytes);
    // The manifest.
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&image.manifest_media_type).map_err(|_| RegistryError::Protocol {
            registry: client.host().to_string(),
            message: "manifest media type is not a valid header".into(),
        })?,
    );
    let scopes = [auth::repository_scope(repo, true)];
    let url = client.url(&format!("v2/{repo}/manifests/{tag}"));
    let resp = client
        .send(
            Method::PUT,
            url,
            headers,
            Some(Bytes::from(manifest_bytes.clone())),
            &scopes,
        )
        .await?;
    if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
        return Err(status_error(&client, resp, &format!("manifest {tag}")).await);
    }
    if let Some(announced) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Digest::parse(v).ok())
    {
        if announced != manifest_digest {
            return Err(RegistryError::DigestMismatch {
                registry: client.host().to_string(),
                what: "pushed manifest".into(),
                expected: manifest_digest.to_string(),
                actual: announced.to_string(),
            });
        }
    }

    for p in &pushed {
        sources.add(&p.digest.to_string(), reference.registry(), repo);
    }
    let compressions = compressions.into_inner().unwrap_or_else(|e| e.into_inner());
    let saved = root.lock().map_err(|e| e.to_string()).and_then(|_lock| {
        sources.save(root).map_err(|e| e.to_string())?;
        compressions.save(root).map_err(|e| e.to_string())
    });
    if let Err(e) = saved {
        tracing::warn!("cannot record blob sources: {e}");
    }
    // The repo digest is the registry's: the manifest as pushed.
    store.with_lock(|locked| {
        locked.set_repo_digest(
            &reference.name_only().with_digest(manifest_digest.clone()),
            &image.manifest_digest,
        )
    })?;
    Ok(PushOutcome {
        tag,
        digest: manifest_digest,
        size: manifest_bytes.len(),
    })
}

/// Pushes one blob, compressed first when it is a plain layer tar (unless
/// the registry already has what it compressed to last time); returns the
/// blob as the registry has it.
async fn push_one(
    client: &Client,
    store: &ImageStore,
    reference: &Reference,
    blob: &Blob,
    sources: &Sources,
    compressions: &std::sync::Mutex<Compressions>,
) -> Result<Pushed, RegistryError> {
    let repo = reference.repository();
    let mounts = |digest: &Digest| -> Vec<String> {
        sources
            .on_registry(&digest.to_string(), reference.registry())
            .into_iter()
            .filter(|r| r != repo)
            .collect()
    };
    if blob.compress_to.is_none() {
        let path = store.blob_path(&blob.digest);
        push_blob(
            client,
            repo,
            &blob.digest,
            blob.size,
            &path,
            &blob.item,
            mounts(&blob.digest),
        )
        .await?;
        return Ok(Pushed {
            digest: blob.digest.clone(),
            size: blob.size,
        });
    }
    let known = compressions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&blob.digest)
        .cloned();
    if let Some(c) = &known {
        if blob_exists(client, repo, &c.digest).await? {
            blob.item.finish("Layer already exists");
            return Ok(Pushed {
                digest: c.digest.clone(),
                size: c.size,
            });
        }
    }
    let (staging, c) = {
        let store = store.clone();
        let plain = blob.digest.clone();
        tokio::task::spawn_blocking(move || gzip_blob(&store, &plain))
            .await
            .map_err(|e| RegistryError::Protocol {
                registry: client.host().to_string(),
                message: format!("compressing a layer: {e}"),
            })??
    };
    compressions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(&blob.digest, c.clone());
    push_blob(
        client,
        repo,
        &c.digest,
        c.size,
        staging.path(),
        &blob.item,
        mounts(&c.digest),
    )
    .await?;
    Ok(Pushed {
        digest: c.digest,
        size: c.size,
    })
}

/// Whether the registry has `digest` in `repo` (`HEAD …/blobs/DIGEST`).
async fn blob_exists(client: &Client, repo: &str, digest: &Digest) -> Result<bool, RegistryError> {
    let url = client.url(&format!("v2/{repo}/blobs/{digest}"));
    let resp = client
        .send(
            Method::HEAD,
            url,
            HeaderMap::new(),
            None,
            &[auth::repository_scope(repo, true)],
        )
        .await?;
    if resp.status().is_success() {
        return Ok(true);
    }
    if resp.status() != StatusCode::NOT_FOUND {
        return Err(status_error(client, resp, &format!("blob {digest}")).await);
    }
    Ok(false)
}

/// Pushes the blob `digest` (its bytes in `path`) unless the registry has
/// it; returns where it was mounted from.
async fn push_blob(
    client: &Client,
    repo: &str,
    digest: &Digest,
    size: u64,
    path: &std::path::Path,
    item: &Item,
    mount_from: Vec<String>,
) -> Result<Option<String>, RegistryError> {
    let push_scope = auth::repository_scope(repo, true);
    if blob_exists(client, repo, digest).await? {
        item.finish("Layer already exists");
        return Ok(None);
    }

    // Try a cross-repository mount from each known source.
    let mut location: Option<Url> = None;
    for from in &mount_from {
        let mut url = client.url(&format!("v2/{repo}/blobs/uploads/"));
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let scopes = [push_scope.clone(), auth::repository_scope(from, false)];
        let resp = client
            .send(
                Method::POST,
                url.clone(),
                empty_body(),
                Some(Bytes::new()),
                &scopes,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => {
                item.finish(&format!("Mounted from {from}"));
                return Ok(Some(from.clone()));
            }
            StatusCode::ACCEPTED => {
                location = Some(client.resolve_location(&url, &resp)?);
                break;
            }
            _ => continue,
        }
    }
    let mut location = match location {
        Some(l) => l,
        None => {
            let url = client.url(&format!("v2/{repo}/blobs/uploads/"));
            let resp = client
                .send(
                    Method::POST,
                    url.clone(),
                    empty_body(),
                    Some(Bytes::new()),
                    std::slice::from_ref(&push_scope),
                )
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(status_error(client, resp, &format!("upload of blob {digest}")).await);
            }
            client.resolve_location(&url, &resp)?
        }
    };

    item.start("Pushing", size);
    let mut file =
        std::fs::File::open(path).map_err(|_| StoreError::MissingBlob(digest.clone()))?;
    let size = size as usize;
    let scopes = [push_scope];
    if size > CHUNK_SIZE {
        let mut offset = 0usize;
        while offset < size {
            let len = CHUNK_SIZE.min(size - offset);
            let chunk = read_chunk(&mut file, len, path)?;
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&format!("{}-{}", offset, offset + len - 1)).expect("ascii"),
            );
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
            let resp = client
                .send(
                    Method::PATCH,
                    location.clone(),
                    headers,
                    Some(chunk),
                    &scopes,
                )
                .await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(status_error(client, resp, &format!("upload of blob {digest}")).await);
            }
            location = client.resolve_location(&location, &resp)?;
            offset += len;
            item.advance(len as u64);
        }
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = client
            .send(
                Method::PUT,
                location,
                empty_body(),
                Some(Bytes::new()),
                &scopes,
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(client, resp, &format!("upload of blob {digest}")).await);
        }
    } else {
        let body = read_chunk(&mut file, size, path)?;
        location
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let resp = client
            .send(Method::PUT, location, headers, Some(body), &scopes)
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(client, resp, &format!("upload of blob {digest}")).await);
        }
        item.advance(size as u64);
    }
    item.finish("Pushed");
    Ok(None)
}

fn empty_body() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_LENGTH, HeaderValue::from(0));
    h
}

fn read_chunk(
    file: &mut std::fs::File,
    len: usize,
    path: &std::path::Path,
) -> Result<Bytes, RegistryError> {
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf).map_err(|source| {
        RegistryError::Store(StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
    })?;
    Ok(Bytes::from(buf))
}
