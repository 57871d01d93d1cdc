//! The round trip of a message through NATS JetStream beside a POSIX
//! queue, between two processes: the figure `unipc bench` does not carry
//! yet (it needs a raw baseline, and NATS has no system call to compare
//! with).
//!
//! ```sh
//! cargo run --release -p unipc --features nats --example nats_round_trip -- nats://127.0.0.1:4222 [ROUNDS]
//! ```
//!
//! The parent sends on one stream (or queue) and the peer, this program
//! re-executed, answers on another; each send returns after the server's
//! acknowledgement and each receive acknowledges after the copy, as
//! `Messenger` does. Prints p50, p99 and the rate for 64 B and 4 KiB.

#[cfg(feature = "nats")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::time::Instant;
    use unipc::message::nats::{Nats, NatsOptions};
    use unipc::message::posix_mq::QueueOptions;
    use unipc::message::{Messenger, Wait};
    use unipc::Endpoint;

    let args: Vec<String> = std::env::args().collect();
    let server = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let rounds: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(2000);
    let address = |subject: &str| -> Result<unipc::endpoint::NatsAddress, unipc::Error> {
        match format!("{server}/{subject}").parse::<Endpoint>()? {
            Endpoint::Nats(a) => Ok(a),
            _ => unreachable!(),
        }
    };
    let pid = std::env::var("UNIPC_RT_PARENT").ok();
    let tag = pid
        .clone()
        .unwrap_or_else(|| std::process::id().to_string());
    let (ping, pong) = (format!("rt_ping_{tag}"), format!("rt_pong_{tag}"));
    let (qping, qpong) = (format!("/rt-ping-{tag}"), format!("/rt-pong-{tag}"));

    if pid.is_some() {
        // The peer: echo everything on both facilities until told to stop.
        let rx = Nats::open(&address(&ping)?)?;
        let tx = Nats::open(&address(&pong)?)?;
        let qrx = QueueOptions::new().open(&qping.parse()?)?;
        let qtx = QueueOptions::new().open(&qpong.parse()?)?;
        for (rx, tx) in [(&rx as &dyn Messenger, &tx as &dyn Messenger), (&qrx, &qtx)] {
            loop {
                let (m, _) = rx.recv_vec(Wait::Forever)?;
                if m == b"stop" {
                    break;
                }
                tx.send(&m)?;
            }
        }
        return Ok(());
    }

    let created = [
        NatsOptions::new().create(&address(&ping)?)?,
        NatsOptions::new().create(&address(&pong)?)?,
    ];
    let queues = [
        QueueOptions::new()
            .max_messages(10)
            .max_message_size(4096)
            .create(&qping.parse()?)?,
        QueueOptions::new()
            .max_messages(10)
            .max_message_size(4096)
            .create(&qpong.parse()?)?,
    ];
    let mut peer = std::process::Command::new(std::env::current_exe()?)
        .args(&args[1..])
        .env("UNIPC_RT_PARENT", &tag)
        .spawn()?;
    let measure = |tx: &dyn Messenger,
                   rx: &dyn Messenger,
                   name: &str|
     -> Result<(), unipc::Error> {
        for size in [64usize, 4096] {
            let message = vec![7u8; size];
            let mut times = Vec::with_capacity(rounds);
            let started = Instant::now();
            for _ in 0..rounds {
                let t = Instant::now();
                tx.send(&message)?;
                let _ = rx.recv_vec(Wait::Forever)?;
                times.push(t.elapsed());
            }
            let total = started.elapsed();
            times.sort_unstable();
            println!(
                "{name:10} {size:5} B  round trip p50 {:>8.1} us  p99 {:>8.1} us  {:>7.0} round trips/s",
                times[rounds / 2].as_secs_f64() * 1e6,
                times[rounds * 99 / 100].as_secs_f64() * 1e6,
                rounds as f64 / total.as_secs_f64()
            );
        }
        tx.send(b"stop")
    };
    measure(&created[0], &created[1], "nats")?;
    measure(&queues[0], &queues[1], "posix-mq")?;
    peer.wait()?;
    for stream in &created {
        stream.remove()?;
    }
    Ok(())
}

#[cfg(not(feature = "nats"))]
fn main() {
    eprintln!("build with --features nats");
}
