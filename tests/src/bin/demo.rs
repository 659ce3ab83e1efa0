//! `make demo`: a throwaway PostgreSQL with a sample shop database, each table exported with
//! COPY into a store (zstd-compressed, SHA-256 recorded), read back and compared, then the
//! `backstop` CLI checks the store and the database. The store is `file://.local/demo/store`
//! unless `DEMO_STORE` names another (`s3://...` with `AWS_ENDPOINT_URL` for a local S3).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use backstop::layout::STATE_PREFIX;
use backstop::store::{PutOptions, StoreUrl, open_from_env};
use backstop_tests::postgres::{cluster, fresh_database};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

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

struct TableResult {
    table: &'static str,
    rows: usize,
    raw_bytes: usize,
    stored_bytes: u64,
    matched: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let store_url: StoreUrl = match std::env::var("DEMO_STORE") {
        Ok(url) => url.parse()?,
        Err(_) => {
            let dir = backstop_tests::workspace_root().join(".local/demo/store");
            format!("file://{}", dir.display()).parse()?
        }
    };

    println!("Backstop demo\n");
    let pg = cluster();
    let db = fresh_database("demo shop");
    db.psql(SAMPLE_SCHEMA);
    println!(
        "  PostgreSQL   throwaway cluster on {}:{} (removed when the demo ends)",
        pg.host, pg.port
    );
    println!(
        "  database     {} (sample shop: {} tables)",
        db.name,
        TABLES.len()
    );
    println!("  store        {store_url}\n");

    let store = open_from_env(&store_url).await;
    let config = backstop::pg::parse_url(&db.url())?;
    let client = backstop::pg::connect(&config).await?;
    let run = format!(
        "{STATE_PREFIX}/demo-exports/{}",
        backstop::layout::BackupId::generate(time::OffsetDateTime::now_utc())
    );

    let mut results = Vec::new();
    for (index, table) in TABLES.iter().enumerate() {
        // Export: COPY the table out, compress, store.
        let stream = client
            .copy_out(&format!("COPY public.{table} TO STDOUT"))
            .await?;
        let chunks: Vec<bytes::Bytes> = stream
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .with_context(|| format!("COPY {table}"))?;
        let raw: Vec<u8> = chunks.concat();
        let compressed = zstd::encode_all(raw.as_slice(), 3)?;
        let key = format!("{run}/{:04}-{table}.copy.zst", index + 1);
        let receipt = store
            .put(&key, &mut compressed.as_slice(), &PutOptions::default())
            .await?;

        // Read back: fetch, check the stored bytes' SHA-256, decompress, compare the rows.
        let mut fetched = Vec::new();
        store.get(&key).await?.read_to_end(&mut fetched).await?;
        let stored_ok = hex::encode(Sha256::digest(&fetched)) == receipt.sha256;
        let restored = zstd::decode_all(fetched.as_slice())?;
        results.push(TableResult {
            table,
            rows: raw.iter().filter(|b| **b == b'\n').count(),
            raw_bytes: raw.len(),
            stored_bytes: receipt.bytes,
            matched: stored_ok && restored == raw,
        });
    }

    println!(
        "  {:<14} {:>8} {:>12} {:>12}  read back",
        "table", "rows", "COPY bytes", "stored"
    );
    for r in &results {
        let verdict = if r.matched { "identical" } else { "MISMATCH" };
        println!(
            "  {:<14} {:>8} {:>12} {:>12}  {verdict}",
            r.table, r.rows, r.raw_bytes, r.stored_bytes
        );
    }

    println!();
    let doctor = Command::new(backstop_bin()?)
        .args([
            "doctor",
            "--store",
            &store_url.to_string(),
            "--db",
            &db.url(),
        ])
        .output()?;
    print!("{}", String::from_utf8_lossy(&doctor.stdout));
    if !doctor.status.success() {
        bail!(
            "backstop doctor failed: {}",
            String::from_utf8_lossy(&doctor.stderr).trim()
        );
    }

    let all_matched = results.iter().all(|r| r.matched);
    println!(
        "\n  {} of {} tables written and read back identical through {store_url} in {:.1}s",
        results.iter().filter(|r| r.matched).count(),
        results.len(),
        started.elapsed().as_secs_f64()
    );
    if !all_matched {
        bail!("a table read back differently from what was written");
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
