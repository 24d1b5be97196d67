//! The smallest useful workload: prints a line and exits 0. Used for start-up timing and for
//! checking the workload's exit status. Args: `[EXIT_CODE]`.

fn main() {
    println!("hello from a Keep");
    if let Some(code) = std::env::args().nth(1) {
        std::process::exit(code.parse().expect("EXIT_CODE is a number"));
    }
}
