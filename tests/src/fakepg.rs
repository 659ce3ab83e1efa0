//! A stand-in that speaks PostgreSQL's wire protocol (no TLS, no password, simple queries
//! only) and answers with scripted rows: for the faults a real server will not produce on
//! demand, such as a health figure that is not a number. Everything else is a real server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// Rows (text cells, `None` for NULL) answered to a query containing `matches`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub matches: String,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Answer {
    pub fn new(matches: &str, rows: &[&[Option<&str>]]) -> Self {
        Self {
            matches: matches.into(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| c.map(str::to_string)).collect())
                .collect(),
        }
    }
}

/// A running stand-in on a loopback port; queries matching no answer get no rows.
pub struct FakePg {
    pub port: u16,
}

impl FakePg {
    /// A URL for it (`sslmode=disable`: it speaks no TLS).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://monitor@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }
}

/// Starts the stand-in; it serves until the test process ends.
pub fn start(answers: Vec<Answer>) -> FakePg {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answers = Arc::new(answers);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answers = answers.clone();
            std::thread::spawn(move || {
                let _ = serve(stream, &answers);
            });
        }
    });
    FakePg { port }
}

fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn read_exact(stream: &mut TcpStream, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buffer = vec![0; len];
    stream.read_exact(&mut buffer)?;
    Ok(buffer)
}

fn read_i32(stream: &mut TcpStream) -> std::io::Result<i32> {
    let bytes = read_exact(stream, 4)?;
    Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn serve(mut stream: TcpStream, answers: &[Answer]) -> std::io::Result<()> {
    // Startup, after an SSLRequest answered "no".
    loop {
        let len = read_i32(&mut stream)? as usize;
        let body = read_exact(&mut stream, len - 4)?;
        if body[..4] == 80_877_103_i32.to_be_bytes() {
            stream.write_all(b"N")?;
            continue;
        }
        break;
    }
    let mut hello = message(b'R', &0_i32.to_be_bytes());
    for (name, value) in [
        ("server_version", "17.2"),
        ("client_encoding", "UTF8"),
        ("integer_datetimes", "on"),
    ] {
        hello.extend(message(b'S', format!("{name}\0{value}\0").as_bytes()));
    }
    hello.extend(message(b'K', &[0, 0, 0, 1, 0, 0, 0, 2]));
    hello.extend(message(b'Z', b"I"));
    stream.write_all(&hello)?;

    loop {
        let kind = read_exact(&mut stream, 1)?[0];
        let len = read_i32(&mut stream)? as usize;
        let body = read_exact(&mut stream, len - 4)?;
        match kind {
            b'X' => return Ok(()),
            b'Q' => {
                let query = String::from_utf8_lossy(&body);
                let rows = answers
                    .iter()
                    .find(|a| query.contains(&a.matches))
                    .map(|a| a.rows.clone())
                    .unwrap_or_default();
                stream.write_all(&result(&rows))?;
            }
            _ => {
                let error = message(
                    b'E',
                    b"SERROR\0C0A000\0Monly simple queries are answered here\0\0",
                );
                stream.write_all(&[error, message(b'Z', b"I")].concat())?;
            }
        }
    }
}

/// RowDescription (text columns), the rows, CommandComplete and ReadyForQuery.
fn result(rows: &[Vec<Option<String>>]) -> Vec<u8> {
    let columns = rows.first().map_or(1, Vec::len);
    let mut description = (columns as i16).to_be_bytes().to_vec();
    for i in 0..columns {
        description.extend(format!("c{i}\0").as_bytes());
        description.extend(0_i32.to_be_bytes()); // table
        description.extend(0_i16.to_be_bytes()); // column
        description.extend(25_i32.to_be_bytes()); // text
        description.extend((-1_i16).to_be_bytes());
        description.extend((-1_i32).to_be_bytes());
        description.extend(0_i16.to_be_bytes()); // text format
    }
    let mut out = message(b'T', &description);
    for row in rows {
        let mut data = (row.len() as i16).to_be_bytes().to_vec();
        for cell in row {
            match cell {
                Some(text) => {
                    data.extend((text.len() as i32).to_be_bytes());
                    data.extend(text.as_bytes());
                }
                None => data.extend((-1_i32).to_be_bytes()),
            }
        }
        out.extend(message(b'D', &data));
    }
    out.extend(message(b'C', format!("SELECT {}\0", rows.len()).as_bytes()));
    out.extend(message(b'Z', b"I"));
    out
}
