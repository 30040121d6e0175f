//! HTTP/1.1 "hello world" with keep-alive, one coroutine per connection, requests parsed by
//! `httparse`. It is small but honest about the protocol:
//!
//! - keep-alive by default on HTTP/1.1, `Connection: close` honoured; HTTP/1.0 closes unless
//!   the client asked for `Connection: keep-alive`;
//! - pipelined requests are answered in order, all responses to what one read brought in go
//!   out in one write;
//! - a request may arrive in pieces (any split, even byte by byte);
//! - request bodies (`Content-Length`) are read and discarded; chunked bodies get 501;
//! - a malformed request gets `400 Bad Request` (oversized heads `431`) and the connection is
//!   closed, after the response has been delivered (see [`close_gracefully`]).
//!
//! Routes: `GET /` → `hello world`, `GET /hello/NAME` → `hello NAME`, anything else 404;
//! methods other than GET and HEAD get 405.
//!
//! Run: `cargo run --release --example http_hello [PORT | ADDR]` (default `127.0.0.1:8080`;
//! port `0` picks a free one), then `curl -v localhost:8080/ localhost:8080/hello/you` or
//! `wrk -c100 -d5s http://127.0.0.1:8080/`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use goro::net::{TcpListener, TcpStream};

const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Bytes asked for per read.
const READ_CHUNK: usize = 4096;
/// Largest request head (request line + headers) accepted; more gets 431.
const MAX_HEAD: usize = 8 * 1024;
/// Most header fields accepted in one request; more gets 431.
const MAX_HEADERS: usize = 32;

/// `8080` means `127.0.0.1:8080`; anything else must be a full socket address.
fn parse_addr(arg: Option<&str>) -> Result<SocketAddr, String> {
    let arg = arg.unwrap_or(DEFAULT_ADDR);
    if let Ok(port) = arg.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    arg.parse()
        .map_err(|e| format!("bad address {arg:?} ({e}); want PORT or IP:PORT"))
}

/// What the server learnt from one complete, well-formed request head.
struct Request {
    /// Bytes of the head (request line and headers, with the blank line).
    head_len: usize,
    /// Body bytes that follow the head and must be skipped.
    body_len: u64,
    /// The connection ends after this response.
    close: bool,
    /// HEAD: send the headers only.
    head_only: bool,
    /// HTTP/1.0 client that asked to keep the connection (it needs the header back).
    keep_alive_1_0: bool,
    status: u16,
    body: String,
}

/// A request that cannot be answered normally; the connection closes after the response.
struct Reject {
    status: u16,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

/// Does a comma-separated header value contain `token` (case-insensitive)?
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Parse one request head at the start of `buf`: `Ok(None)` if it is not complete yet.
fn parse(buf: &[u8]) -> Result<Option<Request>, Reject> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Reject { status: 431 }),
        Err(_) => return Err(Reject { status: 400 }),
    };
    let bad = Err(Reject { status: 400 });
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return bad;
    };
    let (mut conn_close, mut conn_keep_alive, mut has_host, mut expect_continue) =
        (false, false, false, false);
    let mut body_len: Option<u64> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            conn_close |= has_token(h.value, "close");
            conn_keep_alive |= has_token(h.value, "keep-alive");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = std::str::from_utf8(h.value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
            else {
                return bad;
            };
            // Two different lengths would let a proxy and this server disagree on framing.
            if body_len.is_some_and(|m| m != n) {
                return bad;
            }
            body_len = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Reject { status: 501 });
        } else if h.name.eq_ignore_ascii_case("host") {
            has_host = true;
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue |= has_token(h.value, "100-continue");
        }
    }
    // RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400.
    if version == 1 && !has_host {
        return bad;
    }
    let body_len = body_len.unwrap_or(0);
    let close = if version == 0 {
        !conn_keep_alive || conn_close
    } else {
        conn_close
    }
    // A client waiting for "100 Continue" may or may not send its body after a final
    // response; closing is the only way to keep the framing unambiguous.
    || (expect_continue && body_len > 0);
    let (status, body) = match (method, path) {
        ("GET" | "HEAD", "/") => (200, "hello world\n".to_string()),
        ("GET" | "HEAD", p) => match p.strip_prefix("/hello/") {
            Some(name) if !name.is_empty() && !name.contains('/') => {
                (200, format!("hello {name}\n"))
            }
            _ => (404, "not found\n".to_string()),
        },
        _ => (405, "method not allowed\n".to_string()),
    };
    Ok(Some(Request {
        head_len,
        body_len,
        close,
        head_only: method == "HEAD",
        keep_alive_1_0: version == 0 && !close,
        status,
        body,
    }))
}

/// The `Date` header's value (IMF-fixdate), recomputed at most once a second.
struct DateCache {
    secs: u64,
    text: String,
}

impl DateCache {
    fn new() -> DateCache {
        DateCache {
            secs: u64::MAX,
            text: String::new(),
        }
    }

    fn now(&mut self) -> &str {
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != self.secs {
            self.secs = secs;
            self.text = imf_fixdate(secs);
        }
        &self.text
    }
}

/// Format Unix time `secs` as `Sun, 06 Nov 1994 08:49:37 GMT`.
fn imf_fixdate(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01: Thu
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let tod = secs % 86_400;
    // Civil date from a day count, with years that start on 1 March (leap day last).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

/// Append a complete response to `out`.
fn respond(out: &mut Vec<u8>, date: &mut DateCache, req: &Request) {
    let connection = if req.close {
        "Connection: close\r\n"
    } else if req.keep_alive_1_0 {
        "Connection: keep-alive\r\n"
    } else {
        ""
    };
    let allow = if req.status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nServer: goro-http-hello\r\nDate: {}\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{connection}{allow}\r\n",
        req.status,
        reason(req.status),
        date.now(),
        req.body.len(),
    );
    if !req.head_only {
        out.extend_from_slice(req.body.as_bytes());
    }
}

/// Append the response to a request that could not be parsed.
fn reject(out: &mut Vec<u8>, date: &mut DateCache, status: u16) {
    let req = Request {
        head_len: 0,
        body_len: 0,
        close: true,
        head_only: false,
        keep_alive_1_0: false,
        status,
        body: format!("{}\n", reason(status).to_ascii_lowercase()),
    };
    respond(out, date, &req);
}

/// Close after the last response has been sent: shut down our side, then read (and drop)
/// what the client still sends for a short while. Closing a socket that has unread input
/// makes the kernel reset the connection, and a reset can destroy the response before the
/// client has read it.
fn close_gracefully(mut conn: TcpStream) {
    let _ = conn.shutdown(Shutdown::Write);
    let until = Instant::now() + Duration::from_millis(500);
    let mut sink = [0u8; 1024];
    let mut drained = 0usize;
    while drained < 64 * 1024 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match conn.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// Serve one connection until the client closes it, asks to close, or sends garbage.
fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut date = DateCache::new();
    let mut inbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::new();
    // Body bytes of the last request still to be skipped.
    let mut skip: u64 = 0;
    loop {
        // Answer every complete request that is buffered.
        let mut start = 0;
        let mut close = false;
        loop {
            let skipped = skip.min((inbuf.len() - start) as u64);
            start += skipped as usize;
            skip -= skipped;
            if skip > 0 {
                break;
            }
            match parse(&inbuf[start..]) {
                Ok(Some(req)) => {
                    respond(&mut out, &mut date, &req);
                    start += req.head_len;
                    skip = req.body_len;
                    if req.close {
                        close = true;
                        break;
                    }
                }
                Ok(None) => {
                    if inbuf.len() - start > MAX_HEAD {
                        reject(&mut out, &mut date, 431);
                        close = true;
                    }
                    break;
                }
                Err(r) => {
                    reject(&mut out, &mut date, r.status);
                    close = true;
                    break;
                }
            }
        }
        inbuf.drain(..start);
        if !out.is_empty() {
            if conn.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        if close {
            close_gracefully(conn);
            return;
        }
        let len = inbuf.len();
        inbuf.resize(len + READ_CHUNK, 0);
        match conn.read(&mut inbuf[len..]) {
            Ok(0) => return, // the client closed (an unfinished request goes unanswered)
            Ok(n) => inbuf.truncate(len + n),
            Err(e) if e.kind() == ErrorKind::Interrupted => inbuf.truncate(len),
            Err(_) => return,
        }
    }
}

/// Accept forever. A failing `accept` (e.g. out of file descriptors) is reported and retried
/// after a growing pause, as Go's `net/http` does, instead of spinning.
fn accept_loop(listener: TcpListener) {
    let mut backoff = Duration::ZERO;
    loop {
        match listener.accept() {
            Ok((conn, _peer)) => {
                backoff = Duration::ZERO;
                goro::go!(move || serve(conn));
            }
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("http_hello: accept: {e}; retrying in {backoff:?}");
                goro::sleep(backoff);
            }
        }
    }
}

fn main() {
    let addr = match parse_addr(std::env::args().nth(1).as_deref()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("http_hello: {e}");
            std::process::exit(2);
        }
    };
    goro::run(move || {
        let listener = match TcpListener::bind(addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("http_hello: bind {addr}: {e}");
                std::process::exit(1);
            }
        };
        let local = listener
            .local_addr()
            .expect("a bound listener has an address");
        println!("listening on http://{local}/");
        let _ = std::io::stdout().flush();
        accept_loop(listener);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn imf_fixdate_matches_known_dates() {
        assert_eq!(super::imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            super::imf_fixdate(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        // 2000-02-29 (a leap day in a century year divisible by 400).
        assert_eq!(
            super::imf_fixdate(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
    }
}
