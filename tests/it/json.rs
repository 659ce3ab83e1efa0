//! One JSON vocabulary: every command's `--json` output, run for real, uses only the names
//! docs/json.md defines (each with one meaning), none of the synonyms it retires, and the
//! examples there parse and use the same names.

use std::collections::BTreeSet;

use backstop_tests::postgres::{cluster, fresh_database};
use serde_json::Value;

use crate::support::{backstop, backstop_ok};

/// Fields whose keys are data (object kinds, role names), not names of the vocabulary.
const DATA_MAPS: [&str; 2] = ["inventory", "mapped"];

/// The names in the first column of the tables of `doc`'s section `heading` (up to the next
/// `## ` heading).
fn names_under(doc: &str, heading: &str) -> BTreeSet<String> {
    doc.lines()
        .skip_while(|line| *line != heading)
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Every object key in `value`, not descending into data maps.
fn keys(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                into.insert(key.clone());
                if !DATA_MAPS.contains(&key.as_str()) {
                    keys(inner, into);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| keys(i, into)),
        _ => {}
    }
}

/// The ```json blocks of the document.
fn examples(doc: &str) -> Vec<Value> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match &mut current {
            Some(block) if line.starts_with("```") => {
                blocks.push(serde_json::from_str(block).unwrap_or_else(|e| {
                    panic!("a docs/json.md example does not parse: {e}\n{block}")
                }));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if line.trim() == "```json" => current = Some(String::new()),
            None => {}
        }
    }
    blocks
}

fn json_of(args: &[&str]) -> Value {
    let output = backstop(args, &[]);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "`backstop {}` printed no JSON ({e}): {}\n{}",
            args[0],
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn every_command_speaks_the_one_vocabulary_docs_json_md_defines() {
    let doc = std::fs::read_to_string(backstop_tests::workspace_root().join("docs/json.md"))
        .expect("docs/json.md");
    let names = names_under(&doc, "## Vocabulary");
    let retired = names_under(&doc, "## Retired names");
    assert!(names.len() > 100, "{names:?}");
    for synonym in ["backup", "database", "detail", "warn", "seconds"] {
        assert!(
            retired.contains(synonym),
            "`{synonym}` is not among the retired names"
        );
    }
    for name in &retired {
        assert!(!names.contains(name), "`{name}` is retired, yet defined");
    }

    let db = fresh_database("json vocabulary");
    db.psql(
        "CREATE TABLE orders (id int PRIMARY KEY, customer int); \
         CREATE TABLE customers (id int PRIMARY KEY); \
         ALTER TABLE orders ADD FOREIGN KEY (customer) REFERENCES customers; \
         INSERT INTO customers SELECT generate_series(1, 10); \
         INSERT INTO orders SELECT g, 1 + g % 10 FROM generate_series(1, 100) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    let url = db.url();
    let id = db.name.as_str();
    let scratch = cluster().url("postgres");
    let target = fresh_database("json vocabulary target");
    let target_url = target.url();
    let from = ["--from", store.as_str(), "--database-id", id];
    let with = |command: &[&'static str], rest: &[&str]| -> Vec<String> {
        command
            .iter()
            .chain(rest)
            .map(|s| s.to_string())
            .chain(["--json".to_string()])
            .collect()
    };

    let mut outputs: Vec<(String, Value)> = Vec::new();
    let mut run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Named by the command alone: the arguments hold the harness's password.
        outputs.push((args[0].to_string(), json_of(&args)));
    };
    run(with(&["doctor"], &["--store", &store, "--db", &url]));
    run(with(&["backup"], &["--db", &url, "--to", &store]));
    backstop_ok(&["backup", "--db", &url, "--to", &store], &[]);
    run(with(&["stream"], &["--db", &url, "--to", &store]));
    run(with(&["incidents"], &from));
    run(with(&["list"], &from));
    run(with(&["show"], &from));
    run(with(
        &["verify"],
        &[&from[..], &["--level", "restore", "--scratch-db", &scratch]].concat(),
    ));
    run(with(&["status"], &["--from", &store]));
    run(with(&["report"], &from));
    run(with(
        &["health"],
        &[
            &from[..],
            &["--db", &url, "--rpo", "1h", "--restore-test-every", "30d"],
        ]
        .concat(),
    ));
    run(with(
        &["restore"],
        &[&from[..], &["--db", &target_url, "--roles", "plan"]].concat(),
    ));
    run(with(
        &["restore"],
        &[&from[..], &["--db", &target_url]].concat(),
    ));
    run(with(
        &["prune"],
        &[&from[..], &["--keep-daily", "1", "--dry-run"]].concat(),
    ));
    run(with(&["advise"], &["--db", &url]));
    db.psql("CREATE SCHEMA recovered; CREATE TABLE recovered.orders AS TABLE orders;");
    let putback = dir.path().join("orders.putback.sql").display().to_string();
    run(with(
        &["compare"],
        &[
            "--db",
            &url,
            "--table",
            "public.orders",
            "--with",
            "recovered.orders",
            "--output",
            &putback,
        ],
    ));

    let mut unknown = Vec::new();
    for (command, output) in &outputs {
        let mut seen = BTreeSet::new();
        keys(output, &mut seen);
        for key in seen {
            if retired.contains(&key) {
                unknown.push(format!("`{key}` (backstop {command}), a retired name"));
            } else if !names.contains(&key) {
                unknown.push(format!("`{key}` (backstop {command})"));
            }
        }
    }
    for example in examples(&doc) {
        let mut seen = BTreeSet::new();
        keys(&example, &mut seen);
        for key in seen {
            if !names.contains(&key) {
                unknown.push(format!("`{key}` (an example in docs/json.md)"));
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "names docs/json.md does not define:\n{}",
        unknown.join("\n")
    );
    let _ = cluster().run_psql(
        "postgres",
        &["-c", &format!("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{id}'")],
    );
}
