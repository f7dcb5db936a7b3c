//! Topology: topics created on first use through the admin client (or required to exist), and
//! reply topics deleted when their client closes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use tonic::Status;

/// Admin requests give up after this.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The topics a connection has made sure of.
pub(crate) struct Topics {
    admin: Arc<AdminClient<DefaultClientContext>>,
    partitions: i32,
    replication: i32,
    create: bool,
    known: Mutex<HashSet<String>>,
    /// A mock cluster's topic maker (see `mock_cluster`), when the cluster is one.
    mock: Option<Mutex<std::sync::mpsc::Sender<super::MockCreate>>>,
}

impl Topics {
    pub(crate) fn new(
        admin: AdminClient<DefaultClientContext>,
        partitions: i32,
        replication: i32,
        create: bool,
        mock: Option<std::sync::mpsc::Sender<super::MockCreate>>,
    ) -> Self {
        Topics { admin: Arc::new(admin), partitions, replication, create, known: Mutex::default(), mock: mock.map(Mutex::new) }
    }

    /// Whether the cluster is a mock one (`mock_cluster`).
    pub(crate) fn is_mock(&self) -> bool {
        self.mock.is_some()
    }

    fn options() -> AdminOptions {
        AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT)).operation_timeout(Some(ADMIN_TIMEOUT))
    }

    /// Makes sure `topics` exist: creates the missing ones (the connection's partitions and
    /// replication), or, when topics must exist, fails with FAILED_PRECONDITION naming the first
    /// one missing.
    pub(crate) async fn ensure(&self, topics: &[&str]) -> Result<(), Status> {
        self.ensure_with(topics, None).await
    }

    /// [`ensure`](Self::ensure), with a partition count of its own for topics that need one
    /// (reply and cancel topics: 1).
    pub(crate) async fn ensure_with(&self, topics: &[&str], partitions: Option<i32>) -> Result<(), Status> {
        let missing: Vec<&str> = {
            let known = self.known.lock().unwrap();
            topics.iter().copied().filter(|t| !known.contains(*t)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        if !self.create {
            let existing = self.existing(&missing).await?;
            if let Some(absent) = missing.iter().find(|t| !existing.contains(**t)) {
                return Err(Status::failed_precondition(format!(
                    "the Kafka topic `{absent}` does not exist, and this connection does not create topics (create_topics=false)"
                )));
            }
        } else if let Some(mock) = &self.mock {
            for topic in &missing {
                let (tx, rx) = std::sync::mpsc::channel();
                let sent = mock.lock().unwrap().send(((*topic).to_owned(), partitions.unwrap_or(self.partitions), tx));
                let made = match sent {
                    Ok(()) => tokio::task::spawn_blocking(move || rx.recv_timeout(ADMIN_TIMEOUT).map_err(|e| e.to_string()))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r)
                        .and_then(|r| r),
                    Err(e) => Err(e.to_string()),
                };
                match made {
                    Ok(()) => {}
                    Err(e) if e.contains("TopicAlreadyExists") => {}
                    Err(e) => return Err(Status::unavailable(format!("creating the Kafka topic `{topic}` on the mock cluster: {e}"))),
                }
            }
        } else {
            let new: Vec<NewTopic<'_>> = missing
                .iter()
                .map(|t| NewTopic::new(t, partitions.unwrap_or(self.partitions), TopicReplication::Fixed(self.replication)))
                .collect();
            let results = self
                .admin
                .create_topics(new.iter(), &Self::options())
                .await
                .map_err(|e| Status::unavailable(format!("creating Kafka topics {missing:?}: {e}")))?;
            for result in results {
                match result {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((topic, code)) => {
                        return Err(Status::unavailable(format!("creating the Kafka topic `{topic}`: {code}")));
                    }
                }
            }
        }
        self.known.lock().unwrap().extend(missing.iter().map(|t| (*t).to_owned()));
        Ok(())
    }

    /// Which of `topics` the cluster has (a metadata request).
    pub(crate) async fn existing(&self, topics: &[&str]) -> Result<HashSet<String>, Status> {
        let admin = self.admin.clone();
        let wanted: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let metadata = admin.inner().fetch_metadata(None, ADMIN_TIMEOUT).map_err(|e| Status::unavailable(format!("reading Kafka metadata: {e}")))?;
            Ok(metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none() && wanted.iter().any(|w| w == t.name()))
                .map(|t| t.name().to_owned())
                .collect())
        })
        .await
        .map_err(|e| Status::internal(format!("reading Kafka metadata: {e}")))?
    }

    /// Deletes `topic` (best effort: a reply topic its client no longer needs).
    pub(crate) async fn delete(&self, topic: &str) {
        if self.is_mock() {
            // The mock broker cannot delete topics.
            return;
        }
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(1))).operation_timeout(Some(Duration::from_secs(1)));
        let _ = tokio::time::timeout(Duration::from_secs(1), self.admin.delete_topics(&[topic], &options)).await;
        self.known.lock().unwrap().remove(topic);
    }

    /// The admin client, for blocking metadata and group look-ups (on a blocking thread).
    pub(crate) fn admin(&self) -> Arc<AdminClient<DefaultClientContext>> {
        self.admin.clone()
    }
}
