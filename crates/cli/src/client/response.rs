//! Parsing a whole HTTP/1.1 response: status line, headers, and a body delimited by
//! `Content-Length`, chunked transfer coding or the end of the connection.

use anyhow::{Context as _, bail};

/// A response read to its end.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub body: Vec<u8>,
}

/// Parses `raw`, everything the server sent before closing the connection. Interim
/// `1xx` responses are skipped.
pub fn parse(mut raw: &[u8]) -> anyhow::Result<Response> {
    loop {
        let head_end = find(raw, b"\r\n\r\n").context("incomplete response headers")?;
        let head =
            std::str::from_utf8(&raw[..head_end]).context("response headers are not UTF-8")?;
        let rest = &raw[head_end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let (version, code) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        if !version.starts_with("HTTP/1.") {
            bail!("not an HTTP/1.x response: `{status_line}`");
        }
        let status: u16 = code
            .parse()
            .ok()
            .filter(|s| (100..600).contains(s))
            .with_context(|| format!("bad status line `{status_line}`"))?;
        if (100..200).contains(&status) {
            raw = rest;
            continue;
        }
        let mut length = None;
        let mut chunked = false;
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .with_context(|| format!("bad header line `{line}`"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let n: usize = value
                    .parse()
                    .with_context(|| format!("bad Content-Length `{value}`"))?;
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            }
        }
        let body = if chunked {
            dechunk(rest)?
        } else if let Some(n) = length {
            match rest.get(..n) {
                Some(body) => body.to_vec(),
                None => bail!("response body cut short: {} of {n} bytes", rest.len()),
            }
        } else {
            rest.to_vec()
        };
        let reason = parts.next().unwrap_or_default().to_string();
        return Ok(Response {
            status,
            reason,
            body,
        });
    }
}

/// Decodes a chunked body (trailers, if any, are ignored).
fn dechunk(mut raw: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n").context("chunked body cut short")?;
        let line = std::str::from_utf8(&raw[..line_end]).context("bad chunk size line")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size `{size_text}`"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = raw.get(..size).context("chunked body cut short")?;
        body.extend_from_slice(chunk);
        raw = &raw[size..];
        raw = raw
            .strip_prefix(b"\r\n")
            .context("chunk not followed by CRLF")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn content_length_bounds_the_body() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nContent-Type: application/json\r\n\r\n[]junk",
        )
        .unwrap();
        assert_eq!(
            (r.status, r.reason.as_str(), r.body.as_slice()),
            (200, "OK", &b"[]"[..])
        );
        let err = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[]").unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n[1,2\r\nB\r\n,3,4,5,6,7]\r\n0\r\nX-Trailer: y\r\n\r\n";
        assert_eq!(parse(raw).unwrap().body, b"[1,2,3,4,5,6,7]");
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc";
        assert!(parse(cut).is_err());
    }

    #[test]
    fn without_length_the_body_runs_to_the_close() {
        let r = parse(b"HTTP/1.0 200 OK\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!(r.body, b"{\"a\":1}");
    }

    #[test]
    fn error_statuses_keep_their_body() {
        let raw = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 40\r\n\r\n{\"error\":\"kiln.toml:7:9: unknown field\"}";
        let r = parse(raw).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.body, &raw[raw.len() - 40..]);
    }

    #[test]
    fn interim_responses_are_skipped() {
        let r = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.len()), (204, 0));
    }

    #[test]
    fn garbage_is_an_error() {
        for raw in [
            &b""[..],
            b"hello\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad\r\n\r\n",
        ] {
            assert!(parse(raw).is_err(), "{raw:?}");
        }
    }
}
