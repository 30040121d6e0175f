//! A line-based TCP chat server in Go's style (the broadcaster of "The Go Programming
//! Language", §8.10, plus a ticker):
//!
//! - one **hub** coroutine owns the set of clients; it `select!`s over the `join`, `leave` and
//!   `messages` channels and a `time::Ticker` (which prints a status line), so no lock guards
//!   the client set;
//! - per client, a **reader** coroutine turns each line the client sends into a message for
//!   the hub, and a **writer** coroutine writes whatever the hub queues for that client;
//! - a client leaves by closing its connection: the reader sees end-of-file and tells the
//!   hub, the hub closes the client's queue, and the writer shuts the socket down.
//!
//! Every line a client sends reaches every *other* client once, as `ADDR: text`, in the order
//! it was sent; joins and leaves are announced as `* ADDR joined` / `* ADDR left`; a new client
//! is first greeted with `* you are ADDR`. A client whose queue backs up past `--max-backlog`
//! lines (it stopped reading) is disconnected rather than slowing everyone down.
//!
//! Run: `cargo run --release --example chat [PORT | ADDR] [--tick-ms N] [--max-backlog N]`
//! (default `127.0.0.1:7008`, status every 10 s, backlog 10,000 lines), then `nc 127.0.0.1
//! 7008` in two terminals.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use goro::chan::{self, select, Receiver, Sender};
use goro::net::{TcpListener, TcpStream};
use goro::time::Ticker;

/// Longest line accepted from a client; a longer one ends its connection.
const MAX_LINE: usize = 4096;
/// The most a writer sends in one `write` when lines have queued up.
const WRITE_BATCH: usize = 64 * 1024;

/// One line of output, shared by every client it is sent to.
type Line = Arc<str>;

struct Config {
    addr: SocketAddr,
    tick: Duration,
    max_backlog: usize,
}

fn usage(why: &str) -> ! {
    eprintln!("chat: {why}");
    eprintln!("usage: chat [PORT | IP:PORT] [--tick-ms N] [--max-backlog N]");
    std::process::exit(2)
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Config {
    let mut cfg = Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 7008)),
        tick: Duration::from_secs(10),
        max_backlog: 10_000,
    };
    let number = |flag: &str, v: Option<String>| -> u64 {
        match v.as_deref().map(str::parse::<u64>) {
            Some(Ok(n)) if n > 0 => n,
            _ => usage(&format!("{flag} needs a positive number")),
        }
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tick-ms" => cfg.tick = Duration::from_millis(number(&a, args.next())),
            "--max-backlog" => {
                cfg.max_backlog = usize::try_from(number(&a, args.next())).unwrap_or(usize::MAX)
            }
            _ => {
                cfg.addr = match (a.parse::<u16>(), a.parse::<SocketAddr>()) {
                    (Ok(port), _) => SocketAddr::from(([127, 0, 0, 1], port)),
                    (_, Ok(addr)) => addr,
                    _ => usage(&format!("bad address {a:?}")),
                }
            }
        }
    }
    cfg
}

/// A client announces itself to the hub with the queue its writer drains.
struct Join {
    id: u64,
    who: Line,
    out: Sender<Line>,
}

/// A line from client `from`, already formatted for the others.
struct Message {
    from: u64,
    line: Line,
}

/// The hub's side of the channels.
struct HubChannels {
    join: Receiver<Join>,
    leave: Receiver<u64>,
    messages: Receiver<Message>,
}

/// A client as the hub knows it.
struct Client {
    who: Line,
    out: Sender<Line>,
}

/// The hub's state; only the hub coroutine touches it.
struct Hub {
    clients: HashMap<u64, Client>,
    relayed: u64,
    max_backlog: usize,
}

impl Hub {
    /// Queue `line` for every client except `except`. A client whose queue is full is
    /// dropped (its writer then closes the connection) and its departure announced.
    fn broadcast(&mut self, except: Option<u64>, line: Line) {
        let mut pending = vec![(except, line)];
        while let Some((except, line)) = pending.pop() {
            let mut slow = Vec::new();
            for (&id, c) in &self.clients {
                if Some(id) == except {
                    continue;
                }
                if c.out.len() >= self.max_backlog {
                    slow.push(id);
                } else {
                    // Err only if the writer is already gone; its reader will report the leave.
                    let _ = c.out.send(line.clone());
                }
            }
            for id in slow {
                if let Some(c) = self.clients.remove(&id) {
                    c.out.close();
                    pending.push((None, format!("* {} left (too slow)\n", c.who).into()));
                }
            }
        }
    }

    fn join(&mut self, j: Join) {
        let _ = j.out.send(format!("* you are {}\n", j.who).into());
        self.broadcast(None, format!("* {} joined\n", j.who).into());
        self.clients.insert(
            j.id,
            Client {
                who: j.who,
                out: j.out,
            },
        );
    }

    fn leave(&mut self, id: u64) {
        // Unknown ids are clients already dropped as too slow.
        if let Some(c) = self.clients.remove(&id) {
            c.out.close();
            self.broadcast(None, format!("* {} left\n", c.who).into());
        }
    }
}

/// The hub coroutine: the only owner of the client set.
fn hub(ch: HubChannels, tick: Duration, max_backlog: usize) {
    let ticker = Ticker::new(tick);
    let mut hub = Hub {
        clients: HashMap::new(),
        relayed: 0,
        max_backlog,
    };
    loop {
        select! {
            recv(ch.join) -> j => match j {
                Ok(j) => hub.join(j),
                Err(_) => return,
            },
            recv(ch.leave) -> id => match id {
                Ok(id) => hub.leave(id),
                Err(_) => return,
            },
            recv(ch.messages) -> m => match m {
                Ok(m) => {
                    hub.relayed += 1;
                    // While readers on other workers keep `messages` full, the hub never
                    // parks; goro's cooperative budget (its channel operations spend it) still
                    // makes it yield to the writers pinned to its worker now and then.
                    hub.broadcast(Some(m.from), m.line);
                }
                Err(_) => return,
            },
            recv(ticker.receiver()) -> _ => {
                println!("hub: {} clients, {} messages relayed", hub.clients.len(), hub.relayed);
            }
        }
    }
}

/// Write what the hub queues for one client until the hub closes the queue or the
/// connection fails; then shut the socket down, which also ends a reader still parked on it.
fn writer(mut conn: TcpStream, out: Receiver<Line>) {
    let mut buf = Vec::with_capacity(1024);
    for line in &out {
        buf.clear();
        buf.extend_from_slice(line.as_bytes());
        while buf.len() < WRITE_BATCH {
            match out.try_recv() {
                Ok(l) => buf.extend_from_slice(l.as_bytes()),
                Err(_) => break,
            }
        }
        if conn.write_all(&buf).is_err() {
            break;
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
}

/// Turn each line client `id` sends into a message for the hub, until it closes.
fn read_lines(conn: &TcpStream, id: u64, who: &str, messages: &Sender<Message>) {
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE {
            eprintln!("chat: {who} sent a line over {MAX_LINE} bytes; disconnecting");
            return;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            continue;
        }
        let line = format!("{who}: {}\n", String::from_utf8_lossy(text)).into();
        if messages.send(Message { from: id, line }).is_err() {
            return;
        }
    }
}

/// Handles one connection: starts its writer, joins the hub, reads until the client leaves.
fn client(conn: TcpStream, id: u64, join: Sender<Join>, leave: Sender<u64>, msgs: Sender<Message>) {
    let who: Line = match conn.peer_addr() {
        Ok(a) => a.to_string().into(),
        Err(_) => return, // already gone
    };
    let write_half = match conn.try_clone() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chat: {who}: {e}");
            return;
        }
    };
    let (out_tx, out_rx) = chan::unbounded();
    goro::go!(move || writer(write_half, out_rx));
    let joined = join.send(Join {
        id,
        who: who.clone(),
        out: out_tx,
    });
    if joined.is_ok() {
        read_lines(&conn, id, &who, &msgs);
        let _ = leave.send(id);
    }
}

fn main() {
    let cfg = parse_args(std::env::args().skip(1));
    goro::run(move || {
        let listener = match TcpListener::bind(cfg.addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("chat: bind {}: {e}", cfg.addr);
                std::process::exit(1);
            }
        };
        let local = listener
            .local_addr()
            .expect("a bound listener has an address");
        println!("listening on {local}");
        let _ = std::io::stdout().flush();

        let (join_tx, join) = chan::bounded(64);
        let (leave_tx, leave) = chan::bounded(64);
        let (msg_tx, messages) = chan::bounded(1024);
        let channels = HubChannels {
            join,
            leave,
            messages,
        };
        goro::go!(move || hub(channels, cfg.tick, cfg.max_backlog));

        let mut backoff = Duration::ZERO;
        for id in 0u64.. {
            match listener.accept() {
                Ok((conn, _)) => {
                    backoff = Duration::ZERO;
                    let (j, l, m) = (join_tx.clone(), leave_tx.clone(), msg_tx.clone());
                    goro::go!(move || client(conn, id, j, l, m));
                }
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                    eprintln!("chat: accept: {e}; retrying in {backoff:?}");
                    goro::sleep(backoff);
                }
            }
        }
    });
}
