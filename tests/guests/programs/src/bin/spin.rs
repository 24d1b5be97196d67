//! Hostile: loops forever without making a single host call. Only an interruption the host
//! imposes (a wall-clock or CPU budget) stops it.

fn main() {
    println!("spin: starting");
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
