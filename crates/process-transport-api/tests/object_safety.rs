//! Every trait is usable as a trait object, shared or owned, and sent across threads; the
//! transport-side traits also through `&T`, `Box<T>` and `Arc<T>`, with every call forwarded.

use std::sync::{Arc, Mutex};
use std::thread;

use async_trait::async_trait;
use process_transport_api::{
    Address, ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, Protocol,
    PushProducer, Signal, SpawnError, SpawnSpec, Transport, TransportError,
};

/// Implements every trait, notes the name of each call, and overrides three provided methods
/// (`write_sequence`, `write_owned`, `close_stdin`), which a forwarding impl must keep.
#[derive(Default)]
struct Double(Mutex<Vec<&'static str>>);

impl Double {
    fn note(&self, call: &'static str) {
        self.0.lock().unwrap().push(call);
    }
    fn taken(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl PushProducer for Double {
    fn pause_producing(&self) {
        self.note("pause")
    }
    fn resume_producing(&self) {
        self.note("resume")
    }
    fn stop_producing(&self) {
        self.note("stop")
    }
}

impl Transport for Double {
    fn write(&self, _: &[u8]) -> Result<(), TransportError> {
        self.note("write");
        Ok(())
    }
    fn write_sequence(&self, _: &[&[u8]]) -> Result<(), TransportError> {
        self.note("write_sequence");
        Ok(())
    }
    fn write_owned(&self, _: Vec<u8>) -> Result<(), TransportError> {
        self.note("write_owned");
        Ok(())
    }
    fn lose_connection(&self) {
        self.note("lose")
    }
    fn abort_connection(&self) {
        self.note("abort")
    }
    fn host(&self) -> Address {
        Address::Process
    }
    fn peer(&self) -> Address {
        Address::Unix(None)
    }
    fn register_producer(&self, _: Arc<dyn PushProducer>, _: bool) -> Result<(), TransportError> {
        Err(TransportError::ProducerAlreadyRegistered)
    }
    fn unregister_producer(&self) -> Result<(), TransportError> {
        Err(TransportError::NoProducerRegistered)
    }
}

#[async_trait]
impl ProcessTransport for Double {
    fn pid(&self) -> Option<u32> {
        Some(7)
    }
    fn close_stdin(&self) {
        self.note("close_stdin")
    }
    fn close_child_fd(&self, _: ChildFd) {
        self.note("close_child_fd")
    }
    fn write_to_child(&self, fd: ChildFd, _: &[u8]) -> Result<(), TransportError> {
        Err(TransportError::UnknownChildFd(fd))
    }
    fn signal_process(&self, _: Signal) -> Result<(), TransportError> {
        Err(TransportError::ProcessExitedAlready)
    }
    async fn ended(&self) -> ProcessEnd {
        ProcessEnd::from_exit_code(3)
    }
}

impl Protocol for Double {
    fn make_connection(&mut self, _: Arc<dyn Transport>) {}
}

impl ProcessProtocol for Double {
    fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
}

#[async_trait]
impl ProcessSpawner for Double {
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

    let producer: Arc<dyn PushProducer> = Arc::new(Double::default());
    let transport: Arc<dyn Transport> = Arc::new(Double::default());
    let process: Arc<dyn ProcessTransport> = Arc::new(Double::default());
    let spawner: Arc<dyn ProcessSpawner> = Arc::new(Double::default());
    let mut protocol: Box<dyn Protocol> = Box::new(Double::default());
    let mut process_protocol: Box<dyn ProcessProtocol> = Box::new(Double::default());

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
            ProcessEnd::from_exit_code(3)
        );
        let as_transport: Arc<dyn Transport> = process.clone();
        assert_eq!(as_transport.host(), Address::Process);
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
        any.downcast::<Double>().is_ok(),
        "a protocol downcasts back to its type"
    );
}

/// Makes every call of the process transport through `transport` and checks that each one
/// reached `double`, overrides included.
fn exercise(transport: &dyn ProcessTransport, double: &Double) {
    transport.write(b"a").unwrap();
    transport.write_sequence(&[b"b", b"c"]).unwrap();
    transport.write_owned(b"d".to_vec()).unwrap();
    transport.close_stdin();
    transport.close_stdout();
    transport.pause_producing();
    transport.resume_producing();
    transport.stop_producing();
    transport.lose_connection();
    transport.abort_connection();
    assert_eq!(
        double.taken(),
        [
            "write",
            "write_sequence",
            "write_owned",
            "close_stdin",
            "close_child_fd",
            "pause",
            "resume",
            "stop",
            "lose",
            "abort"
        ]
    );
    assert_eq!(
        (transport.host(), transport.peer()),
        (Address::Process, Address::Unix(None))
    );
    assert_eq!(transport.pid(), Some(7));
    assert!(matches!(
        transport.write_to_child(ChildFd(5), b"x"),
        Err(TransportError::UnknownChildFd(ChildFd(5)))
    ));
    assert!(matches!(
        transport.signal_process(Signal::Term),
        Err(TransportError::ProcessExitedAlready)
    ));
    assert!(matches!(
        transport.register_producer(Arc::new(Double::default()), true),
        Err(TransportError::ProducerAlreadyRegistered)
    ));
    assert!(matches!(
        transport.unregister_producer(),
        Err(TransportError::NoProducerRegistered)
    ));
    assert_eq!(
        futures_executor::block_on(transport.ended()),
        ProcessEnd::from_exit_code(3)
    );
}

#[test]
fn a_reference_forwards_every_call_and_keeps_overrides() {
    let double = Double::default();
    exercise(&&double, &double);
}

#[test]
fn a_box_forwards_every_call_and_keeps_overrides() {
    let double = Arc::new(Double::default());
    exercise(&Box::new(double.clone()), &double);
}

#[test]
fn an_arc_forwards_every_call_and_keeps_overrides() {
    let double = Arc::new(Double::default());
    let shared: Arc<dyn ProcessTransport> = double.clone();
    exercise(&shared, &double);
}

#[test]
fn a_borrowed_boxed_or_shared_spawner_is_a_spawner() {
    fn refusal<S: ProcessSpawner>(spawner: S) -> SpawnError {
        let spawn = spawner.spawn_process(Box::new(Double::default()), SpawnSpec::new("nothing"));
        match futures_executor::block_on(spawn) {
            Ok(_) => panic!("the spawn succeeded"),
            Err(err) => err,
        }
    }
    let shared: Arc<dyn ProcessSpawner> = Arc::new(Double::default());
    assert!(matches!(
        refusal::<&Double>(&Double::default()),
        SpawnError::NotFound(_)
    ));
    assert!(matches!(
        refusal(Box::new(Double::default())),
        SpawnError::NotFound(_)
    ));
    assert!(matches!(refusal(shared), SpawnError::NotFound(_)));
}
