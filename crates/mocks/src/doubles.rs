//! The mockall doubles, one per trait of the api crate.

use std::sync::Arc;

use async_trait::async_trait;
use mockall::mock;
use process_transport_api::{
    Address, ChildFd, CloseReason, ProcessEnd, ProcessProtocol, ProcessTransport, PtySize,
    PushProducer, Signal, SpawnError, SpawnSpec, Transport, TransportError,
};

mock! {
    /// A strict double of [`Transport`]: every call must be expected.
    pub Transport {}

    impl process_transport_api::Transport for Transport {
        fn write(&self, data: &[u8]) -> Result<(), TransportError>;
        fn write_sequence<'a, 'b>(&self, data: &'a [&'b [u8]]) -> Result<(), TransportError>;
        fn lose_connection(&self);
        fn abort_connection(&self);
        fn host(&self) -> Address;
        fn peer(&self) -> Address;
        fn register_producer(&self, producer: Arc<dyn PushProducer>, streaming: bool) -> Result<(), TransportError>;
        fn unregister_producer(&self) -> Result<(), TransportError>;
    }
}

mock! {
    /// A strict double of [`PushProducer`].
    pub PushProducer {}

    impl process_transport_api::PushProducer for PushProducer {
        fn pause_producing(&self);
        fn resume_producing(&self);
        fn stop_producing(&self);
    }
}

mock! {
    /// A strict double of [`ProcessTransport`] with its supertraits [`Transport`] and
    /// [`PushProducer`]; `ended` is async.
    pub ProcessTransport {}

    impl process_transport_api::Transport for ProcessTransport {
        fn write(&self, data: &[u8]) -> Result<(), TransportError>;
        fn write_sequence<'a, 'b>(&self, data: &'a [&'b [u8]]) -> Result<(), TransportError>;
        fn lose_connection(&self);
        fn abort_connection(&self);
        fn host(&self) -> Address;
        fn peer(&self) -> Address;
        fn register_producer(&self, producer: Arc<dyn PushProducer>, streaming: bool) -> Result<(), TransportError>;
        fn unregister_producer(&self) -> Result<(), TransportError>;
    }

    impl process_transport_api::PushProducer for ProcessTransport {
        fn pause_producing(&self);
        fn resume_producing(&self);
        fn stop_producing(&self);
    }

    #[async_trait]
    impl process_transport_api::ProcessTransport for ProcessTransport {
        fn pid(&self) -> Option<u32>;
        fn close_stdin(&self);
        fn close_stdout(&self);
        fn close_stderr(&self);
        fn close_child_fd(&self, fd: ChildFd);
        fn write_to_child(&self, fd: ChildFd, data: &[u8]) -> Result<(), TransportError>;
        fn signal_process(&self, signal: Signal) -> Result<(), TransportError>;
        fn resize_pty(&self, size: PtySize) -> Result<(), TransportError>;
        async fn ended(&self) -> ProcessEnd;
    }
}

mock! {
    /// A strict double of [`Protocol`](process_transport_api::Protocol), to check what a
    /// transport delivers.
    pub Protocol {}

    impl process_transport_api::Protocol for Protocol {
        fn make_connection(&mut self, transport: Arc<dyn Transport>);
        fn data_received(&mut self, data: &[u8]);
        fn connection_lost(&mut self, reason: CloseReason);
    }
}

mock! {
    /// A strict double of [`ProcessProtocol`], to check what a transport delivers and in
    /// which order.
    pub ProcessProtocol {}

    impl process_transport_api::ProcessProtocol for ProcessProtocol {
        fn make_connection(&mut self, transport: Arc<dyn ProcessTransport>);
        fn child_data_received(&mut self, fd: ChildFd, data: &[u8]);
        fn child_connection_lost(&mut self, fd: ChildFd);
        fn process_exited(&mut self, reason: ProcessEnd);
        fn process_ended(&mut self, reason: ProcessEnd);
    }
}

mock! {
    /// A strict double of [`ProcessSpawner`](process_transport_api::ProcessSpawner); its
    /// `spawn_process` is async. See [`connect_with`](crate::connect_with) to make it hand back
    /// a transport and call `make_connection` as a real spawner does.
    pub ProcessSpawner {}

    #[async_trait]
    impl process_transport_api::ProcessSpawner for ProcessSpawner {
        async fn spawn_process(&self, protocol: Box<dyn ProcessProtocol>, spec: SpawnSpec) -> Result<Arc<dyn ProcessTransport>, SpawnError>;
    }
}
