//! [`Endpoint`]: the per-run HTTP endpoint on a loopback port (§11).
//!
//! One listener is both the base-URL routes (`/openai/v1/…`, `/anthropic/…`, `/NAME/…`)
//! and a forward proxy: absolute-form requests for other hosts, and `CONNECT` tunnels,
//! terminated with a leaf from the run's CA (or read in clear when the client speaks plain
//! HTTP through the tunnel, as Node's proxy agent does for `http://` URLs). Every request
//! becomes an [`HttpCall`] answered by the run's one [`Session`]. hyper does the protocol
//! work on a tokio runtime shared by all runs of the process.

use super::ca::RunCa;
use super::call::{Body, HttpCall, Target};
use super::upstream::Upstream;
use crate::gateway::{HttpAnswer, Session};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The largest request body read; a bigger one is answered 413.
const MAX_BODY: usize = 64 << 20;

pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            // Half the cores: the agents and their clients run on the rest. On two cores one
            // worker answers more requests a second than two, which wait on each other.
            .worker_threads((crate::host::cores() / 2).clamp(1, 4))
            .thread_name("agent-replay-http")
            .enable_all()
            .build()
            .expect("the HTTP runtime starts")
    })
}

/// How recorded streams are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplaySpeed {
    /// Every event at once, each in its own write.
    #[default]
    Instant,
    /// Each event after its recorded `delay_ms`.
    Realtime,
}

struct Ctx {
    session: Arc<Mutex<Session>>,
    upstreams: Vec<Upstream>,
    ca: RunCa,
    /// `127.0.0.1:PORT`: an absolute-form request to it is a base-URL route (rule 25).
    own: String,
    speed: ReplaySpeed,
    stop: watch::Receiver<bool>,
    /// Recorded answers, by interaction, made ready when first replayed.
    replies: Vec<OnceLock<Prebuilt>>,
    /// TLS clients for live forwarding, by `ca_file`.
    clients:
        Mutex<std::collections::HashMap<Option<std::path::PathBuf>, Arc<rustls::ClientConfig>>>,
}

/// A running endpoint; [`Endpoint::stop`] ends it and every connection.
pub struct Endpoint {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    ctx: Arc<Ctx>,
    /// The loops of the listeners adopted from a strict run's network namespace.
    adopted: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

/// What a listener of the endpoint serves.
#[derive(Clone, Copy)]
enum Listener {
    /// The endpoint's port: base-URL routes and the forward proxy.
    Front,
    /// Port 80 of a strict run's namespace: plain HTTP for whatever host `Host` names.
    Plain,
    /// Port 443 there: TLS for whatever host the SNI names, with a leaf from the run's CA.
    Tls,
}

impl Endpoint {
    /// Binds a loopback port, makes the run's CA and writes its bundle to `bundle`.
    pub fn start(
        session: Arc<Mutex<Session>>,
        upstreams: Vec<Upstream>,
        bundle: &Path,
        speed: ReplaySpeed,
    ) -> std::io::Result<Endpoint> {
        let ca = RunCa::new().map_err(std::io::Error::other)?;
        ca.write_bundle(bundle)?;
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let rt = runtime();
        let _guard = rt.enter();
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let (tx, rx) = watch::channel(false);
        let recordings = session
            .lock()
            .expect("session lock")
            .cassette
            .interaction_count();
        let ctx = Arc::new(Ctx {
            replies: (0..recordings).map(|_| OnceLock::new()).collect(),
            session,
            upstreams,
            ca,
            own: addr.to_string(),
            speed,
            stop: rx,
            clients: Mutex::default(),
        });
        let task = rt.spawn(accept_loop(listener, ctx.clone(), Listener::Front));
        Ok(Endpoint {
            addr,
            stop: tx,
            task: Some(task),
            ctx,
            adopted: Arc::default(),
        })
    }

    /// Where a strict run's init sends the sockets it made inside the run's network
    /// namespace (§14): the endpoint's port, 80 and 443 (TCP), then 53 (UDP, the resolver
    /// that answers every name with the endpoint). They are served like the endpoint's own.
    pub fn namespace_sink(&self) -> Box<dyn Fn(Vec<std::os::fd::OwnedFd>) + Send + Sync> {
        let ctx = self.ctx.clone();
        let adopted = self.adopted.clone();
        Box::new(move |sockets| {
            let rt = runtime();
            let _guard = rt.enter();
            let mut tasks = adopted.lock().expect("adopted lock");
            for (i, fd) in sockets.into_iter().enumerate() {
                let task = match i {
                    0..=2 => {
                        let std_listener = std::net::TcpListener::from(fd);
                        let _ = std_listener.set_nonblocking(true);
                        let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                            continue;
                        };
                        let kind = [Listener::Front, Listener::Plain, Listener::Tls][i];
                        rt.spawn(accept_loop(listener, ctx.clone(), kind))
                    }
                    _ => {
                        let std_socket = std::net::UdpSocket::from(fd);
                        let _ = std_socket.set_nonblocking(true);
                        let Ok(socket) = tokio::net::UdpSocket::from_std(std_socket) else {
                            continue;
                        };
                        rt.spawn(super::dns::serve(socket, ctx.stop.clone()))
                    }
                };
                tasks.push(task);
            }
        })
    }

    /// `AGENT_REPLAY_HTTP`: `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The agent's environment of §11 (the API keys are set by the caller, under the
    /// agent's own `env`).
    pub fn env(&self, upstreams: &[Upstream], bundle: &Path) -> Vec<(String, String)> {
        let base = self.base();
        let bundle = bundle.display().to_string();
        let mut env = vec![("AGENT_REPLAY_HTTP".to_string(), base.clone())];
        for up in upstreams {
            if let Some(var) = &up.env {
                env.push((var.clone(), format!("{base}/{}{}", up.name, up.base_path)));
            }
        }
        for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            env.push((var.to_string(), base.clone()));
        }
        env.push(("NODE_USE_ENV_PROXY".into(), "1".into()));
        for var in [
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS",
        ] {
            env.push((var.to_string(), bundle.clone()));
        }
        env
    }

    /// Stops accepting and closes every connection (the agent is gone by now).
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        let adopted = std::mem::take(&mut *self.adopted.lock().expect("adopted lock"));
        runtime().block_on(async {
            if let Some(task) = self.task.take() {
                let _ = task.await;
            }
            for task in adopted {
                let _ = task.await;
            }
        });
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, ctx: Arc<Ctx>, kind: Listener) {
    let mut stop = ctx.stop.clone();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors: do not spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                // Every stream event leaves in its own segment, without a delayed ACK's wait.
                let _ = stream.set_nodelay(true);
                let io = Prefixed::new(Bytes::new(), stream);
                match kind {
                    Listener::Front => conns.spawn(serve(TokioIo::new(io), ctx.clone(), None)),
                    Listener::Plain => {
                        conns.spawn(serve(TokioIo::new(io), ctx.clone(), Some(Origin::Host)))
                    }
                    Listener::Tls => conns.spawn(serve_tls_by_sni(io, ctx.clone())),
                };
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// Where the requests of a connection go when they do not say it themselves.
enum Origin {
    /// Inside a CONNECT tunnel, or a TLS connection to port 443 of a strict run's
    /// namespace: `(scheme, authority)`, from the CONNECT line or the SNI.
    Fixed(String, String),
    /// Port 80 of a strict run's namespace: each request's `Host` header names it.
    Host,
}

/// Serves one connection; `origin` is `None` on the endpoint's own port.
fn serve<I>(
    io: I,
    ctx: Arc<Ctx>,
    origin: Option<Origin>,
) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    Box::pin(async move {
        let mut stop = ctx.stop.clone();
        let svc_ctx = ctx.clone();
        let origin = origin.map(Arc::new);
        let svc = hyper::service::service_fn(move |req| {
            let ctx = svc_ctx.clone();
            let origin = origin.clone();
            async move { Ok::<_, Infallible>(handle(req, ctx, origin).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, svc)
            .with_upgrades();
        tokio::select! {
            _ = conn => {}
            _ = stop.changed() => {}
        }
    })
}

type Reply = Response<ReplyBody>;

async fn handle(req: Request<Incoming>, ctx: Arc<Ctx>, origin: Option<Arc<Origin>>) -> Reply {
    if req.method() == Method::CONNECT && origin.is_none() {
        return connect(req, ctx);
    }
    let uri = req.uri().clone();
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let host = || {
        req.headers()
            .get(hyper::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    // A base-URL route names its upstream; a proxied request is known by its origin
    // (several upstreams may share one: a gateway, a test server).
    let mut routed = None;
    let url = match (origin.as_deref(), uri.scheme_str(), uri.authority()) {
        (Some(Origin::Fixed(scheme, authority)), _, _) => {
            format!("{scheme}://{authority}{path_and_query}")
        }
        (Some(Origin::Host), _, _) => format!("http://{}{path_and_query}", host()),
        (None, Some(_), Some(a)) if a.as_str() != ctx.own && !is_own(a.as_str(), &ctx.own) => {
            uri.to_string()
        }
        _ => match route(&ctx.upstreams, &path_and_query) {
            Ok((url, up)) => {
                routed = Some(up);
                url
            }
            Err(message) => {
                let url = format!("http://{}{path_and_query}", ctx.own);
                let body = ctx.session.lock().expect("session lock").call_unrouted(
                    req.method().as_str(),
                    &url,
                    &message,
                );
                return unrecorded_reply(body);
            }
        },
    };
    let Some(target) = Target::parse(&url) else {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "agent_replay_bad_request",
            &format!("agent-replay: cannot read the request URL {url:?}"),
        );
    };
    let method = req.method().as_str().to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    for (k, v) in req.headers() {
        let name = k.as_str();
        if matches!(
            name,
            "host"
                | "content-length"
                | "connection"
                | "proxy-connection"
                | "keep-alive"
                | "transfer-encoding"
                | "te"
                | "upgrade"
        ) {
            continue;
        }
        headers.push((
            name.to_string(),
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        ));
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "agent_replay_bad_request",
                "agent-replay: the request body could not be read or is larger than 64 MiB",
            )
        }
    };
    let raw_query = url.split_once('?').map(|(_, q)| q.to_string());
    let upstream = routed
        .or_else(|| super::upstream::for_origin(&ctx.upstreams, &target.scheme, &target.authority));
    let call = HttpCall {
        method: method.clone(),
        target,
        raw_query,
        headers: headers.clone(),
        body: Body::from_bytes(&body, content_type.as_deref()),
    };
    let allow_writes = upstream.as_ref().is_some_and(|u| u.allow_writes);
    let (answer, prebuilt) = {
        let mut session = ctx.session.lock().expect("session lock");
        let answer = session.call_http(call, allow_writes);
        let prebuilt = match &answer {
            HttpAnswer::Recorded(i) | HttpAnswer::RecordedDrift(i, _) => Some(
                ctx.replies[*i]
                    .get_or_init(|| Prebuilt::of(&session.cassette.http_of(*i).response)),
            ),
            _ => None,
        };
        (answer, prebuilt)
    };
    match (answer, prebuilt) {
        (HttpAnswer::Recorded(_), Some(r)) => r.reply(ctx.speed),
        (HttpAnswer::Unrecorded(body), _) => unrecorded_reply(body),
        (HttpAnswer::Forward(pending), _) => {
            let (answer, name) = send_live(&ctx, method, url, headers, body, upstream).await;
            let finished = ctx
                .session
                .lock()
                .expect("session lock")
                .finish_forward(*pending, &answer, &name);
            match (finished, answer) {
                (Ok(()), Ok(mut r)) => {
                    hide_live_keys(&mut r, &ctx.upstreams);
                    Prebuilt::live(&r).reply(ReplaySpeed::Instant)
                }
                (Err(body), _) | (Ok(()), Err(body)) => Response::builder()
                    .status(StatusCode::BAD_GATEWAY)
                    .header("content-type", "application/json")
                    .header("x-agent-replay", "live-unavailable")
                    .header("x-should-retry", "false")
                    .body(ReplyBody::full(Bytes::from(body)))
                    .expect("static headers are valid"),
            }
        }
        (HttpAnswer::RecordedDrift(i, pending), Some(r)) => {
            let (answer, name) = send_live(&ctx, method, url, headers, body, upstream).await;
            ctx.session
                .lock()
                .expect("session lock")
                .finish_drift(*pending, i, &answer, &name);
            r.reply(ctx.speed)
        }
        (HttpAnswer::Recorded(_) | HttpAnswer::RecordedDrift(..), None) => {
            unreachable!("a recorded answer has its response")
        }
    }
}

/// Sends the request to its live upstream (a forward, or under `--drift` a comparison);
/// the answer and the upstream's name for messages.
async fn send_live(
    ctx: &Ctx,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    upstream: Option<&Upstream>,
) -> (Result<crate::fixture::format::HttpResponse, String>, String) {
    let out = outgoing(method, url, headers, body, upstream);
    let answer = match ctx.client_config(upstream) {
        Ok(tls) => super::live::forward(out, tls).await,
        Err(e) => Err(e),
    };
    let name = upstream.map_or_else(|| "(the host itself)".into(), |u| u.name.clone());
    (answer, name)
}

/// The real keys live mode adds are never shown to the agent (§12): an upstream that
/// echoes one back has it replaced by its redaction token in the answer the agent gets.
fn hide_live_keys(r: &mut crate::fixture::format::HttpResponse, upstreams: &[Upstream]) {
    let keys = crate::redact::Redactor::default().with_live_keys(upstreams);
    let hide = |text: &mut String| {
        if let Some(t) = keys.replace_exact(text) {
            *text = t;
        }
    };
    for v in r.headers.values_mut() {
        hide(v);
    }
    if let Some(t) = &mut r.body_text {
        hide(t);
    }
    for e in r.events.iter_mut().flatten() {
        hide(&mut e.data);
    }
    if let Some(body) = &r.body {
        // A token is plain ASCII with no quote or backslash: the JSON stays JSON.
        if let Some(t) = keys.replace_exact(body.get()) {
            if let Ok(raw) = serde_json::value::RawValue::from_string(t) {
                r.body = Some(raw);
            }
        }
    }
}

/// The request the live upstream gets: the agent's own bytes and headers without a
/// compression wish or a placeholder key, the real key (rule 31) in its place. The
/// agent's other credentials (a token of its own, a cookie) go on as it sent them: they
/// are only kept out of what is recorded and matched.
fn outgoing(
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    upstream: Option<&Upstream>,
) -> super::live::Outgoing {
    let key = upstream.and_then(|up| {
        let key = std::env::var(&up.api_key_env).ok()?;
        let value = if up.api_key_header == "authorization" {
            format!("Bearer {key}")
        } else {
            key
        };
        Some((up.api_key_header.clone(), value))
    });
    let mut headers: Vec<(String, String)> = headers
        .into_iter()
        .filter(|(k, v)| {
            k != "accept-encoding"
                && key
                    .as_ref()
                    .is_none_or(|(name, _)| !k.eq_ignore_ascii_case(name))
                && !(super::call::is_credential(k, &[]) && super::upstream::is_placeholder(v))
        })
        .collect();
    headers.extend(key);
    super::live::Outgoing {
        method,
        url,
        headers,
        body,
    }
}

impl Ctx {
    /// The TLS client of an upstream (its `ca_file` beside the system roots), made once.
    fn client_config(
        &self,
        upstream: Option<&Upstream>,
    ) -> Result<Arc<rustls::ClientConfig>, String> {
        let ca = upstream.and_then(|u| u.ca_file.clone());
        let mut cache = self.clients.lock().expect("client cache lock");
        if let Some(c) = cache.get(&ca) {
            return Ok(c.clone());
        }
        let config = super::live::client_config(ca.as_deref())?;
        cache.insert(ca, config.clone());
        Ok(config)
    }
}

/// Whether an authority names this endpoint (`localhost:PORT` as well as `127.0.0.1:PORT`).
fn is_own(authority: &str, own: &str) -> bool {
    let port = own.rsplit(':').next().unwrap_or_default();
    authority == format!("localhost:{port}")
}

/// `/NAME/REST` → `<url of NAME>/REST`, and NAME's upstream.
fn route<'a>(
    upstreams: &'a [Upstream],
    path_and_query: &str,
) -> Result<(String, &'a Upstream), String> {
    let rest = path_and_query.trim_start_matches('/');
    let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let name = name.split('?').next().unwrap_or(name);
    match upstreams.iter().find(|u| u.name == name) {
        Some(up) => Ok((format!("{}/{}", up.origin, tail), up)),
        None => Err(format!(
            "agent-replay: no upstream `{name}`: the base-URL routes are /{}/…; add [http.upstreams.{name}] to agent-replay.toml to route it",
            upstreams.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join("/…, /")
        )),
    }
}

/// Accepts a tunnel, then reads it as TLS (terminated with the run's CA) or plain HTTP.
fn connect(req: Request<Incoming>, ctx: Arc<Ctx>) -> Reply {
    let Some(host) = req.uri().host().map(str::to_ascii_lowercase) else {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "agent_replay_bad_request",
            "agent-replay: CONNECT needs host:port",
        );
    };
    let port = req.uri().port_u16().unwrap_or(443);
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let Ok(parts) = upgraded.downcast::<TokioIo<Prefixed>>() else {
            return;
        };
        let Prefixed {
            prefix,
            inner: stream,
            ..
        } = parts.io.into_inner();
        // hyper hands back what it read past the CONNECT; anything we held comes first.
        let read_buf = if prefix.is_empty() {
            parts.read_buf
        } else {
            [prefix, parts.read_buf].concat().into()
        };
        let mut first = [0u8; 1];
        let tls = match read_buf.first() {
            Some(b) => *b == 0x16,
            None => matches!(stream.peek(&mut first).await, Ok(1) if first[0] == 0x16),
        };
        let io = Prefixed::new(read_buf, stream);
        let (scheme, default_port) = if tls { ("https", 443) } else { ("http", 80) };
        let authority = if port == default_port {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        let origin = Some(Origin::Fixed(scheme.to_string(), authority));
        if tls {
            let Ok(config) = ctx.ca.server_config(&host) else {
                return;
            };
            let Ok(tls_stream) = tokio_rustls::TlsAcceptor::from(config).accept(io).await else {
                return;
            };
            serve(TokioIo::new(tls_stream), ctx, origin).await;
        } else {
            serve(TokioIo::new(io), ctx, origin).await;
        }
    });
    Response::new(ReplyBody::empty())
}

/// A TLS connection to port 443 of a strict run's namespace: the leaf is made for the
/// host its ClientHello names (a client without SNI, which dialled a bare address, is
/// dropped: no host, no recording to answer from).
async fn serve_tls_by_sni(io: Prefixed, ctx: Arc<Ctx>) {
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    let Ok(start) = acceptor.await else {
        return;
    };
    let Some(host) = start.client_hello().server_name().map(str::to_string) else {
        return;
    };
    let Ok(config) = ctx.ca.server_config(&host) else {
        return;
    };
    let Ok(tls_stream) = start.into_stream(config).await else {
        return;
    };
    serve(
        TokioIo::new(tls_stream),
        ctx,
        Some(Origin::Fixed("https".into(), host)),
    )
    .await;
}

/// A connection, with bytes already read from it put back in front, that acknowledges what
/// it reads at once.
///
/// A client that sends a request's head and body in two writes without `TCP_NODELAY`
/// (urllib3 through a proxy does) holds the body back until the head is acknowledged;
/// a delayed ACK makes that 40 ms per request. Quick-ACK mode does not stick on Linux, so
/// it is asked for again after every read.
struct Prefixed {
    prefix: Bytes,
    inner: TcpStream,
    ack: Ack,
}

/// Whether what was read from a connection has been acknowledged.
#[derive(Clone, Copy)]
enum Ack {
    /// By a write, or a quick ACK.
    Sent,
    /// Bytes were read since.
    Owed,
    /// And the reader found nothing more once: if it finds nothing again, ACK them alone.
    Waiting,
}

impl Prefixed {
    fn new(prefix: Bytes, inner: TcpStream) -> Prefixed {
        Prefixed {
            prefix,
            inner,
            ack: Ack::Sent,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let head = self.prefix.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match (polled.is_pending(), self.ack) {
            (false, _) if buf.filled().len() > before => self.ack = Ack::Owed,
            // hyper also reads while the answer is being made (to see a hang-up): give
            // the answer, which carries the ACK, one turn before asking for an ACK alone.
            (true, Ack::Owed) => {
                self.ack = Ack::Waiting;
                cx.waker().wake_by_ref();
            }
            // Still nothing written: the client may be holding the rest of its request
            // back until the start is acknowledged.
            (true, Ack::Waiting) => {
                self.ack = Ack::Sent;
                let _ = rustix::net::sockopt::set_tcp_quickack(&self.inner, true);
            }
            _ => {}
        }
        polled
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            // What was read is acknowledged by the answer's segment.
            self.ack = Ack::Sent;
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Headers never replayed: framing is ours, the body is sent decoded.
fn replayable(name: &str) -> bool {
    !matches!(
        name,
        "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "content-encoding"
    )
}

/// A recorded answer made ready once to be sent any number of times: its body and
/// header values are shared, not copied, by every reply.
struct Prebuilt {
    status: StatusCode,
    headers: hyper::http::HeaderMap,
    body: Prepared,
}

enum Prepared {
    Full(Bytes),
    Events(Vec<(Bytes, f64)>),
}

impl Prebuilt {
    /// A recording, made ready.
    fn of(r: &crate::fixture::format::HttpResponse) -> Prebuilt {
        Prebuilt::from_response(r, false)
    }

    /// A live answer, made ready: with the credentials the upstream set (`set-cookie`),
    /// which the agent gets and a recording never holds.
    fn live(r: &crate::fixture::format::HttpResponse) -> Prebuilt {
        Prebuilt::from_response(r, true)
    }

    fn from_response(r: &crate::fixture::format::HttpResponse, live: bool) -> Prebuilt {
        let (body, default_type) = if let Some(events) = &r.events {
            let frames = events
                .iter()
                .map(|e| {
                    let mut out = Vec::new();
                    super::sse::encode(e, &mut out);
                    (Bytes::from(out), e.delay_ms)
                })
                .collect();
            (Prepared::Events(frames), "text/event-stream")
        } else if let Some(raw) = &r.body {
            (
                Prepared::Full(Bytes::copy_from_slice(raw.get().as_bytes())),
                "application/json",
            )
        } else if let Some(t) = &r.body_text {
            (
                Prepared::Full(Bytes::copy_from_slice(t.as_bytes())),
                "text/plain; charset=utf-8",
            )
        } else if let Some(b) = &r.body_b64 {
            (
                Prepared::Full(Bytes::from(crate::base64::decode(b).unwrap_or_default())),
                "application/octet-stream",
            )
        } else {
            (Prepared::Full(Bytes::new()), "")
        };
        let streamed = matches!(body, Prepared::Events(_));
        let mut headers = hyper::http::HeaderMap::new();
        let mut has_type = false;
        for (k, v) in &r.headers {
            let name = k.to_ascii_lowercase();
            let keep = if crate::http::call::is_credential(&name, &[]) {
                live
            } else {
                replayable(&name)
            };
            if !keep {
                continue;
            }
            if name == "content-type" {
                has_type = true;
                if streamed {
                    continue;
                }
            }
            if let (Ok(name), Ok(value)) = (
                hyper::http::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.append(name, value);
            }
        }
        if streamed {
            headers.insert(
                hyper::http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            headers.insert(
                hyper::http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            );
        } else if !has_type && !default_type.is_empty() {
            headers.insert(
                hyper::http::header::CONTENT_TYPE,
                HeaderValue::from_static(default_type),
            );
        }
        Prebuilt {
            status: StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK),
            headers,
            body,
        }
    }

    fn reply(&self, speed: ReplaySpeed) -> Reply {
        let body = match &self.body {
            Prepared::Full(b) => ReplyBody::full(b.clone()),
            Prepared::Events(frames) => ReplyBody::events(frames.iter().cloned().collect(), speed),
        };
        let mut reply = Response::new(body);
        *reply.status_mut() = self.status;
        *reply.headers_mut() = self.headers.clone();
        reply
    }
}

fn unrecorded_reply(body: String) -> Reply {
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("content-type", "application/json")
        .header("x-agent-replay", "unrecorded")
        // The OpenAI and Anthropic SDKs honour it: fail at once, never retry.
        .header("x-should-retry", "false")
        .body(ReplyBody::full(Bytes::from(body)))
        .expect("static headers are valid")
}

fn error_reply(status: StatusCode, kind: &str, message: &str) -> Reply {
    let body = serde_json::json!({"error": {"type": kind, "message": message}}).to_string();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-should-retry", "false")
        .body(ReplyBody::full(Bytes::from(body)))
        .expect("static headers are valid")
}

/// A whole body, or a recorded event stream.
pub struct ReplyBody {
    full: Option<Bytes>,
    frames: VecDeque<(Bytes, f64)>,
    speed: ReplaySpeed,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The next event's delay was slept.
    slept: bool,
    /// Yielded once since the last event, so hyper wrote that one out on its own.
    yielded: bool,
}

impl ReplyBody {
    fn empty() -> ReplyBody {
        ReplyBody::full(Bytes::new())
    }

    fn full(b: Bytes) -> ReplyBody {
        ReplyBody {
            full: Some(b),
            frames: VecDeque::new(),
            speed: ReplaySpeed::Instant,
            sleep: None,
            slept: false,
            yielded: true,
        }
    }

    fn events(frames: VecDeque<(Bytes, f64)>, speed: ReplaySpeed) -> ReplyBody {
        ReplyBody {
            full: None,
            frames,
            speed,
            sleep: None,
            slept: false,
            yielded: false,
        }
    }
}

impl hyper::body::Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if let Some(b) = this.full.take() {
            return Poll::Ready((!b.is_empty()).then(|| Ok(Frame::data(b))));
        }
        let Some((_, delay)) = this.frames.front() else {
            return Poll::Ready(None);
        };
        if this.speed == ReplaySpeed::Realtime && *delay > 0.0 && !this.slept {
            let sleep = this.sleep.get_or_insert_with(|| {
                Box::pin(tokio::time::sleep(Duration::from_secs_f64(delay / 1000.0)))
            });
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
            this.slept = true;
        }
        // Pending once between events: hyper flushes what it holds before it asks again,
        // so each event leaves in its own write, as a live stream's would.
        if !this.yielded {
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.yielded = false;
        this.slept = false;
        let (bytes, _) = this.frames.pop_front().expect("checked above");
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.full.as_ref().is_some_and(|b| b.is_empty())
            || (self.full.is_none() && self.frames.is_empty())
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match &self.full {
            Some(b) => hyper::body::SizeHint::with_exact(b.len() as u64),
            None => hyper::body::SizeHint::default(),
        }
    }
}
