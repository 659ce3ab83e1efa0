//! Which change segments retention may delete: a pure decision over the kept backups' stream
//! positions and the segments' keys.
//!
//! Point-in-time recovery reaches back to the oldest kept backup taken within the stream
//! window (or, when none is that recent, the newest kept backup): the anchor. Segments of the
//! anchor's chain that end before its slot position, and every segment of an older chain,
//! carry no kept backup forward and go; everything after stays. Without an anchor (no kept
//! backup has a stream position yet) nothing is deleted.

use time::OffsetDateTime;

use crate::engine::stream::plan::StreamPosition;
use crate::engine::stream::segment::Lsn;

/// A stored segment object as its key names it:
/// `stream/<chain>/<start>-<end>.json` (a seal) or `stream/<chain>/<start>-<random>.changes...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentObject {
    pub key: String,
    pub chain: String,
    pub start: Lsn,
    /// For a seal: where it ends.
    pub end: Option<Lsn>,
}

impl SegmentObject {
    /// Reads `key` (relative to the database's `stream/` folder: `<chain>/<file>`).
    pub fn parse(key: &str, relative: &str) -> Option<Self> {
        let (chain, file) = relative.split_once('/')?;
        let (start, rest) = file.split_once('-')?;
        let start = Lsn(u64::from_str_radix(start, 16).ok()?);
        let end = match rest.strip_suffix(".json") {
            Some(end) => Some(Lsn(u64::from_str_radix(end, 16).ok()?)),
            None => None,
        };
        Some(Self {
            key: key.to_string(),
            chain: chain.to_string(),
            start,
            end,
        })
    }
}

/// The anchor among the kept backups' positions (`kept`: snapshot time and position).
pub fn anchor(kept: &[StreamPosition], window_start: OffsetDateTime) -> Option<&StreamPosition> {
    kept.iter()
        .filter(|p| p.snapshot_at >= window_start)
        .min_by_key(|p| p.snapshot_at)
        .or_else(|| kept.iter().max_by_key(|p| p.snapshot_at))
}

/// Indices of the objects retention deletes.
pub fn deletable(objects: &[SegmentObject], anchor: Option<&StreamPosition>) -> Vec<usize> {
    let Some(anchor) = anchor else {
        return Vec::new();
    };
    let flush = anchor.confirmed_flush_lsn;
    // The anchor's chain: the one whose seals cover its position.
    let Some(chain) = objects
        .iter()
        .find(|o| o.end.is_some_and(|end| o.start <= flush && flush <= end))
        .map(|o| o.chain.clone())
    else {
        return Vec::new();
    };
    // The segment that ends at the anchor's position stays: a restore may need it for a
    // transaction that raced the base's snapshot.
    let seal_goes = |object: &SegmentObject| match object.chain.cmp(&chain) {
        // Chains are named by the time they started: an older one carries nothing kept.
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Equal => object.end.is_some_and(|end| end < flush),
        std::cmp::Ordering::Greater => false,
    };
    (0..objects.len())
        .filter(|&i| {
            let object = &objects[i];
            if object.end.is_some() {
                return seal_goes(object);
            }
            // Changes go with their seal; without one (a drain that died before sealing),
            // when they start before the anchor's position.
            match objects
                .iter()
                .find(|s| s.end.is_some() && s.chain == object.chain && s.start == object.start)
            {
                Some(seal) => seal_goes(seal),
                None => object.chain < chain || (object.chain == chain && object.start < flush),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn position(flush: u64, at: OffsetDateTime) -> StreamPosition {
        StreamPosition {
            slot: "backstop_main".into(),
            confirmed_flush_lsn: Lsn(flush),
            wal_lsn: Lsn(flush + 1),
            snapshot_at: at,
            fingerprint: "f".into(),
        }
    }

    fn object(relative: &str) -> SegmentObject {
        SegmentObject::parse(&format!("main/stream/{relative}"), relative).unwrap()
    }

    #[test]
    fn segments_before_the_oldest_kept_base_in_the_window_go_and_the_rest_stay() {
        let objects = vec![
            object("20261120T000000Z-new/0000000000000050-0000000000000100.json"),
            object("20261120T000000Z-new/0000000000000050-cccc0000.changes.zst"),
            object("20261101T000000Z-old/0000000000000010-0000000000000020.json"),
            object("20261101T000000Z-old/0000000000000010-1a2b3c4d.changes.zst"),
            object("20261120T000000Z-new/0000000000000100-0000000000000200.json"),
            object("20261120T000000Z-new/0000000000000100-aaaa0000.changes.zst"),
            object("20261120T000000Z-new/0000000000000200-0000000000000300.json"),
            object("20261120T000000Z-new/0000000000000200-bbbb0000.changes.zst.age"),
            object("20261120T000000Z-new/0000000000000300-0000000000000400.json"),
        ];
        let now = datetime!(2026-12-01 00:00 UTC);
        let kept = vec![
            position(0x100, datetime!(2026-11-20 00:00 UTC)),
            position(0x200, datetime!(2026-11-28 00:00 UTC)),
            position(0x300, datetime!(2026-11-30 00:00 UTC)),
        ];
        let window = now - time::Duration::days(7);
        let anchor = anchor(&kept, window);
        assert_eq!(anchor.map(|a| a.confirmed_flush_lsn), Some(Lsn(0x200)));
        let gone: Vec<&str> = deletable(&objects, anchor)
            .into_iter()
            .map(|i| objects[i].key.as_str())
            .collect();
        assert_eq!(
            gone,
            [
                "main/stream/20261120T000000Z-new/0000000000000050-0000000000000100.json",
                "main/stream/20261120T000000Z-new/0000000000000050-cccc0000.changes.zst",
                "main/stream/20261101T000000Z-old/0000000000000010-0000000000000020.json",
                "main/stream/20261101T000000Z-old/0000000000000010-1a2b3c4d.changes.zst",
            ]
        );
        // No kept backup with a position: nothing goes.
        assert!(deletable(&objects, None).is_empty());
        // Only old bases: the newest is the anchor.
        let old = vec![position(0x100, datetime!(2026-11-01 00:00 UTC))];
        assert_eq!(
            super::anchor(&old, window).map(|a| a.confirmed_flush_lsn),
            Some(Lsn(0x100))
        );
    }
}
