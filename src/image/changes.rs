//! `--change` instructions for `import`: the Dockerfile instructions that
//! only touch the image config, as `docker import --change` accepts them
//! (<https://docs.docker.com/reference/cli/docker/image/import/>): `CMD`,
//! `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `STOPSIGNAL`, `USER`, `VOLUME`,
//! `WORKDIR`.
//!
//! Applied to a JSON config object (`"config"` of an image configuration) so
//! that berth controls the exact bytes it hashes.

use serde_json::{Map, Value};

/// Why a change could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("invalid --change {0:?}: expected INSTRUCTION ARGUMENTS")]
    Empty(String),
    #[error("{0} is not supported by --change (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)")]
    Unsupported(String),
    #[error("invalid --change {0:?}: {1}")]
    Invalid(String, String),
}

/// Applies one `--change` instruction to `config` (the image's "config").
pub fn apply(config: &mut Map<String, Value>, change: &str) -> Result<(), ChangeError> {
    let change = change.trim();
    let (instr, rest) = match change.split_once(char::is_whitespace) {
        Some((i, r)) => (i, r.trim()),
        None => (change, ""),
    };
    if instr.is_empty() || rest.is_empty() {
        return Err(ChangeError::Empty(change.to_string()));
    }
    let invalid = |why: &str| ChangeError::Invalid(change.to_string(), why.to_string());
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.insert("Cmd".into(), strings(&exec_or_shell(rest)));
        }
        "ENTRYPOINT" => {
            config.insert("Entrypoint".into(), strings(&exec_or_shell(rest)));
        }
        "ENV" => {
            let pairs = key_values(rest).map_err(|e| invalid(&e))?;
            let env = config
                .entry("Env")
                .or_insert_with(|| Value::Array(Vec::new()));
            let list = env
                .as_array_mut()
                .ok_or_else(|| invalid("Env is not a list"))?;
            for (k, v) in pairs {
                let prefix = format!("{k}=");
                list.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
                list.push(Value::String(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let pairs = key_values(rest).map_err(|e| invalid(&e))?;
            let labels = config
                .entry("Labels")
                .or_insert_with(|| Value::Object(Map::new()));
            let map = labels
                .as_object_mut()
                .ok_or_else(|| invalid("Labels is not a map"))?;
            for (k, v) in pairs {
                map.insert(k, Value::String(v));
            }
        }
        "EXPOSE" => {
            let ports = config
                .entry("ExposedPorts")
                .or_insert_with(|| Value::Object(Map::new()));
            let map = ports
                .as_object_mut()
                .ok_or_else(|| invalid("ExposedPorts is not a map"))?;
            for p in rest.split_whitespace() {
                let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                let proto = proto.to_ascii_lowercase();
                let valid_port = |s: &str| s.parse::<u16>().ok().filter(|n| *n > 0);
                // A range is one key per port, as Docker's nat.ParsePortSpecs makes it.
                let range = match port.split_once('-') {
                    Some((a, b)) => valid_port(a).zip(valid_port(b)).filter(|(a, b)| a <= b),
                    None => valid_port(port).map(|n| (n, n)),
                };
                let Some((first, last)) =
                    range.filter(|_| matches!(proto.as_str(), "tcp" | "udp" | "sctp"))
                else {
                    return Err(invalid(&format!(
                        "{p:?} is not a port (PORT[-PORT][/tcp|udp|sctp], the range ascending)"
                    )));
                };
                for n in first..=last {
                    map.insert(format!("{n}/{proto}"), Value::Object(Map::new()));
                }
            }
        }
        "VOLUME" => {
            let vols: Vec<String> = if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|e| invalid(&e.to_string()))?
            } else {
                rest.split_whitespace().map(str::to_string).collect()
            };
            let volumes = config
                .entry("Volumes")
                .or_insert_with(|| Value::Object(Map::new()));
            let map = volumes
                .as_object_mut()
                .ok_or_else(|| invalid("Volumes is not a map"))?;
            for v in vols {
                map.insert(v, Value::Object(Map::new()));
            }
        }
        "WORKDIR" => {
            config.insert("WorkingDir".into(), Value::String(rest.to_string()));
        }
        "USER" => {
            config.insert("User".into(), Value::String(rest.to_string()));
        }
        "STOPSIGNAL" => {
            config.insert("StopSignal".into(), Value::String(rest.to_string()));
        }
        other => return Err(ChangeError::Unsupported(other.to_ascii_uppercase())),
    }
    Ok(())
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

/// `["a","b"]` (exec form) or `a b` (shell form, run by `/bin/sh -c`).
fn exec_or_shell(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), rest.to_string()]
}

/// `K=V K2="v 2"` or the legacy `K V with spaces`.
fn key_values(rest: &str) -> Result<Vec<(String, String)>, String> {
    let words = shell_words::split(rest).map_err(|e| e.to_string())?;
    if words.first().is_some_and(|w| !w.contains('=')) {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{rest:?} needs a value"))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not KEY=VALUE")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applies_like_docker_import() {
        let cases: Vec<(&str, Result<Value, &str>)> = vec![
            (r#"CMD ["sh"]"#, Ok(json!({"Cmd": ["sh"]}))),
            (
                "CMD echo hi",
                Ok(json!({"Cmd": ["/bin/sh", "-c", "echo hi"]})),
            ),
            (
                r#"ENTRYPOINT ["/bin/busybox", "httpd"]"#,
                Ok(json!({"Entrypoint": ["/bin/busybox", "httpd"]})),
            ),
            (
                "ENV A=1 B=\"two words\"",
                Ok(json!({"Env": ["A=1", "B=two words"]})),
            ),
            (
                "ENV PATH /usr/bin:/bin",
                Ok(json!({"Env": ["PATH=/usr/bin:/bin"]})),
            ),
            ("env X=y", Ok(json!({"Env": ["X=y"]}))),
            ("LABEL a=b c=d", Ok(json!({"Labels": {"a": "b", "c": "d"}}))),
            (
                "EXPOSE 80 53/udp 8000-8001",
                Ok(
                    json!({"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}}),
                ),
            ),
            (
                "VOLUME /data /logs",
                Ok(json!({"Volumes": {"/data": {}, "/logs": {}}})),
            ),
            (r#"VOLUME ["/data"]"#, Ok(json!({"Volumes": {"/data": {}}}))),
            ("WORKDIR /srv", Ok(json!({"WorkingDir": "/srv"}))),
            ("USER 1000:1000", Ok(json!({"User": "1000:1000"}))),
            ("STOPSIGNAL SIGTERM", Ok(json!({"StopSignal": "SIGTERM"}))),
            ("RUN echo", Err("RUN is not supported")),
            ("CMD", Err("expected INSTRUCTION ARGUMENTS")),
            ("", Err("expected INSTRUCTION ARGUMENTS")),
            ("EXPOSE 99999", Err("is not a port")),
            ("EXPOSE 80/icmp", Err("is not a port")),
            ("EXPOSE 7002-7000", Err("is not a port")),
            ("LABEL =x", Err("is not KEY=VALUE")),
        ];
        for (input, want) in cases {
            let mut config = Map::new();
            let got = apply(&mut config, input).map(|()| Value::Object(config));
            match (&want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{input}"),
                (Err(w), Err(e)) => assert!(e.to_string().contains(w), "{input}: {e}"),
                _ => panic!("{input}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn env_replaces_an_existing_key() {
        let mut config = Map::new();
        apply(&mut config, "ENV A=1").unwrap();
        apply(&mut config, "ENV A=2 B=3").unwrap();
        assert_eq!(Value::Object(config), json!({"Env": ["A=2", "B=3"]}));
    }
}
