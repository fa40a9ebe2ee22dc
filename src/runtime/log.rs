//! The container log: Docker's json-file format, one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000000000Z"}`.
//!
//! The supervisor appends a record per line of output (a partial line is
//! flushed when the stream ends); `berth logs` reads, filters (`--since`,
//! `-n`) and follows the file.
//!
//! Bounds are Docker's json-file options ([`LogOptions`], `--log-opt
//! max-size=10m --log-opt max-file=3`): when a write would take `log.json`
//! past `max-size`, it is rotated (`log.json` → `log.json.1` → … →
//! `log.json.<max-file - 1>`, the oldest dropped) and a new one begun.
//! Unlike Docker, whose default is unbounded, berth's default is 10 MiB × 3
//! (`[log]` in `ROOT/config.toml` changes it). [`files`] lists the files of
//! a log oldest first and [`Follower`] follows it across rotations.

use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// One log record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub log: String,
    pub stream: String,
    pub time: DateTime<Utc>,
}

impl Record {
    /// The record as one JSON line (with the trailing newline).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::json!({
            "log": self.log,
            "stream": self.stream,
            "time": self.time.to_rfc3339_opts(SecondsFormat::Nanos, true),
        })
        .to_string();
        s.push('\n');
        s
    }
}

/// Splits a stream into lines and appends them as records.
#[derive(Debug, Default)]
pub struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// Feeds bytes; returns the complete lines (each ending in `\n`).
    pub fn feed(&mut self, data: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
        // Bound a line without newline (Docker splits at 16 KiB).
        if self.pending.len() >= 16 * 1024 {
            out.push(String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned());
        }
        out
    }

    /// What is left when the stream ends.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            None
        } else {
            Some(String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned())
        }
    }
}

/// Errors in log options.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid log option {0:?}: use max-size=SIZE (e.g. 10m) or max-file=N (N >= 1)")]
    Option(String),
    #[error("invalid [log] in {path}: {reason}")]
    Config { path: PathBuf, reason: String },
}

/// Docker's json-file bounds: rotate at `max_size` bytes (0: never),
/// keeping `max_file` files in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    #[serde(rename = "max-size")]
    pub max_size: u64,
    #[serde(rename = "max-file")]
    pub max_file: u32,
}

impl Default for LogOptions {
    /// 10 MiB × 3: bounded, unlike Docker's unbounded default.
    fn default() -> Self {
        Self {
            max_size: 10 << 20,
            max_file: 3,
        }
    }
}

/// Parses a size as Docker's `max-size` takes it: `100`, `10k`, `10m`, `1g`.
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v > 0.0).then_some((v * mult as f64) as u64)
}

impl LogOptions {
    /// `base` with `KEY=VALUE` options applied (`--log-opt`, the
    /// manifest's `logging.options`). `max-size=-1` is unbounded.
    pub fn with(mut self, opts: &[(String, String)]) -> Result<Self, LogError> {
        for (k, v) in opts {
            let bad = || LogError::Option(format!("{k}={v}"));
            match k.as_str() {
                "max-size" if v.trim() == "-1" => self.max_size = 0,
                "max-size" => self.max_size = parse_size(v).ok_or_else(bad)?,
                "max-file" => {
                    self.max_file = v.trim().parse().ok().filter(|n| *n >= 1).ok_or_else(bad)?
                }
                _ => return Err(bad()),
            }
        }
        Ok(self)
    }

    /// Parses `--log-opt KEY=VALUE` flags over `self`.
    pub fn with_flags(self, flags: &[String]) -> Result<Self, LogError> {
        let pairs = flags
            .iter()
            .map(|f| {
                f.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                    .ok_or_else(|| LogError::Option(f.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.with(&pairs)
    }

    /// The default of a state root: `[log]` of `ROOT/config.toml`
    /// (`max-size = "10m"`, `max-file = 3`) over [`LogOptions::default`].
    pub fn configured(root: &Path) -> Result<Self, LogError> {
        let path = root.join("config.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(Self::default());
        };
        let bad = |reason: String| LogError::Config {
            path: path.clone(),
            reason,
        };
        let v: toml::Value = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let Some(table) = v.get("log") else {
            return Ok(Self::default());
        };
        let pairs = table
            .as_table()
            .ok_or_else(|| bad("[log] must be a table".into()))?
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    other => return Err(bad(format!("log.{k}: unexpected {}", other.type_str()))),
                };
                Ok((k.clone(), v))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::default().with(&pairs).map_err(|e| bad(e.to_string()))
    }
}

/// `log.json` → `log.json.N`.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The files of the log at `path` that exist, oldest first (`log.json.N`
/// … `log.json.1`, `log.json`).
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut n = 1;
    let mut out = Vec::new();
    while rotated(path, n).exists() {
        out.push(rotated(path, n));
        n += 1;
    }
    out.reverse();
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

/// The whole text of the log at `path`, across its rotated files.
pub fn read_all(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    for f in files(path) {
        match std::fs::File::open(&f) {
            Ok(mut file) => {
                file.read_to_string(&mut text)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(text)
}

/// Bytes the log at `path` takes, across its files.
pub fn size(path: &Path) -> u64 {
    files(path)
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// Removes the rotated files of the log at `path` (not `path` itself).
pub fn remove_rotated(path: &Path) {
    for f in files(path) {
        if f != path {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The supervisor's end of a log: appends records, rotating per
/// [`LogOptions`].
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    opts: LogOptions,
}

impl Writer {
    /// Opens (appending to) the log at `path`.
    pub fn open(path: &Path, opts: LogOptions) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            opts,
        })
    }

    /// Appends records for `lines` of `stream`, rotating first when they
    /// would take the file past `max-size`.
    pub fn append(&mut self, stream: &str, lines: &[String]) -> std::io::Result<()> {
        let now = Utc::now();
        let mut buf = String::new();
        for l in lines {
            let record = Record {
                log: l.clone(),
                stream: stream.to_string(),
                time: now,
            }
            .to_line();
            let full = self.size + (buf.len() + record.len()) as u64 > self.opts.max_size;
            if self.opts.max_size > 0 && full && self.size + buf.len() as u64 > 0 {
                self.flush(&mut buf)?;
                self.rotate()?;
            }
            buf.push_str(&record);
        }
        self.flush(&mut buf)
    }

    fn flush(&mut self, buf: &mut String) -> std::io::Result<()> {
        if !buf.is_empty() {
            self.file.write_all(buf.as_bytes())?;
            self.size += buf.len() as u64;
            buf.clear();
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.opts.max_file.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = std::fs::remove_file(rotated(&self.path, keep - 1));
        for n in (1..keep - 1).rev() {
            let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        *self = Self::open(&self.path, self.opts)?;
        Ok(())
    }
}

/// Follows a log across rotations: [`Follower::read`] returns what was
/// appended since the last call, from the file it had open to its end,
/// then on through the files that replaced it.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    /// The file being read, its inode and the offset read to.
    open: Option<(std::fs::File, u64, u64)>,
    pending: String,
}

impl Follower {
    /// Starts at the end of the log's current file (after what
    /// [`read_all`] returned), or its beginning with `from_start`.
    pub fn new(path: &Path, from_start: bool) -> Self {
        let mut f = Self {
            path: path.to_path_buf(),
            open: None,
            pending: String::new(),
        };
        if !from_start {
            if let Ok(file) = std::fs::File::open(path) {
                if let Ok(m) = file.metadata() {
                    f.open = Some((file, m.ino(), m.len()));
                }
            }
        }
        f
    }

    /// Everything the log holds: the records of its rotated files, and a
    /// follower whose first [`Follower::read`] returns those of the
    /// current file (pinned before the rotated ones are read, so a
    /// rotation in between neither loses nor repeats a record).
    pub fn history(path: &Path) -> std::io::Result<(Vec<Record>, Follower)> {
        let mut f = Self::new(path, true);
        let Ok(file) = std::fs::File::open(path) else {
            return Ok((Vec::new(), f));
        };
        let ino = file.metadata()?.ino();
        f.open = Some((file, ino, 0));
        let mut text = String::new();
        for old in files(path) {
            let Ok(mut file) = std::fs::File::open(&old) else {
                continue;
            };
            if file.metadata()?.ino() == ino {
                break;
            }
            file.read_to_string(&mut text)?;
        }
        Ok((parse(&text), f))
    }

    /// The complete records appended since the last call.
    pub fn read(&mut self) -> std::io::Result<Vec<Record>> {
        loop {
            if self.open.is_none() {
                // The oldest file we have not read: at the start, the
                // current one.
                let Ok(file) = std::fs::File::open(&self.path) else {
                    break;
                };
                let ino = file.metadata()?.ino();
                self.open = Some((file, ino, 0));
            }
            let Some((file, ino, offset)) = self.open.as_mut() else {
                break;
            };
            file.seek(std::io::SeekFrom::Start(*offset))?;
            let mut more = String::new();
            file.read_to_string(&mut more)?;
            *offset += more.len() as u64;
            self.pending.push_str(&more);
            // Rotated away? Go on with the file that came after ours.
            let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
            if current.is_none() || current == Some(*ino) {
                break;
            }
            let all = files(&self.path);
            let inos: Vec<Option<u64>> = all
                .iter()
                .map(|f| std::fs::metadata(f).map(|m| m.ino()).ok())
                .collect();
            let next = match inos.iter().position(|i| *i == Some(*ino)) {
                Some(i) => all.get(i + 1).cloned(),
                // Ours is gone already: the oldest there is.
                None => all.first().cloned(),
            };
            let Some(next) = next else { break };
            let Ok(file) = std::fs::File::open(&next) else {
                break;
            };
            let ino = file.metadata()?.ino();
            self.open = Some((file, ino, 0));
        }
        let Some(end) = self.pending.rfind('\n') else {
            return Ok(Vec::new());
        };
        let complete: String = self.pending.drain(..=end).collect();
        Ok(parse(&complete))
    }
}

/// Parses the records in `text`, skipping lines that are not records.
pub fn parse(text: &str) -> Vec<Record> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Applies `--since` and `-n` to records.
pub fn select(
    records: Vec<Record>,
    since: Option<DateTime<Utc>>,
    tail: Option<usize>,
) -> Vec<Record> {
    let mut v: Vec<Record> = records
        .into_iter()
        .filter(|r| since.is_none_or(|s| r.time >= s))
        .collect();
    if let Some(n) = tail {
        let skip = v.len().saturating_sub(n);
        v.drain(..skip);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_records() {
        let mut b = LineBuffer::default();
        assert_eq!(b.feed(b"a\nb"), vec!["a\n"]);
        assert_eq!(b.feed(b"c\n\n"), vec!["bc\n", "\n"]);
        assert_eq!(b.feed(b"tail"), Vec::<String>::new());
        assert_eq!(b.finish().as_deref(), Some("tail"));
        let r = Record {
            log: "hi \"there\"\n".into(),
            stream: "stdout".into(),
            time: "2024-01-02T03:04:05.000000006Z".parse().unwrap(),
        };
        let line = r.to_line();
        assert_eq!(
            line,
            "{\"log\":\"hi \\\"there\\\"\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05.000000006Z\"}\n"
        );
        let text = format!("{line}garbage\n{line}");
        assert_eq!(parse(&text).len(), 2);
    }

    #[test]
    fn log_options_parse_and_default() {
        let d = LogOptions::default();
        assert_eq!((d.max_size, d.max_file), (10 << 20, 3));
        let o = d
            .with_flags(&["max-size=100k".into(), "max-file=2".into()])
            .unwrap();
        assert_eq!((o.max_size, o.max_file), (100 << 10, 2));
        assert_eq!(d.with_flags(&["max-size=-1".into()]).unwrap().max_size, 0);
        for bad in ["max-size=x", "max-file=0", "mode=non-blocking", "max-size"] {
            assert!(d.with_flags(&[bad.into()]).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[log]\nmax-size = \"1m\"\nmax-file = 5\n",
        )
        .unwrap();
        let c = LogOptions::configured(dir.path()).unwrap();
        assert_eq!((c.max_size, c.max_file), (1 << 20, 5));
    }

    #[test]
    fn rotation_is_bounded_and_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let opts = LogOptions {
            max_size: 1000,
            max_file: 3,
        };
        let mut w = Writer::open(&path, opts).unwrap();
        let mut follow = Follower::new(&path, true);
        let mut seen = Vec::new();
        for i in 0..200 {
            w.append("stdout", &[format!("line {i}\n")]).unwrap();
            // Read now and then: up to two rotations between reads.
            if i % 20 == 0 {
                seen.extend(follow.read().unwrap().into_iter().map(|r| r.log));
            }
        }
        seen.extend(follow.read().unwrap().into_iter().map(|r| r.log));
        let want: Vec<String> = (0..200).map(|i| format!("line {i}\n")).collect();
        assert_eq!(seen, want, "followed every line across rotations");
        assert_eq!(files(&path).len(), 3);
        assert!(size(&path) <= 3 * 1000);
        // One batch larger than a file is split across files too.
        let batch: Vec<String> = (0..100).map(|i| format!("batch {i}\n")).collect();
        w.append("stdout", &batch).unwrap();
        for f in files(&path) {
            assert!(
                std::fs::metadata(&f).unwrap().len() <= 1000,
                "{}",
                f.display()
            );
        }
        seen.clear();
        let _ = follow.read().unwrap();
        w.append("stdout", &["line 199\n".to_string()]).unwrap();
        let kept = parse(&read_all(&path).unwrap());
        assert_eq!(kept.last().unwrap().log, "line 199\n");
        assert!(kept.len() < 200 && kept.windows(2).all(|w| w[0].time <= w[1].time));
        remove_rotated(&path);
        assert_eq!(files(&path), vec![path.clone()]);
    }

    #[test]
    fn since_and_tail() {
        let at = |s: &str| Record {
            log: s.into(),
            stream: "stdout".into(),
            time: format!("2024-01-01T00:00:0{s}Z").parse().unwrap(),
        };
        let all = vec![at("1"), at("2"), at("3")];
        assert_eq!(select(all.clone(), None, Some(2)), vec![at("2"), at("3")]);
        assert_eq!(
            select(
                all.clone(),
                Some("2024-01-01T00:00:02Z".parse().unwrap()),
                None
            ),
            vec![at("2"), at("3")]
        );
        assert_eq!(select(all, None, Some(0)), vec![]);
    }
}
