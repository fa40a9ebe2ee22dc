//! The OCI runtime spec (`config.json`) berth gives the engine, with Docker's
//! defaults.
//!
//! A container's confinement is described declaratively by the OCI runtime
//! specification (<https://github.com/opencontainers/runtime-spec>): the
//! process (args, env, cwd, user, capabilities, rlimits, no_new_privileges),
//! mounts, namespaces, cgroup resources, device rules, seccomp and the masked
//! and read-only paths. The defaults here are Docker's (moby's
//! `oci/defaults.go` and `daemon/oci_linux.go`): 14 capabilities in the
//! bounding/effective/permitted sets and none inheritable or ambient, the
//! default seccomp profile, devices denied except the standard nodes, and
//! /proc and /sys partly masked. Building the spec is pure; the caller
//! decides paths and options.

use std::path::PathBuf;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use super::seccomp;
use super::user::ResolvedUser;

/// Errors building a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error("invalid runtime spec: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error(
        "refusing to mount onto {destination} (from {origin}): mounts onto or under /proc and /sys \
         could replace the kernel files that confine the container (CVE-2019-16884); choose another path"
    )]
    KernelPath { destination: String, origin: String },
    #[error(
        "refusing to mount onto /dev (from {origin}): the runtime makes the container's /dev and its \
         device nodes, which would land in that directory; mount below it (e.g. /dev/x) or elsewhere"
    )]
    DevPath { origin: String },
}

/// Files under /proc a bind mount may replace: the ones lxcfs emulates
/// (runc and libcontainer allow the same list).
const LXCFS_PROC_FILES: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
];

/// `dest` with `.`, `..` and repeated or trailing slashes resolved
/// lexically (as the container's root sees it: `..` stops at `/`).
pub fn normalize_destination(dest: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in dest.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Refuses a mount destination onto or under /proc or /sys (runc refuses
/// them too): a bind or tmpfs there could hide the masked and read-only
/// paths, or swap `/proc/self/attr` under an LSM (CVE-2019-16884). A bind
/// (`bind: true`) may still replace one of the files lxcfs emulates.
/// `origin` says where the mount came from, for the message. Links in the
/// image are checked again when the mount is made (the engine refuses a
/// target that resolves onto procfs or sysfs).
pub fn check_destination(dest: &str, bind: bool, origin: &str) -> Result<(), SpecError> {
    let norm = normalize_destination(dest);
    let under = |top: &str| norm == top || norm.starts_with(&format!("{top}/"));
    if norm == "/dev" {
        return Err(SpecError::DevPath {
            origin: origin.to_string(),
        });
    }
    if (under("/proc") && !(bind && LXCFS_PROC_FILES.contains(&norm.as_str()))) || under("/sys") {
        return Err(SpecError::KernelPath {
            destination: norm,
            origin: origin.to_string(),
        });
    }
    Ok(())
}

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub fn default_capabilities() -> Vec<String> {
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Paths under /proc and /sys hidden from the container (Docker's list).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths under /proc made read-only (Docker's list).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The default PATH when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A bind mount from the host (`-v SRC:DST[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// Resource limits (`--memory`, `--cpus`, `--pids-limit`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// Bytes.
    pub memory: Option<i64>,
    /// Fractional CPUs.
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
}

/// The container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkNs {
    /// Join the namespace bound at this path (made by `runtime::netns`).
    Path(PathBuf),
    /// A fresh namespace made by the engine.
    New,
    /// Share the host's.
    Host,
}

/// Everything the spec depends on.
#[derive(Debug, Clone)]
pub struct SpecOptions {
    pub args: Vec<String>,
    /// Final environment (see [`build_env`]).
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ResolvedUser,
    pub hostname: String,
    pub tty: bool,
    pub rootfs: PathBuf,
    /// Per-container files bind-mounted over /etc/hosts, /etc/resolv.conf, /etc/hostname.
    pub etc_files: Vec<(PathBuf, &'static str)>,
    pub binds: Vec<BindMount>,
    /// (destination, extra mount options) for `--tmpfs`.
    pub tmpfs: Vec<(String, String)>,
    pub resources: Resources,
    pub network: NetworkNs,
    pub cgroups_path: String,
    /// Whether the host uses the unified (v2) hierarchy only.
    pub cgroup_v2: bool,
    /// The caller's hard RLIMIT_NOFILE (never raise above it).
    pub nofile_hard: u64,
}

/// The container's environment: the image's, then the user's (`-e` wins),
/// then PATH/HOSTNAME/HOME/TERM defaults where unset.
pub fn build_env(
    image_env: &[String],
    user_env: &[String],
    hostname: &str,
    home: &str,
    tty: bool,
) -> Vec<String> {
    let mut env: Vec<String> = Vec::new();
    let mut set = |kv: &str| {
        let key = kv.split('=').next().unwrap_or(kv);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.to_string());
    };
    set(&format!("PATH={DEFAULT_PATH}"));
    set(&format!("HOSTNAME={hostname}"));
    for kv in image_env.iter().chain(user_env) {
        set(kv);
    }
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if tty && !has(&env, "TERM") {
        env.push("TERM=xterm".to_string());
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": typ, "source": source, "options": options})
}

fn device_rules() -> Value {
    let allow = |typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": access});
    json!([
        {"allow": false, "access": "rwm"},
        allow("c", None, None, "m"),
        allow("b", None, None, "m"),
        allow("c", Some(1), Some(3), "rwm"),   // null
        allow("c", Some(1), Some(5), "rwm"),   // zero
        allow("c", Some(1), Some(7), "rwm"),   // full
        allow("c", Some(1), Some(8), "rwm"),   // random
        allow("c", Some(1), Some(9), "rwm"),   // urandom
        allow("c", Some(5), Some(0), "rwm"),   // tty
        allow("c", Some(5), Some(1), "rwm"),   // console
        allow("c", Some(5), Some(2), "rwm"),   // ptmx
        allow("c", Some(136), None, "rwm"),    // pts/*
        allow("c", Some(10), Some(200), "rwm") // net/tun
    ])
}

fn resources(r: &Resources) -> Value {
    let mut res = json!({"devices": device_rules()});
    if let Some(mem) = r.memory {
        // Docker's default: swap allowance equal to the memory limit
        // (memory+swap = 2x memory).
        res["memory"] = json!({"limit": mem, "swap": mem.saturating_mul(2)});
    }
    if let Some(cpus) = r.cpus {
        let period: u64 = 100_000;
        let quota = (cpus * period as f64).round() as i64;
        res["cpu"] = json!({"quota": quota, "period": period});
    }
    if let Some(pids) = r.pids_limit {
        res["pids"] = json!({"limit": pids});
    }
    res
}

/// Builds the spec.
pub fn build(opts: &SpecOptions) -> Result<Spec, SpecError> {
    let caps = default_capabilities();
    let seccomp = serde_json::to_value(seccomp::docker_default(&caps)?)?;
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
        ),
    ];
    for (src, dest) in &opts.etc_files {
        mounts.push(json!({"destination": dest, "type": "bind",
            "source": src, "options": ["rbind", "rprivate"]}));
    }
    for b in &opts.binds {
        let mut o = vec!["rbind", "rprivate"];
        if b.readonly {
            // Read-only all the way down (Docker 25+): `rro` is
            // mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY), so submounts of
            // the source (`-v /dev:/hd:ro` has /dev/shm) are read-only too.
            o.extend(["ro", "rro"]);
        }
        if normalize_destination(&b.destination).starts_with("/dev/") {
            // A host directory among the container's devices: nodes made in
            // it do not open from the container.
            o.push("nodev");
        }
        mounts.push(json!({"destination": b.destination, "type": "bind",
            "source": b.source, "options": o}));
    }
    for (dest, extra) in &opts.tmpfs {
        let mut o: Vec<&str> = vec!["nosuid", "nodev", "noexec"];
        o.extend(extra.split(',').filter(|s| !s.is_empty()));
        mounts.push(mount(dest, "tmpfs", "tmpfs", &o));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &opts.network {
        NetworkNs::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
        NetworkNs::New => namespaces.push(json!({"type": "network"})),
        NetworkNs::Host => {}
    }
    if opts.cgroup_v2 {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let nofile = 1_048_576u64.min(opts.nofile_hard);
    let mut process = json!({
        "terminal": opts.tty,
        "user": {
            "uid": opts.user.uid,
            "gid": opts.user.gid,
            "additionalGids": opts.user.additional_gids,
        },
        "args": opts.args,
        "env": opts.env,
        "cwd": opts.cwd,
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": [], "ambient": [],
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
        "noNewPrivileges": true,
        "oomScoreAdj": 0,
    });
    if opts.tty {
        process["consoleSize"] = json!({"height": 24, "width": 80});
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "root": {"path": opts.rootfs, "readonly": false},
        "hostname": opts.hostname,
        "mounts": mounts,
        "process": process,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": opts.cgroups_path,
            "resources": resources(&opts.resources),
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "seccomp": seccomp,
        },
    });
    Ok(serde_json::from_value(spec)?)
}

/// Whether the host mounts only the unified cgroup v2 hierarchy.
pub fn host_cgroup_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// The caller's hard RLIMIT_NOFILE.
pub fn nofile_hard() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard)
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SpecOptions {
        SpecOptions {
            args: vec!["sh".into()],
            env: build_env(&[], &[], "abc", "/root", false),
            cwd: "/".into(),
            user: ResolvedUser {
                uid: 33,
                gid: 33,
                additional_gids: vec![4],
                home: "/var/www".into(),
            },
            hostname: "abc".into(),
            tty: false,
            rootfs: "/r".into(),
            etc_files: vec![("/c/hosts".into(), "/etc/hosts")],
            binds: vec![BindMount {
                source: "/data".into(),
                destination: "/mnt".into(),
                readonly: true,
            }],
            tmpfs: vec![("/run".into(), "size=1m".into())],
            resources: Resources {
                memory: Some(64 << 20),
                cpus: Some(1.5),
                pids_limit: Some(100),
            },
            network: NetworkNs::Path("/n/netns".into()),
            cgroups_path: "/berth/abc".into(),
            cgroup_v2: false,
            nofile_hard: 4096,
        }
    }

    fn cap_mask(names: &[String]) -> u64 {
        names
            .iter()
            .map(|n| {
                let bit = match n.as_str() {
                    "CAP_CHOWN" => 0,
                    "CAP_DAC_OVERRIDE" => 1,
                    "CAP_FOWNER" => 3,
                    "CAP_FSETID" => 4,
                    "CAP_KILL" => 5,
                    "CAP_SETGID" => 6,
                    "CAP_SETUID" => 7,
                    "CAP_SETPCAP" => 8,
                    "CAP_NET_BIND_SERVICE" => 10,
                    "CAP_NET_RAW" => 13,
                    "CAP_SYS_CHROOT" => 18,
                    "CAP_MKNOD" => 27,
                    "CAP_AUDIT_WRITE" => 29,
                    "CAP_SETFCAP" => 31,
                    other => panic!("unexpected capability {other}"),
                };
                1u64 << bit
            })
            .sum()
    }

    #[test]
    fn docker_capabilities_are_a80425fb() {
        assert_eq!(cap_mask(&default_capabilities()), 0xa80425fb);
    }

    #[test]
    fn spec_json_has_docker_defaults() {
        let spec = build(&opts()).unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        let p = &v["process"];
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["capabilities"]["inheritable"], json!([]));
        assert_eq!(p["capabilities"]["ambient"], json!([]));
        assert_eq!(p["capabilities"]["bounding"].as_array().unwrap().len(), 14);
        assert_eq!(
            p["user"],
            json!({"uid": 33, "gid": 33, "additionalGids": [4]})
        );
        assert_eq!(p["rlimits"][0]["hard"], 4096);
        let l = &v["linux"];
        assert!(l["maskedPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/kcore")));
        assert!(l["readonlyPaths"]
            .as_array()
            .unwrap()
            .contains(&json!("/proc/sys")));
        assert_eq!(
            l["resources"]["devices"][0],
            json!({"allow": false, "access": "rwm"})
        );
        assert_eq!(l["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(l["resources"]["cpu"]["quota"], 150000);
        assert_eq!(l["resources"]["pids"]["limit"], 100);
        assert_eq!(l["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        let ns: Vec<&str> = l["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
        assert_eq!(l["namespaces"][4]["path"], "/n/netns");
        let mounts = v["mounts"].as_array().unwrap();
        let find = |d: &str| mounts.iter().find(|m| m["destination"] == d).unwrap();
        assert!(find("/dev/shm")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("size=67108864")));
        assert!(find("/sys")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert!(find("/mnt")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("ro")));
        assert_eq!(find("/etc/hosts")["source"], "/c/hosts");
        assert!(find("/run")["options"]
            .as_array()
            .unwrap()
            .contains(&json!("size=1m")));
    }

    #[test]
    fn kernel_paths_are_refused() {
        for bad in [
            "/proc",
            "/proc/",
            "/proc/sys/kernel",
            "//proc//self/attr",
            "/tmp/../proc/sys",
            "/../sys",
            "/sys",
            "/sys/fs/cgroup",
            "/./sys/kernel/",
        ] {
            let e = check_destination(bad, true, "-v x")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("refusing to mount onto /"), "{bad}: {e}");
            assert!(e.contains("(from -v x)"), "{e}");
        }
        for ok in ["/procfs", "/system", "/srv/proc", "/data", "/proc2/sys"] {
            check_destination(ok, false, "-v x").unwrap();
        }
        check_destination("/proc/cpuinfo", true, "-v x").unwrap();
        for dev in ["/dev", "/dev/", "/dev/shm/.."] {
            let e = check_destination(dev, true, "-v x")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("refusing to mount onto /dev (from -v x)"),
                "{e}"
            );
        }
        check_destination("/dev/shm", true, "-v x").unwrap();
        assert!(check_destination("/proc/cpuinfo", false, "--tmpfs").is_err());
        assert_eq!(normalize_destination("/a/./b//../c/"), "/a/c");
    }

    #[test]
    fn ro_binds_are_recursive() {
        let v = serde_json::to_value(build(&opts()).unwrap()).unwrap();
        let m = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/mnt")
            .unwrap()
            .clone();
        assert_eq!(m["options"], json!(["rbind", "rprivate", "ro", "rro"]));
    }

    #[test]
    fn host_network_and_v2() {
        let mut o = opts();
        o.network = NetworkNs::Host;
        o.cgroup_v2 = true;
        let v = serde_json::to_value(build(&o).unwrap()).unwrap();
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "cgroup"]);
    }

    #[test]
    fn env_precedence() {
        let env = build_env(
            &["PATH=/img".into(), "A=1".into()],
            &["A=2".into(), "B=3".into()],
            "h",
            "/root",
            true,
        );
        assert_eq!(
            env,
            [
                "HOSTNAME=h",
                "PATH=/img",
                "A=2",
                "B=3",
                "TERM=xterm",
                "HOME=/root"
            ]
        );
        let env = build_env(&[], &[], "h", "/", false);
        assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
        assert!(!env.iter().any(|e| e.starts_with("TERM=")));
    }
}
