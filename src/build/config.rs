//! Config-only steps: how ENV, CMD, ENTRYPOINT, LABEL, EXPOSE, VOLUME,
//! WORKDIR, USER, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD and MAINTAINER
//! change an image configuration's `config` object
//! (<https://github.com/opencontainers/image-spec/blob/main/config.md>,
//! Docker's field names: `Env`, `Cmd`, `Entrypoint`, `Labels`,
//! `ExposedPorts`, `Volumes`, `WorkingDir`, `User`, `StopSignal`,
//! `Healthcheck` with durations in nanoseconds, `Shell`, `OnBuild`), as the
//! classic builder records them.

use serde_json::{json, Map, Value};

use super::dockerfile::{Command, Healthcheck, Kind};
use super::layer;

/// An image path made absolute against the working directory.
pub fn absolute(workdir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", if workdir.is_empty() { "/" } else { workdir })
    };
    format!("/{}", layer::image_rel(&joined))
}

fn command_value(shell: &[String], c: &Command) -> Value {
    match c {
        Command::Exec(v) => json!(v),
        Command::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            json!(v)
        }
    }
}

fn duration_ns(s: &Option<String>, what: &str) -> Result<Option<u64>, String> {
    match s {
        None => Ok(None),
        Some(s) => humantime::parse_duration(s)
            .map(|d| Some(d.as_nanos() as u64))
            .map_err(|e| format!("invalid HEALTHCHECK --{what}={s}: {e}")),
    }
}

/// Applies a config-only instruction to the image configuration.
pub fn edit_config(
    cfg: &mut Value,
    kind: &Kind,
    shell: &[String],
    cmd_set: bool,
    workdir: &str,
) -> Result<(), String> {
    if !cfg["config"].is_object() {
        cfg["config"] = Value::Object(Map::new());
    }
    if let Kind::Maintainer(m) = kind {
        cfg["author"] = json!(m);
        return Ok(());
    }
    let c = cfg["config"].as_object_mut().expect("config is an object");
    let obj = |c: &mut Map<String, Value>, k: &str| {
        if !c.get(k).is_some_and(Value::is_object) {
            c.insert(k.to_string(), Value::Object(Map::new()));
        }
    };
    match kind {
        Kind::Env(kv) => {
            let mut list: Vec<Value> = c
                .get("Env")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (k, v) in kv {
                let prefix = format!("{k}=");
                list.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
                list.push(json!(format!("{k}={v}")));
            }
            c.insert("Env".into(), Value::Array(list));
        }
        Kind::Cmd(cmd) => {
            c.insert("Cmd".into(), command_value(shell, cmd));
        }
        Kind::Entrypoint(cmd) => {
            c.insert("Entrypoint".into(), command_value(shell, cmd));
            if !cmd_set {
                c.insert("Cmd".into(), Value::Null);
            }
        }
        Kind::Label(kv) => {
            obj(c, "Labels");
            let m = c["Labels"].as_object_mut().expect("object");
            for (k, v) in kv {
                m.insert(k.clone(), json!(v));
            }
        }
        Kind::Expose(ports) => {
            if !ports.is_empty() {
                crate::image::changes::apply(c, &format!("EXPOSE {}", ports.join(" ")))
                    .map_err(|e| e.to_string())?;
            }
        }
        Kind::Volume(vols) => {
            obj(c, "Volumes");
            let m = c["Volumes"].as_object_mut().expect("object");
            for v in vols {
                m.insert(v.clone(), json!({}));
            }
        }
        Kind::Workdir(w) => {
            c.insert("WorkingDir".into(), json!(absolute(workdir, w)));
        }
        Kind::User(u) => {
            c.insert("User".into(), json!(u));
        }
        Kind::StopSignal(s) => {
            c.insert("StopSignal".into(), json!(s));
        }
        Kind::Shell(s) => {
            c.insert("Shell".into(), json!(s));
        }
        Kind::Onbuild(t) => {
            let mut list: Vec<Value> = c
                .get("OnBuild")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            list.push(json!(t));
            c.insert("OnBuild".into(), Value::Array(list));
        }
        Kind::Healthcheck(Healthcheck::None) => {
            c.insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
        }
        Kind::Healthcheck(Healthcheck::Check {
            command,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        }) => {
            let test = match command {
                Command::Shell(s) => json!(["CMD-SHELL", s]),
                Command::Exec(v) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v.iter().cloned());
                    json!(t)
                }
            };
            let mut h = json!({ "Test": test });
            if let Some(n) = duration_ns(interval, "interval")? {
                h["Interval"] = json!(n);
            }
            if let Some(n) = duration_ns(timeout, "timeout")? {
                h["Timeout"] = json!(n);
            }
            if let Some(n) = duration_ns(start_period, "start-period")? {
                h["StartPeriod"] = json!(n);
            }
            if let Some(n) = duration_ns(start_interval, "start-interval")? {
                h["StartInterval"] = json!(n);
            }
            if let Some(r) = retries {
                h["Retries"] = json!(r);
            }
            c.insert("Healthcheck".into(), h);
        }
        // ARG only changes what later steps see.
        Kind::Arg(_) => {}
        Kind::Run { .. } | Kind::Copy(_) | Kind::Add(_) | Kind::Maintainer(_) => {}
    }
    Ok(())
}

/// Drops the inherited ONBUILD triggers once they have run.
pub fn strip_onbuild(cfg: &mut Value, yes: bool) {
    if yes {
        if let Some(c) = cfg["config"].as_object_mut() {
            c.remove("OnBuild");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> Vec<String> {
        vec!["/bin/sh".to_string(), "-c".to_string()]
    }

    #[test]
    fn paths_against_workdir() {
        assert_eq!(absolute("", "app/"), "/app");
        assert_eq!(absolute("/srv", "app"), "/srv/app");
        assert_eq!(absolute("/srv", "/etc/x"), "/etc/x");
        assert_eq!(absolute("/srv", "../../x"), "/x");
        assert_eq!(absolute("/srv", "."), "/srv");
    }

    #[test]
    fn config_edits() {
        let mut cfg = json!({"config": {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"]}});
        edit_config(
            &mut cfg,
            &Kind::Env(vec![("A".into(), "2".into()), ("B".into(), "x y".into())]),
            &sh(),
            false,
            "",
        )
        .unwrap();
        assert_eq!(cfg["config"]["Env"], json!(["PATH=/bin", "A=2", "B=x y"]));
        edit_config(
            &mut cfg,
            &Kind::Entrypoint(Command::Exec(vec!["/app".into()])),
            &sh(),
            false,
            "",
        )
        .unwrap();
        assert_eq!(
            cfg["config"]["Cmd"],
            Value::Null,
            "an inherited CMD is reset by ENTRYPOINT"
        );
        edit_config(
            &mut cfg,
            &Kind::Cmd(Command::Shell("run it".into())),
            &sh(),
            false,
            "",
        )
        .unwrap();
        assert_eq!(cfg["config"]["Cmd"], json!(["/bin/sh", "-c", "run it"]));
        edit_config(&mut cfg, &Kind::Workdir("sub".into()), &sh(), false, "/srv").unwrap();
        assert_eq!(cfg["config"]["WorkingDir"], json!("/srv/sub"));
        edit_config(
            &mut cfg,
            &Kind::Expose(vec!["80".into(), "53/udp".into()]),
            &sh(),
            false,
            "",
        )
        .unwrap();
        assert_eq!(
            cfg["config"]["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}})
        );
        assert!(edit_config(
            &mut cfg,
            &Kind::Expose(vec!["http".into()]),
            &sh(),
            false,
            ""
        )
        .is_err());
        edit_config(
            &mut cfg,
            &Kind::Label(vec![("a.b".into(), "c".into())]),
            &sh(),
            false,
            "",
        )
        .unwrap();
        assert_eq!(cfg["config"]["Labels"], json!({"a.b": "c"}));
        edit_config(
            &mut cfg,
            &Kind::Volume(vec!["/data".into()]),
            &sh(),
            false,
            "",
        )
        .unwrap();
        assert_eq!(cfg["config"]["Volumes"], json!({"/data": {}}));
        edit_config(
            &mut cfg,
            &Kind::Healthcheck(Healthcheck::Check {
                command: Command::Shell("true".into()),
                interval: Some("30s".into()),
                timeout: None,
                start_period: None,
                start_interval: Some("500ms".into()),
                retries: Some(3),
            }),
            &sh(),
            false,
            "",
        )
        .unwrap();
        assert_eq!(
            cfg["config"]["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000u64,
                "StartInterval": 500_000_000u64, "Retries": 3})
        );
        edit_config(&mut cfg, &Kind::Maintainer("me".into()), &sh(), false, "").unwrap();
        assert_eq!(cfg["author"], json!("me"));
    }
}
