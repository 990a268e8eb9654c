//! One connection to one DAX node (the official clients call it a "tube"): the
//! handshake (`gJ7yne5G` magic, no layering, a session id, the user agent, no
//! types), the connection authorisation ahead of a request when due
//! ([`crate::auth`]), and the response read in pieces until a whole response has
//! arrived. TLS for `daxs://` wraps the TCP stream (rustls).
//! Neighbours: [`crate::client`] owns pools of these per node.

use crate::auth;
use crate::cbor::{CborError, Decoder, Encoder, Value};
use crate::codec::method;
use crate::error::{DaxError, ErrorKind};
use aws_credential_types::Credentials;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub const MAGIC: &[u8] = b"gJ7yne5G";
/// An authorisation is valid for five minutes; it is renewed after half of that
/// (the official clients' `pool window`).
pub const AUTH_RENEW_AFTER: Duration = Duration::from_secs(150);

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

pub struct Connection {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    last_auth: Option<(Instant, String)>,
    pub node: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("node", &self.node)
            .finish()
    }
}

/// A fresh session id: 128 random bits, written as the official client writes
/// them (big-endian, without leading zero bytes).
fn session_id() -> Vec<u8> {
    let v = fastrand::u128(..);
    let b = v.to_be_bytes();
    let first = b.iter().position(|x| *x != 0).unwrap_or(15);
    b[first..].to_vec()
}

pub fn handshake(user_agent: &str) -> Vec<u8> {
    let mut e = Encoder::new();
    e.raw(MAGIC).int(0).bytes(&session_id());
    e.map(1).text("UserAgent").text(user_agent);
    e.int(0);
    e.into_bytes()
}

pub fn authorize(creds: &Credentials, region: &str, user_agent: &str, now: SystemTime) -> Vec<u8> {
    let sig = auth::sign(creds.secret_access_key(), now, region);
    let mut e = Encoder::new();
    e.int(1).int(method::AUTHORIZE_CONNECTION);
    e.text(creds.access_key_id())
        .text(&sig.signature)
        .bytes(sig.string_to_sign.as_bytes());
    match creds.session_token() {
        Some(t) => e.text(t),
        None => e.null(),
    };
    e.text(user_agent);
    e.into_bytes()
}

fn conn_err(node: &str, m: impl std::fmt::Display) -> DaxError {
    DaxError::Connection {
        node: node.to_string(),
        message: m.to_string(),
    }
}

impl Connection {
    pub async fn open(
        addr: SocketAddr,
        tls: Option<(&tokio_rustls::TlsConnector, &str)>,
        user_agent: &str,
        timeout: Duration,
    ) -> Result<Connection, DaxError> {
        let node = addr.to_string();
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| DaxError::Timeout {
                node: node.clone(),
                after_ms: timeout.as_millis() as u64,
            })?
            .map_err(|e| conn_err(&node, e))?;
        // Requests are small and latency-bound.
        tcp.set_nodelay(true).map_err(|e| conn_err(&node, e))?;
        let mut stream: Box<dyn Stream> = match tls {
            None => Box::new(tcp),
            Some((connector, host)) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| DaxError::Config(format!("server name {host}: {e}")))?;
                let s = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| DaxError::Timeout {
                        node: node.clone(),
                        after_ms: timeout.as_millis() as u64,
                    })?
                    .map_err(|e| conn_err(&node, format!("TLS: {e}")))?;
                Box::new(s)
            }
        };
        stream
            .write_all(&handshake(user_agent))
            .await
            .map_err(|e| conn_err(&node, e))?;
        Ok(Connection {
            stream,
            buf: Vec::new(),
            last_auth: None,
            node,
        })
    }

    /// Sends `request` (authorising first when due) and reads the response's body.
    pub async fn call(
        &mut self,
        creds: &Credentials,
        region: &str,
        user_agent: &str,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Value, DaxError> {
        let mut v = self
            .call_many(creds, region, user_agent, request, timeout, 1)
            .await?;
        v.pop()
            .ok_or_else(|| DaxError::Protocol("empty response".into()))
    }

    /// A call whose successful response is `values` CBOR items after the status
    /// (BatchGetItem's and BatchWriteItem's responses are several top-level items).
    pub async fn call_many(
        &mut self,
        creds: &Credentials,
        region: &str,
        user_agent: &str,
        request: &[u8],
        timeout: Duration,
        values: usize,
    ) -> Result<Vec<Value>, DaxError> {
        let node = self.node.clone();
        tokio::time::timeout(
            timeout,
            self.call_inner(creds, region, user_agent, request, values),
        )
        .await
        .map_err(|_| DaxError::Timeout {
            node,
            after_ms: timeout.as_millis() as u64,
        })?
    }

    async fn call_inner(
        &mut self,
        creds: &Credentials,
        region: &str,
        user_agent: &str,
        request: &[u8],
        values: usize,
    ) -> Result<Vec<Value>, DaxError> {
        let due = match &self.last_auth {
            None => true,
            Some((at, key)) => at.elapsed() >= AUTH_RENEW_AFTER || key != creds.access_key_id(),
        };
        let mut out = Vec::with_capacity(request.len() + 256);
        if due {
            out.extend(authorize(creds, region, user_agent, SystemTime::now()));
        }
        out.extend_from_slice(request);
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| conn_err(&self.node, e))?;
        if due {
            self.last_auth = Some((Instant::now(), creds.access_key_id().to_string()));
        }
        let status = self.next_value().await?;
        if status == Value::Array(Vec::new()) {
            let mut out = Vec::with_capacity(values);
            for i in 0..values {
                let v = self.next_value().await?;
                // A null answer (nothing to report) stands alone.
                let done = i == 0 && v == Value::Null;
                out.push(v);
                if done {
                    break;
                }
            }
            return Ok(out);
        }
        let codes: Vec<i64> = match &status {
            Value::Array(a) => a
                .iter()
                .filter_map(|c| c.as_int().and_then(|i| i64::try_from(i).ok()))
                .collect(),
            _ => return Err(DaxError::Protocol(format!("unexpected status {status:?}"))),
        };
        let message = match self.next_value().await? {
            Value::Text(t) => t,
            _ => String::new(),
        };
        let info = self.next_value().await?;
        let (request_id, http_status) = match &info {
            Value::Array(a) => (
                a.first().and_then(Value::as_text).map(str::to_string),
                a.get(2)
                    .and_then(Value::as_int)
                    .and_then(|s| u16::try_from(s).ok()),
            ),
            _ => (None, None),
        };
        Err(DaxError::Service {
            kind: ErrorKind::from_codes(&codes),
            codes,
            message,
            request_id,
            http_status,
        })
    }

    /// The next complete CBOR item from the node.
    async fn next_value(&mut self) -> Result<Value, DaxError> {
        loop {
            if !self.buf.is_empty() {
                let mut d = Decoder::new(&self.buf);
                match d.value() {
                    Ok(v) => {
                        let used = d.pos;
                        self.buf.drain(..used);
                        return Ok(v);
                    }
                    Err(CborError::Incomplete) => {}
                    Err(e) => return Err(DaxError::Protocol(e.to_string())),
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| conn_err(&self.node, e))?;
            if n == 0 {
                return Err(conn_err(&self.node, "remote socket is closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
