//! The object-safe traits that protocols, transports and spawners implement.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Address, ChildFd, CloseReason, ProcessEnd, Signal, SpawnError, SpawnSpec, TransportError,
};

/// A producer of data that a consumer can pause, resume and stop (Twisted's `IPushProducer`).
///
/// A transport calls these methods on a producer registered with
/// [`Transport::register_producer`]; a process transport is itself a producer of its child's
/// output.
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
pub trait Transport: Send + Sync {
    /// Queues `data` for the peer, in order after everything written before.
    fn write(&self, data: &[u8]) -> Result<(), TransportError>;
    /// Queues the pieces of `data` in order, as one write of their concatenation.
    fn write_sequence(&self, data: &[&[u8]]) -> Result<(), TransportError>;
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
#[async_trait]
pub trait ProcessTransport: Transport + PushProducer {
    /// The child's pid, from the spawn until its exit is known; `None` from then on.
    fn pid(&self) -> Option<u32>;
    /// Closes the child's stdin once the buffered bytes reach it.
    fn close_stdin(&self);
    /// Closes the pipe of the child's stdout; its output is no longer read.
    fn close_stdout(&self);
    /// Closes the pipe of the child's stderr; its output is no longer read.
    fn close_stderr(&self);
    /// Closes the pipe of child fd `fd`; no effect if it is unknown or already closed.
    fn close_child_fd(&self, fd: ChildFd);
    /// Queues `data` for child fd `fd`, which must be a pipe the parent writes.
    fn write_to_child(&self, fd: ChildFd, data: &[u8]) -> Result<(), TransportError>;
    /// Sends `signal` to the child.
    fn signal_process(&self, signal: Signal) -> Result<(), TransportError>;
    /// Resolves with the end reason once `process_ended` was delivered.
    async fn ended(&self) -> ProcessEnd;
}

/// The user's side of a byte-stream connection (Twisted's `IProtocol`).
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
/// gives; never two at once, never one from inside another.
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
#[async_trait]
pub trait ProcessSpawner: Send + Sync {
    /// Starts the child `spec` describes and connects `protocol` to it: `make_connection`
    /// is called before this returns. On error nothing is delivered to `protocol`.
    async fn spawn_process(
        &self,
        protocol: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError>;
}
