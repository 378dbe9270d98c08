//! The transport of one real child process: the shared model fed by the pumps.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use process_transport_api::{
    implement::ProcessModel, Address, ChildFd, ProcessEnd, ProcessTransport, PtySize, PushProducer,
    Signal, Transport, TransportError,
};

use crate::shared::{Payload, Shared};
use crate::sys;

/// The [`ProcessTransport`] of a real child process, as [`RealSpawner`](crate::RealSpawner)
/// returns it.
///
/// Writes are buffered and written without blocking by a task per pipe; above the high-water
/// mark a registered push producer is paused, and resumed once the buffer drains.
/// `close_stdin` flushes, then closes. Signals go through a pidfd on Linux, and by pid on the
/// portable path only until the child is reaped, so a signal can never reach another process
/// that reused the pid. Events reach the protocol in the order of
/// the api crate's "order of events", one at a time. Clones share the process.
#[derive(Clone)]
pub struct RealProcessTransport {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for RealProcessTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealProcessTransport")
            .field("model", &self.shared.lock().model)
            .finish_non_exhaustive()
    }
}

impl RealProcessTransport {
    /// The end reason, once `process_ended` was delivered.
    pub fn ended_now(&self) -> Option<ProcessEnd> {
        self.shared.dispatcher.ended_now()
    }

    fn write_payload(&self, fd: ChildFd, payload: Payload<'_>) -> Result<(), TransportError> {
        let buffered = self
            .shared
            .act(|state, out| state.write(fd, payload, out))?;
        if buffered {
            self.shared.wake(fd);
        }
        Ok(())
    }
}

impl Transport for RealProcessTransport {
    fn write(&self, data: &[u8]) -> Result<(), TransportError> {
        self.write_to_child(ChildFd::STDIN, data)
    }

    /// Keeps `data` as the stdin buffer when the pipe cannot take it all and nothing else is
    /// buffered: no copy.
    fn write_owned(&self, data: Vec<u8>) -> Result<(), TransportError> {
        self.write_payload(ChildFd::STDIN, Payload::Owned(data))
    }

    fn lose_connection(&self) {
        self.shared.act(|state, out| {
            for fd in ProcessModel::LOSE_CONNECTION_ORDER {
                state.close_child_fd(fd, out);
            }
        });
        self.shared.wake_all();
    }

    /// Drops what is buffered for stdin, then closes as `lose_connection` does.
    fn abort_connection(&self) {
        self.shared.act(|state, out| {
            if let Some(buffer) = state.buffers.get_mut(&ChildFd::STDIN) {
                buffer.clear();
                state.model.set_buffered(ChildFd::STDIN, 0, out);
            }
        });
        self.lose_connection();
    }

    fn host(&self) -> Address {
        Address::Process
    }

    fn peer(&self) -> Address {
        Address::Process
    }

    fn register_producer(
        &self,
        producer: Arc<dyn PushProducer>,
        streaming: bool,
    ) -> Result<(), TransportError> {
        self.shared
            .act(|state, out| state.model.register_producer(producer, streaming, out))
    }

    fn unregister_producer(&self) -> Result<(), TransportError> {
        self.shared.act(|state, _| {
            let producer = state.model.unregister_producer()?;
            self.shared.dispatcher.forget_producer(&producer);
            Ok(())
        })
    }
}

impl PushProducer for RealProcessTransport {
    /// Stops reading the child's output; the exit is still reported.
    fn pause_producing(&self) {
        self.shared.lock().model.set_reading_paused(true);
        self.shared.wake_all();
    }

    fn resume_producing(&self) {
        self.shared.lock().model.set_reading_paused(false);
        self.shared.wake_all();
    }

    /// As with Twisted's process transports, stopping is losing the connection.
    fn stop_producing(&self) {
        self.lose_connection();
    }
}

#[async_trait]
impl ProcessTransport for RealProcessTransport {
    fn pid(&self) -> Option<u32> {
        self.shared.lock().model.pid()
    }

    fn close_child_fd(&self, fd: ChildFd) {
        self.shared.act(|state, out| state.close_child_fd(fd, out));
        self.shared.wake(fd);
    }

    fn write_to_child(&self, fd: ChildFd, data: &[u8]) -> Result<(), TransportError> {
        self.write_payload(fd, Payload::Lent(data))
    }

    /// Sets the terminal's size (`TIOCSWINSZ` on its master side); the kernel sends
    /// `SIGWINCH` to the child's foreground process group. `Ok` and nothing done once the
    /// parent closed both of its fds of the terminal.
    fn resize_pty(&self, size: PtySize) -> Result<(), TransportError> {
        let state = self.shared.lock();
        if state.terminal.is_none() {
            return Err(TransportError::NoTerminal);
        }
        match (
            state.senders.get(&ChildFd::STDIN),
            state.receivers.get(&ChildFd::STDOUT),
        ) {
            (Some(sender), _) => sys::resize(&**sender, size),
            (None, Some(receiver)) => sys::resize(receiver, size),
            (None, None) => Ok(()),
        }
    }

    /// Between the child's exit and the delivery of `process_exited` the signal is accepted
    /// and goes nowhere, as a signal to a process that just died would.
    ///
    /// On Windows only [`Signal::Kill`] (or its number, 9) exists (`TerminateProcess`); any
    /// other signal is [`TransportError::NoSuchSignalOnWindows`], whatever the child's state,
    /// and a number that is no signal anywhere is `InvalidSignal`, as on unix.
    fn signal_process(&self, signal: Signal) -> Result<(), TransportError> {
        if cfg!(windows) && signal.is_valid() && signal.number() != Signal::Kill.number() {
            return Err(TransportError::NoSuchSignalOnWindows(signal));
        }
        {
            let state = self.shared.lock();
            state.model.check_signal(signal)?;
            if !state.model.signal_reaches_child() {
                return Ok(());
            }
        }
        let child = self.shared.child_slot();
        // Gone once the child is reaped: its pid may belong to another process by now, and
        // `process_exited` is on its way.
        let Some(child) = child.as_ref() else {
            return Ok(());
        };
        match child.signal(signal) {
            Err(err) if sys::is_gone(&err) => Ok(()),
            result => result.map_err(TransportError::Io),
        }
    }

    /// Resolves after `process_ended` was delivered and every pipe and the pidfd of the
    /// child are closed in this process (and, on the portable path, the child reaped).
    async fn ended(&self) -> ProcessEnd {
        // The pumps first: the last one delivers `process_ended` before it is gone, so this
        // task is woken once, not once for the end and again for the pump.
        loop {
            let done = self.shared.pumps_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.shared.live_pumps.load(Ordering::SeqCst) == 0 {
                break;
            }
            done.await;
        }
        self.shared.dispatcher.ended().await
    }
}
