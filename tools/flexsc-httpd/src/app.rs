//! The application, shared by every server variant: parse a request head,
//! decide the response. Only how the bytes move differs between variants.

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// A file under the document root, read from disk on every request.
    File(String),
    /// `/hello?name=X`: a small computed response.
    Hello(String),
    /// Anything else.
    NotFound,
}

/// The end of the head in `buf`, if complete.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Parses the request line of a complete head.
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Route::NotFound;
    };
    route_target(
        &String::from_utf8_lossy(method),
        &String::from_utf8_lossy(target),
    )
}

/// Routes a method and a request target (path and query), for servers
/// that parse the request line themselves (hyper).
pub fn route_target(method: &str, target: &str) -> Route {
    if method != "GET" {
        return Route::NotFound;
    }
    if let Some(name) = target.strip_prefix("/hello?name=") {
        return Route::Hello(
            name.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect(),
        );
    }
    let path = target.trim_start_matches('/');
    if path.is_empty()
        || path.contains("..")
        || !path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    {
        return Route::NotFound;
    }
    Route::File(path.to_string())
}

/// The body of `/hello?name=X`.
pub fn hello_body(name: &str) -> Vec<u8> {
    format!("Hello, {name}! Served through system calls.\n").into_bytes()
}

/// A response head for a body of `len` bytes.
pub fn response_head(status: u16, len: usize) -> Vec<u8> {
    let reason = if status == 200 { "OK" } else { "Not Found" };
    format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {len}\r\nContent-Type: text/plain\r\nServer: flexsc-httpd\r\n\r\n").into_bytes()
}

/// A whole response.
pub fn response(status: u16, body: &[u8]) -> Vec<u8> {
    let mut r = response_head(status, body.len());
    r.extend_from_slice(body);
    r
}

pub const NOT_FOUND: &[u8] = b"not found\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /index.html HTTP/1.1\r\n\r\n"),
            Route::File("index.html".into())
        );
        assert_eq!(
            route(b"GET /hello?name=c1-7 HTTP/1.1\r\n\r\n"),
            Route::Hello("c1-7".into())
        );
        assert_eq!(
            route(b"GET /../etc/passwd HTTP/1.1\r\n\r\n"),
            Route::NotFound
        );
        assert_eq!(route(b"POST /x HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route_target("GET", "/index.html"),
            Route::File("index.html".into())
        );
        assert_eq!(route_target("HEAD", "/index.html"), Route::NotFound);
        assert_eq!(head_len(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest"), Some(27));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\n"), None);
    }
}
