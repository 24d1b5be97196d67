//! `moat scan`: search another process's memory for words, as an attacker with root on the host
//! can. This is the attack that only confidential-computing hardware (SEV-SNP, TDX) stops: on the
//! `nil` platform a Keep is an ordinary process, and its secrets (Cryptle's words) are readable
//! from `/proc/PID/mem`. Used by the demo and by the test that proves the point.
//!
//! Reads `/proc/PID/maps`, then each readable private region through `/proc/PID/mem` in chunks
//! (overlapping by the longest word, so no hit is lost at a chunk edge). Read-only file-backed
//! regions (program text, shared-library data) are skipped unless `--all-regions`: they hold
//! what is on disk anyway, not what the process learned while running.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::exit::ExitWith;

/// Exit status: no word was found (like grep).
const NOTHING_FOUND: u8 = 1;
/// Exit status: the scan could not run (no such process, no permission, bad words file).
const SCAN_FAILED: u8 = 2;

const CHUNK: usize = 1 << 20;
/// Hits listed per word (all are counted).
const DEFAULT_MAX_HITS: usize = 16;

/// Search another process's memory for words (the attack only SEV-SNP and TDX stop).
///
/// Needs root (or CAP_SYS_PTRACE and a permissive /proc/sys/kernel/yama/ptrace_scope). Each word
/// is searched as written and in lower and upper case. Exit status: 0 if some word was found,
/// 1 if none was, 2 if the scan could not run.
#[derive(clap::Args)]
pub struct ScanArgs {
    /// Process to read.
    #[arg(long, env = "MOAT_SCAN_PID")]
    pid: u32,
    /// File with one word per line (blank lines and lines starting with '#' are skipped).
    #[arg(long, env = "MOAT_SCAN_WORDS")]
    words: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Also scan read-only file-backed regions (program text and library data).
    #[arg(long)]
    all_regions: bool,
    /// Hits listed per word; all are counted.
    #[arg(long, default_value_t = DEFAULT_MAX_HITS)]
    max_hits: usize,
}

#[derive(Debug)]
struct Region {
    start: u64,
    end: u64,
    perms: String,
    path: String,
}

impl Region {
    fn label(&self) -> String {
        let name = if self.path.is_empty() {
            "[anon]"
        } else {
            &self.path
        };
        format!("{:x}-{:x} {} {}", self.start, self.end, self.perms, name)
    }
}

#[derive(Serialize)]
struct Hit {
    region: String,
    address: String,
    offset: u64,
}

#[derive(Serialize)]
struct WordReport {
    word: String,
    found: bool,
    total_hits: usize,
    hits: Vec<Hit>,
}

#[derive(Serialize)]
struct Report {
    pid: u32,
    regions_scanned: usize,
    regions_unreadable: usize,
    bytes_scanned: u64,
    words: Vec<WordReport>,
}

pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let report = scan(&args).context(ExitWith(SCAN_FAILED))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "scanned {} regions ({:.1} MiB) of pid {}{}",
            report.regions_scanned,
            report.bytes_scanned as f64 / (1024.0 * 1024.0),
            report.pid,
            if report.regions_unreadable > 0 {
                format!(", {} regions unreadable", report.regions_unreadable)
            } else {
                String::new()
            }
        );
        for w in &report.words {
            if w.found {
                println!("FOUND   {}  ({} hits)", w.word, w.total_hits);
                for h in &w.hits {
                    println!("        {} in {} (+{:#x})", h.address, h.region, h.offset);
                }
            } else {
                println!("absent  {}", w.word);
            }
        }
    }
    Ok(if report.words.iter().any(|w| w.found) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOTHING_FOUND)
    })
}

fn read_words(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the words file {}", path.display()))?;
    let words: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if words.is_empty() {
        bail!("{} holds no words", path.display());
    }
    if let Some(long) = words.iter().find(|w| w.len() > 256) {
        bail!(
            "word too long to search for ({} bytes): {:.20}...",
            long.len(),
            long
        );
    }
    Ok(words)
}

fn open_process(pid: u32) -> anyhow::Result<(String, File)> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if pid == 0 || !proc_dir.exists() {
        bail!("no process with pid {pid}");
    }
    let denied = |what: &str| {
        format!(
            "permission denied reading {what} of pid {pid}: run as root (or with CAP_SYS_PTRACE) \
             and check /proc/sys/kernel/yama/ptrace_scope"
        )
    };
    let maps = match std::fs::read_to_string(proc_dir.join("maps")) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => bail!(denied("the memory map")),
        Err(e) if e.kind() == ErrorKind::NotFound => bail!("no process with pid {pid}"),
        Err(e) => return Err(e).context(format!("cannot read /proc/{pid}/maps")),
    };
    let mem = match File::open(proc_dir.join("mem")) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => bail!(denied("the memory")),
        Err(e) if e.kind() == ErrorKind::NotFound => bail!("no process with pid {pid}"),
        Err(e) => return Err(e).context(format!("cannot open /proc/{pid}/mem")),
    };
    Ok((maps, mem))
}

fn parse_maps(maps: &str, all_regions: bool) -> Vec<Region> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?.to_owned();
            let (_offset, _dev, _inode) = (fields.next()?, fields.next()?, fields.next()?);
            let path = fields.collect::<Vec<_>>().join(" ");
            let (start, end) = range.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            let end = u64::from_str_radix(end, 16).ok()?;
            Some(Region {
                start,
                end,
                perms,
                path,
            })
        })
        .filter(|r| {
            let p = r.perms.as_bytes();
            let readable = p.first() == Some(&b'r');
            let private = p.get(3) == Some(&b'p');
            let writable = p.get(1) == Some(&b'w');
            // Kernel-provided pages: unreadable through mem, or nothing of the process's own.
            let special = matches!(
                r.path.as_str(),
                "[vvar]" | "[vvar_vclock]" | "[vsyscall]" | "[vdso]"
            );
            let file_backed = r.path.starts_with('/');
            readable && private && !special && (all_regions || writable || !file_backed)
        })
        .collect()
}

fn scan(args: &ScanArgs) -> anyhow::Result<Report> {
    let words = read_words(&args.words)?;
    // Each word as written, in lower and in upper case; hits of all forms count for the word.
    let forms: Vec<Vec<Vec<u8>>> = words
        .iter()
        .map(|w| {
            let mut f = vec![w.as_bytes().to_vec()];
            for v in [w.to_lowercase(), w.to_uppercase()] {
                if !f.contains(&v.as_bytes().to_vec()) {
                    f.push(v.into_bytes());
                }
            }
            f
        })
        .collect();
    let finders: Vec<Vec<memchr::memmem::Finder>> = forms
        .iter()
        .map(|fs| fs.iter().map(memchr::memmem::Finder::new).collect())
        .collect();
    let overlap = forms.iter().flatten().map(Vec::len).max().unwrap_or(1) - 1;

    let (maps, mem) = open_process(args.pid)?;
    let regions = parse_maps(&maps, args.all_regions);
    let mut reports: Vec<WordReport> = words
        .iter()
        .map(|w| WordReport {
            word: w.clone(),
            found: false,
            total_hits: 0,
            hits: Vec::new(),
        })
        .collect();
    let (mut scanned, mut unreadable, mut bytes) = (0usize, 0usize, 0u64);
    let mut buf = vec![0u8; CHUNK + overlap];
    for region in &regions {
        let mut pos = region.start;
        let mut carried = 0usize; // bytes kept from the previous chunk at buf[..carried]
        let mut readable = true;
        while pos < region.end {
            let want = ((region.end - pos) as usize).min(CHUNK);
            let n = match mem.read_at(&mut buf[carried..carried + want], pos) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e)
                    if e.kind() == ErrorKind::PermissionDenied
                        && scanned == 0
                        && unreadable == 0 =>
                {
                    bail!(
                        "permission denied reading the memory of pid {}: run as root (or with \
                         CAP_SYS_PTRACE) and check /proc/sys/kernel/yama/ptrace_scope",
                        args.pid
                    );
                }
                Err(_) => {
                    readable = false;
                    break;
                }
            };
            let window = &buf[..carried + n];
            let window_start = pos - carried as u64;
            for (report, word_finders) in reports.iter_mut().zip(&finders) {
                for finder in word_finders {
                    for at in finder.find_iter(window) {
                        // A hit wholly inside the carried bytes was counted with the last chunk.
                        if at + finder.needle().len() <= carried {
                            continue;
                        }
                        let address = window_start + at as u64;
                        report.found = true;
                        report.total_hits += 1;
                        if report.hits.len() < args.max_hits {
                            report.hits.push(Hit {
                                region: region.label(),
                                address: format!("{address:#x}"),
                                offset: address - region.start,
                            });
                        }
                    }
                }
            }
            bytes += n as u64;
            pos += n as u64;
            let keep = overlap.min(carried + n);
            buf.copy_within(carried + n - keep..carried + n, 0);
            carried = keep;
        }
        if readable {
            scanned += 1;
        } else {
            unreadable += 1;
        }
    }
    Ok(Report {
        pid: args.pid,
        regions_scanned: scanned,
        regions_unreadable: unreadable,
        bytes_scanned: bytes,
        words: reports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_are_filtered_to_private_readable_memory() {
        let maps = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 123 /usr/bin/moat
55d0c0001000-55d0c0002000 rw-p 00001000 08:01 123 /usr/bin/moat
55d0c1000000-55d0c1100000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000100000 rw-s 00000000 00:01 9 /dev/shm/x
7f0000200000-7f0000300000 ---p 00000000 00:00 0
7f0000300000-7f0000400000 rw-p 00000000 00:00 0
7ffd00000000-7ffd00001000 r--p 00000000 00:00 0 [vvar]
garbage line
";
        let labels: Vec<String> = parse_maps(maps, false).iter().map(Region::label).collect();
        assert_eq!(
            labels,
            [
                "55d0c0001000-55d0c0002000 rw-p /usr/bin/moat",
                "55d0c1000000-55d0c1100000 rw-p [heap]",
                "7f0000300000-7f0000400000 rw-p [anon]",
            ]
        );
        assert_eq!(parse_maps(maps, true).len(), 4);
    }
}
