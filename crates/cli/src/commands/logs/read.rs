//! Log lines as stored (one JSON `LogLine` per line), and how `kiln logs` filters, merges
//! and prints them.

use std::io::{self, Write};

use kiln_runtime::LogLine;

use crate::clock::parse_rfc3339_ms;
use crate::output::OutputFormat;

/// One stored line, parsed.
#[derive(Debug)]
pub struct Entry {
    /// `line.ts` in unix milliseconds (`i64::MIN` if it is not a time, so it sorts first).
    pub ts_ms: i64,
    pub line: LogLine,
    /// The line exactly as stored, for `--output json`.
    pub raw: String,
}

/// Parses stored lines; lines that are not a `LogLine` (a torn write) are skipped.
pub fn parse<I: IntoIterator<Item = S>, S: Into<String>>(raw_lines: I) -> Vec<Entry> {
    raw_lines
        .into_iter()
        .filter_map(|raw| {
            let raw: String = raw.into();
            let line: LogLine = serde_json::from_str(&raw).ok()?;
            let ts_ms = parse_rfc3339_ms(&line.ts).unwrap_or(i64::MIN);
            Some(Entry { ts_ms, line, raw })
        })
        .collect()
}

/// What `--since` and `--grep` keep.
#[derive(Debug, Default)]
pub struct Filter {
    /// Keep lines at or after this time (unix ms).
    pub since_ms: Option<i64>,
    /// Keep lines containing this text.
    pub grep: Option<String>,
}

impl Filter {
    fn keeps(&self, e: &Entry) -> bool {
        self.since_ms.is_none_or(|since| e.ts_ms >= since)
            && self.grep.as_deref().is_none_or(|g| e.line.line.contains(g))
    }
}

/// Keeps what `filter` keeps, ordered by time; lines of the same time keep their order.
pub fn select(mut entries: Vec<Entry>, filter: &Filter) -> Vec<Entry> {
    entries.retain(|e| filter.keeps(e));
    entries.sort_by_key(|e| e.ts_ms);
    entries
}

/// Prints `2026-11-26T14:02:03.120Z web-1a2b3c4d stdout | the line`, or the stored JSON.
pub fn print(out: &mut impl Write, entries: &[Entry], output: OutputFormat) -> io::Result<()> {
    for e in entries {
        match output {
            OutputFormat::Json => writeln!(out, "{}", e.raw)?,
            OutputFormat::Text => {
                let l = &e.line;
                writeln!(out, "{} {} {} | {}", l.ts, l.instance, l.stream, l.line)?;
            }
        }
    }
    out.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// A stored line, as the shim writes it.
    pub fn stored(ts: &str, instance: &str, stream: &str, line: &str) -> String {
        serde_json::json!({
            "ts": ts,
            "service": "web",
            "instance": instance,
            "image": "sha256:0123",
            "stream": stream,
            "line": line,
        })
        .to_string()
    }

    #[test]
    fn lines_merge_by_time_and_keep_their_order_on_ties() {
        let a = stored("2026-11-26T14:00:01.000Z", "web-a", "stdout", "a1");
        let b = stored("2026-11-26T14:00:00.500Z", "web-b", "stderr", "b1");
        let c = stored("2026-11-26T14:00:01.000Z", "web-b", "stdout", "b2");
        let entries = select(parse([a, "{torn".into(), b, c]), &Filter::default());
        let mut out = Vec::new();
        print(&mut out, &entries, OutputFormat::Text).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-26T14:00:00.500Z web-b stderr | b1\n\
             2026-11-26T14:00:01.000Z web-a stdout | a1\n\
             2026-11-26T14:00:01.000Z web-b stdout | b2\n"
        );
    }

    #[test]
    fn since_and_grep_filter() {
        let lines = [
            stored("2026-11-26T14:00:00.000Z", "web-a", "stdout", "GET /old"),
            stored("2026-11-26T14:05:00.000Z", "web-a", "stdout", "GET /new"),
            stored("2026-11-26T14:06:00.000Z", "web-a", "stdout", "POST /new"),
        ];
        let filter = Filter {
            since_ms: parse_rfc3339_ms("2026-11-26T14:05:00.000Z"),
            grep: Some("GET".into()),
        };
        let entries = select(parse(lines.clone()), &filter);
        let mut out = Vec::new();
        print(&mut out, &entries, OutputFormat::Json).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("{}\n", lines[1]));
    }
}
