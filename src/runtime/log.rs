//! The container log: Docker's json-file format, one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000000000Z"}`.
//!
//! The supervisor appends a record per line of output (a partial line is
//! flushed when the stream ends); `berth logs` reads, filters (`--since`,
//! `-n`) and follows the file.

use std::io::Write;

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

/// Appends records to a log file.
pub fn append(file: &mut std::fs::File, stream: &str, lines: &[String]) -> std::io::Result<()> {
    let now = Utc::now();
    let mut buf = String::new();
    for l in lines {
        buf.push_str(
            &Record {
                log: l.clone(),
                stream: stream.to_string(),
                time: now,
            }
            .to_line(),
        );
    }
    file.write_all(buf.as_bytes())
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
