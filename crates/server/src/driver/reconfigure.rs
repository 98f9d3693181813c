//! A configuration taken without a restart: read and checked here, then given to the core
//! (in a cluster, to the log first, from which every node takes it at the same place among
//! the inputs), journaled for replays, and shown to supervision.

use std::sync::Arc;

use secourir_cluster::Input;
use secourir_config::Plan;
use secourir_core::{Command, Instant};
use secourir_http::ConfigStatus;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::Driver;
use crate::ConfigReader;

/// The configuration in force, and how a new one is read.
#[derive(Debug, Default)]
pub(crate) struct Config {
    read: Option<ConfigReader>,
    /// Its text: the first entry of a new cluster log, so that every node, whatever file it
    /// starts from, applies the log from the same configuration.
    pub(crate) text: String,
    sha256: String,
    changes: u64,
    changed_at: Option<u64>,
    /// The first configuration of the log this node refused, with why.
    pub(crate) refused: Option<(u64, String)>,
}

impl Config {
    /// The configuration the platform started with (`text`), and its reader.
    pub(crate) fn new(read: ConfigReader, text: &str) -> Config {
        Config {
            read: Some(read),
            text: text.to_owned(),
            sha256: digest(text),
            changes: 0,
            changed_at: None,
            refused: None,
        }
    }

    /// What supervision is shown.
    pub(crate) fn status(&self) -> ConfigStatus {
        ConfigStatus {
            sha256: self.sha256.clone(),
            changes: self.changes,
            changed_at: self.changed_at,
        }
    }

    fn read(&self, text: &str) -> Result<Plan, String> {
        match &self.read {
            Some(read) => read.read(text),
            None => Err("this platform cannot read a configuration".to_owned()),
        }
    }
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Driver {
    /// A new configuration's text, from the operator (SIGHUP): refused with the reason when
    /// it does not read or changes what needs a restart; taken at once on one machine, and in
    /// a cluster given to the log, from which every node (this one too) takes it.
    pub(super) fn reconfigure(
        &mut self,
        text: String,
        reply: oneshot::Sender<Result<String, String>>,
    ) {
        let checked = self
            .config
            .read(&text)
            .and_then(|plan| self.plan.may_become(&plan).map(|()| plan));
        let answer = match checked {
            Err(why) => {
                warn!(reason = %why, "new configuration refused; the one in force stays");
                let now = self.clock.now();
                self.audit_config(
                    secourir_audit::ConfigurationChangeType::Refused,
                    &text,
                    Some(why.clone()),
                    now,
                );
                Err(why)
            }
            Ok(plan) => match &mut self.node {
                Some(node) => {
                    let at = self.clock.now().0;
                    node.give(Input::Config { at, text });
                    Ok("given to the cluster log: every node takes it from there".to_owned())
                }
                None => {
                    let now = self.clock.now();
                    self.take_plan(Arc::new(plan), &text, now)
                        .map(|()| "taken without a restart".to_owned())
                }
            },
        };
        let _ = reply.send(answer);
    }

    /// A configuration of the cluster's log (entry `seq`): every node reads it and takes it
    /// alike, or refuses it alike (the same code, the same core). The one in force already is
    /// left as it is.
    pub(super) fn apply_config(&mut self, seq: u64, text: &str, now: Instant) {
        if digest(text) == self.config.sha256 {
            return;
        }
        let taken = self
            .config
            .read(text)
            .and_then(|plan| self.take_plan(Arc::new(plan), text, now));
        if let Err(why) = taken {
            warn!(seq, reason = %why, "configuration of the cluster log refused");
            self.config.refused.get_or_insert((seq, why));
        }
    }

    /// Starts from a core restored from a cluster snapshot, with the configuration in force
    /// then (`text`), instead of a fresh core.
    pub(crate) fn resume(&mut self, core: secourir_core::Core, text: &str) {
        self.plan = core.plan().clone();
        self.texts.set_plan(self.plan.clone());
        self.core = core;
        text.clone_into(&mut self.config.text);
        self.config.sha256 = digest(text);
    }

    /// Writes in the store what a snapshot of another node at entry `seq` says of the calls
    /// still of use: a node starting from it has none of their earlier records.
    pub(crate) fn seed(&mut self, records: &[(u64, secourir_cluster::OfferedRecord)], seq: u64) {
        self.records.seed(records, &self.core, seq);
    }

    /// Gives `plan` to the core and carries out what it leads to.
    fn take_plan(&mut self, plan: Arc<Plan>, text: &str, now: Instant) -> Result<(), String> {
        let input = secourir_core::Input::Plan(plan.clone());
        let commands: Vec<Command> = self.core.apply(input, now)?.collect();
        if let Some(journal) = &mut self.journal {
            journal.record_config(now, text);
        }
        self.audit_config(
            secourir_audit::ConfigurationChangeType::Changed,
            text,
            None,
            now,
        );
        self.plan = plan;
        self.texts.set_plan(self.plan.clone());
        text.clone_into(&mut self.config.text);
        self.config.sha256 = digest(text);
        self.config.changes += 1;
        self.config.changed_at = Some(now.0);
        info!(sha256 = %self.config.sha256, "configuration taken without a restart");
        self.records.board.note(
            now,
            "plateforme",
            format!(
                "configuration prise en compte sans redémarrage (empreinte {})",
                &self.config.sha256[..12]
            ),
        );
        self.carry_out_all(commands, now);
        Ok(())
    }

    /// A configuration loaded, changed or refused, in the audit trail.
    fn audit_config(
        &self,
        change_type: secourir_audit::ConfigurationChangeType,
        text: &str,
        summary: Option<String>,
        now: Instant,
    ) {
        let Some(trail) = &self.records.audit else {
            return;
        };
        trail.log(
            trail.common(now.0, None),
            secourir_audit::Body::ConfigurationChange(secourir_audit::ConfigurationChange {
                change_type,
                sha256: digest(text),
                previous_sha256: Some(self.config.sha256.clone()),
                source: "operator".into(),
                editor: None,
                summary,
            }),
        );
    }
}
