//! Platforms (`os/arch[/variant]`) and how an index entry is matched.
//!
//! Names follow Go's GOOS/GOARCH as the OCI image index does
//! (<https://github.com/opencontainers/image-spec/blob/main/image-index.md>),
//! normalised as containerd's `platforms` package does: `x86_64` is
//! `amd64`, `aarch64` is `arm64`, and a missing variant means the
//! architecture's default (`v8` for arm64, `v7` for arm). The default is the
//! host's platform; `--platform` overrides it.

use std::fmt;
use std::str::FromStr;

/// An operating system, architecture and optional variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// A `--platform` value that is not `os/arch[/variant]`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid platform {0:?}; use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8")]
pub struct PlatformError(pub String);

fn normalize_arch(arch: &str) -> String {
    match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i386" | "i686" => "386".into(),
        "armhf" | "armel" => "arm".into(),
        other => other.into(),
    }
}

fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

impl Platform {
    /// A normalised platform.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_ascii_lowercase(),
            architecture: normalize_arch(architecture),
            variant: variant
                .filter(|v| !v.is_empty())
                .map(str::to_ascii_lowercase),
        }
    }

    /// The platform berth runs on.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            other => other,
        };
        Self::new("linux", arch, None)
    }

    fn effective_variant(&self) -> Option<&str> {
        self.variant
            .as_deref()
            .or_else(|| default_variant(&self.architecture))
    }

    /// Whether an index entry's platform satisfies this (wanted) one.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        match &self.variant {
            None => true,
            Some(_) => self.effective_variant() == candidate.effective_variant(),
        }
    }

    /// Among matching entries, higher is better: the default variant first.
    pub fn preference(&self, candidate: &Platform) -> u8 {
        if candidate.effective_variant() == self.effective_variant() {
            2
        } else if candidate.variant.is_none() {
            1
        } else {
            0
        }
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Self::new(os, arch, None)),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => {
                Ok(Self::new(os, arch, Some(variant)))
            }
            _ => Err(PlatformError(s.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let cases = [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("Linux/AArch64/V8", "linux/arm64/v8"),
            ("linux/arm/v7", "linux/arm/v7"),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Platform>().unwrap().to_string(), want);
        }
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "a/b/c/d",
            "linux/amd 64",
            "linux//v7",
        ] {
            assert_eq!(
                bad.parse::<Platform>(),
                Err(PlatformError(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn matching() {
        let p = |s: &str| s.parse::<Platform>().unwrap();
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        assert!(!p("linux/arm/v6").matches(&p("linux/arm/v7")));
        assert!(p("linux/arm/v7").matches(&p("linux/arm")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
        assert!(
            p("linux/arm").preference(&p("linux/arm/v7"))
                > p("linux/arm").preference(&p("linux/arm/v6"))
        );
        assert_eq!(Platform::host().os, "linux");
    }
}
