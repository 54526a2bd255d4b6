//! A minimal blocking HTTP/1.1 client for the JSON API (one request per connection).

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;

pub struct Response {
    pub status: u16,
    pub body: Value,
}

pub fn request(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    let body_text = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body_text.len()
    );
    if body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body_text.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Ok(Response {
        status,
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A signed-up user with a token.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub token: String,
}

pub fn register(port: u16, name: &str) -> Account {
    let email = format!("{name}-{}@example.com", uuid::Uuid::new_v4().simple());
    let res = request(
        port,
        "POST",
        "/api/v1/auth/register",
        None,
        Some(&serde_json::json!({ "email": email, "password": "correct horse", "display_name": name })),
    )
    .unwrap();
    assert_eq!(res.status, 201, "{}", res.body);
    Account {
        id: res.body["user"]["id"].as_i64().unwrap(),
        email,
        token: res.body["token"].as_str().unwrap().to_owned(),
    }
}

/// Creates a project owned by `owner`; returns `(project id, document id)`.
pub fn create_project(port: u16, owner: &Account, name: &str) -> (i64, String) {
    let res = request(
        port,
        "POST",
        "/api/v1/projects",
        Some(&owner.token),
        Some(&serde_json::json!({ "name": name })),
    )
    .unwrap();
    assert_eq!(res.status, 201, "{}", res.body);
    (res.body["id"].as_i64().unwrap(), res.body["doc_id"].as_str().unwrap().to_owned())
}

pub fn add_member(port: u16, owner: &Account, project: i64, member: &Account, role: &str) {
    let res = request(
        port,
        "POST",
        &format!("/api/v1/projects/{project}/members"),
        Some(&owner.token),
        Some(&serde_json::json!({ "email": member.email, "role": role })),
    )
    .unwrap();
    assert_eq!(res.status, 201, "{}", res.body);
}
