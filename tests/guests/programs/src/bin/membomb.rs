//! Hostile: allocates without bound, touching every page so nothing can be overcommitted away,
//! and reports its progress. Only a memory limit stops it (before the host runs out).

fn main() {
    println!("membomb: starting");
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let chunk = vec![0x5a_u8; 16 * 1024 * 1024];
        hoard.push(std::hint::black_box(chunk));
        println!("membomb: {} MiB", hoard.len() * 16);
    }
}
