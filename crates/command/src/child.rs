//! [`Child`]: a started command, as `tokio::process::Child`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::Poll;

use process_transport_api::{ChildFd, ProcessTransport, Signal, TransportError};

use crate::pipes::{ChildOutput, ChildStderr, ChildStdin, ChildStdout, Shared};
use crate::stdio::Running;
use crate::{ExitStatus, Output};

/// A started command: tokio's `Child` over a [`ProcessTransport`].
///
/// The pipes asked for with [`Stdio::piped`](crate::Stdio::piped) are in [`stdin`](Self::stdin),
/// [`stdout`](Self::stdout) and [`stderr`](Self::stderr), to be taken (`child.stdout.take()`)
/// and used as tokio's `AsyncWrite` / `AsyncRead`.
///
/// Signals follow the transport's rule that no call fails because of a change the caller was
/// not shown: until [`wait`](Self::wait) or [`try_wait`](Self::try_wait) returned the status,
/// a kill or signal to a child that already exited is `Ok` and does nothing; after that it is
/// an `InvalidInput` error, as tokio's `start_kill` is.
pub struct Child {
    /// The writer to the child's stdin, when it was piped.
    pub stdin: Option<ChildStdin>,
    /// The reader of the child's stdout, when it was piped.
    pub stdout: Option<ChildStdout>,
    /// The reader of the child's stderr, when it was piped.
    pub stderr: Option<ChildStderr>,
    transport: Arc<dyn ProcessTransport>,
    shared: Arc<Shared>,
    /// The status [`wait`](Self::wait) or [`try_wait`](Self::try_wait) returned.
    status: Option<ExitStatus>,
    /// The copies the stdio asked for (a file on a double, another child's pipe).
    relays: Vec<Running>,
    /// The readers of the pipes on fds 3 and above, until taken.
    outputs: BTreeMap<ChildFd, ChildOutput>,
    kill_on_drop: bool,
}

/// A child's standard pipes, those that are piped.
pub(crate) type Pipes = (Option<ChildStdin>, Option<ChildStdout>, Option<ChildStderr>);

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.id())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("status", &self.status)
            .field("kill_on_drop", &self.kill_on_drop)
            .finish()
    }
}

impl Child {
    pub(crate) fn new(
        transport: Arc<dyn ProcessTransport>,
        shared: Arc<Shared>,
        (stdin, stdout, stderr): Pipes,
        kill_on_drop: bool,
        relays: Vec<Running>,
        outputs: BTreeMap<ChildFd, ChildOutput>,
    ) -> Self {
        Child {
            stdin,
            stdout,
            stderr,
            transport,
            shared,
            status: None,
            relays,
            outputs,
            kill_on_drop,
        }
    }

    /// The child's process id, as tokio's: `Some` until [`wait`](Self::wait) or
    /// [`try_wait`](Self::try_wait) has returned the exit (even when the child has exited
    /// meanwhile), then `None`. The id is the one the transport gave when it connected the
    /// child (`ProcessTransport::pid`, asked once then).
    pub fn id(&self) -> Option<u32> {
        self.status.is_none().then(|| self.shared.pid()).flatten()
    }

    /// Takes the reader of the pipe the child writes on `fd` (3 or above), mapped with
    /// [`Command::child_fd`](crate::Command::child_fd) as `ChildFdMapping::ParentReads`;
    /// `None` for another fd or once taken. Dropping it closes the pipe.
    pub fn take_output(&mut self, fd: u32) -> Option<ChildOutput> {
        self.outputs.remove(&ChildFd(fd))
    }

    /// The transport under this child, for what tokio's `Child` cannot do (writes to other
    /// fds, a producer of one's own).
    pub fn transport(&self) -> Arc<dyn ProcessTransport> {
        self.transport.clone()
    }

    /// Closes stdin (dropping [`stdin`](Self::stdin), as tokio does, so a child reading to
    /// the end of its input can finish) and waits for the child to exit. Waiting again
    /// returns the same status. Where the command copies a child's output into a file or
    /// another child (see [`Stdio`](crate::Stdio)), the wait returns once the copy is done,
    /// so the file holds all of it.
    ///
    /// # Errors
    /// An `io::Error` when the transport gave up on the child before reporting its exit, or
    /// when a copy the stdio asked for failed (a full disk, say).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        if let Some(status) = self.status {
            return Ok(status);
        }
        let end = poll_fn(|cx| self.shared.poll_exit(cx)).await?;
        for relay in std::mem::take(&mut self.relays) {
            relay.finish().await?;
        }
        Ok(*self.status.insert(end.into()))
    }

    /// The status, if the child has exited; `Ok(None)` while it runs. Does not close stdin.
    ///
    /// # Errors
    /// An `io::Error` when the transport gave up on the child before reporting its exit.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.shared.exit()?.map(ExitStatus::from);
        }
        Ok(self.status)
    }

    /// Closes stdin, reads stdout and stderr to their ends (those that are piped and were not
    /// taken) while waiting for the exit, and returns all of it.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let (mut out_done, mut err_done) = (stdout.is_none(), stderr.is_none());
        poll_fn(|cx| {
            if let (Some(reader), false) = (&stdout, out_done) {
                out_done = reader.poll_drain(cx, &mut out)?.is_ready();
            }
            if let (Some(reader), false) = (&stderr, err_done) {
                err_done = reader.poll_drain(cx, &mut err)?.is_ready();
            }
            if out_done && err_done {
                Poll::Ready(Ok::<_, io::Error>(()))
            } else {
                Poll::Pending
            }
        })
        .await?;
        let status = self.wait().await?;
        Ok(Output {
            status,
            stdout: out,
            stderr: err,
        })
    }

    /// Sends `SIGKILL` without waiting for the child to die; `Ok(())` once
    /// [`wait`](Self::wait) or [`try_wait`](Self::try_wait) returned the status, as tokio's
    /// and std's.
    ///
    /// # Errors
    /// The transport's error if the operating system refused the signal.
    pub fn start_kill(&mut self) -> io::Result<()> {
        self.signal(Signal::Kill)
    }

    /// Sends `SIGKILL` and waits for the child to exit.
    ///
    /// # Errors
    /// As [`start_kill`](Self::start_kill) and [`wait`](Self::wait).
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }

    /// Sends `signal` to the child.
    ///
    /// # Errors
    /// As [`start_kill`](Self::start_kill).
    pub fn signal(&mut self, signal: Signal) -> io::Result<()> {
        if self.status.is_some() {
            // The exit was returned: the child is reaped, and the signal has nothing to do.
            return Ok(());
        }
        match self.transport.signal_process(signal) {
            // The exit is known to the transport but was not returned to the caller: the
            // signal has nothing left to do, as a kill of a zombie does nothing.
            Ok(()) | Err(TransportError::ProcessExitedAlready) => Ok(()),
            Err(err) => Err(crate::pipes::io_error(err)),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.kill_on_drop && self.status.is_none() && !matches!(self.shared.exit(), Ok(Some(_)))
        {
            let _ = self.transport.signal_process(Signal::Kill);
        }
    }
}
