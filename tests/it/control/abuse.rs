//! Abusive clients disturb nobody; idle connections beyond their budget make room.

use super::*;

#[test]
fn abusive_clients_disturb_nobody() {
    // Its descriptors are counted: no event follower of the harness's.
    let w = Warden::start_unobserved(
        r#"
[processes.web]
command = "warden-demo-worker chatter 20"
"#,
    );
    wait_status(&w, "running", |s| running(s, "web"));
    let socket = socket_of(&w);
    let baseline = open_fds(w.pid());

    // Connects and says nothing.
    let mut silent = UnixStream::connect(&socket).unwrap();
    // Sends garbage: an error, then the connection closes.
    let mut garbage = UnixStream::connect(&socket).unwrap();
    garbage.write_all(b"{{{\n").unwrap();
    let mut answer = String::new();
    garbage.set_read_timeout(Some(PATIENCE)).unwrap();
    garbage.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("{\"ok\":false,\"error\":\"a request is one JSON object"),
        "{answer}"
    );
    assert_eq!(answer.lines().count(), 1, "{answer}");
    // Speaks another protocol version.
    let mut future = UnixStream::connect(&socket).unwrap();
    future.write_all(b"{\"v\":2,\"cmd\":\"status\"}\n").unwrap();
    let mut answer = String::new();
    future.read_to_string(&mut answer).unwrap();
    assert!(
        answer.contains("protocol version 2 is not supported"),
        "{answer}"
    );
    // Half closes after its request (`socat`, `nc -N`): still answered.
    let mut half = UnixStream::connect(&socket).unwrap();
    half.write_all(b"{\"v\":1,\"cmd\":\"hello\"}\n").unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    half.read_to_string(&mut answer).unwrap();
    let hello: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(hello["ok"], true, "{answer}");
    assert_eq!(hello["version"], 1);
    assert_eq!(hello["pid"], w.pid());
    // Sends 100 MB without a newline: refused long before the end.
    let flood_socket = socket.clone();
    let flood = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&flood_socket).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0usize;
        while sent < 100 << 20 {
            match s.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break, // EPIPE / ECONNRESET once the server has closed
            }
        }
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        (sent, answer)
    });
    // Follows logs, then vanishes mid-stream.
    let mut follower = UnixStream::connect(&socket).unwrap();
    follower
        .write_all(b"{\"v\":1,\"cmd\":\"logs\",\"names\":[\"web\"],\"follow\":true,\"lines\":0}\n")
        .unwrap();
    let mut r = BufReader::new(follower.try_clone().unwrap());
    let mut line = String::new();
    for _ in 0..3 {
        line.clear();
        r.read_line(&mut line).unwrap();
    }
    assert!(line.contains("\"line\""), "{line}");
    drop(r);
    drop(follower);

    // Meanwhile, 50 clients at once are all answered.
    let clients: Vec<Child> = (0..50)
        .map(|_| client(w.dir.path(), &["status", "--json"]).spawn().unwrap())
        .collect();
    for c in clients {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(running(&s, "web"));
    }

    let (sent, answer) = flood.join().unwrap();
    assert!(sent < 100 << 20, "the server read the whole 100 MB");
    assert!(
        answer.is_empty() || answer.contains("request longer than 65536 bytes"),
        "{answer}"
    );

    // The silent one is dropped after the idle timeout, with a reason.
    silent.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = String::new();
    silent.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("no request within"), "{answer}");

    // Everything is released: the supervisor's fds come back to where they were.
    let deadline = Instant::now() + PATIENCE;
    while open_fds(w.pid()) > baseline {
        assert!(
            Instant::now() < deadline,
            "fds: {} now, {baseline} before",
            open_fds(w.pid())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(running(&status(&w), "web"));
    assert!(!w.stderr().contains("panicked"), "{}", w.stderr());
}

#[test]
fn idle_connections_beyond_their_budget_make_room_for_new_ones() {
    let w = Warden::start(SLEEPERS);
    wait_status(&w, "running", |s| running(s, "web"));
    let socket = socket_of(&w);
    let held: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    // Each new idle connection closed the longest-waiting one once 64 were waiting: 236
    // are told why and closed, 64 wait on.
    for s in &held {
        s.set_nonblocking(true).unwrap();
    }
    let mut answers = vec![String::new(); held.len()];
    let deadline = Instant::now() + PATIENCE;
    loop {
        for (mut s, answer) in held.iter().zip(answers.iter_mut()) {
            let _ = s.read_to_string(answer);
        }
        let closed = answers
            .iter()
            .filter(|a| a.contains("closed to make room"))
            .count();
        if closed == 300 - 64 {
            break;
        }
        assert!(Instant::now() < deadline, "{closed} closed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A client still gets in and is answered, at once (its connection closes the oldest
    // idle one).
    assert!(running(&status(&w), "web"));
    drop(held);
}
