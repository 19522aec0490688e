//! Just enough HTTP/2 to drive the server by hand from a raw socket: the preface,
//! frames, and header blocks in HPACK's literal-without-indexing form (no tables,
//! no Huffman), so a test can send what no well-behaved client would.

use tokio::io::{AsyncRead, AsyncReadExt};

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types used by the tests.
pub mod kind {
    /// `DATA`.
    pub const DATA: u8 = 0x0;
    /// `HEADERS`.
    pub const HEADERS: u8 = 0x1;
    /// `RST_STREAM`.
    pub const RST_STREAM: u8 = 0x3;
    /// `SETTINGS`.
    pub const SETTINGS: u8 = 0x4;
    /// `GOAWAY`.
    pub const GOAWAY: u8 = 0x7;
}

/// `END_STREAM` (on `DATA` and `HEADERS`).
pub const END_STREAM: u8 = 0x1;
/// `END_HEADERS` (on `HEADERS`).
pub const END_HEADERS: u8 = 0x4;

/// One frame: 9-byte header, then the payload.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("frame length");
    assert!(len < 1 << 24, "frame too long");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An empty `SETTINGS` frame (every setting at its default).
pub fn settings() -> Vec<u8> {
    frame(kind::SETTINGS, 0, 0, &[])
}

/// A `HEADERS` frame carrying `block`.
pub fn headers(stream: u32, flags: u8, block: &[u8]) -> Vec<u8> {
    frame(kind::HEADERS, flags, stream, block)
}

/// `RST_STREAM` with `CANCEL`.
pub fn rst_stream(stream: u32) -> Vec<u8> {
    frame(kind::RST_STREAM, 0, stream, &0x8u32.to_be_bytes())
}

/// A header block of literal fields without indexing.
pub fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        for s in [name, value] {
            integer(&mut out, s.len());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

/// `GET <path>` as a header block.
pub fn get(path: &str) -> Vec<u8> {
    header_block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
    ])
}

/// HPACK's integer with a 7-bit prefix (the string-length form, Huffman off).
fn integer(out: &mut Vec<u8>, mut n: usize) {
    if n < 127 {
        out.push(n as u8);
        return;
    }
    out.push(127);
    n -= 127;
    while n >= 128 {
        out.push((n % 128 + 128) as u8);
        n /= 128;
    }
    out.push(n as u8);
}

/// A frame as received.
#[derive(Debug)]
pub struct Frame {
    /// The type.
    pub kind: u8,
    /// The flags.
    pub flags: u8,
    /// The stream.
    pub stream: u32,
    /// The payload.
    pub payload: Vec<u8>,
}

/// The next frame, or `None` when the connection ends (EOF or reset).
pub async fn read_frame(stream: &mut (impl AsyncRead + Unpin)) -> Option<Frame> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_past_the_prefix_continue_in_seven_bit_groups() {
        // RFC 7541 C.1.2 uses a 5-bit prefix; with 7 bits, 1337 is 127, then 1210.
        let mut out = Vec::new();
        integer(&mut out, 1337);
        assert_eq!(out, [127, 0xba, 0x09]);
    }

    #[test]
    fn a_frame_header_is_length_type_flags_stream() {
        assert_eq!(
            frame(kind::RST_STREAM, 0, 3, &[0, 0, 0, 8]),
            [0, 0, 4, 3, 0, 0, 0, 0, 3, 0, 0, 0, 8]
        );
    }
}
