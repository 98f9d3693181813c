//! One AMQP connection to the hub. Opening it checks everything the platform relies on: the
//! broker confirms publishes, and the platform's three queues exist. They are declared passively:
//! the hub creates its clients' queues, and a client that created its own would receive nothing.

use std::pin::Pin;

use futures::stream::{SelectAll, Stream, StreamExt};
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, PublisherConfirm};

use crate::config::{ConfigError, HubConfig};

/// AMQP's persistent delivery mode: the broker writes the message to disk.
pub const PERSISTENT: u8 = 2;
/// Deliveries the broker may push before the platform acknowledges them.
pub const PREFETCH: u16 = 32;

/// A delivery from one of the platform's queues, tagged with the queue's name; `None` when that
/// queue's consumer ended (the broker cancelled it), which a merged stream would otherwise hide.
pub type Tagged = (String, Option<lapin::Result<AmqpDelivery>>);

/// An open connection with its channel and consumers.
pub struct Link {
    connection: Connection,
    channel: Channel,
    deliveries: SelectAll<Pin<Box<dyn Stream<Item = Tagged> + Send>>>,
}

/// Why a link could not open.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The configuration's files or URI.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The broker refused or could not be reached.
    #[error("hub connection: {0}")]
    Amqp(#[from] lapin::Error),
    /// One of the platform's queues does not exist on the hub (or is not the platform's).
    #[error("hub queue {queue}: {source}")]
    Queue {
        /// The queue.
        queue: String,
        /// The broker's answer.
        source: lapin::Error,
    },
}

impl Link {
    /// Connects, turns on publisher confirms, checks and consumes the platform's queues.
    pub async fn open(config: &HubConfig) -> Result<Link, LinkError> {
        let (uri, tls) = config.connection_target()?;
        let properties =
            ConnectionProperties::default().with_connection_name(config.client_id.clone().into());
        let runtime = lapin::runtime::default_runtime()?;
        let connection = Connection::connect_uri_with_config(uri, properties, tls, runtime).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        let mut deliveries = SelectAll::new();
        for queue in config.queues() {
            let passive = QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            };
            channel
                .queue_declare(queue.clone().into(), passive, FieldTable::default())
                .await
                .map_err(|source| LinkError::Queue {
                    queue: queue.clone(),
                    source,
                })?;
            let tag = format!("secourir-{queue}");
            let consumer = channel
                .basic_consume(
                    queue.clone().into(),
                    tag.into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|source| LinkError::Queue {
                    queue: queue.clone(),
                    source,
                })?;
            let ended = futures::stream::once(std::future::ready(None));
            let tagged = consumer
                .map(Some)
                .chain(ended)
                .map(move |item| (queue.clone(), item));
            deliveries.push(Box::pin(tagged) as Pin<Box<dyn Stream<Item = Tagged> + Send>>);
        }
        Ok(Link {
            connection,
            channel,
            deliveries,
        })
    }

    /// Publishes a message to the hub's exchange under the platform's routing key, persistent,
    /// as JSON, its `distributionID` as message id (so a receiver can tell a repeat). The
    /// future owns what it needs, so the link stays free while the broker answers.
    pub fn publish(
        &self,
        config: &HubConfig,
        distribution_id: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = lapin::Result<PublisherConfirm>> + Send + 'static {
        let channel = self.channel.clone();
        let exchange = config.exchange.clone();
        let routing_key = config.client_id.clone();
        let properties = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_content_type("application/json".into())
            .with_message_id(distribution_id.to_owned().into());
        async move {
            channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await
        }
    }

    /// The next delivery from any of the three queues; `None` when the consumers ended.
    pub async fn next_delivery(&mut self) -> Option<Tagged> {
        self.deliveries.next().await
    }

    /// Closes the connection politely (the broker requeues what was not acknowledged).
    pub async fn close(self) {
        // The link is dropped either way; an error here only means it was already gone.
        let _ = self.connection.close(200, "bye".into()).await;
    }
}
