use super::*;

fn identity(node: NodeId, secret: Option<&str>, cluster: Option<&str>) -> ClusterIdentity {
    ClusterIdentity::new(node, secret, cluster.map(str::to_string), None)
}

/// Runs both ends over an in-memory pipe: the dialer's and the listener's outcomes.
async fn run(
    dialer: &ClusterIdentity,
    listener: &ClusterIdentity,
    target: NodeId,
) -> (Result<(), HandshakeError>, Result<NodeId, HandshakeError>) {
    let (mut a, mut b) = tokio::io::duplex(4096);
    tokio::join!(
        dial(&mut a, dialer, target, "listener"),
        answer(&mut b, listener, "dialer")
    )
}

fn reason(result: Result<impl fmt::Debug, HandshakeError>) -> (String, bool) {
    match result {
        Err(HandshakeError::Refused { reason, .. }) => (reason, true),
        Err(HandshakeError::RefusedByPeer { reason, .. }) => (reason, false),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn nodes_sharing_secret_and_cluster_pass() {
    let (one, two) = (
        identity(1, Some("s3cret"), Some("c1")),
        identity(2, Some("s3cret"), Some("c1")),
    );
    let (dialed, answered) = run(&one, &two, 2).await;
    dialed.expect("dialer passes");
    assert_eq!(answered.expect("listener passes"), 1);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_both_ends() {
    let (good, bad) = (
        identity(1, Some("s3cret"), Some("c1")),
        identity(2, Some("guess"), Some("c1")),
    );
    // The bad node dials: the good listener's MAC fails the dialer's check, and the
    // dialer says so to the listener.
    let (dialed, answered) = run(&bad, &good, 1).await;
    let (why, by_me) = reason(dialed);
    assert!(
        by_me && why.contains("has another cluster secret than this node"),
        "{why}"
    );
    let (why, by_me) = reason(answered);
    assert!(
        !by_me && why.contains("node 1 has another cluster secret than this node"),
        "{why}"
    );
    // The good node dials the bad listener: the same, the other way round.
    let (dialed, answered) = run(&good, &bad, 2).await;
    assert!(reason(dialed)
        .0
        .contains("node 2 has another cluster secret than this node"));
    assert!(reason(answered)
        .0
        .contains("has another cluster secret than this node"));
}

#[tokio::test]
async fn a_secret_on_one_end_only_is_refused_with_why() {
    let (with, without) = (
        identity(1, Some("s3cret"), Some("c1")),
        identity(2, None, Some("c1")),
    );
    let (_, answered) = run(&without, &with, 1).await;
    let (why, by_me) = reason(answered);
    assert!(
        by_me && why.contains("node 2 has no cluster secret"),
        "{why}"
    );
}

#[tokio::test]
async fn another_cluster_is_refused_and_a_node_without_an_id_learns_it() {
    let (c1, c2) = (identity(1, None, Some("c1")), identity(2, None, Some("c2")));
    let (dialed, answered) = run(&c2, &c1, 1).await;
    let (why, by_me) = reason(answered);
    assert!(
        by_me && why.contains("node 2 is of cluster 'c2', this node of cluster 'c1'"),
        "{why}"
    );
    assert!(reason(dialed).0.contains("cluster 'c2'"));

    let joining = identity(3, None, None);
    let (dialed, answered) = run(&c1, &joining, 3).await;
    dialed.expect("a node without an id takes the dialer's");
    answered.expect("listener passes");
    assert_eq!(joining.cluster_id().as_deref(), Some("c1"));
}

#[tokio::test]
async fn the_dialer_refuses_a_node_other_than_the_one_it_meant() {
    let (one, two) = (identity(1, None, Some("c1")), identity(2, None, Some("c1")));
    let (dialed, _) = run(&one, &two, 3).await;
    assert!(reason(dialed).0.contains("the peer is node 2, not node 3"));
}

#[tokio::test]
async fn another_wire_version_is_refused_by_both_ends() {
    let one = identity(1, Some("s"), Some("c1"));
    let mut newer = identity(2, Some("s"), Some("c1"));
    newer.version = RAFT_WIRE_VERSION + 1;
    let (dialed, answered) = run(&newer, &one, 1).await;
    let (why, by_me) = reason(answered);
    assert!(
        by_me && why.contains("raft wire version 2 of the peer differs from this node's 1"),
        "{why}"
    );
    assert!(reason(dialed).0.contains("wire version"));
    let (dialed, answered) = run(&one, &newer, 2).await;
    let (why, by_me) = reason(answered);
    assert!(
        by_me && why.contains("raft wire version 1 of the peer differs from this node's 2"),
        "{why}"
    );
    assert!(reason(dialed).0.contains("wire version"));
}

#[test]
fn a_replayed_transcript_proves_nothing() {
    let (one, two) = (
        identity(1, Some("s3cret"), Some("c1")),
        identity(2, Some("s3cret"), Some("c1")),
    );
    // A genuine exchange, recorded.
    let hello = one.hello([7; NONCE_BYTES]);
    let challenge = two.challenge(&hello, [8; NONCE_BYTES]).unwrap();
    let proof = one.prove(&hello, &challenge, 2).unwrap();
    two.accept(&hello, &challenge, &proof).unwrap();
    // Replayed to the listener: it answers a fresh nonce, and the old proof fails.
    let fresh = two.challenge(&hello, [9; NONCE_BYTES]).unwrap();
    assert!(two.accept(&hello, &fresh, &proof).is_err());
    // The recorded challenge replayed to a dialer with a fresh nonce fails too.
    let new_hello = one.hello([10; NONCE_BYTES]);
    assert!(one.prove(&new_hello, &challenge, 2).is_err());
    // And the listener's MAC is not the dialer's (no reflection).
    assert!(two.accept(&hello, &challenge, &challenge.mac).is_err());
}

#[test]
fn garbage_is_not_a_handshake() {
    assert!(Message::decode(b"*1\r\n$4\r\nPING\r\n", RAFT_WIRE_VERSION).is_err());
    let mut truncated = one_hello();
    truncated.pop();
    assert!(Message::decode(&truncated, RAFT_WIRE_VERSION).is_err());
    assert!(matches!(
        Message::decode(&one_hello(), RAFT_WIRE_VERSION),
        Ok(Message::Hello(_))
    ));
}

fn one_hello() -> Vec<u8> {
    identity(1, None, Some("c1"))
        .hello([1; NONCE_BYTES])
        .encode()
}
