//! Table constraints: keys, checks, exclusions and foreign keys, with partition clones claimed
//! by their parent. They are read apart from the rest of the catalog (`read_apart`), on a
//! second session.

use std::collections::HashMap;

use super::indexes::slow_method;
use super::model::{Header, ParentIndex};
use super::*;
use crate::sql::{Marked, Sql};

/// A table constraint as the catalog describes it (`header.q` is its bare name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub header: Header,
    pub table_oid: u32,
    pub kind: ConstraintType,
    /// What follows the name in `ADD CONSTRAINT`, as `pg_get_constraintdef` writes it.
    pub definition: String,
    /// `false` for a constraint added `NOT VALID` and not validated since.
    pub validated: bool,
    /// The constraint this one was cloned from onto a partition.
    pub parent: Option<u32>,
    /// Defined on its table itself (`conislocal`), not only inherited from a parent.
    pub local: bool,
    /// A check that children of table inheritance (not partitions) inherit.
    pub inherited_by_children: bool,
    /// The index of a key or exclusion constraint.
    pub index: Option<KeyIndex>,
    /// The access method of a key's or an exclusion's index (what makes its build slow);
    /// none for other kinds.
    pub index_method: Option<String>,
    /// The table a foreign key references, quoted and schema-qualified.
    pub references: Option<String>,
    /// The key columns (quoted) of a primary key or unique constraint that its index says all
    /// of (btree on plain columns, nothing deferrable, included, stored with options or in
    /// another tablespace, no NULLS NOT DISTINCT or WITHOUT OVERLAPS): restore may build it
    /// as an index first and attach it after.
    pub plain_key: Option<Vec<String>>,
}

/// What a constraint is (`contype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintType {
    Check,
    PrimaryKey,
    Unique,
    Exclusion,
    ForeignKey,
    /// A column's NOT NULL, a constraint of its own from 18: the table's column writes it.
    NotNull,
    /// A constraint trigger's: not reproduced yet.
    Trigger,
}

impl ConstraintType {
    /// From the catalog's one-letter code; `None` for one this engine does not know.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "c" => ConstraintType::Check,
            "p" => ConstraintType::PrimaryKey,
            "u" => ConstraintType::Unique,
            "x" => ConstraintType::Exclusion,
            "f" => ConstraintType::ForeignKey,
            "n" => ConstraintType::NotNull,
            "t" => ConstraintType::Trigger,
            _ => return None,
        })
    }

    /// Whether the constraint is an index: a key or an exclusion constraint.
    pub fn has_index(self) -> bool {
        matches!(
            self,
            ConstraintType::PrimaryKey | ConstraintType::Unique | ConstraintType::Exclusion
        )
    }
}

/// The index a key or exclusion constraint made, in its table's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIndex {
    pub oid: u32,
    /// Its quoted name.
    pub q: String,
    pub comment: Option<String>,
    pub clustered: bool,
    pub replica_identity: bool,
    /// The partitioned table's index this one is attached to.
    pub parent: Option<ParentIndex>,
}

/// Every table constraint, read apart from the rest of the catalog (it needs nothing else read).
/// A plain key's columns are read with it: a primary key or unique constraint that its index
/// says all of (btree on plain columns, nothing deferrable, included, stored with options or
/// in another tablespace, no NULLS NOT DISTINCT or WITHOUT OVERLAPS), which restore may build
/// as an index first and attach after. The index of a key or an exclusion is joined once (a
/// foreign key's `conindid` is the referenced key's index, none of its own); NOT NULL (18)
/// and constraint trigger rows are left out, since their columns and triggers make them.
fn sql(version: ServerVersion) -> String {
    let nulls = if version.at_least(15) {
        " AND NOT i.indnullsnotdistinct"
    } else {
        ""
    };
    let period = if version.at_least(18) {
        " AND NOT con.conperiod"
    } else {
        ""
    };
    format!(
        "SELECT con.oid, con.conrelid, con.contype::text AS kind, con.conname::text AS name, quote_ident(con.conname) AS q, \
         pg_get_constraintdef(con.oid) AS def, con.convalidated, con.conindid, con.conparentid, con.conislocal, \
         (con.contype = 'c' AND NOT con.connoinherit AND EXISTS (SELECT 1 FROM pg_inherits h JOIN pg_class hc \
             ON hc.oid = h.inhrelid WHERE h.inhparent = con.conrelid AND NOT hc.relispartition)) AS inherited_by_children, \
         (SELECT description FROM pg_description WHERE objoid = con.oid AND classoid = 'pg_constraint'::regclass AND objsubid = 0) AS comment, \
         CASE WHEN con.conindid <> 0 AND con.contype IN ('p', 'u', 'x') THEN (SELECT description FROM pg_description WHERE objoid = con.conindid AND classoid = 'pg_class'::regclass AND objsubid = 0) END AS index_comment, \
         ki.indisclustered AS clustered, ki.indisreplident AS replident, quote_ident(kc.relname) AS index_name, \
         ka.amname::text AS method, \
         (SELECT quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) FROM pg_inherits h \
             JOIN pg_class pc ON pc.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace \
             WHERE h.inhrelid = ki.indexrelid) AS parent_index, \
         (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = ki.indexrelid) AS parent_index_oid, \
         CASE WHEN con.contype = 'f' THEN (SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = con.confrelid) END AS referenced, \
         CASE WHEN con.contype IN ('p', 'u') AND NOT con.condeferrable{period} THEN (SELECT array_agg(quote_ident(a.attname) ORDER BY k.n)::text[] \
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam \
             CROSS JOIN unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
             WHERE i.indexrelid = con.conindid AND i.indnkeyatts = i.indnatts AND i.indexprs IS NULL \
             AND ic.reloptions IS NULL AND ic.reltablespace = 0 AND am.amname = 'btree'{nulls}) END AS plain_key \
         FROM pg_constraint con \
         LEFT JOIN pg_index ki ON ki.indexrelid = con.conindid AND con.contype IN ('p', 'u', 'x') \
         LEFT JOIN pg_class kc ON kc.oid = ki.indexrelid LEFT JOIN pg_am ka ON ka.oid = kc.relam \
         WHERE con.conrelid <> 0 AND con.oid >= 16384 AND con.contype NOT IN ('n', 't') \
         ORDER BY con.conrelid, con.conname",
    )
}

/// Every table constraint, clones on partitions included.
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Constraint>, CatalogError> {
    let mut constraints = Vec::new();
    for row in db.query("constraints", &sql(db.version)).await? {
        let Some(kind) = ConstraintType::from_code(&row.get::<String>("kind")?) else {
            continue;
        };
        let index = if kind.has_index() {
            Some(KeyIndex {
                oid: row.get("conindid")?,
                q: row.get("index_name")?,
                comment: row.get("index_comment")?,
                clustered: row.get::<Option<bool>>("clustered")? == Some(true),
                replica_identity: row.get::<Option<bool>>("replident")? == Some(true),
                parent: ParentIndex::of(&row)?,
            })
        } else {
            None
        };
        let parent: u32 = row.get("conparentid")?;
        constraints.push(Constraint {
            header: Header::bare(&row)?,
            table_oid: row.get("conrelid")?,
            kind,
            definition: row.get("def")?,
            validated: row.get("convalidated")?,
            parent: (parent != 0).then_some(parent),
            local: row.get("conislocal")?,
            inherited_by_children: row.get("inherited_by_children")?,
            index,
            index_method: row.get("method")?,
            references: row.get("referenced")?,
            plain_key: row.get("plain_key")?,
        });
    }
    Ok(constraints)
}

/// What the constraints on the dumped relations make.
#[derive(Debug, Default)]
pub(super) struct Dumped {
    pub items: Vec<Item>,
    /// Checks a child of table inheritance inherits: its `CREATE TABLE … INHERITS` makes them.
    pub recreated: Vec<ObjectRef>,
    /// Each table's validated checks, which an `ATTACH PARTITION` of it comes after.
    pub checks: HashMap<u32, Vec<ObjectRef>>,
}

pub(super) fn constraints(
    constraints: &[Constraint],
    catalog: &mut Catalog,
    relations: &HashMap<u32, Relation>,
) {
    let dumped = dump(constraints, relations);
    catalog.items.extend(dumped.items);
    catalog.recreated.extend(dumped.recreated);
    attach_after_checks(&mut catalog.items, &dumped.checks);
}

/// The items of `constraints` on the dumped `relations`. A foreign key cloned onto a
/// partition is claimed by the one it came from (whose `ADD CONSTRAINT` on the partitioned
/// table makes it again); so is a cloned check. A cloned key or exclusion is the partition's
/// own, attached to its parent's index.
pub(super) fn dump(constraints: &[Constraint], relations: &HashMap<u32, Relation>) -> Dumped {
    let mut clones = foreign_key_clones(constraints);
    let mut dumped = Dumped::default();
    for constraint in constraints {
        let Some(table) = relations.get(&constraint.table_oid) else {
            continue;
        };
        let object = oid_ref(class::PG_CONSTRAINT, constraint.header.oid);
        if constraint.kind == ConstraintType::Check && table.inherits && !constraint.local {
            dumped.recreated.push(object);
            continue; // inherited from the parent: CREATE TABLE ... INHERITS brings it
        }
        if constraint.parent.is_some() && !constraint.kind.has_index() {
            continue;
        }
        let item_kind = match constraint.kind {
            ConstraintType::PrimaryKey | ConstraintType::Unique | ConstraintType::Exclusion => {
                ItemKind::Constraint
            }
            ConstraintType::ForeignKey => ItemKind::ForeignKey,
            ConstraintType::Check if constraint.validated => ItemKind::Check,
            // NOT VALID checks run after the data, with the foreign keys.
            ConstraintType::Check => ItemKind::ForeignKey,
            ConstraintType::NotNull | ConstraintType::Trigger => continue,
        };
        let t = &table.qualified_name;
        let mut owns = vec![object];
        owns.extend(clones.remove(&constraint.header.oid).unwrap_or_default());
        if let Some(index) = &constraint.index {
            owns.push(oid_ref(class::PG_CLASS, index.oid));
            if let Some(parent) = &index.parent {
                let qualified = format!("{}.{}", quote_schema(t), index.q);
                dumped.items.push(parent.attach(
                    index.oid,
                    &qualified,
                    table,
                    &constraint.header.name,
                ));
            }
        }
        if item_kind == ItemKind::Check {
            dumped
                .checks
                .entry(constraint.table_oid)
                .or_default()
                .push(object);
        }
        let mut item = Item::new(
            item_kind,
            &table.schema,
            &constraint.header.name,
            constraint_sql(constraint, table),
        )
        .owning(owns)
        .needing([oid_ref(class::PG_CLASS, constraint.table_oid)])
        .of_table(t);
        item.references = constraint.references.clone();
        item.slow_build = slow_method(constraint.index_method.as_deref());
        dumped.items.push(item);
    }
    dumped
}

/// The foreign keys cloned onto partitions, by the constraint they all came from.
fn foreign_key_clones(constraints: &[Constraint]) -> HashMap<u32, Vec<ObjectRef>> {
    let parent_of: HashMap<u32, u32> = constraints
        .iter()
        .filter_map(|c| Some((c.header.oid, c.parent?)))
        .collect();
    let root = |mut oid: u32| {
        while let Some(parent) = parent_of.get(&oid) {
            oid = *parent;
        }
        oid
    };
    let mut clones: HashMap<u32, Vec<ObjectRef>> = HashMap::new();
    for constraint in constraints {
        if constraint.parent.is_some() && constraint.kind == ConstraintType::ForeignKey {
            clones
                .entry(root(constraint.header.oid))
                .or_default()
                .push(oid_ref(class::PG_CONSTRAINT, constraint.header.oid));
        }
    }
    clones
}

/// The statements that add `constraint` to `table`, with what its index is (clustered on,
/// the replica identity) and the comments of both.
fn constraint_sql(constraint: &Constraint, table: &Relation) -> Sql {
    let (t, q) = (&table.qualified_name, &constraint.header.q);
    // A foreign key or check on a partitioned table is added to the whole tree, and so is a
    // check that inheritance children inherit (ONLY is refused for them).
    let whole_tree = (matches!(
        constraint.kind,
        ConstraintType::ForeignKey | ConstraintType::Check
    ) && table.kind == "p")
        || constraint.inherited_by_children;
    let only = if whole_tree { "" } else { "ONLY " };
    let statement = format!(
        "ALTER TABLE {only}{t} ADD CONSTRAINT {q} {};",
        constraint.definition
    );
    let mut sql = Sql::new();
    match &constraint.plain_key {
        Some(columns) if !whole_tree => sql.add_key(
            &statement,
            Marked::AddKey {
                name: q.clone(),
                primary: constraint.kind == ConstraintType::PrimaryKey,
                columns: columns.clone(),
            },
        ),
        _ => sql.push_str(&statement),
    };
    sql.push_str("\n");
    if let Some(index) = &constraint.index {
        if index.clustered {
            sql.push_str(&format!("ALTER TABLE {t} CLUSTER ON {};\n", index.q));
        }
        if index.replica_identity {
            sql.push_str(&format!(
                "ALTER TABLE ONLY {t} REPLICA IDENTITY USING INDEX {};\n",
                index.q
            ));
        }
    }
    sql.append(
        constraint
            .header
            .tail_as("CONSTRAINT", &format!("{q} ON {t}")),
    );
    if let Some(index) = &constraint.index
        && let Some(comment) = &index.comment
    {
        sql.push_str(&format!(
            "COMMENT ON INDEX {}.{} IS {};\n",
            quote_schema(t),
            index.q,
            literal(comment)
        ));
    }
    sql
}

/// ATTACH PARTITION wants the partition to have its parent's checks already, and merges
/// them: both tables' `checks` come before each attachment among `items`.
fn attach_after_checks(items: &mut [Item], checks: &HashMap<u32, Vec<ObjectRef>>) {
    for attach in items
        .iter_mut()
        .filter(|i| i.kind == ItemKind::PartitionAttach)
    {
        let before: Vec<ObjectRef> = attach
            .needs
            .iter()
            .filter(|r| r.class == class::PG_CLASS)
            .flat_map(|r| checks.get(&r.oid).cloned().unwrap_or_default())
            .collect();
        attach.needs.extend(before);
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::{header, relation};
    use super::*;
    use crate::sql::Mark;

    const TABLE: u32 = 16_390;

    fn constraint(oid: u32, kind: ConstraintType, name: &str, definition: &str) -> Constraint {
        Constraint {
            header: Header {
                oid,
                ..header(name, None)
            },
            table_oid: TABLE,
            kind,
            definition: definition.into(),
            validated: true,
            parent: None,
            local: true,
            inherited_by_children: false,
            index: None,
            index_method: None,
            references: None,
            plain_key: None,
        }
    }

    fn key_index(oid: u32, q: &str) -> KeyIndex {
        KeyIndex {
            oid,
            q: q.into(),
            comment: None,
            clustered: false,
            replica_identity: false,
            parent: None,
        }
    }

    fn tables(table: Relation) -> HashMap<u32, Relation> {
        HashMap::from([(TABLE, table)])
    }

    #[test]
    fn a_plain_primary_key_is_marked_for_restore_to_split() {
        let mut key = constraint(
            100,
            ConstraintType::PrimaryKey,
            "orders_pkey",
            "PRIMARY KEY (id)",
        );
        key.index = Some(KeyIndex {
            comment: Some("by id".into()),
            clustered: true,
            replica_identity: true,
            ..key_index(200, "orders_pkey")
        });
        key.index_method = Some("btree".into());
        key.plain_key = Some(vec!["id".into()]);
        key.header.comment = Some("the key".into());
        let items = dump(&[key], &tables(relation("orders"))).items;
        assert_eq!(items.len(), 1);
        let item = &items[0];
        let statement = "ALTER TABLE ONLY app.orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);";
        assert_eq!(
            item.sql,
            format!(
                "{statement}\nALTER TABLE app.orders CLUSTER ON orders_pkey;\n\
                 ALTER TABLE ONLY app.orders REPLICA IDENTITY USING INDEX orders_pkey;\n\
                 COMMENT ON CONSTRAINT orders_pkey ON app.orders IS 'the key';\n\
                 COMMENT ON INDEX app.orders_pkey IS 'by id';\n"
            )
        );
        assert_eq!(
            item.marks,
            [Mark {
                at: 0,
                len: statement.len(),
                is: Marked::AddKey {
                    name: "orders_pkey".into(),
                    primary: true,
                    columns: vec!["id".into()],
                },
            }]
        );
        assert_eq!(
            (item.kind, item.schema.as_str(), item.name.as_str()),
            (ItemKind::Constraint, "app", "orders_pkey")
        );
        assert_eq!(
            item.owns,
            [
                oid_ref(class::PG_CONSTRAINT, 100),
                oid_ref(class::PG_CLASS, 200)
            ]
        );
        assert_eq!(item.needs, [oid_ref(class::PG_CLASS, TABLE)]);
        assert_eq!(item.table.as_deref(), Some("app.orders"));
        assert_eq!((item.references.as_deref(), item.slow_build), (None, false));
    }

    #[test]
    fn a_key_its_index_does_not_say_all_of_is_not_marked() {
        // 15+: NULLS NOT DISTINCT; deferrable keys on every version.
        let mut unique = constraint(
            100,
            ConstraintType::Unique,
            "codes_code_key",
            "UNIQUE NULLS NOT DISTINCT (code)",
        );
        unique.index = Some(key_index(200, "codes_code_key"));
        let item = &dump(&[unique], &tables(relation("codes"))).items[0];
        assert_eq!(
            item.sql,
            "ALTER TABLE ONLY app.codes ADD CONSTRAINT codes_code_key UNIQUE NULLS NOT DISTINCT (code);\n"
        );
        assert!(item.marks.is_empty());

        // 18: a key WITHOUT OVERLAPS is a GiST index.
        let mut period = constraint(
            101,
            ConstraintType::PrimaryKey,
            "rooms_pkey",
            "PRIMARY KEY (id, during WITHOUT OVERLAPS)",
        );
        period.index = Some(key_index(201, "rooms_pkey"));
        period.index_method = Some("gist".into());
        let item = &dump(&[period], &tables(relation("rooms"))).items[0];
        assert!(item.marks.is_empty());
        assert!(item.slow_build);
    }

    #[test]
    fn an_exclusion_constraint_builds_slowly() {
        let mut exclusion = constraint(
            100,
            ConstraintType::Exclusion,
            "no_overlap",
            "EXCLUDE USING gist (during WITH &&)",
        );
        exclusion.index = Some(key_index(200, "no_overlap"));
        exclusion.index_method = Some("gist".into());
        let item = &dump(&[exclusion], &tables(relation("bookings"))).items[0];
        assert_eq!(
            item.sql,
            "ALTER TABLE ONLY app.bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&);\n"
        );
        assert_eq!(item.kind, ItemKind::Constraint);
        assert!(item.slow_build);
        assert!(item.marks.is_empty());
    }

    #[test]
    fn a_partitions_key_is_its_own_and_attached_to_its_parents_index() {
        let mut key = constraint(
            101,
            ConstraintType::PrimaryKey,
            "events_2026_pkey",
            "PRIMARY KEY (id)",
        );
        key.parent = Some(100);
        key.index = Some(KeyIndex {
            parent: Some(ParentIndex {
                oid: 200,
                q: "app.events_pkey".into(),
            }),
            ..key_index(201, "events_2026_pkey")
        });
        key.plain_key = Some(vec!["id".into()]);
        let items = dump(&[key], &tables(relation("events_2026"))).items;
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].sql,
            "ALTER INDEX app.events_pkey ATTACH PARTITION app.events_2026_pkey;\n"
        );
        assert_eq!(
            (items[0].kind, items[0].name.as_str()),
            (ItemKind::IndexAttach, "events_2026_pkey")
        );
        assert_eq!(
            items[0].needs,
            [oid_ref(class::PG_CLASS, 201), oid_ref(class::PG_CLASS, 200)]
        );
        assert_eq!(items[0].table.as_deref(), Some("app.events_2026"));
        assert_eq!(items[1].kind, ItemKind::Constraint);
        assert_eq!(items[1].marks.len(), 1);
    }

    #[test]
    fn a_foreign_key_on_a_partitioned_table_claims_its_clones() {
        let mut partitioned = relation("lines");
        partitioned.kind = "p".into();
        let relations = HashMap::from([(TABLE, partitioned), (TABLE + 1, relation("lines_2026"))]);
        let definition = "FOREIGN KEY (order_id) REFERENCES app.orders(id)";
        let mut key = constraint(
            100,
            ConstraintType::ForeignKey,
            "lines_order_fkey",
            definition,
        );
        key.references = Some("app.orders".into());
        key.index_method = Some("btree".into());
        let mut clone = key.clone();
        clone.header.oid = 101;
        clone.table_oid = TABLE + 1;
        clone.parent = Some(100);
        let mut clone_of_clone = clone.clone();
        clone_of_clone.header.oid = 102;
        clone_of_clone.parent = Some(101);
        let items = dump(&[key, clone, clone_of_clone], &relations).items;
        assert_eq!(
            items.len(),
            1,
            "clones are made by their parent's ADD CONSTRAINT"
        );
        assert_eq!(
            items[0].sql,
            "ALTER TABLE app.lines ADD CONSTRAINT lines_order_fkey FOREIGN KEY (order_id) REFERENCES app.orders(id);\n"
        );
        assert_eq!(items[0].kind, ItemKind::ForeignKey);
        assert_eq!(items[0].references.as_deref(), Some("app.orders"));
        assert_eq!(
            items[0].owns,
            [
                oid_ref(class::PG_CONSTRAINT, 100),
                oid_ref(class::PG_CONSTRAINT, 101),
                oid_ref(class::PG_CONSTRAINT, 102)
            ]
        );
        assert!(!items[0].slow_build && items[0].marks.is_empty());
    }

    #[test]
    fn checks_valid_not_valid_inherited_and_inherited_by_children() {
        let check = |oid, validated| Constraint {
            validated,
            ..constraint(oid, ConstraintType::Check, "positive", "CHECK ((qty > 0))")
        };
        let dumped = dump(&[check(100, true)], &tables(relation("stock")));
        assert_eq!(
            dumped.items[0].sql,
            "ALTER TABLE ONLY app.stock ADD CONSTRAINT positive CHECK ((qty > 0));\n"
        );
        assert_eq!(dumped.items[0].kind, ItemKind::Check);
        assert_eq!(
            dumped.checks,
            HashMap::from([(TABLE, vec![oid_ref(class::PG_CONSTRAINT, 100)])])
        );

        // NOT VALID: after the data, with the foreign keys.
        let mut not_valid = check(100, false);
        not_valid.definition = "CHECK ((qty > 0)) NOT VALID".into();
        let dumped = dump(&[not_valid], &tables(relation("stock")));
        assert_eq!(dumped.items[0].kind, ItemKind::ForeignKey);
        assert!(dumped.checks.is_empty());

        // Inherited by children: added to the whole tree.
        let mut parents = check(100, true);
        parents.inherited_by_children = true;
        assert!(
            dump(&[parents], &tables(relation("stock"))).items[0]
                .sql
                .starts_with("ALTER TABLE app.stock ADD CONSTRAINT positive ")
        );

        // On a child: the inherited one is the parent's to make, its own is dumped.
        let mut child = relation("stock_child");
        child.inherits = true;
        let inherited = Constraint {
            local: false,
            ..check(101, true)
        };
        let dumped = dump(std::slice::from_ref(&inherited), &tables(child.clone()));
        assert!(dumped.items.is_empty());
        assert_eq!(dumped.recreated, [oid_ref(class::PG_CONSTRAINT, 101)]);
        let own = Constraint {
            local: true,
            ..inherited
        };
        assert_eq!(dump(&[own], &tables(child)).items.len(), 1);
    }

    #[test]
    fn not_null_and_trigger_constraints_and_other_tables_make_nothing() {
        // 18: every NOT NULL is a constraint, which its column writes.
        let not_null = constraint(100, ConstraintType::NotNull, "t_a_not_null", "NOT NULL a");
        let trigger = constraint(101, ConstraintType::Trigger, "t_audit", "TRIGGER");
        let dumped = dump(&[not_null, trigger], &tables(relation("t")));
        assert!(dumped.items.is_empty() && dumped.recreated.is_empty());
        let elsewhere = constraint(102, ConstraintType::Check, "c", "CHECK (true)");
        assert!(dump(&[elsewhere], &HashMap::new()).items.is_empty());
    }

    #[test]
    fn a_partition_is_attached_after_both_tables_checks() {
        let attach = Item::new(
            ItemKind::PartitionAttach,
            "app",
            "stock_2026",
            "ALTER TABLE ONLY app.stock ATTACH PARTITION app.stock_2026 FOR VALUES IN (2026);\n"
                .to_string(),
        )
        .needing([oid_ref(class::PG_CLASS, 2), oid_ref(class::PG_CLASS, 1)]);
        let mut items = vec![attach];
        let checks = HashMap::from([
            (1, vec![oid_ref(class::PG_CONSTRAINT, 10)]),
            (2, vec![oid_ref(class::PG_CONSTRAINT, 20)]),
        ]);
        attach_after_checks(&mut items, &checks);
        assert_eq!(
            items[0].needs,
            [
                oid_ref(class::PG_CLASS, 2),
                oid_ref(class::PG_CLASS, 1),
                oid_ref(class::PG_CONSTRAINT, 20),
                oid_ref(class::PG_CONSTRAINT, 10)
            ]
        );
    }

    #[test]
    fn the_query_reads_what_each_version_has() {
        let query = |major: u32| sql(ServerVersion(major * 10_000));
        assert!(!query(13).contains("indnullsnotdistinct"));
        assert!(query(15).contains("AND NOT i.indnullsnotdistinct"));
        assert!(!query(17).contains("conperiod"));
        assert!(query(18).contains("AND NOT con.conperiod"));
    }
}
