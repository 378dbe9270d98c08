//! Every trait is usable as a trait object, shared or owned, and sent across threads.

use std::sync::Arc;
use std::thread;

use async_trait::async_trait;
use process_transport_api::{
    Address, ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, Protocol,
    PushProducer, Signal, SpawnError, SpawnSpec, Transport, TransportError,
};

struct Nothing;

impl PushProducer for Nothing {
    fn pause_producing(&self) {}
    fn resume_producing(&self) {}
    fn stop_producing(&self) {}
}

impl Transport for Nothing {
    fn write(&self, _: &[u8]) -> Result<(), TransportError> {
        Ok(())
    }
    fn write_sequence(&self, _: &[&[u8]]) -> Result<(), TransportError> {
        Ok(())
    }
    fn lose_connection(&self) {}
    fn abort_connection(&self) {}
    fn host(&self) -> Address {
        Address::Process
    }
    fn peer(&self) -> Address {
        Address::Process
    }
    fn register_producer(&self, _: Arc<dyn PushProducer>, _: bool) -> Result<(), TransportError> {
        Err(TransportError::ProducerAlreadyRegistered)
    }
    fn unregister_producer(&self) -> Result<(), TransportError> {
        Err(TransportError::NoProducerRegistered)
    }
}

#[async_trait]
impl ProcessTransport for Nothing {
    fn pid(&self) -> Option<u32> {
        Some(1)
    }
    fn close_stdin(&self) {}
    fn close_stdout(&self) {}
    fn close_stderr(&self) {}
    fn close_child_fd(&self, _: ChildFd) {}
    fn write_to_child(&self, fd: ChildFd, _: &[u8]) -> Result<(), TransportError> {
        Err(TransportError::UnknownChildFd(fd))
    }
    fn signal_process(&self, _: Signal) -> Result<(), TransportError> {
        Err(TransportError::ProcessExitedAlready)
    }
    async fn ended(&self) -> ProcessEnd {
        ProcessEnd::Done
    }
}

impl Protocol for Nothing {
    fn make_connection(&mut self, _: Arc<dyn Transport>) {}
}

impl ProcessProtocol for Nothing {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
}

#[async_trait]
impl ProcessSpawner for Nothing {
    async fn spawn_process(
        &self,
        _: Box<dyn ProcessProtocol>,
        spec: SpawnSpec,
    ) -> Result<Arc<dyn ProcessTransport>, SpawnError> {
        Err(SpawnError::NotFound(
            spec.get_executable().to_string_lossy().into_owned(),
        ))
    }
}

fn send_and_sync<T: Send + Sync + ?Sized>() {}

#[test]
fn every_trait_is_object_safe_and_crosses_threads() {
    send_and_sync::<dyn PushProducer>();
    send_and_sync::<dyn Transport>();
    send_and_sync::<dyn ProcessTransport>();
    send_and_sync::<dyn ProcessSpawner>();

    let producer: Arc<dyn PushProducer> = Arc::new(Nothing);
    let transport: Arc<dyn Transport> = Arc::new(Nothing);
    let process: Arc<dyn ProcessTransport> = Arc::new(Nothing);
    let spawner: Arc<dyn ProcessSpawner> = Arc::new(Nothing);
    let mut protocol: Box<dyn Protocol> = Box::new(Nothing);
    let mut process_protocol: Box<dyn ProcessProtocol> = Box::new(Nothing);

    let worker = thread::spawn(move || {
        producer.pause_producing();
        assert!(matches!(
            transport.unregister_producer(),
            Err(TransportError::NoProducerRegistered)
        ));
        assert!(matches!(
            process.write_to_child(ChildFd(5), b"x"),
            Err(TransportError::UnknownChildFd(ChildFd(5)))
        ));
        assert_eq!(
            futures_executor::block_on(process.ended()),
            ProcessEnd::Done
        );
        let as_transport: Arc<dyn Transport> = process.clone();
        assert_eq!(as_transport.peer(), Address::Process);
        protocol.make_connection(as_transport);
        process_protocol.make_connection(process.clone());
        let err = futures_executor::block_on(
            spawner.spawn_process(process_protocol, SpawnSpec::new("x")),
        )
        .err()
        .unwrap();
        assert_eq!(err.to_string(), "cannot spawn \"x\": executable not found");
        protocol
    });
    let protocol = worker.join().unwrap();
    let any: Box<dyn std::any::Any> = protocol;
    assert!(
        any.downcast::<Nothing>().is_ok(),
        "a protocol downcasts back to its type"
    );
}
