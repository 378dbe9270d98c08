//! Twisted's `StringTransportWithDisconnection`: a `StringTransport` that tells its protocol
//! when it is closed.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use process_transport_api::{
    implement::EventQueue, Address, CloseReason, Protocol, PushProducer, Transport, TransportError,
};

use crate::downcast::{protocol_as, protocol_into};
use crate::StringTransport;

/// A [`StringTransport`] connected to a [`Protocol`]: the first `lose_connection` delivers
/// `connection_lost(CloseReason::Done)` to the protocol (the first `abort_connection`,
/// `CloseReason::Lost`), once.
///
/// Every call into the protocol goes through one queue: when the protocol calls
/// `lose_connection` from inside one of its own callbacks, `connection_lost` is delivered after
/// that callback returns, never nested and without deadlock. It dereferences to the
/// [`StringTransport`] it wraps for [`value`](StringTransport::value) and the other records.
///
/// ```
/// use process_transport_api::{CloseReason, Protocol, Transport};
/// use process_transport_fakes::StringTransportWithDisconnection;
/// use std::sync::Arc;
///
/// #[derive(Default)]
/// struct Quit {
///     transport: Option<Arc<dyn Transport>>,
///     lost: Vec<CloseReason>,
/// }
/// impl Protocol for Quit {
///     fn make_connection(&mut self, transport: Arc<dyn Transport>) {
///         self.transport = Some(transport);
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         let transport = self.transport.as_ref().unwrap();
///         transport.write(data).unwrap();
///         transport.lose_connection(); // connection_lost arrives after this returns
///     }
///     fn connection_lost(&mut self, reason: CloseReason) {
///         self.lost.push(reason);
///     }
/// }
///
/// let transport = StringTransportWithDisconnection::new();
/// transport.connect(Box::new(Quit::default()));
/// transport.data_received(b"bye");
/// transport.lose_connection();
/// assert_eq!(transport.value(), b"bye");
/// assert_eq!(transport.with_protocol(|p: &mut Quit| p.lost.clone()), [CloseReason::Done]);
/// ```
#[derive(Clone)]
pub struct StringTransportWithDisconnection {
    transport: StringTransport,
    shared: Arc<Shared>,
}

struct Shared {
    connected: AtomicBool,
    protocol: Mutex<Option<Box<dyn Protocol>>>,
    queue: EventQueue<Event>,
}

enum Event {
    Connect(Arc<dyn Transport>),
    Data(Vec<u8>),
    Lost(CloseReason),
}

const OWNER: &str = "StringTransportWithDisconnection";

impl Default for StringTransportWithDisconnection {
    fn default() -> Self {
        Self::wrapping(StringTransport::new())
    }
}

impl fmt::Debug for StringTransportWithDisconnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(OWNER)
            .field("transport", &self.transport)
            .field("connected", &self.shared.connected.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl Deref for StringTransportWithDisconnection {
    type Target = StringTransport;

    fn deref(&self) -> &StringTransport {
        &self.transport
    }
}

impl StringTransportWithDisconnection {
    /// A transport with the default addresses and no protocol yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wraps `transport`, built with the addresses or leniency the test wants.
    pub fn wrapping(transport: StringTransport) -> Self {
        StringTransportWithDisconnection {
            transport,
            shared: Arc::new(Shared {
                connected: AtomicBool::new(true),
                protocol: Mutex::new(None),
                queue: EventQueue::new(),
            }),
        }
    }

    fn protocol(&self) -> MutexGuard<'_, Option<Box<dyn Protocol>>> {
        self.shared
            .protocol
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Connects `protocol`: it becomes the protocol told of the close, and its
    /// `make_connection` is called with this transport.
    pub fn connect(&self, protocol: Box<dyn Protocol>) {
        *self.protocol() = Some(protocol);
        self.deliver(Event::Connect(Arc::new(self.clone())));
    }

    /// Delivers `data` to the protocol's `data_received`, as if the peer sent it.
    ///
    /// # Panics
    /// Once the connection was lost (`connection_lost` is queued or delivered): a closed
    /// connection receives nothing more, so data after it is a misuse of the fake.
    pub fn data_received(&self, data: &[u8]) {
        if !self.connected() {
            panic!(
                "{OWNER}::data_received misuse: the connection was lost, and no data arrives \
                 after connection_lost"
            );
        }
        self.deliver(Event::Data(data.to_vec()));
    }

    /// `false` once `connection_lost` was queued for the protocol.
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// Runs `f` on the connected protocol as its concrete type `P`. Events that `f` causes
    /// (the protocol closing its transport, say) are delivered after it returns.
    ///
    /// # Panics
    /// When no protocol is connected or it is not a `P`, and when called from inside one of
    /// the protocol's own callbacks.
    pub fn with_protocol<P: Protocol, R>(&self, f: impl FnOnce(&mut P) -> R) -> R {
        let result = self
            .shared
            .queue
            .hold(|| {
                let mut protocol = self.protocol();
                let protocol = protocol
                    .as_mut()
                    .unwrap_or_else(|| panic!("{OWNER}: no protocol is connected"));
                f(protocol_as::<P>(protocol.as_mut(), OWNER))
            })
            .unwrap_or_else(|| {
                panic!("{OWNER}::with_protocol misuse: called from inside a protocol callback")
            });
        self.drain();
        result
    }

    /// Takes the connected protocol back as its concrete type `P`; later events are dropped.
    ///
    /// # Panics
    /// When no protocol is connected or it is not a `P`.
    pub fn take_protocol<P: Protocol>(&self) -> Box<P> {
        let protocol: Box<dyn Any> = self
            .protocol()
            .take()
            .unwrap_or_else(|| panic!("{OWNER}: no protocol is connected"));
        protocol_into::<P>(protocol, OWNER)
    }

    fn deliver(&self, event: Event) {
        self.shared.queue.push(event);
        self.drain();
    }

    fn drain(&self) {
        self.shared.queue.drain(|event| {
            let mut protocol = self.protocol();
            let Some(protocol) = protocol.as_mut() else {
                return;
            };
            match event {
                Event::Connect(transport) => protocol.make_connection(transport),
                Event::Data(data) => protocol.data_received(&data),
                Event::Lost(reason) => protocol.connection_lost(reason),
            }
        });
    }

    fn disconnect(&self, reason: CloseReason) {
        if self.shared.connected.swap(false, Ordering::SeqCst) {
            self.deliver(Event::Lost(reason));
        }
    }
}

impl Transport for StringTransportWithDisconnection {
    fn write(&self, data: &[u8]) -> Result<(), TransportError> {
        self.transport.write(data)
    }

    fn write_sequence(&self, data: &[&[u8]]) -> Result<(), TransportError> {
        self.transport.write_sequence(data)
    }

    fn write_owned(&self, data: Vec<u8>) -> Result<(), TransportError> {
        self.transport.write_owned(data)
    }

    fn lose_connection(&self) {
        self.transport.lose_connection();
        self.disconnect(CloseReason::Done);
    }

    fn abort_connection(&self) {
        self.transport.abort_connection();
        self.disconnect(CloseReason::Lost);
    }

    fn host(&self) -> Address {
        self.transport.host()
    }

    fn peer(&self) -> Address {
        self.transport.peer()
    }

    fn register_producer(
        &self,
        producer: Arc<dyn PushProducer>,
        streaming: bool,
    ) -> Result<(), TransportError> {
        self.transport.register_producer(producer, streaming)
    }

    fn unregister_producer(&self) -> Result<(), TransportError> {
        self.transport.unregister_producer()
    }
}

impl PushProducer for StringTransportWithDisconnection {
    fn pause_producing(&self) {
        self.transport.pause_producing();
    }

    fn resume_producing(&self) {
        self.transport.resume_producing();
    }

    fn stop_producing(&self) {
        self.transport.stop_producing();
    }
}
