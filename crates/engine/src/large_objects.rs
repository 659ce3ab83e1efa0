//! The contents of large objects: one data part per batch of large objects, a psql script of
//! `lo_put` calls, one per 128 KiB chunk (an empty object gets one empty chunk):
//!
//! ```text
//! SELECT pg_catalog.lo_put('16392', 0, pg_catalog.decode('68656c6c6f', 'hex'));
//! ```
//!
//! The server renders the lines itself inside the backup snapshot, so a part streams like a
//! table's COPY, and its digest is the same order-independent sum of line hashes. Restore
//! never runs a line it has not parsed: each is checked against that exact shape and
//! rewritten from the parsed numbers and hex digits, so a tampered part cannot run SQL of its
//! own before its checksum is found wrong. The objects themselves (OID, owner, comment,
//! grants) are pre-data items (`catalog::large_objects`).

use futures::StreamExt;
use tokio_postgres::Client;

use super::digest::RowDigest;

use backstop_pg::{column, describe};

/// Bytes of large object content per line.
pub const CHUNK: i64 = 128 * 1024;

/// `INV_READ`: open for reading, as of the transaction's snapshot.
const INV_READ: i32 = 0x40000;

/// `large objects 16392..17391`, for messages.
pub fn label(oids: &[u32]) -> String {
    match (oids.first(), oids.last()) {
        (Some(first), Some(last)) if first != last => format!("large objects {first}..{last}"),
        (Some(first), _) => format!("large object {first}"),
        _ => "large objects".to_string(),
    }
}

/// The size of each large object in `oids`, read in one statement (each is opened, measured
/// and closed). Runs inside the caller's transaction, so in its snapshot.
pub async fn sizes(client: &Client, oids: &[u32]) -> Result<Vec<(u32, i64)>, String> {
    // OFFSET 0 keeps each step in its own subquery, so every object is opened, then
    // measured, then closed, one row at a time.
    let sql = format!(
        "SELECT oid, size FROM (SELECT oid, size, pg_catalog.lo_close(fd) AS closed FROM \
         (SELECT oid, fd, pg_catalog.lo_lseek64(fd, 0, 2) AS size FROM \
         (SELECT oid, pg_catalog.lo_open(oid, {INV_READ}) AS fd FROM unnest($1::pg_catalog.oid[]) AS u(oid) \
         OFFSET 0) opened OFFSET 0) measured OFFSET 0) closed"
    );
    let rows = client
        .query(&sql, &[&oids])
        .await
        .map_err(|e| describe(&e))?;
    let oids: Vec<u32> = column(&rows, 0)?;
    let sizes: Vec<i64> = column(&rows, 1)?;
    Ok(oids.into_iter().zip(sizes).collect())
}

/// The `COPY ... TO STDOUT` whose output is the part's script for these objects.
pub fn copy_sql(objects: &[(u32, i64)]) -> String {
    let oids: Vec<String> = objects.iter().map(|(oid, _)| oid.to_string()).collect();
    let sizes: Vec<String> = objects.iter().map(|(_, size)| size.to_string()).collect();
    format!(
        "COPY (SELECT pg_catalog.format('SELECT pg_catalog.lo_put(%L, %s, pg_catalog.decode(%L, %L));', \
         o.oid, s.off, pg_catalog.encode(pg_catalog.lo_get(o.oid, s.off, {CHUNK}), 'hex'), 'hex') \
         FROM unnest('{{{}}}'::pg_catalog.oid[], '{{{}}}'::pg_catalog.int8[]) AS o(oid, size), \
         LATERAL pg_catalog.generate_series(0::int8, pg_catalog.int8larger(o.size - 1, 0), {CHUNK}) AS s(off)) TO STDOUT",
        oids.join(","),
        sizes.join(",")
    )
}

/// The number of large objects in the database `client` is connected to, and the digest of
/// the lines a backup would write for them: what verification compares after a restore.
pub async fn digest_all(client: &Client, batch: usize) -> Result<(u64, RowDigest), String> {
    let rows = client
        .query(
            "SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid",
            &[],
        )
        .await
        .map_err(|e| describe(&e))?;
    let oids: Vec<u32> = column(&rows, 0)?;
    let mut digest = RowDigest::new();
    for chunk in oids.chunks(batch.max(1)) {
        let sizes = sizes(client, chunk).await?;
        let stream = client
            .copy_out(&copy_sql(&sizes))
            .await
            .map_err(|e| describe(&e))?;
        let mut stream = std::pin::pin!(stream);
        while let Some(data) = stream.next().await {
            digest.update(&data.map_err(|e| describe(&e))?);
        }
    }
    Ok((oids.len() as u64, digest))
}

/// One line of a large-object part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put<'a> {
    pub oid: u32,
    pub offset: u64,
    /// Lower-case hex digits of the chunk.
    pub hex: &'a str,
}

impl Put<'_> {
    /// The statement, rebuilt from the parsed values.
    pub fn statement(&self) -> String {
        format!(
            "SELECT pg_catalog.lo_put('{}', {}, pg_catalog.decode('{}', 'hex'));\n",
            self.oid, self.offset, self.hex
        )
    }
}

/// Parses one line (without its newline) of exactly the shape [`copy_sql`] writes.
pub fn parse_line(line: &str) -> Result<Put<'_>, String> {
    let wrong = || {
        let shown: String = line.chars().take(80).collect();
        format!("`{shown}` is not a large-object line")
    };
    let rest = line
        .strip_prefix("SELECT pg_catalog.lo_put('")
        .ok_or_else(wrong)?;
    let (oid, rest) = rest.split_once("', ").ok_or_else(wrong)?;
    let (offset, rest) = rest.split_once(", pg_catalog.decode('").ok_or_else(wrong)?;
    let hex = rest.strip_suffix("', 'hex'));").ok_or_else(wrong)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(oid) || !digits(offset) || hex.len() % 2 != 0 {
        return Err(wrong());
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(wrong());
    }
    Ok(Put {
        oid: oid.parse().map_err(|_| wrong())?,
        offset: offset.parse().map_err(|_| wrong())?,
        hex,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_back_to_the_statement_they_are() {
        let line =
            "SELECT pg_catalog.lo_put('16392', 131072, pg_catalog.decode('68656c6c6f', 'hex'));";
        let put = parse_line(line).unwrap();
        assert_eq!(
            put,
            Put {
                oid: 16392,
                offset: 131072,
                hex: "68656c6c6f"
            }
        );
        assert_eq!(put.statement(), format!("{line}\n"));
        let empty = "SELECT pg_catalog.lo_put('7', 0, pg_catalog.decode('', 'hex'));";
        assert_eq!(parse_line(empty).unwrap().hex, "");
    }

    #[test]
    fn anything_else_is_refused() {
        for line in [
            "DROP TABLE app.users;",
            "SELECT pg_catalog.lo_put('1', 0, pg_catalog.decode('6', 'hex'));",
            "SELECT pg_catalog.lo_put('1', 0, pg_catalog.decode('zz', 'hex'));",
            "SELECT pg_catalog.lo_put('1); DROP TABLE t; --', 0, pg_catalog.decode('', 'hex'));",
            "SELECT pg_catalog.lo_put('1', 0, pg_catalog.decode('', 'hex')); DROP TABLE t;",
            "SELECT pg_catalog.lo_put('', 0, pg_catalog.decode('', 'hex'));",
        ] {
            assert!(parse_line(line).is_err(), "{line}");
        }
    }

    #[test]
    fn the_copy_names_every_object_with_its_size() {
        let sql = copy_sql(&[(16392, 5), (16393, 0)]);
        assert!(sql.contains("'{16392,16393}'::pg_catalog.oid[], '{5,0}'::pg_catalog.int8[]"));
        assert!(sql.starts_with("COPY (") && sql.ends_with(") TO STDOUT"));
    }
}
