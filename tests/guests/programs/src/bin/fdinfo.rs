//! Prints what a workload sees of its fd table, for the config tests: `argv`, `FD_COUNT`,
//! `FD_NAMES`, the WASI file type of each of the first `FD_COUNT` fds (`fd <n> <type>`), and
//! the pre-opened directories wasi-libc found (`preopen <fd> <path>`). Exits 0.

#[allow(unsafe_code)]
fn main() {
    println!("argv={}", std::env::args().collect::<Vec<_>>().join(" "));
    let count = std::env::var("FD_COUNT").unwrap_or_default();
    println!("FD_COUNT={count}");
    println!("FD_NAMES={}", std::env::var("FD_NAMES").unwrap_or_default());
    let count: u32 = count.parse().unwrap_or(0);
    for fd in 0..count {
        // SAFETY: fd_fdstat_get only reads the fd number and writes the returned struct.
        match unsafe { wasi::fd_fdstat_get(fd) } {
            Ok(stat) => println!("fd {fd} {}", stat.fs_filetype.name()),
            Err(e) => println!("fd {fd} error {}", e.name()),
        }
    }
    // The same scan wasi-libc does at start-up: every fd from 3 until EBADF.
    for fd in 3..64u32 {
        // SAFETY: fd_prestat_get only reads the fd number and writes the returned struct.
        let prestat = match unsafe { wasi::fd_prestat_get(fd) } {
            Ok(prestat) => prestat,
            Err(e) if e == wasi::ERRNO_BADF => break,
            Err(e) => {
                println!("prestat {fd} error {}", e.name());
                continue;
            }
        };
        if prestat.tag != wasi::PREOPENTYPE_DIR.raw() {
            println!("prestat {fd} not-a-dir");
            continue;
        }
        // SAFETY: the tag says DIR, so the union holds the directory variant.
        let len = unsafe { prestat.u.dir.pr_name_len };
        let mut name = vec![0u8; len];
        // SAFETY: `name` has exactly the length the host announced for this fd.
        match unsafe { wasi::fd_prestat_dir_name(fd, name.as_mut_ptr(), len) } {
            Ok(()) => println!("preopen {fd} {}", String::from_utf8_lossy(&name)),
            Err(e) => println!("prestat {fd} name error {}", e.name()),
        }
    }
}
