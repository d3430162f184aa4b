//! A fault-injecting HTTP/1.1 proxy for loopback tests: it sits between a desk and a gate and,
//! request by request, drops, resets, delays, truncates or duplicates what passes through.
//!
//! It frames HTTP/1.1 messages (with `httparse`: request and response heads, `Content-Length`
//! and chunked bodies) instead of copying raw bytes. A byte-level proxy cannot tell where one
//! request ends on a keep-alive connection, so it could only fault whole connections, and the
//! case that matters most — the gate applied a request and the desk never heard back — would
//! need the desk to open a fresh connection per request, which it does not do and should not
//! be changed to do for a test. Framing keeps the desk's own connection handling under test.
//!
//! Faults are drawn from a seeded RNG, one stream per connection derived from the seed and the
//! connection's accept order, so a sequential client sees the same faults again when the seed
//! is replayed (`COUNTERSIGN_FAULT_SEED`, see [`seed_from_env`]).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// The environment variable that replays a run's faults.
pub const SEED_ENV: &str = "COUNTERSIGN_FAULT_SEED";

/// Largest request or response head the proxy accepts.
const MAX_HEAD: usize = 64 * 1024;

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Forwarded, answered.
    Pass,
    /// Held for a while, then forwarded and answered.
    Delay,
    /// The client's connection is closed (FIN) without forwarding the request.
    DropBeforeForward,
    /// Forwarded and answered by the gate, then the client's connection is closed without the
    /// answer: the gate acted, the client cannot know it.
    DropAfterForward,
    /// The client's connection is reset (RST, `SO_LINGER` 0) without forwarding the request.
    ResetBeforeForward,
    /// Forwarded and answered by the gate, then the client's connection is reset.
    ResetAfterForward,
    /// Forwarded; the client gets the first part of the answer, then a closed connection.
    TruncateResponse,
    /// Forwarded twice; the client gets one of the two answers.
    Duplicate,
}

impl Fault {
    /// Whether the gate sees the request (at least once) under this fault.
    pub fn forwards(self) -> bool {
        !matches!(self, Fault::DropBeforeForward | Fault::ResetBeforeForward)
    }
}

/// How often each fault happens, in requests per thousand; what is left passes untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPlan {
    pub drop_before: u32,
    pub drop_after: u32,
    pub reset_before: u32,
    pub reset_after: u32,
    pub truncate: u32,
    pub duplicate: u32,
    pub delay: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl FaultPlan {
    /// Every request passes.
    pub fn none() -> FaultPlan {
        FaultPlan {
            drop_before: 0,
            drop_after: 0,
            reset_before: 0,
            reset_after: 0,
            truncate: 0,
            duplicate: 0,
            delay: 0,
            min_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// Every request gets `fault` (delays between `min_delay` and `max_delay` of the plan).
    pub fn always(fault: Fault) -> FaultPlan {
        let mut plan = FaultPlan::none();
        match fault {
            Fault::Pass => {}
            Fault::Delay => plan.delay = 1000,
            Fault::DropBeforeForward => plan.drop_before = 1000,
            Fault::DropAfterForward => plan.drop_after = 1000,
            Fault::ResetBeforeForward => plan.reset_before = 1000,
            Fault::ResetAfterForward => plan.reset_after = 1000,
            Fault::TruncateResponse => plan.truncate = 1000,
            Fault::Duplicate => plan.duplicate = 1000,
        }
        plan
    }

    /// A hostile network: about half of all requests meet some fault, most of them the kind
    /// where the gate acts and the client does not learn it.
    pub fn hostile() -> FaultPlan {
        FaultPlan {
            drop_before: 60,
            drop_after: 120,
            reset_before: 40,
            reset_after: 80,
            truncate: 60,
            duplicate: 120,
            delay: 80,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(120),
        }
    }

    fn choose(&self, rng: &mut fastrand::Rng) -> Choice {
        // Every draw is made whatever the outcome, so the stream stays aligned across plans
        // and across enabling and disabling the proxy.
        let roll = rng.u32(0..1000);
        let delay_ms = rng.u64(0..=1000);
        let second = rng.bool();
        let span = self.max_delay.saturating_sub(self.min_delay);
        let delay = self.min_delay
            + Duration::from_micros(
                u64::try_from(span.as_micros())
                    .unwrap_or(u64::MAX)
                    .saturating_mul(delay_ms)
                    / 1000,
            );
        let table = [
            (self.drop_before, Fault::DropBeforeForward),
            (self.drop_after, Fault::DropAfterForward),
            (self.reset_before, Fault::ResetBeforeForward),
            (self.reset_after, Fault::ResetAfterForward),
            (self.truncate, Fault::TruncateResponse),
            (self.duplicate, Fault::Duplicate),
            (self.delay, Fault::Delay),
        ];
        let mut bound = 0u32;
        let mut fault = Fault::Pass;
        for (rate, candidate) in table {
            bound = bound.saturating_add(rate);
            if roll < bound {
                fault = candidate;
                break;
            }
        }
        Choice {
            fault,
            delay,
            second,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Choice {
    fault: Fault,
    delay: Duration,
    /// For a duplicate: return the gate's answer to the second delivery.
    second: bool,
}

/// One request the proxy saw and what it did to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultEvent {
    /// Accept order of the client connection, from 0.
    pub connection: u64,
    /// Order of the request on its connection, from 0.
    pub request: u64,
    pub method: String,
    pub path: String,
    pub fault: Fault,
    pub delay: Duration,
    /// For a duplicate: the client got the gate's answer to the second delivery.
    pub answered_second: bool,
    /// Time the gate took to answer (both deliveries of a duplicate).
    pub gate_time: Duration,
}

/// Counts of what the proxy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    pub connections: u64,
    pub requests: u64,
    /// Requests written to the gate, duplicates counted twice.
    pub forwarded: u64,
    /// Requests whose connection to the gate failed (not a fault the proxy chose).
    pub upstream_errors: u64,
    pub faults: BTreeMap<Fault, u64>,
}

impl FaultStats {
    pub fn count(&self, fault: Fault) -> u64 {
        self.faults.get(&fault).copied().unwrap_or(0)
    }
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    seed: u64,
    plan: Mutex<FaultPlan>,
    enabled: AtomicBool,
    next_connection: AtomicU64,
    requests: AtomicU64,
    forwarded: AtomicU64,
    upstream_errors: AtomicU64,
    events: Mutex<Vec<FaultEvent>>,
    /// Faults to apply, in order, to the next requests whose path starts with the prefix.
    forced: Mutex<Vec<(String, VecDeque<Fault>)>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Shared {
    fn forced_fault(&self, path: &str) -> Option<Fault> {
        lock(&self.forced)
            .iter_mut()
            .find(|(prefix, queue)| path.starts_with(prefix.as_str()) && !queue.is_empty())
            .and_then(|(_, queue)| queue.pop_front())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running proxy on 127.0.0.1; stops (and drops every connection) when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 and forwards to `upstream`. Faults start enabled.
    pub async fn start(upstream: SocketAddr, seed: u64, plan: FaultPlan) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            seed,
            plan: Mutex::new(plan),
            enabled: AtomicBool::new(true),
            next_connection: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            upstream_errors: AtomicU64::new(0),
            events: Mutex::new(Vec::new()),
            forced: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let index = accepting.next_connection.fetch_add(1, Ordering::SeqCst);
                let task = tokio::spawn(serve_connection(accepting.clone(), stream, index));
                let mut tasks = lock(&accepting.tasks);
                tasks.retain(|t| !t.is_finished());
                tasks.push(task.abort_handle());
            }
        });
        Ok(FaultProxy {
            addr,
            shared,
            accept,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, to give a client in place of the gate's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// With faults disabled every request passes (the RNG still advances).
    pub fn set_enabled(&self, enabled: bool) {
        self.shared.enabled.store(enabled, Ordering::SeqCst);
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        *lock(&self.shared.plan) = plan;
    }

    /// The next requests whose path starts with `path_prefix` get these faults, in order,
    /// whatever the RNG draws (while faults are enabled): a test can make sure the worst cases
    /// hit the requests that matter, whatever the seed.
    pub fn force(&self, path_prefix: &str, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.shared.forced).push((path_prefix.to_owned(), faults.into_iter().collect()));
    }

    pub fn events(&self) -> Vec<FaultEvent> {
        lock(&self.shared.events).clone()
    }

    pub fn stats(&self) -> FaultStats {
        let mut faults = BTreeMap::new();
        for event in lock(&self.shared.events).iter() {
            *faults.entry(event.fault).or_insert(0) += 1;
        }
        FaultStats {
            connections: self.shared.next_connection.load(Ordering::SeqCst),
            requests: self.shared.requests.load(Ordering::SeqCst),
            forwarded: self.shared.forwarded.load(Ordering::SeqCst),
            upstream_errors: self.shared.upstream_errors.load(Ordering::SeqCst),
            faults,
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in lock(&self.shared.tasks).drain(..) {
            task.abort();
        }
    }
}

/// The seed in `COUNTERSIGN_FAULT_SEED` (decimal or 0x-hex), else a fresh one; printed either
/// way so a failing run can be replayed.
pub fn seed_from_env() -> u64 {
    let given = std::env::var(SEED_ENV).ok().and_then(|s| parse_seed(&s));
    let seed = given.unwrap_or_else(|| fastrand::u64(..));
    println!(
        "fault seed: {seed} (replay with {SEED_ENV}={seed}){}",
        if given.is_some() {
            ", from the environment"
        } else {
            ""
        }
    );
    seed
}

fn parse_seed(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// SplitMix64 of seed and index: independent streams for neighbouring connection numbers.
fn stream_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn serve_connection(shared: Arc<Shared>, client: TcpStream, index: u64) {
    let _ = client.set_nodelay(true);
    let mut rng = fastrand::Rng::with_seed(stream_seed(shared.seed, index));
    let mut client = Peer::new(client);
    let mut upstream: Option<Peer> = None;
    let mut request_index = 0u64;
    while let Ok(Some(request)) = read_message(&mut client, Side::Request).await {
        shared.requests.fetch_add(1, Ordering::SeqCst);
        let choice = lock(&shared.plan).choose(&mut rng);
        let fault = if shared.enabled.load(Ordering::SeqCst) {
            shared.forced_fault(&request.path).unwrap_or(choice.fault)
        } else {
            Fault::Pass
        };
        lock(&shared.events).push(FaultEvent {
            connection: index,
            request: request_index,
            method: request.method.clone(),
            path: request.path.clone(),
            fault,
            delay: if fault == Fault::Delay {
                choice.delay
            } else {
                Duration::ZERO
            },
            answered_second: fault == Fault::Duplicate && choice.second,
            gate_time: Duration::ZERO,
        });
        let event = lock(&shared.events).len() - 1;
        let asked = Instant::now();
        request_index += 1;
        match fault {
            Fault::DropBeforeForward => return,
            Fault::ResetBeforeForward => return reset(client),
            Fault::Delay => tokio::time::sleep(choice.delay).await,
            _ => {}
        }
        let Ok(first) = exchange(&shared, &mut upstream, &request).await else {
            shared.upstream_errors.fetch_add(1, Ordering::SeqCst);
            return;
        };
        let response = match fault {
            Fault::Duplicate => match exchange(&shared, &mut upstream, &request).await {
                Ok(second) if choice.second => second,
                Ok(_) => first,
                Err(_) => {
                    shared.upstream_errors.fetch_add(1, Ordering::SeqCst);
                    first
                }
            },
            _ => first,
        };
        if let Some(e) = lock(&shared.events).get_mut(event) {
            e.gate_time = asked.elapsed();
        }
        match fault {
            Fault::DropAfterForward => return,
            Fault::ResetAfterForward => return reset(client),
            Fault::TruncateResponse => {
                let cut = (response.bytes.len() / 2).max(1);
                let _ = client.stream.write_all(&response.bytes[..cut]).await;
                let _ = client.stream.flush().await;
                let _ = client.stream.shutdown().await;
                return;
            }
            _ => {}
        }
        if client.stream.write_all(&response.bytes).await.is_err() {
            return;
        }
        if request.close || response.close {
            let _ = client.stream.shutdown().await;
            return;
        }
    }
}

fn reset(client: Peer) {
    // SO_LINGER 0: closing sends RST instead of FIN.
    let _ = client.stream.set_zero_linger();
    drop(client);
}

/// Sends one request to the gate on this client's upstream connection (opened on first use and
/// again after the gate closes it) and reads the answer.
async fn exchange(
    shared: &Shared,
    upstream: &mut Option<Peer>,
    request: &Message,
) -> io::Result<Message> {
    let peer = match upstream {
        Some(peer) => peer,
        None => {
            let stream = TcpStream::connect(shared.upstream).await?;
            let _ = stream.set_nodelay(true);
            upstream.insert(Peer::new(stream))
        }
    };
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let result = async {
        peer.stream.write_all(&request.bytes).await?;
        read_message(peer, Side::Response(&request.method))
            .await?
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "gate closed the connection")
            })
    }
    .await;
    match result {
        Ok(response) => {
            if response.close {
                *upstream = None;
            }
            Ok(response)
        }
        Err(e) => {
            *upstream = None;
            Err(e)
        }
    }
}

/// One end of a connection with the bytes read from it but not yet consumed.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    fn new(stream: TcpStream) -> Peer {
        Peer {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes; 0 at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn fill_to(&mut self, len: usize) -> io::Result<()> {
        while self.buf.len() < len {
            if self.fill().await? == 0 {
                return Err(eof());
            }
        }
        Ok(())
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed inside a message",
    )
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// One framed HTTP message, verbatim.
#[derive(Debug)]
struct Message {
    bytes: Vec<u8>,
    method: String,
    path: String,
    /// The sender closes the connection after this message.
    close: bool,
}

#[derive(Clone, Copy)]
enum Side<'a> {
    Request,
    /// A response to a request with this method.
    Response(&'a str),
}

enum Body {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

struct Head {
    len: usize,
    method: String,
    path: String,
    body: Body,
    close: bool,
}

/// Parses the head at the start of `buf`, or `None` if it is not complete yet.
fn parse_head(buf: &[u8], side: Side<'_>) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let (len, method, path, version, status, headers) = match side {
        Side::Request => {
            let mut req = httparse::Request::new(&mut headers);
            let httparse::Status::Complete(len) = req.parse(buf).map_err(invalid)? else {
                return Ok(None);
            };
            (
                len,
                req.method.unwrap_or_default().to_owned(),
                req.path.unwrap_or_default().to_owned(),
                req.version.unwrap_or(1),
                None,
                req.headers,
            )
        }
        Side::Response(method) => {
            let mut resp = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(len) = resp.parse(buf).map_err(invalid)? else {
                return Ok(None);
            };
            (
                len,
                method.to_owned(),
                String::new(),
                resp.version.unwrap_or(1),
                resp.code,
                resp.headers,
            )
        }
    };
    let mut length = None;
    let mut chunked = false;
    let mut close = version == 0;
    for header in headers.iter() {
        let value = String::from_utf8_lossy(header.value).to_ascii_lowercase();
        if header.name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|e| invalid(format!("content-length: {e}")))?,
            );
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.contains("chunked");
        } else if header.name.eq_ignore_ascii_case("connection") {
            if value.contains("close") {
                close = true;
            } else if value.contains("keep-alive") {
                close = false;
            }
        }
    }
    let body = match status {
        Some(code) if (100..200).contains(&code) || code == 204 || code == 304 => Body::Empty,
        _ if matches!(side, Side::Response(m) if m.eq_ignore_ascii_case("HEAD")) => Body::Empty,
        _ if chunked => Body::Chunked,
        _ => match length {
            Some(n) => Body::Length(n),
            None if status.is_some() => Body::UntilClose,
            None => Body::Empty,
        },
    };
    if matches!(body, Body::UntilClose) {
        close = true;
    }
    Ok(Some(Head {
        len,
        method,
        path,
        body,
        close,
    }))
}

/// Reads one whole message; `None` if the peer closed the connection between messages.
async fn read_message(peer: &mut Peer, side: Side<'_>) -> io::Result<Option<Message>> {
    let head = loop {
        if let Some(head) = parse_head(&peer.buf, side)? {
            break head;
        }
        if peer.buf.len() > MAX_HEAD {
            return Err(invalid("message head too large"));
        }
        if peer.fill().await? == 0 {
            return if peer.buf.is_empty() {
                Ok(None)
            } else {
                Err(eof())
            };
        }
    };
    let end = match head.body {
        Body::Empty => head.len,
        Body::Length(n) => {
            let end = head.len.checked_add(n).ok_or_else(|| invalid("length"))?;
            peer.fill_to(end).await?;
            end
        }
        Body::UntilClose => {
            while peer.fill().await? > 0 {}
            peer.buf.len()
        }
        Body::Chunked => chunked_end(peer, head.len).await?,
    };
    let bytes: Vec<u8> = peer.buf.drain(..end).collect();
    Ok(Some(Message {
        bytes,
        method: head.method,
        path: head.path,
        close: head.close,
    }))
}

/// The end of a chunked body that starts at `pos`, trailers included.
async fn chunked_end(peer: &mut Peer, mut pos: usize) -> io::Result<usize> {
    loop {
        let (consumed, size) = loop {
            match httparse::parse_chunk_size(&peer.buf[pos..]) {
                Ok(httparse::Status::Complete(found)) => break found,
                Ok(httparse::Status::Partial) => {
                    if peer.fill().await? == 0 {
                        return Err(eof());
                    }
                }
                Err(_) => return Err(invalid("bad chunk size")),
            }
        };
        pos += consumed;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let line_end = loop {
                    if let Some(i) = peer.buf[pos..].windows(2).position(|w| w == b"\r\n") {
                        break pos + i;
                    }
                    if peer.fill().await? == 0 {
                        return Err(eof());
                    }
                };
                let empty = line_end == pos;
                pos = line_end + 2;
                if empty {
                    return Ok(pos);
                }
            }
        }
        let size = usize::try_from(size).map_err(|_| invalid("chunk too large"))?;
        pos = pos
            .checked_add(size)
            .and_then(|p| p.checked_add(2))
            .ok_or_else(|| invalid("chunk too large"))?;
        peer.fill_to(pos).await?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::Router;
    use axum::body::{Body as AxumBody, Bytes};
    use axum::extract::State;
    use axum::routing::{get, post};

    /// A gate stand-in that counts what reaches it.
    struct Upstream {
        addr: SocketAddr,
        hits: Arc<AtomicU64>,
    }

    async fn upstream() -> Upstream {
        let hits = Arc::new(AtomicU64::new(0));
        let app = Router::new()
            .route(
                "/count",
                post(
                    |State(hits): State<Arc<AtomicU64>>, body: Bytes| async move {
                        let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
                        format!("hit {n} len {}", body.len())
                    },
                ),
            )
            .route(
                "/chunked",
                get(|| async {
                    let parts = (0..50).map(|i| {
                        Ok::<_, std::convert::Infallible>(Bytes::from(
                            format!("part {i};").repeat(100),
                        ))
                    });
                    AxumBody::from_stream(futures_stream(parts.collect()))
                }),
            )
            .with_state(hits.clone());
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Upstream { addr, hits }
    }

    /// A stream over ready items, so the body has no known length and is sent chunked.
    fn futures_stream<T: Send + Unpin + 'static>(
        items: Vec<T>,
    ) -> impl futures_core::Stream<Item = T> + Send + 'static {
        struct Ready<T>(std::collections::VecDeque<T>);
        impl<T: Unpin> futures_core::Stream for Ready<T> {
            type Item = T;
            fn poll_next(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<T>> {
                std::task::Poll::Ready(self.0.pop_front())
            }
        }
        Ready(items.into())
    }

    async fn proxy(up: &Upstream, plan: FaultPlan) -> FaultProxy {
        FaultProxy::start(up.addr, 42, plan).await.unwrap()
    }

    /// Sends one request on a fresh raw connection and returns what came back (or the error).
    async fn raw_post(addr: SocketAddr, body: &str) -> io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(
            format!(
                "POST /count HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await?;
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(1), s.read(&mut chunk))
                .await
                .unwrap_or(Ok(0))?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }

    #[tokio::test]
    async fn passes_keep_alive_requests_of_every_framing_intact() {
        let up = upstream().await;
        let p = proxy(&up, FaultPlan::none()).await;
        let client = reqwest::Client::new();
        for i in 0..20usize {
            let body = "x".repeat(i * 10_000);
            let text = client
                .post(format!("{}/count", p.url()))
                .body(body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(text, format!("hit {} len {}", i + 1, i * 10_000));
            let chunked = client
                .get(format!("{}/chunked", p.url()))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            // "part 0;" .. "part 9;" are 7 bytes, "part 10;" .. "part 49;" are 8.
            assert_eq!(chunked.len(), 100 * (10 * 7 + 40 * 8));
        }
        let stats = p.stats();
        assert_eq!(up.hits.load(Ordering::SeqCst), 20);
        assert_eq!(stats.requests, 40);
        assert_eq!(stats.forwarded, 40);
        assert_eq!(stats.count(Fault::Pass), 40);
        assert_eq!(stats.connections, 1, "keep-alive reuses one connection");
    }

    #[tokio::test]
    async fn duplicate_delivers_twice_and_answers_once() {
        let up = upstream().await;
        let p = proxy(&up, FaultPlan::always(Fault::Duplicate)).await;
        let client = reqwest::Client::new();
        let mut answers = Vec::new();
        for _ in 0..40 {
            answers.push(
                client
                    .post(format!("{}/count", p.url()))
                    .body("hi")
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(up.hits.load(Ordering::SeqCst), 80);
        assert_eq!(p.stats().forwarded, 80);
        // The gate's n-th hit answers the (n+1)/2-th request: odd for the first delivery.
        let events = p.events();
        for (answer, event) in answers.iter().zip(&events) {
            let n: u64 = answer.split(' ').nth(1).unwrap().parse().unwrap();
            assert_eq!(
                n.is_multiple_of(2),
                event.answered_second,
                "{answer} {event:?}"
            );
        }
        let seconds = events.iter().filter(|e| e.answered_second).count();
        assert!(
            0 < seconds && seconds < 40,
            "seed 42 answers with both deliveries"
        );
    }

    #[tokio::test]
    async fn drop_after_forwarding_applies_without_an_answer() {
        let up = upstream().await;
        let p = proxy(&up, FaultPlan::always(Fault::DropAfterForward)).await;
        let answer = raw_post(p.addr(), "hi").await.unwrap();
        assert!(
            answer.is_empty(),
            "got {:?}",
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(up.hits.load(Ordering::SeqCst), 1);
        let err = reqwest::Client::new()
            .post(format!("{}/count", p.url()))
            .body("hi")
            .send()
            .await;
        assert!(err.is_err());
        assert_eq!(up.hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn drop_before_forwarding_never_reaches_the_gate() {
        let up = upstream().await;
        let p = proxy(&up, FaultPlan::always(Fault::DropBeforeForward)).await;
        assert!(raw_post(p.addr(), "hi").await.unwrap().is_empty());
        assert_eq!(up.hits.load(Ordering::SeqCst), 0);
        assert_eq!(p.stats().forwarded, 0);
    }

    #[tokio::test]
    async fn resets_send_rst_before_or_after_forwarding() {
        let up = upstream().await;
        let p = proxy(&up, FaultPlan::always(Fault::ResetBeforeForward)).await;
        let err = raw_post(p.addr(), "hi").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        assert_eq!(up.hits.load(Ordering::SeqCst), 0);

        p.set_plan(FaultPlan::always(Fault::ResetAfterForward));
        let err = raw_post(p.addr(), "hi").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn truncate_cuts_the_answer_after_the_gate_acted() {
        let up = upstream().await;
        let p = proxy(&up, FaultPlan::always(Fault::TruncateResponse)).await;
        let answer = raw_post(p.addr(), "hi").await.unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(!text.ends_with("hit 1 len 2"), "{text}");
        assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn delay_holds_the_request() {
        let up = upstream().await;
        let mut plan = FaultPlan::always(Fault::Delay);
        plan.min_delay = Duration::from_millis(150);
        plan.max_delay = Duration::from_millis(150);
        let p = proxy(&up, plan).await;
        let started = Instant::now();
        let answer = raw_post(p.addr(), "hi").await.unwrap();
        assert!(String::from_utf8_lossy(&answer).ends_with("hit 1 len 2"));
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(p.events()[0].delay, Duration::from_millis(150));
    }

    #[tokio::test]
    async fn disabled_proxy_passes_everything() {
        let up = upstream().await;
        let p = proxy(&up, FaultPlan::always(Fault::DropBeforeForward)).await;
        p.set_enabled(false);
        let answer = raw_post(p.addr(), "hi").await.unwrap();
        assert!(String::from_utf8_lossy(&answer).ends_with("hit 1 len 2"));
        p.set_enabled(true);
        assert!(raw_post(p.addr(), "hi").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn forced_faults_hit_matching_paths_first() {
        let up = upstream().await;
        let p = proxy(&up, FaultPlan::none()).await;
        p.force("/count", [Fault::DropAfterForward, Fault::Duplicate]);
        p.force("/other", [Fault::DropBeforeForward]);
        assert!(raw_post(p.addr(), "hi").await.unwrap().is_empty());
        let answer = raw_post(p.addr(), "hi").await.unwrap();
        assert!(String::from_utf8_lossy(&answer).ends_with("len 2"));
        let answer = raw_post(p.addr(), "hi").await.unwrap();
        assert!(String::from_utf8_lossy(&answer).ends_with("hit 4 len 2"));
        let faults: Vec<Fault> = p.events().iter().map(|e| e.fault).collect();
        assert_eq!(
            faults,
            [Fault::DropAfterForward, Fault::Duplicate, Fault::Pass]
        );
        assert_eq!(up.hits.load(Ordering::SeqCst), 4);
    }

    /// What a sequential client meets, by (connection, request, fault).
    async fn run_sequence(seed: u64) -> (Vec<(u64, u64, Fault)>, u64) {
        let up = upstream().await;
        let p = FaultProxy::start(up.addr, seed, FaultPlan::hostile())
            .await
            .unwrap();
        let client = reqwest::Client::new();
        for _ in 0..60 {
            if let Ok(response) = client
                .post(format!("{}/count", p.url()))
                .body("hi")
                .send()
                .await
            {
                let _ = response.text().await;
            }
            // Give the proxy's task time to finish with the connection before the next one.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let events = p
            .events()
            .into_iter()
            .map(|e| (e.connection, e.request, e.fault))
            .collect();
        (events, up.hits.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn the_same_seed_replays_the_same_faults() {
        let (a, hits_a) = run_sequence(7).await;
        let (b, hits_b) = run_sequence(7).await;
        let (c, _) = run_sequence(8).await;
        assert_eq!(a, b);
        assert_eq!(hits_a, hits_b);
        assert_ne!(a, c);
        let kinds: std::collections::BTreeSet<Fault> = a.iter().map(|e| e.2).collect();
        assert!(kinds.len() >= 5, "a hostile plan mixes faults: {kinds:?}");
    }

    #[test]
    fn hostile_plan_rates_match_the_draws() {
        let plan = FaultPlan::hostile();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut counts: BTreeMap<Fault, u32> = BTreeMap::new();
        for _ in 0..100_000 {
            *counts.entry(plan.choose(&mut rng).fault).or_insert(0) += 1;
        }
        let near = |fault, per_mille: u32| {
            let got = counts.get(&fault).copied().unwrap_or(0);
            let want = per_mille * 100;
            assert!(got.abs_diff(want) < 1000, "{fault:?}: {got} vs {want}");
        };
        near(Fault::DropAfterForward, plan.drop_after);
        near(Fault::Duplicate, plan.duplicate);
        near(Fault::ResetBeforeForward, plan.reset_before);
        near(Fault::Pass, 1000 - 560);
    }

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("12345"), Some(12345));
        assert_eq!(parse_seed(" 0xff\n"), Some(255));
        assert_eq!(parse_seed("seven"), None);
        assert_ne!(stream_seed(1, 0), stream_seed(1, 1));
        assert_ne!(stream_seed(1, 0), stream_seed(2, 0));
    }
}
