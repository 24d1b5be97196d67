//! Traps on purpose (an out-of-bounds index panics; `panic = "abort"` makes that an
//! `unreachable` trap), so tests see how Moat reports a trap.

fn main() {
    println!("trap: about to fail");
    let v: Vec<u32> = std::hint::black_box(Vec::new());
    let i = std::hint::black_box(3usize);
    println!("{}", v[i]);
}
