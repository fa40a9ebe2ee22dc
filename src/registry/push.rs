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
//! be the manifest's digest.

use std::io::Read;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use url::Url;

use super::client::Client;
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
    digest: Digest,
    size: u64,
    item: Item,
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
    let manifest_bytes = store.read_blob(&image.manifest_digest)?;
    let config = RegistryConfig::load()?;
    let creds = DockerConfig::load()?.get(reference.registry())?;
    let host = api_host(reference.registry());
    let client = Client::connect(&config, host, None, creds).await?;
    let repo = reference.repository();

    let mut sources = Sources::load(root);
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
        blobs.push(Blob {
            digest: d.digest.clone(),
            size: d.size,
            item,
        });
    }
    for b in blobs.iter().skip(CONCURRENT_UPLOADS) {
        b.item.status("Waiting");
    }
    let results: Vec<Option<String>> = futures_util::stream::iter(blobs.iter().map(|b| {
        let mount_from: Vec<String> = sources
            .on_registry(&b.digest.to_string(), reference.registry())
            .into_iter()
            .filter(|r| r != repo)
            .collect();
        let client = &client;
        let store = &store;
        async move { push_blob(client, store, repo, b, mount_from).await }
    }))
    .buffer_unordered(CONCURRENT_UPLOADS)
    .try_collect()
    .await?;
    let _ = results;

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
        if announced != image.manifest_digest {
            return Err(RegistryError::DigestMismatch {
                registry: client.host().to_string(),
                what: "pushed manifest".into(),
                expected: image.manifest_digest.to_string(),
                actual: announced.to_string(),
            });
        }
    }

    for b in &blobs {
        sources.add(&b.digest.to_string(), reference.registry(), repo);
    }
    let saved = root
        .lock()
        .map_err(|e| e.to_string())
        .and_then(|_lock| sources.save(root).map_err(|e| e.to_string()));
    if let Err(e) = saved {
        tracing::warn!("cannot record blob sources: {e}");
    }
    store.with_lock(|locked| {
        locked.set_repo_digest(
            &reference
                .name_only()
                .with_digest(image.manifest_digest.clone()),
            &image.manifest_digest,
        )
    })?;
    Ok(PushOutcome {
        tag,
        digest: image.manifest_digest.clone(),
        size: manifest_bytes.len(),
    })
}

/// Pushes one blob unless the registry has it; returns where it was mounted from.
async fn push_blob(
    client: &Client,
    store: &ImageStore,
    repo: &str,
    blob: &Blob,
    mount_from: Vec<String>,
) -> Result<Option<String>, RegistryError> {
    let push_scope = auth::repository_scope(repo, true);
    let digest = &blob.digest;
    let url = client.url(&format!("v2/{repo}/blobs/{digest}"));
    let resp = client
        .send(
            Method::HEAD,
            url,
            HeaderMap::new(),
            None,
            std::slice::from_ref(&push_scope),
        )
        .await?;
    if resp.status().is_success() {
        blob.item.finish("Layer already exists");
        return Ok(None);
    }
    if resp.status() != StatusCode::NOT_FOUND {
        return Err(status_error(client, resp, &format!("blob {digest}")).await);
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
                blob.item.finish(&format!("Mounted from {from}"));
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

    blob.item.start("Pushing", blob.size);
    let path = store.blob_path(digest);
    let mut file =
        std::fs::File::open(&path).map_err(|_| StoreError::MissingBlob(digest.clone()))?;
    let size = blob.size as usize;
    let scopes = [push_scope];
    if size > CHUNK_SIZE {
        let mut offset = 0usize;
        while offset < size {
            let len = CHUNK_SIZE.min(size - offset);
            let chunk = read_chunk(&mut file, len, &path)?;
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
            blob.item.advance(len as u64);
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
        let body = read_chunk(&mut file, size, &path)?;
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
        blob.item.advance(size as u64);
    }
    blob.item.finish("Pushed");
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
