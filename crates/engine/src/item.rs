//! Dump items: one object's DDL with what it needs to exist first.

use serde::{Deserialize, Serialize};

use super::sql::{Mark, Sql};

/// A catalog row: the catalog's own OID plus the row's OID (like `pg_depend`'s classid/objid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub class: u32,
    pub oid: u32,
}

/// OIDs of the system catalogs an item can own rows of (stable across PostgreSQL versions).
pub mod class {
    pub const PG_CLASS: u32 = 1259;
    pub const PG_TYPE: u32 = 1247;
    pub const PG_PROC: u32 = 1255;
    pub const PG_NAMESPACE: u32 = 2615;
    pub const PG_CONSTRAINT: u32 = 2606;
    pub const PG_TRIGGER: u32 = 2620;
    pub const PG_REWRITE: u32 = 2618;
    pub const PG_ATTRDEF: u32 = 2604;
    pub const PG_POLICY: u32 = 3256;
    pub const PG_EXTENSION: u32 = 3079;
    pub const PG_AM: u32 = 2601;
    pub const PG_DEFAULT_ACL: u32 = 826;
    pub const PG_COLLATION: u32 = 3456;
    pub const PG_STATISTIC_EXT: u32 = 3381;
    pub const PG_EVENT_TRIGGER: u32 = 3466;
    pub const PG_PUBLICATION: u32 = 6104;
    pub const PG_PUBLICATION_REL: u32 = 6106;
    pub const PG_PUBLICATION_NAMESPACE: u32 = 6237;
    pub const PG_SUBSCRIPTION: u32 = 6100;
    pub const PG_TS_DICT: u32 = 3600;
    pub const PG_TS_CONFIG: u32 = 3602;
    pub const PG_TS_PARSER: u32 = 3601;
    pub const PG_TS_TEMPLATE: u32 = 3764;
    pub const PG_OPERATOR: u32 = 2617;
    pub const PG_OPCLASS: u32 = 2616;
    pub const PG_OPFAMILY: u32 = 2753;
    pub const PG_AMOP: u32 = 2602;
    pub const PG_AMPROC: u32 = 2603;
    pub const PG_CAST: u32 = 2605;
    pub const PG_TRANSFORM: u32 = 3576;
    pub const PG_LANGUAGE: u32 = 2612;
    pub const PG_CONVERSION: u32 = 2607;
    pub const PG_FOREIGN_DATA_WRAPPER: u32 = 2328;
    pub const PG_FOREIGN_SERVER: u32 = 1417;
    pub const PG_USER_MAPPING: u32 = 1418;
    /// Large objects are named by pg_largeobject's OID, as pg_depend and pg_identify_object do.
    pub const PG_LARGEOBJECT: u32 = 2613;
    /// Not a catalog: the refresh of a materialized view (by its OID), so that a refresh can
    /// need another one.
    pub const REFRESH: u32 = 0;
    /// Not a catalog: the shell of a base type (by the type's OID), which its I/O functions
    /// are created against.
    pub const SHELL_TYPE: u32 = 1;
}

/// Where an item runs in a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    PreData,
    PostData,
}

/// What an item creates. The declaration order is the tie-break priority (pg_dump's idea:
/// among items free to go, schemas before types before functions before tables...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    Schema,
    Language,
    Extension,
    AccessMethod,
    Collation,
    Transform,
    TextSearch,
    Type,
    Cast,
    Function,
    Aggregate,
    Operator,
    OperatorFamily,
    OperatorClass,
    Conversion,
    ForeignDataWrapper,
    ForeignServer,
    UserMapping,
    Sequence,
    Table,
    PartitionAttach,
    Check,
    SequenceOwnedBy,
    View,
    MaterializedView,
    LargeObject,
    SequenceValue,
    Constraint,
    Index,
    IndexAttach,
    ForeignKey,
    Statistics,
    Trigger,
    Rule,
    Policy,
    TableProperties,
    Publication,
    PublicationMember,
    Subscription,
    Acl,
    LargeObjectAcl,
    DefaultAcl,
    SecurityLabel,
    Refresh,
    EventTrigger,
    /// A relation's planner statistics (`pg_restore_relation_stats` and
    /// `pg_restore_attribute_stats`), applied last onto PostgreSQL 18 and later.
    StatisticsData,
    /// A table whose column statistics the backup role could not read: ANALYZE it last.
    Analyze,
}

impl ItemKind {
    /// The section an item of this kind belongs to when nothing forces it later.
    pub fn natural_section(self) -> Section {
        use ItemKind::*;
        match self {
            Schema | Language | Extension | AccessMethod | Collation | Transform | TextSearch
            | Type | Cast | Function | Aggregate | Operator | OperatorFamily | OperatorClass
            | Conversion | ForeignDataWrapper | ForeignServer | UserMapping | Sequence | Table
            | PartitionAttach | Check | SequenceOwnedBy | View | MaterializedView | LargeObject => {
                Section::PreData
            }
            _ => Section::PostData,
        }
    }

    /// Whether the item grants or revokes privileges (what `--no-acl` leaves out).
    pub fn is_privilege(self) -> bool {
        matches!(
            self,
            ItemKind::Acl | ItemKind::LargeObjectAcl | ItemKind::DefaultAcl
        )
    }

    /// Whether the item gives the planner its statistics (the restore's last phase).
    pub fn is_planner_statistics(self) -> bool {
        matches!(self, ItemKind::StatisticsData | ItemKind::Analyze)
    }

    /// Whether restore may build items of this kind for different tables at once.
    pub fn builds_in_parallel(self) -> bool {
        matches!(self, ItemKind::Constraint | ItemKind::Index)
    }
}

/// One unit of DDL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub kind: ItemKind,
    /// Schema of the object ("" for objects outside schemas).
    pub schema: String,
    /// The object's name for ordering and messages, e.g. `users_pkey` or `f(integer)`.
    pub name: String,
    /// The table this item belongs to (`schema.name`, quoted), for per-table scheduling.
    pub table: Option<String>,
    /// Statements, each ending in `;` and a newline.
    pub sql: String,
    /// Where `sql` names roles, changes an owner, acts as a grantor or adds a key.
    pub marks: Vec<Mark>,
    /// For a foreign key: the table it references (`schema.name`, quoted), which a restore
    /// of some tables only keeps it for when that table is there too.
    pub references: Option<String>,
    /// An index (or an exclusion constraint's) whose access method builds slowly (GIN, GiST,
    /// SP-GiST): restore starts it first among its table's builds.
    pub slow_build: bool,
    /// Catalog rows this item creates.
    pub owns: Vec<ObjectRef>,
    /// Catalog rows this item needs, besides those `pg_depend` reports.
    pub needs: Vec<ObjectRef>,
    /// Filled by ordering: the section after dependencies may have pushed the item later.
    pub section: Section,
}

impl Item {
    pub fn new(kind: ItemKind, schema: &str, name: &str, sql: impl Into<Sql>) -> Self {
        let Sql {
            text: sql,
            mut marks,
        } = sql.into();
        marks.sort_by_key(|m| (m.at, std::cmp::Reverse(m.len)));
        Self {
            kind,
            schema: schema.to_string(),
            name: name.to_string(),
            table: None,
            sql,
            marks,
            references: None,
            slow_build: false,
            owns: Vec::new(),
            needs: Vec::new(),
            section: kind.natural_section(),
        }
    }

    pub fn owning(mut self, refs: impl IntoIterator<Item = ObjectRef>) -> Self {
        self.owns.extend(refs);
        self
    }

    pub fn needing(mut self, refs: impl IntoIterator<Item = ObjectRef>) -> Self {
        self.needs.extend(refs);
        self
    }

    pub fn of_table(mut self, table: &str) -> Self {
        self.table = Some(table.to_string());
        self
    }

    /// `kind schema.name`, for messages.
    pub fn label(&self) -> String {
        let kind = serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if self.schema.is_empty() {
            format!("{kind} {}", self.name)
        } else {
            format!("{kind} {}.{}", self.schema, self.name)
        }
    }
}
