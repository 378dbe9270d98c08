//! The object-safe traits that protocols, transports and spawners implement.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Address, ChildFd, CloseReason, ProcessEnd, PtySize, Signal, SpawnError, SpawnSpec,
    TransportError,
};

/// A producer of data that a consumer can pause, resume and stop (Twisted's `IPushProducer`).
///
/// A transport calls these methods on a producer registered with
/// [`Transport::register_producer`]; a process transport is itself a producer of its child's
/// output.
///
/// ```
/// use process_transport_api::PushProducer;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// /// Reads a file and writes it to a transport; pauses while the transport's buffer is full.
/// #[derive(Default)]
/// struct FileSender { paused: AtomicBool }
///
/// impl PushProducer for FileSender {
///     fn pause_producing(&self) { self.paused.store(true, Ordering::SeqCst) }
///     fn resume_producing(&self) { self.paused.store(false, Ordering::SeqCst) }
///     fn stop_producing(&self) {}
/// }
///
/// let sender = FileSender::default();
/// sender.pause_producing();
/// assert!(sender.paused.load(Ordering::SeqCst));
/// ```
pub trait PushProducer: Send + Sync {
    /// Stop producing until [`resume_producing`](Self::resume_producing).
    fn pause_producing(&self);
    /// Produce again after [`pause_producing`](Self::pause_producing); for a pull producer,
    /// produce the next piece.
    fn resume_producing(&self);
    /// Stop for good.
    fn stop_producing(&self);
}

/// A byte stream to a peer (Twisted's `ITransport` with `IConsumer`).
///
/// Code that writes is written against `&dyn Transport` and runs on any transport:
///
/// ```
/// use process_transport_api::{Transport, TransportError};
///
/// fn send_lines(transport: &dyn Transport, lines: &[&str]) -> Result<(), TransportError> {
///     for line in lines {
///         transport.write_sequence(&[line.as_bytes(), b"\n"])?;
///     }
///     transport.lose_connection();
///     Ok(())
/// }
/// # let _ = send_lines;
/// ```
pub trait Transport: Send + Sync {
    /// Queues `data` for the peer, in order after everything written before.
    fn write(&self, data: &[u8]) -> Result<(), TransportError>;
    /// Queues the pieces of `data` in order, as one write of their concatenation. The
    /// default joins them and calls [`write`](Self::write).
    fn write_sequence(&self, data: &[&[u8]]) -> Result<(), TransportError> {
        self.write(&data.concat())
    }
    /// Queues `data` as [`write`](Self::write) does, handing the buffer over instead of
    /// lending it: a transport that must keep what the peer cannot take yet keeps this buffer
    /// rather than a copy of it, so a large write costs no copy in this process. Records,
    /// mocks and cassettes see a `write` of the same bytes. The default calls
    /// [`write`](Self::write).
    ///
    /// ```
    /// use process_transport_api::{Transport, TransportError};
    ///
    /// /// Sends a payload built for this one write: the transport keeps it, not a copy.
    /// fn send_file(transport: &dyn Transport, contents: Vec<u8>) -> Result<(), TransportError> {
    ///     transport.write_owned(contents)?;
    ///     transport.lose_connection();
    ///     Ok(())
    /// }
    /// # let _ = send_file;
    /// ```
    fn write_owned(&self, data: Vec<u8>) -> Result<(), TransportError> {
        self.write(&data)
    }
    /// Closes the connection once the queued data is written.
    fn lose_connection(&self);
    /// Closes the connection now, dropping queued data.
    fn abort_connection(&self);
    /// This end's address.
    fn host(&self) -> Address;
    /// The other end's address.
    fn peer(&self) -> Address;
    /// Registers `producer` to be paused while the write buffer is full (`streaming`, a push
    /// producer) or resumed each time it drains (a pull producer).
    fn register_producer(
        &self,
        producer: Arc<dyn PushProducer>,
        streaming: bool,
    ) -> Result<(), TransportError>;
    /// Forgets the registered producer.
    fn unregister_producer(&self) -> Result<(), TransportError>;
}

/// The transport of one child process (Twisted's `IProcessTransport`).
///
/// As a [`Transport`], `write` goes to the child's stdin. As a [`PushProducer`], pausing
/// stops the delivery of the child's output until resumed.
///
/// ```
/// use process_transport_api::{ProcessEnd, ProcessTransport, Signal, TransportError};
///
/// /// Asks the child to stop, then waits for its end.
/// async fn stop(transport: &dyn ProcessTransport) -> ProcessEnd {
///     transport.close_stdin();
///     match transport.signal_process(Signal::Term) {
///         Ok(()) | Err(TransportError::ProcessExitedAlready) => {}
///         Err(other) => panic!("cannot signal: {other}"),
///     }
///     transport.ended().await
/// }
/// # let _ = stop;
/// ```
#[async_trait]
pub trait ProcessTransport: Transport + PushProducer {
    /// The child's pid, from the spawn until its exit is known; `None` from then on.
    fn pid(&self) -> Option<u32>;
    /// Closes the child's stdin once the buffered bytes reach it. The default calls
    /// [`close_child_fd`](Self::close_child_fd) with `ChildFd::STDIN`.
    fn close_stdin(&self) {
        self.close_child_fd(ChildFd::STDIN);
    }
    /// Closes the pipe of the child's stdout; its output is no longer read. The default calls
    /// [`close_child_fd`](Self::close_child_fd) with `ChildFd::STDOUT`.
    fn close_stdout(&self) {
        self.close_child_fd(ChildFd::STDOUT);
    }
    /// Closes the pipe of the child's stderr; its output is no longer read. The default calls
    /// [`close_child_fd`](Self::close_child_fd) with `ChildFd::STDERR`.
    fn close_stderr(&self) {
        self.close_child_fd(ChildFd::STDERR);
    }
    /// Closes the pipe of child fd `fd`; no effect if it is unknown or already closed.
    fn close_child_fd(&self, fd: ChildFd);
    /// Queues `data` for child fd `fd`, which must be a pipe the parent writes.
    fn write_to_child(&self, fd: ChildFd, data: &[u8]) -> Result<(), TransportError>;
    /// Sends `signal` to the child.
    fn signal_process(&self, signal: Signal) -> Result<(), TransportError>;
    /// Changes the size of the child's pseudo-terminal (spawned with
    /// [`use_pty`](crate::SpawnSpec::use_pty)); the kernel tells the child's foreground
    /// processes with `SIGWINCH`. Succeeds, and does nothing, once the terminal is closed.
    /// The default, for transports without terminals, is `Err(TransportError::NoTerminal)`.
    fn resize_pty(&self, size: PtySize) -> Result<(), TransportError> {
        let _ = size;
        Err(TransportError::NoTerminal)
    }
    /// Resolves with the end reason once `process_ended` was delivered.
    async fn ended(&self) -> ProcessEnd;
}

/// The user's side of a byte-stream connection (Twisted's `IProtocol`).
///
/// ```
/// use process_transport_api::{Protocol, Transport};
/// use std::sync::Arc;
///
/// /// Writes back what it receives.
/// #[derive(Default)]
/// struct Echo { transport: Option<Arc<dyn Transport>> }
///
/// impl Protocol for Echo {
///     fn make_connection(&mut self, transport: Arc<dyn Transport>) {
///         self.transport = Some(transport);
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         if let Some(transport) = &self.transport {
///             let _ = transport.write(data);
///         }
///     }
/// }
/// # let _ = Echo::default();
/// ```
pub trait Protocol: Any + Send {
    /// Called once, before anything else, with the connection's transport.
    fn make_connection(&mut self, transport: Arc<dyn Transport>);
    /// Called with each chunk of bytes from the peer.
    fn data_received(&mut self, _data: &[u8]) {}
    /// Called once when the connection is closed.
    fn connection_lost(&mut self, _reason: CloseReason) {}
}

/// The user's side of one child process (Twisted's `IProcessProtocol`).
///
/// The transport calls these methods in the order the crate documentation's "order of events"
/// gives; never two at once, never one from inside another. Every method but
/// `make_connection` has an empty default.
///
/// ```
/// use process_transport_api::{ChildFd, ProcessEnd, ProcessProtocol, ProcessTransport};
/// use std::sync::Arc;
///
/// /// Keeps stderr and the exit code.
/// #[derive(Default)]
/// struct Errors { stderr: Vec<u8>, code: Option<i32> }
///
/// impl ProcessProtocol for Errors {
///     fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>) {
///         transport.close_stdin();
///     }
///     fn child_data_received(&mut self, fd: ChildFd, data: &[u8]) {
///         if fd == ChildFd::STDERR {
///             self.stderr.extend_from_slice(data);
///         }
///     }
///     fn process_ended(&mut self, end: ProcessEnd) {
///         self.code = end.exit_code();
///     }
/// }
///
/// let mut errors = Errors::default();
/// errors.child_data_received(ChildFd::STDERR, b"oops");
/// errors.process_ended(ProcessEnd::from_exit_code(2));
/// assert_eq!((errors.stderr.as_slice(), errors.code), (&b"oops"[..], Some(2)));
/// ```
pub trait ProcessProtocol: Any + Send {
    /// Called once, before anything else, during the spawn.
    fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>);
    /// Called with each chunk of bytes the child wrote on a pipe the parent reads.
    fn child_data_received(&mut self, _fd: ChildFd, _data: &[u8]) {}
    /// Called once per pipe in the fd map, after that pipe's last data.
    fn child_connection_lost(&mut self, _fd: ChildFd) {}
    /// Called once when the child's exit is known.
    fn process_exited(&mut self, _reason: ProcessEnd) {}
    /// Called once, last: after `process_exited` and every `child_connection_lost`.
    fn process_ended(&mut self, _reason: ProcessEnd) {}
}

/// Starts child processes (Twisted's `IReactorProcess`).
///
/// Code that starts processes takes `&dyn ProcessSpawner`, so a test can hand it a fake or a
/// mock and production the real spawner:
///
/// ```
/// use process_transport_api::{ProcessEnd, ProcessProtocol, ProcessSpawner, SpawnError, SpawnSpec};
///
/// async fn run(spawner: &dyn ProcessSpawner, protocol: Box<dyn ProcessProtocol>) -> Result<ProcessEnd, SpawnError> {
///     let transport = spawner.spawn_process(protocol, SpawnSpec::new("true")).await?;
///     Ok(transport.ended().await)
/// }
/// # let _ = run;
/// ```
#[async_trait]
pub trait ProcessSpawner: Send + Sync {
    /// Starts the child `spec` describes and connects `protocol` to it: `make_connection`
    /// is called before this returns. On error nothing is delivered to `protocol`.
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError>;

    /// `true` when this spawner takes a file the caller gives a child as the child's own fd
    /// ([`ChildFdMapping::Inherit`]`(n)`), as real processes do. `false` (the default) when it
    /// wants such bytes to cross its transport instead: a double, whose children live in
    /// memory, or a recorder, which must see them to record them. The command front door then
    /// gives the child a pipe and copies the file through it, so the file ends up the same on
    /// every spawner. A spawner that says `true` must hand every `Inherit(n)` over to the
    /// child as the parent's fd `n`; the contract suite checks it.
    ///
    /// [`ChildFdMapping::Inherit`]: crate::ChildFdMapping::Inherit
    fn inherits_parent_fds(&self) -> bool {
        false
    }
}
