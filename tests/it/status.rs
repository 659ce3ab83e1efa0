//! `backstop status`: every database of a store on one screen, as a table, as JSON and as an
//! HTML page, which is opened in headless Chromium (through its WebDriver) and checked on the
//! screenshot: each database's section, its status badge, the timeline with its backups and
//! verification rings, the sizes and the measured restore time (until loaded and until ready,
//! two series with a legend) are drawn where a person sees them. `health` reports the same
//! measured restore.

use backstop_tests::browser::Browser;
use backstop_tests::postgres::{cluster, fresh_database};
use serde_json::Value;

use crate::support::{backstop, backstop_ok};

/// Colours the page draws with (shared/src/status/page.rs).
const HEALTHY: [u8; 3] = [0x1f, 0x8a, 0x4c];
const DAILY: [u8; 3] = [0x2f, 0x6f, 0xdb];
const RTO_LINE: [u8; 3] = [0xc6, 0x28, 0x28];
const RTO_LOADED_LINE: [u8; 3] = [0x0f, 0x8b, 0x8d];

#[test]
fn status_shows_every_database_and_its_page_draws_what_a_person_needs() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}/store", dir.path().display());
    let (app, billing) = (
        fresh_database("status app"),
        fresh_database("status billing"),
    );
    app.psql("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 500)");
    billing.psql("CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)");
    for _ in 0..3 {
        backstop_ok(&["backup", "--db", &app.url(), "--to", &store], &[]);
    }
    backstop_ok(&["backup", "--db", &billing.url(), "--to", &store], &[]);
    let scratch = cluster().url("postgres");
    backstop_ok(
        &[
            "verify",
            "--from",
            &store,
            "--database-id",
            &app.name,
            "--level",
            "restore",
            "--scratch-db",
            &scratch,
        ],
        &[],
    );

    let page = dir.path().join("status.html");
    let output = backstop(
        &[
            "status",
            "--from",
            &store,
            "--json",
            "--html",
            page.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    let databases = status["databases"].as_array().unwrap();
    let app_status = databases
        .iter()
        .find(|d| d["database_id"] == app.name.as_str())
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        databases
            .iter()
            .any(|d| d["database_id"] == billing.name.as_str())
    );
    assert_eq!(app_status["status"], "healthy", "{app_status}");
    assert_eq!(app_status["timeline"].as_array().unwrap().len(), 3);
    assert_eq!(app_status["backups"]["backup_count"], 3);
    let (Some(loaded), Some(ready)) = (
        app_status["rto_loaded_seconds"].as_f64(),
        app_status["rto_seconds"].as_f64(),
    ) else {
        panic!("the measured restore has both times: {app_status}");
    };
    assert!(0.0 < loaded && loaded <= ready, "{app_status}");
    let measured = &app_status["timeline"][0]["verifications"][0];
    assert!(
        measured["loaded_seconds"].as_f64().is_some()
            && measured["restore_seconds"].as_f64().is_some(),
        "{measured}"
    );
    // `health` gives the same measured restore, as JSON and as text.
    let health = backstop_ok(
        &[
            "health",
            "--from",
            &store,
            "--database-id",
            &app.name,
            "--json",
        ],
        &[],
    );
    let health: Value = serde_json::from_slice(&health.stdout).unwrap();
    assert_eq!(
        health["backups"]["rto_seconds"].as_f64(),
        Some(ready),
        "{health}"
    );
    assert_eq!(
        health["backups"]["rto_loaded_seconds"].as_f64(),
        Some(loaded),
        "{health}"
    );
    let health = backstop_ok(
        &["health", "--from", &store, "--database-id", &app.name],
        &[],
    );
    let health = String::from_utf8_lossy(&health.stdout);
    assert!(
        health.contains(&format!(
            "loaded in {}, ready (statistics in place) in {}",
            backstop::status::page::seconds_text(loaded),
            backstop::status::page::seconds_text(ready)
        )),
        "{health}"
    );
    assert_eq!(app_status["encrypted"], false);
    assert_eq!(
        app_status["timeline"][0]["verifications"][0]["verdict"], "passed",
        "the newest backup was the one verified: {app_status}"
    );

    let table = backstop_ok(&["status", "--from", &store], &[]);
    let table = String::from_utf8_lossy(&table.stdout);
    for expected in [
        app.name.as_str(),
        billing.name.as_str(),
        "healthy",
        "restore passed",
        "RTO LOADED",
        "RTO READY",
    ] {
        assert!(table.contains(expected), "{expected} missing:\n{table}");
    }

    let Some(browser) = Browser::start(dir.path()) else {
        return;
    };
    browser.open(&page);
    let shot = dir.path().join("status.png");
    let whole = browser.screenshot(None);
    std::fs::write(&shot, &whole).unwrap();
    let kept = backstop_tests::workspace_root().join("target/status-page.png");
    let _ = std::fs::copy(&shot, &kept);
    eprintln!("status page screenshot: {}", kept.display());

    let sections = browser.visible("section.database");
    assert_eq!(sections.len(), 2, "one section per database");
    let app_section = format!("#db-{}", app.name);
    for (selector, colour) in [
        (format!("{app_section} .head .badge"), HEALTHY),
        (format!("{app_section} svg.timeline"), DAILY),
        (format!("{app_section} svg.timeline"), HEALTHY),
        (format!("{app_section} svg.sizes"), DAILY),
        (format!("{app_section} svg.rto"), RTO_LINE),
        (format!("{app_section} svg.rto"), RTO_LOADED_LINE),
        (format!("{app_section} .rto-legend"), RTO_LINE),
        (format!("{app_section} .rto-legend"), RTO_LOADED_LINE),
    ] {
        let elements = browser.visible(&selector);
        let element = elements
            .first()
            .unwrap_or_else(|| panic!("{selector} is not shown"));
        let image = decode(&browser.screenshot(Some(element)));
        assert!(
            image.has_colour(colour),
            "{selector} shows no pixel of #{:02x}{:02x}{:02x}",
            colour[0],
            colour[1],
            colour[2]
        );
    }
    assert_eq!(
        browser
            .visible(&format!("{app_section} svg.timeline circle.backup"))
            .len(),
        3
    );
    assert_eq!(
        browser.visible("#summary tr").len(),
        3,
        "a header and a row per database"
    );
    let page_image = decode(&whole);
    assert!(page_image.width >= 800 && page_image.height >= 600);
}

struct Image {
    width: u32,
    height: u32,
    rgba: Vec<u8>,
}

impl Image {
    /// Whether some pixel is within a few steps of `colour` (antialiasing blends edges).
    fn has_colour(&self, colour: [u8; 3]) -> bool {
        self.rgba
            .chunks_exact(4)
            .any(|px| px.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 6))
    }
}

fn decode(png_bytes: &[u8]) -> Image {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    buffer.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::Rgba => buffer,
        png::ColorType::Rgb => buffer
            .chunks_exact(3)
            .flat_map(|px| [px[0], px[1], px[2], 255])
            .collect(),
        other => panic!("screenshot in {other:?}"),
    };
    Image {
        width: info.width,
        height: info.height,
        rgba,
    }
}
