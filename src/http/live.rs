//! Live forwarding (§12): an unrecorded request sent on to the real upstream over
//! verified TLS, its answer read whole (a stream event by event, timed) so the same
//! recorded-response path answers the agent and the recorder keeps it.

use super::ca::provider;
use crate::fixture::format::{HttpResponse, SseEvent};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::http::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a live upstream may take to answer, headers and body.
const LIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// A request as it goes out: the agent's own bytes, the real key added.
pub struct Outgoing {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The TLS client configuration trusting the system roots plus `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in system_roots() {
        let _ = roots.add(c.clone());
    }
    if let Some(path) = ca_file {
        let text = std::fs::read(path)
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
        let certs: Vec<CertificateDer<'static>> =
            rustls::pki_types::pem::PemObject::pem_slice_iter(&text)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("ca_file {} is not a PEM bundle: {e:?}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("ca_file {} holds no certificate", path.display()));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Sends `out` and reads the whole answer. An error is the reason the upstream could not
/// be used (connection, TLS, protocol), for `live_unavailable`.
pub async fn forward(
    out: Outgoing,
    tls: Arc<rustls::ClientConfig>,
) -> Result<HttpResponse, String> {
    match tokio::time::timeout(LIVE_TIMEOUT, send(out, tls)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}s", LIVE_TIMEOUT.as_secs())),
    }
}

async fn send(out: Outgoing, tls: Arc<rustls::ClientConfig>) -> Result<HttpResponse, String> {
    let uri: Uri = out
        .url
        .parse()
        .map_err(|e| format!("bad URL {}: {e}", out.url))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("URL without a host")?.to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let started = Instant::now();
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let path = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let authority = uri
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_else(|| host.clone());
    let mut builder = Request::builder()
        .method(out.method.as_str())
        .uri(path)
        .header("host", authority);
    for (k, v) in &out.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let req = builder
        .body(Full::new(out.body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = if https {
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
            .map_err(|e| format!("bad TLS name {host}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}:{port} failed: {e}"))?;
        exchange(TokioIo::new(stream), req).await?
    } else {
        exchange(TokioIo::new(tcp), req).await?
    };
    read_response(response, started).await
}

async fn exchange<I>(
    io: I,
    req: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(req)
        .await
        .map_err(|e| format!("the request failed: {e}"))
}

async fn read_response(
    response: hyper::Response<hyper::body::Incoming>,
    started: Instant,
) -> Result<HttpResponse, String> {
    let status = response.status().as_u16();
    let mut headers = std::collections::BTreeMap::new();
    for (k, v) in response.headers() {
        let name = k.as_str();
        // Credential headers (`set-cookie`) reach the agent; the recording leaves them out.
        if matches!(
            name,
            "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "date"
        ) {
            continue;
        }
        let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
        headers
            .entry(name.to_string())
            .and_modify(|old: &mut String| {
                old.push_str(", ");
                old.push_str(&value);
            })
            .or_insert(value);
    }
    let is_stream = headers
        .get("content-type")
        .is_some_and(|t| t.starts_with("text/event-stream"));
    let content_type = headers.get("content-type").cloned();
    let mut body = response.into_body();
    let mut r = HttpResponse {
        status,
        headers,
        body: None,
        body_text: None,
        body_b64: None,
        events: None,
        duration_ms: None,
    };
    if is_stream {
        let mut parser = SseParser::default();
        let mut last = Instant::now();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("the stream broke off: {e}"))?;
            if let Some(data) = frame.data_ref() {
                parser.push(data, &mut last);
            }
        }
        parser.finish(&mut last);
        r.events = Some(parser.events);
    } else {
        let bytes = body
            .collect()
            .await
            .map_err(|e| format!("the body broke off: {e}"))?
            .to_bytes();
        match super::call::Body::from_bytes(&bytes, content_type.as_deref()) {
            super::call::Body::Json(_) => {
                let text = std::str::from_utf8(&bytes).map_err(|e| e.to_string())?;
                r.body = Some(
                    serde_json::value::RawValue::from_string(crate::json::minify(text))
                        .map_err(|e| e.to_string())?,
                );
            }
            super::call::Body::Text(t) => r.body_text = Some(t),
            super::call::Body::Bytes(b) => r.body_b64 = Some(crate::base64::encode(&b)),
            super::call::Body::None => {}
        }
    }
    r.duration_ms = Some((started.elapsed().as_secs_f64() * 1000.0).round());
    Ok(r)
}

/// Server-sent events as they arrive, each timed from the one before (the first from the
/// response headers).
#[derive(Default)]
struct SseParser {
    buf: String,
    events: Vec<SseEvent>,
}

impl SseParser {
    fn push(&mut self, data: &[u8], last: &mut Instant) {
        self.buf
            .push_str(&String::from_utf8_lossy(data).replace("\r\n", "\n"));
        while let Some(end) = self.buf.find("\n\n") {
            let block: String = self.buf.drain(..end + 2).collect();
            self.block(&block, last);
        }
    }

    fn finish(&mut self, last: &mut Instant) {
        let rest = std::mem::take(&mut self.buf);
        if !rest.trim().is_empty() {
            self.block(&rest, last);
        }
    }

    fn block(&mut self, block: &str, last: &mut Instant) {
        let (mut event, mut id, mut data): (Option<String>, Option<String>, Option<String>) =
            (None, None, None);
        for line in block.lines() {
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = Some(value.to_string()),
                "id" => id = Some(value.to_string()),
                "data" => match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_string()),
                },
                _ => {}
            }
        }
        let Some(data) = data else {
            return;
        };
        let now = Instant::now();
        let delay = (now - *last).as_secs_f64() * 1000.0;
        *last = now;
        self.events.push(SseEvent {
            event,
            data,
            id,
            delay_ms: (delay * 10.0).round() / 10.0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// What `sse::encode` writes, this parser reads back as the same events, however
        /// the bytes are split into chunks.
        #[test]
        fn encoded_events_parse_back_whatever_the_chunks(
            events in proptest::collection::vec(
                (proptest::option::of("[a-z.]{1,12}"), "[^\r]{0,40}", proptest::option::of("[a-z0-9]{1,6}")),
                1..8,
            ),
            cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            let events: Vec<SseEvent> = events
                .into_iter()
                .map(|(event, data, id)| SseEvent { event, data, id, delay_ms: 0.0 })
                .collect();
            let mut wire = Vec::new();
            for e in &events {
                super::super::sse::encode(e, &mut wire);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(wire.len())).collect();
            cuts.sort_unstable();
            let mut parser = SseParser::default();
            let mut last = Instant::now();
            let mut from = 0;
            // Split only at char boundaries: the parser reads text.
            for c in cuts.into_iter().chain([wire.len()]) {
                let mut c = c.max(from);
                while c < wire.len() && (wire[c] & 0xC0) == 0x80 {
                    c += 1;
                }
                parser.push(&wire[from..c], &mut last);
                from = c;
            }
            parser.finish(&mut last);
            let got: Vec<(Option<String>, String, Option<String>)> =
                parser.events.iter().map(|e| (e.event.clone(), e.data.clone(), e.id.clone())).collect();
            let want: Vec<(Option<String>, String, Option<String>)> =
                events.iter().map(|e| (e.event.clone(), e.data.clone(), e.id.clone())).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn sse_blocks_split_across_chunks_become_events() {
        let mut p = SseParser::default();
        let mut t = Instant::now();
        p.push(b"event: a\r\ndata: 1\r\n", &mut t);
        p.push(b"data: 2\r\n\r\n: comment\n\ndata: [DONE]\n", &mut t);
        p.finish(&mut t);
        let got: Vec<(Option<&str>, &str)> = p
            .events
            .iter()
            .map(|e| (e.event.as_deref(), e.data.as_str()))
            .collect();
        assert_eq!(got, [(Some("a"), "1\n2"), (None, "[DONE]")]);
    }
}
