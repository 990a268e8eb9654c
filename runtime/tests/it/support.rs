//! Test harness: in-process server on 127.0.0.1:0, WebSocket client helpers, a shared
//! trained classifier (training once keeps the suite fast), and fake slow backends.

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use manga_runtime::app::AppBuilder;
use manga_runtime::backends::classifier::{IntentClassifier, TrainOptions};
use manga_runtime::backends::{BackendError, IntentModel, Prediction};
use manga_runtime::config::Config;
use manga_runtime::data::DataSet;
use manga_runtime::server::{serve, AppState};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub fn data() -> &'static DataSet {
    static DATA: OnceLock<DataSet> = OnceLock::new();
    DATA.get_or_init(|| DataSet::bundled().expect("bundled data parses"))
}

/// The embedded classifier, trained once per test binary.
pub fn classifier() -> Arc<IntentClassifier> {
    static CLF: OnceLock<Arc<IntentClassifier>> = OnceLock::new();
    CLF.get_or_init(|| {
        Arc::new(IntentClassifier::train(
            &data().train,
            TrainOptions::default(),
        ))
    })
    .clone()
}

/// A test configuration. Without `--embedder`, retrieval is BM25 alone: tests that are
/// not about retrieval quality then do not depend on how fast a question is embedded in
/// a debug build on a loaded machine (a late embedding is `retrieval_skipped`). The
/// retrieval tests (`quality`, `opensearch`, `e2e::constraint…`) ask for the model.
pub fn config(args: &[&str]) -> Config {
    let mut args: Vec<&str> = args.to_vec();
    if !args.contains(&"--embedder") {
        args.extend(["--embedder", "none"]);
    }
    Config::from_args(&args).expect("valid test config")
}

/// Builder with the shared classifier already injected.
pub fn builder(args: &[&str]) -> AppBuilder {
    AppBuilder::new(config(args)).model(classifier())
}

#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(builder: AppBuilder) -> TestServer {
        let app = builder.build().await.expect("app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(serve(listener, app.state.clone(), async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            state: app.state,
            shutdown: Some(tx),
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{}", self.addr, path_and_query)
    }

    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn connect(&self) -> Client {
        Client::connect(&self.ws_url("/v1/chat"), None).await
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug)]
pub struct Client {
    pub ws: Ws,
}

/// What the client saw for one message.
#[derive(Debug, Clone)]
pub struct Answer {
    pub frames: Vec<Value>,
}

impl Answer {
    pub fn types(&self) -> Vec<String> {
        self.frames
            .iter()
            .map(|f| f["type"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    pub fn text(&self) -> String {
        self.frames
            .iter()
            .filter(|f| f["type"] == "token")
            .filter_map(|f| f["text"].as_str())
            .collect()
    }

    pub fn start(&self) -> &Value {
        self.frames
            .iter()
            .find(|f| f["type"] == "start")
            .expect("a start frame")
    }

    pub fn last(&self) -> &Value {
        self.frames.last().expect("at least one frame")
    }
}

const FRAME_WAIT: Duration = Duration::from_secs(10);

impl Client {
    pub async fn connect(url: &str, bearer: Option<&str>) -> Client {
        let mut req = url.into_client_request().expect("ws request");
        if let Some(t) = bearer {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("header value"),
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("websocket handshake");
        Client { ws }
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send(&mut self, session: &str, text: &str) {
        let frame = serde_json::json!({"type": "message", "session_id": session, "text": text});
        self.send_raw(&frame.to_string()).await;
    }

    /// Next JSON frame, skipping pings/pongs; `None` when the server closed.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(FRAME_WAIT, self.ws.next())
                .await
                .expect("a frame within 10 s");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    return Some(serde_json::from_str(t.as_str()).expect("server sends JSON"))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(other)) => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// Frames until the message's terminal frame (`done` or `error`).
    pub async fn answer(&mut self) -> Answer {
        let mut frames = Vec::new();
        while let Some(f) = self.next().await {
            let end = f["type"] == "done" || f["type"] == "error";
            frames.push(f);
            if end {
                return Answer { frames };
            }
        }
        panic!("connection closed before done/error; got {frames:?}");
    }

    pub async fn ask(&mut self, session: &str, text: &str) -> Answer {
        self.send(session, text).await;
        self.answer().await
    }

    /// Waits for the server's close frame; returns its code.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(FRAME_WAIT, self.ws.next())
                .await
                .expect("close within 10 s")
            {
                Some(Ok(Message::Close(Some(cf)))) => return Some(cf.code.into()),
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }
}

/// An intent model that takes `delay` (simulated with tokio's clock).
#[derive(Debug)]
pub struct SlowModel(pub Duration);

#[async_trait]
impl IntentModel for SlowModel {
    async fn classify(&self, text: &str) -> Result<Prediction, BackendError> {
        tokio::time::sleep(self.0).await;
        Ok(classifier().predict(text))
    }
}
