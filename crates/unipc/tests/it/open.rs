//! `unipc::open`: every endpoint kind, written as a string, opened in two
//! processes: the parent listens and accepts, the peer connects and sends.

use std::io::{Read, Write};
use std::time::Duration;

use unipc::message::{Messenger, Wait};
use unipc::open::{CreateOptions, Handle, OpenOptions};
use unipc::Endpoint;

use crate::util;

const TEST: &str = "open::every_endpoint_kind_opens_from_a_string_in_two_processes";
const WAIT: Duration = Duration::from_secs(10);

fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

/// Removes a named object on drop.
struct Made(Endpoint);

impl Drop for Made {
    fn drop(&mut self) {
        let _ = unipc::open::remove(&self.0);
    }
}

#[test]
fn every_endpoint_kind_opens_from_a_string_in_two_processes() {
    if let Some(role) = util::role() {
        assert_eq!(role, "sender");
        let endpoint: Endpoint = util::arg("endpoint").parse().unwrap();
        let text = format!("hello through {endpoint}");
        match OpenOptions::new()
            .timeout(WAIT)
            .stall_timeout(WAIT)
            .connect(&endpoint)
            .unwrap()
        {
            Handle::Stream(mut stream) => {
                stream.write_all(text.as_bytes()).unwrap();
                // Returns once the receiver has read it all and closed.
                stream.finish().unwrap();
            }
            Handle::Messages(messages) => messages.send(text.as_bytes()).unwrap(),
            other => panic!("{other:?}"),
        }
        return;
    }
    let dir = util::TempDir::new();
    // Started first, so it is stopped after the streams made on it go.
    #[cfg(feature = "nats")]
    let nats_server = unipc_test_support::NatsServer::start();
    let at = |name: &str| dir.join(name).display().to_string();
    let mut endpoints = vec![
        format!("fifo:{}", at("f")),
        format!("unix:{}", at("s")),
        format!("unix:@{}", util::unique("open")),
        format!("unix-seqpacket:{}", at("p")),
        format!("tcp:127.0.0.1:{}", free_port(false)),
        format!("posix-mq:/{}", util::unique("open")),
        format!("ring:/{}", util::unique("open")),
        format!("pubsub:/{}", util::unique("open")),
        format!(
            "sysv-mq:{:#x}",
            0x6f00_0000 | (std::process::id() & 0xff_ffff)
        ),
        format!("unix-dgram:{}", at("d")),
        format!("udp:127.0.0.1:{}", free_port(true)),
    ];
    #[cfg(feature = "nats")]
    if let Some(server) = &nats_server {
        endpoints.push(format!(
            "{}/{}",
            server.url(),
            util::unique("open").replace('-', "_")
        ));
    }
    let mut made = Vec::new();
    for text in &endpoints {
        let endpoint: Endpoint = text.parse().unwrap();
        if matches!(
            endpoint,
            Endpoint::Fifo(_)
                | Endpoint::PosixMq(_)
                | Endpoint::SysvMq(_)
                | Endpoint::Ring(_)
                | Endpoint::PubSub(_)
                | Endpoint::Nats(_)
        ) {
            let mut options = CreateOptions::new();
            if matches!(
                endpoint,
                Endpoint::PosixMq(_) | Endpoint::Ring(_) | Endpoint::PubSub(_)
            ) {
                options = options.max_messages(2).max_size(128);
            }
            options.create(&endpoint).unwrap();
            made.push(Made(endpoint));
        }
    }
    // A private System V queue, reached by the id its creation reports.
    let private = CreateOptions::new()
        .create(&"sysv-mq:private".parse().unwrap())
        .unwrap();
    endpoints.push(private.endpoint.to_string());
    made.push(Made(private.endpoint.clone()));

    // Every scheme of the grammar is among them, but shared memory's,
    // which is read and written in place and refuses to send or receive.
    for scheme in unipc::endpoint::SCHEMES {
        // A semaphore set carries no data: refused too, pointing to semop.
        if *scheme == "sysv-sem" {
            let endpoint: Endpoint = "sysv-sem:0x7fff0002".parse().unwrap();
            for result in [
                OpenOptions::new().connect(&endpoint).map(drop),
                OpenOptions::new().listen(&endpoint).map(drop),
            ] {
                let err = result.unwrap_err();
                assert!(matches!(err, unipc::Error::Unsupported { .. }), "{err}");
                assert!(err.to_string().contains("unipc semop"), "{err}");
            }
            continue;
        }
        if matches!(*scheme, "shm" | "sysv-shm") {
            let text = match *scheme {
                "shm" => "shm:/unipc-test-never-made",
                _ => "sysv-shm:0x7fff0001",
            };
            let endpoint: Endpoint = text.parse().unwrap();
            for result in [
                OpenOptions::new().connect(&endpoint).map(drop),
                OpenOptions::new().listen(&endpoint).map(drop),
            ] {
                let err = result.unwrap_err();
                assert!(matches!(err, unipc::Error::Unsupported { .. }), "{err}");
                assert!(
                    err.to_string().contains("unipc read / unipc write"),
                    "{err}"
                );
            }
            continue;
        }
        // A semaphore carries a count, not data: it refuses too.
        if *scheme == "sem" {
            let endpoint: Endpoint = "sem:/unipc-test-never-made".parse().unwrap();
            for result in [
                OpenOptions::new().connect(&endpoint).map(drop),
                OpenOptions::new().listen(&endpoint).map(drop),
            ] {
                let err = result.unwrap_err();
                assert!(matches!(err, unipc::Error::Unsupported { .. }), "{err}");
                assert!(err.to_string().contains("unipc sem post"), "{err}");
            }
            continue;
        }
        // NATS needs its server (skipped without one) and the feature.
        if *scheme == "nats" && !endpoints.iter().any(|e| e.starts_with("nats:")) {
            #[cfg(not(feature = "nats"))]
            {
                let endpoint: Endpoint = "nats://127.0.0.1:1/x".parse().unwrap();
                let err = OpenOptions::new().connect(&endpoint).unwrap_err();
                assert!(err.to_string().contains("`nats` feature"), "{err}");
            }
            continue;
        }
        assert!(
            endpoints
                .iter()
                .any(|e| e.starts_with(&format!("{scheme}:"))),
            "{scheme} is not tested"
        );
    }

    for text in &endpoints {
        let endpoint: Endpoint = text.parse().unwrap();
        let listener = OpenOptions::new().timeout(WAIT).listen(&endpoint).unwrap();
        let sender = util::Peer::new(TEST, "sender")
            .arg("endpoint", text)
            .spawn();
        let want = format!("hello through {endpoint}");
        match listener.accept().unwrap() {
            Handle::Stream(mut stream) => {
                let mut got = String::new();
                stream.read_to_string(&mut got).unwrap();
                assert_eq!(got, want);
            }
            Handle::Messages(messages) => {
                let (got, _) = messages.recv_vec(Wait::For(WAIT)).unwrap();
                assert_eq!(got, want.as_bytes(), "{text}");
            }
            other => panic!("{other:?}"),
        }
        sender.wait_success();
    }
}
