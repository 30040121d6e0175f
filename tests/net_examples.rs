//! Runs the network examples (`echo_server`, `http_hello`, `chat`) as child processes on
//! loopback and talks to them: with plain `std::net` clients written here, and for
//! `http_hello` with real clients nobody here wrote (`curl`, and `wrk` for a short load run).
//! A test that needs `curl` or `wrk` prints "skipped: ... not installed" and passes only when
//! the program is missing; any other failure to run it fails the test.
//!
//! Every server binds port 0 and prints its address; every socket has a read timeout and
//! every child a watchdog, so a hung server fails the test instead of hanging it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Barrier, Once};
use std::time::{Duration, Instant};

/// How long any single read in these tests may wait before the test fails.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Build every example once per test process; return the path of `name`.
fn example(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf(); // target/<profile>
    let target_dir = profile_dir.parent().unwrap().to_path_buf();
    BUILD.call_once(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--examples", "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir);
        match profile_dir.file_name().and_then(|s| s.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
            None => {}
        }
        if cfg!(feature = "corosensei") {
            cmd.args(["--features", "corosensei"]);
        }
        let status = cmd.status().expect("run cargo build --examples");
        assert!(status.success(), "building the examples failed");
    });
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} not found", path.display());
    path
}

/// A running example server; killed when dropped (also if the test panics).
struct Server {
    child: Child,
    addr: SocketAddr,
    /// The lines it printed after its `listening on` line.
    stdout: mpsc::Receiver<String>,
    /// Dropping this stops the watchdog.
    _watchdog: mpsc::Sender<()>,
}

impl Server {
    /// Start `name` on an ephemeral loopback port with `extra` arguments; wait for its address.
    fn start(name: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(example(name))
            .arg("127.0.0.1:0")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let watchdog = watchdog(child.id(), Duration::from_secs(180));
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .map(|a| a.trim_start_matches("http://").trim_end_matches('/'))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name}: unexpected first line {first:?}"));
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Server {
            child,
            addr,
            stdout,
            _watchdog: watchdog,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server must still be running (a crash would otherwise pass unnoticed).
    fn assert_alive(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the server exited"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kill `pid` if the test is still running after `limit` (a hung child must not hang CI).
fn watchdog(pid: u32, limit: Duration) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    tx
}

/// Raise this process's soft descriptor limit to the hard one (children inherit it).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to / read from the valid, initialised `lim` only.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), different for every seed.
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Run `program args`; `None` (after printing why) if `program` is not installed.
fn run_tool(program: &str, args: &[String]) -> Option<std::process::Output> {
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            println!("skipped: {program} not installed");
            None
        }
        Err(e) => panic!("running {program}: {e}"),
    }
}

// ---------------------------------------------------------------------------------------
// echo_server

#[test]
fn echo_server_returns_every_byte_on_many_connections() {
    const CONNS: u64 = 64;
    const BYTES: usize = 256 * 1024;
    let mut server = Server::start("echo_server", &[]);
    let streams: Vec<TcpStream> = (0..CONNS).map(|_| server.connect()).collect();
    let threads: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, stream)| {
            std::thread::spawn(move || {
                let data = pseudo_random(i as u64 + 1, BYTES);
                let mut w = stream.try_clone().unwrap();
                let sent = data.clone();
                // Write in uneven pieces from one thread while another reads back.
                let writer = std::thread::spawn(move || {
                    let mut off = 0;
                    let mut step = 1 + i;
                    while off < sent.len() {
                        let end = (off + step).min(sent.len());
                        w.write_all(&sent[off..end]).unwrap();
                        off = end;
                        step = (step * 7 + 13) % 9000 + 1;
                    }
                    w.shutdown(Shutdown::Write).unwrap();
                });
                let mut back = Vec::with_capacity(BYTES);
                let mut r = stream;
                r.read_to_end(&mut back).unwrap();
                writer.join().unwrap();
                assert_eq!(back.len(), data.len(), "connection {i}: length");
                assert!(back == data, "connection {i}: bytes differ");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    server.assert_alive();
}

#[test]
fn echo_server_answers_each_message_in_turn() {
    // Round trips: every message must come back before the next is sent, so the server
    // echoes what each read returned and does not wait for a full buffer.
    let mut server = Server::start("echo_server", &[]);
    let threads: Vec<_> = (0..16u64)
        .map(|i| {
            let mut s = server.connect();
            std::thread::spawn(move || {
                s.set_nodelay(true).unwrap();
                for round in 0..200u64 {
                    let len = (1 + (i * 31 + round * 17) % 4096) as usize;
                    let msg = pseudo_random(i * 1000 + round + 7, len);
                    s.write_all(&msg).unwrap();
                    let mut back = vec![0; len];
                    s.read_exact(&mut back).unwrap();
                    assert!(back == msg, "conn {i} round {round}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    server.assert_alive();
}

#[test]
fn echo_server_rejects_a_bad_address_argument() {
    let out = Command::new(example("echo_server"))
        .arg("not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad address"), "{err}");
}

// ---------------------------------------------------------------------------------------
// http_hello with hand-written requests

/// One parsed HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(|s| s.as_str())
    }
}

/// Reads responses off one connection.
struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl HttpConn {
    fn new(stream: TcpStream) -> HttpConn {
        HttpConn {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Read more; false on end-of-file.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).expect("read from http_hello");
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next response; `head_only` for a HEAD request (no body despite Content-Length).
    fn response(&mut self, head_only: bool) -> Response {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(n) = resp.parse(&self.buf).expect("valid response") {
                let status = resp.code.unwrap();
                let headers: HashMap<String, String> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8(h.value.to_vec()).unwrap(),
                        )
                    })
                    .collect();
                let len: usize = headers["content-length"].parse().unwrap();
                let len = if head_only { 0 } else { len };
                while self.buf.len() < n + len {
                    assert!(self.fill(), "connection closed inside a body");
                }
                let body = self.buf[n..n + len].to_vec();
                self.buf.drain(..n + len);
                return Response {
                    status,
                    headers,
                    body,
                };
            }
            assert!(self.fill(), "connection closed before a complete response");
        }
    }

    /// The server closed the connection and sent nothing more.
    fn assert_closed(&mut self) {
        assert!(!self.fill(), "expected end of stream");
        assert!(self.buf.is_empty(), "unexpected bytes {:?}", self.buf);
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

#[test]
fn http_hello_answers_pipelined_requests_in_order() {
    let mut server = Server::start("http_hello", &[]);
    let mut c = HttpConn::new(server.connect());
    let paths = ["/", "/hello/ann", "/missing", "/hello/bob", "/"];
    // All in one write: the server reads them as one chunk and must answer each, in order.
    let batch: String = paths.iter().map(|p| get(p)).collect();
    c.send(batch.as_bytes());
    for p in paths {
        let r = c.response(false);
        let (status, body) = match p {
            "/" => (200, "hello world\n".to_string()),
            "/missing" => (404, "not found\n".to_string()),
            _ => (200, format!("hello {}\n", &p[7..])),
        };
        assert_eq!((r.status, &r.body), (status, &body.into_bytes()), "{p}");
        assert_eq!(r.header("connection"), None, "keep-alive is the default");
        let date = r.header("date").unwrap();
        assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    }
    // Many more, in a batch larger than one read.
    let many: String = (0..500).map(|i| get(&format!("/hello/n{i}"))).collect();
    c.send(many.as_bytes());
    for i in 0..500 {
        let r = c.response(false);
        assert_eq!(r.body, format!("hello n{i}\n").into_bytes());
    }
    server.assert_alive();
}

#[test]
fn http_hello_handles_requests_split_into_pieces() {
    let mut server = Server::start("http_hello", &[]);
    let mut c = HttpConn::new(server.connect());
    c.stream.set_nodelay(true).unwrap();
    let req = get("/hello/split");
    for b in req.as_bytes() {
        c.send(std::slice::from_ref(b));
    }
    assert_eq!(c.response(false).body, b"hello split\n");
    // A request whose head and body arrive split at awkward places, then another request.
    let post = "POST /hello/x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789";
    let both = format!("{post}{}", get("/"));
    for piece in both.as_bytes().chunks(7) {
        c.send(piece);
    }
    let r = c.response(false);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(
        c.response(false).body,
        b"hello world\n",
        "the body was skipped"
    );
    server.assert_alive();
}

#[test]
fn http_hello_closes_when_asked_and_for_http_1_0() {
    let mut server = Server::start("http_hello", &[]);
    // Connection: close on HTTP/1.1.
    let mut c = HttpConn::new(server.connect());
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.response(false);
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    c.assert_closed();
    // HTTP/1.0: closes by default, even with a second request already sent.
    let mut c = HttpConn::new(server.connect());
    c.send(b"GET /hello/old HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.body, b"hello old\n");
    assert_eq!(r.header("connection"), Some("close"));
    c.assert_closed();
    // HTTP/1.0 with keep-alive stays open.
    let mut c = HttpConn::new(server.connect());
    for _ in 0..3 {
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.response(false);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert_eq!(r.body, b"hello world\n");
    }
    // HEAD sends no body; the next response follows right after the head.
    c.send(b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.response(true);
    assert_eq!((r.status, r.header("content-length")), (200, Some("12")));
    c.send(b"GET /hello/after-head HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.response(false).body, b"hello after-head\n");
    server.assert_alive();
}

#[test]
fn http_hello_rejects_malformed_requests_and_closes() {
    let mut server = Server::start("http_hello", &[]);
    let cases: [(&str, u16); 7] = [
        ("GARBAGE\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400), // no Host
        (
            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        ("GET / HTTP/9.9\r\nHost: t\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
    ];
    for (req, status) in cases {
        let mut c = HttpConn::new(server.connect());
        // A good request first: it is answered before the bad one closes the connection.
        c.send(format!("{}{req}", get("/")).as_bytes());
        assert_eq!(c.response(false).status, 200, "{req:?}");
        let r = c.response(false);
        assert_eq!(r.status, status, "{req:?}");
        assert_eq!(r.header("connection"), Some("close"), "{req:?}");
        c.assert_closed();
    }
    // An endless head: 431 once it passes the limit, then close. The filler is written from
    // another thread (a write may fail once the server has answered and closed).
    let mut c = HttpConn::new(server.connect());
    let mut w = c.stream.try_clone().unwrap();
    let filler = std::thread::spawn(move || {
        let line = "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let head = format!("GET / HTTP/1.1\r\nHost: t\r\n{}", line.repeat(200));
        let _ = w.write_all(head.as_bytes());
    });
    let r = c.response(false);
    filler.join().unwrap();
    assert_eq!(r.status, 431);
    server.assert_alive();
}

// ---------------------------------------------------------------------------------------
// http_hello with curl and wrk

#[test]
fn http_hello_serves_curl_keep_alive() {
    let mut server = Server::start("http_hello", &[]);
    let urls = ["/", "/hello/curl", "/nope", "/hello/again"];
    let mut args: Vec<String> = ["-sS", "--max-time", "20", "--http1.1"]
        .map(String::from)
        .to_vec();
    args.push("-w".into());
    args.push("|%{http_code} %{num_connects}\n".into());
    args.extend(urls.iter().map(|u| server.url(u)));
    let Some(out) = run_tool("curl", &args) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // One connection (num_connects 1 for the first URL, 0 after), bodies in order.
    assert_eq!(
        text,
        "hello world\n|200 1\nhello curl\n|200 0\nnot found\n|404 0\nhello again\n|200 0\n"
    );
    // Connection: close from the client: curl must open a new connection for each URL.
    let mut args: Vec<String> = ["-sS", "--max-time", "20", "-H", "Connection: close", "-w"]
        .map(String::from)
        .to_vec();
    args.push("|%{http_code} %{num_connects}\n".into());
    args.push(server.url("/"));
    args.push(server.url("/hello/closed"));
    let out = run_tool("curl", &args).expect("curl ran a moment ago");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello world\n|200 1\nhello closed\n|200 1\n"
    );
    // HTTP/1.0 and HEAD.
    let args: Vec<String> = ["-sS", "--max-time", "20", "--http1.0", "-I"]
        .map(String::from)
        .into_iter()
        .chain([server.url("/")])
        .collect();
    let out = run_tool("curl", &args).expect("curl ran a moment ago");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Content-Length: 12\r\n"), "{text}");
    server.assert_alive();
}

#[test]
fn http_hello_survives_wrk() {
    let mut server = Server::start("http_hello", &[]);
    let args: Vec<String> = ["-t2", "-c50", "-d1s", "--timeout", "5s"]
        .map(String::from)
        .into_iter()
        .chain([server.url("/")])
        .collect();
    let Some(out) = run_tool("wrk", &args) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let requests: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in\n{text}"));
    assert!(requests > 0, "{text}");
    // wrk prints these lines only when something went wrong.
    assert!(!text.contains("Socket errors"), "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    server.assert_alive();
    // And the server still answers normally afterwards.
    let mut c = HttpConn::new(server.connect());
    c.send(get("/").as_bytes());
    assert_eq!(c.response(false).body, b"hello world\n");
}

// ---------------------------------------------------------------------------------------
// chat

/// Reads chat lines with a timeout; panics on a closed or stalled connection.
fn read_line(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) => None,
        Ok(_) => {
            assert!(line.ends_with('\n'), "partial line {line:?}");
            line.pop();
            Some(line)
        }
        Err(e) => panic!("chat read: {e}"),
    }
}

/// What one chat client received.
#[derive(Default)]
struct Received {
    /// Message texts per sender, in arrival order.
    by_sender: HashMap<String, Vec<String>>,
    messages: usize,
    left: Vec<String>,
}

impl Received {
    /// Record one line; returns false for anything that is not a chat line.
    fn add(&mut self, line: String) {
        if let Some(who) = line.strip_prefix("* ") {
            if let Some(who) = who.strip_suffix(" left") {
                self.left.push(who.to_string());
            } else {
                assert!(who.ends_with(" joined"), "unexpected notice {line:?}");
            }
            return;
        }
        let (who, text) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("not a chat line: {line:?}"));
        self.by_sender
            .entry(who.to_string())
            .or_default()
            .push(text.to_string());
        self.messages += 1;
    }
}

fn chat_text(sender: usize, j: usize) -> String {
    format!("line {j} from client {sender}")
}

#[test]
fn chat_delivers_every_line_once_in_order_to_every_other_client() {
    const SENDERS: usize = 300;
    const LINES: usize = 10;
    raise_fd_limit();
    let mut server = Server::start("chat", &["--tick-ms", "50"]);

    // Connect every client (the observer last) and wait for its greeting: once greeted it is
    // in the hub's client set, so it will receive every line sent after this loop.
    let mut clients = Vec::new();
    for _ in 0..=SENDERS {
        let s = server.connect();
        let me = s.local_addr().unwrap().to_string();
        let mut r = BufReader::new(s);
        // Earlier clients may already see this one's join notice; its own greeting comes first.
        assert_eq!(read_line(&mut r), Some(format!("* you are {me}")));
        clients.push((me, r));
    }
    let observer = clients.pop().unwrap();
    let senders: Vec<String> = clients.iter().map(|(me, _)| me.clone()).collect();
    let expected =
        |sender: usize| -> Vec<String> { (0..LINES).map(|j| chat_text(sender, j)).collect() };

    let start = Arc::new(Barrier::new(SENDERS));
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(k, (me, mut r))| {
            let start = start.clone();
            let senders = senders.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    start.wait();
                    let mut w = r.get_ref().try_clone().unwrap();
                    for j in 0..LINES {
                        w.write_all(format!("{}\n", chat_text(k, j)).as_bytes())
                            .unwrap();
                    }
                    let mut got = Received::default();
                    while got.messages < (SENDERS - 1) * LINES {
                        let line = read_line(&mut r).expect("connection closed early");
                        got.add(line);
                    }
                    assert!(
                        !got.by_sender.contains_key(&me),
                        "{me} got its own lines back"
                    );
                    for (i, who) in senders.iter().enumerate() {
                        if i != k {
                            assert_eq!(got.by_sender[who], expected(i), "at {me} from {who}");
                        }
                    }
                    // Leave by closing (the reader and writer halves both go).
                })
                .unwrap()
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    // The observer sent nothing; it sees every sender's lines and every sender leave.
    let (_me, mut r) = observer;
    let mut got = Received::default();
    while got.messages < SENDERS * LINES || got.left.len() < SENDERS {
        got.add(read_line(&mut r).expect("observer closed early"));
    }
    // Half-close: the server sees end-of-file, the hub drops this client, and its writer
    // shuts the connection down; nothing more may arrive before that end.
    r.get_ref().shutdown(Shutdown::Write).unwrap();
    while let Some(line) = read_line(&mut r) {
        got.add(line);
    }
    assert_eq!(got.messages, SENDERS * LINES);
    for (i, who) in senders.iter().enumerate() {
        assert_eq!(
            got.by_sender[who],
            expected(i),
            "at the observer from {who}"
        );
    }
    let mut left = got.left.clone();
    left.sort();
    let mut want = senders.clone();
    want.sort();
    assert_eq!(left, want, "each sender's leave is announced exactly once");

    // The hub's ticker reports the empty room and the exact number of lines it relayed.
    let want = format!("hub: 0 clients, {} messages relayed", SENDERS * LINES);
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match server.stdout.recv_timeout(left) {
            Ok(line) if line == want => break,
            Ok(line) => assert!(line.starts_with("hub: "), "unexpected output {line:?}"),
            Err(e) => panic!("no {want:?} from the hub's ticker: {e}"),
        }
    }
    server.assert_alive();
}

#[test]
fn chat_disconnects_a_client_that_stops_reading() {
    let mut server = Server::start("chat", &["--max-backlog", "1000"]);
    let greet = |s: TcpStream| {
        let me = s.local_addr().unwrap().to_string();
        let mut r = BufReader::new(s);
        assert_eq!(read_line(&mut r), Some(format!("* you are {me}")));
        (me, r)
    };
    let (stuck, mut stuck_r) = greet(server.connect());
    let (_talker, mut talker_r) = greet(server.connect());
    let (_listener, mut listener_r) = greet(server.connect());
    // The stuck client never reads while the talker sends 16 MB: more than its backlog (1,000
    // lines, 4 MB) and the socket buffers (a few MB; a receiver that never reads keeps its
    // window small) can hold. The listener reads all the time, so it stays far below it.
    // The talker stays at most AHEAD lines ahead of what the listener has read (one credit
    // per line read): on a loaded machine the listener's thread can stall long enough for its
    // own queue to pass the backlog, and then it, not the stuck client, would be dropped.
    const AHEAD: usize = 256;
    let long = "x".repeat(4000);
    let mut w = talker_r.get_ref().try_clone().unwrap();
    let lines = 4000;
    let (credit_tx, credit_rx) = mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        for j in 0..lines {
            if j >= AHEAD {
                credit_rx.recv().expect("the listener stopped reading");
            }
            w.write_all(format!("{j} {long}\n").as_bytes()).unwrap();
        }
    });
    // The listener reads everything: every line, and the stuck client's forced departure.
    let mut got = 0;
    let mut saw_kick = false;
    while got < lines || !saw_kick {
        let line = read_line(&mut listener_r).unwrap_or_else(|| {
            panic!("listener closed early after {got} lines, kick seen: {saw_kick}")
        });
        if line == format!("* {stuck} left (too slow)") {
            saw_kick = true;
        } else if let Some((_, text)) = line.split_once(": ") {
            assert_eq!(text.split_once(' ').unwrap().0, got.to_string());
            got += 1;
            let _ = credit_tx.send(()); // the writer may be done and gone
        } else {
            eprintln!("listener: {line}");
        }
    }
    writer.join().unwrap();
    // The stuck client finds its connection closed once it drains what was sent before.
    let mut sink = Vec::new();
    stuck_r.read_to_end(&mut sink).unwrap();
    // The talker saw the same notice.
    loop {
        let line = read_line(&mut talker_r).expect("talker closed early");
        if line == format!("* {stuck} left (too slow)") {
            break;
        }
    }
    server.assert_alive();
}
