//! `make demo`: a throwaway PostgreSQL with a sample shop database, then the real `backstop`
//! CLI through a whole cycle: doctor, backup, list, restore into a new database, and a check
//! that `pg_dump` of the copy matches the source. The store is `file://.local/demo/store`
//! unless `DEMO_STORE` names another (`s3://...` with `AWS_ENDPOINT_URL` for a local S3).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use backstop::store::StoreUrl;
use backstop_tests::postgres::{cluster, fresh_database};

const SAMPLE_SCHEMA: &str = r#"
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);
CREATE TABLE products (
    id int PRIMARY KEY,
    title text NOT NULL,
    attributes jsonb NOT NULL DEFAULT '{}',
    price numeric(10,2) NOT NULL CHECK (price >= 0)
);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers,
    placed_at timestamptz NOT NULL,
    status text NOT NULL
);
CREATE TABLE order_items (
    order_id bigint NOT NULL REFERENCES orders,
    product_id int NOT NULL REFERENCES products,
    quantity int NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
INSERT INTO customers (name, email, created_at)
SELECT 'Customer ' || i, 'customer' || i || '@example.com', now() - i * interval '17 minutes'
FROM generate_series(1, 20000) AS i;
INSERT INTO products
SELECT i, 'Product ' || i, jsonb_build_object('colour', (ARRAY['red','green','blue'])[1 + i % 3], 'tags', jsonb_build_array('sale', i % 7)), (i % 500) + 0.99
FROM generate_series(1, 2000) AS i;
INSERT INTO orders (customer_id, placed_at, status)
SELECT 1 + (i * 7919) % 20000, now() - i * interval '3 minutes', (ARRAY['paid','shipped','refunded'])[1 + i % 3]
FROM generate_series(1, 50000) AS i;
INSERT INTO order_items
SELECT o, 1 + (o * 31 + k * 97) % 2000, 1 + k
FROM generate_series(1, 50000) AS o, generate_series(0, 2) AS k;
"#;

const TABLES: [&str; 4] = ["customers", "products", "orders", "order_items"];

struct Step {
    name: &'static str,
    seconds: f64,
    result: String,
}

/// Runs the CLI, returning its standard output; a failure stops the demo with its message.
fn backstop(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(backstop_bin()?).args(args).output()?;
    if !output.status.success() {
        bail!(
            "backstop {} failed: {}",
            args[0],
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(f64, T)> {
    let started = Instant::now();
    let value = f()?;
    Ok((started.elapsed().as_secs_f64(), value))
}

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let store: StoreUrl = match std::env::var("DEMO_STORE") {
        Ok(url) => url.parse()?,
        Err(_) => {
            let dir = backstop_tests::workspace_root().join(".local/demo/store");
            format!("file://{}", dir.display()).parse()?
        }
    };
    let store = store.to_string();

    println!("Backstop demo\n");
    let pg = cluster();
    let db = fresh_database("demo shop");
    let (seconds, ()) = timed(|| {
        db.psql(SAMPLE_SCHEMA);
        Ok(())
    })?;
    println!(
        "  PostgreSQL   throwaway cluster on {}:{} (removed when the demo ends)",
        pg.host, pg.port
    );
    println!(
        "  database     {} (sample shop: {} tables, built in {seconds:.1}s)",
        db.name,
        TABLES.len()
    );
    println!("  store        {store}\n");

    let mut steps = Vec::new();
    let (seconds, out) = timed(|| backstop(&["doctor", "--store", &store, "--db", &db.url()]))?;
    steps.push(Step {
        name: "doctor",
        seconds,
        result: format!("{} checks ok", out.lines().count()),
    });

    let (seconds, out) =
        timed(|| backstop(&["backup", "--db", &db.url(), "--to", &store, "--json"]))?;
    let summary: serde_json::Value = serde_json::from_str(&out)?;
    steps.push(Step {
        name: "backup",
        seconds,
        result: format!(
            "{} ({} tables, {} rows, {} bytes, tier {})",
            summary["backup_id"].as_str().unwrap_or("?"),
            summary["tables"],
            summary["rows"],
            summary["bytes"],
            summary["tier"].as_str().unwrap_or("?")
        ),
    });

    let (seconds, out) =
        timed(|| backstop(&["list", "--from", &store, "--database-id", &db.name]))?;
    steps.push(Step {
        name: "list",
        seconds,
        result: format!("{} backup(s)", out.lines().count().saturating_sub(1)),
    });
    print!("{out}");

    let copy = fresh_database("demo shop restored");
    let (seconds, _) = timed(|| {
        backstop(&[
            "restore",
            "--from",
            &store,
            "--database-id",
            &db.name,
            "--db",
            &copy.url(),
            "--jobs",
            "2",
        ])
    })?;
    steps.push(Step {
        name: "restore",
        seconds,
        result: format!("into {}", copy.name),
    });

    let (seconds, same) = timed(|| Ok(db.pg_dump() == copy.pg_dump()))?;
    steps.push(Step {
        name: "compare",
        seconds,
        result: if same {
            "pg_dump of the copy is identical to the source".into()
        } else {
            "pg_dump DIFFERS".into()
        },
    });

    println!("\n  {:<10} {:>7}  result", "step", "time");
    for step in &steps {
        println!(
            "  {:<10} {:>6.1}s  {}",
            step.name, step.seconds, step.result
        );
    }
    println!("\n  whole cycle in {:.1}s", started.elapsed().as_secs_f64());
    if !same {
        bail!("the restored database differs from the source");
    }
    Ok(())
}

fn backstop_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.parent().context("binary folder")?.join("backstop");
    if !bin.exists() {
        bail!("{} is missing; run `cargo build --bins`", bin.display());
    }
    Ok(bin)
}
