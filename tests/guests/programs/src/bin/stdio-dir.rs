//! Arguments, environment, stdin/stdout and a pre-opened directory in one program.
//!
//! Args: `DIR`. Prints each argument (`arg[i]=...`) and every environment variable
//! (`env K=V`, sorted, so a test sees that nothing leaks in), then `stdin=<all of stdin>`; reads
//! `DIR/in.txt` and writes `DIR/out.txt` = `copied: <in.txt>`; lists `DIR` (`entry <name>`).
//! Exits with `$EXIT_CODE` when set.

use std::io::Read;

fn main() {
    for (i, arg) in std::env::args().enumerate() {
        println!("arg[{i}]={arg}");
    }
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.sort();
    for (k, v) in &env {
        println!("env {k}={v}");
    }
    let mut stdin = String::new();
    std::io::stdin()
        .read_to_string(&mut stdin)
        .expect("read stdin");
    println!("stdin={}", stdin.trim_end());

    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("DIR"));
    match std::fs::read_to_string(dir.join("in.txt")) {
        Ok(input) => {
            println!("in.txt={}", input.trim_end());
            match std::fs::write(dir.join("out.txt"), format!("copied: {input}")) {
                Ok(()) => println!("wrote out.txt"),
                Err(e) => println!("write out.txt: {e}"),
            }
        }
        Err(e) => println!("read in.txt: {e}"),
    }
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                println!("entry {name}");
            }
        }
        Err(e) => println!("read_dir: {e}"),
    }
    if let Ok(code) = std::env::var("EXIT_CODE") {
        std::process::exit(code.parse().expect("EXIT_CODE is a number"));
    }
}
