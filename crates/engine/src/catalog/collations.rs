//! Collations (`CREATE COLLATION`): libc, ICU (with rules from 16) and builtin (17+), before
//! the types and tables that use them. Where the locale is kept moved between versions
//! (`collcollate` before 15, `colliculocale` in 15 and 16, `colllocale` from 17): `get` reads
//! it from wherever the server keeps it, and `dump` never knows.

use super::model::Header;
use super::*;
use crate::sql::Sql;

/// A collation as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collation {
    pub header: Header,
    pub deterministic: bool,
    pub provider: CollationProvider,
}

/// Where a collation's rules come from, with what each provider is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollationProvider {
    Libc {
        collate: String,
        ctype: String,
    },
    Icu {
        locale: String,
        rules: Option<String>,
    },
    Builtin {
        locale: String,
    },
}

pub(super) async fn collations(db: &Db<'_>, catalog: &mut Catalog) -> Result<(), CatalogError> {
    for collation in get(db).await? {
        catalog.items.push(dump(&collation));
    }
    Ok(())
}

/// Every user collation (not an extension's).
pub(super) async fn get(db: &Db<'_>) -> Result<Vec<Collation>, CatalogError> {
    let locale = if db.version.at_least(17) {
        "c.colllocale"
    } else if db.version.at_least(15) {
        "c.colliculocale"
    } else {
        "CASE WHEN c.collprovider = 'i' THEN c.collcollate END"
    };
    let rules = if db.version.at_least(16) {
        "c.collicurules"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT c.oid, n.nspname::text AS schema, c.collname::text AS name, \
         quote_ident(n.nspname) || '.' || quote_ident(c.collname) AS q, c.collprovider::text AS provider, \
         c.collisdeterministic, c.collcollate, c.collctype, {locale} AS locale, {rules} AS rules, \
         quote_ident(pg_get_userbyid(c.collowner)) AS owner, (SELECT description FROM pg_description WHERE objoid = c.oid AND classoid = 'pg_collation'::regclass AND objsubid = 0) AS comment \
         FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace \
         WHERE c.oid >= 16384 AND {USER_SCHEMA} AND {} ORDER BY c.oid",
        not_in_extension("pg_collation", "c.oid")
    );
    let mut collations = Vec::new();
    for row in db.query("collations", &sql).await? {
        let text = |column: &str| -> Result<String, CatalogError> {
            Ok(row.get::<Option<String>>(column)?.unwrap_or_default())
        };
        let provider = match row.get::<String>("provider")?.as_str() {
            "i" => CollationProvider::Icu {
                locale: text("locale")?,
                rules: row.get("rules")?,
            },
            "b" => CollationProvider::Builtin {
                locale: text("locale")?,
            },
            _ => CollationProvider::Libc {
                collate: text("collcollate")?,
                ctype: text("collctype")?,
            },
        };
        collations.push(Collation {
            header: Header::of(row.schema_object()?, row.get("owner")?, row.get("comment")?),
            deterministic: row.get("collisdeterministic")?,
            provider,
        });
    }
    Ok(collations)
}

/// The item that creates `collation`, as pg_dump's `dumpCollation` writes it.
pub(super) fn dump(collation: &Collation) -> Item {
    let Collation {
        header,
        deterministic,
        provider,
    } = collation;
    let mut options = vec![format!(
        "provider = {}",
        match provider {
            CollationProvider::Icu { .. } => "icu",
            CollationProvider::Builtin { .. } => "builtin",
            CollationProvider::Libc { .. } => "libc",
        }
    )];
    if !deterministic {
        options.push("deterministic = false".into());
    }
    match provider {
        CollationProvider::Icu { locale, rules } => {
            options.push(format!("locale = {}", literal(locale)));
            if let Some(rules) = rules {
                options.push(format!("rules = {}", literal(rules)));
            }
        }
        CollationProvider::Builtin { locale } => {
            options.push(format!("locale = {}", literal(locale)))
        }
        CollationProvider::Libc { collate, ctype } if collate == ctype => {
            options.push(format!("locale = {}", literal(collate)))
        }
        CollationProvider::Libc { collate, ctype } => {
            options.push(format!("lc_collate = {}", literal(collate)));
            options.push(format!("lc_ctype = {}", literal(ctype)));
        }
    }
    let mut sql = Sql::from(format!(
        "CREATE COLLATION {} ({});\n",
        header.q,
        options.join(", ")
    ));
    sql.append(header.tail("COLLATION"));
    Item::new(ItemKind::Collation, &header.schema, &header.name, sql)
        .owning([oid_ref(class::PG_COLLATION, header.oid)])
}

#[cfg(test)]
mod tests {
    use super::super::model::tests::header;
    use super::*;

    fn collation(provider: CollationProvider, deterministic: bool) -> Collation {
        Collation {
            header: header("public.\"C x\"", Some("app")),
            deterministic,
            provider,
        }
    }

    #[test]
    fn each_provider_renders_its_own_options() {
        let libc = dump(&collation(
            CollationProvider::Libc {
                collate: "C".into(),
                ctype: "C".into(),
            },
            true,
        ));
        assert_eq!(
            libc.sql,
            "CREATE COLLATION public.\"C x\" (provider = libc, locale = 'C');\n\
             ALTER COLLATION public.\"C x\" OWNER TO app;\n"
        );
        assert_eq!(
            (libc.schema.as_str(), libc.name.as_str()),
            ("public", "C x")
        );
        assert_eq!(libc.owns, [oid_ref(class::PG_COLLATION, 16_400)]);

        let split = dump(&collation(
            CollationProvider::Libc {
                collate: "C".into(),
                ctype: "en_US.utf8".into(),
            },
            true,
        ));
        assert!(
            split
                .sql
                .starts_with("CREATE COLLATION public.\"C x\" (provider = libc, lc_collate = 'C', lc_ctype = 'en_US.utf8');\n"),
            "{}",
            split.sql
        );

        // 16+: ICU rules; nondeterministic collations.
        let icu = dump(&collation(
            CollationProvider::Icu {
                locale: "und-u-ks-level2".into(),
                rules: Some("&a < b".into()),
            },
            false,
        ));
        assert!(icu.sql.starts_with(
            "CREATE COLLATION public.\"C x\" (provider = icu, deterministic = false, locale = 'und-u-ks-level2', rules = '&a < b');\n"
        ), "{}", icu.sql);

        // 17+: the builtin provider.
        let builtin = dump(&collation(
            CollationProvider::Builtin {
                locale: "C.UTF-8".into(),
            },
            true,
        ));
        assert!(
            builtin.sql.starts_with(
                "CREATE COLLATION public.\"C x\" (provider = builtin, locale = 'C.UTF-8');\n"
            ),
            "{}",
            builtin.sql
        );
    }
}
