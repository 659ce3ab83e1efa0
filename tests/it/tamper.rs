//! Nothing runs that should not: a set rewritten by someone who can write the store (the
//! manifest resealed to match), and a database whose names are hostile, piped to psql as the
//! runbook and the README do. Each asserts that a marker file a shell command would create
//! is never created.

use std::path::{Path, PathBuf};

use backstop::engine::manifest::{Manifest, PartKind};
use backstop_tests::postgres::{cluster, fresh_database};

use crate::support::{backstop, backstop_ok, single_error_line};

/// The manifest of the only set of `database` under the file store at `root`, and its folder.
fn only_set(root: &Path, database: &str) -> (Manifest, PathBuf) {
    let dir = std::fs::read_dir(root.join(database))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("manifest.json").exists())
        .unwrap();
    let manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    (manifest, dir)
}

/// A database holding what `sql` makes, backed up once into a file store of its own.
struct Backed {
    db: backstop_tests::postgres::TestDb,
    dir: tempfile::TempDir,
    store: String,
    id: String,
    manifest: Manifest,
    set: PathBuf,
}

fn backed_up(label: &str, sql: &str) -> Backed {
    let db = fresh_database(label);
    db.psql(sql);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let store = format!("file://{}", root.display());
    let id = db.name.clone();
    backstop_ok(
        &[
            "backup",
            "--db",
            &db.url(),
            "--to",
            &store,
            "--database-id",
            &id,
        ],
        &[],
    );
    let (manifest, set) = only_set(&root, &id);
    Backed {
        db,
        dir,
        store,
        id,
        manifest,
        set,
    }
}

/// Replaces part `key` of the set with `content` (compressed as Backstop stores it) and
/// rewrites the manifest to match it, sealed again: what a writer of the store can do.
fn replace_part(dir: &Path, manifest: &Manifest, key: &str, content: &[u8]) {
    let stored = zstd::encode_all(content, 3).unwrap();
    std::fs::write(dir.join(key), &stored).unwrap();
    let mut forged = manifest.clone();
    let part = forged.parts.iter_mut().find(|p| p.key == key).unwrap();
    part.bytes = stored.len() as u64;
    part.plain_bytes = Some(content.len() as u64);
    part.sha256 = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&stored))
    };
    let forged = Manifest {
        seal: None,
        ..forged
    }
    .sealed();
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&forged).unwrap(),
    )
    .unwrap();
}

fn decompressed(path: &Path) -> Vec<u8> {
    zstd::decode_all(std::fs::File::open(path).unwrap()).unwrap()
}

/// The runbook's by-hand path, without Backstop: each part of the set in manifest order (but
/// the statistics, which the harness's default PostgreSQL may not take), decompressed, into one `psql -v ON_ERROR_STOP=1 target` run in `cwd`; asserts it succeeded.
fn by_hand_into_psql(manifest: &Manifest, set: &Path, target: &str, cwd: &Path) {
    // The statistics part is for PostgreSQL 18 and later, as the runbook says.
    let mut parts: Vec<_> = manifest
        .parts
        .iter()
        .filter(|p| p.kind != PartKind::Statistics)
        .collect();
    parts.sort_by_key(|p| p.order);
    let script: Vec<u8> = parts
        .iter()
        .flat_map(|p| decompressed(&set.join(&p.key)))
        .collect();
    let psql = std::process::Command::new(cluster().bin_dir.join("psql"))
        .args(["-q", "-v", "ON_ERROR_STOP=1", target])
        .current_dir(cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = psql.stdin.as_ref().unwrap();
        stdin.write_all(&script).unwrap();
    }
    let output = psql.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `backstop export ... | psql -v ON_ERROR_STOP=1 target`, as the README shows it, run in
/// `cwd` (where a relative `\! touch` would land) with `pipefail`.
fn export_into_psql(
    store: &str,
    database_id: &str,
    target: &str,
    cwd: &Path,
) -> std::process::Output {
    let psql = cluster().bin_dir.join("psql");
    let script = format!(
        "{} export --from '{store}' --database-id '{database_id}' | '{}' -q -v ON_ERROR_STOP=1 '{target}' >/dev/null",
        crate::support::backstop_bin().display(),
        psql.display()
    );
    std::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", &script])
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// [`export_into_psql`], asserting the pipeline succeeded.
fn export_into_psql_ok(store: &str, database_id: &str, target: &str, cwd: &Path) {
    let output = export_into_psql(store, database_id, target, cwd);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A set whose pre-data part was rewritten to hold a shell command for psql, and whose data
/// part carries one after its last block of rows, each with the manifest resealed to match:
/// `export | psql` runs neither; export names the part and writes nothing of it. Before:
/// export streamed the part as it read it, and psql ran the command.
#[test]
fn export_of_a_resealed_tampered_set_runs_nothing() {
    let Backed {
        db: _db,
        dir,
        store,
        id,
        manifest,
        set,
    } = backed_up(
        "tamper export",
        "CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t VALUES (1, 'a'), (2, 'b');",
    );
    let pre = manifest
        .parts
        .iter()
        .find(|p| p.kind == PartKind::PreData)
        .unwrap()
        .key
        .clone();
    let data = manifest
        .parts
        .iter()
        .find(|p| p.blocks().next().is_some())
        .unwrap()
        .key
        .clone();
    let original_pre = std::fs::read(set.join(&pre)).unwrap();
    let original_data = std::fs::read(set.join(&data)).unwrap();
    let original_manifest = std::fs::read(set.join("manifest.json")).unwrap();

    let cases = [
        (pre.clone(), "meta-command"),
        (data.clone(), "after its last block"),
    ];
    for (key, says) in cases {
        let marker = dir.path().join(format!("ran-{}", key.replace('/', "-")));
        let mut content = decompressed(&set.join(&key));
        content.extend_from_slice(format!("\\! touch {}\n", marker.display()).as_bytes());
        replace_part(&set, &manifest, &key, &content);
        let target = fresh_database("tamper export target");
        let output = export_into_psql(&store, &id, &target.url(), dir.path());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!marker.exists(), "the command in {key} ran");
        assert!(stderr.contains(&key) && stderr.contains(says), "{stderr}");
        // Restore refuses it too, before anything of it runs.
        let into = fresh_database("tamper restore target");
        let output = backstop(
            &[
                "restore",
                "--from",
                &store,
                "--database-id",
                &id,
                "--db",
                &into.url(),
            ],
            &[],
        );
        assert!(!output.status.success());
        assert!(!marker.exists(), "the command in {key} ran through restore");
        std::fs::write(set.join(&pre), &original_pre).unwrap();
        std::fs::write(set.join(&data), &original_data).unwrap();
        std::fs::write(set.join("manifest.json"), &original_manifest).unwrap();
    }
}

/// A database whose name holds a newline and a psql meta-command: backed up, then read back
/// through `export | psql`, the CLI restore, and the runbook's by-hand path (each part through
/// zstd into psql): the name is only ever a name, and the command never runs.
#[test]
fn a_hostile_database_name_is_only_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let name = format!(
        "evil_{}\n\\! touch {}\n",
        backstop_tests::unique_suffix(),
        marker.display()
    );
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    cluster().run_psql("postgres", &["-c", &format!("CREATE DATABASE {quoted}")]);
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = cluster().url(&encoded);
    cluster().psql(
        &encoded,
        "CREATE TABLE public.t (id int); INSERT INTO public.t VALUES (1), (2);",
    );
    let root = dir.path().join("backups");
    let store = format!("file://{}", root.display());
    let output = backstop(
        &[
            "backup",
            "--db",
            &url,
            "--to",
            &store,
            "--database-id",
            "evil",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", single_error_line(&output));
    let (manifest, set) = only_set(&root, "evil");

    let target = fresh_database("hostile name export");
    export_into_psql_ok(&store, "evil", &target.url(), dir.path());
    assert!(!marker.exists(), "export | psql ran the name's command");
    assert_eq!(target.psql("SELECT count(*) FROM public.t").trim(), "2");

    let restored = fresh_database("hostile name restore");
    backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            "evil",
            "--db",
            &restored.url(),
        ],
        &[],
    );
    assert_eq!(restored.psql("SELECT count(*) FROM public.t").trim(), "2");

    // The runbook's by-hand path, without Backstop: the parts in manifest order through psql.
    let by_hand = fresh_database("hostile name by hand");
    by_hand_into_psql(&manifest, &set, &by_hand.url(), dir.path());
    assert!(!marker.exists(), "the by-hand path ran the name's command");
    assert_eq!(by_hand.psql("SELECT count(*) FROM public.t").trim(), "2");
    cluster().run_psql(
        "postgres",
        &["-c", &format!("DROP DATABASE {quoted} WITH (FORCE)")],
    );
}

/// A set is what its place says it is: copied under another backup id, given a part key
/// that leaves the set, a table name that is SQL, or stripped of its seal (each resealed or
/// not as an attacker would), its manifest is refused in one line by restore, export and
/// verify, before any part is read. Before: the copy read the original set's parts, the key
/// was followed, the name reached the server, a missing seal passed.
#[test]
fn a_manifest_that_is_not_what_its_place_says_is_refused() {
    let Backed {
        db,
        dir: _dir,
        store,
        id,
        manifest,
        set,
    } = backed_up(
        "tamper manifest",
        "CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1);",
    );
    let original = std::fs::read(set.join("manifest.json")).unwrap();

    let elsewhere = backstop::layout::BackupId::generate(
        time::OffsetDateTime::now_utc() + time::Duration::seconds(1),
    );
    let copy = set.parent().unwrap().join(elsewhere.to_string());
    let mut moved = manifest.clone();
    moved.parts[1].key = format!("../{}/{}", manifest.backup_id, manifest.parts[1].key);
    let mut injected = manifest.clone();
    let part = injected
        .parts
        .iter_mut()
        .find(|p| p.blocks().next().is_some())
        .unwrap();
    let table = match part.table.as_mut() {
        Some(table) => table,
        None => &mut part.bundle[0],
    };
    table.qualified_name = "public.t (id) FROM stdin; DROP TABLE public.t; COPY public.t".into();
    let cases: Vec<(&str, Vec<u8>, &Path)> = vec![
        ("stored as", original.clone(), copy.as_path()),
        ("not a path inside the set", seal(moved), set.as_path()),
        (
            "not a quoted schema-qualified name",
            seal(injected),
            set.as_path(),
        ),
        (
            "no seal",
            serde_json::to_vec(&Manifest {
                seal: None,
                ..manifest.clone()
            })
            .unwrap(),
            set.as_path(),
        ),
    ];
    for (says, bytes, folder) in cases {
        std::fs::create_dir_all(folder).unwrap();
        std::fs::write(folder.join("manifest.json"), &bytes).unwrap();
        let backup = folder.file_name().unwrap().to_string_lossy().to_string();
        let target = fresh_database("tamper manifest target");
        for args in [
            vec![
                "restore",
                "--from",
                &store,
                "--database-id",
                &id,
                "--backup",
                &backup,
                "--db",
                &target.url(),
            ],
            vec![
                "export",
                "--from",
                &store,
                "--database-id",
                &id,
                "--backup",
                &backup,
            ],
            vec![
                "verify",
                "--from",
                &store,
                "--database-id",
                &id,
                "--backup",
                &backup,
                "--level",
                "deep",
            ],
        ] {
            let output = backstop(&args, &[]);
            assert!(
                !output.status.success(),
                "{} accepted a manifest that is {says}",
                args[0]
            );
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout)
            );
            assert!(text.contains(says), "{}: {text}", args[0]);
        }
        assert_eq!(db.psql("SELECT count(*) FROM public.t").trim(), "1");
        assert_eq!(
            target
                .psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
                .trim(),
            "0"
        );
        if folder == copy.as_path() {
            std::fs::remove_dir_all(&copy).unwrap();
        }
        std::fs::write(set.join("manifest.json"), &original).unwrap();
    }
}

fn seal(manifest: Manifest) -> Vec<u8> {
    serde_json::to_vec(
        &Manifest {
            seal: None,
            ..manifest
        }
        .sealed(),
    )
    .unwrap()
}

/// A data part replaced by a zstd bomb (a few hundred KiB that expand to 256 MiB of one
/// line), with the manifest resealed to match: deep verification and restore stop as soon
/// as it decompresses past the size the manifest records, in one line. Before: the whole
/// line was read into memory first.
#[test]
fn a_part_that_decompresses_past_its_recorded_size_is_refused_early() {
    let Backed {
        db: _db,
        dir: _dir,
        store,
        id,
        manifest,
        set,
    } = backed_up(
        "tamper bomb",
        "CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t SELECT g, 'x' FROM generate_series(1, 100) g;",
    );
    let key = manifest
        .parts
        .iter()
        .find(|p| p.blocks().next().is_some())
        .unwrap()
        .key
        .clone();
    let mut bomb = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    {
        use std::io::Write as _;
        let mut head = decompressed(&set.join(&key));
        head.truncate(head.iter().position(|&b| b == b'\n').unwrap() + 1);
        bomb.write_all(&head).unwrap();
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..256 {
            bomb.write_all(&chunk).unwrap();
        }
    }
    let stored = bomb.finish().unwrap();
    std::fs::write(set.join(&key), &stored).unwrap();
    let mut forged = manifest.clone();
    let part = forged.parts.iter_mut().find(|p| p.key == key).unwrap();
    part.bytes = stored.len() as u64;
    part.sha256 = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&stored))
    };
    std::fs::write(set.join("manifest.json"), seal(forged)).unwrap();

    let output = backstop(
        &[
            "verify",
            "--from",
            &store,
            "--database-id",
            &id,
            "--level",
            "deep",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("decompresses to more than"), "{text}");
    let target = fresh_database("tamper bomb target");
    let output = backstop(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &id,
            "--db",
            &target.url(),
        ],
        &[],
    );
    let line = single_error_line(&output);
    assert!(line.contains("decompresses to more than"), "{line}");
}

/// Names and values no one should have to think about (newlines followed by psql
/// meta-commands, quotes of both kinds, backslashes, dollar quotes, comment openers, bidi and
/// line-separator characters, a tab, upper case) on a schema, a table, its columns, a view, a
/// function, an index, comments and rows: backed up, then read back through `export | psql`
/// and the CLI restore, each copy is the source exactly, and no meta-command ran.
#[test]
fn hostile_names_and_values_come_back_as_themselves_and_run_nothing() {
    let names = [
        "nl\n\\! touch ran\n",
        "dq\"x",
        "sq'x",
        "bs\\x",
        "dl$$x",
        "cm-- x",
        "co/* x",
        "bidi\u{202e}x",
        "ls\u{2028}x",
        "semi; DROP TABLE t",
        "tab\tx",
        "Mixed",
    ];
    let ident = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let literal = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut sql = String::new();
    for (i, name) in names.iter().enumerate() {
        let schema = ident(&format!("s{i} {name}"));
        let table = format!("{schema}.{}", ident(&format!("t {name}")));
        let column = ident(&format!("c {name}"));
        sql.push_str(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {table} (id int PRIMARY KEY, {column} text);
             INSERT INTO {table} VALUES (1, {v}), (2, {v2});
             COMMENT ON TABLE {table} IS {v};
             COMMENT ON COLUMN {table}.{column} IS {v};
             CREATE INDEX {index} ON {table} ({column});
             CREATE VIEW {schema}.{view} AS SELECT {column} FROM {table};
             CREATE FUNCTION {schema}.{function}() RETURNS text LANGUAGE sql AS $f$ SELECT {v}::text $f$;\n",
            v = literal(name),
            v2 = literal(&format!("\\.\n{name}\\N")),
            index = ident(&format!("i{i} {name}")),
            view = ident(&format!("v {name}")),
            function = ident(&format!("f {name}")),
        ));
    }
    let Backed {
        db, dir, store, id, ..
    } = backed_up("hostile names", &sql);
    let source = db.pg_dump();

    let exported = fresh_database("hostile names export");
    export_into_psql_ok(&store, &id, &exported.url(), dir.path());
    crate::engine::assert_same_dump(&source, &exported.pg_dump(), "export | psql");

    let restored = fresh_database("hostile names restore");
    backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            &id,
            "--db",
            &restored.url(),
        ],
        &[],
    );
    crate::engine::assert_same_dump(&source, &restored.pg_dump(), "restore");
    assert!(!dir.path().join("ran").exists(), "a meta-command ran");
}

/// A change segment replaced by a zstd bomb, its seal rewritten to match: the replay of a
/// point-in-time restore stops as soon as the changes decompress past the size the seal
/// records (format 2 on), in one line, with nothing of the replay kept. Before: the line was
/// read whole into memory first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_decompresses_past_its_recorded_size_is_refused_early() {
    use backstop::engine::stream::segment::Segment;
    use backstop::engine::stream::{StreamOptions, drain, plan, replay};
    use backstop::layout::DatabaseId;
    use backstop::store::{FileStore, Store};
    use std::sync::Arc;

    let db = fresh_database("tamper segment");
    db.psql("CREATE TABLE public.t (id int PRIMARY KEY, v text);");
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(FileStore::new(dir.path().to_path_buf()));
    let source = backstop::pg::parse_url(&db.url()).unwrap();
    let database = DatabaseId::new(&db.name).unwrap();
    let stream = StreamOptions::new(database.clone());
    drain(&source, store.clone(), &stream).await.unwrap();
    let base = backstop::engine::backup::BackupOptions::new(database.clone());
    backstop::engine::backup::backup(&source, store.clone(), &base, &|_| {})
        .await
        .unwrap();
    db.psql("INSERT INTO public.t SELECT g, 'v' FROM generate_series(1, 50) g;");
    drain(&source, store.clone(), &stream).await.unwrap();

    let seals: Vec<String> = store
        .list(&format!("{database}/stream/"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".json"))
        .collect();
    let seal_key = seals.last().unwrap().clone();
    let seal_path = dir.path().join(&seal_key);
    let segment: Segment = serde_json::from_slice(&std::fs::read(&seal_path).unwrap()).unwrap();
    assert!(
        segment.plain_bytes.is_some(),
        "the seal records the plain size"
    );
    let mut bomb = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    {
        use std::io::Write as _;
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..256 {
            bomb.write_all(&chunk).unwrap();
        }
    }
    let stored = bomb.finish().unwrap();
    std::fs::write(
        dir.path()
            .join(database.as_str())
            .join(&segment.changes.key),
        &stored,
    )
    .unwrap();
    let mut forged = segment.clone();
    forged.changes.bytes = stored.len() as u64;
    forged.changes.sha256 = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&stored))
    };
    let forged = Segment {
        seal: None,
        ..forged
    }
    .sealed();
    std::fs::write(&seal_path, serde_json::to_vec_pretty(&forged).unwrap()).unwrap();

    let target = fresh_database("tamper segment target");
    let into = backstop::pg::parse_url(&target.url()).unwrap();
    let recovery = replay::plan_recovery(
        store.as_ref(),
        &database,
        plan::RecoveryTarget::Latest,
        None,
    )
    .await
    .unwrap();
    backstop::engine::restore::restore(
        store.clone(),
        &recovery.manifest,
        &into,
        &backstop::engine::restore::RestoreOptions::new(1),
        &|_| {},
    )
    .await
    .unwrap();
    let error = replay::replay(store.clone(), &recovery, &into, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("decompresses to more than"), "{error}");
    assert_eq!(target.psql("SELECT count(*) FROM public.t").trim(), "0");
}

/// A SQL_ASCII database whose catalog holds text that is not UTF-8 (a Latin-1 table name):
/// the backup is refused in one line saying so, and nothing is committed; never a panic.
#[test]
fn a_database_whose_names_are_not_utf8_is_refused_in_one_line() {
    let name = format!("latin_{}", backstop_tests::unique_suffix());
    cluster().run_psql(
        "postgres",
        &[
            "-c",
            &format!(
                "CREATE DATABASE {name} ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("latin.sql");
    std::fs::write(
        &script,
        b"CREATE TABLE \"caf\xe9\" (id int); INSERT INTO \"caf\xe9\" VALUES (1);\n",
    )
    .unwrap();
    let loaded = std::process::Command::new(cluster().bin_dir.join("psql"))
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &cluster().url(&name),
            "-f",
        ])
        .arg(&script)
        .env("PGCLIENTENCODING", "SQL_ASCII")
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let store = format!("file://{}", dir.path().join("backups").display());
    let output = backstop(
        &[
            "backup",
            "--db",
            &cluster().url(&name),
            "--to",
            &store,
            "--database-id",
            "latin",
        ],
        &[],
    );
    let line = single_error_line(&output);
    assert!(line.contains("not UTF-8"), "{line}");
    let listed = backstop_ok(&["list", "--from", &store, "--json"], &[]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(listed.as_array().is_none_or(|a| a.is_empty()), "{listed}");
    cluster().run_psql(
        "postgres",
        &["-c", &format!("DROP DATABASE {name} WITH (FORCE)")],
    );
}

/// Role names no one should have to think about (a newline followed by a psql meta-command,
/// quotes of both kinds, a backslash, a dollar quote, a comment opener, a bidi override) as a
/// database's owner, a schema's and a table's owners, grantees and a grantor, a policy's roles,
/// default privileges, memberships, per-database settings and a role comment: the set goes
/// through `export | psql` and the by-hand path into databases beside the roles, then the roles
/// and the database are dropped and the CLI restore creates them again (`--create --roles
/// create`); each copy is the source, the roles are as they were, and no meta-command ran.
#[test]
fn hostile_role_names_come_back_as_themselves_and_run_nothing() {
    let _roles = crate::engine::ROLE_CREATION.blocking_lock();
    let prefix = format!("h{}", backstop_tests::unique_suffix());
    let roles = [
        "nl\n\\! touch ran\n",
        "dq\"x",
        "sq'x",
        "bs\\x",
        "dl$$x",
        "co/* x -- y",
        "bidi\u{202e}x",
    ]
    .map(|name| format!("{prefix} {name}"));
    let ident = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let literal = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let r = roles.clone().map(|n| ident(&n));
    let drop_roles =
        || cluster().psql("postgres", &format!("DROP ROLE IF EXISTS {}", r.join(", ")));
    let mut create = String::new();
    for role in &r {
        create.push_str(&format!("CREATE ROLE {role} NOLOGIN;\n"));
    }
    create.push_str(&format!(
        "COMMENT ON ROLE {} IS {};
         GRANT {} TO {} WITH ADMIN OPTION;",
        r[0],
        literal(&roles[0]),
        r[5],
        r[6]
    ));
    cluster().psql("postgres", &create);

    let db = fresh_database("hostile role names");
    let name = ident(&db.name);
    db.psql(&format!(
        "ALTER DATABASE {name} OWNER TO {r0};
         ALTER ROLE {r6} IN DATABASE {name} SET work_mem = '8MB';
         CREATE SCHEMA s AUTHORIZATION {r0};
         CREATE TABLE s.t (id int PRIMARY KEY, note text);
         ALTER TABLE s.t OWNER TO {r1};
         INSERT INTO s.t SELECT g, 'n' || g FROM generate_series(1, 20) g;
         GRANT USAGE ON SCHEMA s TO {r2}, {r3};
         GRANT SELECT ON s.t TO {r2} WITH GRANT OPTION;
         SET ROLE {r2}; GRANT SELECT ON s.t TO {r3}; RESET ROLE;
         ALTER TABLE s.t ENABLE ROW LEVEL SECURITY;
         CREATE POLICY p ON s.t FOR SELECT TO {r4}, {r5} USING (id > 0);
         CREATE FUNCTION s.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
         ALTER FUNCTION s.f() OWNER TO {r1};
         ALTER DEFAULT PRIVILEGES FOR ROLE {r0} IN SCHEMA s GRANT SELECT ON TABLES TO {r6};",
        r0 = r[0],
        r1 = r[1],
        r2 = r[2],
        r3 = r[3],
        r4 = r[4],
        r5 = r[5],
        r6 = r[6],
    ));
    let like = literal(&format!("{prefix} %"));
    let snapshot = || {
        cluster().psql(
            "postgres",
            &format!(
                "SELECT r.rolname, shobj_description(r.oid, 'pg_authid'), \
                 (SELECT string_agg(g.rolname || ':' || a.admin_option, ',' ORDER BY g.rolname) \
                  FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid WHERE a.member = r.oid), \
                 (SELECT string_agg(array_to_string(s.setconfig, ','), ';') FROM pg_db_role_setting s \
                  JOIN pg_database d ON d.oid = s.setdatabase WHERE s.setrole = r.oid AND d.datname = {}) \
                 FROM pg_roles r WHERE r.rolname LIKE {like} ORDER BY 1",
                literal(&db.name)
            ),
        ) + &db.psql(&format!(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {}",
            literal(&db.name)
        ))
    };
    let (source, before) = (db.pg_dump(), snapshot());

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    let store = format!("file://{}", root.display());
    let id = "hostile-roles";
    backstop_ok(
        &[
            "backup",
            "--db",
            &db.url(),
            "--to",
            &store,
            "--database-id",
            id,
        ],
        &[],
    );
    let (manifest, set) = only_set(&root, id);

    let exported = fresh_database("hostile roles export");
    export_into_psql_ok(&store, id, &exported.url(), dir.path());
    crate::engine::assert_same_dump(&source, &exported.pg_dump(), "export | psql");
    let by_hand = fresh_database("hostile roles by hand");
    by_hand_into_psql(&manifest, &set, &by_hand.url(), dir.path());
    crate::engine::assert_same_dump(&source, &by_hand.pg_dump(), "by hand");
    assert!(!dir.path().join("ran").exists(), "a meta-command ran");
    drop((exported, by_hand));

    // As on a server that never had them: the database and its roles go, the restore makes both.
    cluster().psql("postgres", &format!("DROP DATABASE {name} WITH (FORCE)"));
    drop_roles();
    backstop_ok(
        &[
            "restore",
            "--from",
            &store,
            "--database-id",
            id,
            "--db",
            &db.url(),
            "--create",
            "--roles",
            "create",
        ],
        &[],
    );
    crate::engine::assert_same_dump(&source, &db.pg_dump(), "restore --create --roles create");
    assert_eq!(snapshot(), before, "the roles came back as they were");
    assert!(!dir.path().join("ran").exists(), "a meta-command ran");
    drop(db);
    drop_roles();
}

/// An encrypted set's table names live in its private part, which anyone holding the
/// recipients (every writer does) can forge: a private part naming a table with SQL, sealed and
/// encrypted to the same recipients, is refused in one line by restore, export and verify
/// once decrypted, before any part is read. Before: the names of an encrypted set were never
/// checked, and reached `TRUNCATE`, `COPY` and the exported script.
#[test]
fn an_encrypted_set_whose_private_part_names_sql_is_refused() {
    let db = fresh_database("tamper private part");
    db.psql("CREATE TABLE public.t (id int PRIMARY KEY); INSERT INTO public.t VALUES (1);");
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = backstop::engine::encryption::generate();
    let key = dir.path().join("key.txt");
    std::fs::write(&key, identity).unwrap();
    let key = key.to_str().unwrap();
    let root = dir.path().join("backups");
    let store = format!("file://{}", root.display());
    let id = db.name.clone();
    backstop_ok(
        &[
            "backup",
            "--db",
            &db.url(),
            "--to",
            &store,
            "--database-id",
            &id,
            "--recipient",
            &recipient,
        ],
        &[],
    );
    let (stored, set) = only_set(&root, &id);
    let identities = backstop::engine::encryption::Identities::from_file(Path::new(key)).unwrap();
    let mut full = stored.open(Some(std::sync::Arc::new(identities))).unwrap();
    let part = full
        .parts
        .iter_mut()
        .find(|p| p.blocks().next().is_some())
        .unwrap();
    let table = match part.table.as_mut() {
        Some(table) => table,
        None => &mut part.bundle[0],
    };
    table.qualified_name = "public.t (id) FROM stdin; DROP TABLE public.t; COPY public.t".into();
    let recipients = backstop::engine::encryption::Recipients::parse(&[recipient]).unwrap();
    let forged = full.stored_encrypted(&recipients).unwrap();
    std::fs::write(
        set.join("manifest.json"),
        serde_json::to_vec_pretty(&forged).unwrap(),
    )
    .unwrap();

    let target = fresh_database("tamper private part target");
    for args in [
        vec!["restore", "--db", &target.url()],
        vec!["export"],
        vec!["verify", "--level", "deep"],
    ] {
        let mut args = args;
        args.extend(["--from", &store, "--database-id", &id, "--identity", key]);
        let output = backstop(&args, &[]);
        assert!(
            !output.status.success(),
            "{} accepted the forged names",
            args[0]
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(
            text.contains("not a quoted schema-qualified name"),
            "{}: {text}",
            args[0]
        );
    }
    assert_eq!(db.psql("SELECT count(*) FROM public.t").trim(), "1");
    assert_eq!(
        target
            .psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .trim(),
        "0"
    );
}
