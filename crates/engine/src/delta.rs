//! Row deltas: a table part carried forward by the rows that changed since the set it was
//! read in, instead of all its rows stored again (incremental backups with a change stream).
//!
//! A part with deltas lists its chunks as the base rows (COPY text, as read by an earlier
//! set) followed by one delta per later set (`manifest::Deltas::starts` says where each
//! begins). A delta is lines of two kinds, applied in order, the later line for a key winning:
//!
//! ```text
//! +<TAB><the row as COPY text>        the row as it is now (inserted or updated)
//! -<TAB><key cells as COPY text>      no row has this key now (deleted, or its key changed)
//! ```
//!
//! The key is the table's replica identity (its primary key or the index it names), so a
//! key names at most one row. Keys are compared by their cells' values (COPY escapes
//! undone), never by their bytes.

use std::collections::BTreeMap;

/// The most plain bytes of deltas a part may carry: a restore holds them all in memory (and
/// the rows they leave) while the base rows stream past.
pub const MAX_DELTA_BYTES: u64 = 1 << 30;

/// A row's key: its key cells' values, COPY escapes undone (`None` for `\N`).
pub type Key = Vec<Option<Vec<u8>>>;

/// What is wrong with a part's deltas or its base rows. Messages say where (delta and line,
/// counted from 1), never what a row holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("line {line} of delta {delta} is neither a row (`+`) nor a deletion (`-`)")]
    UnknownLine { delta: usize, line: usize },
    #[error("delta {delta} ends inside its line {line} (truncated)")]
    Unterminated { delta: usize, line: usize },
    #[error(
        "line {line} of delta {delta} is a row of {columns} columns, but its key needs {needed}"
    )]
    ShortRow {
        delta: usize,
        line: usize,
        columns: usize,
        needed: usize,
    },
    #[error(
        "line {line} of delta {delta} deletes a key of {cells} cells, but the key has {expected}"
    )]
    KeyLength {
        delta: usize,
        line: usize,
        cells: usize,
        expected: usize,
    },
    #[error("line {line} of delta {delta} is a row that would end the table's data (`\\.`)")]
    EndMarker { delta: usize, line: usize },
    #[error("a base row has {columns} columns, but its key needs {needed}")]
    ShortBaseRow { columns: usize, needed: usize },
}

/// A part's deltas gathered, to carry its base rows forward: each base row is passed through
/// (`Merge::pass`), then the rows no base row had the key of are added
/// (`Merge::into_remaining`).
pub struct Merge {
    /// The key columns (indices into the row's cells).
    key: Vec<u32>,
    /// Every key a delta named, with its last line's verdict.
    latest: BTreeMap<Key, Latest>,
    /// Deltas applied so far.
    deltas: usize,
}

/// The last delta line for one key.
struct Latest {
    /// The row as it is now (a COPY line with its newline), or `None`: deleted.
    row: Option<Vec<u8>>,
    /// Whether a base row had this key (its row then took that row's place).
    met: bool,
}

impl std::fmt::Debug for Merge {
    /// How much it holds, never a row.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merge")
            .field("key", &self.key)
            .field("deltas", &self.deltas)
            .field("keys", &self.latest.len())
            .finish()
    }
}

/// What becomes of one base row.
#[derive(Debug, PartialEq, Eq)]
pub enum Passed<'a> {
    /// No delta names its key: it stays as it is.
    Unchanged,
    /// A delta changed it: this row (a COPY line with its newline) takes its place.
    Replaced(&'a [u8]),
    /// A delta deleted it (or changed its key).
    Dropped,
}

impl Merge {
    /// An empty merge for rows keyed by the cells at `key` (column indices).
    pub fn new(key: Vec<u32>) -> Self {
        Self {
            key,
            latest: BTreeMap::new(),
            deltas: 0,
        }
    }

    /// Takes the next delta (its plain bytes, whole); a line for a key a former delta named
    /// replaces that one's. A delta that does not parse leaves the merge as it was.
    pub fn apply(&mut self, delta: &[u8]) -> Result<(), DeltaError> {
        let number = self.deltas + 1;
        let mut lines = Vec::new();
        let mut rest = delta;
        while !rest.is_empty() {
            let line_number = lines.len() + 1;
            let Some(end) = memchr::memchr(b'\n', rest) else {
                return Err(DeltaError::Unterminated {
                    delta: number,
                    line: line_number,
                });
            };
            let (line, after) = rest.split_at(end + 1);
            rest = after;
            lines.push(self.parse(line, number, line_number)?);
        }
        for (key, row) in lines {
            let met = self.latest.get(&key).is_some_and(|latest| latest.met);
            self.latest.insert(key, Latest { row, met });
        }
        self.deltas = number;
        Ok(())
    }

    /// One delta line (with its newline) as the key it names and the row it leaves there.
    fn parse(
        &self,
        line: &[u8],
        delta: usize,
        number: usize,
    ) -> Result<(Key, Option<Vec<u8>>), DeltaError> {
        if let Some(row) = line.strip_prefix(b"+\t") {
            let body = row.strip_suffix(b"\n").unwrap_or(row);
            if body.strip_suffix(b"\r").unwrap_or(body) == b"\\." {
                return Err(DeltaError::EndMarker {
                    delta,
                    line: number,
                });
            }
            let key = copy_key(row, &self.key).ok_or_else(|| DeltaError::ShortRow {
                delta,
                line: number,
                columns: cell_count(row),
                needed: self.needed(),
            })?;
            return Ok((key, Some(row.to_vec())));
        }
        if let Some(cells) = line.strip_prefix(b"-\t") {
            let count = cell_count(cells);
            if count != self.key.len() {
                return Err(DeltaError::KeyLength {
                    delta,
                    line: number,
                    cells: count,
                    expected: self.key.len(),
                });
            }
            let positions: Vec<u32> = (0..count as u32).collect();
            let key = copy_key(cells, &positions).ok_or(DeltaError::KeyLength {
                delta,
                line: number,
                cells: count,
                expected: self.key.len(),
            })?;
            return Ok((key, None));
        }
        Err(DeltaError::UnknownLine {
            delta,
            line: number,
        })
    }

    /// The columns a row must have for its key to be read.
    fn needed(&self) -> usize {
        self.key.iter().max().map_or(0, |&index| index as usize + 1)
    }

    /// What becomes of base row `row` (one COPY line): unchanged when no delta names its key,
    /// else the last delta's row for it, or nothing when that deleted it.
    pub fn pass(&mut self, row: &[u8]) -> Result<Passed<'_>, DeltaError> {
        if self.latest.is_empty() {
            return Ok(Passed::Unchanged);
        }
        let Some(key) = copy_key(row, &self.key) else {
            return Err(DeltaError::ShortBaseRow {
                columns: cell_count(row),
                needed: self.needed(),
            });
        };
        Ok(match self.latest.get_mut(&key) {
            None => Passed::Unchanged,
            Some(latest) => {
                latest.met = true;
                match &latest.row {
                    Some(row) => Passed::Replaced(row),
                    None => Passed::Dropped,
                }
            }
        })
    }

    /// The rows the deltas left whose key no base row passed had: rows inserted since the
    /// base (COPY lines with their newlines), in key order.
    pub fn into_remaining(self) -> impl Iterator<Item = Vec<u8>> {
        self.latest
            .into_values()
            .filter(|latest| !latest.met)
            .filter_map(|latest| latest.row)
    }
}

/// The number of cells in a COPY line (with or without its newline).
fn cell_count(row: &[u8]) -> usize {
    let row = row.strip_suffix(b"\n").unwrap_or(row);
    memchr::memchr_iter(b'\t', row).count() + 1
}

/// The line that says the row `row` (one COPY text line, with or without its newline) is
/// the table's row for its key now.
pub fn write_upsert(row: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"+\t");
    out.extend_from_slice(row);
    if !row.ends_with(b"\n") {
        out.push(b'\n');
    }
}

/// The line that says no row has `key` now.
pub fn write_delete(key: &Key, out: &mut Vec<u8>) {
    out.extend_from_slice(b"-");
    for cell in key {
        out.push(b'\t');
        match cell {
            None => out.extend_from_slice(b"\\N"),
            Some(value) => copy_escape(value, out),
        }
    }
    out.push(b'\n');
}

/// The key of `row` (one COPY text line): the cells at `key` (column indices), unescaped.
/// `None` when the row has fewer columns than a key index names.
pub fn copy_key(row: &[u8], key: &[u32]) -> Option<Key> {
    let row = row.strip_suffix(b"\n").unwrap_or(row);
    let cells: Vec<&[u8]> = row.split(|&b| b == b'\t').collect();
    key.iter()
        .map(|&index| cells.get(index as usize).map(|cell| copy_unescape(cell)))
        .collect()
}

/// A cell of COPY text as its value: `None` for `\N`, escapes undone otherwise.
pub fn copy_unescape(cell: &[u8]) -> Option<Vec<u8>> {
    if cell == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(cell.len());
    let mut i = 0;
    while i < cell.len() {
        let byte = cell[i];
        if byte != b'\\' || i + 1 == cell.len() {
            out.push(byte);
            i += 1;
            continue;
        }
        let next = cell[i + 1];
        i += 2;
        match next {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(next - b'0');
                let mut taken = 0;
                while taken < 2 && i < cell.len() && (b'0'..=b'7').contains(&cell[i]) {
                    value = value * 8 + u32::from(cell[i] - b'0');
                    i += 1;
                    taken += 1;
                }
                out.push((value & 0xff) as u8);
            }
            b'x' if i < cell.len() && cell[i].is_ascii_hexdigit() => {
                let mut value = 0u32;
                let mut taken = 0;
                while taken < 2 && i < cell.len() && cell[i].is_ascii_hexdigit() {
                    value = value * 16 + (cell[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    taken += 1;
                }
                out.push(value as u8);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// `value` as a cell of COPY text (as the server's COPY TO writes it).
pub fn copy_escape(value: &[u8], out: &mut Vec<u8>) {
    for &byte in value {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x0b => out.extend_from_slice(b"\\v"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_its_cells_values_whatever_their_escapes() {
        let row = b"7\ta\\tb\\\\c\t\\N\tx\\101\n";
        let key = copy_key(row, &[0, 1, 2]).unwrap();
        assert_eq!(
            key,
            vec![Some(b"7".to_vec()), Some(b"a\tb\\c".to_vec()), None]
        );
        assert_eq!(copy_key(row, &[3]).unwrap(), vec![Some(b"xA".to_vec())]);
        assert_eq!(copy_key(row, &[4]), None);
    }

    #[test]
    fn a_delete_line_carries_the_key_back_as_copy_text() {
        let key: Key = vec![Some(b"7".to_vec()), Some(b"a\tb\nc\\".to_vec())];
        let mut out = Vec::new();
        write_delete(&key, &mut out);
        assert_eq!(out, b"-\t7\ta\\tb\\nc\\\\\n");
        let cells = &out[2..];
        assert_eq!(copy_key(cells, &[0, 1]).unwrap(), key);
    }

    /// The rows `merge` makes of `base`, sorted (order does not matter to a restore).
    fn merged(merge: Merge, base: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut merge = merge;
        let mut rows = Vec::new();
        for row in base {
            match merge.pass(row).unwrap() {
                Passed::Unchanged => rows.push(row.to_vec()),
                Passed::Replaced(new) => rows.push(new.to_vec()),
                Passed::Dropped => {}
            }
        }
        rows.extend(merge.into_remaining());
        rows.sort();
        rows
    }

    fn merge_of(key: &[u32], deltas: &[&[u8]]) -> Merge {
        let mut merge = Merge::new(key.to_vec());
        for delta in deltas {
            merge.apply(delta).unwrap();
        }
        merge
    }

    fn lines(rows: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut rows: Vec<Vec<u8>> = rows.iter().map(|r| r.to_vec()).collect();
        rows.sort();
        rows
    }

    const BASE: &[&[u8]] = &[b"1\talice\n", b"2\tbob\n", b"3\tcarol\n"];

    #[test]
    fn an_update_replaces_the_row_of_its_key() {
        let merge = merge_of(&[0], &[b"+\t2\tbobby\n"]);
        assert_eq!(
            merged(merge, BASE),
            lines(&[b"1\talice\n", b"2\tbobby\n", b"3\tcarol\n"])
        );
    }

    #[test]
    fn a_delete_drops_the_row_of_its_key() {
        let merge = merge_of(&[0], &[b"-\t1\n"]);
        assert_eq!(merged(merge, BASE), lines(&[b"2\tbob\n", b"3\tcarol\n"]));
    }

    #[test]
    fn an_insert_is_added_after_the_base() {
        let merge = merge_of(&[0], &[b"+\t4\tdave\n"]);
        assert_eq!(
            merged(merge, BASE),
            lines(&[b"1\talice\n", b"2\tbob\n", b"3\tcarol\n", b"4\tdave\n"])
        );
    }

    #[test]
    fn a_key_change_is_a_delete_and_a_row() {
        let merge = merge_of(&[0], &[b"-\t3\n+\t30\tcarol\n"]);
        assert_eq!(
            merged(merge, BASE),
            lines(&[b"1\talice\n", b"2\tbob\n", b"30\tcarol\n"])
        );
    }

    #[test]
    fn a_later_delta_overrides_an_earlier_one() {
        // Updated then deleted; deleted then inserted again; inserted then updated.
        let merge = merge_of(
            &[0],
            &[
                b"+\t1\talicia\n-\t2\n+\t5\teve\n",
                b"-\t1\n+\t2\tbob again\n+\t5\teva\n",
            ],
        );
        assert_eq!(
            merged(merge, BASE),
            lines(&[b"2\tbob again\n", b"3\tcarol\n", b"5\teva\n"])
        );
        // Within one delta too, the later line wins.
        let merge = merge_of(&[0], &[b"+\t3\tcaroline\n-\t3\n"]);
        assert_eq!(merged(merge, BASE), lines(&[b"1\talice\n", b"2\tbob\n"]));
    }

    #[test]
    fn a_base_row_no_delta_names_passes_as_it_is() {
        let mut merge = merge_of(&[0], &[b"+\t9\tzed\n"]);
        assert_eq!(merge.pass(b"1\talice\n").unwrap(), Passed::Unchanged);
        // With no delta lines at all, rows pass without their keys being read.
        let mut empty = merge_of(&[3], &[b""]);
        assert_eq!(empty.pass(b"1\talice\n").unwrap(), Passed::Unchanged);
        assert_eq!(empty.into_remaining().count(), 0);
    }

    #[test]
    fn keys_compare_by_value_whatever_their_escapes() {
        // Two key columns (the second and the third); `\101` is `A`, `\x41` too.
        let merge = merge_of(
            &[1, 2],
            &[b"+\tnew\tA\\tb\t\\N\n-\t\\x41\t\\N\n+\tupd\tB\t\\N\n"],
        );
        let base: &[&[u8]] = &[b"old\t\\101\t\\N\n", b"keep\tA\\tb\tx\n"];
        assert_eq!(
            merged(merge, base),
            lines(&[b"keep\tA\\tb\tx\n", b"new\tA\\tb\t\\N\n", b"upd\tB\t\\N\n"])
        );
        // A delete line written by `write_delete` names the same key as the row it came from.
        let row = b"7\ta\\tb\\nc\\\\\tz\n";
        let mut delta = Vec::new();
        write_delete(&copy_key(row, &[0, 1]).unwrap(), &mut delta);
        let mut merge = merge_of(&[0, 1], &[&delta]);
        assert_eq!(merge.pass(row).unwrap(), Passed::Dropped);
    }

    #[test]
    fn malformed_deltas_are_refused_by_where_never_by_what() {
        let refused = |key: &[u32], delta: &[u8]| {
            let mut merge = Merge::new(key.to_vec());
            merge.apply(b"+\t1\tfine\tx\n").unwrap();
            let error = merge.apply(delta).unwrap_err();
            assert_eq!(merge.latest.len(), 1, "a refused delta changes nothing");
            error
        };
        assert_eq!(
            refused(&[0], b"+\t2\tok\n*\t3\tsecret\n"),
            DeltaError::UnknownLine { delta: 2, line: 2 }
        );
        assert_eq!(
            refused(&[0], b"+2\tsecret\n"),
            DeltaError::UnknownLine { delta: 2, line: 1 }
        );
        assert_eq!(
            refused(&[0, 2], b"+\t2\tsecret\n"),
            DeltaError::ShortRow {
                delta: 2,
                line: 1,
                columns: 2,
                needed: 3
            }
        );
        assert_eq!(
            refused(&[0, 1], b"-\t2\n"),
            DeltaError::KeyLength {
                delta: 2,
                line: 1,
                cells: 1,
                expected: 2
            }
        );
        assert_eq!(
            refused(&[0], b"-\t2\tsecret\n"),
            DeltaError::KeyLength {
                delta: 2,
                line: 1,
                cells: 2,
                expected: 1
            }
        );
        assert_eq!(
            refused(&[0], b"+\t2\tok\n-\t3"),
            DeltaError::Unterminated { delta: 2, line: 2 }
        );
        assert_eq!(
            refused(&[0], b"+\t\\.\n"),
            DeltaError::EndMarker { delta: 2, line: 1 }
        );
        for error in [
            refused(&[0], b"*\tsecret\n"),
            refused(&[0, 2], b"+\tsecret\n"),
            refused(&[0], b"-\tsecret\tsecret\n"),
        ] {
            assert!(!error.to_string().contains("secret"), "{error}");
        }
        let mut merge = merge_of(&[0, 3], &[b"+\t1\ta\tb\tc\n"]);
        assert_eq!(
            merge.pass(b"1\tsecret\n").unwrap_err(),
            DeltaError::ShortBaseRow {
                columns: 2,
                needed: 4
            }
        );
    }

    #[test]
    fn an_upsert_line_is_the_row_after_its_mark() {
        let mut out = Vec::new();
        write_upsert(b"1\tx", &mut out);
        write_upsert(b"2\ty\n", &mut out);
        assert_eq!(out, b"+\t1\tx\n+\t2\ty\n");
    }
}
