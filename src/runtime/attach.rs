//! The attach protocol spoken over a container's unix socket
//! (`containers/<id>/attach.sock`) between the supervisor and clients
//! (`run`, `start -a`, `attach`).
//!
//! A stream of frames `[kind: u8][len: u32 big-endian][payload]`, much like
//! Docker's multiplexed attach stream. Supervisor to client: `STDOUT`,
//! `STDERR`, and `EXIT` (payload: the exit code as i32 big-endian) before the
//! supervisor closes the connection. Client to supervisor: `STDIN` data,
//! `STDIN_EOF`, and `RESIZE` (rows, cols as u16 big-endian) for a tty.

/// Frame kinds.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 3;
pub const RESIZE: u8 = 4;
pub const STDIN_EOF: u8 = 5;

/// Largest payload accepted (hostile peers cannot make us buffer more).
pub const MAX_FRAME: usize = 1 << 20;

/// Encodes one frame.
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An exit frame.
pub fn exit_frame(code: i32) -> Vec<u8> {
    encode(EXIT, &code.to_be_bytes())
}

/// A resize frame.
pub fn resize_frame(rows: u16, cols: u16) -> Vec<u8> {
    let mut p = rows.to_be_bytes().to_vec();
    p.extend_from_slice(&cols.to_be_bytes());
    encode(RESIZE, &p)
}

/// Errors decoding frames.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("attach frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

/// Accumulates bytes and yields complete frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Vec<u8>)>, FrameError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let payload = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Ok(Some((kind, payload)))
    }
}

/// Decodes an exit frame's payload.
pub fn exit_code(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_pieces() {
        let mut bytes = encode(STDOUT, b"hello");
        bytes.extend(exit_frame(137));
        bytes.extend(resize_frame(24, 80));
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for chunk in bytes.chunks(3) {
            d.feed(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got[0], (STDOUT, b"hello".to_vec()));
        assert_eq!(got[1].0, EXIT);
        assert_eq!(exit_code(&got[1].1), 137);
        assert_eq!(got[2], (RESIZE, vec![0, 24, 0, 80]));
    }

    #[test]
    fn hostile_length_rejected() {
        let mut d = Decoder::default();
        d.feed(&[STDIN, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(d.next_frame(), Err(FrameError::TooLarge(u32::MAX as usize)));
        assert_eq!(exit_code(&[1]), -1);
    }
}
