//! `restore --clean` and `restore --tables`: destructive steps come last and are scoped. Every
//! part a restore will load is checked before anything is dropped; `--tables` into a database
//! that has objects touches only the selected tables; whatever depends on them from outside
//! the selection is refused by name, before anything is dropped.

use backstop::engine::restore::RestoreOptions;
use backstop::engine::verify::{Level, Verdict};
use backstop_tests::postgres::{TestDb, fresh_database};

use crate::engine::{file_store, first_table_part, options, restore_into, take};

/// A shop: customers and orders (a foreign key, a NOT VALID check, a serial id, an index),
/// and a view over both.
fn shop(db: &TestDb) {
    db.psql(
        "CREATE TABLE public.customers (id int PRIMARY KEY, name text NOT NULL);
         INSERT INTO public.customers SELECT g, 'c' || g FROM generate_series(1, 20) g;
         CREATE TABLE public.orders (id serial PRIMARY KEY, customer int NOT NULL REFERENCES public.customers, total numeric);
         INSERT INTO public.orders (customer, total) SELECT 1 + g % 20, g FROM generate_series(1, 500) g;
         INSERT INTO public.orders (customer, total) VALUES (1, -5);
         ALTER TABLE public.orders ADD CONSTRAINT total_not_negative CHECK (total >= 0) NOT VALID;
         CREATE INDEX orders_customer ON public.orders (customer);
         COMMENT ON TABLE public.orders IS 'what was sold';",
    );
}

fn clean() -> RestoreOptions {
    RestoreOptions {
        clean: true,
        ..RestoreOptions::new(2)
    }
}

fn tables(names: &[&str], clean: bool) -> RestoreOptions {
    RestoreOptions {
        tables: Some(names.iter().map(|n| n.to_string()).collect()),
        clean,
        ..RestoreOptions::new(2)
    }
}

/// The definition of a table as psql's `\d` shows it: columns, indexes, constraints (NOT
/// VALID ones included), references.
fn described(db: &TestDb, table: &str) -> String {
    db.cluster()
        .run_psql(&db.name, &["-c", &format!("\\d {table}")])
}

/// `--clean` over a database holding an extension in a schema of its own (most real
/// databases): the extension goes with its schema, `DROP EXTENSION` does not fail on it, and
/// a backup of the cleaned database passes restore-level verification.
/// Before: "dropping the target's objects (--clean): extension "citext" does not exist".
#[tokio::test]
async fn clean_replaces_a_database_with_an_extension_in_a_user_schema_and_verifies_after() {
    let source = fresh_database("clean extension source");
    shop(&source);
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();

    let target = fresh_database("clean extension target");
    target.psql(
        "CREATE SCHEMA ext; CREATE EXTENSION citext SCHEMA ext;
         CREATE TABLE public.old (email ext.citext); INSERT INTO public.old VALUES ('A@B');
         CREATE SCHEMA app; CREATE TABLE app.events (id int);",
    );
    restore_into(&manifest, &store, &target, clean())
        .await
        .unwrap_or_else(|e| panic!("restore --clean: {e}"));
    crate::engine::assert_same_dump(&source.pg_dump(), &target.pg_dump(), "--clean");

    let again = take(&target, &store, &options(&target)).await.unwrap();
    let result = crate::verify::check(&store, &again, Level::Restore).await;
    assert_eq!(
        result.verdict,
        Verdict::Passed,
        "a backup of a cleaned database: {:?}",
        result.findings
    );
}

/// A corrupt part is found before `--clean` drops anything: the target keeps every object and
/// row it had. Before: the target was emptied, then the restore failed on the part.
#[tokio::test]
async fn clean_checks_every_part_before_dropping_anything() {
    let source = fresh_database("clean corrupt source");
    shop(&source);
    let (dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let (part, path) = first_table_part(dir.path(), &manifest);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    let target = fresh_database("clean corrupt target");
    shop(&target);
    target.psql("CREATE TABLE public.precious (id int); INSERT INTO public.precious VALUES (7);");
    let before = target.pg_dump();
    for options in [
        clean(),
        tables(&["public.orders", "public.customers"], true),
    ] {
        let error = restore_into(&manifest, &store, &target, options)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&part.key) && error.contains("nothing was dropped"),
            "{error}"
        );
        assert_eq!(target.pg_dump(), before, "the target was changed");
    }
}

/// `--tables T --clean` into a live database replaces T only: every other object stays as it
/// is, T comes back with its index, comment, serial sequence, its foreign key to a table left
/// in place and its NOT VALID check. Before: every other object of the target was dropped,
/// and the NOT VALID check was left out.
#[tokio::test]
async fn tables_clean_replaces_only_the_selected_tables() {
    let source = fresh_database("tables clean source");
    shop(&source);
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();

    // The live database: the same schema, later rows, objects the backup never saw.
    let live = fresh_database("tables clean live");
    shop(&live);
    live.psql(
        "INSERT INTO public.customers VALUES (21, 'new');
         DELETE FROM public.orders WHERE id > 100;
         CREATE TABLE public.audit (at timestamptz DEFAULT now()); INSERT INTO public.audit DEFAULT VALUES;
         CREATE FUNCTION public.answer() RETURNS int LANGUAGE sql AS 'SELECT 42';",
    );
    let customers_before = live.psql("SELECT count(*), max(id) FROM public.customers");
    let definition_before = described(&live, "public.orders");

    restore_into(&manifest, &store, &live, tables(&["orders"], true))
        .await
        .unwrap_or_else(|e| panic!("restore --tables orders --clean: {e}"));
    assert_eq!(
        live.psql("SELECT count(*), sum(total) FROM public.orders"),
        source.psql("SELECT count(*), sum(total) FROM public.orders"),
        "orders came back as backed up"
    );
    assert_eq!(
        live.psql("SELECT count(*), max(id) FROM public.customers"),
        customers_before,
        "customers were not touched"
    );
    assert_eq!(live.psql("SELECT count(*) FROM public.audit").trim(), "1");
    assert_eq!(live.psql("SELECT public.answer()").trim(), "42");
    assert_eq!(described(&live, "public.orders"), definition_before);
    assert_eq!(
        live.psql("SELECT obj_description('public.orders'::regclass, 'pg_class')")
            .trim(),
        "what was sold"
    );
    assert_eq!(
        live.psql("SELECT nextval('public.orders_id_seq')"),
        source.psql("SELECT nextval('public.orders_id_seq')"),
        "the serial sequence came back with its value"
    );
}

/// A table a view (or another table's foreign key) outside the selection depends on is not
/// dropped: the restore is refused naming the dependent, and nothing changes. Without
/// `--clean`, a selected table that exists is refused by name; one that does not exist is
/// created beside the target's other objects.
#[tokio::test]
async fn tables_clean_refuses_by_name_what_depends_on_them_from_outside() {
    let source = fresh_database("tables dependents source");
    shop(&source);
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();

    let live = fresh_database("tables dependents live");
    shop(&live);
    live.psql("CREATE VIEW public.big_orders AS SELECT id FROM public.orders WHERE total > 100;");
    let before = live.pg_dump();
    let error = restore_into(&manifest, &store, &live, tables(&["orders"], true))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("public.big_orders") && error.contains("--tables"),
        "{error}"
    );
    assert_eq!(live.pg_dump(), before, "nothing was dropped");

    // customers is referenced by orders, which is not selected.
    let error = restore_into(&manifest, &store, &live, tables(&["customers"], true))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("public.orders"), "{error}");
    assert_eq!(live.pg_dump(), before, "nothing was dropped");

    let error = restore_into(&manifest, &store, &live, tables(&["orders"], false))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("public.orders") && error.contains("--clean"),
        "{error}"
    );

    live.psql("DROP VIEW public.big_orders; DROP TABLE public.orders;");
    restore_into(&manifest, &store, &live, tables(&["orders"], false))
        .await
        .unwrap_or_else(|e| panic!("--tables orders beside the other objects: {e}"));
    assert_eq!(
        live.psql("SELECT count(*) FROM public.orders"),
        source.psql("SELECT count(*) FROM public.orders")
    );
}
