//! Turns are not lost: a client that leaves right after sending, or never reads `done`,
//! still finds the turn in the store, saved before the server releases the connection;
//! a reconnect to another task sees it as history. Real sockets on 127.0.0.1, the
//! embedded store shared by two servers (as DynamoDB is shared by tasks); the DynamoDB
//! store against moto is in `aws.rs`.

use crate::support::{builder, TestServer};
use futures_util::SinkExt;
use manga_runtime::backends::memory_store::LruSessionStore;
use manga_runtime::backends::SessionStore;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "anon:127.0.0.1/s1";

/// Waits until the server holds no connection (each is released only after its turn
/// is saved); fails after 10 s.
pub async fn released(s: &TestServer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.state.open_connections() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connection still open"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn store() -> Arc<LruSessionStore> {
    Arc::new(LruSessionStore::new(100, Duration::from_secs(600), 20))
}

#[tokio::test]
async fn a_client_that_leaves_right_after_sending_still_gets_its_turn_saved() {
    let sessions = store();
    // A streamed answer that takes a while (40 words, 5 ms apart), so the
    // client is gone long before it ends.
    let a = TestServer::start(builder(&["--word-delay-ms", "5"]).sessions(sessions.clone())).await;
    let mut c = a.connect().await;
    c.send("s1", "recommend a seinen thriller").await;
    c.ws.close(None).await.expect("close");
    drop(c);
    released(&a).await;

    let turns = sessions.load(KEY, 10).await.expect("load");
    assert_eq!(turns.len(), 1, "{turns:?}");
    assert_eq!(turns[0].user, "recommend a seinen thriller");
    assert!(!turns[0].assistant.is_empty(), "the whole answer is kept");
    assert!(
        turns[0].id.starts_with('m'),
        "keyed by message id: {}",
        turns[0].id
    );

    // The customer reconnects to another task: the follow-up sees the turn.
    let b = TestServer::start(builder(&[]).sessions(sessions.clone())).await;
    let mut c = b.connect().await;
    let answer = c.ask("s1", "more like that one").await;
    assert_eq!(answer.last()["type"], "done");
    assert_eq!(
        answer.start()["tier"],
        "complex",
        "a follow-up of the saved turn"
    );
    assert_eq!(sessions.load(KEY, 10).await.expect("load").len(), 2);
}

#[tokio::test]
async fn a_client_that_never_reads_done_still_gets_its_turn_saved() {
    let sessions = store();
    let a = TestServer::start(builder(&[]).sessions(sessions.clone())).await;
    let mut c = a.connect().await;
    // Send and never read: every frame stays unread in the socket buffers.
    c.ws.send(Message::Text(
        r#"{"type":"message","session_id":"s1","text":"what is your return policy"}"#.into(),
    ))
    .await
    .expect("send");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let turns = loop {
        let turns = sessions.load(KEY, 10).await.expect("load");
        if !turns.is_empty() || tokio::time::Instant::now() > deadline {
            break turns;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(turns.len(), 1, "saved while the client reads nothing");
    // Reading now shows `done` came after the save, with no `save_skipped`.
    let answer = c.answer().await;
    assert_eq!(answer.last()["type"], "done");
    assert_eq!(answer.last()["degraded"], serde_json::json!([]));
    drop(c);
    released(&a).await;
    assert_eq!(sessions.load(KEY, 10).await.expect("load").len(), 1);
}
