//! Splitting a byte stream into log lines.

use std::io::{self, BufRead, ErrorKind};

/// Longest line stored as one [`crate::LogLine`]; longer ones are split.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// Calls `emit` with each line of `reader` (without its newline), splitting lines
/// longer than `max` bytes (at a UTF-8 character boundary when one is near the end), and
/// with a final line that has no newline. Returns at end of input.
pub(crate) fn for_each_line(
    mut reader: impl BufRead,
    max: usize,
    mut emit: impl FnMut(&[u8]),
) -> io::Result<()> {
    let max = max.max(4);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if !line.is_empty() {
                emit(&line);
            }
            return Ok(());
        }
        let window = &buf[..buf.len().min(max - line.len())];
        if let Some(newline) = window.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&window[..newline]);
            reader.consume(newline + 1);
            emit(&line);
            line.clear();
        } else {
            let taken = window.len();
            line.extend_from_slice(window);
            reader.consume(taken);
            if line.len() >= max {
                let cut = char_boundary(&line);
                emit(&line[..cut]);
                line.drain(..cut);
            }
        }
    }
}

/// Where to split a full buffer: before a multi-byte character cut off at its end.
fn char_boundary(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
        _ => bytes.len(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        // A tiny buffer exercises lines spanning several reads.
        let reader = io::BufReader::with_capacity(3, input);
        for_each_line(reader, max, |line| found.push(line.to_vec())).unwrap();
        found
    }

    #[test]
    fn splits_on_newlines_and_keeps_a_final_partial_line() {
        assert_eq!(
            lines(b"one\n\ntwo\nrest", 100),
            [&b"one"[..], b"", b"two", b"rest"]
        );
        assert!(lines(b"", 100).is_empty());
    }

    #[test]
    fn long_lines_are_split() {
        assert_eq!(
            lines(b"abcdefghij\nxy\n", 4),
            [&b"abcd"[..], b"efgh", b"ij", b"xy"]
        );
    }

    #[test]
    fn splits_keep_characters_whole() {
        // "aaé" is 4 bytes; with max 4, "aaa" + the first byte of "é" must not split it.
        let input = "aaaéb\n".as_bytes();
        let found = lines(input, 4);
        assert_eq!(found, [&b"aaa"[..], "éb".as_bytes()]);
    }
}
