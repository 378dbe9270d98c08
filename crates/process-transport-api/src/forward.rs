//! The transport-side traits for `&T`, `Box<T>` and `Arc<T>`, so that a fake or a real
//! transport can be passed by reference or shared without a wrapper.
//!
//! Every method forwards, the provided ones included, so an override in `T` is kept
//! (tested in `tests/object_safety.rs`).
//! Protocols get none: a fake hands its protocol back by downcasting to the type it was given,
//! and a `Box<Box<P>>` would hide `P`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Address, ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, PtySize,
    PushProducer, Signal, SpawnError, SpawnSpec, Transport, TransportError,
};

macro_rules! forward {
    ($($pointer:ty),+ $(,)?) => {$(
        impl<T: PushProducer + ?Sized> PushProducer for $pointer {
            fn pause_producing(&self) {
                (**self).pause_producing()
            }
            fn resume_producing(&self) {
                (**self).resume_producing()
            }
            fn stop_producing(&self) {
                (**self).stop_producing()
            }
        }

        impl<T: Transport + ?Sized> Transport for $pointer {
            fn write(&self, data: &[u8]) -> Result<(), TransportError> {
                (**self).write(data)
            }
            fn write_sequence(&self, data: &[&[u8]]) -> Result<(), TransportError> {
                (**self).write_sequence(data)
            }
            fn write_owned(&self, data: Vec<u8>) -> Result<(), TransportError> {
                (**self).write_owned(data)
            }
            fn lose_connection(&self) {
                (**self).lose_connection()
            }
            fn abort_connection(&self) {
                (**self).abort_connection()
            }
            fn host(&self) -> Address {
                (**self).host()
            }
            fn peer(&self) -> Address {
                (**self).peer()
            }
            fn register_producer(
                &self,
                producer: Arc<dyn PushProducer>,
                streaming: bool,
            ) -> Result<(), TransportError> {
                (**self).register_producer(producer, streaming)
            }
            fn unregister_producer(&self) -> Result<(), TransportError> {
                (**self).unregister_producer()
            }
        }

        #[async_trait]
        impl<T: ProcessTransport + ?Sized> ProcessTransport for $pointer {
            fn pid(&self) -> Option<u32> {
                (**self).pid()
            }
            fn close_stdin(&self) {
                (**self).close_stdin()
            }
            fn close_stdout(&self) {
                (**self).close_stdout()
            }
            fn close_stderr(&self) {
                (**self).close_stderr()
            }
            fn close_child_fd(&self, fd: ChildFd) {
                (**self).close_child_fd(fd)
            }
            fn write_to_child(&self, fd: ChildFd, data: &[u8]) -> Result<(), TransportError> {
                (**self).write_to_child(fd, data)
            }
            fn signal_process(&self, signal: Signal) -> Result<(), TransportError> {
                (**self).signal_process(signal)
            }
            fn resize_pty(&self, size: PtySize) -> Result<(), TransportError> {
                (**self).resize_pty(size)
            }
            async fn ended(&self) -> ProcessEnd {
                (**self).ended().await
            }
        }

        #[async_trait]
        impl<T: ProcessSpawner + ?Sized> ProcessSpawner for $pointer {
            async fn spawn_process(
                &self,
                protocol: Box<dyn ProcessProtocol>,
                spec: SpawnSpec,
            ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
                (**self).spawn_process(protocol, spec).await
            }
            fn inherits_parent_fds(&self) -> bool {
                (**self).inherits_parent_fds()
            }
        }
    )+};
}

forward!(&T, Box<T>, Arc<T>);
