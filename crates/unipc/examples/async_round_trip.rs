//! Round-trip latency of the async interfaces against the blocking ones,
//! between two processes: this program re-executes itself as a blocking
//! echo peer, and the parent's side alone changes from mode to mode.
//!
//! ```sh
//! cargo run --release -p unipc --example async_round_trip -- [ROUND_TRIPS] [SIZE]
//! ```
//!
//! For each facility the modes run in turns (five turns, each of
//! ROUND_TRIPS round trips of SIZE bytes after a warm-up), and the table
//! gives each mode's median time per round trip and its ratio to the first
//! (blocking) mode:
//!
//! - `unix-dgram`: unipc blocking; unipc `FdMessenger` on a current-thread
//!   runtime (in `block_on`) and on a multi-thread one (a spawned task);
//!   tokio's own `UnixDatagram` on both;
//! - `unix-stream`: the same four async modes against unipc's blocking
//!   stream (`AsyncStream`, tokio's `UnixStream`);
//! - `posix-mq`: unipc blocking; `FdMessenger` on both runtimes;
//! - `sysv-mq`: unipc blocking; `Bridge` on both runtimes (its helper
//!   thread's cost);
//! - `ring`: the same, over two `ring:` channels.
//!
//! Figures, never assertions: nothing here is a test.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use std::io::{Read, Write};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use unipc::asynch::{AsyncMessenger, AsyncStream, Bridge, FdMessenger};
use unipc::message::dgram::UnixDatagram;
use unipc::message::posix_mq as pmq;
use unipc::message::ring;
use unipc::message::sysv_mq as smq;
use unipc::message::{Messenger, Wait};
use unipc::name::{PosixName, SysvKey, UnixAddr};
use unipc::stream::unix;

const TURNS: usize = 5;
const QUIT: &[u8] = b"quit";

type Error = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, Error>;

/// Runs `future` on `rt`: on a current-thread runtime in `block_on`, on a
/// multi-thread one as a spawned task (on a worker, which also drives the
/// reactor: how a task runs there in a real program).
fn run_on<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    future: impl std::future::Future<Output = Res<T>> + Send + 'static,
) -> Res<T> {
    match rt.handle().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => rt.block_on(future),
        _ => rt.block_on(rt.spawn(future))?,
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--peer") {
        return peer(&args[2..]);
    }
    let round_trips: usize = args.get(1).map_or(Ok(20_000), |s| s.parse())?;
    let size: usize = args.get(2).map_or(Ok(64), |s| s.parse())?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{round_trips} round trips of {size} B per turn, {TURNS} turns; load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let bench = Bench {
        round_trips,
        message: vec![0x5a; size],
        current,
        multi,
    };
    bench.unix_stream()?;
    bench.unix_dgram()?;
    bench.posix_mq()?;
    bench.sysv_mq()?;
    bench.ring()?;
    Ok(())
}

struct Bench {
    round_trips: usize,
    message: Vec<u8>,
    current: tokio::runtime::Runtime,
    multi: tokio::runtime::Runtime,
}

/// Times `turn` (which makes `n` round trips) TURNS times per mode, modes
/// interleaved, and prints the medians.
fn report(
    facility: &str,
    modes: &[&str],
    mut turn: impl FnMut(usize, usize) -> Res<Duration>,
    n: usize,
) -> Res<()> {
    // Warm-up: every mode once, a tenth of the count.
    for mode in 0..modes.len() {
        turn(mode, n / 10)?;
    }
    let mut times = vec![Vec::new(); modes.len()];
    for _ in 0..TURNS {
        for (mode, times) in times.iter_mut().enumerate() {
            times.push(turn(mode, n)?.as_nanos() as f64 / n as f64);
        }
    }
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect();
    println!("\n{facility}");
    for (mode, median) in modes.iter().zip(&medians) {
        println!(
            "  {mode:<34} {:>8.2} µs  x{:.2}",
            median / 1000.0,
            median / medians[0]
        );
    }
    Ok(())
}

fn spawn_peer(args: &[&str]) -> Res<Child> {
    Ok(Command::new(std::env::current_exe()?)
        .arg("--peer")
        .args(args)
        .spawn()?)
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Bench {
    fn unix_stream(&self) -> Res<()> {
        let dir = TempDir(
            std::env::temp_dir().join(format!("unipc-bench-async-{}-s", std::process::id())),
        );
        std::fs::create_dir(&dir.0)?;
        let addr = UnixAddr::path(dir.0.join("listener"))?;
        let listener = unix::Listener::bind(&addr)?;
        let mut peer = spawn_peer(&["unix-stream", path_str(&dir.0)?])?;
        let mut slot = Some(listener.accept_timeout(Duration::from_secs(10))?);
        drop(listener);
        let size = self.message.len();
        let modes = [
            "unipc blocking",
            "unipc AsyncStream, current-thread",
            "unipc AsyncStream, multi-thread",
            "tokio UnixStream, current-thread",
            "tokio UnixStream, multi-thread",
        ];
        let message = &self.message;
        report(
            "unix-stream (connected, SIZE bytes each way)",
            &modes,
            |mode, n| {
                let mut stream = slot.take().expect("stream");
                let mut buf = vec![0u8; size];
                let (stream, took) = match mode {
                    0 => {
                        let started = Instant::now();
                        for _ in 0..n {
                            stream.write_all(message)?;
                            stream.read_exact(&mut buf)?;
                        }
                        (stream, started.elapsed())
                    }
                    1 | 2 => {
                        let rt = if mode == 1 {
                            &self.current
                        } else {
                            &self.multi
                        };
                        let message = message.clone();
                        run_on(rt, async move {
                            let mut stream = AsyncStream::new(stream)?;
                            let started = Instant::now();
                            for _ in 0..n {
                                stream.write_all(&message).await?;
                                stream.read_exact(&mut buf).await?;
                            }
                            let took = started.elapsed();
                            Ok::<_, Error>((stream.into_inner()?, took))
                        })?
                    }
                    _ => {
                        let rt = if mode == 3 {
                            &self.current
                        } else {
                            &self.multi
                        };
                        let message = message.clone();
                        run_on(rt, async move {
                            let fd: OwnedFd = stream.into();
                            let std_stream = std::os::unix::net::UnixStream::from(fd);
                            std_stream.set_nonblocking(true)?;
                            let mut stream = tokio::net::UnixStream::from_std(std_stream)?;
                            let started = Instant::now();
                            for _ in 0..n {
                                stream.write_all(&message).await?;
                                stream.read_exact(&mut buf).await?;
                            }
                            let took = started.elapsed();
                            let std_stream = stream.into_std()?;
                            std_stream.set_nonblocking(false)?;
                            let fd: OwnedFd = std_stream.into();
                            Ok::<_, Error>((unix::Stream::try_from(fd)?, took))
                        })?
                    }
                };
                slot = Some(stream);
                Ok(took)
            },
            self.round_trips,
        )?;
        // The end of the stream tells the peer to stop.
        drop(slot);
        peer.wait()?;
        Ok(())
    }

    fn unix_dgram(&self) -> Res<()> {
        let dir =
            TempDir(std::env::temp_dir().join(format!("unipc-bench-async-{}", std::process::id())));
        std::fs::create_dir(&dir.0)?;
        let ours = UnixAddr::path(dir.0.join("parent"))?;
        let mut socket = UnixDatagram::bind(&ours)?;
        let theirs = dir.0.join("peer");
        let mut peer = spawn_peer(&["unix-dgram", path_str(&dir.0)?])?;
        // The peer binds, connects to us and says hello.
        // Sized to the socket's hint, so unipc receives in one call (a
        // smaller buffer costs it a peek first).
        let mut buf = vec![0u8; socket.recv_buffer_hint()?];
        socket.recv_from(&mut buf, Wait::For(Duration::from_secs(10)))?;
        socket.connect(&UnixAddr::path(&theirs)?)?;
        let mut slot = Some(socket);
        let modes = [
            "unipc blocking",
            "unipc FdMessenger, current-thread",
            "unipc FdMessenger, multi-thread",
            "tokio UnixDatagram, current-thread",
            "tokio UnixDatagram, multi-thread",
        ];
        let message = &self.message;
        report(
            "unix-dgram (socket files, connected)",
            &modes,
            |mode, n| {
                let socket = slot.take().expect("socket");
                let (socket, took) = match mode {
                    0 => {
                        let started = Instant::now();
                        for _ in 0..n {
                            socket.send(message)?;
                            socket.recv_into(&mut buf, Wait::Forever)?;
                        }
                        (socket, started.elapsed())
                    }
                    1 | 2 => {
                        let rt = if mode == 1 {
                            &self.current
                        } else {
                            &self.multi
                        };
                        let (message, mut buf) = (message.clone(), vec![0u8; buf.len()]);
                        run_on(rt, async move {
                            let message = &message;
                            let socket = FdMessenger::new(socket)?;
                            let started = Instant::now();
                            for _ in 0..n {
                                AsyncMessenger::send(&socket, message).await?;
                                AsyncMessenger::recv_into(&socket, &mut buf).await?;
                            }
                            let took = started.elapsed();
                            Ok::<_, Error>((socket.into_inner()?, took))
                        })?
                    }
                    _ => {
                        let rt = if mode == 3 {
                            &self.current
                        } else {
                            &self.multi
                        };
                        let (message, mut buf) = (message.clone(), vec![0u8; buf.len()]);
                        run_on(rt, async move {
                            let message = &message;
                            let fd: OwnedFd = socket.into();
                            let std_socket = std::os::unix::net::UnixDatagram::from(fd);
                            std_socket.set_nonblocking(true)?;
                            let socket = tokio::net::UnixDatagram::from_std(std_socket)?;
                            let started = Instant::now();
                            for _ in 0..n {
                                socket.send(message).await?;
                                socket.recv(&mut buf).await?;
                            }
                            let took = started.elapsed();
                            let std_socket = socket.into_std()?;
                            std_socket.set_nonblocking(false)?;
                            let fd: OwnedFd = std_socket.into();
                            Ok::<_, Error>((UnixDatagram::try_from(fd)?, took))
                        })?
                    }
                };
                slot = Some(socket);
                Ok(took)
            },
            self.round_trips,
        )?;
        slot.take().expect("socket").send(QUIT)?;
        peer.wait()?;
        Ok(())
    }

    fn posix_mq(&self) -> Res<()> {
        let names: Vec<PosixName> = ["to", "from"]
            .iter()
            .map(|side| format!("/unipc-bench-async-{}-{side}", std::process::id()).parse())
            .collect::<Result<_, _>>()?;
        let options = pmq::QueueOptions::new()
            .max_messages(8)
            .max_message_size(self.message.len().max(QUIT.len()))
            .exclusive(true);
        let mut to_peer = Some(options.create(&names[0])?);
        let mut from_peer = Some(options.create(&names[1])?);
        let mut peer = spawn_peer(&["posix-mq", names[0].as_str(), names[1].as_str()])?;
        let mut buf = vec![0u8; self.message.len().max(QUIT.len())];
        let message = &self.message;
        let modes = [
            "unipc blocking",
            "unipc FdMessenger, current-thread",
            "unipc FdMessenger, multi-thread",
        ];
        report(
            "posix-mq (two queues)",
            &modes,
            |mode, n| {
                let (tx, rx) = (
                    to_peer.take().expect("queue"),
                    from_peer.take().expect("queue"),
                );
                let (tx, rx, took) = if mode == 0 {
                    let started = Instant::now();
                    for _ in 0..n {
                        tx.send(message)?;
                        rx.recv_into(&mut buf, Wait::Forever)?;
                    }
                    (tx, rx, started.elapsed())
                } else {
                    let rt = if mode == 1 {
                        &self.current
                    } else {
                        &self.multi
                    };
                    let (message, mut buf) = (message.clone(), vec![0u8; buf.len()]);
                    run_on(rt, async move {
                        let message = &message;
                        let (tx, rx) = (FdMessenger::new(tx)?, FdMessenger::new(rx)?);
                        let started = Instant::now();
                        for _ in 0..n {
                            AsyncMessenger::send(&tx, message).await?;
                            AsyncMessenger::recv_into(&rx, &mut buf).await?;
                        }
                        let took = started.elapsed();
                        Ok::<_, Error>((tx.into_inner()?, rx.into_inner()?, took))
                    })?
                };
                to_peer = Some(tx);
                from_peer = Some(rx);
                Ok(took)
            },
            self.round_trips,
        )?;
        to_peer.take().expect("queue").send(QUIT)?;
        peer.wait()?;
        Ok(())
    }

    fn sysv_mq(&self) -> Res<()> {
        let to_peer = smq::QueueOptions::new().create(SysvKey::Private)?;
        let from_peer = smq::QueueOptions::new().create(SysvKey::Private)?;
        let ids = [to_peer.id().to_string(), from_peer.id().to_string()];
        let mut peer = spawn_peer(&["sysv-mq", &ids[0], &ids[1]])?;
        let mut slots = Some((
            smq::Queue::open_id(to_peer.id())?,
            smq::Queue::open_id(from_peer.id())?,
        ));
        let mut buf = vec![0u8; 8192];
        let message = &self.message;
        let modes = [
            "unipc blocking",
            "unipc Bridge, current-thread",
            "unipc Bridge, multi-thread",
        ];
        report(
            "sysv-mq (two queues)",
            &modes,
            |mode, n| {
                let (tx, rx) = slots.take().expect("queues");
                let (tx, rx, took) = if mode == 0 {
                    let started = Instant::now();
                    for _ in 0..n {
                        tx.send(message)?;
                        rx.recv_into(&mut buf, Wait::Forever)?;
                    }
                    (tx, rx, started.elapsed())
                } else {
                    let rt = if mode == 1 {
                        &self.current
                    } else {
                        &self.multi
                    };
                    let (message, mut buf) = (message.clone(), vec![0u8; buf.len()]);
                    run_on(rt, async move {
                        let message = &message;
                        let (tx, rx) = (Bridge::new(tx)?, Bridge::new(rx)?);
                        let started = Instant::now();
                        for _ in 0..n {
                            AsyncMessenger::send(&tx, message).await?;
                            AsyncMessenger::recv_into(&rx, &mut buf).await?;
                        }
                        let took = started.elapsed();
                        Ok::<_, Error>((tx.into_inner().0, rx.into_inner().0, took))
                    })?
                };
                slots = Some((tx, rx));
                Ok(took)
            },
            self.round_trips,
        )?;
        slots.take().expect("queues").0.send(QUIT)?;
        peer.wait()?;
        drop((to_peer, from_peer));
        Ok(())
    }
}

impl Bench {
    fn ring(&self) -> Res<()> {
        let names: Vec<PosixName> = ["to", "from"]
            .iter()
            .map(|side| format!("/unipc-bench-async-{}-ring-{side}", std::process::id()).parse())
            .collect::<Result<_, _>>()?;
        let options = ring::RingOptions::new()
            .capacity(8)
            .max_size(self.message.len().max(QUIT.len()))
            .exclusive(true);
        let to_peer = options.create(&names[0])?;
        let from_peer = options.create(&names[1])?;
        let mut peer = spawn_peer(&["ring", names[0].as_str(), names[1].as_str()])?;
        let mut slots = Some((
            ring::Ring::open(&names[0])?.into_sender()?,
            ring::Ring::open(&names[1])?.into_receiver()?,
        ));
        let mut buf = vec![0u8; self.message.len().max(QUIT.len())];
        let message = &self.message;
        let modes = [
            "unipc blocking (default wait)",
            "unipc Bridge, current-thread",
            "unipc Bridge, multi-thread",
        ];
        report(
            "ring (two rings, peer blocking with the default wait)",
            &modes,
            |mode, n| {
                let (tx, rx) = slots.take().expect("rings");
                let (tx, rx, took) = if mode == 0 {
                    let started = Instant::now();
                    for _ in 0..n {
                        tx.send(message)?;
                        rx.recv_into(&mut buf, Wait::Forever)?;
                    }
                    (tx, rx, started.elapsed())
                } else {
                    let rt = if mode == 1 {
                        &self.current
                    } else {
                        &self.multi
                    };
                    let (message, mut buf) = (message.clone(), vec![0u8; buf.len()]);
                    run_on(rt, async move {
                        let message = &message;
                        let (tx, rx) = (Bridge::new(tx)?, Bridge::new(rx)?);
                        let started = Instant::now();
                        for _ in 0..n {
                            AsyncMessenger::send(&tx, message).await?;
                            AsyncMessenger::recv_into(&rx, &mut buf).await?;
                        }
                        let took = started.elapsed();
                        Ok::<_, Error>((tx.into_inner().0, rx.into_inner().0, took))
                    })?
                };
                slots = Some((tx, rx));
                Ok(took)
            },
            self.round_trips,
        )?;
        slots.take().expect("rings").0.send(QUIT)?;
        peer.wait()?;
        drop((to_peer, from_peer));
        Ok(())
    }
}

fn path_str(path: &Path) -> Res<&str> {
    path.to_str()
        .ok_or_else(|| "temporary directory is not UTF-8".into())
}

/// The blocking echo peer: answers every message until `quit`.
fn peer(args: &[String]) -> Res<()> {
    if args[0] == "unix-stream" {
        let addr = UnixAddr::path(Path::new(&args[1]).join("listener"))?;
        let mut stream = unix::Stream::connect(&addr)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            stream.write_all(&buf[..n])?;
        }
    }
    let (rx, tx): (Box<dyn Messenger>, Box<dyn Messenger>) = match args[0].as_str() {
        "unix-dgram" => {
            let dir = Path::new(&args[1]);
            let mut socket = UnixDatagram::bind(&UnixAddr::path(dir.join("peer"))?)?;
            socket.connect(&UnixAddr::path(dir.join("parent"))?)?;
            socket.send(b"hello")?;
            let fd: OwnedFd = socket.into();
            let copy = fd.try_clone()?;
            (
                Box::new(UnixDatagram::try_from(fd)?),
                Box::new(UnixDatagram::try_from(copy)?),
            )
        }
        "posix-mq" => (
            Box::new(pmq::Queue::open(&args[1].parse()?)?),
            Box::new(pmq::Queue::open(&args[2].parse()?)?),
        ),
        "sysv-mq" => (
            Box::new(smq::Queue::open_id(args[1].parse()?)?),
            Box::new(smq::Queue::open_id(args[2].parse()?)?),
        ),
        "ring" => (
            Box::new(ring::Ring::open(&args[1].parse()?)?.into_receiver()?),
            Box::new(ring::Ring::open(&args[2].parse()?)?.into_sender()?),
        ),
        other => return Err(format!("unknown facility {other}").into()),
    };
    let mut buf = vec![0u8; rx.recv_buffer_hint()?];
    loop {
        let got = rx.recv_into(&mut buf, Wait::Forever)?;
        if &buf[..got.len] == QUIT {
            return Ok(());
        }
        tx.send(&buf[..got.len])?;
    }
}
