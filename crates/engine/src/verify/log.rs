//! The verification log: every verification of a database, one entry each under
//! `_backstop/verifications/<database-id>/`, numbered 1, 2, 3 ... and written create-only.
//! Each entry holds the SHA-256 of the stored bytes of the entry before it, so an entry edited
//! or deleted later is named by the one after it; the newest has no successor, and is checked
//! against what the monitor remembers of it ([`Seen`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::OffsetDateTime;
use tokio::io::AsyncReadExt as _;

use super::{Level, Verdict, Verification};
use backstop_store::layout::{DatabaseId, STATE_PREFIX};
use backstop_store::store::{PutOptions, Store, StoreError};

/// The folder under `_backstop/` that holds every database's log.
pub const LOG_FOLDER: &str = "verifications";
/// Digits of an entry's number in its name.
const SEQ_DIGITS: usize = 12;
/// The highest number an entry's name can carry.
pub const MAX_SEQ: u64 = 999_999_999_999;
/// An entry is a few hundred bytes; anything past this is not one.
const MAX_ENTRY_BYTES: u64 = 1 << 20;
/// Appends tried before giving up when other verifications keep appending first.
const APPEND_ATTEMPTS: u32 = 8;
/// Entries read at once when the chain is read.
const READS_IN_FLIGHT: usize = 16;

/// One verification as the log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// 1, 2, 3 ... with no gaps.
    pub seq: u64,
    /// Lower-case hex SHA-256 of the stored bytes of entry `seq - 1`; `None` only for entry 1.
    pub previous: Option<String>,
    pub database_id: String,
    pub backup_id: String,
    pub level: Level,
    pub verdict: Verdict,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    pub duration_seconds: f64,
    /// At the restore level, the measured recovery time (until ready).
    pub restore_seconds: Option<f64>,
    /// At the restore level, seconds until the restored database was loaded.
    pub loaded_seconds: Option<f64>,
    /// Parts whose SHA-256 was recomputed (0 at the manifest level).
    pub checksums_checked: u64,
    pub findings: usize,
    /// The first finding, when it failed.
    pub problem: Option<String>,
    /// Who ran it, as the runner says: `backstop-verify function (request <id>)`,
    /// `backstop verify (alice@host)`.
    pub by: String,
}

impl Entry {
    fn of(
        verification: &Verification,
        seq: u64,
        previous: Option<String>,
        checksums_checked: u64,
        by: &str,
    ) -> Self {
        Self {
            seq,
            previous,
            database_id: verification.database_id.clone(),
            backup_id: verification.backup_id.clone(),
            level: verification.level,
            verdict: verification.verdict,
            checked_at: verification.checked_at,
            duration_seconds: verification.duration_seconds,
            restore_seconds: verification.restore_seconds,
            loaded_seconds: verification.loaded_seconds,
            checksums_checked,
            findings: verification.findings.len(),
            problem: match verification.verdict {
                Verdict::Passed => None,
                _ => verification.findings.first().map(ToString::to_string),
            },
            by: by.to_string(),
        }
    }
}

/// `_backstop/verifications/<database-id>/`.
pub fn log_prefix(database: &DatabaseId) -> String {
    format!("{STATE_PREFIX}/{LOG_FOLDER}/{database}/")
}

/// The key of entry `seq`: the prefix, the number in twelve digits, `.json`.
pub fn entry_key(database: &DatabaseId, seq: u64) -> String {
    format!("{}{}", log_prefix(database), entry_name(seq))
}

fn entry_name(seq: u64) -> String {
    format!("{seq:0width$}.json", width = SEQ_DIGITS)
}

/// The number an entry's name (relative to the prefix) carries; `None` for any other name.
fn seq_of(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&seq| seq > 0)
}

/// The numbered entries among `keys` (a listing of `prefix`), in order.
fn numbered<'a>(prefix: &str, keys: impl Iterator<Item = &'a str>) -> BTreeMap<u64, &'a str> {
    keys.filter_map(|key| Some((seq_of(key.strip_prefix(prefix)?)?, key)))
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The SHA-256 of everything stored under `key`, streamed.
async fn hash_stored(store: &dyn Store, key: &str) -> Result<String, StoreError> {
    let mut reader = store.get(key).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = reader
            .read(&mut buffer)
            .await
            .map_err(|source| read_error(key, source))?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

fn read_error(key: &str, source: std::io::Error) -> StoreError {
    StoreError::Io {
        operation: "read",
        path: key.into(),
        source,
    }
}

/// Appends `verification` to its database's log: lists the log, hashes the newest entry's
/// stored bytes and writes the next entry create-only. When another verification appended
/// meanwhile (the name is taken, or the newest entry went between the listing and the read),
/// it starts again, a bounded number of times.
pub async fn append(
    store: &dyn Store,
    verification: &Verification,
    checksums_checked: u64,
    by: &str,
) -> Result<Entry, StoreError> {
    let database =
        DatabaseId::new(&verification.database_id).map_err(|_| StoreError::InvalidKey {
            key: format!("{STATE_PREFIX}/{LOG_FOLDER}/{}", verification.database_id),
            reason: "the verification names an invalid database id",
        })?;
    let prefix = log_prefix(&database);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let listed = store.list(&prefix).await?;
        let newest = numbered(&prefix, listed.iter().map(|o| o.key.as_str()))
            .last_key_value()
            .map(|(&seq, &key)| (seq, key.to_string()));
        let (seq, previous) = match newest {
            None => (1, None),
            // No name can follow it: refused, not tried again.
            Some((seq, key)) if seq >= MAX_SEQ => {
                return Err(StoreError::InvalidKey {
                    key,
                    reason: "it is the newest entry of the verification log and carries the highest \
                             number an entry can have, so no entry can follow it; Backstop numbers \
                             entries one by one, so something else wrote it: run `backstop health` \
                             to see the log's problems",
                });
            }
            Some((seq, key)) => match hash_stored(store, &key).await {
                Ok(hash) => (seq + 1, Some(hash)),
                Err(e) if e.is_not_found() && attempt < APPEND_ATTEMPTS => {
                    pause(attempt).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        let entry = Entry::of(verification, seq, previous, checksums_checked, by);
        let mut bytes = serde_json::to_vec_pretty(&entry).unwrap_or_default();
        bytes.push(b'\n');
        let options = PutOptions {
            tags: Vec::new(),
            create_only: true,
        };
        match store
            .put(&entry_key(&database, seq), &mut bytes.as_slice(), &options)
            .await
        {
            Ok(_) => return Ok(entry),
            Err(StoreError::AlreadyExists { .. }) if attempt < APPEND_ATTEMPTS => {
                pause(attempt).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A short wait that grows with each attempt, spread so two writers that met part.
async fn pause(attempt: u32) {
    let spread = rand::random::<u64>() % 50;
    tokio::time::sleep(Duration::from_millis(25 * u64::from(attempt) + spread)).await;
}

/// What the monitor remembers of the log's newest entry: a later check finds it edited or
/// deleted, which no entry after it would tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub seq: u64,
    /// Lower-case hex SHA-256 of the entry's stored bytes.
    pub head: String,
    #[serde(with = "time::serde::rfc3339")]
    pub seen_at: OffsetDateTime,
}

/// The whole chain, read and checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    /// Every entry that reads, in order.
    pub entries: Vec<Entry>,
    pub problems: Vec<ChainProblem>,
    /// Hex SHA-256 of the newest entry's stored bytes.
    pub head: Option<String>,
}

impl Chain {
    /// Whether nothing is wrong with it.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// What to remember of it now: its newest entry, when the chain is intact.
    pub fn seen(&self, now: OffsetDateTime) -> Option<Seen> {
        if !self.is_intact() {
            return None;
        }
        Some(Seen {
            seq: self.entries.last()?.seq,
            head: self.head.clone()?,
            seen_at: now,
        })
    }
}

/// Something wrong with the log, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum ChainProblem {
    /// Later entries are there, this one is not: it was deleted.
    Missing { seq: u64 },
    /// Later entries are there, these (`from` to `to`, more than one) are not.
    MissingRange { from: u64, to: u64 },
    /// The entry after it holds a different hash of it.
    Changed { seq: u64 },
    /// It is there but cannot be read as an entry.
    Unreadable { seq: u64, reason: String },
    /// It reads, but says something an entry in its place never does (another number,
    /// another database, no hash of the entry before it).
    Inconsistent { seq: u64, reason: String },
    /// A name in the log that is not an entry's.
    NotAnEntry { key: String },
    /// The newest entry when the monitor last looked is gone.
    SeenGone {
        seq: u64,
        #[serde(with = "time::serde::rfc3339")]
        seen_at: OffsetDateTime,
    },
    /// The newest entry when the monitor last looked hashes differently now.
    SeenChanged {
        seq: u64,
        #[serde(with = "time::serde::rfc3339")]
        seen_at: OffsetDateTime,
    },
    /// These entries (`from` to `to`) read, but nothing vouches for them: entry `to + 1`, whose
    /// hash of entry `to` binds it and, through it, the ones before, is `successor`. They may
    /// have been edited with nothing to tell.
    Unvouched {
        from: u64,
        to: u64,
        successor: Successor,
    },
}

/// What the entry after an unvouched run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Successor {
    /// Not there (deleted, or seen by the monitor and gone since).
    Missing,
    /// There, but not an entry that reads.
    Unreadable,
    /// Changed after it was written: what it holds vouches for nothing.
    Changed,
    /// It reads, but holds no hash of the entry before it.
    NoHash,
}

impl Successor {
    fn text(self) -> &'static str {
        match self {
            Successor::Missing => "is missing",
            Successor::Unreadable => "cannot be read",
            Successor::Changed => "was changed after it was written",
            Successor::NoHash => "holds no hash of the entry before it",
        }
    }
}

impl ChainProblem {
    /// The entry it is about, the first of a run (`None` for a name that is not an entry).
    pub fn seq(&self) -> Option<u64> {
        match self {
            ChainProblem::MissingRange { from, .. } | ChainProblem::Unvouched { from, .. } => {
                Some(*from)
            }
            ChainProblem::Missing { seq }
            | ChainProblem::Changed { seq }
            | ChainProblem::Unreadable { seq, .. }
            | ChainProblem::Inconsistent { seq, .. }
            | ChainProblem::SeenGone { seq, .. }
            | ChainProblem::SeenChanged { seq, .. } => Some(*seq),
            ChainProblem::NotAnEntry { .. } => None,
        }
    }

    /// Whether it is about entry `seq` (a run: any entry in it).
    pub fn names(&self, seq: u64) -> bool {
        match self {
            ChainProblem::MissingRange { from, to } | ChainProblem::Unvouched { from, to, .. } => {
                (*from..=*to).contains(&seq)
            }
            other => other.seq() == Some(seq),
        }
    }

    /// The word `problem` holds in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            ChainProblem::Missing { .. } => "missing",
            ChainProblem::MissingRange { .. } => "missing-range",
            ChainProblem::Unvouched { .. } => "unvouched",
            ChainProblem::Changed { .. } => "changed",
            ChainProblem::Unreadable { .. } => "unreadable",
            ChainProblem::Inconsistent { .. } => "inconsistent",
            ChainProblem::NotAnEntry { .. } => "not-an-entry",
            ChainProblem::SeenGone { .. } => "seen-gone",
            ChainProblem::SeenChanged { .. } => "seen-changed",
        }
    }

    /// One line naming the entry by its full key in `database`'s log.
    pub fn describe(&self, database: &DatabaseId) -> String {
        Described {
            problem: self,
            prefix: &log_prefix(database),
        }
        .to_string()
    }
}

/// A problem written with its entry's key under `prefix` (empty: the entry's name alone).
struct Described<'a> {
    problem: &'a ChainProblem,
    prefix: &'a str,
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entry = |seq: u64| format!("entry {seq} ({}{})", self.prefix, entry_name(seq));
        let when = |at: &OffsetDateTime| {
            at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        match self.problem {
            ChainProblem::Missing { seq } => write!(
                f,
                "{} is missing: later entries are there, so it was deleted after it was written",
                entry(*seq)
            ),
            ChainProblem::MissingRange { from, to } => write!(
                f,
                "entries {from} to {to} ({}{} to {}{}) are missing: entry {} is there, so they \
                 were deleted after they were written, or entry {} is not Backstop's",
                self.prefix,
                entry_name(*from),
                self.prefix,
                entry_name(*to),
                to + 1,
                to + 1
            ),
            ChainProblem::Unvouched {
                from,
                to,
                successor,
            } if from == to => write!(
                f,
                "{} cannot be checked: entry {}, whose hash of it would show an edit, {}",
                entry(*to),
                to + 1,
                successor.text()
            ),
            ChainProblem::Unvouched {
                from,
                to,
                successor,
            } => write!(
                f,
                "entries {from} to {to} ({}{} to {}{}) cannot be checked: entry {}, whose hash of \
                 entry {to} (and through it of the ones before) would show an edit, {}",
                self.prefix,
                entry_name(*from),
                self.prefix,
                entry_name(*to),
                to + 1,
                successor.text()
            ),
            ChainProblem::Changed { seq } => write!(
                f,
                "{} was changed after it was written: entry {} holds a different hash of it",
                entry(*seq),
                seq + 1
            ),
            ChainProblem::Unreadable { seq, reason } => {
                write!(f, "{} cannot be read: {}", entry(*seq), inert(reason))
            }
            ChainProblem::Inconsistent { seq, reason } => {
                write!(f, "{} {}", entry(*seq), inert(reason))
            }
            ChainProblem::NotAnEntry { key } => write!(
                f,
                "`{}` is in the verification log but is not an entry (entries are named {})",
                inert(key),
                entry_name(1)
            ),
            ChainProblem::SeenGone { seq, seen_at } => write!(
                f,
                "{}, seen by the monitor at {}, is gone",
                entry(*seq),
                when(seen_at)
            ),
            ChainProblem::SeenChanged { seq, seen_at } => write!(
                f,
                "{}, seen by the monitor at {}, was changed since: its SHA-256 is not the one seen",
                entry(*seq),
                when(seen_at)
            ),
        }
    }
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Described {
            problem: self,
            prefix: "",
        }
        .fmt(f)
    }
}

/// Text from the store made inert for one line: control characters escaped.
fn inert(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// One listed key of the log and what reading it gave: its bytes, or why they are not an
/// entry's (an absent object is not listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    pub read: Result<Vec<u8>, String>,
}

/// Checks the log of `database` from what was listed and read (`seen`: what the monitor
/// remembers of the newest entry, when it does). Pure; its work grows with the entries listed,
/// never with the numbers they carry.
///
/// An entry is vouched for by the entry after it (which holds its hash) when that one is
/// vouched for in turn; the newest by itself, unless the monitor remembers a later one or a
/// different hash of it; and any entry by the monitor's memory of it. Entries that read but
/// that nothing vouches for are named in runs ([`ChainProblem::Unvouched`]).
pub fn judge(database: &DatabaseId, stored: &[Stored], seen: Option<&Seen>) -> Chain {
    let prefix = log_prefix(database);
    let mut problems = Vec::new();
    let mut strangers = Vec::new();
    let mut by_seq: BTreeMap<u64, &Result<Vec<u8>, String>> = BTreeMap::new();
    for object in stored {
        match object.key.strip_prefix(&prefix).and_then(seq_of) {
            Some(seq) => {
                by_seq.insert(seq, &object.read);
            }
            None => strangers.push(ChainProblem::NotAnEntry {
                key: object.key.clone(),
            }),
        }
    }
    let hashes: BTreeMap<u64, String> = by_seq
        .iter()
        .filter_map(|(&seq, read)| Some((seq, sha256_hex(read.as_ref().ok()?))))
        .collect();
    let newest = by_seq.last_key_value().map(|(&seq, _)| seq).unwrap_or(0);
    // Entries that read, by the number of their name.
    let mut read: BTreeMap<u64, Entry> = BTreeMap::new();
    let mut changed = std::collections::BTreeSet::new();
    let mut not_entries = BTreeMap::new();
    let mut expected = 1;
    for (&seq, stored) in &by_seq {
        if seq > expected {
            problems.push(missing(expected, seq - 1));
        }
        expected = seq + 1;
        let bytes = match stored {
            Ok(bytes) => bytes,
            Err(reason) => {
                problems.push(ChainProblem::Unreadable {
                    seq,
                    reason: reason.clone(),
                });
                continue;
            }
        };
        let entry = match serde_json::from_slice::<Entry>(bytes) {
            Ok(entry) => entry,
            Err(e) => {
                not_entries.insert(seq, format!("it does not read as an entry: {e}"));
                continue;
            }
        };
        if let Some(reason) = inconsistency(database, seq, &entry) {
            problems.push(ChainProblem::Inconsistent { seq, reason });
        }
        if let (Some(previous), Some(actual)) = (&entry.previous, hashes.get(&(seq - 1)))
            && previous != actual
        {
            changed.insert(seq - 1);
            problems.push(ChainProblem::Changed { seq: seq - 1 });
        }
        read.insert(seq, entry);
    }
    if let Some(seen) = seen {
        // Already named as missing, changed or unreadable: once is enough.
        let named = problems.iter().any(|p| {
            p.names(seen.seq)
                && matches!(
                    p,
                    ChainProblem::Missing { .. }
                        | ChainProblem::MissingRange { .. }
                        | ChainProblem::Changed { .. }
                        | ChainProblem::Unreadable { .. }
                )
        });
        match hashes.get(&seen.seq) {
            _ if named => {}
            None if !by_seq.contains_key(&seen.seq) => problems.push(ChainProblem::SeenGone {
                seq: seen.seq,
                seen_at: seen.seen_at,
            }),
            Some(hash) if *hash != seen.head => {
                changed.insert(seen.seq);
                problems.push(ChainProblem::SeenChanged {
                    seq: seen.seq,
                    seen_at: seen.seen_at,
                });
            }
            _ => {}
        }
    }
    // An entry that no longer reads and that its successor or the monitor's memory betrays:
    // named once, as changed.
    for (seq, reason) in not_entries {
        if !changed.contains(&seq) {
            problems.push(ChainProblem::Unreadable { seq, reason });
        }
    }
    let present = by_seq.keys().copied().collect();
    problems.extend(unvouched(&present, &read, &hashes, &changed, newest, seen));
    // Each run that nothing vouches for right after what broke it.
    problems.sort_by_key(|p| match p {
        ChainProblem::Unvouched { to, .. } => Some(to + 1),
        other => other.seq(),
    });
    problems.extend(strangers);
    Chain {
        entries: read.into_values().collect(),
        problems,
        head: hashes.get(&newest).cloned(),
    }
}

/// Entries `from` to `to` missing: one problem.
fn missing(from: u64, to: u64) -> ChainProblem {
    if from == to {
        ChainProblem::Missing { seq: from }
    } else {
        ChainProblem::MissingRange { from, to }
    }
}

/// The runs of entries that read (`read`, by number) but that nothing vouches for, walking
/// down from the newest. `present`: every listed number; `changed`: entries already named as
/// changed (not named again).
fn unvouched(
    present: &std::collections::BTreeSet<u64>,
    read: &BTreeMap<u64, Entry>,
    hashes: &BTreeMap<u64, String>,
    changed: &std::collections::BTreeSet<u64>,
    newest: u64,
    seen: Option<&Seen>,
) -> Vec<ChainProblem> {
    // The newest vouches for itself unless the monitor saw a later one.
    let newest_stands = seen.is_none_or(|s| s.seq <= newest);
    let mut vouched = std::collections::BTreeSet::new();
    let mut runs: Vec<ChainProblem> = Vec::new();
    for (&seq, _) in read.iter().rev() {
        let Some(hash) = hashes.get(&seq) else {
            continue;
        };
        if changed.contains(&seq) {
            continue;
        }
        let remembered = seen.is_some_and(|s| s.seq == seq && s.head == *hash);
        let by_successor = if seq == newest {
            newest_stands
        } else {
            vouched.contains(&(seq + 1))
                && read.get(&(seq + 1)).and_then(|e| e.previous.as_deref()) == Some(hash.as_str())
        };
        if remembered || by_successor {
            vouched.insert(seq);
            continue;
        }
        if let Some(ChainProblem::Unvouched { from, .. }) = runs.last_mut()
            && *from == seq + 1
        {
            *from = seq;
            continue;
        }
        let next = seq + 1;
        let successor = if changed.contains(&next) {
            Successor::Changed
        } else if !present.contains(&next) {
            Successor::Missing
        } else {
            match read.get(&next) {
                None => Successor::Unreadable,
                Some(entry) if entry.previous.is_none() => Successor::NoHash,
                // It holds a different hash of this one, which is then named as changed.
                Some(_) => Successor::Changed,
            }
        };
        runs.push(ChainProblem::Unvouched {
            from: seq,
            to: seq,
            successor,
        });
    }
    runs
}

/// What entry `seq` says that an entry in its place never does.
fn inconsistency(database: &DatabaseId, seq: u64, entry: &Entry) -> Option<String> {
    if entry.seq != seq {
        return Some(format!("says it is entry {}", entry.seq));
    }
    if entry.database_id != database.as_str() {
        return Some(format!(
            "says it is about database `{}`",
            inert(&entry.database_id)
        ));
    }
    match (seq, &entry.previous) {
        (1, Some(_)) => Some("is the first, yet holds the hash of an entry before it".into()),
        (_, None) if seq > 1 => Some(format!("holds no hash of entry {}", seq - 1)),
        _ => None,
    }
}

/// The whole chain of `database`'s log, read and checked.
pub async fn read_chain(store: &dyn Store, database: &DatabaseId) -> Result<Chain, StoreError> {
    read_chain_against(store, database, None).await
}

/// The whole chain, read and checked, and its entry `seen.seq` against what the monitor saw.
pub async fn read_chain_against(
    store: &dyn Store,
    database: &DatabaseId,
    seen: Option<&Seen>,
) -> Result<Chain, StoreError> {
    let listed = store.list(&log_prefix(database)).await?;
    let mut reads = futures::stream::iter(listed)
        .map(|object| async move {
            let read = read_entry(store, &object.key).await;
            (object.key, read)
        })
        .buffered(READS_IN_FLIGHT);
    let mut stored = Vec::new();
    while let Some((key, read)) = reads.next().await {
        match read {
            Ok(Some(read)) => stored.push(Stored { key, read }),
            // Gone since the listing: as if it had not been listed.
            Ok(None) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(judge(database, &stored, seen))
}

/// One entry's bytes (`Err`: too large to be one), or `None` when it is gone.
async fn read_entry(
    store: &dyn Store,
    key: &str,
) -> Result<Option<Result<Vec<u8>, String>>, StoreError> {
    let reader = match store.get(key).await {
        Ok(reader) => reader,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_ENTRY_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|source| read_error(key, source))?;
    if bytes.len() as u64 > MAX_ENTRY_BYTES {
        return Ok(Some(Err(format!(
            "it is larger than {} MiB, more than an entry ever is",
            MAX_ENTRY_BYTES >> 20
        ))));
    }
    Ok(Some(Ok(bytes)))
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
