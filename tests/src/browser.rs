//! A headless Chromium driven through chromedriver's WebDriver endpoint (Debian's `chromium`
//! and `chromium-driver`): open a local page, find the elements a person would see, read their
//! text, take screenshots. Blocking calls on a runtime of its own: from async code, use it
//! inside `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium driven through chromedriver's WebDriver endpoint.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Browser {
    /// The browser, or `None` (said on stderr) when Chromium is not installed outside CI.
    pub fn start(profile: &Path) -> Option<Self> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var("CI").is_err(),
                "{CHROMIUM} or {CHROMEDRIVER} is missing; scripts/install-deps.sh installs them"
            );
            eprintln!("SKIPPED the browser half: {CHROMIUM} or {CHROMEDRIVER} is missing");
            return None;
        }
        let port = crate::service::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut browser = Self {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            runtime,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while browser.call("GET", "/status", None).is_none() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let user_data: PathBuf = profile.join("chromium-profile");
        let created = browser
            .call(
                "POST",
                "/session",
                Some(json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            "--disable-dev-shm-usage", "--window-size=1000,1600",
                            format!("--user-data-dir={}", user_data.display()),
                        ]
                    }
                }}})),
            )
            .expect("a WebDriver session");
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Some(browser)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let request = match method {
                "GET" => self.http.get(&url),
                "DELETE" => self.http.delete(&url),
                _ => self.http.post(&url).json(&body.unwrap_or(json!({}))),
            };
            let response = request.timeout(Duration::from_secs(60)).send().await.ok()?;
            let value: Value = response.json().await.ok()?;
            Some(value["value"].clone())
        })
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let value = self
            .call(method, &path, body)
            .unwrap_or_else(|| panic!("WebDriver {method} {path} did not answer"));
        assert!(
            value.get("error").is_none(),
            "WebDriver {method} {path}: {value}"
        );
        value
    }

    /// Opens a local file.
    pub fn open(&self, page: &Path) {
        self.session_call(
            "POST",
            "/url",
            Some(json!({"url": format!("file://{}", page.display())})),
        );
    }

    /// Makes the window as tall as the page, so a screenshot shows all of it.
    pub fn fit_to_page(&self) {
        let height = self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": "return document.documentElement.scrollHeight", "args": []})),
        );
        // The window's height includes the browser's own frame.
        let height = height.as_f64().unwrap_or(1600.0).clamp(200.0, 8000.0) + 200.0;
        self.session_call(
            "POST",
            "/window/rect",
            Some(json!({"width": 1000, "height": height})),
        );
    }

    /// The element ids `selector` finds that are displayed with a non-empty box.
    pub fn visible(&self, selector: &str) -> Vec<String> {
        let found = self.session_call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": selector})),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_object()?.values().next()?.as_str().map(str::to_string))
            .filter(|id| {
                let shown = self.session_call("GET", &format!("/element/{id}/displayed"), None);
                let rect = self.session_call("GET", &format!("/element/{id}/rect"), None);
                shown == json!(true)
                    && rect["width"].as_f64().unwrap_or(0.0) > 0.0
                    && rect["height"].as_f64().unwrap_or(0.0) > 0.0
            })
            .collect()
    }

    /// The text an element shows, as the browser lays it out.
    pub fn text(&self, element: &str) -> String {
        self.session_call("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the page, or of one element.
    pub fn screenshot(&self, element: Option<&String>) -> Vec<u8> {
        let path = match element {
            Some(id) => format!("/element/{id}/screenshot"),
            None => "/screenshot".into(),
        };
        let encoded = self.session_call("GET", &path, None);
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            encoded.as_str().unwrap(),
        )
        .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
