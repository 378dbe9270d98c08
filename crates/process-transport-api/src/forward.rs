//! The transport-side traits for `&T`, `Box<T>` and `Arc<T>`, so that a fake or a real
//! transport can be passed by reference or shared without a wrapper.
//!
//! Every method forwards, the provided ones included, so an override in `T` is kept.
//! Protocols get none: a fake hands its protocol back by downcasting to the type it was given,
//! and a `Box<Box<P>>` would hide `P`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    Address, ChildFd, ProcessEnd, ProcessProtocol, ProcessSpawner, ProcessTransport, PushProducer,
    Signal, SpawnError, SpawnSpec, Transport, TransportError,
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
        }
    )+};
}

forward!(&T, Box<T>, Arc<T>);

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records the name of every call; overrides two provided methods, which must be kept.
    #[derive(Default)]
    struct Calls(Mutex<Vec<&'static str>>);

    impl Calls {
        fn note(&self, call: &'static str) {
            self.0.lock().unwrap().push(call);
        }
        fn taken(&self) -> Vec<&'static str> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    impl PushProducer for Calls {
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

    impl Transport for Calls {
        fn write(&self, _: &[u8]) -> Result<(), TransportError> {
            self.note("write");
            Ok(())
        }
        fn write_sequence(&self, _: &[&[u8]]) -> Result<(), TransportError> {
            self.note("write_sequence");
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
        fn register_producer(
            &self,
            _: Arc<dyn PushProducer>,
            _: bool,
        ) -> Result<(), TransportError> {
            Err(TransportError::ProducerAlreadyRegistered)
        }
        fn unregister_producer(&self) -> Result<(), TransportError> {
            Err(TransportError::NoProducerRegistered)
        }
    }

    #[async_trait]
    impl ProcessTransport for Calls {
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

    fn exercise(transport: &dyn ProcessTransport, calls: &Calls) {
        transport.write(b"a").unwrap();
        transport.write_sequence(&[b"b", b"c"]).unwrap();
        transport.close_stdin();
        transport.close_stdout();
        transport.pause_producing();
        transport.resume_producing();
        transport.stop_producing();
        transport.lose_connection();
        transport.abort_connection();
        assert_eq!(
            calls.taken(),
            [
                "write",
                "write_sequence",
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
            transport.register_producer(Arc::new(Calls::default()), true),
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
        let calls = Calls::default();
        exercise(&&calls, &calls);
    }

    #[test]
    fn a_box_forwards_every_call_and_keeps_overrides() {
        let calls = Arc::new(Calls::default());
        exercise(&Box::new(calls.clone()), &calls);
    }

    #[test]
    fn an_arc_forwards_every_call_and_keeps_overrides() {
        let calls = Arc::new(Calls::default());
        let shared: Arc<dyn ProcessTransport> = calls.clone();
        exercise(&shared, &calls);
    }

    #[test]
    fn a_shared_spawner_is_a_spawner() {
        struct Refuses;
        #[async_trait]
        impl ProcessSpawner for Refuses {
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
        struct Quiet;
        impl ProcessProtocol for Quiet {
            fn make_connection(&mut self, _: Arc<dyn ProcessTransport>) {}
        }
        fn takes(spawner: impl ProcessSpawner) -> SpawnError {
            match futures_executor::block_on(
                spawner.spawn_process(Box::new(Quiet), SpawnSpec::new("nothing")),
            ) {
                Ok(_) => panic!("the spawn succeeded"),
                Err(err) => err,
            }
        }
        let shared: Arc<dyn ProcessSpawner> = Arc::new(Refuses);
        assert!(matches!(takes(&Refuses), SpawnError::NotFound(_)));
        assert!(matches!(takes(Box::new(Refuses)), SpawnError::NotFound(_)));
        assert!(matches!(takes(shared), SpawnError::NotFound(_)));
    }
}
