//! Change segments: what one drain page stored, and where (DESIGN.md, "Backup set format").
//!
//! ```text
//! <database-id>/stream/<chain>/<start-lsn>-<end-lsn>.changes.zst[.age]   the changes
//! <database-id>/stream/<chain>/<start-lsn>-<end-lsn>.json               its seal, written last
//! ```
//! A chain is one slot's life: its segments follow each other without a gap (each starts at
//! the LSN the previous one ended at). A seal records the LSN range, the time up to which the
//! database is recoverable with it, every transaction (full xid, commit LSN, commit time, and
//! the tables it touched with how many rows it inserted, updated and deleted there and how
//! many TRUNCATEs named them), the sequences as read at the drain and the schema fingerprint.
//! An encrypted segment keeps the transactions and sequences in its private part, as a
//! manifest does: no table name is in its clear part.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::decoding::{Change, TableName};
use super::relations::SchemaChange;
use crate::encryption::{self, EncryptionError, Identities, Recipients};
use crate::stored::{ManifestEncryption, StoredFile};
use backstop_store::layout::DatabaseId;

/// The segment format this engine writes; it reads this one and every older one.
/// 2: the seal records the changes' size before compression (`Segment::plain_bytes`), which a
/// replay holds decompression to.
/// 3: each transaction records the tables it touched, with counts of each kind of change
/// (`Transaction::tables`).
/// 4: a drain's first seal records the schema changes since the drain before
/// (`Segment::schema_changes`).
pub const SEGMENT_FORMAT: u32 = 4;
/// The folder of a database's change segments, beside its backup sets.
pub const STREAM_FOLDER: &str = "stream";
const SEAL_SUFFIX: &str = ".json";

/// A WAL position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

impl std::str::FromStr for Lsn {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not an LSN (like 0/16B3748)");
        let (high, low) = text.trim().split_once('/').ok_or_else(bad)?;
        let high = u64::from_str_radix(high, 16).map_err(|_| bad())?;
        let low = u64::from_str_radix(low, 16).map_err(|_| bad())?;
        if high > 0xffff_ffff || low > 0xffff_ffff {
            return Err(bad());
        }
        Ok(Lsn((high << 32) | low))
    }
}

impl Serialize for Lsn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A snapshot as `pg_current_snapshot()` prints it: `xmin:xmax:xip,...` (64-bit xids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub xmin: u64,
    pub xmax: u64,
    pub in_progress: Vec<u64>,
}

impl Snapshot {
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.trim().splitn(3, ':');
        let xmin = fields.next()?.parse().ok()?;
        let xmax = fields.next()?.parse().ok()?;
        let in_progress = match fields.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?,
        };
        Some(Self {
            xmin,
            xmax,
            in_progress,
        })
    }

    /// Whether the rows of transaction `xid` (committed) are in the snapshot.
    pub fn sees(&self, xid: u64) -> bool {
        xid < self.xmin || (xid < self.xmax && !self.in_progress.contains(&xid))
    }
}

/// The 64-bit xid of a 32-bit one decoded before `reference` (a full xid assigned later).
pub fn widen_xid(xid: u32, reference: u64) -> u64 {
    let candidate = (reference & !0xffff_ffff) | u64::from(xid);
    if candidate > reference {
        candidate.saturating_sub(1 << 32)
    } else {
        candidate
    }
}

/// One transaction of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Full (epoch-widened) xid, comparable with a base's snapshot.
    pub xid: u64,
    /// The end of its commit record.
    pub commit_lsn: Lsn,
    #[serde(with = "time::serde::rfc3339")]
    pub commit_time: OffsetDateTime,
    pub changes: u64,
    /// The tables it touched, one entry each, sorted by name. Empty before format 3
    /// (`Segment::records_tables`), which says nothing of what the transaction touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableTouch>,
}

/// A table one transaction touched, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableTouch {
    /// Quoted, schema-qualified, as `decoding::TableName`'s Display writes it (e.g.
    /// `public.orders`, `app."Users"`).
    pub table: String,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    /// TRUNCATE statements that named the table.
    pub truncates: u64,
}

/// A kind of change, as a transaction counts them per table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
    Truncate,
}

impl ChangeKind {
    /// The kind test_decoding prints as `action` (`INSERT`, `UPDATE`, `DELETE`, `TRUNCATE`).
    pub fn of_action(action: &str) -> Option<Self> {
        match action {
            "INSERT" => Some(Self::Insert),
            "UPDATE" => Some(Self::Update),
            "DELETE" => Some(Self::Delete),
            "TRUNCATE" => Some(Self::Truncate),
            _ => None,
        }
    }
}

/// The tables an open transaction has touched so far, counted as its changes are read.
#[derive(Debug, Default)]
pub struct TableTally(HashMap<TableName, TableTouch>);

impl TableTally {
    /// Counts one change of `kind` to `table`.
    pub fn count(&mut self, table: TableName, kind: ChangeKind) {
        let touch = self.0.entry(table).or_insert_with_key(|table| TableTouch {
            table: table.to_string(),
            inserts: 0,
            updates: 0,
            deletes: 0,
            truncates: 0,
        });
        match kind {
            ChangeKind::Insert => touch.inserts += 1,
            ChangeKind::Update => touch.updates += 1,
            ChangeKind::Delete => touch.deletes += 1,
            ChangeKind::Truncate => touch.truncates += 1,
        }
    }

    /// Counts a parsed change: one for its table, or for each table a TRUNCATE named.
    pub fn count_change(&mut self, change: Change) {
        match change {
            Change::Insert { table, .. } => self.count(table, ChangeKind::Insert),
            Change::Update { table, .. } => self.count(table, ChangeKind::Update),
            Change::Delete { table, .. } => self.count(table, ChangeKind::Delete),
            Change::Truncate { tables, .. } => {
                for table in tables {
                    self.count(table, ChangeKind::Truncate);
                }
            }
        }
    }

    /// What the transaction's seal records: one entry per table, sorted by name.
    pub fn into_touches(self) -> Vec<TableTouch> {
        let mut touches: Vec<TableTouch> = self.0.into_values().collect();
        touches.sort_by(|a, b| a.table.cmp(&b.table));
        touches
    }
}

/// A sequence as the drain read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceReading {
    /// Quoted, schema-qualified.
    pub sequence: String,
    pub last_value: i64,
    pub is_called: bool,
}

/// A segment's seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub format_version: u32,
    pub engine_version: String,
    pub database_id: String,
    pub slot: String,
    /// The chain (one slot's life) this segment continues.
    pub chain: String,
    pub start_lsn: Lsn,
    pub end_lsn: Lsn,
    /// With this segment, the database can be recovered to any time up to this.
    #[serde(with = "time::serde::rfc3339")]
    pub through: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub drained_at: OffsetDateTime,
    /// The schema as the drain saw it (`stream::fingerprint`).
    pub fingerprint: String,
    /// The stored changes: key relative to the database's folder.
    pub changes: StoredFile,
    /// The changes' size before compression (and encryption): no replay decompresses more
    /// (a zstd bomb stops there). Absent before format 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_bytes: Option<u64>,
    pub transaction_count: u64,
    pub change_count: u64,
    /// Tables with UPDATE or DELETE changes here that cannot be replayed (no replica identity).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreplayable: Vec<String>,
    #[serde(default)]
    pub transactions: Vec<Transaction>,
    #[serde(default)]
    pub sequences: Vec<SequenceReading>,
    /// Tables created, altered or dropped since the drain before (`stream::relations`), in
    /// the first seal of the drain that saw them. Empty before format 4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema_changes: Vec<SchemaChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<ManifestEncryption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<String>,
}

/// Why a stored segment cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("segment {key}: {reason}")]
    Unreadable { key: String, reason: String },
    #[error(
        "segment {key} is encrypted to {recipients}; pass --identity with the key of one of them"
    )]
    NoIdentity { key: String, recipients: String },
    #[error("segment {key}: {source}")]
    Decrypt {
        key: String,
        source: EncryptionError,
    },
}

impl Segment {
    /// `stream/<chain>/<start>-<end>`: the segment's name without suffix, relative to the
    /// database's folder.
    pub fn stem(chain: &str, start: Lsn, end: Lsn) -> String {
        format!("{STREAM_FOLDER}/{chain}/{:016X}-{:016X}", start.0, end.0)
    }

    /// The seal's key relative to the store.
    pub fn seal_key(database: &DatabaseId, chain: &str, start: Lsn, end: Lsn) -> String {
        format!("{database}/{}{SEAL_SUFFIX}", Self::stem(chain, start, end))
    }

    /// Whether its transactions record the tables they touched (format 3 on). A transaction of
    /// an older seal has no tables recorded whatever it changed: a reader must not conclude
    /// from one that it touched no table.
    pub fn records_tables(&self) -> bool {
        self.format_version >= 3
    }

    /// The changes' key relative to the store.
    pub fn changes_key(&self, database: &DatabaseId) -> String {
        format!("{database}/{}", self.changes.key)
    }

    fn compute_seal(&self) -> String {
        use sha2::Digest as _;
        let unsealed = Segment {
            seal: None,
            ..self.clone()
        };
        hex::encode(sha2::Sha256::digest(
            serde_json::to_vec(&unsealed).unwrap_or_default(),
        ))
    }

    pub fn sealed(self) -> Self {
        let seal = self.compute_seal();
        Segment {
            seal: Some(seal),
            ..self
        }
    }

    /// What is stored: as it is, or with its transactions and sequences encrypted.
    pub fn stored(&self, recipients: Option<&Recipients>) -> Result<Segment, EncryptionError> {
        use base64::Engine as _;
        let Some(recipients) = recipients else {
            return Ok(self.clone().sealed());
        };
        // The schema changes name tables: private too (a third element, when there are any).
        let private = match self.schema_changes.is_empty() {
            true => serde_json::to_vec(&(&self.transactions, &self.sequences)),
            false => {
                serde_json::to_vec(&(&self.transactions, &self.sequences, &self.schema_changes))
            }
        }
        .map_err(|e| EncryptionError::Encrypt(e.to_string()))?;
        let private = encryption::encrypt_bytes(recipients, &private)?;
        Ok(Segment {
            transactions: Vec::new(),
            sequences: Vec::new(),
            schema_changes: Vec::new(),
            encryption: Some(ManifestEncryption {
                recipients: recipients.names().to_vec(),
                private: Some(base64::engine::general_purpose::STANDARD.encode(private)),
            }),
            seal: None,
            ..self.clone()
        }
        .sealed())
    }

    /// Reads a stored seal and checks it, leaving an encrypted private part as it is: what the
    /// clear part says (LSNs, times, fingerprint, sizes) needs no key.
    pub fn read_sealed(key: &str, bytes: &[u8]) -> Result<Segment, SegmentError> {
        let unreadable = |reason: String| SegmentError::Unreadable {
            key: key.to_string(),
            reason,
        };
        let segment: Segment =
            serde_json::from_slice(bytes).map_err(|e| unreadable(e.to_string()))?;
        if segment.format_version > SEGMENT_FORMAT {
            return Err(unreadable(format!(
                "format version {} is newer than this Backstop understands; upgrade Backstop",
                segment.format_version
            )));
        }
        if segment.seal.as_deref() != Some(segment.compute_seal().as_str()) {
            return Err(unreadable(
                "it was changed after the drain wrote it (its seal does not match)".into(),
            ));
        }
        Ok(segment)
    }

    /// Reads a stored seal: checks it, and decrypts its private part with `identities`.
    pub fn open(
        key: &str,
        bytes: &[u8],
        identities: Option<&Identities>,
    ) -> Result<Segment, SegmentError> {
        use base64::Engine as _;
        let unreadable = |reason: String| SegmentError::Unreadable {
            key: key.to_string(),
            reason,
        };
        let segment = Self::read_sealed(key, bytes)?;
        let Some(private) = segment.encryption.as_ref().and_then(|e| e.private.clone()) else {
            return Ok(segment);
        };
        let recipients = segment
            .encryption
            .as_ref()
            .map(|e| e.recipients.clone())
            .unwrap_or_default();
        let Some(identities) = identities else {
            return Err(SegmentError::NoIdentity {
                key: key.to_string(),
                recipients: recipients.join(", "),
            });
        };
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(private)
            .map_err(|_| unreadable("its private part is not base64".into()))?;
        let json =
            encryption::decrypt_bytes(identities, &ciphertext, &recipients).map_err(|source| {
                SegmentError::Decrypt {
                    key: key.to_string(),
                    source,
                }
            })?;
        type Private = (Vec<Transaction>, Vec<SequenceReading>, Vec<SchemaChange>);
        let (transactions, sequences, schema_changes): Private =
            match serde_json::from_slice::<Private>(&json) {
                Ok(private) => private,
                Err(_) => {
                    let (transactions, sequences): (Vec<Transaction>, Vec<SequenceReading>) =
                        serde_json::from_slice(&json).map_err(|e| unreadable(e.to_string()))?;
                    (transactions, sequences, Vec::new())
                }
            };
        Ok(Segment {
            transactions,
            sequences,
            schema_changes,
            encryption: Some(ManifestEncryption {
                recipients,
                private: None,
            }),
            ..segment
        })
    }
}

/// The seal keys among `keys` of one database, in chain and LSN order.
pub fn seal_keys<'a>(
    database: &DatabaseId,
    keys: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let prefix = format!("{database}/{STREAM_FOLDER}/");
    let mut seals: Vec<String> = keys
        .into_iter()
        .filter(|k| k.starts_with(&prefix) && k.ends_with(SEAL_SUFFIX))
        .map(str::to_string)
        .collect();
    seals.sort();
    seals
}

/// Where the newest chain among `seal_keys` (as [`seal_keys`] orders them) skips changes:
/// each segment starts where the one before it ended, so a segment whose start is past the
/// previous end means the changes between are stored nowhere. One line per gap.
pub fn gaps(seal_keys: &[String]) -> Vec<String> {
    let parsed: Vec<(&str, u64, u64)> = seal_keys
        .iter()
        .filter_map(|key| {
            let rest = &key[key.find(&format!("/{STREAM_FOLDER}/"))? + STREAM_FOLDER.len() + 2..];
            let (chain, name) = rest.rsplit_once('/')?;
            let (start, end) = name.strip_suffix(SEAL_SUFFIX)?.split_once('-')?;
            Some((
                chain,
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect();
    let Some((newest, _, _)) = parsed.last() else {
        return Vec::new();
    };
    let chain: Vec<&(&str, u64, u64)> = parsed.iter().filter(|(c, _, _)| c == newest).collect();
    chain
        .windows(2)
        .filter(|pair| pair[1].1 > pair[0].2)
        .map(|pair| {
            format!(
                "changes from {} to {} of chain {newest} are in no segment",
                Lsn(pair[0].2),
                Lsn(pair[1].1)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::decoding::{Decoded, parse};

    #[test]
    fn a_segment_missing_inside_the_newest_chain_is_a_gap() {
        let db = DatabaseId::new("main").unwrap();
        let key =
            |chain: &str, start: u64, end: u64| Segment::seal_key(&db, chain, Lsn(start), Lsn(end));
        let whole = vec![key("a", 0, 5), key("b", 10, 20), key("b", 20, 30)];
        assert!(gaps(&whole).is_empty());
        let holed = vec![key("a", 0, 5), key("b", 10, 20), key("b", 40, 50)];
        let found = gaps(&holed);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].contains(&Lsn(20).to_string()) && found[0].contains(&Lsn(40).to_string()),
            "{found:?}"
        );
        // An older chain's holes are history: retention takes its segments oldest first.
        let old = vec![key("a", 0, 5), key("a", 9, 12), key("b", 10, 20)];
        assert!(gaps(&old).is_empty());
    }

    #[test]
    fn lsns_print_and_parse_as_postgres_does() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("16B374D848".parse::<Lsn>().is_err());
        assert!(Lsn(0x1_0000_0000) > Lsn(0xffff_ffff));
    }

    #[test]
    fn a_snapshot_sees_what_committed_before_it() {
        let snapshot = Snapshot::parse("100:110:103,107").unwrap();
        assert!(snapshot.sees(99));
        assert!(snapshot.sees(104));
        assert!(!snapshot.sees(103));
        assert!(!snapshot.sees(110));
        assert!(!snapshot.sees(500));
        assert_eq!(
            Snapshot::parse("5:5:").unwrap().in_progress,
            Vec::<u64>::new()
        );
        assert!(Snapshot::parse("nonsense").is_none());
    }

    #[test]
    fn xids_widen_into_the_epoch_of_the_reference() {
        let epoch2 = 2u64 << 32;
        assert_eq!(widen_xid(100, epoch2 + 500), epoch2 + 100);
        // Decoded before the wraparound the reference is past: the previous epoch.
        assert_eq!(
            widen_xid(0xffff_fff0, epoch2 + 5),
            (1u64 << 32) + 0xffff_fff0
        );
        assert_eq!(widen_xid(7, 7), 7);
    }

    fn segment(transactions: Vec<Transaction>) -> Segment {
        Segment {
            format_version: SEGMENT_FORMAT,
            engine_version: "test".into(),
            database_id: "main".into(),
            slot: "backstop_main".into(),
            chain: "c1".into(),
            start_lsn: Lsn(10),
            end_lsn: Lsn(20),
            through: time::macros::datetime!(2026-12-01 10:00 UTC),
            drained_at: time::macros::datetime!(2026-12-01 10:00 UTC),
            fingerprint: "f".into(),
            changes: StoredFile {
                key: "stream/c1/x.changes.zst".into(),
                bytes: 1,
                sha256: "00".into(),
            },
            plain_bytes: None,
            transaction_count: 1,
            change_count: 1,
            unreplayable: Vec::new(),
            transactions,
            sequences: vec![SequenceReading {
                sequence: "public.s".into(),
                last_value: 3,
                is_called: true,
            }],
            schema_changes: Vec::new(),
            encryption: None,
            seal: None,
        }
    }

    fn transaction(tables: Vec<TableTouch>) -> Transaction {
        Transaction {
            xid: 5,
            commit_lsn: Lsn(15),
            commit_time: time::macros::datetime!(2026-12-01 09:59 UTC),
            changes: 1,
            tables,
        }
    }

    fn touch(table: &str, counts: [u64; 4]) -> TableTouch {
        let [inserts, updates, deletes, truncates] = counts;
        TableTouch {
            table: table.into(),
            inserts,
            updates,
            deletes,
            truncates,
        }
    }

    #[test]
    fn seals_detect_edits_and_keep_private_parts_private() {
        let segment = segment(vec![transaction(Vec::new())]);
        let plain = serde_json::to_vec(&segment.stored(None).unwrap()).unwrap();
        assert_eq!(
            Segment::open("k", &plain, None).unwrap().transactions.len(),
            1
        );
        let edited = String::from_utf8(plain)
            .unwrap()
            .replace("\"xid\":5", "\"xid\":6");
        assert!(Segment::open("k", edited.as_bytes(), None).is_err());

        let (secret, public) = encryption::generate();
        let recipients = Recipients::parse(&[public]).unwrap();
        let stored = serde_json::to_vec(&segment.stored(Some(&recipients)).unwrap()).unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains("public.s"));
        assert!(matches!(
            Segment::open("k", &stored, None),
            Err(SegmentError::NoIdentity { .. })
        ));
        let identities = Identities::parse(&secret).unwrap();
        let opened = Segment::open("k", &stored, Some(&identities)).unwrap();
        assert_eq!(opened.sequences, segment.sequences);
        assert_eq!(opened.transactions, segment.transactions);
    }

    #[test]
    fn a_transaction_counts_each_table_once_sorted_by_name() {
        let name = |schema: &str, name: &str| TableName {
            schema: schema.into(),
            name: name.into(),
        };
        let mut tally = TableTally::default();
        tally.count(name("public", "orders"), ChangeKind::Insert);
        tally.count(name("app", "Users"), ChangeKind::Update);
        tally.count(name("public", "orders"), ChangeKind::Insert);
        tally.count(name("app", "Users"), ChangeKind::Delete);
        let Decoded::Change(truncate) =
            parse("table public.a, app.\"Users\": TRUNCATE: (no-flags)").unwrap()
        else {
            panic!("a truncate is a change")
        };
        tally.count_change(truncate);
        assert_eq!(
            tally.into_touches(),
            vec![
                touch("app.\"Users\"", [0, 1, 1, 1]),
                touch("public.a", [0, 0, 0, 1]),
                touch("public.orders", [2, 0, 0, 0]),
            ]
        );
        assert_eq!(
            ChangeKind::of_action("TRUNCATE"),
            Some(ChangeKind::Truncate)
        );
        assert_eq!(ChangeKind::of_action("MERGE"), None);
    }

    #[test]
    fn tables_round_trip_and_older_seals_without_them_still_read() {
        let touched = segment(vec![transaction(vec![
            touch("app.\"Users\"", [0, 2, 1, 0]),
            touch("public.orders", [3, 0, 0, 1]),
        ])]);
        let stored = serde_json::to_vec(&touched.stored(None).unwrap()).unwrap();
        let opened = Segment::open("k", &stored, None).unwrap();
        assert_eq!(opened.transactions, touched.transactions);
        assert!(opened.records_tables());

        // A transaction that touched nothing countable writes no `tables` at all.
        let untouched = serde_json::to_value(transaction(Vec::new())).unwrap();
        assert!(untouched.get("tables").is_none(), "{untouched}");

        // A format 2 seal, as a drain before tables wrote it.
        let mut old = serde_json::to_value(segment(vec![transaction(Vec::new())])).unwrap();
        old["format_version"] = 2.into();
        let old: Segment = serde_json::from_value(old).unwrap();
        let stored = serde_json::to_vec(&old.stored(None).unwrap()).unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains("\"tables\""));
        let opened = Segment::open("k", &stored, None).unwrap();
        assert_eq!(opened.transactions[0].tables, Vec::new());
        assert!(!opened.records_tables());
    }

    #[test]
    fn an_encrypted_seal_names_no_table_in_the_clear() {
        let mut touched = segment(vec![transaction(vec![
            touch("app.\"Users\"", [0, 2, 1, 0]),
            touch("secret_schema.payroll", [1, 0, 0, 0]),
        ])]);
        touched.schema_changes = vec![SchemaChange {
            table: Some("secret_schema.bonuses".into()),
            change: super::super::relations::SchemaChangeKind::Dropped,
            xid: None,
        }];
        let (secret, public) = encryption::generate();
        let recipients = Recipients::parse(&[public]).unwrap();
        let stored = serde_json::to_vec(&touched.stored(Some(&recipients)).unwrap()).unwrap();
        let clear = String::from_utf8_lossy(&stored);
        for hidden in [
            "payroll",
            "secret_schema",
            "bonuses",
            "Users",
            "\"tables\"",
            "inserts",
        ] {
            assert!(!clear.contains(hidden), "{hidden} in {clear}");
        }
        // Without the key, the clear part still reads, with no transactions at all.
        let sealed = Segment::read_sealed("k", &stored).unwrap();
        assert!(sealed.transactions.is_empty());
        let identities = Identities::parse(&secret).unwrap();
        let opened = Segment::open("k", &stored, Some(&identities)).unwrap();
        assert_eq!(opened.transactions, touched.transactions);
        assert_eq!(opened.schema_changes, touched.schema_changes);
        // A seal without schema changes keeps the older private part, which still opens.
        touched.schema_changes.clear();
        let stored = serde_json::to_vec(&touched.stored(Some(&recipients)).unwrap()).unwrap();
        let opened = Segment::open("k", &stored, Some(&identities)).unwrap();
        assert_eq!(opened.transactions, touched.transactions);
    }
}
