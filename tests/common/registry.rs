//! Registries and images for registry tests.
//!
//! [`Registry`] runs Debian's `docker-registry` (distribution 2.8) on a free
//! loopback port with its storage in a temp dir, plain http or with TLS (a
//! CA made with openssl, cached in `target/fixtures/registry-tls/`) and
//! htpasswd basic auth (`htpasswd -Bbn`); it is killed on drop.
//! [`OciLayout`] writes OCI image layouts by hand (busybox or synthetic
//! layers, single image or multi-platform index) that skopeo pushes.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::{busybox_rootfs_tar, fixtures_dir, once, require};

/// User and password of the authenticated registry.
pub const USER: &str = "berthuser";
pub const PASSWORD: &str = "s3cret-pass";

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running docker-registry, killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub tls: bool,
}

/// The TLS fixture: a CA and a server certificate for 127.0.0.1/localhost.
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes (once) a CA and a server certificate with openssl.
pub fn tls_fixture() -> Tls {
    require("openssl");
    let dir = fixtures_dir().join("registry-tls");
    once(&dir, |dir| {
        let staging = dir.with_extension("staging");
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(&staging).unwrap();
        let ext = staging.join("ext.cnf");
        fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        let ca_ext = staging.join("ca.cnf");
        fs::write(
            &ca_ext,
            "[req]\ndistinguished_name=dn\nx509_extensions=v3_ca\n[dn]\n[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
        )
        .unwrap();
        let sh = format!(
            "set -e; cd {d}; \
             openssl req -x509 -config ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
               -keyout ca.key -out ca.crt -days 3650 -subj '/CN=berth test CA' 2>/dev/null; \
             openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
               -out server.csr -subj '/CN=127.0.0.1' 2>/dev/null; \
             openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
               -out server.crt -days 3650 -extfile ext.cnf 2>/dev/null",
            d = staging.display()
        );
        let status = Command::new("sh").arg("-c").arg(sh).status().unwrap();
        assert!(status.success(), "openssl failed to make the test CA");
        fs::rename(&staging, dir).unwrap();
    });
    Tls {
        ca: dir.join("ca.crt"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}

impl Registry {
    /// A plain-http registry without auth.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A registry with TLS (the test CA) and htpasswd basic auth.
    pub fn start_tls_auth() -> Self {
        Self::start_with(true)
    }

    fn start_with(secure: bool) -> Self {
        require("docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .unwrap();
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).unwrap();
        let mut extra = String::new();
        if secure {
            require("htpasswd");
            let tls = tls_fixture();
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .unwrap();
            assert!(out.status.success(), "htpasswd failed");
            let htpasswd = dir.path().join("htpasswd");
            fs::write(&htpasswd, &out.stdout).unwrap();
            extra = format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                tls.cert.display(),
                tls.key.display(),
                htpasswd.display()
            );
        }
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n{extra}",
                    storage.display()
                ),
            )
            .unwrap();
            let log = fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .stdin(Stdio::null())
                .spawn()
                .expect("starting docker-registry");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Self {
                        child,
                        port,
                        dir,
                        tls: secure,
                    };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!(
                        "docker-registry exited {status}: {}",
                        fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
                    );
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = "docker-registry did not listen within 15s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("cannot start docker-registry: {last_err}");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's blob data file for `digest` (`sha256:…`).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir.path().join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }

    /// Stops the registry now (as if it crashed).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// skopeo's TLS/credential flags for this registry, for `--src`/`--dest`.
    pub fn skopeo_flags(&self, side: &str) -> Vec<String> {
        if self.tls {
            // skopeo takes every *.key in a cert dir for a client key: give
            // it a dir with only the CA.
            let trust = once(&fixtures_dir().join("registry-tls-trust"), |dir| {
                let staging = dir.with_extension("staging");
                let _ = fs::remove_dir_all(&staging);
                fs::create_dir_all(&staging).unwrap();
                fs::copy(tls_fixture().ca, staging.join("ca.crt")).unwrap();
                fs::rename(&staging, dir).unwrap();
            });
            vec![
                format!("--{side}-cert-dir={}", trust.display()),
                format!("--{side}-creds={USER}:{PASSWORD}"),
            ]
        } else {
            vec![format!("--{side}-tls-verify=false")]
        }
    }

    /// Pushes `oci:DIR:TAG` to `REPO:TAG` here with skopeo (all platforms).
    pub fn skopeo_push(&self, layout: &Path, tag: &str, repo_tag: &str) {
        require("skopeo");
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
        ]);
        cmd.args(self.skopeo_flags("dest"));
        cmd.arg(format!("oci:{}:{tag}", layout.display()));
        cmd.arg(format!("docker://{}/{repo_tag}", self.host()));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "skopeo push failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The digest skopeo sees for `REPO:TAG` here (of the raw manifest).
    pub fn skopeo_digest(&self, repo_tag: &str) -> String {
        sha256_digest(&self.skopeo_raw(repo_tag))
    }

    /// The raw manifest the registry serves for `REPO:TAG`, read by skopeo.
    pub fn skopeo_raw(&self, repo_tag: &str) -> Vec<u8> {
        require("skopeo");
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "inspect", "--raw"]);
        cmd.args(
            self.skopeo_flags("src")
                .iter()
                .map(|f| f.replace("--src-", "--")),
        );
        cmd.arg(format!("docker://{}/{repo_tag}", self.host()));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "skopeo inspect failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `sha256:HEX` of bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// gzip of bytes (deterministic: no name, mtime 0).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// An uncompressed tar of `(path, contents)` regular files (mode 0644).
pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A layer: its uncompressed tar (diff id) and its gzip (the blob).
pub struct Layer {
    pub tar: Vec<u8>,
    pub gz: Vec<u8>,
}

impl Layer {
    pub fn from_tar(tar: Vec<u8>) -> Self {
        let gz = gzip(&tar);
        Self { tar, gz }
    }
    pub fn digest(&self) -> String {
        sha256_digest(&self.gz)
    }
}

/// The busybox rootfs as one layer.
pub fn busybox_layer() -> Layer {
    // busybox_rootfs_tar() makes the rootfs under a lock file that
    // busybox_rootfs() shares (`busybox-rootfs.lock`): make the rootfs first.
    super::busybox_rootfs();
    Layer::from_tar(fs::read(busybox_rootfs_tar()).unwrap())
}

/// A layer of one file of `size` pseudo-random (incompressible) bytes.
pub fn random_layer(name: &str, size: usize, seed: u64) -> Layer {
    let mut data = vec![0u8; size];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    Layer::from_tar(tar_of(&[(name, &data)]))
}

/// The host's platform as `linux/ARCH` (Go names).
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

/// A descriptor as JSON.
fn desc(media_type: &str, digest: &str, size: usize) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": size})
}

/// An OCI image layout being written.
pub struct OciLayout {
    pub dir: PathBuf,
}

/// What was written for one image.
#[derive(Debug, Clone)]
pub struct Written {
    pub digest: String,
    pub size: usize,
    pub config_digest: String,
    pub layer_digests: Vec<String>,
}

impl OciLayout {
    pub fn new(dir: &Path) -> Self {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Writes a blob; returns its digest.
    pub fn blob(&self, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let path = self
            .dir
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap());
        fs::write(path, bytes).unwrap();
        digest
    }

    /// Writes config + manifest for `layers` on `os/arch[/variant]`.
    pub fn image(&self, layers: &[&Layer], platform: &str, cmd: &[&str]) -> Written {
        let parts: Vec<&str> = platform.split('/').collect();
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(&l.tar)).collect();
        let mut config = serde_json::json!({
            "architecture": parts[1],
            "os": parts[0],
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": cmd,
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": layers.iter().map(|_| serde_json::json!({"created_by": "berth test"})).collect::<Vec<_>>(),
        });
        if let Some(v) = parts.get(2) {
            config["variant"] = serde_json::json!(v);
        }
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = self.blob(&config_bytes);
        let mut layer_descs = Vec::new();
        let mut layer_digests = Vec::new();
        for l in layers {
            let d = self.blob(&l.gz);
            layer_descs.push(desc(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                &d,
                l.gz.len(),
            ));
            layer_digests.push(d);
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": desc("application/vnd.oci.image.config.v1+json", &config_digest, config_bytes.len()),
            "layers": layer_descs,
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        Written {
            digest: self.blob(&bytes),
            size: bytes.len(),
            config_digest,
            layer_digests,
        }
    }

    /// Writes an image index over `(image, platform)` entries; returns its digest.
    pub fn index(&self, entries: &[(&Written, &str)]) -> (String, usize) {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .map(|(w, platform)| {
                let parts: Vec<&str> = platform.split('/').collect();
                let mut p = serde_json::json!({"os": parts[0], "architecture": parts[1]});
                if let Some(v) = parts.get(2) {
                    p["variant"] = serde_json::json!(v);
                }
                let mut d = desc(
                    "application/vnd.oci.image.manifest.v1+json",
                    &w.digest,
                    w.size,
                );
                d["platform"] = p;
                d
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        (self.blob(&bytes), bytes.len())
    }

    /// Names `(digest, size, media type)` as `tag` in the layout's index.json.
    pub fn tag(&self, digest: &str, size: usize, media_type: &str, tag: &str) {
        let path = self.dir.join("index.json");
        let mut index: serde_json::Value = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| serde_json::json!({"schemaVersion": 2, "manifests": []}));
        let mut d = desc(media_type, digest, size);
        d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        index["manifests"].as_array_mut().unwrap().push(d);
        fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

/// An OCI layout with the busybox image tagged `latest` (cached).
pub fn busybox_layout() -> (PathBuf, Written) {
    let dir = fixtures_dir().join("busybox-oci");
    let info = dir.join("written.json");
    once(&dir, |dir| {
        let staging = dir.with_extension("staging");
        let _ = fs::remove_dir_all(&staging);
        let layout = OciLayout::new(&staging);
        let w = layout.image(&[&busybox_layer()], &host_platform(), &["sh"]);
        layout.tag(
            &w.digest,
            w.size,
            "application/vnd.oci.image.manifest.v1+json",
            "latest",
        );
        fs::write(
            staging.join("written.json"),
            serde_json::json!({"digest": w.digest, "size": w.size, "config": w.config_digest, "layers": w.layer_digests}).to_string(),
        )
        .unwrap();
        fs::rename(&staging, dir).unwrap();
    });
    let v: serde_json::Value = serde_json::from_slice(&fs::read(info).unwrap()).unwrap();
    let w = Written {
        digest: v["digest"].as_str().unwrap().into(),
        size: v["size"].as_u64().unwrap() as usize,
        config_digest: v["config"].as_str().unwrap().into(),
        layer_digests: v["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect(),
    };
    (dir, w)
}

/// A request a [`FakeServer`] received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A canned HTTP answer.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A tiny HTTP/1.1 server on a loopback address, one thread, recording
/// every request; for answers no real registry gives.
pub struct FakeServer {
    pub addr: std::net::SocketAddr,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FakeServer {
    /// Starts a server on `ip` (e.g. `127.0.0.1`, `127.0.0.2`), any port.
    pub fn start(ip: &str, handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind((ip, 0)).expect("binding a fake server");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handler: std::sync::Arc<Handler> = std::sync::Arc::new(handler);
        {
            let requests = requests.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let requests = requests.clone();
                            let handler = handler.clone();
                            std::thread::spawn(move || serve(stream, &*handler, &requests));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        Self {
            addr,
            requests,
            stop,
        }
    }

    /// `IP:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn serve(mut stream: TcpStream, handler: &Handler, requests: &std::sync::Mutex<Vec<Request>>) {
    use std::io::{BufRead, BufReader, Read};
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        let _ = reader.read_exact(&mut body);
        let req = Request {
            method,
            path,
            headers,
            body,
        };
        requests.lock().unwrap().push(req.clone());
        let resp = handler(&req);
        let mut out = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            resp.status,
            resp.body.len()
        );
        for (n, v) in &resp.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if req.method != "HEAD" {
            bytes.extend_from_slice(&resp.body);
        }
        if stream.write_all(&bytes).is_err() {
            return;
        }
    }
}

/// A TCP proxy in front of a registry that can cut connections after
/// `cut_after` bytes of answer, while `cuts` (a counter of connections to
/// cut) is above zero.
pub struct CuttingProxy {
    pub port: u16,
    pub cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CuttingProxy {
    pub fn start(upstream_port: u16, cut_after: usize) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let cuts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let cuts = cuts.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((client, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    client.set_nonblocking(false).unwrap();
                    let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                        continue;
                    };
                    let cuts = cuts.clone();
                    let (mut c_read, mut u_write) =
                        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c_read, &mut u_write);
                        let _ = u_write.shutdown(std::net::Shutdown::Write);
                    });
                    std::thread::spawn(move || {
                        use std::io::Read;
                        let (mut u_read, mut c_write) = (upstream, client);
                        let mut buf = [0u8; 16 * 1024];
                        let mut total = 0usize;
                        loop {
                            let n = match u_read.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            total += n;
                            if total > cut_after
                                && cuts
                                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                                        c.checked_sub(1)
                                    })
                                    .is_ok()
                            {
                                let _ = c_write.shutdown(std::net::Shutdown::Both);
                                let _ = u_read.shutdown(std::net::Shutdown::Both);
                                break;
                            }
                            if c_write.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = c_write.shutdown(std::net::Shutdown::Write);
                    });
                }
            });
        }
        Self { port, cuts, stop }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
