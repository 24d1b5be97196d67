//! Hostile: accepts every connection and never closes or reads any of them, so open connections
//! pile up until a per-listener limit stops them. Prints `flood: holding <n>` after each accept.
//! Args: `[SOCKET_NAME]`.

fn main() {
    let listener = moat_test_guests::listener(moat_test_guests::server_fd());
    println!("flood: listening");
    let mut held = Vec::new();
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                held.push(conn);
                println!("flood: holding {}", held.len());
            }
            Err(e) => {
                println!("flood: accept error: {e}");
                // An error is what a limit looks like from inside; keep trying, as a hostile
                // workload would.
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}
