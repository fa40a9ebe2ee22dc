//! Resolving an image's `USER` (`name`, `uid`, `name:group`, `uid:gid`) to
//! numeric ids through the image's own `/etc/passwd` and `/etc/group`.
//!
//! The files are those of the container's root filesystem, never the host's
//! (see passwd(5), group(5)). As Docker does: a numeric uid needs no passwd
//! entry; a name must exist; the primary group comes from passwd unless given;
//! supplementary groups are the primary one plus those whose member list
//! names the user; `HOME`
//! comes from passwd (`/` when unknown).

use std::path::Path;

/// Errors resolving a user specification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("invalid user specification {0:?}")]
    Invalid(String),
}

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3].split(',').filter(|m| !m.is_empty()).collect(),
        })
    })
}

/// Resolves `spec` against the text of passwd and group files.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser, UserError> {
    let spec = spec.trim();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() && group_part.is_none() {
        return resolve("0", passwd, group);
    }
    if user_part.is_empty() || group_part == Some("") {
        return Err(UserError::Invalid(spec.to_string()));
    }
    let entry = if let Ok(uid) = user_part.parse::<u32>() {
        passwd_entries(passwd).find(|e| e.uid == uid)
    } else {
        Some(
            passwd_entries(passwd)
                .find(|e| e.name == user_part)
                .ok_or_else(|| UserError::NoUser(user_part.to_string()))?,
        )
    };
    let uid = match &entry {
        Some(e) => e.uid,
        None => user_part
            .parse()
            .map_err(|_| UserError::Invalid(spec.to_string()))?,
    };
    let gid = match group_part {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries(group)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| UserError::NoGroup(g.to_string()))?,
        },
        None => entry.as_ref().map(|e| e.gid).unwrap_or(0),
    };
    // The primary group first (as containerd does), then the groups that
    // list the user as a member.
    let mut additional_gids = vec![gid];
    if let (Some(e), None) = (&entry, group_part) {
        for g in group_entries(group) {
            if g.members.contains(&e.name) && !additional_gids.contains(&g.gid) {
                additional_gids.push(g.gid);
            }
        }
    }
    let home = entry
        .as_ref()
        .map(|e| e.home.to_string())
        .unwrap_or_else(|| "/".to_string());
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Resolves `spec` against `rootfs/etc/passwd` and `rootfs/etc/group`
/// (missing files count as empty).
pub fn resolve_in_rootfs(spec: &str, rootfs: &Path) -> Result<ResolvedUser, UserError> {
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap_or_default();
    resolve(spec, &read("etc/passwd"), &read("etc/group"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # a comment\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        www-data:x:33:33:www-data:/var/www:/bin/false\n\
        broken line\n\
        app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\n\
        audio:x:29:app,other\nvideo:x:44:app\nstaff:x:50:\napp:x:1000:\n";

    fn user(uid: u32, gid: u32, extra: &[u32], home: &str) -> Result<ResolvedUser, UserError> {
        Ok(ResolvedUser {
            uid,
            gid,
            additional_gids: extra.to_vec(),
            home: home.into(),
        })
    }

    #[test]
    fn table() {
        let cases: &[(&str, Result<ResolvedUser, UserError>)] = &[
            ("", user(0, 0, &[0], "/root")),
            ("root", user(0, 0, &[0], "/root")),
            ("0", user(0, 0, &[0], "/root")),
            ("www-data", user(33, 33, &[33], "/var/www")),
            ("app", user(1000, 1000, &[1000, 29, 44], "/home/app")),
            ("app:staff", user(1000, 50, &[50], "/home/app")),
            ("app:7", user(1000, 7, &[7], "/home/app")),
            ("1000", user(1000, 1000, &[1000, 29, 44], "/home/app")),
            ("4242", user(4242, 0, &[0], "/")),
            ("4242:4242", user(4242, 4242, &[4242], "/")),
            ("nobody", Err(UserError::NoUser("nobody".into()))),
            ("app:nogroup", Err(UserError::NoGroup("nogroup".into()))),
            (":0", Err(UserError::Invalid(":0".into()))),
            ("app:", Err(UserError::Invalid("app:".into()))),
        ];
        for (spec, want) in cases {
            assert_eq!(&resolve(spec, PASSWD, GROUP), want, "{spec:?}");
        }
    }

    #[test]
    fn empty_files() {
        assert_eq!(resolve("0:0", "", ""), user(0, 0, &[0], "/"));
        assert!(resolve("root", "", "").is_err());
    }
}
