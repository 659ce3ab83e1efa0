//! Row counts and an order-independent content digest of COPY text.
//!
//! The digest is the wrapping sum of the xxh3-128 hashes of each row's line, so the same rows
//! give the same digest whatever order they were copied or loaded in, and however a table's
//! rows were split into parts (digests of parts add up to the table's).

use xxhash_rust::xxh3::xxh3_128;

/// Accumulates rows from arbitrarily split chunks of COPY text output.
#[derive(Debug, Default, Clone)]
pub struct RowDigest {
    rows: u64,
    sum: u128,
    partial: Vec<u8>,
}

impl RowDigest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of COPY data (rows end with `\n`; a chunk may end mid-row).
    pub fn update(&mut self, mut chunk: &[u8]) {
        while let Some(newline) = memchr(chunk) {
            let (line, rest) = chunk.split_at(newline);
            if self.partial.is_empty() {
                self.add_line(line);
            } else {
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                self.add_line(&whole);
            }
            chunk = &rest[1..];
        }
        self.partial.extend_from_slice(chunk);
    }

    fn add_line(&mut self, line: &[u8]) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(xxh3_128(line));
    }

    /// Whether a row was left without its terminating newline.
    pub fn has_partial_row(&self) -> bool {
        !self.partial.is_empty()
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The digest as 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }

    /// Adds two digests (of two parts of one table) as hex strings.
    pub fn combine_hex(a: &str, b: &str) -> Option<String> {
        let a = u128::from_str_radix(a, 16).ok()?;
        let b = u128::from_str_radix(b, 16).ok()?;
        Some(format!("{:032x}", a.wrapping_add(b)))
    }
}

fn memchr(haystack: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', haystack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(chunks: &[&[u8]]) -> RowDigest {
        let mut d = RowDigest::new();
        for c in chunks {
            d.update(c);
        }
        d
    }

    #[test]
    fn same_rows_in_any_order_and_any_split_give_the_same_digest() {
        let a = digest(&[b"1\tann\n2\tbob\n3\t\\N\n"]);
        let b = digest(&[b"3\t\\", b"N\n2\tb", b"ob\n1\tann", b"\n"]);
        assert_eq!(a.rows(), 3);
        assert_eq!(a.hex(), b.hex());
        assert!(!b.has_partial_row());
        let parts = [digest(&[b"1\tann\n"]), digest(&[b"2\tbob\n3\t\\N\n"])];
        assert_eq!(
            RowDigest::combine_hex(&parts[0].hex(), &parts[1].hex()).unwrap(),
            a.hex()
        );
    }

    #[test]
    fn different_content_gives_a_different_digest() {
        assert_ne!(digest(&[b"1\tann\n"]).hex(), digest(&[b"1\tanne\n"]).hex());
        assert_ne!(digest(&[b"1\n1\n"]).hex(), digest(&[b"1\n"]).hex());
        assert!(digest(&[b"1\tann"]).has_partial_row());
    }
}
