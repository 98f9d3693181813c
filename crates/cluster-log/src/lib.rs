//! The core's inputs as a log replicated on a NATS JetStream cluster. The core is
//! deterministic, so every node that applies the same entries in the same order holds the same
//! state: each node appends the inputs it receives (a call offered, a pick, a timer that fired)
//! and applies every entry of the stream, its own and the others', in the stream's order. Two
//! picks of the same call from two nodes are decided by that order, the same on every node,
//! with no lock.
//!
//! An entry is appended with a message id made of its node and a number the node never reuses,
//! so that an append retried after a lost acknowledgement (a server died, a leader moved) is
//! stored once.

use std::time::Duration;

use async_nats::jetstream::{self, object_store, stream};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

mod appender;

pub use appender::{Appender, Batch};
pub use secourir_wire::Format;

/// Subject the entries are published on.
const SUBJECT: &str = "secourir.inputs";

/// Header giving the wire format of a message's payload; without it, the compact format
/// (written before formats had numbers).
const FORMAT_HEADER: &str = "Secourir-Format";

/// Header giving the newest format the message's writer reads: the others write no newer
/// format while it is a member. Versions before it do not send it; they read the compact
/// format only.
const READS_HEADER: &str = "Secourir-Reads";

/// How long the servers remember message ids to drop a retried append: far longer than any
/// retry takes.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long one attempt at an append waits for the stream's acknowledgement before retrying:
/// a healthy cluster acknowledges in milliseconds, and a retry after a leader's death must not
/// wait for a dead server.
const ACK_WAIT: Duration = Duration::from_secs(1);

/// How long a follower keeps asking for its consumer while the cluster elects leaders.
const FOLLOW_SETUP: Duration = Duration::from_secs(30);

/// Why the log cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// No server of the cluster could be reached.
    #[error("cannot reach the NATS cluster: {0}")]
    Connect(String),
    /// The stream could not be created or found.
    #[error("stream {stream}: {reason}")]
    Stream {
        /// Its name.
        stream: String,
        /// The server's answer.
        reason: String,
    },
    /// An append was not acknowledged in time.
    #[error("append not acknowledged: {0}")]
    Append(String),
    /// Reading the stream failed.
    #[error("reading the log: {0}")]
    Read(String),
    /// The bucket of replicated files is unusable.
    #[error("replicated files: {0}")]
    Objects(String),
    /// An entry of the stream is not an entry of this version.
    #[error("entry {seq} cannot be decoded: {reason}")]
    Decode {
        /// Its sequence in the stream.
        seq: u64,
        /// Why.
        reason: String,
    },
}

/// An entry the stream holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence in the stream.
    pub seq: u64,
    /// Publications it took (1 when the first was acknowledged).
    pub attempts: u32,
}

/// Files replicated on the cluster's servers beside the log.
#[derive(Clone)]
pub struct Objects {
    store: object_store::ObjectStore,
}

impl Objects {
    /// Stores the file at `path` as `name`, once the servers have all of it.
    pub async fn put_file(&self, name: &str, path: &std::path::Path) -> Result<(), LogError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| LogError::Objects(format!("{}: {e}", path.display())))?;
        self.store
            .put(name, &mut file)
            .await
            .map_err(|e| LogError::Objects(e.to_string()))?;
        Ok(())
    }

    /// Copies the object `name` to `path`, whole or not at all (through a temporary file).
    pub async fn get_file(&self, name: &str, path: &std::path::Path) -> Result<(), LogError> {
        // The client's reader panics when the servers cannot set up its consumer (a leader
        // being elected): each attempt runs in a task of its own, so that a panic is one failed
        // attempt, which the caller tries again, and not the end of its copying.
        let (objects, name, path) = (self.clone(), name.to_owned(), path.to_owned());
        tokio::spawn(async move { objects.copy_to(&name, &path).await })
            .await
            .map_err(|e| LogError::Objects(format!("the copy failed: {e}")))?
    }

    /// Stores `bytes` as `name`, with `description` readable without fetching them.
    pub async fn put_bytes(
        &self,
        name: &str,
        description: &str,
        bytes: &[u8],
    ) -> Result<(), LogError> {
        let meta = object_store::ObjectMetadata {
            name: name.to_owned(),
            description: Some(description.to_owned()),
            ..Default::default()
        };
        let mut reader = bytes;
        self.store
            .put(meta, &mut reader)
            .await
            .map_err(|e| LogError::Objects(e.to_string()))?;
        Ok(())
    }

    /// The objects held, each with its description.
    pub async fn described(&self) -> Result<Vec<(String, String)>, LogError> {
        let mut list = self
            .store
            .list()
            .await
            .map_err(|e| LogError::Objects(e.to_string()))?;
        let mut found = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| LogError::Objects(e.to_string()))?;
            if !info.deleted {
                found.push((info.name, info.description.unwrap_or_default()));
            }
        }
        Ok(found)
    }

    /// The whole object `name`.
    pub async fn get_bytes(&self, name: &str) -> Result<Vec<u8>, LogError> {
        // Off the caller's task for the same reason as `get_file`.
        let (store, name) = (self.store.clone(), name.to_owned());
        tokio::spawn(async move {
            let mut object = store
                .get(&name)
                .await
                .map_err(|e| LogError::Objects(e.to_string()))?;
            let mut bytes = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes)
                .await
                .map_err(|e| LogError::Objects(e.to_string()))?;
            Ok(bytes)
        })
        .await
        .map_err(|e| LogError::Objects(format!("the copy failed: {e}")))?
    }

    async fn copy_to(&self, name: &str, path: &std::path::Path) -> Result<(), LogError> {
        let mut object = self
            .store
            .get(name)
            .await
            .map_err(|e| LogError::Objects(e.to_string()))?;
        let part = path.with_extension("part");
        let io = |e: std::io::Error| LogError::Objects(format!("{}: {e}", part.display()));
        let mut file = tokio::fs::File::create(&part).await.map_err(io)?;
        tokio::io::copy(&mut object, &mut file).await.map_err(io)?;
        file.sync_all().await.map_err(io)?;
        tokio::fs::rename(&part, path).await.map_err(io)?;
        Ok(())
    }
}

/// One node's handle on the replicated log.
#[derive(Clone)]
pub struct ClusterLog {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: String,
}

impl ClusterLog {
    /// Connects to the cluster (`nats://a:4222,nats://b:4222,…`) and finds or creates the
    /// stream, replicated on `replicas` servers.
    pub async fn connect(
        urls: &str,
        stream: &str,
        replicas: usize,
    ) -> Result<ClusterLog, LogError> {
        let servers: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(1))
            // A lost server is replaced at once by another of the list, then every 250 ms.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(250 * (attempts.min(4) as u64).saturating_sub(1))
            })
            .connect(servers)
            .await
            .map_err(|e| LogError::Connect(e.to_string()))?;
        let js = jetstream::new(client.clone());
        let config = stream::Config {
            name: stream.to_owned(),
            subjects: vec![SUBJECT.to_owned()],
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        };
        js.get_or_create_stream(config)
            .await
            .map_err(|e| LogError::Stream {
                stream: stream.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(ClusterLog {
            client,
            js,
            stream: stream.to_owned(),
        })
    }

    /// Appends an entry in `format` once the stream has it on a quorum of its servers; `id`
    /// makes a retried append count once. Retries until `give_up` has passed.
    pub async fn append<T: Serialize>(
        &self,
        node: &str,
        id: u64,
        entry: &T,
        format: Format,
        give_up: Duration,
    ) -> Result<Appended, LogError> {
        let payload = format
            .encode(entry)
            .map_err(|e| LogError::Append(e.to_string()))?;
        let written = format.number().to_string();
        let reads = secourir_wire::NEWEST.number().to_string();
        let msg_id = format!("{node}-{id}");
        let deadline = tokio::time::Instant::now() + give_up;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", msg_id.as_str());
            headers.insert(FORMAT_HEADER, written.as_str());
            headers.insert(READS_HEADER, reads.as_str());
            let attempt = async {
                let ack = self
                    .js
                    .publish_with_headers(SUBJECT, headers, payload.clone().into())
                    .await
                    .map_err(|e| e.to_string())?;
                ack.await.map(|a| a.sequence).map_err(|e| e.to_string())
            };
            let error = match tokio::time::timeout(ACK_WAIT, attempt).await {
                Ok(Ok(seq)) => return Ok(Appended { seq, attempts }),
                Ok(Err(e)) => e,
                Err(_) => "no acknowledgement".to_owned(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(LogError::Append(error));
            }
            tracing::debug!(%msg_id, %error, "append retried");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn consumer(&self, from: u64) -> Result<jetstream::consumer::push::Ordered, LogError> {
        let stream = self.stream().await?;
        let consumer = stream
            .create_consumer(jetstream::consumer::push::OrderedConfig {
                deliver_subject: self.client.new_inbox(),
                deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: from.max(1),
                },
                ..Default::default()
            })
            .await
            .map_err(|e| LogError::Read(e.to_string()))?;
        consumer
            .messages()
            .await
            .map_err(|e| LogError::Read(e.to_string()))
    }

    /// The stream's first entry still held and its last, asking again while the cluster
    /// elects its leaders: what a starting node must apply before it serves. The last is zero
    /// while the stream never had an entry; the first is the last plus one once it was trimmed
    /// of every entry.
    pub async fn bounds(&self) -> Result<(u64, u64), LogError> {
        let deadline = tokio::time::Instant::now() + FOLLOW_SETUP;
        loop {
            match self.info().await {
                Ok(info) => return Ok((info.state.first_sequence, info.state.last_sequence)),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "stream state asked again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Removes every entry below `seq`: the entries every node has in a snapshot.
    pub async fn trim_below(&self, seq: u64) -> Result<u64, LogError> {
        let stream = self.stream().await?;
        let purged = stream
            .purge()
            .sequence(seq)
            .await
            .map_err(|e| LogError::Read(e.to_string()))?;
        Ok(purged.purged)
    }

    /// The bucket of files replicated beside the log (the calls' recordings), created on
    /// `replicas` servers if it is not there yet.
    pub async fn objects(&self, bucket: &str, replicas: usize) -> Result<Objects, LogError> {
        let store = match self.js.get_object_store(bucket).await {
            Ok(store) => store,
            Err(_) => self
                .js
                .create_object_store(object_store::Config {
                    bucket: bucket.to_owned(),
                    num_replicas: replicas,
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| LogError::Objects(e.to_string()))?,
        };
        Ok(Objects { store })
    }

    /// The stream's handle.
    async fn stream(&self) -> Result<jetstream::stream::Stream, LogError> {
        self.js
            .get_stream(&self.stream)
            .await
            .map_err(|e| LogError::Read(e.to_string()))
    }

    /// The stream's state and cluster, as its leader says.
    async fn info(&self) -> Result<stream::Info, LogError> {
        let mut stream = self.stream().await?;
        let info = stream
            .info()
            .await
            .map_err(|e| LogError::Read(e.to_string()))?;
        Ok(info.clone())
    }

    /// The server leading the stream now, and the replicas that are current, for supervision.
    pub async fn leader(&self) -> Result<(Option<String>, Vec<String>), LogError> {
        let info = self.info().await?;
        let cluster = info.cluster.clone().unwrap_or_default();
        let current = cluster
            .replicas
            .iter()
            .filter(|r| r.current)
            .map(|r| r.name.clone())
            .collect();
        Ok((cluster.leader, current))
    }

    /// Every entry from sequence `from` (1 is the first), in the stream's order, as it comes,
    /// with the newest format its writer reads: an ordered consumer, which the client
    /// recreates where it stopped if its server dies.
    #[allow(clippy::type_complexity)]
    pub async fn follow<T: DeserializeOwned>(
        &self,
        from: u64,
    ) -> Result<impl futures::Stream<Item = Result<(u64, T, u16), LogError>> + use<T>, LogError>
    {
        // Right after a server's death the cluster may take seconds to elect new leaders:
        // the follower asks again rather than give up.
        let deadline = tokio::time::Instant::now() + FOLLOW_SETUP;
        let messages = loop {
            // One attempt waits no longer than an append does: a request to a dead server
            // would otherwise hold the reading for the client's whole request timeout.
            let attempt = tokio::time::timeout(ACK_WAIT, self.consumer(from))
                .await
                .unwrap_or_else(|_| Err(LogError::Read("no answer in time".into())));
            match attempt {
                Ok(messages) => break messages,
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "follow retried");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Ok(messages.map(|message| {
            let message = message.map_err(|e| LogError::Read(e.to_string()))?;
            let seq = message
                .info()
                .map(|i| i.stream_sequence)
                .map_err(|e| LogError::Read(e.to_string()))?;
            let header = |name: &str| {
                message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().parse::<u16>())
            };
            let decode_error = |reason: String| LogError::Decode { seq, reason };
            let format = match header(FORMAT_HEADER) {
                // Written by a version before numbered formats.
                None => Format::from_number(1).map_err(|e| decode_error(e.to_string()))?,
                Some(Ok(number)) => {
                    Format::from_number(number).map_err(|e| decode_error(e.to_string()))?
                }
                Some(Err(e)) => return Err(decode_error(format!("{FORMAT_HEADER}: {e}"))),
            };
            let entry = format
                .decode(&message.payload)
                .map_err(|e| decode_error(e.to_string()))?;
            let reads = match header(READS_HEADER) {
                Some(Ok(number)) => number,
                _ => 1,
            };
            Ok((seq, entry, reads))
        }))
    }
}
