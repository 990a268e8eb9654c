//! Minimal WebSocket client for trying the runtime without websocat:
//!
//! ```sh
//! cargo run -p manga-runtime                                   # terminal 1
//! cargo run -p manga-runtime --example chat -- "do you have one piece?" "more like that one"
//! ```
//!
//! Sends each argument as a message of one session and prints the streamed answer and
//! the `done` timings. `MANGA_URL` overrides `ws://127.0.0.1:8080/v1/chat`.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::var("MANGA_URL").unwrap_or_else(|_| "ws://127.0.0.1:8080/v1/chat".into());
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    for text in std::env::args().skip(1) {
        let msg = serde_json::json!({"type": "message", "session_id": "example", "text": text});
        ws.send(Message::Text(msg.to_string().into())).await?;
        println!("> {text}");
        while let Some(frame) = ws.next().await {
            let Message::Text(t) = frame? else { continue };
            let v: serde_json::Value = serde_json::from_str(t.as_str())?;
            match v["type"].as_str() {
                Some("start") => println!("[intent {} · tier {}]", v["intent"], v["tier"]),
                Some("token") => print!("{}", v["text"].as_str().unwrap_or_default()),
                Some("done") => {
                    println!(
                        "\n[done: cache_hit={} timings_ms={}]\n",
                        v["cache_hit"], v["timings_ms"]
                    );
                    break;
                }
                _ => {
                    println!("\n{v}\n");
                    break;
                }
            }
        }
    }
    ws.close(None).await?;
    Ok(())
}
