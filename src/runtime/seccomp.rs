//! Docker's default seccomp profile, translated to an OCI `LinuxSeccomp`.
//!
//! seccomp(2) filters the system calls a process may make. Docker ships a
//! default profile (moby/profiles, Apache-2.0, a copy with its licence in
//! `seccomp/`) whose entries are conditional: an entry applies only when the
//! container holds (`includes.caps`) or lacks (`excludes.caps`) capabilities,
//! runs on given architectures (`includes.arches`, Go's names such as `amd64`)
//! or a minimum kernel. This module evaluates those conditions for one
//! container (its capability set, the host's architecture and kernel) and
//! emits the unconditional OCI form
//! (<https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#seccomp>).

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSyscall};
use serde::Deserialize;

/// Docker's default profile, embedded in the binary.
pub const DOCKER_DEFAULT: &str = include_str!("seccomp/docker-default.json");

/// Errors from reading or translating a profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("invalid seccomp profile: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("seccomp profile has no entry for architecture {0}")]
    UnknownArch(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchEntry>,
    #[serde(default)]
    syscalls: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchEntry {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(flatten)]
    syscall: LinuxSyscall,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// What the profile's conditions are evaluated against.
#[derive(Debug, Clone)]
pub struct Target {
    /// Go's name of the architecture (`amd64`, `arm64`, …).
    pub arch: String,
    /// Capabilities the container holds (`CAP_CHOWN`, …).
    pub caps: Vec<String>,
    /// Host kernel version (major, minor).
    pub kernel: (u32, u32),
}

impl Target {
    /// The host's architecture and kernel with the given capabilities.
    pub fn host(caps: Vec<String>) -> Self {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            arch: go_arch(std::env::consts::ARCH).to_string(),
            caps,
            kernel: parse_kernel(&release).unwrap_or((0, 0)),
        }
    }
}

/// Rust's architecture name to Go's (the profile's vocabulary).
pub fn go_arch(rust: &str) -> &str {
    match rust {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn seccomp_arch(go: &str) -> Option<Arch> {
    Some(match go {
        "amd64" => Arch::ScmpArchX86_64,
        "386" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        "loong64" => Arch::ScmpArchLoongarch64,
        _ => return None,
    })
}

/// Parses `6.1.0-13-amd64` into (6, 1).
pub fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

impl Filter {
    /// Whether every condition listed holds for `target` (as `includes`).
    fn all_hold(&self, target: &Target) -> bool {
        if let Some(caps) = &self.caps {
            if !caps.iter().all(|c| target.caps.contains(c)) {
                return false;
            }
        }
        if let Some(arches) = &self.arches {
            if !arches.iter().any(|a| a == &target.arch) {
                return false;
            }
        }
        if let Some(min) = &self.min_kernel {
            if let Some(min) = parse_kernel(min) {
                if target.kernel < min {
                    return false;
                }
            }
        }
        true
    }

    /// Whether any condition listed holds for `target` (as `excludes`).
    fn any_holds(&self, target: &Target) -> bool {
        let caps = self
            .caps
            .as_ref()
            .is_some_and(|caps| caps.iter().any(|c| target.caps.contains(c)));
        let arches = self
            .arches
            .as_ref()
            .is_some_and(|arches| arches.iter().any(|a| a == &target.arch));
        caps || arches
    }
}

/// Translates a Docker-format profile for `target`.
pub fn translate(profile_json: &str, target: &Target) -> Result<LinuxSeccomp, SeccompError> {
    let profile: Profile = serde_json::from_str(profile_json)?;
    let native =
        seccomp_arch(&target.arch).ok_or_else(|| SeccompError::UnknownArch(target.arch.clone()))?;
    let mut architectures = Vec::new();
    if let Some(entry) = profile.arch_map.iter().find(|e| e.architecture == native) {
        architectures.push(entry.architecture);
        architectures.extend(entry.sub_architectures.iter().flatten().copied());
    } else if !profile.arch_map.is_empty() {
        return Err(SeccompError::UnknownArch(target.arch.clone()));
    }
    let syscalls: Vec<LinuxSyscall> = profile
        .syscalls
        .into_iter()
        .filter(|e| e.includes.as_ref().is_none_or(|f| f.all_hold(target)))
        .filter(|e| e.excludes.as_ref().is_none_or(|f| !f.any_holds(target)))
        .map(|e| e.syscall)
        .collect();
    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(profile.default_action);
    seccomp.set_default_errno_ret(profile.default_errno_ret);
    if !architectures.is_empty() {
        seccomp.set_architectures(Some(architectures));
    }
    seccomp.set_syscalls(Some(syscalls));
    Ok(seccomp)
}

/// Docker's default profile for a container holding `caps` on this host.
pub fn docker_default(caps: &[String]) -> Result<LinuxSeccomp, SeccompError> {
    translate(DOCKER_DEFAULT, &Target::host(caps.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(caps: &[&str]) -> Target {
        Target {
            arch: "amd64".into(),
            caps: caps.iter().map(|c| c.to_string()).collect(),
            kernel: (6, 1),
        }
    }

    fn allowed(s: &LinuxSeccomp, name: &str) -> bool {
        s.syscalls().as_ref().unwrap().iter().any(|c| {
            c.action() == LinuxSeccompAction::ScmpActAllow
                && c.names().iter().any(|n| n == name)
                && c.args().as_ref().is_none_or(|a| a.is_empty())
        })
    }

    #[test]
    fn default_profile_denies_what_docker_denies() {
        let caps = crate::runtime::spec::default_capabilities();
        let s = translate(
            DOCKER_DEFAULT,
            &target(&caps.iter().map(String::as_str).collect::<Vec<_>>()),
        )
        .unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        for name in ["read", "write", "execve", "clone", "arch_prctl", "chroot"] {
            assert!(
                allowed(&s, name) || name == "clone",
                "{name} should be allowed"
            );
        }
        for name in [
            "mount",
            "unshare",
            "keyctl",
            "add_key",
            "reboot",
            "bpf",
            "setns",
            "init_module",
            "kexec_load",
            "umount2",
            "pivot_root",
            "syslog",
        ] {
            assert!(!allowed(&s, name), "{name} should be denied");
        }
        // clone is allowed only with an argument filter (no namespace flags).
        let clone = s
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.names().iter().any(|n| n == "clone"))
            .unwrap();
        assert!(!clone.args().as_ref().unwrap().is_empty());
        // clone3 gets ENOSYS without CAP_SYS_ADMIN so libc falls back to clone.
        let clone3 = s
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.names().iter().any(|n| n == "clone3"))
            .unwrap();
        assert_eq!(clone3.errno_ret(), Some(38));
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
    }

    #[test]
    fn capabilities_unlock_entries() {
        let s = translate(
            DOCKER_DEFAULT,
            &target(&["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]),
        )
        .unwrap();
        for name in ["mount", "unshare", "setns", "umount2"] {
            assert!(allowed(&s, name), "{name} should be allowed with caps");
        }
        // The ENOSYS entry for clone3 is excluded when CAP_SYS_ADMIN is held.
        assert!(!s
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .any(|c| c.action() == LinuxSeccompAction::ScmpActErrno
                && c.names().iter().any(|n| n == "clone3")));
    }

    #[test]
    fn arch_and_kernel_conditions() {
        let profile = r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[
            {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
            "syscalls":[
              {"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["arm64"]}},
              {"names":["b"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["amd64"]}},
              {"names":["c"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"7.0"}},
              {"names":["d"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["arm64"]}}]}"#;
        let mut t = target(&[]);
        t.arch = "arm64".into();
        let s = translate(profile, &t).unwrap();
        assert!(allowed(&s, "a"));
        assert!(!allowed(&s, "b"));
        assert!(!allowed(&s, "c"));
        assert!(!allowed(&s, "d"));
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
        t.arch = "amd64".into();
        assert!(matches!(
            translate(profile, &t),
            Err(SeccompError::UnknownArch(_))
        ));
    }

    #[test]
    fn hostile_profiles_fail_cleanly() {
        for bad in ["", "{", "[]", r#"{"defaultAction":"SCMP_ACT_NOPE"}"#] {
            assert!(translate(bad, &target(&[])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("x"), None);
    }
}
