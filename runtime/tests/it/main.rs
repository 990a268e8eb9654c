//! Integration tests of `manga-runtime`, one test binary (see runtime/Cargo.toml):
//! - `e2e`: real WebSocket clients against a server on 127.0.0.1 (tiers, frame order,
//!   error frames, auth, rate and session limits, pings, graceful shutdown);
//! - `budgets`: stage deadlines with `tokio::time::pause()` and slow fake backends;
//! - `classifier`: held-out accuracy of the intent classifier;
//! - `embeddings`: Titan V2 through a local InvokeModel double; the local MiniLM model;
//! - `opensearch`: an OpenSearch Serverless double; `manga-runtime index` against it
//!   (idempotent, retried batches) and the retrieval contract shared with the embedded
//!   retriever;
//! - `quality`: recall@5 / nDCG@10 of BM25, vectors and hybrid retrieval on the labelled
//!   query set (`data/eval/queries.tsv`);
//! - `config`: budgets from environment files, config-file precedence;
//! - `openai`: the OpenAI-compatible backend against a fake SSE server on 127.0.0.1;
//! - `aws`: the AWS backends against moto (DynamoDB, SageMaker), redis-server, and fake
//!   OpenSearch / Bedrock endpoints; `MANGA_BACKEND=aws` end to end with EMF lines
//!   (emulators started by `emulators`);
//! - `dax`: `DaxSessionStore` through the DAX test server (mangactl-dax's, over moto):
//!   writes and reads through DAX on the primary, the DynamoDB store seeing the same
//!   turns, and the fallback to DynamoDB (counted) when DAX goes down;
//! - `redis_cluster`: `RedisCache` in cluster mode against a three-node Redis Cluster of
//!   redis-servers (the single-node client gets `MOVED` there), and the task definition
//!   setting `MANGA_REDIS_CLUSTER` as the cache stack renders cluster mode;
//! - `drain`: the drain that begins when the load balancer drains this task (a scripted
//!   target-health double under `tokio::time::pause()`, and the SDK watcher against
//!   moto's ELBv2 with a fake ECS task metadata endpoint): `reconnect` frames before the
//!   deregistration deadline, the answer in flight completed first;
//! - `redis_iam`: `RedisCache` with ElastiCache IAM authentication against a local
//!   redis-server whose ACL user accepts exactly the latest token: AUTH with user and
//!   token, a fresh token after a killed connection, a refused token's clear error;
//! - `load`: a few hundred sessions from `manga-loadgen` over real sockets (correctness only);
//! - `turns`: turns survive a client that leaves or never reads `done`, and a reconnect
//!   to another task sees them;
//! - `taskdef`: the ECS task definition mangactl renders agrees with the runtime and its image;
//! - `browser`: the chat page on `/` in headless Chromium via chromedriver (WebDriver).
//!
//! Shared helpers live in `support`.

mod aws;
mod browser;
mod budgets;
mod classifier;
mod config;
mod dax;
mod drain;
mod e2e;
mod embeddings;
mod emulators;
mod load;
mod openai;
mod opensearch;
mod opensearch_double;
mod quality;
mod redis_cluster;
mod redis_iam;
mod support;
mod taskdef;
mod turns;
