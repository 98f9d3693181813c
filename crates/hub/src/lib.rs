//! The platform's seat on the Hub Santé: AMQP 0-9-1 to the hub's RabbitMQ, around the sans-IO
//! CISU crate. A thin shell: the decisions (what to send when, what is
//! overdue, what expired) are `secourir_cisu::Delivery`'s; this crate carries them out.
//!
//! - [`config`]: where the hub is, who the platform is on it, the certificates for mTLS;
//! - [`outbox`]: every message on disk before it is acknowledged to the caller, so that a
//!   restart or a broker outage loses none;
//! - [`link`]: one AMQP connection: publisher confirms, the platform's three queues declared
//!   passively (a hub client may not create them) and consumed;
//! - [`driver`]: the loop that owns the tracker, the outbox and the link, reconnecting with
//!   backoff, and the [`Hub`] handle the platform holds.

pub mod config;
pub mod driver;
pub mod link;
pub mod outbox;
pub mod reconnect;

pub use config::{ConfigError, HubConfig, TlsFiles};
pub use driver::{Hub, HubEvent, SendError, StartError};
pub use outbox::{Outbox, OutboxError};
