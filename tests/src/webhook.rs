//! A local HTTP server standing in for a webhook: records each request body and answers
//! with scripted statuses (then 200 once the script runs out).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering (a webhook that hangs).
    pub delay: std::time::Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: std::time::Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }

    /// Answers only after `delay`.
    pub fn after(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Reply>,
    bodies: Vec<String>,
}

/// A running recorder; it serves until the process ends.
#[derive(Debug, Clone)]
pub struct WebhookRecorder {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl WebhookRecorder {
    pub fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind webhook recorder");
        let url = format!(
            "http://{}/services/T000/B000/secret-token",
            listener.local_addr().unwrap()
        );
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            bodies: Vec::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Self { url, state }
    }

    /// The bodies received so far, in order.
    pub fn bodies(&self) -> Vec<String> {
        self.state.lock().unwrap().bodies.clone()
    }
}

fn serve(stream: std::net::TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut content_length = 0usize;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    let reply = {
        let mut state = state.lock().unwrap();
        state
            .bodies
            .push(String::from_utf8_lossy(&body).into_owned());
        state.script.pop_front().unwrap_or(Reply::status(200))
    };
    std::thread::sleep(reply.delay);
    let mut response = format!(
        "HTTP/1.1 {} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&reply.body);
    let mut stream = stream;
    stream.write_all(response.as_bytes())?;
    stream.flush()
}
