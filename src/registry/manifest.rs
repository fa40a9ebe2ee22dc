//! Image manifests and indexes as registries serve them, checked before use.
//!
//! Four media types are understood: Docker's image manifest v2 schema 2 and
//! manifest list (<https://distribution.github.io/distribution/spec/manifest-v2-2/>),
//! and OCI's image manifest and image index
//! (<https://github.com/opencontainers/image-spec/blob/main/manifest.md>,
//! `image-index.md`). A manifest is refused when it is larger than 4 MiB,
//! is not schema version 2, carries both `manifests` and `layers` (or
//! `config`), declares a `mediaType` that contradicts the `Content-Type` it
//! was served with or its own shape, or has a descriptor whose digest is not
//! a well-formed sha256 or whose media type is not a layer berth can unpack.
//! An index entry is chosen by [`super::platform::Platform`].

use serde::Deserialize;

use super::platform::Platform;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SCHEMA1: [&str; 3] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.container.image.v1+json+schema1",
];
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Layer media types berth can unpack.
pub const LAYER_TYPES: [&str; 6] = [
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

/// The `Accept` header for manifest requests.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Largest manifest accepted (containerd's limit).
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is larger than {MAX_MANIFEST_SIZE} bytes")]
    TooLarge,
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("schema 1 manifests are not supported; push the image again with a current client")]
    Schema1,
    #[error("unsupported schemaVersion {0}; only 2 is supported")]
    SchemaVersion(i64),
    #[error("manifest has both \"manifests\" and \"layers\"/\"config\"; it is neither an image nor an index")]
    Ambiguous,
    #[error("manifest mediaType {body} contradicts its Content-Type {header}")]
    ContentTypeMismatch { body: String, header: String },
    #[error("manifest mediaType {media_type} does not match its content ({reason})")]
    ShapeMismatch {
        media_type: String,
        reason: &'static str,
    },
    #[error("unsupported manifest media type {0}")]
    UnsupportedType(String),
    #[error("descriptor has invalid digest {0:?}; only sha256 digests are supported")]
    BadDigest(String),
    #[error("unsupported layer media type {0}")]
    UnsupportedLayer(String),
    #[error("unsupported config media type {0}; this is not a container image")]
    UnsupportedConfig(String),
    #[error("manifest has no layers")]
    NoLayers,
}

/// A content descriptor.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<DescriptorPlatform>,
    #[serde(default)]
    pub urls: Vec<String>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct DescriptorPlatform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl DescriptorPlatform {
    pub fn to_platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
}

/// An image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An index (manifest list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

/// A checked manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(Index),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct RawIndex {
    manifests: Vec<Descriptor>,
}

/// The media type without parameters, lower-cased.
fn bare(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_manifest_type(t: &str) -> bool {
    [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX].contains(&t)
}

fn is_index_type(t: &str) -> bool {
    t == DOCKER_LIST || t == OCI_INDEX
}

/// Whether `digest` is `sha256:` and 64 lower-case hex digits.
pub fn valid_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn check_descriptor(d: &Descriptor) -> Result<(), ManifestError> {
    if !valid_digest(&d.digest) {
        return Err(ManifestError::BadDigest(d.digest.clone()));
    }
    Ok(())
}

/// Parses and checks a manifest served with `content_type`.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, ManifestError> {
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err(ManifestError::TooLarge);
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ManifestError::Json("the top level is not an object".into()))?;
    let header = content_type.map(bare).filter(|t| !t.is_empty());
    if header.as_deref().is_some_and(|h| SCHEMA1.contains(&h)) {
        return Err(ManifestError::Schema1);
    }
    match obj.get("schemaVersion").and_then(serde_json::Value::as_i64) {
        Some(2) => {}
        Some(1) => return Err(ManifestError::Schema1),
        Some(v) => return Err(ManifestError::SchemaVersion(v)),
        None => return Err(ManifestError::Json("schemaVersion is missing".into())),
    }
    let has_manifests = obj.contains_key("manifests");
    let has_image_parts = obj.contains_key("layers") || obj.contains_key("config");
    if has_manifests && has_image_parts {
        return Err(ManifestError::Ambiguous);
    }
    let body_type = match obj.get("mediaType") {
        None => None,
        Some(serde_json::Value::String(s)) => Some(bare(s)),
        Some(_) => return Err(ManifestError::Json("mediaType is not a string".into())),
    };
    if let (Some(body), Some(header)) = (&body_type, &header) {
        if is_manifest_type(header) && body != header {
            return Err(ManifestError::ContentTypeMismatch {
                body: body.clone(),
                header: header.clone(),
            });
        }
    }
    let media_type = match (&body_type, &header) {
        (Some(b), _) => b.clone(),
        (None, Some(h)) if is_manifest_type(h) => h.clone(),
        // Untyped body served as plain JSON: OCI allows leaving it out.
        (None, _) if has_manifests => OCI_INDEX.to_string(),
        (None, _) => OCI_MANIFEST.to_string(),
    };
    if SCHEMA1.contains(&media_type.as_str()) {
        return Err(ManifestError::Schema1);
    }
    if !is_manifest_type(&media_type) {
        return Err(ManifestError::UnsupportedType(media_type));
    }
    if is_index_type(&media_type) {
        if !has_manifests {
            return Err(ManifestError::ShapeMismatch {
                media_type,
                reason: "an index needs \"manifests\"",
            });
        }
        let raw: RawIndex =
            serde_json::from_value(value).map_err(|e| ManifestError::Json(e.to_string()))?;
        for d in &raw.manifests {
            check_descriptor(d)?;
        }
        return Ok(Manifest::Index(Index {
            media_type,
            manifests: raw.manifests,
        }));
    }
    if has_manifests {
        return Err(ManifestError::ShapeMismatch {
            media_type,
            reason: "an image manifest cannot have \"manifests\"",
        });
    }
    let raw: RawManifest =
        serde_json::from_value(value).map_err(|e| ManifestError::Json(e.to_string()))?;
    check_descriptor(&raw.config)?;
    let config_type = bare(&raw.config.media_type);
    if config_type != DOCKER_CONFIG && config_type != OCI_CONFIG {
        return Err(ManifestError::UnsupportedConfig(
            raw.config.media_type.clone(),
        ));
    }
    if raw.layers.is_empty() {
        return Err(ManifestError::NoLayers);
    }
    for layer in &raw.layers {
        check_descriptor(layer)?;
        if !LAYER_TYPES.contains(&bare(&layer.media_type).as_str()) {
            return Err(ManifestError::UnsupportedLayer(layer.media_type.clone()));
        }
    }
    Ok(Manifest::Image(ImageManifest {
        media_type,
        config: raw.config,
        layers: raw.layers,
    }))
}

/// Picks the entry of `index` for `want`; on failure, the platforms there are.
pub fn select<'a>(index: &'a Index, want: &Platform) -> Result<&'a Descriptor, Vec<String>> {
    let candidates: Vec<(&Descriptor, Platform)> = index
        .manifests
        .iter()
        .filter(|d| !is_index_type(&bare(&d.media_type)))
        .filter_map(|d| d.platform.as_ref().map(|p| (d, p.to_platform())))
        .filter(|(_, p)| p.os != "unknown")
        .collect();
    candidates
        .iter()
        .filter(|(_, p)| want.matches(p))
        .max_by_key(|(_, p)| want.preference(p))
        .map(|(d, _)| *d)
        .ok_or_else(|| candidates.iter().map(|(_, p)| p.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn manifest(media_type: Option<&str>, extra: &str) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType": "{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion": 2, {mt}
              "config": {{"mediaType": "{DOCKER_CONFIG}", "digest": "{D1}", "size": 10}},
              "layers": [{{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "{D1}", "size": 20}}]
              {extra}}}"#
        )
    }

    fn index(media_type: Option<&str>, entries: &[(&str, &str, Option<&str>)]) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType": "{m}","#))
            .unwrap_or_default();
        let list: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, (os, arch, var))| {
                let var = var.map(|v| format!(r#", "variant": "{v}""#)).unwrap_or_default();
                format!(
                    r#"{{"mediaType": "{OCI_MANIFEST}", "digest": "sha256:{:064x}", "size": 5, "platform": {{"os": "{os}", "architecture": "{arch}"{var}}}}}"#,
                    i + 1
                )
            })
            .collect();
        format!(
            r#"{{"schemaVersion": 2, {mt} "manifests": [{}]}}"#,
            list.join(",")
        )
    }

    #[test]
    fn accepted_shapes() {
        let m = parse(
            manifest(Some(DOCKER_MANIFEST), "").as_bytes(),
            Some(DOCKER_MANIFEST),
        )
        .unwrap();
        assert!(
            matches!(m, Manifest::Image(ref i) if i.media_type == DOCKER_MANIFEST && i.layers.len() == 1)
        );
        // OCI manifests may omit mediaType; Content-Type then decides.
        let m = parse(manifest(None, "").as_bytes(), Some(OCI_MANIFEST)).unwrap();
        assert!(matches!(m, Manifest::Image(ref i) if i.media_type == OCI_MANIFEST));
        let m = parse(
            manifest(None, "").as_bytes(),
            Some("application/json; charset=utf-8"),
        )
        .unwrap();
        assert!(matches!(m, Manifest::Image(ref i) if i.media_type == OCI_MANIFEST));
        let m = parse(
            index(Some(DOCKER_LIST), &[("linux", "amd64", None)]).as_bytes(),
            Some(DOCKER_LIST),
        )
        .unwrap();
        assert!(matches!(m, Manifest::Index(ref i) if i.manifests.len() == 1));
        let m = parse(index(None, &[]).as_bytes(), None).unwrap();
        assert!(matches!(m, Manifest::Index(ref i) if i.media_type == OCI_INDEX));
    }

    #[test]
    fn refused_shapes() {
        let both = manifest(Some(OCI_MANIFEST), r#", "manifests": []"#);
        let cases: Vec<(String, Option<&str>, ManifestError)> = vec![
            (both.clone(), Some(OCI_MANIFEST), ManifestError::Ambiguous),
            (
                manifest(Some(DOCKER_MANIFEST), ""),
                Some(OCI_MANIFEST),
                ManifestError::ContentTypeMismatch {
                    body: DOCKER_MANIFEST.into(),
                    header: OCI_MANIFEST.into(),
                },
            ),
            (
                index(Some(OCI_INDEX), &[]),
                Some(DOCKER_LIST),
                ManifestError::ContentTypeMismatch {
                    body: OCI_INDEX.into(),
                    header: DOCKER_LIST.into(),
                },
            ),
            (
                manifest(Some(OCI_INDEX), ""),
                Some(OCI_INDEX),
                ManifestError::ShapeMismatch {
                    media_type: OCI_INDEX.into(),
                    reason: "an index needs \"manifests\"",
                },
            ),
            (
                index(Some(OCI_MANIFEST), &[]),
                None,
                ManifestError::ShapeMismatch {
                    media_type: OCI_MANIFEST.into(),
                    reason: "an image manifest cannot have \"manifests\"",
                },
            ),
            (
                r#"{"schemaVersion": 1, "fsLayers": []}"#.into(),
                None,
                ManifestError::Schema1,
            ),
            (manifest(None, ""), Some(SCHEMA1[1]), ManifestError::Schema1),
            (
                r#"{"schemaVersion": 3}"#.into(),
                None,
                ManifestError::SchemaVersion(3),
            ),
            (
                manifest(Some("text/html"), ""),
                None,
                ManifestError::UnsupportedType("text/html".into()),
            ),
            (
                manifest(None, "").replace(D1, "sha256:abc"),
                None,
                ManifestError::BadDigest("sha256:abc".into()),
            ),
            (
                manifest(None, "").replace(D1, &D1.replace("sha256", "md5")),
                None,
                ManifestError::BadDigest(D1.replace("sha256", "md5")),
            ),
            (
                manifest(None, "").replace("rootfs.diff.tar.gzip", "rootfs.foreign.diff.tar.gzip"),
                None,
                ManifestError::UnsupportedLayer(
                    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip".into(),
                ),
            ),
            (
                manifest(None, "")
                    .replace(DOCKER_CONFIG, "application/vnd.cncf.helm.config.v1+json"),
                None,
                ManifestError::UnsupportedConfig("application/vnd.cncf.helm.config.v1+json".into()),
            ),
        ];
        for (text, ct, want) in cases {
            assert_eq!(parse(text.as_bytes(), ct), Err(want), "{text}");
        }
        for junk in [
            "",
            "[]",
            "{",
            "null",
            r#"{"schemaVersion": 2, "mediaType": 5, "layers": []}"#,
        ] {
            assert!(
                matches!(parse(junk.as_bytes(), None), Err(ManifestError::Json(_))),
                "{junk}"
            );
        }
        let big = vec![b' '; MAX_MANIFEST_SIZE + 1];
        assert_eq!(parse(&big, None), Err(ManifestError::TooLarge));
        let no_layers = manifest(None, "").replace(
            &format!(r#"[{{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "{D1}", "size": 20}}]"#),
            "[]",
        );
        assert_eq!(
            parse(no_layers.as_bytes(), None),
            Err(ManifestError::NoLayers)
        );
    }

    #[test]
    fn platform_selection() {
        let text = index(
            None,
            &[
                ("linux", "arm", Some("v6")),
                ("linux", "arm", Some("v7")),
                ("linux", "arm64", Some("v8")),
                ("linux", "amd64", None),
                ("unknown", "unknown", None),
                ("windows", "amd64", None),
            ],
        );
        let Manifest::Index(idx) = parse(text.as_bytes(), None).unwrap() else {
            panic!("index expected")
        };
        let pick = |p: &str| select(&idx, &p.parse().unwrap()).map(|d| d.digest.clone());
        let n = |i: u32| format!("sha256:{i:064x}");
        assert_eq!(pick("linux/amd64"), Ok(n(4)));
        assert_eq!(pick("linux/arm64"), Ok(n(3)));
        assert_eq!(pick("linux/arm64/v8"), Ok(n(3)));
        assert_eq!(pick("linux/arm/v7"), Ok(n(2)));
        assert_eq!(pick("linux/arm/v6"), Ok(n(1)));
        assert_eq!(pick("windows/amd64"), Ok(n(6)));
        let err = pick("linux/s390x").unwrap_err();
        assert_eq!(
            err,
            vec![
                "linux/arm/v6",
                "linux/arm/v7",
                "linux/arm64/v8",
                "linux/amd64",
                "windows/amd64"
            ]
        );
    }
}
