//! Bad input from shims and operators is refused with a clear status and logged; the
//! controller keeps serving and nothing refused is applied.

use std::time::Duration;

use prost::Message;
use straddle_proto::telemetry_client::TelemetryClient;
use straddle_proto::{controller_message, shim_message, ControllerMessage, Hello, PeerTraffic, Report, ShimMessage};
use straddle_tests::controller::{runtime, traffic, ControllerProcess};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

fn hello(job: &str, rank: u32, world: u32) -> ShimMessage {
    ShimMessage {
        body: Some(shim_message::Body::Hello(Hello {
            job: job.into(),
            rank,
            world_size: world,
            node: format!("node{rank}"),
            incarnation: 1,
            ..Default::default()
        })),
    }
}

fn report(seq: u64, peers: Vec<PeerTraffic>) -> ShimMessage {
    ShimMessage { body: Some(shim_message::Body::Report(Report { seq, peers, ..Default::default() })) }
}

fn peer(dest: u32, bytes: u64, msgs: u64) -> PeerTraffic {
    PeerTraffic { dest, p2p_bytes: bytes, p2p_messages: msgs, ..Default::default() }
}

/// Sends `msgs` on one Attach stream, closes it, and returns what came back until the
/// controller closed its side: acks, or the error.
fn attach(url: &str, msgs: Vec<ShimMessage>) -> Result<Vec<u64>, Status> {
    runtime().block_on(async {
        let mut c = TelemetryClient::connect(url.to_string()).await.map_err(|e| Status::unavailable(e.to_string()))?;
        let mut inbound = c.attach(tokio_stream::iter(msgs)).await?.into_inner();
        let mut acks = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), inbound.message()).await {
                Ok(Ok(Some(ControllerMessage { body: Some(controller_message::Body::Ack(a)) }))) => acks.push(a.seq),
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => break,
                Ok(Err(s)) => return Err(s),
                Err(_) => return Err(Status::deadline_exceeded("no answer")),
            }
        }
        Ok(acks)
    })
}

/// Sends raw bytes as gRPC messages on the Attach method: what a corrupt shim would send.
#[derive(Default, Clone)]
struct RawCodec;
struct RawEncoder;
struct AnswerDecoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for AnswerDecoder {
    type Item = ControllerMessage;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ControllerMessage>, Status> {
        ControllerMessage::decode(src).map(Some).map_err(|e| Status::internal(e.to_string()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ControllerMessage;
    type Encoder = RawEncoder;
    type Decoder = AnswerDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> AnswerDecoder {
        AnswerDecoder
    }
}

fn attach_raw(url: &str, frames: Vec<Vec<u8>>) -> Result<(), Status> {
    runtime().block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(url.to_string())
            .unwrap()
            .connect()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static("/straddle.v1.Telemetry/Attach");
        let mut inbound = grpc.streaming(tonic::Request::new(tokio_stream::iter(frames)), path, RawCodec).await?.into_inner();
        match tokio::time::timeout(Duration::from_secs(5), inbound.message()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(s)) => Err(s),
            Err(_) => Err(Status::deadline_exceeded("no answer")),
        }
    })
}

#[test]
fn bad_input_is_refused_and_the_controller_keeps_serving() {
    let ctl = ControllerProcess::start();
    let url = ctl.url();

    // A valid job to compare against.
    assert_eq!(attach(&url, vec![hello("good", 0, 4), report(1, vec![peer(1, 100, 1)])]).unwrap(), vec![1]);

    // A report with no hello first: the controller cannot know the job.
    let e = attach(&url, vec![report(1, vec![peer(1, 5, 1)])]).unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("hello"), "{e:?}");

    // A rank outside the job, a different world size for a known job, an empty job.
    let e = attach(&url, vec![hello("good", 7, 4)]).unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert!(e.message().contains("hello.rank 7"), "{e:?}");
    let e = attach(&url, vec![hello("good", 1, 8)]).unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("hello.world_size 8"), "{e:?}");
    let e = attach(&url, vec![hello("", 0, 4)]).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("hello.job"), "{e:?}");

    // A destination outside the job: the whole report is refused, nothing applied.
    let e = attach(&url, vec![hello("good", 2, 4), report(1, vec![peer(3, 50, 1), peer(9, 50, 1)])]).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("report.peers[1].dest 9"), "{e:?}");

    // Corrupt bytes where a message should be.
    let e = attach_raw(&url, vec![vec![0xff, 0xff, 0xff, 0xff, 0x0f, 0x12]]).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("corrupt message"), "{e:?}");
    // A valid hello, then garbage.
    let e = attach_raw(&url, vec![hello("good", 3, 4).encode_to_vec(), vec![0x0a, 0xff, 0x01]]).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // An operator asks for a job nobody reported.
    let e = traffic(&url, "no-such-job").unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(e.message().contains("no-such-job"), "{e:?}");

    // Still serving, and nothing refused was applied.
    assert_eq!(attach(&url, vec![hello("good", 1, 4), report(1, vec![peer(2, 30, 3)])]).unwrap(), vec![1]);
    let m = traffic(&url, "good").unwrap();
    let (bytes, _) = straddle_tests::controller::dense(&m);
    let total: f64 = bytes.iter().sum();
    assert_eq!(total, 130.0, "{bytes:?}");
    assert_eq!(bytes[3], 0.0, "rank 2's refused report left nothing");

    let log = ctl.log();
    for needle in ["must begin with hello", "hello.rank 7", "report.peers[1].dest 9", "corrupt message"] {
        assert!(log.contains(needle), "the controller logged {needle:?}:\n{log}");
    }
}
