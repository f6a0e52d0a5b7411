//! A tiny, std-only static file server for a generated docs directory.
//!
//! `GET /` serves `index.html`; other paths serve files under the directory.
//! Anything else is a 404: paths are percent-decoded, `..` segments are refused
//! and the resolved file must stay inside the (canonicalized) directory, so
//! neither traversal nor symlinks can escape it. One thread per connection,
//! bounded, with timeouts; every response closes its connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::DocsError;

/// Connections served at once; further ones are closed immediately.
const MAX_CONNECTIONS: usize = 64;
/// Longest accepted request line or header line.
const MAX_LINE: u64 = 8 * 1024;
/// Most header lines read before giving up on a request.
const MAX_HEADERS: usize = 100;

/// Serves `dir` on `host:port` (port 0 picks a free one) until the process ends.
///
/// `ready` is called once with the bound address, before the first request is
/// accepted. Blocks the calling thread; returns only if binding fails.
pub fn serve(
    dir: &Path,
    host: &str,
    port: u16,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), DocsError> {
    let root = dir.canonicalize()?;
    let listener = TcpListener::bind((host, port)).map_err(|source| DocsError::Bind {
        addr: format!("{host}:{port}"),
        source,
    })?;
    ready(listener.local_addr()?);
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let root = root.clone();
        let active = Arc::clone(&active);
        thread::spawn(move || {
            // A failed connection only concerns its client.
            let _ = handle_connection(stream, &root);
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}

/// Reads one request and writes one response.
fn handle_connection(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request_line) = read_line(&mut reader)? else {
        return Ok(());
    };
    skip_headers(&mut reader)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut stream = stream;
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"method not allowed\n",
            true,
        );
    }
    let head_only = method == "HEAD";
    match resolve(root, target).and_then(|path| std::fs::read(&path).ok().map(|body| (path, body)))
    {
        Some((path, body)) => respond(
            &mut stream,
            "200 OK",
            content_type(&path),
            &body,
            !head_only,
        ),
        None => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            !head_only,
        ),
    }
}

/// One CRLF-terminated line, bounded in length; `None` at end of stream.
fn read_line(reader: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let read = reader
        .by_ref()
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&line).trim_end().to_owned()))
}

/// Consumes header lines up to the blank line (bodies of GET requests are ignored).
fn skip_headers(reader: &mut impl BufRead) -> std::io::Result<()> {
    for _ in 0..MAX_HEADERS {
        match read_line(reader)? {
            Some(line) if !line.is_empty() => continue,
            _ => break,
        }
    }
    Ok(())
}

/// Writes a complete response and closes the connection.
fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// Maps a request target to a file inside `root`, or `None` (404).
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let relative = decoded.strip_prefix('/')?;
    let mut candidate = root.to_path_buf();
    for segment in relative.split('/') {
        match segment {
            "" | "." => continue,
            ".." => return None,
            s if s.contains(['\\', '\0', ':']) => return None,
            s => candidate.push(s),
        }
    }
    if candidate.is_dir() {
        candidate.push("index.html");
    }
    let canonical = candidate.canonicalize().ok()?;
    (canonical.starts_with(root) && canonical.is_file()).then_some(canonical)
}

/// Decodes `%XX` escapes; `None` for malformed escapes or non-UTF-8 results.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Content type from the file extension.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Serves `<tmp>/site` (`index.html`, `sub/a.txt`) next to `<tmp>/secret.txt`.
    fn start() -> (tempfile::TempDir, SocketAddr) {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("sub")).unwrap();
        std::fs::write(site.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(site.join("sub/a.txt"), "a").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "s").unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || serve(&site, "127.0.0.1", 0, move |addr| tx.send(addr).unwrap()));
        let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        (dir, addr)
    }

    fn get(addr: SocketAddr, raw_target: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET {raw_target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_index_and_files() {
        let (_dir, addr) = start();
        let index = get(addr, "/");
        assert!(index.starts_with("HTTP/1.1 200 OK"), "{index}");
        assert!(index.contains("text/html") && index.ends_with("<p>hi</p>"));
        assert!(get(addr, "/index.html?x=1").ends_with("<p>hi</p>"));
        assert!(get(addr, "/sub/a%2Etxt").ends_with("\r\n\r\na"));
    }

    #[test]
    fn refuses_traversal_and_unknown_paths() {
        let (_dir, addr) = start();
        let targets = [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/sub/..%2f..%2fsecret.txt",
            "/sub/../../secret.txt",
            "/nope",
            "/..\\secret.txt",
            "/%zz",
            "//etc/passwd",
        ];
        for target in targets {
            let response = get(addr, target);
            assert!(response.starts_with("HTTP/1.1 404"), "{target}: {response}");
        }
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "POST / HTTP/1.1\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 405"));
    }

    #[test]
    fn reports_bind_errors() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let err = serve(dir.path(), "127.0.0.1", port, |_| {}).unwrap_err();
        assert!(matches!(err, DocsError::Bind { .. }), "{err}");
    }
}
