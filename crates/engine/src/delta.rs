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

/// A row's key: its key cells' values, COPY escapes undone (`None` for `\N`).
pub type Key = Vec<Option<Vec<u8>>>;

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

    #[test]
    fn an_upsert_line_is_the_row_after_its_mark() {
        let mut out = Vec::new();
        write_upsert(b"1\tx", &mut out);
        write_upsert(b"2\ty\n", &mut out);
        assert_eq!(out, b"+\t1\tx\n+\t2\ty\n");
    }
}
