//! The HTTP listener of `--metrics-listen` (hyper, HTTP/1): Prometheus metrics at
//! `/metrics` (`export`), the live page at `/` and its event stream at `/events`
//! (`page`). Off unless configured; it reads the node and never changes it.

mod export;
mod page;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Node;
use crate::config::metrics_limits::{HTTP_HEADER_TIMEOUT_MS, MAX_HTTP_CONNECTIONS};
use crate::metrics::METRICS;

type Body = BoxBody<Bytes, Infallible>;

/// Binds the listener, so a node that cannot serve its metrics does not start.
pub(super) async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))
}

/// Serves `listener` for as long as the node runs.
pub(super) fn start(node: Arc<Node>, listener: TcpListener) {
    tokio::spawn(count_leader_changes(node.clone()));
    let served = Arc::new(Served {
        registry: export::registry(node.clone()),
        feed: page::Feed::start(node),
    });
    tokio::spawn(accept_loop(served, listener));
}

/// What every HTTP connection shares.
struct Served {
    registry: Registry,
    feed: Arc<page::Feed>,
}

async fn accept_loop(served: Arc<Served>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(%err, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let served = served.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let served = served.clone();
                async move { Ok::<_, Infallible>(respond(&served, &req)) }
            });
            // A client that goes away mid-request is no concern of the node's.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_millis(HTTP_HEADER_TIMEOUT_MS))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn respond(served: &Served, req: &Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = full(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET and HEAD are served here\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match req.uri().path() {
        "/metrics" => match export::scrape(&served.registry) {
            Ok(text) => full(StatusCode::OK, export::CONTENT_TYPE, text),
            Err(_) => full(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "encoding the metrics failed\n",
            ),
        },
        "/" => full(StatusCode::OK, "text/html; charset=utf-8", page::HTML),
        "/events" => {
            let mut response = Response::new(served.feed.stream().boxed());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        _ => full(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /metrics, / or /events\n",
        ),
    }
}

/// Counts every new leader this node comes to know of, the first one included.
async fn count_leader_changes(node: Arc<Node>) {
    let mut watch = node.group.watch_leader();
    let mut last = None;
    loop {
        let leader = watch.vote().1;
        if leader.is_some() && leader != last {
            METRICS.leader_changes.fetch_add(1, Ordering::Relaxed);
            last = leader;
        }
        if watch.changed().await.is_err() {
            return;
        }
    }
}
