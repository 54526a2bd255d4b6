//! Which browser pages may open the WebSockets (`/sync`, `/events`).
//!
//! A browser sends `Origin` with every WebSocket upgrade, and a page on any site could open one
//! with a token it got hold of. Upgrades that carry an `Origin` are accepted only from the
//! studio's own origin — `[server] public_url`, or the listen address when that is unset — and
//! the origins listed in `[server] allowed_origins`. Non-browser clients (the Node and Rust
//! automerge-repo clients, workers) send no `Origin` and are not affected.

use std::collections::BTreeSet;
use std::net::SocketAddr;

/// An origin in its canonical form: `scheme://host[:port]`, lowercase, the scheme's default port
/// left out.
pub fn canonical(origin: &str) -> Option<String> {
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, rest) = origin.split_once("://")?;
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    // `[::1]:8080`, `host:8080`, `host`.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some(match port {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The origins accepted for browser WebSocket upgrades.
#[derive(Clone, Debug)]
pub struct AllowedOrigins {
    origins: BTreeSet<String>,
}

impl AllowedOrigins {
    /// The studio's own origin (from `public_url`, else the address the server listens on) and
    /// the configured extra ones. On a loopback address, `localhost` is the same origin.
    pub fn new(public_origin: Option<&str>, listen: SocketAddr, extra: &[String]) -> AllowedOrigins {
        let mut origins: BTreeSet<String> = extra.iter().filter_map(|o| canonical(o)).collect();
        match public_origin.and_then(canonical) {
            Some(own) => {
                origins.insert(own);
            }
            None => {
                let port = listen.port();
                let ip = listen.ip();
                if ip.is_loopback() || ip.is_unspecified() {
                    origins.insert(format!("http://localhost:{port}"));
                    origins.insert(format!("http://127.0.0.1:{port}"));
                    origins.insert(format!("http://[::1]:{port}"));
                }
                if !ip.is_unspecified() {
                    origins.insert(canonical(&format!("http://{listen}")).expect("a socket address is an origin"));
                }
            }
        }
        AllowedOrigins { origins }
    }

    /// Whether an upgrade with this `Origin` header (if any) is accepted.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(o) => canonical(o).is_some_and(|o| self.origins.contains(&o)),
        }
    }

    pub fn list(&self) -> impl Iterator<Item = &str> {
        self.origins.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_in_canonical_form() {
        assert_eq!(canonical("HTTPS://Studio.Example.com:443/path").as_deref(), Some("https://studio.example.com"));
        assert_eq!(canonical("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(canonical("http://[::1]:8080").as_deref(), Some("http://[::1]:8080"));
        assert_eq!(canonical("null"), None);
        assert_eq!(canonical("ftp://x"), None);
        assert_eq!(canonical("http://user@evil"), None);
        assert_eq!(canonical("http://host:80x"), None);
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let own = AllowedOrigins::new(None, listen, &["http://localhost:5173".into()]);
        assert!(own.allows(None), "clients without an Origin are not browsers");
        assert!(own.allows(Some("http://127.0.0.1:8080")));
        assert!(own.allows(Some("http://localhost:8080")));
        assert!(own.allows(Some("http://localhost:5173")));
        assert!(!own.allows(Some("http://127.0.0.1:8081")));
        assert!(!own.allows(Some("https://evil.example")));
        assert!(!own.allows(Some("null")));
        let public = AllowedOrigins::new(Some("https://studio.example.com/"), listen, &[]);
        assert!(public.allows(Some("https://studio.example.com")));
        assert!(!public.allows(Some("http://127.0.0.1:8080")), "public_url replaces the listen address");
    }
}
