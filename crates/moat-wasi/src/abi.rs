//! Bounds-checked access to guest memory for Moat's own host functions.
//!
//! Every pointer and length a guest passes is untrusted: each accessor checks the range against
//! the memory it is given and answers `EFAULT` instead of panicking. Layouts (iovec, fdstat,
//! subscription, event, prestat) follow the `wasi_snapshot_preview1` witx.

use smallvec::SmallVec;

use crate::errno::Errno;

/// The largest number of iovecs accepted in one call (POSIX `IOV_MAX`); more is `EINVAL`.
pub const MAX_IOVECS: u32 = 1024;

/// The byte range `[ptr, ptr + len)` if it lies inside `mem`.
pub fn range(mem: &[u8], ptr: u32, len: u32) -> Result<std::ops::Range<usize>, Errno> {
    let start = ptr as usize;
    let end = start.checked_add(len as usize).ok_or(Errno::FAULT)?;
    if end > mem.len() {
        return Err(Errno::FAULT);
    }
    Ok(start..end)
}

pub fn read_bytes<const N: usize>(mem: &[u8], ptr: u32) -> Result<[u8; N], Errno> {
    let r = range(mem, ptr, N as u32)?;
    let mut out = [0u8; N];
    out.copy_from_slice(&mem[r]);
    Ok(out)
}

pub fn read_u16(mem: &[u8], ptr: u32) -> Result<u16, Errno> {
    read_bytes::<2>(mem, ptr).map(u16::from_le_bytes)
}

pub fn read_u32(mem: &[u8], ptr: u32) -> Result<u32, Errno> {
    read_bytes::<4>(mem, ptr).map(u32::from_le_bytes)
}

pub fn read_u64(mem: &[u8], ptr: u32) -> Result<u64, Errno> {
    read_bytes::<8>(mem, ptr).map(u64::from_le_bytes)
}

pub fn write_bytes(mem: &mut [u8], ptr: u32, bytes: &[u8]) -> Result<(), Errno> {
    let len = u32::try_from(bytes.len()).map_err(|_| Errno::OVERFLOW)?;
    let r = range(mem, ptr, len)?;
    mem[r].copy_from_slice(bytes);
    Ok(())
}

pub fn write_u16(mem: &mut [u8], ptr: u32, v: u16) -> Result<(), Errno> {
    write_bytes(mem, ptr, &v.to_le_bytes())
}

pub fn write_u32(mem: &mut [u8], ptr: u32, v: u32) -> Result<(), Errno> {
    write_bytes(mem, ptr, &v.to_le_bytes())
}

pub fn write_u64(mem: &mut [u8], ptr: u32, v: u64) -> Result<(), Errno> {
    write_bytes(mem, ptr, &v.to_le_bytes())
}

/// One guest buffer: `(ptr, len)`, already checked to lie inside memory.
#[derive(Debug, Clone, Copy)]
pub struct IoVec {
    pub ptr: u32,
    pub len: u32,
}

/// Iovec lists as guests pass them: almost always one or two entries, so they stay on the
/// stack (every read and write parses one; a heap allocation each showed in the profile).
pub type IoVecs = SmallVec<[IoVec; 4]>;

/// Read and check an iovec/ciovec array (8 bytes each: `buf: u32, buf_len: u32`).
pub fn iovecs(mem: &[u8], ptr: u32, count: u32) -> Result<IoVecs, Errno> {
    if count > MAX_IOVECS {
        return Err(Errno::INVAL);
    }
    range(mem, ptr, count.checked_mul(8).ok_or(Errno::OVERFLOW)?)?;
    let mut out = IoVecs::with_capacity(count as usize);
    for i in 0..count {
        let at = ptr + i * 8;
        let buf = read_u32(mem, at)?;
        let len = read_u32(mem, at + 4)?;
        range(mem, buf, len)?;
        out.push(IoVec { ptr: buf, len });
    }
    Ok(out)
}

/// Total length of a checked iovec list, saturating (guest memory is at most 4 GiB anyway).
pub fn total_len(iovs: &[IoVec]) -> usize {
    iovs.iter()
        .map(|v| v.len as usize)
        .fold(0, usize::saturating_add)
}

/// Copy `data` into the iovecs in order, starting `skip` bytes into them; returns the number
/// of bytes written.
pub fn scatter(mem: &mut [u8], iovs: &[IoVec], mut skip: usize, mut data: &[u8]) -> usize {
    let mut done = 0;
    for v in iovs {
        if data.is_empty() {
            break;
        }
        let len = v.len as usize;
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = data.len().min(len - skip);
        let start = v.ptr as usize + skip;
        mem[start..start + n].copy_from_slice(&data[..n]);
        data = &data[n..];
        done += n;
        skip = 0;
    }
    done
}

/// The iovecs as slices of `mem`, cut off after `max` bytes in all.
pub fn slices<'m>(mem: &'m [u8], iovs: &[IoVec], max: usize) -> SmallVec<[&'m [u8]; 4]> {
    let mut left = max;
    let mut out = SmallVec::with_capacity(iovs.len());
    for v in iovs {
        if left == 0 {
            break;
        }
        let n = (v.len as usize).min(left);
        let start = v.ptr as usize;
        out.push(&mem[start..start + n]);
        left -= n;
    }
    out
}

/// Concatenate up to `max` bytes from the iovecs.
pub fn gather(mem: &[u8], iovs: &[IoVec], max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total_len(iovs).min(max));
    for v in iovs {
        let room = max - out.len();
        if room == 0 {
            break;
        }
        let n = (v.len as usize).min(room);
        let start = v.ptr as usize;
        out.extend_from_slice(&mem[start..start + n]);
    }
    out
}

// --- witx constants -------------------------------------------------------------------------

pub mod filetype {
    pub const UNKNOWN: u8 = 0;
    pub const CHARACTER_DEVICE: u8 = 2;
    pub const SOCKET_STREAM: u8 = 6;
}

pub mod fdflags {
    pub const APPEND: u16 = 1;
    pub const NONBLOCK: u16 = 4;
    /// Every flag the witx defines (APPEND, DSYNC, NONBLOCK, RSYNC, SYNC).
    pub const ALL: u16 = 0x1f;
}

pub mod rights {
    pub const FD_READ: u64 = 1 << 1;
    pub const FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
    pub const FD_WRITE: u64 = 1 << 6;
    pub const FD_FILESTAT_GET: u64 = 1 << 21;
    pub const POLL_FD_READWRITE: u64 = 1 << 27;
    pub const SOCK_SHUTDOWN: u64 = 1 << 28;
    pub const SOCK_ACCEPT: u64 = 1 << 29;
}

/// `preopentype` values. Only `DIR` (0) exists in the witx; Moat answers `fd_prestat_get` on its own
/// descriptors with [`NOT_A_DIR`], which wasi-libc's start-up scan skips (it stops only at
/// `EBADF`), so directories numbered after sockets are still found.
pub mod preopentype {
    pub const NOT_A_DIR: u8 = 1;
}

pub mod eventtype {
    pub const CLOCK: u8 = 0;
    pub const FD_READ: u8 = 1;
    pub const FD_WRITE: u8 = 2;
}

pub const EVENTRWFLAGS_HANGUP: u16 = 1;
pub const SUBCLOCKFLAGS_ABSTIME: u16 = 1;
pub const SUBSCRIPTION_SIZE: u32 = 48;
pub const EVENT_SIZE: u32 = 32;

pub mod riflags {
    pub const PEEK: u16 = 1;
    pub const WAITALL: u16 = 2;
}

pub mod sdflags {
    pub const RD: u8 = 1;
    pub const WR: u8 = 2;
}

pub mod clockid {
    pub const REALTIME: u32 = 0;
    pub const MONOTONIC: u32 = 1;
    pub const PROCESS_CPUTIME: u32 = 2;
    pub const THREAD_CPUTIME: u32 = 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_bounds_and_overflowing_ranges_fault() {
        let mem = [0u8; 16];
        assert!(range(&mem, 0, 16).is_ok());
        assert_eq!(range(&mem, 1, 16), Err(Errno::FAULT));
        assert_eq!(range(&mem, u32::MAX, 2), Err(Errno::FAULT));
        assert_eq!(read_u64(&mem, 12), Err(Errno::FAULT));
    }

    #[test]
    fn iovecs_are_checked_against_memory() {
        let mut mem = [0u8; 64];
        write_u32(&mut mem, 0, 32).unwrap();
        write_u32(&mut mem, 4, 8).unwrap();
        write_u32(&mut mem, 8, 60).unwrap();
        write_u32(&mut mem, 12, 8).unwrap();
        assert_eq!(iovecs(&mem, 0, 1).unwrap().len(), 1);
        assert_eq!(iovecs(&mem, 0, 2).unwrap_err(), Errno::FAULT);
        assert_eq!(iovecs(&mem, 60, 1).unwrap_err(), Errno::FAULT);
        assert_eq!(iovecs(&mem, 0, MAX_IOVECS + 1).unwrap_err(), Errno::INVAL);
        assert_eq!(iovecs(&mem, 0, u32::MAX).unwrap_err(), Errno::INVAL);
    }

    #[test]
    fn scatter_and_gather_round_trip() {
        let mut mem = [0u8; 32];
        let iovs = [IoVec { ptr: 0, len: 3 }, IoVec { ptr: 10, len: 4 }];
        assert_eq!(scatter(&mut mem, &iovs, 0, b"hello"), 5);
        assert_eq!(&mem[0..3], b"hel");
        assert_eq!(&mem[10..12], b"lo");
        assert_eq!(gather(&mem, &iovs, 5), b"hello\0\0"[..5].to_vec());
        assert_eq!(gather(&mem, &iovs, 4), b"hell".to_vec());
        assert_eq!(slices(&mem, &iovs, 4)[..], [&b"hel"[..], &b"l"[..]]);
        // A second run continues where the first stopped, across iovec boundaries.
        assert_eq!(scatter(&mut mem, &iovs, 2, b"XYZ"), 3);
        assert_eq!(&mem[0..3], b"heX");
        assert_eq!(&mem[10..13], b"YZ\0");
        // More data than room: only what fits.
        assert_eq!(scatter(&mut mem, &iovs, 5, b"12345"), 2);
        assert_eq!(&mem[10..14], b"YZ12");
    }
}
