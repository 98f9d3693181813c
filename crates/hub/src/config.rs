//! The hub connection's settings, from TOML. On the real hub the platform authenticates with its
//! certificate (mTLS, SASL EXTERNAL): the files are named here and read when connecting.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::{AMQPScheme, AMQPUri, SASLMechanism};
use secourir_cisu::DeliveryConfig;
use serde::Deserialize;

/// The hub's topic exchange, where every client publishes.
pub const DEFAULT_EXCHANGE: &str = "hubsante";

/// How the platform reaches the hub.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// `amqp://127.0.0.1:5672/%2f` for a local broker, `amqps://…:5671/{vhost}` for the hub.
    pub uri: String,
    /// The platform's client id on the hub: its `senderID`, routing key and queue prefix.
    pub client_id: String,
    /// The exchange to publish to.
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// The outbox's SQLite file.
    pub outbox: PathBuf,
    /// Certificates for mTLS; without them the connection is plain AMQP with the URI's user.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Delays of the delivery tracker.
    #[serde(default)]
    pub delivery: DeliverySettings,
    /// First wait before reconnecting.
    #[serde(default = "default_reconnect_first_ms")]
    pub reconnect_first_ms: i64,
    /// Longest wait between reconnections.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: i64,
    /// How long the acknowledgements the platform sends stay deliverable.
    #[serde(default = "default_ack_valid_ms")]
    pub ack_valid_ms: i64,
    /// Ended messages are kept this long in the outbox for inquiry, then pruned at start.
    #[serde(default = "default_keep_ended_ms")]
    pub keep_ended_ms: i64,
    /// Events the platform has not read yet, at most; past it the driver waits for the reader.
    #[serde(default = "default_events_max")]
    pub events_max: usize,
}

/// The certificate files of the platform's identity on the hub (PEM).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The authorities that sign the hub's certificate.
    pub ca_cert: PathBuf,
    /// The platform's certificate, with its chain.
    pub client_cert: PathBuf,
    /// The platform's private key (PKCS #8).
    pub client_key: PathBuf,
}

/// The tracker's delays, in the configuration's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// See [`DeliveryConfig::retry_first_ms`].
    pub retry_first_ms: i64,
    /// See [`DeliveryConfig::retry_max_ms`].
    pub retry_max_ms: i64,
    /// See [`DeliveryConfig::confirm_timeout_ms`].
    pub confirm_timeout_ms: i64,
    /// See [`DeliveryConfig::overdue_after_ms`].
    pub overdue_after_ms: i64,
    /// See [`DeliveryConfig::messages_max`].
    pub messages_max: usize,
}

impl Default for DeliverySettings {
    fn default() -> DeliverySettings {
        let config = DeliveryConfig::default();
        DeliverySettings {
            retry_first_ms: config.retry_first_ms,
            retry_max_ms: config.retry_max_ms,
            confirm_timeout_ms: config.confirm_timeout_ms,
            overdue_after_ms: config.overdue_after_ms,
            messages_max: config.messages_max,
        }
    }
}

impl From<DeliverySettings> for DeliveryConfig {
    fn from(settings: DeliverySettings) -> DeliveryConfig {
        DeliveryConfig {
            retry_first_ms: settings.retry_first_ms,
            retry_max_ms: settings.retry_max_ms,
            confirm_timeout_ms: settings.confirm_timeout_ms,
            overdue_after_ms: settings.overdue_after_ms,
            messages_max: settings.messages_max,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML does not parse or holds unknown keys.
    #[error("hub configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// A file named by the configuration cannot be read.
    #[error("hub configuration: {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value is out of its range or shape.
    #[error("hub configuration: {0}")]
    Invalid(String),
}

impl HubConfig {
    /// A configuration with every delay at its default.
    pub fn new(uri: String, client_id: String, exchange: String, outbox: PathBuf) -> HubConfig {
        HubConfig {
            uri,
            client_id,
            exchange,
            outbox,
            tls: None,
            delivery: DeliverySettings::default(),
            reconnect_first_ms: default_reconnect_first_ms(),
            reconnect_max_ms: default_reconnect_max_ms(),
            ack_valid_ms: default_ack_valid_ms(),
            keep_ended_ms: default_keep_ended_ms(),
            events_max: default_events_max(),
        }
    }

    /// Reads and checks a configuration from its TOML text.
    pub fn from_toml(text: &str) -> Result<HubConfig, ConfigError> {
        let config: HubConfig = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<HubConfig, ConfigError> {
        HubConfig::from_toml(&read(path)?)
    }

    /// Refuses what would fail later, far from its cause.
    pub fn check(&self) -> Result<(), ConfigError> {
        let id_ok = !self.client_id.is_empty()
            && self
                .client_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !id_ok {
            return Err(ConfigError::Invalid(format!(
                "client_id {:?}",
                self.client_id
            )));
        }
        let uri =
            AMQPUri::from_str(&self.uri).map_err(|e| ConfigError::Invalid(format!("uri: {e}")))?;
        if self.tls.is_some() && uri.scheme != AMQPScheme::AMQPS {
            return Err(ConfigError::Invalid("tls needs an amqps:// uri".into()));
        }
        let delays = [
            self.reconnect_first_ms,
            self.reconnect_max_ms,
            self.ack_valid_ms,
            self.keep_ended_ms,
            self.delivery.retry_first_ms,
            self.delivery.confirm_timeout_ms,
            self.delivery.overdue_after_ms,
        ];
        if delays.iter().any(|&ms| ms <= 0)
            || self.reconnect_max_ms < self.reconnect_first_ms
            || self.delivery.retry_max_ms < self.delivery.retry_first_ms
            || self.delivery.messages_max == 0
            || self.events_max == 0
        {
            return Err(ConfigError::Invalid(
                "delays must be positive, maxima above firsts".into(),
            ));
        }
        Ok(())
    }

    /// The URI and TLS settings to connect with, the certificate files read now. With
    /// certificates the platform authenticates by them (SASL EXTERNAL), as the hub requires.
    pub fn connection_target(&self) -> Result<(AMQPUri, OwnedTLSConfig), ConfigError> {
        let mut uri =
            AMQPUri::from_str(&self.uri).map_err(|e| ConfigError::Invalid(format!("uri: {e}")))?;
        let Some(tls) = &self.tls else {
            return Ok((uri, OwnedTLSConfig::default()));
        };
        uri.query.auth_mechanism = Some(SASLMechanism::External);
        let ca = read_pem(&tls.ca_cert)?;
        let cert = read_pem(&tls.client_cert)?;
        let key = read_pem(&tls.client_key)?;
        let config = OwnedTLSConfig {
            identity: Some(OwnedIdentity::PKCS8 {
                pem: cert.into_bytes(),
                key: key.into_bytes(),
            }),
            cert_chain: Some(ca),
        };
        Ok((uri, config))
    }

    /// The queues the hub gives the platform, to consume from.
    pub fn queues(&self) -> [String; 3] {
        ["message", "ack", "info"].map(|suffix| format!("{}.{suffix}", self.client_id))
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::File {
        path: path.to_owned(),
        source,
    })
}

fn read_pem(path: &Path) -> Result<String, ConfigError> {
    let text = read(path)?;
    if !text.contains("-----BEGIN ") {
        return Err(ConfigError::Invalid(format!(
            "{}: not a PEM file",
            path.display()
        )));
    }
    Ok(text)
}

fn default_exchange() -> String {
    DEFAULT_EXCHANGE.to_owned()
}

fn default_reconnect_first_ms() -> i64 {
    500
}

fn default_reconnect_max_ms() -> i64 {
    30_000
}

fn default_ack_valid_ms() -> i64 {
    3_600_000
}

fn default_keep_ended_ms() -> i64 {
    30 * 24 * 3_600_000
}

fn default_events_max() -> usize {
    1_024
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = r#"
        uri = "amqp://guest:guest@127.0.0.1:5672/%2f"
        client_id = "fr.fire.secourir.sdis13"
        outbox = "var/hub-outbox.sqlite"
    "#;

    #[test]
    fn a_plain_configuration_takes_the_defaults() {
        let config = HubConfig::from_toml(PLAIN).unwrap();
        assert_eq!(config.exchange, "hubsante");
        assert_eq!(config.delivery, DeliverySettings::default());
        assert_eq!(config.queues()[1], "fr.fire.secourir.sdis13.ack");
        let (uri, tls) = config.connection_target().unwrap();
        assert_eq!(uri.query.auth_mechanism, None);
        assert!(tls.identity.is_none() && tls.cert_chain.is_none());
    }

    #[test]
    fn certificate_paths_are_read_and_switch_to_external_authentication() {
        let dir = tempfile::tempdir().unwrap();
        for (name, label) in [
            ("ca.pem", "CERTIFICATE"),
            ("me.pem", "CERTIFICATE"),
            ("me.key", "PRIVATE KEY"),
        ] {
            let text = format!("-----BEGIN {label}-----\nMIIB\n-----END {label}-----\n");
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let text = format!(
            r#"
            uri = "amqps://hub.example:5671/15-18_v2.0"
            client_id = "fr.fire.secourir.sdis13"
            outbox = "var/hub.sqlite"
            delivery = {{ overdue_after_ms = 60000 }}
            [tls]
            ca_cert = "{0}/ca.pem"
            client_cert = "{0}/me.pem"
            client_key = "{0}/me.key"
            "#,
            dir.path().display()
        );
        let config = HubConfig::from_toml(&text).unwrap();
        assert_eq!(config.delivery.overdue_after_ms, 60_000);
        let (uri, tls) = config.connection_target().unwrap();
        assert_eq!(uri.query.auth_mechanism, Some(SASLMechanism::External));
        assert_eq!(uri.vhost, "15-18_v2.0");
        assert!(tls.cert_chain.unwrap().contains("BEGIN CERTIFICATE"));
        let Some(OwnedIdentity::PKCS8 { key, .. }) = tls.identity else {
            panic!("no identity")
        };
        assert!(String::from_utf8(key).unwrap().contains("PRIVATE KEY"));

        std::fs::remove_file(dir.path().join("me.key")).unwrap();
        let missing = config.connection_target().unwrap_err().to_string();
        assert!(missing.contains("me.key"), "{missing}");
    }

    #[test]
    fn mistakes_are_refused_with_their_reason() {
        let unknown = HubConfig::from_toml(&format!("{PLAIN}\nexchnage = \"x\"")).unwrap_err();
        assert!(unknown.to_string().contains("exchnage"), "{unknown}");
        let tls_plain =
            format!("{PLAIN}\n[tls]\nca_cert = \"a\"\nclient_cert = \"b\"\nclient_key = \"c\"");
        let refused = HubConfig::from_toml(&tls_plain).unwrap_err().to_string();
        assert!(refused.contains("amqps"), "{refused}");
        let bad_id = PLAIN.replace("fr.fire.secourir.sdis13", "fr.fire/sdis13");
        assert!(HubConfig::from_toml(&bad_id).is_err());
        let zero = format!("{PLAIN}\nreconnect_first_ms = 0");
        assert!(HubConfig::from_toml(&zero).is_err());
    }
}
