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

/// A hijacked connection: the client's socket when hyper hands it back (so that a
/// client that left can be told from one that only half-closed), and bytes the client
/// sent before the upgrade completed.
pub struct Hijacked {
    /// The connection.
    pub io: Box<dyn HijackedIo>,
    /// The socket's descriptor, while `io` lives (`None` for another transport).
    pub fd: Option<std::os::fd::RawFd>,
    /// What the client sent after its request, already read by hyper.
    pub early: Bytes,
}

/// What a hijacked connection can do.
pub trait HijackedIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> HijackedIo for T {}

impl Hijacked {
    /// Takes over an upgraded connection.
    pub fn new(upgraded: hyper::upgrade::Upgraded) -> Hijacked {
        use std::os::fd::AsRawFd;
        type Io = hyper_util::rt::TokioIo<tokio::net::UnixStream>;
        match upgraded.downcast::<Io>() {
            Ok(parts) => {
                let stream = parts.io.into_inner();
                let fd = stream.as_raw_fd();
                Hijacked {
                    io: Box::new(stream),
                    fd: Some(fd),
                    early: parts.read_buf,
                }
            }
            Err(u) => {
                // The TLS listener's connections: the TCP socket underneath tells
                // whether the peer left.
                type TlsIo =
                    hyper_util::rt::TokioIo<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;
                match u.downcast::<TlsIo>() {
                    Ok(parts) => {
                        let stream = parts.io.into_inner();
                        let fd = stream.get_ref().0.as_raw_fd();
                        Hijacked {
                            io: Box::new(stream),
                            fd: Some(fd),
                            early: parts.read_buf,
                        }
                    }
                    Err(u) => Hijacked {
                        io: Box::new(hyper_util::rt::TokioIo::new(u)),
                        fd: None,
                        early: Bytes::new(),
                    },
                }
            }
        }
    }
}

/// Whether the peer of socket `fd` closed its end entirely (a half-close, which the
/// docker CLI does when it has no stdin to send, is not that).
pub fn peer_gone(fd: Option<std::os::fd::RawFd>) -> bool {
    let Some(fd) = fd else {
        return false;
    };
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}
