//! A minimal blocking HTTP/1.1 client for the JSON API (one request per connection).

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;

pub struct Response {
    pub status: u16,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as received.
    pub bytes: Vec<u8>,
    pub content_type: String,
    /// The status line and headers as received.
    pub head: String,
}

pub fn request(port: u16, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> std::io::Result<Response> {
    let text = body.map(|b| b.to_string());
    request_bytes(
        port,
        method,
        path,
        token,
        text.as_deref().map(str::as_bytes),
        body.map(|_| "application/json"),
    )
}

/// Sends `body` as is (an upload), with `content_type` if given.
pub fn request_bytes(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    content_type: Option<&str>,
) -> std::io::Result<Response> {
    request_full(port, method, path, token, body, content_type, &[])
}

/// A GET with extra headers (e.g. `Range`) and no token.
pub fn get_with_headers(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    request_full(port, "GET", path, None, None, None, headers)
}

fn request_full(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    let body = body.unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // The server may answer (413) and close before the whole body is sent.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4).unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let lower = head.to_ascii_lowercase();
    let content_type = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-type:"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let bytes = if lower.contains("transfer-encoding: chunked") {
        dechunk(&raw[split..])
    } else {
        raw[split..].to_vec()
    };
    Ok(Response {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        bytes,
        content_type,
        head,
    })
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = s.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&s[..pos]).trim(), 16).unwrap_or(0);
        let rest = &s[pos + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
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

/// Uploads a file as an asset of `project` (the body is the file; the type is found by content).
pub fn upload(port: u16, who: &Account, project: i64, bytes: &[u8], name: &str) -> Response {
    request_bytes(
        port,
        "POST",
        &format!("/api/v1/projects/{project}/assets?name={name}"),
        Some(&who.token),
        Some(bytes),
        Some("application/octet-stream"),
    )
    .unwrap()
}
