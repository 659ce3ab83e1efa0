//! Dependency order of dump items: a topological sort with pg_dump's tie-break.
//!
//! Among the items whose dependencies are all placed, the one with the lowest
//! (kind priority, schema, name) goes next. A dependency cycle is broken by placing the
//! lowest waiting item anyway; the cycle is reported so the caller can refuse or warn.
//! An item is moved to post-data when it depends on a post-data item (a view that relies on
//! a primary key for its GROUP BY, say).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use super::item::{Item, ObjectRef, Section};

/// A raw `pg_depend` edge: `from` needs `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DependEdge {
    pub from: ObjectRef,
    pub to: ObjectRef,
}

/// The items in restore order, and the labels of items placed despite a dependency cycle.
#[derive(Debug)]
pub struct Ordered {
    pub items: Vec<Item>,
    pub cycles_broken: Vec<String>,
}

/// Item-level dependencies: for every edge between objects owned by two different items.
pub fn item_dependencies(items: &[Item], edges: &[DependEdge]) -> Vec<BTreeSet<usize>> {
    let mut owner: HashMap<ObjectRef, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        for owned in &item.owns {
            owner.entry(*owned).or_insert(index);
        }
    }
    let mut deps = vec![BTreeSet::new(); items.len()];
    let mut add = |from: usize, to: usize| {
        if from != to {
            deps[from].insert(to);
        }
    };
    for (index, item) in items.iter().enumerate() {
        for needed in &item.needs {
            if let Some(&to) = owner.get(needed) {
                add(index, to);
            }
        }
    }
    for edge in edges {
        if let (Some(&from), Some(&to)) = (owner.get(&edge.from), owner.get(&edge.to)) {
            // A sequence OWNED BY a column points at its table; the separate OWNED BY item
            // carries that edge, so the sequence itself can be created before the table.
            if items[from].kind == super::item::ItemKind::Sequence
                && items[to].kind == super::item::ItemKind::Table
            {
                continue;
            }
            add(from, to);
        }
    }
    deps
}

/// Orders `items` so each comes after everything it depends on.
pub fn order(items: Vec<Item>, edges: &[DependEdge]) -> Ordered {
    let deps = item_dependencies(&items, edges);
    let key = |i: usize| {
        (
            items[i].kind,
            items[i].schema.clone(),
            items[i].name.clone(),
            i,
        )
    };
    let mut waiting_on: Vec<usize> = deps.iter().map(BTreeSet::len).collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    for (from, tos) in deps.iter().enumerate() {
        for &to in tos {
            dependants[to].push(from);
        }
    }
    let mut ready: BinaryHeap<Reverse<_>> = (0..items.len())
        .filter(|&i| waiting_on[i] == 0)
        .map(|i| Reverse(key(i)))
        .collect();
    let mut placed = vec![false; items.len()];
    let mut sequence = Vec::with_capacity(items.len());
    let mut cycles_broken = Vec::new();
    while sequence.len() < items.len() {
        let next = match ready.pop() {
            Some(Reverse((.., index))) => index,
            None => {
                // Every remaining item waits on another: break the cycle at the lowest one.
                let index = (0..items.len())
                    .filter(|&i| !placed[i])
                    .min_by_key(|&i| key(i))
                    .unwrap_or_default();
                cycles_broken.push(items[index].label());
                index
            }
        };
        if placed[next] {
            continue;
        }
        placed[next] = true;
        sequence.push(next);
        for &dependant in &dependants[next] {
            waiting_on[dependant] = waiting_on[dependant].saturating_sub(1);
            if waiting_on[dependant] == 0 && !placed[dependant] {
                ready.push(Reverse(key(dependant)));
            }
        }
    }

    // Sections: an item runs no earlier than the latest section among its dependencies.
    let mut sections: Vec<Section> = items.iter().map(|i| i.kind.natural_section()).collect();
    for &index in &sequence {
        for &dep in &deps[index] {
            if sections[dep] > sections[index] {
                sections[index] = sections[dep];
            }
        }
    }
    let mut slots: Vec<Option<Item>> = items.into_iter().map(Some).collect();
    let items = sequence
        .into_iter()
        .filter_map(|i| {
            let mut item = slots[i].take()?;
            item.section = sections[i];
            Some(item)
        })
        .collect();
    Ordered {
        items,
        cycles_broken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{ItemKind, class};

    fn r(oid: u32) -> ObjectRef {
        ObjectRef {
            class: class::PG_CLASS,
            oid,
        }
    }

    fn item(kind: ItemKind, name: &str, oid: u32) -> Item {
        Item::new(kind, "app", name, format!("-- {name}\n")).owning([r(oid)])
    }

    fn names(ordered: &Ordered) -> Vec<&str> {
        ordered.items.iter().map(|i| i.name.as_str()).collect()
    }

    #[test]
    fn kind_priority_then_name_when_independent() {
        let items = vec![
            item(ItemKind::Table, "b", 1),
            item(ItemKind::Index, "a_idx", 2),
            item(ItemKind::Table, "a", 3),
            item(ItemKind::Schema, "z", 4),
        ];
        assert_eq!(names(&order(items, &[])), ["z", "a", "b", "a_idx"]);
    }

    #[test]
    fn dependencies_override_priority_and_name() {
        // view `a` reads view `b`: b must come first although a sorts before it.
        let items = vec![item(ItemKind::View, "a", 1), item(ItemKind::View, "b", 2)];
        let edges = [DependEdge {
            from: r(1),
            to: r(2),
        }];
        let ordered = order(items, &edges);
        assert_eq!(names(&ordered), ["b", "a"]);
        assert!(ordered.cycles_broken.is_empty());
    }

    #[test]
    fn owned_by_does_not_create_a_cycle_with_nextval_defaults() {
        // table default calls nextval(seq); seq is OWNED BY the table's column.
        let items = vec![
            item(ItemKind::Table, "t", 1),
            item(ItemKind::Sequence, "t_id_seq", 2),
            Item::new(ItemKind::SequenceOwnedBy, "app", "t_id_seq", String::new())
                .needing([r(1), r(2)]),
        ];
        let edges = [
            DependEdge {
                from: r(1),
                to: r(2),
            },
            DependEdge {
                from: r(2),
                to: r(1),
            },
        ];
        let ordered = order(items, &edges);
        assert_eq!(names(&ordered), ["t_id_seq", "t", "t_id_seq"]);
        assert_eq!(ordered.items[2].kind, ItemKind::SequenceOwnedBy);
        assert!(ordered.cycles_broken.is_empty());
    }

    #[test]
    fn a_cycle_is_broken_and_reported() {
        let items = vec![
            item(ItemKind::Function, "f", 1),
            item(ItemKind::Function, "g", 2),
        ];
        let edges = [
            DependEdge {
                from: r(1),
                to: r(2),
            },
            DependEdge {
                from: r(2),
                to: r(1),
            },
        ];
        let ordered = order(items, &edges);
        assert_eq!(ordered.items.len(), 2);
        assert_eq!(ordered.cycles_broken, ["function app.f"]);
    }

    #[test]
    fn a_pre_data_item_needing_post_data_moves_to_post_data() {
        let items = vec![
            item(ItemKind::View, "v", 1),
            item(ItemKind::Constraint, "t_pkey", 2),
        ];
        let edges = [DependEdge {
            from: r(1),
            to: r(2),
        }];
        let ordered = order(items, &edges);
        assert_eq!(names(&ordered), ["t_pkey", "v"]);
        assert_eq!(ordered.items[1].section, Section::PostData);
    }
}
