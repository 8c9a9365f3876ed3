//! The client connection as a stream of packets. Framing, splitting of payloads of 16 MiB
//! and more, and sequence-id checks come from `mysql_common`'s `PacketCodec`.

use bytes::BytesMut;
use mysql_common::proto::codec::{error::PacketCodecError, PacketCodec};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Why reading a packet failed.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// The socket failed or closed mid-packet.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection between packets.
    #[error("connection closed by client")]
    Closed,
    /// The packet exceeds `max_allowed_packet`.
    #[error("packet larger than max_allowed_packet")]
    TooLarge,
    /// The sequence id is not the expected one.
    #[error("packets out of order")]
    OutOfOrder,
}

impl From<PacketCodecError> for PacketError {
    fn from(e: PacketCodecError) -> Self {
        match e {
            PacketCodecError::Io(e) => PacketError::Io(e),
            PacketCodecError::PacketTooLarge => PacketError::TooLarge,
            PacketCodecError::PacketsOutOfSync => PacketError::OutOfOrder,
            PacketCodecError::BadCompressedPacketHeader => {
                PacketError::Io(io::Error::new(io::ErrorKind::InvalidData, "bad header"))
            }
        }
    }
}

/// The client socket: plain TCP, or TLS after the client asked for it.
pub enum ClientSocket {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// Transitional state while upgrading; never read or written.
    Upgrading,
}

impl AsyncRead for ClientSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientSocket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientSocket::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            ClientSocket::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientSocket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientSocket::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            ClientSocket::Upgrading => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientSocket::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientSocket::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ClientSocket::Upgrading => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientSocket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientSocket::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            ClientSocket::Upgrading => Poll::Ready(Ok(())),
        }
    }
}

/// Buffered writes are flushed once they pass this size, so large results stream.
const FLUSH_THRESHOLD: usize = 64 * 1024;

/// A client connection framed into MySQL packets.
pub struct PacketStream {
    socket: ClientSocket,
    codec: PacketCodec,
    read_buf: BytesMut,
    write_buf: BytesMut,
    packets_written: u64,
}

impl PacketStream {
    /// Wraps a freshly accepted socket.
    pub fn new(socket: TcpStream, max_allowed_packet: usize) -> Self {
        let mut codec = PacketCodec::default();
        codec.max_allowed_packet = max_allowed_packet;
        PacketStream {
            socket: ClientSocket::Plain(socket),
            codec,
            read_buf: BytesMut::with_capacity(4096),
            write_buf: BytesMut::with_capacity(4096),
            packets_written: 0,
        }
    }

    /// Sets the largest packet the client may send from now on.
    pub fn set_max_allowed_packet(&mut self, max: usize) {
        self.codec.max_allowed_packet = max;
    }

    /// Packets written so far (a statement that wrote nothing may be retried elsewhere).
    pub fn packets_written(&self) -> u64 {
        self.packets_written
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.socket, ClientSocket::Tls(_))
    }

    /// Reads one whole packet (payload only; split packets are joined).
    pub async fn read_packet(&mut self) -> Result<Vec<u8>, PacketError> {
        let mut payload = Vec::new();
        loop {
            if self.codec.decode(&mut self.read_buf, &mut payload)? {
                return Ok(payload);
            }
            let n = self.socket.read_buf(&mut self.read_buf).await?;
            if n == 0 {
                return if self.read_buf.is_empty() && payload.is_empty() {
                    Err(PacketError::Closed)
                } else {
                    Err(PacketError::Io(io::ErrorKind::UnexpectedEof.into()))
                };
            }
        }
    }

    /// Reads one packet without reading ahead. Used for the handshake response, which may be
    /// an SSL request immediately followed by the TLS client hello: those bytes must stay in
    /// the socket for the TLS acceptor.
    pub async fn read_packet_exact(&mut self) -> Result<Vec<u8>, PacketError> {
        if !self.read_buf.is_empty() {
            return self.read_packet().await;
        }
        let mut header = [0u8; 4];
        match self.socket.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(PacketError::Closed),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        if len > self.codec.max_allowed_packet {
            return Err(PacketError::TooLarge);
        }
        let mut body = vec![0u8; len];
        self.socket.read_exact(&mut body).await?;
        self.read_buf.extend_from_slice(&header);
        self.read_buf.extend_from_slice(&body);
        let mut payload = Vec::new();
        if self.codec.decode(&mut self.read_buf, &mut payload)? {
            Ok(payload)
        } else {
            // A first chunk of exactly 16 MiB - 1: the handshake response is never that big.
            Err(PacketError::TooLarge)
        }
    }

    /// Queues one packet; large payloads are split into 16 MiB chunks by the codec.
    pub async fn write_packet(&mut self, payload: &[u8]) -> Result<(), PacketError> {
        let mut src = payload;
        self.codec.encode(&mut src, &mut self.write_buf)?;
        self.packets_written += 1;
        if self.write_buf.len() >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> Result<(), PacketError> {
        if !self.write_buf.is_empty() {
            self.socket.write_all(&self.write_buf).await?;
            self.write_buf.clear();
        }
        self.socket.flush().await?;
        Ok(())
    }

    /// Starts a new command: sequence ids begin again at 0.
    pub fn reset_seq(&mut self) {
        self.codec.reset_seq_id();
    }

    /// Upgrades the socket to TLS (after the client's SSL request).
    pub async fn upgrade_tls(&mut self, acceptor: &tokio_rustls::TlsAcceptor) -> io::Result<()> {
        self.flush()
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        let ClientSocket::Plain(tcp) = std::mem::replace(&mut self.socket, ClientSocket::Upgrading)
        else {
            return Err(io::Error::other("TLS requested twice"));
        };
        let tls = acceptor.accept(tcp).await?;
        self.socket = ClientSocket::Tls(Box::new(tls));
        Ok(())
    }

    /// Closes the write side politely.
    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = self.socket.shutdown().await;
    }
}
