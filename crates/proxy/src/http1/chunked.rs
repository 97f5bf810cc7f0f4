//! The chunked transfer coding (RFC 9112 §7.1): where a chunked body ends, found while its
//! bytes pass through unchanged, and the data in it, for clients that cannot take chunks.
//!
//! The scanner is strict on purpose: a body that two parsers could frame differently is a
//! request-smuggling vector, so bare LFs, missing CRLFs after data, and oversized sizes,
//! extensions or trailers are errors rather than guesses.

use std::ops::Range;

/// More hex digits could overflow; no real chunk is that large.
const MAX_SIZE_DIGITS: u8 = 15;
/// Bytes of chunk extensions allowed on one size line.
const MAX_EXTENSION: u32 = 4096;
/// Bytes of trailer fields allowed after the last chunk.
const MAX_TRAILERS: u32 = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size { digits: u8, size: u64 },
    Extension { size: u64, len: u32 },
    SizeLf { size: u64 },
    Data { left: u64 },
    DataCr,
    DataLf,
    TrailerStart { len: u32 },
    Trailer { len: u32 },
    TrailerLf { len: u32 },
    EndLf,
    Done,
}

/// A chunked body that cannot be framed; the connection cannot continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body: {0}")]
pub(crate) struct ChunkError(&'static str);

/// Where a chunked body is: feed it the body's bytes in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunked {
    state: State,
}

/// What one [`Chunked::scan`] call read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Bytes of the input that belong to the body (framing and data).
    pub(crate) consumed: usize,
    /// The chunk data among them, as a range of the input (empty if none).
    pub(crate) data: Range<usize>,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size { digits: 0, size: 0 },
        }
    }
}

impl Chunked {
    /// Whether the last chunk and the trailers have been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads `input` up to the end of its next run of chunk data, the end of the body, or
    /// the end of the input, whichever comes first.
    pub(crate) fn scan(&mut self, input: &[u8]) -> Result<Scan, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            self.state = match self.state {
                State::Done => break,
                State::Data { left } => {
                    let n =
                        usize::try_from(left).map_or(input.len() - i, |l| l.min(input.len() - i));
                    // n fits in u64: it is at most `left`.
                    let rest = left - n as u64;
                    self.state = if rest == 0 {
                        State::DataCr
                    } else {
                        State::Data { left: rest }
                    };
                    return Ok(Scan {
                        consumed: i + n,
                        data: i..i + n,
                    });
                }
                State::Size { digits, size } => match hex(byte) {
                    Some(_) if digits == MAX_SIZE_DIGITS => {
                        return Err(ChunkError("chunk size too large"));
                    }
                    Some(value) => State::Size {
                        digits: digits + 1,
                        size: (size << 4) | u64::from(value),
                    },
                    None if digits == 0 => return Err(ChunkError("chunk size expected")),
                    None => match byte {
                        b'\r' => State::SizeLf { size },
                        b';' | b' ' | b'\t' => State::Extension { size, len: 1 },
                        _ => return Err(ChunkError("invalid chunk size")),
                    },
                },
                State::Extension { size, len } => match byte {
                    b'\r' => State::SizeLf { size },
                    _ if len >= MAX_EXTENSION => {
                        return Err(ChunkError("chunk extension too long"));
                    }
                    b'\t' | b' '..=b'~' | 0x80.. => State::Extension { size, len: len + 1 },
                    _ => return Err(ChunkError("control character in a chunk extension")),
                },
                State::SizeLf { size } => match (byte, size) {
                    (b'\n', 0) => State::TrailerStart { len: 0 },
                    (b'\n', size) => State::Data { left: size },
                    _ => return Err(ChunkError("expected LF after the chunk size")),
                },
                State::DataCr => match byte {
                    b'\r' => State::DataLf,
                    _ => return Err(ChunkError("expected CRLF after chunk data")),
                },
                State::DataLf => match byte {
                    b'\n' => State::Size { digits: 0, size: 0 },
                    _ => return Err(ChunkError("expected CRLF after chunk data")),
                },
                State::TrailerStart { len } => match byte {
                    b'\r' => State::EndLf,
                    _ => trailer_byte(byte, len)?,
                },
                State::Trailer { len } => match byte {
                    b'\r' => State::TrailerLf { len },
                    _ => trailer_byte(byte, len)?,
                },
                State::TrailerLf { len } => match byte {
                    b'\n' => State::TrailerStart { len },
                    _ => return Err(ChunkError("expected LF in the trailers")),
                },
                State::EndLf => match byte {
                    b'\n' => {
                        self.state = State::Done;
                        return Ok(Scan {
                            consumed: i + 1,
                            data: 0..0,
                        });
                    }
                    _ => return Err(ChunkError("expected LF at the end of the body")),
                },
            };
            i += 1;
        }
        Ok(Scan {
            consumed: i,
            data: 0..0,
        })
    }

    /// Reads as much of `input` as belongs to the body; returns how many bytes that is.
    pub(crate) fn scan_all(&mut self, input: &[u8]) -> Result<usize, ChunkError> {
        let mut at = 0;
        while at < input.len() && !self.is_done() {
            at += self.scan(&input[at..])?.consumed;
        }
        Ok(at)
    }
}

fn trailer_byte(byte: u8, len: u32) -> Result<State, ChunkError> {
    match byte {
        _ if len >= MAX_TRAILERS => Err(ChunkError("trailers too long")),
        b'\n' => Err(ChunkError("bare LF in the trailers")),
        b'\t' | b' '..=b'~' | 0x80.. => Ok(State::Trailer { len: len + 1 }),
        _ => Err(ChunkError("control character in the trailers")),
    }
}

fn hex(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body's data, fed in pieces of `step` bytes; and how many bytes were the body.
    fn decode(input: &[u8], step: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut chunked = Chunked::default();
        let mut data = Vec::new();
        let mut at = 0;
        while at < input.len() && !chunked.is_done() {
            let end = (at + step).min(input.len());
            let piece = &input[at..end];
            let mut in_piece = 0;
            while in_piece < piece.len() && !chunked.is_done() {
                let scan = chunked.scan(&piece[in_piece..])?;
                data.extend_from_slice(&piece[in_piece..][scan.data]);
                in_piece += scan.consumed;
            }
            at += in_piece;
        }
        assert!(chunked.is_done(), "body not finished");
        Ok((data, at))
    }

    #[test]
    fn decodes_in_any_split_and_stops_at_the_end() {
        let body = b"5\r\nhello\r\n1;name=value\r\n \r\nA\r\n0123456789\r\n0\r\nx-t: 1\r\n\r\nNEXT";
        for step in 1..body.len() {
            let (data, used) = decode(body, step).expect("valid");
            assert_eq!(data, b"hello 0123456789", "step {step}");
            assert_eq!(used, body.len() - 4, "step {step}");
        }
        let mut chunked = Chunked::default();
        assert_eq!(chunked.scan_all(body), Ok(body.len() - 4));
        assert!(chunked.is_done());
    }

    #[test]
    fn refuses_what_parsers_could_read_differently() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"\r\n",
            b"-5\r\n",
            b"0x5\r\n",
            b"1000000000000000\r\n",
            b"0\r\n\n",
            b"0\r\nx: 1\n\r\n",
            b"5;\x01\r\n",
        ] {
            let mut chunked = Chunked::default();
            assert!(
                chunked.scan_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn long_extensions_and_trailers_are_bounded() {
        let mut line = b"1;".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_EXTENSION as usize + 1));
        assert!(Chunked::default().scan_all(&line).is_err());
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..2000 {
            trailers.extend_from_slice(b"x-long: 0123456789\r\n");
        }
        assert!(Chunked::default().scan_all(&trailers).is_err());
    }

    #[test]
    fn large_sizes_are_counted_without_overflow() {
        let mut chunked = Chunked::default();
        assert_eq!(chunked.scan_all(b"fffffffffffffff\r\n"), Ok(17));
        let scan = chunked.scan(&[0; 10]).expect("data");
        assert_eq!((scan.consumed, scan.data), (10, 0..10));
        assert!(!chunked.is_done());
    }
}
