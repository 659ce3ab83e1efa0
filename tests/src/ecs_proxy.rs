//! A loopback proxy in front of moto for ECS: moto answers a task's containers with `cpu` (and
//! `memory`) as JSON numbers where ECS sends strings, which the Rust SDK refuses to read. The
//! proxy forwards each request to moto unchanged and turns those numbers into strings in the
//! answer; nothing else is touched. Point an ECS client at [`EcsProxy::endpoint`].

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;

use serde_json::Value;

pub struct EcsProxy {
    pub endpoint: String,
}

static PROXY: OnceLock<EcsProxy> = OnceLock::new();

/// The proxy of this process, in front of `moto` (started on first use).
pub fn ecs_proxy() -> &'static EcsProxy {
    PROXY.get_or_init(|| {
        let upstream = crate::moto::moto()
            .endpoint
            .trim_start_matches("http://")
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port for the proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    if let Err(e) = relay(client, &upstream) {
                        eprintln!("ecs proxy: {e}");
                    }
                });
            }
        });
        EcsProxy { endpoint }
    })
}

/// One HTTP message: its start line and headers as read, and its body.
struct Message {
    head: Vec<String>,
    body: Vec<u8>,
}

fn read_message(reader: &mut impl BufRead) -> std::io::Result<Option<Message>> {
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        head.push(line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Message { head, body }))
}

fn write_message(out: &mut impl Write, message: &Message) -> std::io::Result<()> {
    for line in &message.head {
        let skip = line.split_once(':').is_some_and(|(name, _)| {
            name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("connection")
        });
        if !skip {
            write!(out, "{line}\r\n")?;
        }
    }
    write!(
        out,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        message.body.len()
    )?;
    out.write_all(&message.body)?;
    out.flush()
}

/// Containers' `cpu`, `memory` and `memoryReservation` as ECS spells them: strings.
fn fix(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(containers)) = map.get_mut("containers") {
                for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                    for field in ["cpu", "memory", "memoryReservation"] {
                        if let Some(number @ Value::Number(_)) = container.get_mut(field) {
                            *number = Value::String(number.to_string());
                        }
                    }
                }
            }
            map.values_mut().for_each(fix);
        }
        Value::Array(items) => items.iter_mut().for_each(fix),
        _ => {}
    }
}

/// Relays one request (the answer says `Connection: close`).
fn relay(client: TcpStream, upstream: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(request) = read_message(&mut reader)? else {
        return Ok(());
    };
    let mut moto = TcpStream::connect(upstream)?;
    write_message(&mut moto, &request)?;
    let mut answer = read_message(&mut BufReader::new(moto))?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "moto closed"))?;
    if let Ok(mut json) = serde_json::from_slice::<Value>(&answer.body) {
        fix(&mut json);
        answer.body = serde_json::to_vec(&json)?;
    }
    let mut out = client.try_clone()?;
    write_message(&mut out, &answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_container_sizes_become_strings() {
        let mut answer = serde_json::json!({"tasks": [{"cpu": "2048", "containers": [
            {"cpu": 0, "memory": 8192, "exitCode": 0, "name": "backstop"}]}]});
        fix(&mut answer);
        assert_eq!(
            answer,
            serde_json::json!({"tasks": [{"cpu": "2048", "containers": [
                {"cpu": "0", "memory": "8192", "exitCode": 0, "name": "backstop"}]}]})
        );
    }
}
