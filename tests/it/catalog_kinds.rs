//! One test per catalog kind that PostgreSQL's regression database holds beyond what
//! applications use: each loads a few objects of the kind in their awkward shapes, backs up
//! with no `--exclude`, restores, and must give the same `pg_dump` output and pass
//! restore-level verification with the inventory equal per kind, on the default server and
//! on the oldest and newest majors.

use backstop::engine::restore::RestoreOptions;
use backstop_tests::postgres::{cluster, cluster_of, fresh_database, fresh_database_on};

use crate::engine::{ROLE_CREATION, file_store, options, restore_into, round_trip, take};

/// Round-trips `sql` on the default server, and on the oldest and newest majors of the
/// matrix, and returns the backup's inventory count of each of `kinds` (the same on each).
async fn kind_round_trip(what: &str, sql: &str, kinds: &[&str]) -> Vec<u64> {
    let mut clusters = vec![cluster()];
    clusters.extend([13, 18].into_iter().filter_map(cluster_of));
    let mut counts: Option<Vec<u64>> = None;
    for cluster in clusters {
        let what = format!("{what} on {}", cluster.major);
        let source = fresh_database_on(cluster, &what);
        {
            let _roles = ROLE_CREATION.lock().await;
            source.psql(sql);
        }
        let manifest = round_trip(&source, &options(&source), 2, &what).await;
        let here: Vec<u64> = kinds
            .iter()
            .map(|kind| manifest.inventory.get(*kind).copied().unwrap_or(0))
            .collect();
        if let Some(first) = &counts {
            assert_eq!(&here, first, "{what}: {kinds:?}");
        }
        counts.get_or_insert(here);
    }
    counts.unwrap_or_default()
}

#[tokio::test]
async fn base_types_come_back_through_their_shells_and_io_functions() {
    let counts = kind_round_trip(
        "base types",
        "CREATE TYPE public.int42; \
         CREATE FUNCTION public.int42_in(cstring) RETURNS public.int42 LANGUAGE internal IMMUTABLE STRICT AS 'int4in'; \
         CREATE FUNCTION public.int42_out(public.int42) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'int4out'; \
         CREATE TYPE public.int42 (INTERNALLENGTH = 4, INPUT = public.int42_in, OUTPUT = public.int42_out, \
             DEFAULT = '42', ALIGNMENT = int4, STORAGE = plain, PASSEDBYVALUE); \
         CREATE TYPE public.label; \
         CREATE FUNCTION public.label_in(cstring) RETURNS public.label LANGUAGE internal IMMUTABLE STRICT AS 'textin'; \
         CREATE FUNCTION public.label_out(public.label) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'textout'; \
         CREATE TYPE public.label (INPUT = public.label_in, OUTPUT = public.label_out, INTERNALLENGTH = variable, \
             CATEGORY = 'S', PREFERRED = false, DELIMITER = ';', COLLATABLE = true, STORAGE = extended); \
         COMMENT ON TYPE public.label IS 'text by another name'; \
         CREATE TYPE public.only_a_name; \
         CREATE TABLE public.tagged (id public.int42, tag public.label COLLATE \"C\", tags public.label[]); \
         INSERT INTO public.tagged VALUES (DEFAULT, 'first', '{a;b}'), ('7', 'second', NULL);",
        &["type", "function"],
    )
    .await;
    assert_eq!(counts, vec![3, 4], "three types, four I/O functions");
}

/// Excluding a base type (with its I/O functions, which need it) leaves no shell behind.
#[tokio::test]
async fn excluding_a_base_type_takes_its_shell_along() {
    let source = fresh_database("base type excluded");
    source.psql(
        "CREATE TYPE public.int42; \
         CREATE FUNCTION public.int42_in(cstring) RETURNS public.int42 LANGUAGE internal IMMUTABLE STRICT AS 'int4in'; \
         CREATE FUNCTION public.int42_out(public.int42) RETURNS cstring LANGUAGE internal IMMUTABLE STRICT AS 'int4out'; \
         CREATE TYPE public.int42 (INTERNALLENGTH = 4, INPUT = public.int42_in, OUTPUT = public.int42_out, PASSEDBYVALUE); \
         CREATE TABLE public.kept (id int); INSERT INTO public.kept VALUES (1);",
    );
    let mut excluded = options(&source);
    excluded.exclude = [
        "type public.int42",
        "function public.int42_in(pg_catalog.cstring)",
        "function public.int42_out(public.int42)",
    ]
    .map(String::from)
    .to_vec();
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &excluded).await.unwrap();
    let target = fresh_database("base type excluded restored");
    restore_into(&manifest, &store, &target, RestoreOptions::new(1))
        .await
        .unwrap();
    assert_eq!(
        target
            .psql("SELECT count(*) FROM pg_type WHERE typname = 'int42'")
            .trim(),
        "0"
    );
    assert_eq!(target.psql("SELECT count(*) FROM public.kept").trim(), "1");
}

#[tokio::test]
async fn casts_of_every_method_and_context_round_trip() {
    let counts = kind_round_trip(
        "casts",
        "CREATE TYPE public.money_text AS (amount numeric, currency text); \
         CREATE FUNCTION public.to_money_text(numeric) RETURNS public.money_text LANGUAGE sql IMMUTABLE \
             AS $$ SELECT ROW($1, 'EUR')::public.money_text $$; \
         CREATE CAST (numeric AS public.money_text) WITH FUNCTION public.to_money_text(numeric) AS ASSIGNMENT; \
         CREATE CAST (public.money_text AS text) WITH INOUT AS IMPLICIT; \
         CREATE TYPE public.flag AS ENUM ('on', 'off'); \
         CREATE CAST (text AS public.flag) WITH INOUT; \
         COMMENT ON CAST (text AS public.flag) IS 'from text by name';",
        &["cast"],
    )
    .await;
    assert_eq!(counts, vec![3]);
}

#[tokio::test]
async fn operators_with_commutators_negators_and_shells_round_trip() {
    let counts = kind_round_trip(
        "operators",
        "CREATE FUNCTION public.near(point, point) RETURNS boolean LANGUAGE sql IMMUTABLE \
             AS $$ SELECT $1 <-> $2 < 1 $$; \
         CREATE FUNCTION public.far(point, point) RETURNS boolean LANGUAGE sql IMMUTABLE \
             AS $$ SELECT $1 <-> $2 >= 1 $$; \
         CREATE OPERATOR public.~~~ (FUNCTION = public.near, LEFTARG = point, RIGHTARG = point, \
             COMMUTATOR = OPERATOR(public.~~~), NEGATOR = OPERATOR(public.!~~~), RESTRICT = eqsel, JOIN = eqjoinsel); \
         CREATE OPERATOR public.!~~~ (FUNCTION = public.far, LEFTARG = point, RIGHTARG = point, \
             NEGATOR = OPERATOR(public.~~~)); \
         CREATE OPERATOR public.@@@ (FUNCTION = factorial, RIGHTARG = bigint); \
         CREATE OPERATOR public.=== (FUNCTION = int4eq, LEFTARG = int4, RIGHTARG = int4, \
             COMMUTATOR = OPERATOR(public.====), HASHES, MERGES); \
         COMMENT ON OPERATOR public.@@@ (NONE, bigint) IS 'a prefix operator';",
        &["operator"],
    )
    .await;
    // The fifth is the shell `====` that only `===` names.
    assert_eq!(counts, vec![5]);
}

#[tokio::test]
async fn operator_families_and_classes_keep_their_members_and_serve_indexes() {
    let counts = kind_round_trip(
        "operator classes",
        "CREATE FUNCTION public.abs_cmp(int4, int4) RETURNS int4 LANGUAGE sql IMMUTABLE \
             AS $$ SELECT btint4cmp(abs($1), abs($2)) $$; \
         CREATE FUNCTION public.abs_lt(int4, int4) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT abs($1) < abs($2) $$; \
         CREATE FUNCTION public.abs_eq(int4, int4) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT abs($1) = abs($2) $$; \
         CREATE OPERATOR public.<| (FUNCTION = public.abs_lt, LEFTARG = int4, RIGHTARG = int4); \
         CREATE OPERATOR public.=| (FUNCTION = public.abs_eq, LEFTARG = int4, RIGHTARG = int4); \
         CREATE OPERATOR FAMILY public.abs_ops USING btree; \
         CREATE OPERATOR CLASS public.abs_ops FOR TYPE int4 USING btree FAMILY public.abs_ops AS \
             OPERATOR 1 public.<|, OPERATOR 3 public.=|, FUNCTION 1 public.abs_cmp(int4, int4); \
         CREATE OPERATOR FAMILY public.loose USING hash; \
         CREATE FUNCTION public.hash_noop(int4, int8) RETURNS int8 LANGUAGE sql IMMUTABLE AS $$ SELECT $1::int8 $$; \
         ALTER OPERATOR FAMILY public.loose USING hash ADD FUNCTION 2 (int4, int4) public.hash_noop(int4, int8); \
         CREATE OPERATOR CLASS public.part_ops FOR TYPE int4 USING hash FAMILY public.loose AS OPERATOR 1 =; \
         CREATE OPERATOR CLASS public.implied_family FOR TYPE int4 USING hash AS OPERATOR 1 =; \
         CREATE OPERATOR CLASS public.empty_ops FOR TYPE text USING btree FAMILY public.abs_ops AS STORAGE text; \
         COMMENT ON OPERATOR CLASS public.abs_ops USING btree IS 'by absolute value'; \
         CREATE TABLE public.readings (v int4); \
         INSERT INTO public.readings SELECT g FROM generate_series(-5, 5) g; \
         CREATE INDEX readings_abs ON public.readings (v public.abs_ops); \
         CREATE TABLE public.buckets (k int4) PARTITION BY HASH (k public.part_ops); \
         CREATE TABLE public.buckets_0 PARTITION OF public.buckets FOR VALUES WITH (MODULUS 2, REMAINDER 0); \
         CREATE TABLE public.buckets_1 PARTITION OF public.buckets FOR VALUES WITH (MODULUS 2, REMAINDER 1); \
         INSERT INTO public.buckets SELECT g FROM generate_series(1, 10) g;",
        &["operator class", "operator family"],
    )
    .await;
    assert_eq!(counts, vec![4, 3]);
}

#[tokio::test]
async fn text_search_parsers_and_templates_carry_their_dictionaries_and_configurations() {
    let counts = kind_round_trip(
        "text search parsers",
        "CREATE TEXT SEARCH PARSER public.words (START = prsd_start, GETTOKEN = prsd_nexttoken, \
             END = prsd_end, LEXTYPES = prsd_lextype, HEADLINE = prsd_headline); \
         COMMENT ON TEXT SEARCH PARSER public.words IS 'the default parser again'; \
         CREATE TEXT SEARCH TEMPLATE public.plain (INIT = dsimple_init, LEXIZE = dsimple_lexize); \
         CREATE TEXT SEARCH TEMPLATE public.no_init (LEXIZE = dsimple_lexize); \
         CREATE TEXT SEARCH DICTIONARY public.plain_dict (TEMPLATE = public.plain, STOPWORDS = english); \
         CREATE TEXT SEARCH CONFIGURATION public.words_cfg (PARSER = public.words); \
         ALTER TEXT SEARCH CONFIGURATION public.words_cfg ADD MAPPING FOR word, asciiword WITH public.plain_dict; \
         CREATE TABLE public.docs (body text, tsv tsvector GENERATED ALWAYS AS (to_tsvector('public.words_cfg', body)) STORED); \
         INSERT INTO public.docs (body) VALUES ('the quick brown fox');",
        &["text search parser", "text search template"],
    )
    .await;
    assert_eq!(counts, vec![1, 2]);
}

#[tokio::test]
async fn foreign_data_wrappers_servers_mappings_and_foreign_tables_round_trip() {
    let counts = kind_round_trip(
        "foreign data",
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kinds_fdw_user') \
             THEN CREATE ROLE kinds_fdw_user; END IF; END $$; \
         CREATE FOREIGN DATA WRAPPER plain_wrapper OPTIONS (debug 'true'); \
         CREATE FOREIGN DATA WRAPPER checked VALIDATOR postgresql_fdw_validator; \
         COMMENT ON FOREIGN DATA WRAPPER checked IS 'validates libpq options'; \
         GRANT USAGE ON FOREIGN DATA WRAPPER checked TO kinds_fdw_user; \
         CREATE SERVER elsewhere TYPE 'postgres' VERSION '15' FOREIGN DATA WRAPPER checked \
             OPTIONS (host 'db.internal', dbname 'remote''s'); \
         CREATE SERVER bare FOREIGN DATA WRAPPER plain_wrapper; \
         GRANT USAGE ON FOREIGN SERVER elsewhere TO kinds_fdw_user; \
         CREATE USER MAPPING FOR kinds_fdw_user SERVER elsewhere OPTIONS (user 'remote', password 'secret'); \
         CREATE USER MAPPING FOR PUBLIC SERVER bare; \
         CREATE FOREIGN TABLE public.remote_orders (id int NOT NULL, note text OPTIONS (column_name 'remark'), \
             CHECK (id > 0)) SERVER bare OPTIONS (table_name 'orders'); \
         COMMENT ON FOREIGN TABLE public.remote_orders IS 'orders kept elsewhere'; \
         GRANT SELECT ON public.remote_orders TO kinds_fdw_user; \
         CREATE TABLE public.events (at date, what text) PARTITION BY RANGE (at); \
         CREATE TABLE public.events_now PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01'); \
         CREATE FOREIGN TABLE public.events_archive PARTITION OF public.events \
             FOR VALUES FROM ('2000-01-01') TO ('2026-01-01') SERVER bare; \
         CREATE TABLE public.local_base (id int); \
         CREATE FOREIGN TABLE public.remote_child () INHERITS (public.local_base) SERVER bare; \
         INSERT INTO public.events_now VALUES ('2026-06-01', 'kept');",
        &[
            "foreign-data wrapper",
            "server",
            "user mapping",
            "foreign table",
        ],
    )
    .await;
    assert_eq!(counts, vec![2, 2, 2, 3]);
}

#[tokio::test]
async fn procedural_languages_created_without_an_extension_round_trip() {
    let counts = kind_round_trip(
        "languages",
        "CREATE TRUSTED LANGUAGE plain_pl HANDLER plpgsql_call_handler INLINE plpgsql_inline_handler \
             VALIDATOR plpgsql_validator; \
         COMMENT ON LANGUAGE plain_pl IS 'plpgsql under another name'; \
         REVOKE USAGE ON LANGUAGE plain_pl FROM PUBLIC; \
         CREATE FUNCTION public.twice(int) RETURNS int LANGUAGE plain_pl AS $$ BEGIN RETURN $1 * 2; END $$;",
        &["language", "function"],
    )
    .await;
    assert_eq!(counts, vec![1, 1]);
}

#[tokio::test]
async fn conversions_and_transforms_round_trip() {
    let counts = kind_round_trip(
        "conversions",
        "CREATE CONVERSION public.latin_to_utf FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8; \
         COMMENT ON CONVERSION public.latin_to_utf IS 'a second copy'; \
         CREATE TRANSFORM FOR integer LANGUAGE sql (FROM SQL WITH FUNCTION prsd_lextype(internal), \
             TO SQL WITH FUNCTION int4recv(internal));",
        &["conversion", "transform"],
    )
    .await;
    assert_eq!(counts, vec![1, 1]);
}

#[tokio::test]
async fn ordered_set_hypothetical_and_moving_aggregates_keep_their_final_modify() {
    let counts = kind_round_trip(
        "ordered-set aggregates",
        "CREATE AGGREGATE public.my_percentile(float8 ORDER BY anyelement) (SFUNC = ordered_set_transition, \
             STYPE = internal, FINALFUNC = percentile_disc_final, FINALFUNC_EXTRA); \
         CREATE AGGREGATE public.my_rank(VARIADIC \"any\" ORDER BY VARIADIC \"any\") (SFUNC = ordered_set_transition_multi, \
             STYPE = internal, FINALFUNC = rank_final, FINALFUNC_EXTRA, HYPOTHETICAL); \
         REVOKE EXECUTE ON FUNCTION public.my_rank(\"any\") FROM PUBLIC; \
         COMMENT ON AGGREGATE public.my_percentile(float8 ORDER BY anyelement) IS 'percentile_disc again'; \
         CREATE AGGREGATE public.my_percentile_ro(float8 ORDER BY anyelement) (SFUNC = ordered_set_transition, \
             STYPE = internal, FINALFUNC = percentile_disc_final, FINALFUNC_EXTRA, FINALFUNC_MODIFY = READ_ONLY); \
         CREATE AGGREGATE public.my_sum(int8) (SFUNC = int8pl, STYPE = int8, MSFUNC = int8pl, MINVFUNC = int8mi, \
             MSTYPE = int8, MFINALFUNC_MODIFY = SHAREABLE);",
        &["aggregate"],
    )
    .await;
    assert_eq!(counts, vec![4]);
}

#[tokio::test]
async fn typed_tables_keep_their_type_and_column_options() {
    let counts = kind_round_trip(
        "typed tables",
        "CREATE TYPE public.person AS (id int, name text); \
         CREATE TABLE public.people OF public.person; \
         CREATE TABLE public.staff OF public.person (id WITH OPTIONS PRIMARY KEY, name WITH OPTIONS DEFAULT 'anon' NOT NULL); \
         INSERT INTO public.staff (id) VALUES (1); INSERT INTO public.people VALUES (2, 'b');",
        &["table"],
    )
    .await;
    assert_eq!(counts, vec![2]);
}

/// An identity column's sequence is made by its table's column clause: its options, a
/// persistence of its own (15+) and its comment come back with it.
#[tokio::test]
async fn identity_sequences_keep_their_options_and_comments() {
    let counts = kind_round_trip(
        "identity sequences",
        "CREATE TABLE public.orders (id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 100 INCREMENT BY 5) \
             PRIMARY KEY, note text); \
         COMMENT ON SEQUENCE public.orders_id_seq IS 'order numbers'; \
         INSERT INTO public.orders (note) VALUES ('a'), ('b');",
        &["table"],
    )
    .await;
    assert_eq!(counts, vec![1]);
}

/// Security labels need a label provider loaded on the server (sepgsql, say), which these
/// servers have not: the labels are put into `pg_seclabel` directly, as a provider stores them.
/// The backup carries them; a restore onto a server without the provider refuses before it
/// restores anything, naming the provider.
#[tokio::test]
async fn security_labels_are_kept_and_a_target_without_their_provider_is_refused_untouched() {
    let source = fresh_database("security labels");
    source.psql(
        "CREATE TABLE public.secret (id int, code text); \
         INSERT INTO pg_seclabel VALUES \
             ('public.secret'::regclass, 'pg_class'::regclass, 0, 'selinux', 'system_u:object_r:sepgsql_table_t:s0'), \
             ('public.secret'::regclass, 'pg_class'::regclass, 2, 'selinux', 'system_u:object_r:sepgsql_secret_t:s0');",
    );
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let target = fresh_database("security labels restored");
    let error = restore_into(&manifest, &store, &target, RestoreOptions::new(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("holds security labels of selinux")
            && error.contains("shared_preload_libraries")
            && !error.contains('\n'),
        "{error}"
    );
    assert_eq!(
        target
            .psql("SELECT count(*) FROM pg_class WHERE relname = 'secret'")
            .trim(),
        "0",
        "nothing was restored"
    );
}

/// Where a label provider is loaded (the test provider of `tests/fixtures/label_provider`,
/// built for 18 against its client tools' headers), labels on each kind of object that takes
/// one round-trip; pg_dump writes labels, so the dumps compare them too.
#[tokio::test]
async fn security_labels_round_trip_where_their_provider_is_loaded() {
    let Some(cluster) = cluster_of(18) else {
        return;
    };
    let Some(provider) = cluster.label_provider else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "the test security label provider did not build for PostgreSQL 18: \
             it needs a C compiler and the 18 client tools' server headers"
        );
        eprintln!("SKIPPED: no security label provider could be built for PostgreSQL 18");
        return;
    };
    let source = fresh_database_on(cluster, "labels");
    let label = |target: &str, text: &str| {
        format!("SECURITY LABEL FOR {provider} ON {target} IS '{text}';")
    };
    source.psql(&format!(
        "CREATE SCHEMA app; {} \
         CREATE TABLE app.accounts (id int PRIMARY KEY, secret text); {} {} \
         INSERT INTO app.accounts VALUES (1, 'x'); \
         CREATE VIEW app.account_ids AS SELECT id FROM app.accounts; {} \
         CREATE MATERIALIZED VIEW app.account_count AS SELECT count(*) FROM app.accounts; {} \
         CREATE SEQUENCE app.ticket; {} \
         CREATE FUNCTION app.double(int) RETURNS int LANGUAGE sql AS 'SELECT $1 * 2'; {} \
         CREATE AGGREGATE app.total(int) (SFUNC = int4pl, STYPE = int); {} \
         CREATE TYPE app.mood AS ENUM ('calm'); {} \
         CREATE DOMAIN app.positive AS int CHECK (VALUE > 0); {} \
         SELECT lo_create(424242); {} \
         CREATE PUBLICATION app_changes FOR TABLE app.accounts; {}",
        label("SCHEMA app", "schema"),
        label("TABLE app.accounts", "table"),
        label("COLUMN app.accounts.secret", "column"),
        label("VIEW app.account_ids", "view"),
        label("MATERIALIZED VIEW app.account_count", "matview"),
        label("SEQUENCE app.ticket", "sequence"),
        label("FUNCTION app.double(int)", "function"),
        label("AGGREGATE app.total(int)", "aggregate"),
        label("TYPE app.mood", "type"),
        label("DOMAIN app.positive", "domain"),
        label("LARGE OBJECT 424242", "large object"),
        label("PUBLICATION app_changes", "publication"),
    ));
    assert_eq!(source.psql("SELECT count(*) FROM pg_seclabel").trim(), "12");
    source.psql(&label(&format!("DATABASE {}", source.name), "database"));
    let manifest = round_trip(&source, &options(&source), 2, "security labels on 18").await;
    assert_eq!(manifest.inventory.get("security label"), Some(&12));

    // The database's own label comes with the database a restore --create makes.
    let (_dir, store) = file_store();
    let manifest = take(&source, &store, &options(&source)).await.unwrap();
    let created = format!("{}_created", source.name);
    let target = backstop::pg::parse_url(&cluster.url(&created)).unwrap();
    let create = RestoreOptions {
        create_database: true,
        ..RestoreOptions::new(1)
    };
    let restored = backstop::engine::restore::restore(store, &manifest, &target, &create, &|_| {})
        .await
        .map(|_| ());
    let label_of_created = cluster.psql(
        "postgres",
        &format!(
            "SELECT l.label FROM pg_shseclabel l JOIN pg_database d ON d.oid = l.objoid \
             WHERE d.datname = '{created}'"
        ),
    );
    cluster.psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS \"{created}\" WITH (FORCE)"),
    );
    restored.unwrap_or_else(|e| panic!("restore --create: {e}"));
    assert_eq!(label_of_created.trim(), "database");
}
