//! The `wasi_snapshot_preview1` imports Moat defines over wasmtime-wasi's.
//!
//! [`add_to_linker`] first registers wasmtime-wasi's complete preview-1 set, then (with
//! shadowing allowed) replaces every function that takes an fd. Each replacement looks the fd up
//! in Moat's table: Moat's own descriptors (stdio, `null`, sockets) are served here; delegated
//! ones (directories, files) go to wasmtime-wasi's raw ABI function with the fd translated,
//! passing the store's hostcall fuel on exactly as wiggle's generated glue does.
//!
//! Every guest pointer and length is checked ([`crate::abi`]); a bad one is `EFAULT`/`EINVAL`,
//! never a host panic. Waiting calls (blocking reads, writes, accepts, `poll_oneoff`) are async:
//! they park on the Keep's guest notifier and re-check, so host tasks keep running meanwhile.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use wasmtime::{AsContextMut, Caller, Extern, Linker, Memory};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as raw;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1 as _;
use wiggle::GuestMemory;

use crate::MoatWasi;
use crate::abi::{self, IoVec, fdflags, filetype, rights};
use crate::errno::{Errno, from_io_kind};
use crate::pipe::{Pipe, ReadOutcome, WriteOutcome};
use crate::table::{Entry, Kind};

const MODULE: &str = "wasi_snapshot_preview1";

/// `poll_oneoff` calls answered at once, in a row, before the workload yields its thread.
const POLLS_BEFORE_YIELD: u32 = 16;

/// Largest chunk moved between a pipe and guest memory in one call.
const MAX_TRANSFER: usize = 256 * 1024;

/// Largest `poll_oneoff` subscription buffer kept between calls (a server with ~2,000
/// connections subscribes twice to each).
const KEPT_SUBSCRIPTIONS: usize = 4096;

/// How the store's data gives access to the [`MoatWasi`] state.
pub trait GetWasi<T>: Fn(&mut T) -> &mut MoatWasi + Send + Sync + Copy + 'static {}
impl<T, F> GetWasi<T> for F where F: Fn(&mut T) -> &mut MoatWasi + Send + Sync + Copy + 'static {}

/// The guest's exported memory, looked up by name once per store (a lookup by name on every
/// call showed up in profiles of busy servers).
fn memory<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetWasi<T>,
) -> wasmtime::Result<Memory> {
    if let Some(memory) = get(caller.data_mut()).memory {
        return Ok(memory);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => {
            get(caller.data_mut()).memory = Some(m);
            Ok(m)
        }
        _ => wasmtime::bail!("the module does not export a `memory`, which WASI calls need"),
    }
}

/// Call wasmtime-wasi's raw preview-1 function `$name` with the guest's memory.
macro_rules! raw_call {
    ($caller:ident, $get:ident, $name:ident ( $($arg:expr),* ) $($await:tt)*) => {{
        let fuel = $caller.as_context_mut().hostcall_fuel();
        let mem = memory(&mut $caller, $get)?;
        let (bytes, data) = mem.data_and_store_mut(&mut $caller);
        let wasi = $get(data);
        wasi.p1.set_hostcall_fuel(fuel);
        let mut guest = GuestMemory::Unshared(bytes);
        raw::$name(&mut wasi.p1, &mut guest, $($arg),*) $($await)*
    }};
}

/// Register a function that only translates fds and delegates: `fds` are the argument names
/// holding fds, each with the errno Moat's own descriptors get.
macro_rules! delegate {
    ($linker:ident, $get:ident, $name:ident ( $($arg:ident : $ty:ty),* ), fds [$($fd:ident => $err:expr),*] $($await:tt)*) => {{
        $linker.func_wrap_async(
            MODULE,
            stringify!($name),
            move |mut caller: Caller<'_, T>, ($($arg,)*): ($($ty,)*)| {
                Box::new(async move {
                    $(
                        let $fd = {
                            let mem = memory(&mut caller, $get)?;
                            let wasi = $get(mem.data_and_store_mut(&mut caller).1);
                            match wasi.table.delegated($fd, $err) {
                                Ok(inner) => inner,
                                Err(e) => return Ok(e.raw()),
                            }
                        };
                    )*
                    raw_call!(caller, $get, $name($($arg),*) $($await)*)
                })
            },
        )?;
    }};
}

/// Register a function implemented here: `$body` is an async fn taking `(caller, get, args..)`.
macro_rules! own {
    ($linker:ident, $get:ident, $name:ident ( $($arg:ident : $ty:ty),* )) => {{
        $linker.func_wrap_async(
            MODULE,
            stringify!($name),
            move |caller: Caller<'_, T>, ($($arg,)*): ($($ty,)*)| {
                Box::new($name(caller, $get, $($arg),*))
            },
        )?;
    }};
}

/// Register a function that usually finishes at once: `$now` tries it synchronously and returns
/// `None` when it has to wait (or delegate), and only then is the async `$name` run.
///
/// wasmtime runs every async host call through a boxed future of its own around ours, on the
/// workload's fiber. A busy server makes a handful of these calls per request, and moving a
/// large future into its box showed up in instruction counts; answering the common case before
/// any future exists leaves only a small ready one.
macro_rules! own_fast {
    ($linker:ident, $get:ident, $name:ident ( $($arg:ident : $ty:ty),* ), now = $now:ident) => {{
        $linker.func_wrap_async(
            MODULE,
            stringify!($name),
            move |mut caller: Caller<'_, T>, ($($arg,)*): ($($ty,)*)| {
                match $now(&mut caller, $get, $($arg),*) {
                    Some(done) => answered(done),
                    None => Box::new($name(caller, $get, $($arg),*)),
                }
            },
        )?;
    }};
}

/// A host call's future.
type HostFuture<'a> = Box<dyn Future<Output = wasmtime::Result<i32>> + Send + 'a>;

/// The future of a call already answered. The two answers of nearly every hot call, success
/// and `EAGAIN`, are zero-sized futures, whose box allocates nothing.
fn answered<'a>(result: wasmtime::Result<i32>) -> HostFuture<'a> {
    const SUCCESS: i32 = Errno::SUCCESS.raw();
    const AGAIN: i32 = Errno::AGAIN.raw();
    match result {
        Ok(SUCCESS) => Box::new(Answer::<SUCCESS>),
        Ok(AGAIN) => Box::new(Answer::<AGAIN>),
        other => Box::new(std::future::ready(other)),
    }
}

/// A future that is ready at once with errno `ERRNO`.
struct Answer<const ERRNO: i32>;

impl<const ERRNO: i32> Future for Answer<ERRNO> {
    type Output = wasmtime::Result<i32>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(Ok(ERRNO))
    }
}

/// Register a function that never waits as a plain synchronous import: no fiber hand-off and
/// no boxed futures per call.
macro_rules! own_sync {
    ($linker:ident, $get:ident, $name:ident ( $($arg:ident : $ty:ty),* )) => {{
        $linker.func_wrap(
            MODULE,
            stringify!($name),
            move |caller: Caller<'_, T>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                $name(caller, $get, $($arg),*)
            },
        )?;
    }};
}

/// Add the complete `wasi_snapshot_preview1` import set for a store whose data holds a
/// [`MoatWasi`] reachable through `get`. Leaves shadowing allowed on `linker`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: impl GetWasi<T>,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, move |t| &mut get(t).p1)?;
    linker.allow_shadowing(true);

    own_fast!(linker, get, fd_read(fd: i32, iovs: i32, iovs_len: i32, nread: i32), now = fd_read_now);
    own_fast!(linker, get, fd_write(fd: i32, iovs: i32, iovs_len: i32, nwritten: i32), now = fd_write_now);
    own!(linker, get, fd_close(fd: i32));
    own!(linker, get, fd_fdstat_get(fd: i32, out: i32));
    own!(linker, get, fd_fdstat_set_flags(fd: i32, flags: i32));
    own!(linker, get, fd_filestat_get(fd: i32, out: i32));
    own!(linker, get, fd_prestat_get(fd: i32, out: i32));
    own!(linker, get, fd_prestat_dir_name(fd: i32, path: i32, path_len: i32));
    own!(linker, get, fd_renumber(from: i32, to: i32));
    own!(linker, get, path_open(
        dirfd: i32, dirflags: i32, path: i32, path_len: i32, oflags: i32,
        rights_base: i64, rights_inheriting: i64, fdflags: i32, out: i32
    ));
    linker.func_wrap_async(
        MODULE,
        "poll_oneoff",
        move |mut caller: Caller<'_, T>, (subs, events, nsubs, nevents): (i32, i32, i32, i32)| {
            match poll_oneoff_now(&mut caller, get, subs, events, nsubs, nevents) {
                PollNow::Done(result) => answered(result),
                PollNow::DoneThenYield(errno) => Box::new(yield_then(errno)),
                PollNow::Wait(subscriptions, deadline) => Box::new(poll_oneoff_wait(
                    caller,
                    get,
                    subscriptions,
                    deadline,
                    events,
                    nevents,
                )),
            }
        },
    )?;
    own_sync!(linker, get, clock_time_get(id: i32, precision: i64, out: i32));
    own_sync!(linker, get, clock_res_get(id: i32, out: i32));
    own!(linker, get, sock_accept(fd: i32, flags: i32, out: i32));
    own!(linker, get, sock_recv(
        fd: i32, iovs: i32, iovs_len: i32, flags: i32, out_len: i32, out_flags: i32
    ));
    own!(linker, get, sock_send(fd: i32, iovs: i32, iovs_len: i32, flags: i32, out_len: i32));
    own_sync!(linker, get, sock_shutdown(fd: i32, how: i32));

    delegate!(linker, get, fd_advise(fd: i32, offset: i64, len: i64, advice: i32), fds [fd => Errno::SPIPE] .await);
    delegate!(linker, get, fd_allocate(fd: i32, offset: i64, len: i64), fds [fd => Errno::SPIPE]);
    delegate!(linker, get, fd_datasync(fd: i32), fds [fd => Errno::INVAL] .await);
    delegate!(linker, get, fd_sync(fd: i32), fds [fd => Errno::INVAL] .await);
    delegate!(linker, get, fd_fdstat_set_rights(fd: i32, base: i64, inheriting: i64), fds [fd => Errno::NOTSUP]);
    delegate!(linker, get, fd_filestat_set_size(fd: i32, size: i64), fds [fd => Errno::INVAL] .await);
    delegate!(linker, get, fd_filestat_set_times(fd: i32, atim: i64, mtim: i64, flags: i32), fds [fd => Errno::NOTSUP] .await);
    delegate!(linker, get, fd_pread(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nread: i32), fds [fd => Errno::SPIPE] .await);
    delegate!(linker, get, fd_pwrite(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nwritten: i32), fds [fd => Errno::SPIPE] .await);
    delegate!(linker, get, fd_readdir(fd: i32, buf: i32, buf_len: i32, cookie: i64, used: i32), fds [fd => Errno::NOTDIR] .await);
    delegate!(linker, get, fd_seek(fd: i32, offset: i64, whence: i32, out: i32), fds [fd => Errno::SPIPE] .await);
    delegate!(linker, get, fd_tell(fd: i32, out: i32), fds [fd => Errno::SPIPE]);
    delegate!(linker, get, path_create_directory(fd: i32, path: i32, path_len: i32), fds [fd => Errno::NOTDIR] .await);
    delegate!(linker, get, path_filestat_get(fd: i32, flags: i32, path: i32, path_len: i32, out: i32), fds [fd => Errno::NOTDIR] .await);
    delegate!(linker, get, path_filestat_set_times(fd: i32, flags: i32, path: i32, path_len: i32, atim: i64, mtim: i64, fst: i32), fds [fd => Errno::NOTDIR] .await);
    delegate!(linker, get, path_link(old_fd: i32, old_flags: i32, old_path: i32, old_len: i32, new_fd: i32, new_path: i32, new_len: i32), fds [old_fd => Errno::NOTDIR, new_fd => Errno::NOTDIR] .await);
    delegate!(linker, get, path_readlink(fd: i32, path: i32, path_len: i32, buf: i32, buf_len: i32, used: i32), fds [fd => Errno::NOTDIR] .await);
    delegate!(linker, get, path_remove_directory(fd: i32, path: i32, path_len: i32), fds [fd => Errno::NOTDIR] .await);
    delegate!(linker, get, path_rename(fd: i32, old_path: i32, old_len: i32, new_fd: i32, new_path: i32, new_len: i32), fds [fd => Errno::NOTDIR, new_fd => Errno::NOTDIR] .await);
    delegate!(linker, get, path_symlink(old_path: i32, old_len: i32, fd: i32, new_path: i32, new_len: i32), fds [fd => Errno::NOTDIR] .await);
    delegate!(linker, get, path_unlink_file(fd: i32, path: i32, path_len: i32), fds [fd => Errno::NOTDIR] .await);
    Ok(())
}

// --- reading and writing ------------------------------------------------------------------

/// What a read or write on one of Moat's descriptors decided.
enum Step {
    /// Finished: bytes moved (0 means end-of-file for a read).
    Done(usize),
    /// Nothing to do yet and the fd blocks: wait, then try again.
    Wait(Arc<Notify>),
    /// A delegated fd: hand the call to wasmtime-wasi with this inner fd.
    Delegate(i32),
}

#[derive(Clone, Copy)]
struct ReadMode {
    peek: bool,
    waitall: bool,
    /// `sock_recv` on a non-socket is `ENOTSOCK`.
    sockets_only: bool,
}

impl MoatWasi {
    fn read_pipe(&mut self, fd: i32, sockets_only: bool) -> Result<(PipeRef, bool), Errno> {
        let entry = self.table.get(fd)?.clone();
        if sockets_only && !entry.kind.is_socket() {
            return Err(Errno::NOTSOCK);
        }
        let pipe = match entry.kind {
            Kind::Stream(conn) => PipeRef::Inbound(conn),
            Kind::Stdin => PipeRef::Plain(self.stdin_pipe()),
            Kind::Null => return Ok((PipeRef::Null, entry.nonblock)),
            Kind::Delegated(inner) => return Ok((PipeRef::Delegated(inner), false)),
            Kind::Listener(_) => return Err(Errno::NOTCONN),
            Kind::Stdout | Kind::Stderr => return Err(Errno::BADF),
        };
        Ok((pipe, entry.nonblock))
    }

    /// A non-blocking read of a connection that has nothing buffered and has not ended.
    fn read_would_block(&self, fd: i32) -> bool {
        match self.table.get(fd) {
            Ok(Entry {
                kind: Kind::Stream(conn),
                nonblock: true,
            }) => !conn.inbound.readiness().readable,
            _ => false,
        }
    }

    fn read_step(
        &mut self,
        mem: &mut [u8],
        fd: i32,
        iovs: &[IoVec],
        mode: ReadMode,
    ) -> Result<Step, Errno> {
        let (pipe, nonblock) = self.read_pipe(fd, mode.sockets_only)?;
        let pipe: &Pipe = match &pipe {
            PipeRef::Null => return Ok(Step::Done(0)),
            PipeRef::Delegated(inner) => return Ok(Step::Delegate(*inner as i32)),
            PipeRef::Inbound(conn) => &conn.inbound,
            PipeRef::Plain(p) => p,
        };
        let want = abi::total_len(iovs).min(MAX_TRANSFER);
        if want == 0 {
            return Ok(Step::Done(0));
        }
        // The common miss of a non-blocking reader (tokio and mio read until EAGAIN), answered
        // from the published readiness without taking the pipe's lock.
        if nonblock && !pipe.readiness().readable {
            return Err(Errno::AGAIN);
        }
        if mode.waitall {
            let ready = pipe.readiness();
            if !ready.hangup && ready.readable_bytes < want.min(crate::net::PIPE_CAPACITY) {
                return if nonblock && ready.readable_bytes == 0 {
                    Err(Errno::AGAIN)
                } else if nonblock {
                    self.finish_read(mem, pipe, iovs, want, mode.peek)
                } else {
                    Ok(Step::Wait(self.guest_notify.clone()))
                };
            }
        }
        match self.finish_read(mem, pipe, iovs, want, mode.peek)? {
            Step::Wait(n) if nonblock => {
                drop(n);
                Err(Errno::AGAIN)
            }
            step => Ok(step),
        }
    }

    fn finish_read(
        &self,
        mem: &mut [u8],
        pipe: &Pipe,
        iovs: &[IoVec],
        want: usize,
        peek: bool,
    ) -> Result<Step, Errno> {
        let copied = pipe.try_read_with(want, peek, |a, b| {
            let first = abi::scatter(mem, iovs, 0, a);
            first + abi::scatter(mem, iovs, first, b)
        });
        match copied {
            ReadOutcome::Data(n) => Ok(Step::Done(n)),
            ReadOutcome::Eof => Ok(Step::Done(0)),
            ReadOutcome::WouldBlock => Ok(Step::Wait(self.guest_notify.clone())),
            ReadOutcome::Failed(kind) => Err(from_io_kind(kind)),
        }
    }

    fn write_step(
        &mut self,
        mem: &[u8],
        fd: i32,
        iovs: &[IoVec],
        sockets_only: bool,
    ) -> Result<Step, Errno> {
        let entry = self.table.get(fd)?.clone();
        if sockets_only && !entry.kind.is_socket() {
            return Err(Errno::NOTSOCK);
        }
        let total = abi::total_len(iovs);
        match entry.kind {
            Kind::Null => Ok(Step::Done(total)),
            Kind::Stdout | Kind::Stderr => {
                let data = abi::gather(mem, iovs, usize::MAX);
                let written = if matches!(entry.kind, Kind::Stdout) {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&data).and_then(|()| out.flush())
                } else {
                    let mut out = std::io::stderr().lock();
                    out.write_all(&data).and_then(|()| out.flush())
                };
                written.map_err(|e| from_io_kind(e.kind()))?;
                Ok(Step::Done(data.len()))
            }
            Kind::Stream(conn) => {
                conn.guest_wrote();
                let parts = abi::slices(mem, iovs, MAX_TRANSFER);
                match conn.guest_write(&parts) {
                    WriteOutcome::Written(n) => Ok(Step::Done(n)),
                    WriteOutcome::WouldBlock if entry.nonblock => Err(Errno::AGAIN),
                    WriteOutcome::WouldBlock => Ok(Step::Wait(self.guest_notify.clone())),
                    WriteOutcome::Closed => Err(Errno::PIPE),
                    WriteOutcome::Failed(kind) => Err(from_io_kind(kind)),
                }
            }
            Kind::Delegated(inner) => Ok(Step::Delegate(inner as i32)),
            Kind::Listener(_) => Err(Errno::NOTCONN),
            Kind::Stdin => Err(Errno::BADF),
        }
    }
}

/// A pipe looked up for one call (kept alive while the call uses it).
enum PipeRef {
    Null,
    Delegated(u32),
    Inbound(Arc<crate::net::Connection>),
    Plain(Arc<Pipe>),
}

/// Shared body of `fd_read`, `sock_recv`, `fd_write` and `sock_send`: check the result
/// pointer and the iovecs (before anything moves, so a bad pointer never loses data), then run
/// `step` until it stops asking to wait.
async fn transfer<T: Send + 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetWasi<T>,
    iovs: i32,
    iovs_len: i32,
    out_len: i32,
    step: impl Fn(&mut MoatWasi, &mut [u8], &[IoVec]) -> Result<Step, Errno>,
) -> wasmtime::Result<Result<Step, Errno>> {
    loop {
        match transfer_once(caller, get, iovs, iovs_len, out_len, &step)? {
            Ok(Step::Wait(notify)) => notify.notified().await,
            other => return Ok(other),
        }
    }
}

/// One attempt of [`transfer`], without waiting.
fn transfer_once<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetWasi<T>,
    iovs: i32,
    iovs_len: i32,
    out_len: i32,
    step: impl Fn(&mut MoatWasi, &mut [u8], &[IoVec]) -> Result<Step, Errno>,
) -> wasmtime::Result<Result<Step, Errno>> {
    let mem = memory(caller, get)?;
    let (bytes, data) = mem.data_and_store_mut(&mut *caller);
    let wasi = get(data);
    Ok((|| {
        abi::range(bytes, out_len as u32, 4)?;
        let iovs = abi::iovecs(bytes, iovs as u32, iovs_len as u32)?;
        step(wasi, bytes, &iovs)
    })())
}

/// One attempt of [`transfer`] answered at once: the errno (with the byte count written to
/// `out_len`), or `None` when the call has to wait or delegate.
fn transfer_now<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetWasi<T>,
    iovs: i32,
    iovs_len: i32,
    out_len: i32,
    step: impl Fn(&mut MoatWasi, &mut [u8], &[IoVec]) -> Result<Step, Errno>,
) -> Option<wasmtime::Result<i32>> {
    match transfer_once(caller, get, iovs, iovs_len, out_len, step) {
        Err(trap) => Some(Err(trap)),
        Ok(Ok(Step::Done(n))) => Some(write_result_u32(caller, get, out_len, n)),
        Ok(Ok(Step::Wait(_) | Step::Delegate(_))) => None,
        Ok(Err(e)) => Some(Ok(e.raw())),
    }
}

const FD_READ_MODE: ReadMode = ReadMode {
    peek: false,
    waitall: false,
    sockets_only: false,
};

fn fd_read_now<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nread: i32,
) -> Option<wasmtime::Result<i32>> {
    // tokio and mio guests read until EAGAIN: that last read is answered before its iovecs
    // are even decoded (it moves nothing, so a bad pointer loses nothing either).
    if get(caller.data_mut()).read_would_block(fd) {
        return Some(Ok(Errno::AGAIN.raw()));
    }
    transfer_now(caller, get, iovs, iovs_len, nread, |wasi, bytes, iovs| {
        wasi.read_step(bytes, fd, iovs, FD_READ_MODE)
    })
}

fn fd_write_now<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> Option<wasmtime::Result<i32>> {
    transfer_now(
        caller,
        get,
        iovs,
        iovs_len,
        nwritten,
        |wasi, bytes, iovs| wasi.write_step(bytes, fd, iovs, false),
    )
}

async fn read_common<T: Send + 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    out_len: i32,
    mode: ReadMode,
) -> wasmtime::Result<Result<Step, Errno>> {
    transfer(caller, get, iovs, iovs_len, out_len, |wasi, bytes, iovs| {
        wasi.read_step(bytes, fd, iovs, mode)
    })
    .await
}

async fn fd_read<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nread: i32,
) -> wasmtime::Result<i32> {
    match read_common(&mut caller, get, fd, iovs, iovs_len, nread, FD_READ_MODE).await? {
        Ok(Step::Done(n)) => Ok(write_result_u32(&mut caller, get, nread, n)?),
        Ok(Step::Delegate(inner)) => {
            raw_call!(caller, get, fd_read(inner, iovs, iovs_len, nread).await)
        }
        Ok(Step::Wait(_)) => Ok(Errno::AGAIN.raw()),
        Err(e) => Ok(e.raw()),
    }
}

// The WASI ABI's own argument list, plus the caller and the state accessor.
#[allow(clippy::too_many_arguments)]
async fn sock_recv<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    flags: i32,
    out_len: i32,
    out_flags: i32,
) -> wasmtime::Result<i32> {
    let flags = flags as u32;
    if flags & !u32::from(abi::riflags::PEEK | abi::riflags::WAITALL) != 0 {
        return Ok(Errno::INVAL.raw());
    }
    {
        let mem = memory(&mut caller, get)?;
        if let Err(e) = abi::range(mem.data(&caller), out_flags as u32, 2) {
            return Ok(e.raw());
        }
    }
    let mode = ReadMode {
        peek: flags & u32::from(abi::riflags::PEEK) != 0,
        waitall: flags & u32::from(abi::riflags::WAITALL) != 0,
        sockets_only: true,
    };
    match read_common(&mut caller, get, fd, iovs, iovs_len, out_len, mode).await? {
        Ok(Step::Done(n)) => {
            let mem = memory(&mut caller, get)?;
            let bytes = mem.data_mut(&mut caller);
            let r = abi::write_u32(bytes, out_len as u32, n as u32)
                .and_then(|()| abi::write_u16(bytes, out_flags as u32, 0));
            Ok(r.err().unwrap_or(Errno::SUCCESS).raw())
        }
        Ok(_) => Ok(Errno::NOTSOCK.raw()),
        Err(e) => Ok(e.raw()),
    }
}

async fn write_common<T: Send + 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    out_len: i32,
    sockets_only: bool,
) -> wasmtime::Result<Result<Step, Errno>> {
    transfer(caller, get, iovs, iovs_len, out_len, |wasi, bytes, iovs| {
        wasi.write_step(bytes, fd, iovs, sockets_only)
    })
    .await
}

async fn fd_write<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> wasmtime::Result<i32> {
    match write_common(&mut caller, get, fd, iovs, iovs_len, nwritten, false).await? {
        Ok(Step::Done(n)) => Ok(write_result_u32(&mut caller, get, nwritten, n)?),
        Ok(Step::Delegate(inner)) => {
            raw_call!(caller, get, fd_write(inner, iovs, iovs_len, nwritten).await)
        }
        Ok(Step::Wait(_)) => Ok(Errno::AGAIN.raw()),
        Err(e) => Ok(e.raw()),
    }
}

async fn sock_send<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    flags: i32,
    out_len: i32,
) -> wasmtime::Result<i32> {
    if flags != 0 {
        return Ok(Errno::NOTSUP.raw());
    }
    match write_common(&mut caller, get, fd, iovs, iovs_len, out_len, true).await? {
        Ok(Step::Done(n)) => Ok(write_result_u32(&mut caller, get, out_len, n)?),
        Ok(_) => Ok(Errno::NOTSOCK.raw()),
        Err(e) => Ok(e.raw()),
    }
}

fn write_result_u32<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetWasi<T>,
    ptr: i32,
    n: usize,
) -> wasmtime::Result<i32> {
    let mem = memory(caller, get)?;
    let value = u32::try_from(n).unwrap_or(u32::MAX);
    Ok(
        match abi::write_u32(mem.data_mut(caller), ptr as u32, value) {
            Ok(()) => Errno::SUCCESS.raw(),
            Err(e) => e.raw(),
        },
    )
}

// --- sockets ------------------------------------------------------------------------------

async fn sock_accept<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    flags: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    if flags as u32 & !u32::from(fdflags::NONBLOCK) != 0 {
        return Ok(Errno::INVAL.raw());
    }
    let new_nonblock = flags as u32 & u32::from(fdflags::NONBLOCK) != 0;
    loop {
        let mem = memory(&mut caller, get)?;
        let (bytes, data) = mem.data_and_store_mut(&mut caller);
        let wasi = get(data);
        let result = (|| {
            abi::range(bytes, out as u32, 4)?;
            let entry = wasi.table.get(fd)?.clone();
            let listener = match entry.kind {
                Kind::Listener(l) => l,
                Kind::Stream(_) => return Err(Errno::INVAL),
                _ => return Err(Errno::NOTSOCK),
            };
            match listener.try_accept() {
                Some(conn) => {
                    let new_fd = wasi.table.push(Kind::Stream(conn.clone()), new_nonblock);
                    match new_fd {
                        Ok(new_fd) => {
                            abi::write_u32(bytes, out as u32, new_fd)?;
                            Ok(None)
                        }
                        Err(e) => {
                            conn.guest_close();
                            Err(e)
                        }
                    }
                }
                None if entry.nonblock => Err(Errno::AGAIN),
                None => Ok(Some(wasi.guest_notify.clone())),
            }
        })();
        match result {
            Ok(None) => return Ok(Errno::SUCCESS.raw()),
            Ok(Some(notify)) => notify.notified().await,
            Err(e) => return Ok(e.raw()),
        }
    }
}

fn sock_shutdown<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    how: i32,
) -> wasmtime::Result<i32> {
    let mem = memory(&mut caller, get)?;
    let wasi = get(mem.data_and_store_mut(&mut caller).1);
    let result = (|| {
        let how = u8::try_from(how).map_err(|_| Errno::INVAL)?;
        if how == 0 || how & !(abi::sdflags::RD | abi::sdflags::WR) != 0 {
            return Err(Errno::INVAL);
        }
        match &wasi.table.get(fd)?.kind {
            Kind::Stream(conn) => {
                if how & abi::sdflags::RD != 0 {
                    conn.stop_receiving();
                }
                if how & abi::sdflags::WR != 0 {
                    conn.outbound.close_write();
                }
                Ok(())
            }
            Kind::Listener(_) => Err(Errno::NOTCONN),
            _ => Err(Errno::NOTSOCK),
        }
    })();
    Ok(result.err().unwrap_or(Errno::SUCCESS).raw())
}

// --- descriptors --------------------------------------------------------------------------

async fn fd_close<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
) -> wasmtime::Result<i32> {
    let inner = {
        let mem = memory(&mut caller, get)?;
        let wasi = get(mem.data_and_store_mut(&mut caller).1);
        match wasi.table.remove(fd) {
            Ok(entry) => match close_own(entry) {
                Some(inner) => inner,
                None => return Ok(Errno::SUCCESS.raw()),
            },
            Err(e) => return Ok(e.raw()),
        }
    };
    raw_call!(caller, get, fd_close(inner).await)
}

/// Release one of Moat's descriptors; for a delegated one, the inner fd still to be closed.
fn close_own(entry: Entry) -> Option<i32> {
    match entry.kind {
        Kind::Stream(conn) => {
            conn.guest_close();
            None
        }
        Kind::Delegated(inner) => Some(inner as i32),
        _ => None,
    }
}

async fn fd_renumber<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    from: i32,
    to: i32,
) -> wasmtime::Result<i32> {
    let displaced = {
        let mem = memory(&mut caller, get)?;
        let wasi = get(mem.data_and_store_mut(&mut caller).1);
        if let Err(e) = wasi.table.get(from).and_then(|_| wasi.table.get(to)) {
            return Ok(e.raw());
        }
        if from == to {
            return Ok(Errno::SUCCESS.raw());
        }
        let entry = match wasi.table.remove(from) {
            Ok(e) => e,
            Err(e) => return Ok(e.raw()),
        };
        wasi.table.insert(to as u32, entry)
    };
    match displaced.and_then(close_own) {
        Some(inner) => {
            raw_call!(caller, get, fd_close(inner).await)?;
            Ok(Errno::SUCCESS.raw())
        }
        None => Ok(Errno::SUCCESS.raw()),
    }
}

fn own_fdstat(entry: &Entry) -> (u8, u16, u64) {
    let flags = if entry.nonblock { fdflags::NONBLOCK } else { 0 };
    let stream = rights::FD_READ
        | rights::FD_WRITE
        | rights::POLL_FD_READWRITE
        | rights::FD_FDSTAT_SET_FLAGS
        | rights::FD_FILESTAT_GET;
    match &entry.kind {
        Kind::Listener(_) => (
            filetype::SOCKET_STREAM,
            flags,
            rights::SOCK_ACCEPT
                | rights::POLL_FD_READWRITE
                | rights::FD_FDSTAT_SET_FLAGS
                | rights::FD_FILESTAT_GET,
        ),
        Kind::Stream(_) => (
            filetype::SOCKET_STREAM,
            flags,
            stream | rights::SOCK_SHUTDOWN,
        ),
        Kind::Stdin => (
            stdio_filetype(std::io::stdin()),
            flags,
            stream & !rights::FD_WRITE,
        ),
        Kind::Stdout => (
            stdio_filetype(std::io::stdout()),
            flags,
            stream & !rights::FD_READ,
        ),
        Kind::Stderr => (
            stdio_filetype(std::io::stderr()),
            flags,
            stream & !rights::FD_READ,
        ),
        Kind::Null => (filetype::CHARACTER_DEVICE, flags, stream),
        Kind::Delegated(_) => (filetype::UNKNOWN, 0, 0),
    }
}

/// Like wasmtime-wasi: a terminal is a character device, anything else is "unknown".
fn stdio_filetype(s: impl std::io::IsTerminal) -> u8 {
    if s.is_terminal() {
        filetype::CHARACTER_DEVICE
    } else {
        filetype::UNKNOWN
    }
}

async fn fd_fdstat_get<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    let inner = {
        let mem = memory(&mut caller, get)?;
        let (bytes, data) = mem.data_and_store_mut(&mut caller);
        let entry = match get(data).table.get(fd) {
            Ok(e) => e.clone(),
            Err(e) => return Ok(e.raw()),
        };
        if let Kind::Delegated(inner) = entry.kind {
            inner as i32
        } else {
            let (ft, flags, rights) = own_fdstat(&entry);
            let mut stat = [0u8; 24];
            stat[0] = ft;
            stat[2..4].copy_from_slice(&flags.to_le_bytes());
            stat[8..16].copy_from_slice(&rights.to_le_bytes());
            return Ok(abi::write_bytes(bytes, out as u32, &stat)
                .err()
                .unwrap_or(Errno::SUCCESS)
                .raw());
        }
    };
    raw_call!(caller, get, fd_fdstat_get(inner, out).await)
}

async fn fd_fdstat_set_flags<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    flags: i32,
) -> wasmtime::Result<i32> {
    let inner = {
        let mem = memory(&mut caller, get)?;
        let wasi = get(mem.data_and_store_mut(&mut caller).1);
        let entry = match wasi.table.get_mut(fd) {
            Ok(e) => e,
            Err(e) => return Ok(e.raw()),
        };
        let Ok(flags) = u16::try_from(flags) else {
            return Ok(Errno::INVAL.raw());
        };
        if flags & !fdflags::ALL != 0 {
            return Ok(Errno::INVAL.raw());
        }
        match entry.kind {
            Kind::Delegated(inner) => inner as i32,
            _ => {
                // Sockets take only NONBLOCK; stdio also tolerates APPEND (a no-op on streams).
                let allowed = if entry.kind.is_socket() {
                    fdflags::NONBLOCK
                } else {
                    fdflags::NONBLOCK | fdflags::APPEND
                };
                if flags & !allowed != 0 {
                    return Ok(Errno::NOTSUP.raw());
                }
                entry.nonblock = flags & fdflags::NONBLOCK != 0;
                return Ok(Errno::SUCCESS.raw());
            }
        }
    };
    raw_call!(caller, get, fd_fdstat_set_flags(inner, flags))
}

async fn fd_filestat_get<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    let inner = {
        let mem = memory(&mut caller, get)?;
        let (bytes, data) = mem.data_and_store_mut(&mut caller);
        let entry = match get(data).table.get(fd) {
            Ok(e) => e.clone(),
            Err(e) => return Ok(e.raw()),
        };
        if let Kind::Delegated(inner) = entry.kind {
            inner as i32
        } else {
            let mut stat = [0u8; 64];
            stat[16] = own_fdstat(&entry).0;
            stat[24..32].copy_from_slice(&1u64.to_le_bytes());
            return Ok(abi::write_bytes(bytes, out as u32, &stat)
                .err()
                .unwrap_or(Errno::SUCCESS)
                .raw());
        }
    };
    raw_call!(caller, get, fd_filestat_get(inner, out).await)
}

async fn fd_prestat_get<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    let inner = {
        let mem = memory(&mut caller, get)?;
        let (bytes, data) = mem.data_and_store_mut(&mut caller);
        match get(data).table.get(fd).map(|e| e.kind.clone()) {
            Ok(Kind::Delegated(inner)) => inner as i32,
            Ok(_) => {
                // Not a directory, but not the end of the table either: wasi-libc skips a
                // prestat whose tag is not DIR and keeps scanning (it stops only at EBADF).
                let prestat = [abi::preopentype::NOT_A_DIR, 0, 0, 0, 0, 0, 0, 0];
                return Ok(abi::write_bytes(bytes, out as u32, &prestat)
                    .err()
                    .unwrap_or(Errno::SUCCESS)
                    .raw());
            }
            Err(e) => return Ok(e.raw()),
        }
    };
    raw_call!(caller, get, fd_prestat_get(inner, out))
}

async fn fd_prestat_dir_name<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    fd: i32,
    path: i32,
    path_len: i32,
) -> wasmtime::Result<i32> {
    let inner = {
        let mem = memory(&mut caller, get)?;
        let wasi = get(mem.data_and_store_mut(&mut caller).1);
        match wasi.table.delegated(fd, Errno::NOTDIR) {
            Ok(inner) => inner,
            Err(e) => return Ok(e.raw()),
        }
    };
    raw_call!(caller, get, fd_prestat_dir_name(inner, path, path_len))
}

#[allow(clippy::too_many_arguments)]
async fn path_open<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    dirfd: i32,
    dirflags: i32,
    path: i32,
    path_len: i32,
    oflags: i32,
    rights_base: i64,
    rights_inheriting: i64,
    fdflags: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    let inner_dir = {
        let mem = memory(&mut caller, get)?;
        let wasi = get(mem.data_and_store_mut(&mut caller).1);
        match wasi.table.delegated(dirfd, Errno::NOTDIR) {
            Ok(inner) => inner,
            Err(e) => return Ok(e.raw()),
        }
    };
    let errno = raw_call!(
        caller,
        get,
        path_open(
            inner_dir,
            dirflags,
            path,
            path_len,
            oflags,
            rights_base,
            rights_inheriting,
            fdflags,
            out
        )
        .await
    )?;
    if errno != Errno::SUCCESS.raw() {
        return Ok(errno);
    }
    // wasmtime-wasi wrote its own fd number; give the guest one from Moat's table instead.
    let mem = memory(&mut caller, get)?;
    let (bytes, data) = mem.data_and_store_mut(&mut caller);
    let wasi = get(data);
    let inner = match abi::read_u32(bytes, out as u32) {
        Ok(inner) => inner,
        Err(e) => return Ok(e.raw()),
    };
    match wasi.table.push(Kind::Delegated(inner), false) {
        Ok(fd) => Ok(abi::write_u32(bytes, out as u32, fd)
            .err()
            .unwrap_or(Errno::SUCCESS)
            .raw()),
        Err(e) => {
            drop(raw_call!(caller, get, fd_close(inner as i32).await));
            Ok(e.raw())
        }
    }
}

// --- clocks ---------------------------------------------------------------------------------

impl MoatWasi {
    /// Nanoseconds on clock `id` (monotonic counts from this Keep's start).
    pub(crate) fn clock_now(&self, id: u32) -> Result<u64, Errno> {
        match id {
            abi::clockid::REALTIME => Ok(SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .unwrap_or(0)),
            abi::clockid::MONOTONIC => {
                Ok(u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
            }
            abi::clockid::PROCESS_CPUTIME | abi::clockid::THREAD_CPUTIME => Err(Errno::NOTSUP),
            _ => Err(Errno::INVAL),
        }
    }
}

fn clock_time_get<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    id: i32,
    _precision: i64,
    out: i32,
) -> wasmtime::Result<i32> {
    let mem = memory(&mut caller, get)?;
    let (bytes, data) = mem.data_and_store_mut(&mut caller);
    let r = get(data)
        .clock_now(id as u32)
        .and_then(|now| abi::write_u64(bytes, out as u32, now));
    Ok(r.err().unwrap_or(Errno::SUCCESS).raw())
}

fn clock_res_get<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    id: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    let mem = memory(&mut caller, get)?;
    let (bytes, data) = mem.data_and_store_mut(&mut caller);
    let r = get(data)
        .clock_now(id as u32)
        .and_then(|_| abi::write_u64(bytes, out as u32, 1));
    Ok(r.err().unwrap_or(Errno::SUCCESS).raw())
}

/// What one look at `poll_oneoff`'s subscriptions found.
enum PollNow {
    /// Answered: events written (or an error for the guest, or a trap).
    Done(wasmtime::Result<i32>),
    /// Answered, but the workload has found something ready many times in a row: yield the
    /// thread before returning (see [`POLLS_BEFORE_YIELD`]).
    DoneThenYield(i32),
    /// Nothing ready yet: wait (until the deadline, if any), with these parsed subscriptions.
    Wait(Vec<crate::poll::Subscription>, Option<std::time::Instant>),
}

fn poll_oneoff_now<T: 'static>(
    caller: &mut Caller<'_, T>,
    get: impl GetWasi<T>,
    subs: i32,
    events: i32,
    nsubs: i32,
    nevents: i32,
) -> PollNow {
    let mem = match memory(caller, get) {
        Ok(mem) => mem,
        Err(trap) => return PollNow::Done(Err(trap)),
    };
    let (bytes, data) = mem.data_and_store_mut(&mut *caller);
    let wasi = get(data);
    let mut subscriptions = std::mem::take(&mut wasi.poll_subscriptions);
    let parsed = crate::poll::parse(
        wasi,
        bytes,
        subs as u32,
        events as u32,
        nsubs as u32,
        nevents as u32,
        &mut subscriptions,
    );
    if let Err(e) = parsed {
        wasi.keep_subscriptions(subscriptions);
        return PollNow::Done(Ok(e.raw()));
    }
    match crate::poll::check(wasi, &subscriptions) {
        crate::poll::Outcome::Ready(ready) => {
            wasi.keep_subscriptions(subscriptions);
            match answer_poll(wasi, bytes, events, nevents, &ready) {
                (errno, true) => PollNow::DoneThenYield(errno),
                (errno, false) => PollNow::Done(Ok(errno)),
            }
        }
        crate::poll::Outcome::Wait(deadline) => {
            wasi.polls_without_wait = 0;
            PollNow::Wait(subscriptions, deadline)
        }
    }
}

/// Write the ready events and count the answer towards the next yield: the errno, and whether
/// to yield the thread before returning it.
fn answer_poll(
    wasi: &mut MoatWasi,
    bytes: &mut [u8],
    events: i32,
    nevents: i32,
    ready: &[crate::poll::Event],
) -> (i32, bool) {
    let r = crate::poll::write_events(bytes, events as u32, nevents as u32, ready);
    let errno = r.err().unwrap_or(Errno::SUCCESS).raw();
    wasi.polls_without_wait += 1;
    let then_yield = wasi.polls_without_wait >= POLLS_BEFORE_YIELD;
    if then_yield {
        wasi.polls_without_wait = 0;
    }
    (errno, then_yield)
}

/// `poll_oneoff` once nothing was ready at the first look: wait for a guest notification or
/// the earliest clock deadline, and look again.
async fn poll_oneoff_wait<T: Send + 'static>(
    mut caller: Caller<'_, T>,
    get: impl GetWasi<T>,
    subscriptions: Vec<crate::poll::Subscription>,
    mut deadline: Option<std::time::Instant>,
    events: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    loop {
        // A change since the first look already left a permit here: nothing is missed.
        let notify = {
            let mem = memory(&mut caller, get)?;
            get(mem.data_and_store_mut(&mut caller).1)
                .guest_notify
                .clone()
        };
        match deadline {
            Some(at) => {
                let _ = tokio::time::timeout_at(at.into(), notify.notified()).await;
            }
            None => notify.notified().await,
        }
        let mem = memory(&mut caller, get)?;
        let (bytes, data) = mem.data_and_store_mut(&mut caller);
        let wasi = get(data);
        match crate::poll::check(wasi, &subscriptions) {
            crate::poll::Outcome::Ready(ready) => {
                let (errno, then_yield) = answer_poll(wasi, bytes, events, nevents, &ready);
                // A trap or a cancelled call just drops the buffer.
                wasi.keep_subscriptions(subscriptions);
                return if then_yield {
                    yield_then(errno).await
                } else {
                    Ok(errno)
                };
            }
            crate::poll::Outcome::Wait(next) => {
                wasi.polls_without_wait = 0;
                deadline = next;
            }
        }
    }
}

/// Yield the thread, then answer `errno`. Socket tasks share the workload's thread and run only
/// while it waits; a workload that always finds something ready lets them run here, so reads
/// keep arriving.
async fn yield_then(errno: i32) -> wasmtime::Result<i32> {
    tokio::task::yield_now().await;
    Ok(errno)
}

impl MoatWasi {
    /// Keep `poll_oneoff`'s subscription buffer for the next call, unless one huge call grew
    /// it: that memory goes back rather than staying with the Keep for good. (`parse` clears
    /// it before use.)
    fn keep_subscriptions(&mut self, buffer: Vec<crate::poll::Subscription>) {
        if buffer.capacity() <= KEPT_SUBSCRIPTIONS {
            self.poll_subscriptions = buffer;
        }
    }
}
