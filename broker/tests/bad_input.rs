//! Bad input over raw sockets against the real binary: the broker answers with Kafka's
//! error or closes the connection, keeps serving others, and stores nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, ProduceRequest, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the broker on port 0 and learns its port from the "ready" log line, so tests
/// running in parallel never race for a port.
fn start(config: &str) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&cfg)
        .env("SLUICE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut tx = Some(tx);
        // Keep draining stderr so the broker never blocks on a full pipe.
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("ready to serve") {
                if let Some(tx) = tx.take() {
                    let port = line
                        .split("listen=127.0.0.1:")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                        .and_then(|p| p.parse::<u16>().ok());
                    let _ = tx.send(port);
                }
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("broker became ready")
        .expect("port in the ready line");
    Broker {
        child,
        port,
        _dir: dir,
    }
}
fn connect(b: &Broker) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn request(key: ApiKey, version: i16, correlation_id: i32, body: &impl Encodable) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("raw")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

/// Sends one request and decodes its answer.
fn call<R: kafka_protocol::protocol::Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    body: &impl Encodable,
) -> R {
    s.write_all(&request(key, version, 7, body)).unwrap();
    let frame = read_frame(s).expect("answered");
    // The correlation id, then for a flexible header its (empty) tagged fields.
    let header = if key.response_header_version(version) >= 1 {
        5
    } else {
        4
    };
    let mut body = bytes::Bytes::copy_from_slice(&frame[header..]);
    R::decode(&mut body, version).unwrap()
}

/// Creates `topic` by naming it in a Metadata request that allows auto-creation (its
/// partition is hosted a moment later: callers retry while it is not).
fn auto_create(s: &mut TcpStream, topic: &TopicName) {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic.clone()))
        ]))
        .with_allow_auto_topic_creation(true);
    s.write_all(&request(ApiKey::Metadata, 9, 1, &req)).unwrap();
    read_frame(s).expect("metadata");
}

/// Whether the broker closed the connection: end of stream or a reset, not a read
/// timeout (a broker that kept the connection and said nothing is not "closed").
fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(n) => n == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn api_versions_ok(b: &Broker) {
    let mut s = connect(b);
    s.write_all(&request(
        ApiKey::ApiVersions,
        3,
        1,
        &ApiVersionsRequest::default(),
    ))
    .unwrap();
    let r = read_frame(&mut s).expect("ApiVersions answered");
    assert_eq!(&r[..4], &1i32.to_be_bytes());
    assert_eq!(&r[4..6], &0i16.to_be_bytes(), "no error");
}

#[test]
fn bad_frames_close_only_their_connection() {
    let b = start("\"socket.request.max.bytes\" = 1048576\n");
    // A length prefix far beyond the limit: closed without allocating it.
    let mut s = connect(&b);
    s.write_all(&0x7fff_ffffi32.to_be_bytes()).unwrap();
    assert!(closed(&mut s));
    // Negative length.
    let mut s = connect(&b);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(closed(&mut s));
    // Garbage that is a complete frame of an unknown api key.
    let mut s = connect(&b);
    s.write_all(&[0, 0, 0, 8, 0x03, 0xe7, 0, 0, 0, 0, 0, 1])
        .unwrap();
    assert!(closed(&mut s));
    // A truncated body of a known api.
    let mut s = connect(&b);
    s.write_all(&[0, 0, 0, 9, 0, 3, 0, 12, 0, 0, 0, 1, 0xff])
        .unwrap();
    assert!(closed(&mut s));
    // A half frame then EOF.
    let mut s = connect(&b);
    s.write_all(&[0, 0, 0, 100, 1, 2, 3]).unwrap();
    drop(s);
    api_versions_ok(&b);
}

#[test]
fn api_versions_above_supported_gets_v0_fallback() {
    let b = start("");
    // Rewrite as version 99 by hand: the encoder refuses unknown versions.
    let mut frame = request(ApiKey::ApiVersions, 0, 42, &ApiVersionsRequest::default());
    frame[6..8].copy_from_slice(&99i16.to_be_bytes());
    let mut s = connect(&b);
    s.write_all(&frame).unwrap();
    let r = read_frame(&mut s).expect("fallback answer");
    assert_eq!(&r[..4], &42i32.to_be_bytes());
    assert_eq!(i16::from_be_bytes([r[4], r[5]]), 35, "UNSUPPORTED_VERSION");
    let n = i32::from_be_bytes([r[6], r[7], r[8], r[9]]);
    assert!(n > 20, "lists the supported apis");
}

#[test]
fn unknown_topic_without_auto_create() {
    let b = start("\"auto.create.topics.enable\" = false\n");
    let mut s = connect(&b);
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("nope"))))]))
        .with_allow_auto_topic_creation(true);
    s.write_all(&request(ApiKey::Metadata, 9, 3, &req)).unwrap();
    let r = read_frame(&mut s).expect("metadata");
    use kafka_protocol::protocol::Decodable;
    // v9 is flexible: correlation id, then an empty tag buffer.
    let mut body = bytes::Bytes::copy_from_slice(&r[5..]);
    let resp = kafka_protocol::messages::MetadataResponse::decode(&mut body, 9).unwrap();
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(resp.topics[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    // and nothing was created
    let mut s = connect(&b);
    s.write_all(&request(
        ApiKey::Metadata,
        9,
        4,
        &MetadataRequest::default().with_topics(None),
    ))
    .unwrap();
    let r = read_frame(&mut s).unwrap();
    let mut body = bytes::Bytes::copy_from_slice(&r[5..]);
    let resp = kafka_protocol::messages::MetadataResponse::decode(&mut body, 9).unwrap();
    assert!(resp.topics.is_empty());
}

#[test]
fn failed_acks_zero_produce_closes_its_connection() {
    let b = start("\"auto.create.topics.enable\" = false\n");
    // Nothing fails: no answer, and the connection stays open.
    let mut s = connect(&b);
    let nothing = ProduceRequest::default().with_acks(0).with_timeout_ms(1000);
    s.write_all(&request(ApiKey::Produce, 9, 1, &nothing))
        .unwrap();
    s.write_all(&request(
        ApiKey::ApiVersions,
        3,
        2,
        &ApiVersionsRequest::default(),
    ))
    .unwrap();
    let r = read_frame(&mut s).expect("the connection is still open");
    assert_eq!(&r[..4], &2i32.to_be_bytes(), "only ApiVersions is answered");
    // A partition that does not exist: Kafka closes the connection, the only way an
    // acks=0 producer learns to refresh its metadata.
    let failing = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("nope")))
            .with_partition_data(
                vec![PartitionProduceData::default().with_index(0)],
            )]);
    s.write_all(&request(ApiKey::Produce, 9, 3, &failing))
        .unwrap();
    // Were it still open, this would be answered.
    let _ = s.write_all(&request(
        ApiKey::ApiVersions,
        3,
        4,
        &ApiVersionsRequest::default(),
    ));
    assert!(read_frame(&mut s).is_none(), "the connection was closed");
    api_versions_ok(&b);
}

/// Produce batches that Kafka refuses as INVALID_RECORD, one request each, then a good
/// one: the good one lands at offset 0, so none of the others stored anything.
#[test]
fn produce_of_what_kafka_validates_away_is_an_invalid_record() {
    use kafka_protocol::protocol::Decodable;
    use sluice_storage::batch::{build_batch, reseal};
    let b = start("");
    let topic = TopicName(StrBytes::from_static_str("raw-invalid"));
    let mut s = connect(&b);
    auto_create(&mut s, &topic);
    // A 61-byte header of a magic-1 batch, lengths right.
    let mut magic1 = vec![0u8; 61];
    magic1[8..12].copy_from_slice(&49i32.to_be_bytes());
    magic1[16] = 1;
    let good = build_batch(0, 1_000, &[b"hello"], (-1, -1, -1)).to_vec();
    // A record with a negative header count (its last byte), under a good CRC.
    let mut bad_record = good.clone();
    *bad_record.last_mut().unwrap() = 1;
    reseal(&mut bad_record);
    // A compressed (gzip) batch whose records are not gzip.
    let mut bad_gzip = good.clone();
    bad_gzip[22] |= 1;
    reseal(&mut bad_gzip);
    let two_batches = [good.clone(), good.clone()].concat();
    let no_sequence = build_batch(0, 1_000, &[b"hello"], (7, 0, -1)).to_vec();
    let mut corr = 1;
    let mut produce = |records: Vec<u8>| {
        let produce = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic.clone())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bytes::Bytes::from(records)))])]);
        // Until the new partition is hosted (UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER).
        for _ in 0..100 {
            corr += 1;
            s.write_all(&request(ApiKey::Produce, 9, corr, &produce))
                .unwrap();
            let r = read_frame(&mut s).expect("produce answered");
            let mut body = bytes::Bytes::copy_from_slice(&r[5..]);
            let resp = kafka_protocol::messages::ProduceResponse::decode(&mut body, 9).unwrap();
            let p = &resp.responses[0].partition_responses[0];
            if p.error_code != 3 && p.error_code != 6 {
                return (p.error_code, p.base_offset);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the partition was never hosted");
    };
    for (what, records) in [
        ("a magic-1 batch", magic1),
        ("no batch", Vec::new()),
        ("a malformed record", bad_record),
        ("records that do not decompress", bad_gzip),
        ("two batches", two_batches),
        ("a producer id without a sequence", no_sequence),
    ] {
        assert_eq!(produce(records).0, 87, "{what}: INVALID_RECORD, as Kafka");
    }
    assert_eq!(produce(good), (0, 0), "nothing refused was stored");
}

/// ListOffsets as Kafka's `ReplicaManager.fetchOffset` screens it: a special timestamp
/// older than the version that brought it is UNSUPPORTED_VERSION, and a partition named
/// twice is INVALID_REQUEST each time.
#[test]
fn list_offsets_refuses_what_its_version_lacks_and_duplicates() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse};
    use kafka_protocol::protocol::Decodable;
    let b = start("");
    let topic = TopicName(StrBytes::from_static_str("raw-list-offsets"));
    let mut s = connect(&b);
    auto_create(&mut s, &topic);
    let mut corr = 1;
    let mut list = |version: i16, timestamps: &[i64]| -> Vec<i16> {
        let partitions = timestamps
            .iter()
            .map(|ts| ListOffsetsPartition::default().with_timestamp(*ts))
            .collect();
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic.clone())
                .with_partitions(partitions)]);
        // Until the new partition is hosted (UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER).
        for _ in 0..100 {
            corr += 1;
            s.write_all(&request(ApiKey::ListOffsets, version, corr, &req))
                .unwrap();
            let r = read_frame(&mut s).expect("list offsets answered");
            let header = if version >= 6 { 5 } else { 4 };
            let mut body = bytes::Bytes::copy_from_slice(&r[header..]);
            let resp = ListOffsetsResponse::decode(&mut body, version).unwrap();
            let codes: Vec<i16> = resp.topics[0]
                .partitions
                .iter()
                .map(|p| p.error_code)
                .collect();
            if !codes.iter().any(|c| *c == 3 || *c == 6) {
                return codes;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the partition was never hosted");
    };
    assert_eq!(list(7, &[-3]), [0]);
    assert_eq!(list(6, &[-3]), [35], "max timestamp needs v7");
    assert_eq!(list(7, &[-4]), [35], "earliest local needs v8");
    assert_eq!(list(8, &[-4]), [0]);
    assert_eq!(list(8, &[-5]), [35], "latest tiered needs v9");
    assert_eq!(list(8, &[-7]), [35]);
    assert_eq!(list(8, &[-1, -2]), [42, 42], "partition 0 named twice");
}

/// A topic the metadata does not know does not end a long poll for the others, as Kafka
/// sets such partitions aside before it reads: the client's other partitions still wait
/// for data instead of the client re-fetching in a tight loop.
#[test]
fn an_unknown_topic_does_not_end_a_long_poll() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
    use kafka_protocol::protocol::Decodable;
    let b = start("");
    let known = TopicName(StrBytes::from_static_str("raw-long-poll"));
    let unknown = TopicName(StrBytes::from_static_str("raw-no-such-topic"));
    let mut s = connect(&b);
    auto_create(&mut s, &known);
    let topic = |name: &TopicName| {
        FetchTopic::default()
            .with_topic(name.clone())
            .with_partitions(vec![FetchPartition::default()
                .with_partition_max_bytes(1 << 20)
                .with_current_leader_epoch(-1)])
    };
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(1_500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![topic(&known), topic(&unknown)]);
    let mut corr = 1;
    // Until the new partition is hosted.
    for _ in 0..100 {
        corr += 1;
        let asked = std::time::Instant::now();
        s.write_all(&request(ApiKey::Fetch, 12, corr, &req))
            .unwrap();
        let r = read_frame(&mut s).expect("fetch answered");
        let waited = asked.elapsed();
        let mut body = bytes::Bytes::copy_from_slice(&r[5..]);
        let resp = FetchResponse::decode(&mut body, 12).unwrap();
        let code = |i: usize| resp.responses[i].partitions[0].error_code;
        if code(0) != 0 {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(code(1), 3, "UNKNOWN_TOPIC_OR_PARTITION");
        assert!(
            waited >= Duration::from_millis(1_200),
            "answered after {waited:?}: the unknown topic ended the wait"
        );
        return;
    }
    panic!("the partition was never hosted");
}

/// A fetch out of range is answered with the error and unknown (-1) offsets, as
/// Kafka's `createLogReadResult` answers every read error.
#[test]
fn out_of_range_fetch_leaves_the_offsets_unknown() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
    use kafka_protocol::protocol::Decodable;
    let b = start("");
    let topic = TopicName(StrBytes::from_static_str("raw-out-of-range"));
    let mut s = connect(&b);
    auto_create(&mut s, &topic);
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic)
            .with_partitions(vec![FetchPartition::default()
                .with_fetch_offset(100)
                .with_partition_max_bytes(1 << 20)
                .with_current_leader_epoch(-1)])]);
    for corr in 2..102 {
        s.write_all(&request(ApiKey::Fetch, 12, corr, &req))
            .unwrap();
        let r = read_frame(&mut s).expect("fetch answered");
        let mut body = bytes::Bytes::copy_from_slice(&r[5..]);
        let resp = FetchResponse::decode(&mut body, 12).unwrap();
        let p = &resp.responses[0].partitions[0];
        if p.error_code == 3 || p.error_code == 6 {
            std::thread::sleep(Duration::from_millis(100));
            continue; // not hosted yet
        }
        assert_eq!(p.error_code, 1, "OFFSET_OUT_OF_RANGE");
        assert_eq!(
            (p.high_watermark, p.last_stable_offset, p.log_start_offset),
            (-1, -1, -1)
        );
        return;
    }
    panic!("the partition was never hosted");
}

/// DescribeProducers screens names as Kafka's `KafkaApis.handleDescribeProducersRequest`
/// does: an illegal name is INVALID_TOPIC_EXCEPTION, a topic or partition the metadata
/// does not have UNKNOWN_TOPIC_OR_PARTITION, each partition answered on its own.
#[test]
fn describe_producers_of_what_is_not_there() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
    let b = start("\"auto.create.topics.enable\" = true\n");
    let topic = TopicName(StrBytes::from_static_str("raw-producers"));
    let mut s = connect(&b);
    auto_create(&mut s, &topic);
    let ask = |name: &'static str, partitions: Vec<i32>| {
        TopicRequest::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_partition_indexes(partitions)
    };
    let req = DescribeProducersRequest::default().with_topics(vec![
        ask("raw-producers", vec![0, 5]),
        ask("no-such-topic", vec![0]),
        ask("bad name!", vec![0, 1]),
    ]);
    for _ in 0..100 {
        let resp: DescribeProducersResponse = call(&mut s, ApiKey::DescribeProducers, 0, &req);
        let codes: Vec<Vec<(i32, i16)>> = resp
            .topics
            .iter()
            .map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect()
            })
            .collect();
        if codes[0][0].1 == 6 {
            std::thread::sleep(Duration::from_millis(100));
            continue; // not hosted yet
        }
        assert_eq!(
            codes,
            vec![vec![(0, 0), (5, 3)], vec![(0, 3)], vec![(0, 17), (1, 17)]]
        );
        assert!(resp.topics[0].partitions[0].active_producers.is_empty());
        return;
    }
    panic!("the partition was never hosted");
}

/// A name repeated in one admin request is INVALID_REQUEST and acted on by none of its
/// occurrences, as Kafka's controller and `ConfigAdminManager.preprocess` screen them;
/// so are a config named twice in one resource, a null config value, and a DeleteTopics
/// entry naming a topic by both name and id, or by neither.
#[test]
fn repeated_names_in_admin_requests_are_invalid() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource as IncResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        alter_configs_request, AlterConfigsRequest, AlterConfigsResponse, CreatePartitionsRequest,
        CreatePartitionsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    const INVALID_REQUEST: i16 = 42;
    let b = start("\"auto.create.topics.enable\" = true\n");
    let mut s = connect(&b);
    let name = |n: &'static str| TopicName(StrBytes::from_static_str(n));
    for t in ["raw-dup-a", "raw-dup-b", "raw-dup-c"] {
        auto_create(&mut s, &name(t));
    }

    let grow = |n: &'static str, count: i32| {
        CreatePartitionsTopic::default()
            .with_name(name(n))
            .with_count(count)
            .with_assignments(None)
    };
    let r: CreatePartitionsResponse = call(
        &mut s,
        ApiKey::CreatePartitions,
        3,
        &CreatePartitionsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                grow("raw-dup-a", 3),
                grow("raw-dup-b", 2),
                grow("raw-dup-a", 4),
            ]),
    );
    let got: Vec<_> = r
        .results
        .iter()
        .map(|r| (r.name.0.as_str(), r.error_code))
        .collect();
    assert_eq!(got, vec![("raw-dup-a", INVALID_REQUEST), ("raw-dup-b", 0)]);
    let r: CreatePartitionsResponse = call(
        &mut s,
        ApiKey::CreatePartitions,
        3,
        &CreatePartitionsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![grow("raw-dup-a", 2)]),
    );
    assert_eq!(
        r.results[0].error_code, 0,
        "raw-dup-a still had one partition"
    );

    let set = |k: &'static str, v: Option<&'static str>| {
        AlterableConfig::default()
            .with_name(StrBytes::from_static_str(k))
            .with_config_operation(0)
            .with_value(v.map(StrBytes::from_static_str))
    };
    let topic = |n: &'static str, configs: Vec<AlterableConfig>| {
        IncResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str(n))
            .with_configs(configs)
    };
    let r: IncrementalAlterConfigsResponse = call(
        &mut s,
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            topic("raw-dup-a", vec![set("retention.ms", Some("1000"))]),
            topic(
                "raw-dup-b",
                vec![
                    set("retention.ms", Some("1")),
                    set("retention.ms", Some("2")),
                ],
            ),
            topic("raw-dup-a", vec![set("retention.ms", Some("2000"))]),
            topic("raw-dup-c", vec![set("retention.ms", None)]),
        ]),
    );
    let codes: Vec<_> = r.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![INVALID_REQUEST; 4], "{r:?}");
    let r: AlterConfigsResponse = call(
        &mut s,
        ApiKey::AlterConfigs,
        2,
        &AlterConfigsRequest::default().with_resources(
            [
                ("raw-dup-a", None),
                ("raw-dup-a", None),
                ("raw-dup-b", None),
                ("raw-dup-c", Some("retention.ms")),
            ]
            .map(|(n, null)| {
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str(n))
                    .with_configs(
                        null.into_iter()
                            .map(|k| {
                                alter_configs_request::AlterableConfig::default()
                                    .with_name(StrBytes::from_static_str(k))
                                    .with_value(None)
                            })
                            .collect(),
                    )
            })
            .to_vec(),
        ),
    );
    let codes: Vec<_> = r.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![INVALID_REQUEST, INVALID_REQUEST, 0, INVALID_REQUEST]
    );

    let by_name = |n: &'static str| DeleteTopicState::default().with_name(Some(name(n)));
    let r: DeleteTopicsResponse = call(
        &mut s,
        ApiKey::DeleteTopics,
        6,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                by_name("raw-dup-a"),
                by_name("raw-dup-b").with_topic_id(uuid::Uuid::from_u128(1)),
                DeleteTopicState::default(),
                by_name("raw-dup-a"),
                by_name("raw-dup-c"),
            ]),
    );
    let mut got: Vec<_> = r
        .responses
        .iter()
        .map(|r| (r.name.as_ref().map(|n| n.0.to_string()), r.error_code))
        .collect();
    got.sort();
    let named = |n: &str, code| (Some(n.to_owned()), code);
    assert_eq!(
        got,
        vec![
            (None, INVALID_REQUEST),
            named("raw-dup-a", INVALID_REQUEST),
            named("raw-dup-b", INVALID_REQUEST),
            named("raw-dup-c", 0),
        ]
    );
    // Only raw-dup-c went: deleting the other two now works.
    let r: DeleteTopicsResponse = call(
        &mut s,
        ApiKey::DeleteTopics,
        6,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![by_name("raw-dup-a"), by_name("raw-dup-b")]),
    );
    assert!(r.responses.iter().all(|r| r.error_code == 0), "{r:?}");
}
