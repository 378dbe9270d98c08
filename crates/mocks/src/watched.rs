//! A transport handed out by [`connect_with`](crate::connect_with): the mock inside is
//! dropped under watch, so that an unmet expectation found on another thread (a task the
//! runtime cancels at its shutdown, say, where the panic would only be printed) reaches the
//! test's thread.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;

use async_trait::async_trait;
use process_transport_api::{
    implement::FailureSink, Address, ChildFd, ProcessEnd, ProcessTransport, PtySize, PushProducer,
    Signal, Transport, TransportError,
};

/// The transport: every call goes to the mock; its drop is watched.
pub(crate) struct Watched {
    inner: Option<Arc<dyn ProcessTransport>>,
    failures: Arc<FailureSink>,
}

impl Watched {
    pub(crate) fn new(inner: Arc<dyn ProcessTransport>, failures: Arc<FailureSink>) -> Self {
        Watched {
            inner: Some(inner),
            failures,
        }
    }

    fn inner(&self) -> &Arc<dyn ProcessTransport> {
        self.inner
            .as_ref()
            .expect("the mock is held until the drop")
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let inner = self.inner.take();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| drop(inner))) {
            if self.failures.on_home_thread() && !thread::panicking() {
                resume_unwind(panic);
            }
            self.failures.keep_panic(&*panic);
        }
    }
}

impl PushProducer for Watched {
    fn pause_producing(&self) {
        self.inner().pause_producing();
    }
    fn resume_producing(&self) {
        self.inner().resume_producing();
    }
    fn stop_producing(&self) {
        self.inner().stop_producing();
    }
}

impl Transport for Watched {
    fn write(&self, data: &[u8]) -> Result<(), TransportError> {
        self.inner().write(data)
    }
    fn write_sequence(&self, data: &[&[u8]]) -> Result<(), TransportError> {
        self.inner().write_sequence(data)
    }
    fn write_owned(&self, data: Vec<u8>) -> Result<(), TransportError> {
        self.inner().write_owned(data)
    }
    fn lose_connection(&self) {
        self.inner().lose_connection();
    }
    fn abort_connection(&self) {
        self.inner().abort_connection();
    }
    fn host(&self) -> Address {
        self.inner().host()
    }
    fn peer(&self) -> Address {
        self.inner().peer()
    }
    fn register_producer(
        &self,
        producer: Arc<dyn PushProducer>,
        streaming: bool,
    ) -> Result<(), TransportError> {
        self.inner().register_producer(producer, streaming)
    }
    fn unregister_producer(&self) -> Result<(), TransportError> {
        self.inner().unregister_producer()
    }
}

#[async_trait]
impl ProcessTransport for Watched {
    fn pid(&self) -> Option<u32> {
        self.inner().pid()
    }
    fn close_stdin(&self) {
        self.inner().close_stdin();
    }
    fn close_stdout(&self) {
        self.inner().close_stdout();
    }
    fn close_stderr(&self) {
        self.inner().close_stderr();
    }
    fn close_child_fd(&self, fd: ChildFd) {
        self.inner().close_child_fd(fd);
    }
    fn write_to_child(&self, fd: ChildFd, data: &[u8]) -> Result<(), TransportError> {
        self.inner().write_to_child(fd, data)
    }
    fn signal_process(&self, signal: Signal) -> Result<(), TransportError> {
        self.inner().signal_process(signal)
    }
    fn resize_pty(&self, size: PtySize) -> Result<(), TransportError> {
        self.inner().resize_pty(size)
    }
    async fn ended(&self) -> ProcessEnd {
        self.inner().ended().await
    }
}
