//! The shim-facing stream: Hello, then Reports; acks and site maps back.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use straddle_proto::telemetry_server::Telemetry;
use straddle_proto::{controller_message, shim_message, Ack, ControllerMessage, ShimMessage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{bearer, Auth};
use super::convert;
use crate::observe::Registry;

/// A stream that has not said hello by then is closed.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TelemetryService {
    pub registry: Arc<Registry>,
    pub auth: Auth,
}

type Outbound = Pin<Box<dyn Stream<Item = Result<ControllerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Telemetry for TelemetryService {
    type AttachStream = Outbound;

    async fn attach(&self, req: Request<Streaming<ShimMessage>>) -> Result<Response<Outbound>, Status> {
        let peer = req.remote_addr();
        let token = bearer(req.metadata()).map(str::to_string);
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let registry = self.registry.clone();
        let auth = self.auth.clone();
        tokio::spawn(async move {
            let refuse = |tx: mpsc::Sender<Result<ControllerMessage, Status>>, st: Status| async move {
                tracing::warn!(?peer, code = ?st.code(), "refused shim stream: {}", st.message());
                let _ = tx.send(Err(st)).await;
            };
            let first = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
                Ok(m) => m,
                Err(_) => {
                    return refuse(tx, Status::deadline_exceeded(format!("no hello within {} s", HELLO_TIMEOUT.as_secs()))).await;
                }
            };
            let hello = match first {
                Ok(Some(ShimMessage { body: Some(shim_message::Body::Hello(h)) })) => convert::hello(&h),
                Ok(Some(_)) => {
                    return refuse(tx, Status::failed_precondition("the stream must begin with hello (which job, which rank)")).await;
                }
                Ok(None) => return,
                Err(e) if !is_decode_error(&e) => return,
                Err(e) => return refuse(tx, Status::invalid_argument(format!("corrupt message: {}", e.message()))).await,
            };
            // Nothing is created for a caller that cannot show the job's credential.
            if !auth.may_use_job(&hello.job, token.as_deref()) {
                let st = Status::unauthenticated("a rank's stream needs its job's credential (STRADDLE_JOB_TOKEN) or an operator token");
                return refuse(tx, st).await;
            }
            let job = match registry.attach(&hello) {
                Ok(j) => j,
                Err(e) => return refuse(tx, e.into()).await,
            };
            tracing::info!(job = %hello.job, rank = hello.rank, node = %hello.node, "rank attached");
            // The job's site map: the current one at once, then every new epoch.
            let mut maps = registry.site_maps.subscribe(&hello.job);
            loop {
                let msg = tokio::select! {
                    m = inbound.message() => m,
                    changed = maps.changed() => {
                        if changed.is_ok() {
                            let map = maps.borrow_and_update().clone();
                            if let Some(map) = map {
                                let push = ControllerMessage { body: Some(controller_message::Body::SiteMap(convert::site_map(&map))) };
                                if tx.send(Ok(push)).await.is_err() {
                                    break;
                                }
                            }
                        }
                        continue;
                    }
                };
                match msg {
                    Ok(Some(ShimMessage { body: Some(shim_message::Body::Report(r)) })) => {
                        let seq = r.seq;
                        let applied = convert::report(r)
                            .map_err(Status::from)
                            .and_then(|r| registry.apply(&job, hello.rank, &r).map_err(Status::from));
                        if let Err(st) = applied {
                            refuse(tx.clone(), st).await;
                            break;
                        }
                        let ack = ControllerMessage { body: Some(controller_message::Body::Ack(Ack { seq })) };
                        if tx.send(Ok(ack)).await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(_)) => {
                        refuse(tx.clone(), Status::invalid_argument("expected a report after hello")).await;
                        break;
                    }
                    Ok(None) => break,
                    Err(e) if is_decode_error(&e) => {
                        refuse(tx.clone(), Status::invalid_argument(format!("corrupt message: {}", e.message()))).await;
                        break;
                    }
                    Err(e) => {
                        tracing::info!(job = %hello.job, rank = hello.rank, "stream ended: {}", e.message());
                        break;
                    }
                }
            }
            registry.detach(&job, hello.rank);
            tracing::info!(job = %hello.job, rank = hello.rank, "rank detached");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// A message that arrived but could not be decoded (as opposed to a peer that went away).
fn is_decode_error(s: &Status) -> bool {
    s.code() == tonic::Code::Internal && s.message().contains("decode")
}
