//! The far side of a [`Child`](crate::Child): the protocol that turns a transport's events
//! into buffered bytes and an exit, and the `AsyncRead` / `AsyncWrite` handles over them.
//!
//! One [`Shared`] per child holds what the protocol ([`Bridge`]) has been shown. The handles
//! hold the transport strongly and the protocol holds only the shared state, so no reference
//! cycle outlives the child.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use process_transport_api::{
    ChildFd, ProcessEnd, ProcessProtocol, ProcessTransport, PushProducer, TransportError,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many unread bytes one output pipe may hold before the transport is paused
/// (`pause_producing`); it is resumed once every reader is back under a quarter of this.
pub const READ_BUFFER_LIMIT: usize = 256 * 1024;

/// The unread output of one pipe, and who waits for it.
#[derive(Default)]
struct ReadSide {
    chunks: VecDeque<Vec<u8>>,
    /// How far into the first chunk the reader got.
    offset: usize,
    buffered: usize,
    eof: bool,
    /// The reader was dropped: its output is discarded.
    dropped: bool,
    waker: Option<Waker>,
}

/// The wakers a protocol callback takes under the lock, woken once it is released: a woken
/// reader that runs at once on another thread then finds the lock free.
#[derive(Default)]
struct Wakes(Vec<Waker>);

impl Wakes {
    fn take(&mut self, waker: &mut Option<Waker>) {
        self.0.extend(waker.take());
    }
}

impl Drop for Wakes {
    fn drop(&mut self) {
        self.0.drain(..).for_each(Waker::wake);
    }
}

/// What the stdin writer must know of the transport's back-pressure.
#[derive(Default)]
struct WriteSide {
    /// The producer is registered with the transport.
    registered: bool,
    /// The transport asked the producer to pause: its buffer is over the high-water mark.
    paused: bool,
    /// The transport stopped the producer: stdin is closed.
    stopped: bool,
    waker: Option<Waker>,
}

#[derive(Default)]
struct State {
    /// The unread output of each pipe the parent reads, by child fd.
    out: BTreeMap<ChildFd, ReadSide>,
    stdin: WriteSide,
    /// The readers want the transport paused: one fell behind.
    pause_wanted: bool,
    /// What the transport was last told.
    paused: bool,
    /// A thread is telling the transport; it checks again when done.
    applying: bool,
    exit: Option<ProcessEnd>,
    /// The pid the transport gave when it connected, before any event.
    pid: Option<u32>,
    /// The protocol was dropped before the exit was shown (a transport that gave up on it).
    abandoned: bool,
    exit_wakers: Vec<Waker>,
}

/// The state one child's handles share with its protocol.
#[derive(Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// The transport, once the spawn returned it; the protocol reaches it through this to
    /// pause and resume, without keeping it alive.
    transport: Mutex<Option<Weak<dyn ProcessTransport>>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Shared")
            .field("exit", &state.exit)
            .field("paused", &state.paused)
            .field("pause_wanted", &state.pause_wanted)
            .finish()
    }
}

impl State {
    /// The read side of `fd`, one of the fds the shared state was made for.
    fn side(&mut self, fd: ChildFd) -> &mut ReadSide {
        self.out.entry(fd).or_default()
    }
}

impl Shared {
    /// The state of a child whose pipes the parent reads are `read_fds`.
    pub(crate) fn new(read_fds: impl IntoIterator<Item = ChildFd>) -> Self {
        let shared = Shared::default();
        shared.lock().out = read_fds
            .into_iter()
            .map(|fd| (fd, ReadSide::default()))
            .collect();
        shared
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_transport(&self, transport: &Arc<dyn ProcessTransport>) {
        *self
            .transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::downgrade(transport));
    }

    fn transport(&self) -> Option<Arc<dyn ProcessTransport>> {
        self.transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(Weak::upgrade)
    }

    /// The pid the transport gave when it connected.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.lock().pid
    }

    /// The exit, once the protocol was shown it.
    pub(crate) fn exit(&self) -> io::Result<Option<ProcessEnd>> {
        let state = self.lock();
        match (state.exit, state.abandoned) {
            (Some(end), _) => Ok(Some(end)),
            (None, true) => Err(abandoned()),
            (None, false) => Ok(None),
        }
    }

    pub(crate) fn poll_exit(&self, cx: &mut Context<'_>) -> Poll<io::Result<ProcessEnd>> {
        let mut state = self.lock();
        if let Some(end) = state.exit {
            return Poll::Ready(Ok(end));
        }
        if state.abandoned {
            return Poll::Ready(Err(abandoned()));
        }
        if !state.exit_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.exit_wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Asks for the transport to be resumed when no reader is over a quarter of the limit.
    fn resume_if_drained<'a>(&'a self, mut state: MutexGuard<'a, State>) {
        let low = READ_BUFFER_LIMIT / 4;
        if state.pause_wanted && state.out.values().all(|side| side.buffered <= low) {
            state.pause_wanted = false;
            self.apply_pause(state);
        }
    }

    /// Brings the transport to the wanted paused state. The calls are made without the lock
    /// (a resume may deliver held output to the protocol on this very thread), and one thread
    /// at a time makes them; a change wanted meanwhile is applied by that thread's next turn.
    fn apply_pause<'a>(&'a self, mut state: MutexGuard<'a, State>) {
        let Some(transport) = self.transport() else {
            return;
        };
        while !state.applying && state.paused != state.pause_wanted {
            let pause = state.pause_wanted;
            state.applying = true;
            drop(state);
            if pause {
                transport.pause_producing();
            } else {
                transport.resume_producing();
            }
            state = self.lock();
            state.paused = pause;
            state.applying = false;
        }
    }
}

fn abandoned() -> io::Error {
    io::Error::other(
        "the transport dropped the child's protocol before reporting how the child ended",
    )
}

/// The protocol a [`Command`](crate::Command) spawns with.
pub(crate) struct Bridge(pub(crate) Arc<Shared>);

impl ProcessProtocol for Bridge {
    /// Asks the pid once, here: a fake's child may exit before the spawn returns, and the
    /// transport's pid is gone with the exit.
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
        self.0.lock().pid = transport.pid();
    }

    fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
        // Copied before the lock, which the reader takes to read.
        let data = data.to_vec();
        let mut wakes = Wakes::default();
        let mut state = self.0.lock();
        let Some(side) = state.out.get_mut(&fd) else {
            return;
        };
        if side.dropped || data.is_empty() {
            return;
        }
        side.buffered += data.len();
        side.chunks.push_back(data);
        wakes.take(&mut side.waker);
        if side.buffered >= READ_BUFFER_LIMIT && !state.pause_wanted {
            // Before the spawn returned the transport (a fake's start output) there is
            // nothing to pause: that output is in memory already.
            state.pause_wanted = true;
            self.0.apply_pause(state);
        }
    }

    fn child_connection_lost(&mut self, fd: ChildFd) {
        let mut wakes = Wakes::default();
        let mut state = self.0.lock();
        if fd == ChildFd::STDIN {
            state.stdin.stopped = true;
            wakes.take(&mut state.stdin.waker);
        } else if let Some(side) = state.out.get_mut(&fd) {
            side.eof = true;
            wakes.take(&mut side.waker);
        }
    }

    fn process_exited(&mut self, reason: ProcessEnd) {
        let mut state = self.0.lock();
        state.exit = Some(reason);
        let wakes = Wakes(std::mem::take(&mut state.exit_wakers));
        drop(state);
        drop(wakes);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.abandoned = true;
        let mut wakes = Wakes(std::mem::take(&mut state.exit_wakers));
        for side in state.out.values_mut() {
            wakes.take(&mut side.waker);
        }
        wakes.take(&mut state.stdin.waker);
        drop(state);
        drop(wakes);
    }
}

/// One output pipe of the child, read as an `AsyncRead`.
struct Reader {
    fd: ChildFd,
    shared: Arc<Shared>,
    transport: Arc<dyn ProcessTransport>,
}

impl Reader {
    /// Copies buffered bytes into `buf`; end of file once the pipe is lost and drained.
    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        let abandoned = state.abandoned;
        let side = state.side(self.fd);
        if side.buffered == 0 {
            if side.eof {
                return Poll::Ready(Ok(()));
            }
            if abandoned {
                return Poll::Ready(Err(abandoned_pipe(self.fd)));
            }
            side.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        while buf.remaining() > 0 {
            let Some(chunk) = side.chunks.front() else {
                break;
            };
            let rest = &chunk[side.offset..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            side.offset += n;
            side.buffered -= n;
            if side.offset == chunk.len() {
                side.chunks.pop_front();
                side.offset = 0;
            }
        }
        self.shared.resume_if_drained(state);
        Poll::Ready(Ok(()))
    }

    /// Moves everything the pipe carries into `out`, until its end of file.
    pub(crate) fn poll_drain(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<u8>,
    ) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        let abandoned = state.abandoned;
        let side = state.side(self.fd);
        for (i, chunk) in side.chunks.drain(..).enumerate() {
            let skip = if i == 0 { side.offset } else { 0 };
            if out.is_empty() && skip == 0 {
                *out = chunk;
            } else {
                out.extend_from_slice(&chunk[skip..]);
            }
        }
        side.offset = 0;
        side.buffered = 0;
        let result = if side.eof {
            Poll::Ready(Ok(()))
        } else if abandoned {
            Poll::Ready(Err(abandoned_pipe(self.fd)))
        } else {
            side.waker = Some(cx.waker().clone());
            Poll::Pending
        };
        self.shared.resume_if_drained(state);
        result
    }
}

fn abandoned_pipe(fd: ChildFd) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the transport dropped the child's protocol before the end of child fd {fd}"),
    )
}

impl Drop for Reader {
    /// Closes the pipe, as dropping tokio's handle does: a child that writes more gets
    /// `SIGPIPE`. What was buffered is discarded.
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let side = state.side(self.fd);
        side.dropped = true;
        side.chunks.clear();
        side.buffered = 0;
        let open = !side.eof;
        self.shared.resume_if_drained(state);
        if open {
            self.transport.close_child_fd(self.fd);
        }
    }
}

macro_rules! reader {
    ($(#[$doc:meta])* $name:ident, $fd:expr) => {
        reader!($(#[$doc])* $name);

        impl $name {
            pub(crate) fn new(shared: Arc<Shared>, transport: Arc<dyn ProcessTransport>) -> Self {
                $name(Reader { fd: $fd, shared, transport })
            }

            pub(crate) fn poll_drain(
                &self,
                cx: &mut Context<'_>,
                out: &mut Vec<u8>,
            ) -> Poll<io::Result<()>> {
                self.0.poll_drain(cx, out)
            }
        }
    };
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(Reader);

        impl AsyncRead for $name {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.0.poll_read(cx, buf)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

reader!(
    /// The child's stdout, as tokio's `ChildStdout`: an `AsyncRead` that ends at the pipe's
    /// end of file. A reader that falls [`READ_BUFFER_LIMIT`] bytes behind pauses the
    /// transport, so the child blocks as it would on a full pipe. Dropping it closes the pipe.
    ChildStdout,
    ChildFd::STDOUT
);
reader!(
    /// The child's stderr, as tokio's `ChildStderr`; see [`ChildStdout`].
    ChildStderr,
    ChildFd::STDERR
);
reader!(
    /// A pipe the child writes on an fd of its own (3 or above, set with
    /// [`Command::child_fd`](crate::Command::child_fd)), read as [`ChildStdout`] is; from
    /// [`Child::take_output`](crate::Child::take_output).
    ChildOutput
);

impl ChildOutput {
    pub(crate) fn on(
        fd: ChildFd,
        shared: Arc<Shared>,
        transport: Arc<dyn ProcessTransport>,
    ) -> Self {
        ChildOutput(Reader {
            fd,
            shared,
            transport,
        })
    }

    /// The child fd this pipe carries.
    pub fn fd(&self) -> ChildFd {
        self.0.fd
    }
}

/// How much one write hands the transport at most: a larger write is taken in parts, each
/// waiting for the transport to be under its high-water mark, so the transport never holds
/// more than the mark and one part.
const WRITE_CHUNK: usize = 64 * 1024;

/// The stdin writer's producer: the transport pauses it above its high-water mark.
struct StdinProducer(Arc<Shared>);

impl StdinProducer {
    fn update(&self, change: impl FnOnce(&mut WriteSide)) {
        let mut wakes = Wakes::default();
        let mut state = self.0.lock();
        change(&mut state.stdin);
        wakes.take(&mut state.stdin.waker);
    }
}

impl PushProducer for StdinProducer {
    fn pause_producing(&self) {
        self.update(|stdin| stdin.paused = true);
    }

    fn resume_producing(&self) {
        self.update(|stdin| stdin.paused = false);
    }

    fn stop_producing(&self) {
        self.update(|stdin| stdin.stopped = true);
    }
}

/// The child's stdin, as tokio's `ChildStdin`: an `AsyncWrite` into the transport.
///
/// A write waits while the transport's stdin buffer is over its high-water mark (the
/// transport pauses this writer as a push producer), so a child that reads slowly slows the
/// writer down. A write into a pipe whose loss the transport reported fails with
/// `io::ErrorKind::BrokenPipe`, as a write into a closed pipe does; `shutdown` and drop close
/// stdin once what is buffered reached the child.
pub struct ChildStdin {
    shared: Arc<Shared>,
    transport: Arc<dyn ProcessTransport>,
    shut: bool,
}

impl fmt::Debug for ChildStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildStdin")
            .field("shut", &self.shut)
            .finish_non_exhaustive()
    }
}

impl ChildStdin {
    pub(crate) fn new(shared: Arc<Shared>, transport: Arc<dyn ProcessTransport>) -> Self {
        ChildStdin {
            shared,
            transport,
            shut: false,
        }
    }

    /// Ready when the transport takes more; registers the producer on first use.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        if !state.stdin.registered {
            state.stdin.registered = true;
            drop(state);
            let producer = Arc::new(StdinProducer(self.shared.clone()));
            // Refused only when the caller registered a producer of its own on the
            // transport: then that producer governs the pace, and this writer does not wait.
            let _ = self.transport.register_producer(producer, true);
            state = self.shared.lock();
        }
        if state.stdin.paused && !state.stdin.stopped && !state.abandoned {
            state.stdin.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(())
    }

    fn shut_error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the child's stdin was shut down; the write was not sent",
        )
    }
}

/// The io error for a refused call, keeping the transport's error inside.
pub(crate) fn io_error(err: TransportError) -> io::Error {
    let kind = match &err {
        TransportError::ChildFdClosed(_) | TransportError::Closed => io::ErrorKind::BrokenPipe,
        TransportError::UnknownChildFd(_) | TransportError::InvalidSignal(_) => {
            io::ErrorKind::InvalidInput
        }
        TransportError::NoSuchSignalOnWindows(_) => io::ErrorKind::Unsupported,
        TransportError::Io(inner) => inner.kind(),
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, err)
}

impl AsyncWrite for ChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.shut {
            return Poll::Ready(Err(self.shut_error()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.poll_room(cx).is_pending() {
            return Poll::Pending;
        }
        let buf = &buf[..buf.len().min(WRITE_CHUNK)];
        Poll::Ready(
            self.transport
                .write(buf)
                .map(|()| buf.len())
                .map_err(io_error),
        )
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.shut {
            return Poll::Ready(Err(self.shut_error()));
        }
        if self.poll_room(cx).is_pending() {
            return Poll::Pending;
        }
        let mut room = WRITE_CHUNK;
        let slices: Vec<&[u8]> = bufs
            .iter()
            .map(|buf| {
                let take = buf.len().min(room);
                room -= take;
                &buf[..take]
            })
            .filter(|slice| !slice.is_empty())
            .collect();
        let total = WRITE_CHUNK - room;
        Poll::Ready(
            self.transport
                .write_sequence(&slices)
                .map(|()| total)
                .map_err(io_error),
        )
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Waits until the transport's buffer is back under its high-water mark.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shut {
            return Poll::Ready(Ok(()));
        }
        self.poll_room(cx).map(Ok)
    }

    /// Closes stdin: the buffered bytes reach the child first, then end of file.
    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shut {
            self.shut = true;
            self.transport.close_stdin();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for ChildStdin {
    fn drop(&mut self) {
        if !self.shut {
            self.transport.close_stdin();
        }
    }
}
