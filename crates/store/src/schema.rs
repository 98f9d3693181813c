//! The store's schema, its version, and the steps from each older version to it.

/// Who wrote what in a text conversation: in a new file and added by the step from version 4.
macro_rules! transcript_table {
    () => {
        "
CREATE TABLE IF NOT EXISTS transcript (
    call INTEGER NOT NULL,
    at INTEGER NOT NULL,
    author TEXT NOT NULL,
    login TEXT,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transcript_call ON transcript(call);
"
    };
}

/// The CISU messages of a call, sent to partners or received from them, with their delivery
/// state and the JSON that went on the wire: in a new file and added by the step from version 5.
macro_rules! case_messages_table {
    () => {
        "
CREATE TABLE IF NOT EXISTS case_messages (
    distribution_id TEXT PRIMARY KEY,
    call INTEGER,
    direction TEXT NOT NULL,
    partner TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS case_messages_call ON case_messages(call);
"
    };
}

/// Version 2 added `calls.offered`, so rows made for writes that arrived before their call's
/// `Offered` are kept but not listed as calls. Version 3 added `meta`, which keeps the highest
/// call number the platform may have handed out, so that numbers are never reused after a crash.
/// Version 4 added `alone`: the calls a cluster node served alone and has not yet seen given
/// back to the log, so that a node that dies meanwhile gives them back when it starts again.
/// Version 5 added text conversations: the call's `medium`, its transcript's seal and the
/// `transcript` table of who wrote what. Version 6 added `case_messages`, the cases handed to
/// partners through the Hub Santé.
pub(crate) const SCHEMA_VERSION: i64 = 6;

/// The whole schema, for a new file.
pub(crate) const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS calls (
    call INTEGER PRIMARY KEY,
    emergency_call_id TEXT NOT NULL,
    caller TEXT,
    service TEXT NOT NULL,
    offered_at INTEGER NOT NULL,
    queued_at INTEGER,
    answered_at INTEGER,
    ended_at INTEGER,
    lat REAL,
    lon REAL,
    radius_m REAL,
    location_source TEXT NOT NULL,
    departement TEXT NOT NULL,
    commune TEXT,
    insee TEXT,
    trunk TEXT,
    cta TEXT,
    call_taker TEXT,
    outcome TEXT,
    reason TEXT,
    recording_path TEXT,
    recording_sha256 TEXT,
    recording_ms INTEGER,
    offered INTEGER NOT NULL DEFAULT 1,
    medium TEXT NOT NULL DEFAULT 'voice',
    transcript_sha256 TEXT
);
CREATE INDEX IF NOT EXISTS calls_offered_at ON calls(offered_at);
CREATE TABLE IF NOT EXISTS trail (
    call INTEGER NOT NULL,
    at INTEGER NOT NULL,
    step TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trail_call ON trail(call);
CREATE TABLE IF NOT EXISTS callbacks (
    call INTEGER PRIMARY KEY,
    cta TEXT NOT NULL,
    state TEXT NOT NULL,
    taken_by TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS callbacks_cta_state ON callbacks(cta, state);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alone (
    call INTEGER PRIMARY KEY
);
",
    transcript_table!(),
    case_messages_table!()
);

/// From version 5: the cases handed to partners.
pub(crate) const MIGRATE_5_TO_6: &str = case_messages_table!();

/// From version 4: text conversations.
pub(crate) const MIGRATE_4_TO_5: &str = concat!(
    "
ALTER TABLE calls ADD COLUMN medium TEXT NOT NULL DEFAULT 'voice';
ALTER TABLE calls ADD COLUMN transcript_sha256 TEXT;
",
    transcript_table!()
);

/// From version 3: the calls served alone, not yet given back to the cluster's log.
pub(crate) const MIGRATE_3_TO_4: &str = "
CREATE TABLE IF NOT EXISTS alone (
    call INTEGER PRIMARY KEY
);
";

/// From version 2: the table of counters.
pub(crate) const MIGRATE_2_TO_3: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// From version 1: placeholder rows were those with an empty call identifier and no source.
pub(crate) const MIGRATE_1_TO_2: &str = "
ALTER TABLE calls ADD COLUMN offered INTEGER NOT NULL DEFAULT 1;
UPDATE calls SET offered = 0 WHERE emergency_call_id = '' AND location_source = 'unknown';
";
