//! Bridges between hyper's async bodies and the engine's blocking readers and writers
//! (image save and load, container archives).

use std::io::{Read, Write};

use http_body_util::BodyExt;
use hyper::body::Bytes;
use tokio::sync::mpsc;

use super::Request;

/// A `Write` that sends what it gets to a response body (used from a blocking thread).
/// A client that went away turns into a `BrokenPipe` error.
pub struct ChannelWriter(pub mpsc::Sender<Bytes>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `Read` over a request body (used from a blocking thread).
pub struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl BodyReader {
    /// Starts forwarding `req`'s body; read it from a blocking thread.
    pub fn spawn(req: Request) -> BodyReader {
        let (tx, rx) = mpsc::channel::<Result<Bytes, String>>(16);
        let mut body = req.into_body();
        tokio::spawn(async move {
            while let Some(frame) = body.frame().await {
                let msg = match frame {
                    Ok(f) => match f.into_data() {
                        Ok(d) => Ok(d),
                        Err(_) => continue,
                    },
                    Err(e) => Err(e.to_string()),
                };
                let stop = msg.is_err();
                if tx.send(msg).await.is_err() || stop {
                    return;
                }
            }
        });
        BodyReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}
