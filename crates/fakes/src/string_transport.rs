//! Twisted's `StringTransport`: a transport that records what is written to it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use process_transport_api::{Address, ProducerState, PushProducer, Transport, TransportError};

/// The host address a [`StringTransport`] reports unless given another: TCP 10.0.0.1:12345.
pub const DEFAULT_HOST: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(10, 0, 0, 1),
    12345,
));
/// The peer address a [`StringTransport`] reports unless given another: TCP 192.168.1.1:54321.
pub const DEFAULT_PEER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(192, 168, 1, 1),
    54321,
));

/// A [`Transport`] that keeps every byte written to it, for a test to read back.
///
/// It records the bytes ([`value`](Self::value)), whether the protocol closed it
/// ([`disconnecting`](Self::disconnecting), [`disconnected`](Self::disconnected)) and the
/// registered producer. As a [`PushProducer`] it tracks [`producer_state`](Self::producer_state)
/// and panics on misuse, naming the rule: pausing or resuming after `lose_connection` (unless
/// built [`lenient`](StringTransportBuilder::lenient)), or after `stop_producing`.
/// Clones share one state, so a test keeps a clone and hands one out.
///
/// ```
/// use process_transport_api::{Transport, TransportError};
/// use process_transport_fakes::StringTransport;
///
/// let transport = StringTransport::new();
/// transport.write(b"GET ").unwrap();
/// transport.write_sequence(&[b"/ ", b"HTTP/1.0\r\n"]).unwrap();
/// assert_eq!(transport.value(), b"GET / HTTP/1.0\r\n");
///
/// transport.lose_connection();
/// assert!(transport.disconnecting());
/// assert!(matches!(transport.write(b"late"), Err(TransportError::Closed)));
/// ```
#[derive(Clone)]
pub struct StringTransport {
    state: Arc<Mutex<State>>,
}

struct State {
    written: Vec<u8>,
    disconnecting: bool,
    disconnected: bool,
    producer: Option<Arc<dyn PushProducer>>,
    streaming: bool,
    producer_state: ProducerState,
    host: Address,
    peer: Address,
    lenient: bool,
}

/// Builds a [`StringTransport`] with given addresses or leniency.
///
/// ```
/// use process_transport_api::{Address, Transport};
/// use process_transport_fakes::StringTransport;
///
/// let transport = StringTransport::builder()
///     .peer(Address::Unix(None))
///     .lenient(true)
///     .build();
/// assert_eq!(transport.peer(), Address::Unix(None));
/// assert_eq!(transport.host(), Address::Tcp("10.0.0.1:12345".parse().unwrap()));
/// ```
#[derive(Debug, Clone)]
pub struct StringTransportBuilder {
    host: Address,
    peer: Address,
    lenient: bool,
}

impl Default for StringTransportBuilder {
    fn default() -> Self {
        StringTransportBuilder {
            host: Address::Tcp(DEFAULT_HOST),
            peer: Address::Tcp(DEFAULT_PEER),
            lenient: false,
        }
    }
}

impl StringTransportBuilder {
    /// The address [`Transport::host`] reports.
    pub fn host(mut self, host: Address) -> Self {
        self.host = host;
        self
    }

    /// The address [`Transport::peer`] reports.
    pub fn peer(mut self, peer: Address) -> Self {
        self.peer = peer;
        self
    }

    /// Allows `pause_producing`/`resume_producing` after `lose_connection` (Twisted's
    /// `lenient`); a stopped producer still may not be paused or resumed.
    pub fn lenient(mut self, lenient: bool) -> Self {
        self.lenient = lenient;
        self
    }

    /// The transport.
    pub fn build(self) -> StringTransport {
        StringTransport {
            state: Arc::new(Mutex::new(State {
                written: Vec::new(),
                disconnecting: false,
                disconnected: false,
                producer: None,
                streaming: false,
                producer_state: ProducerState::Producing,
                host: self.host,
                peer: self.peer,
                lenient: self.lenient,
            })),
        }
    }
}

impl Default for StringTransport {
    fn default() -> Self {
        StringTransport::builder().build()
    }
}

impl fmt::Debug for StringTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("StringTransport")
            .field("value", &String::from_utf8_lossy(&state.written))
            .field("disconnecting", &state.disconnecting)
            .field("disconnected", &state.disconnected)
            .field("producer", &state.producer.is_some())
            .field("producer_state", &state.producer_state)
            .finish()
    }
}

impl StringTransport {
    /// A transport with the default addresses, not lenient.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder for addresses and leniency.
    pub fn builder() -> StringTransportBuilder {
        StringTransportBuilder::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every byte written since creation or the last [`clear`](Self::clear).
    pub fn value(&self) -> Vec<u8> {
        self.lock().written.clone()
    }

    /// Forgets the bytes written so far.
    pub fn clear(&self) {
        self.lock().written.clear();
    }

    /// `true` after `lose_connection` or `abort_connection`.
    pub fn disconnecting(&self) -> bool {
        self.lock().disconnecting
    }

    /// `true` after `abort_connection`.
    pub fn disconnected(&self) -> bool {
        self.lock().disconnected
    }

    /// The registered producer, if any.
    pub fn producer(&self) -> Option<Arc<dyn PushProducer>> {
        self.lock().producer.clone()
    }

    /// Whether the registered producer is a push (streaming) producer.
    pub fn streaming(&self) -> bool {
        self.lock().streaming
    }

    /// The state this transport is in as a producer.
    pub fn producer_state(&self) -> ProducerState {
        self.lock().producer_state
    }

    fn change_producer_state(&self, call: &str, to: ProducerState) {
        let violation = {
            let mut state = self.lock();
            let violation = if state.producer_state == ProducerState::Stopped {
                Some("a stopped producer cannot be paused or resumed")
            } else if state.disconnecting && !state.lenient {
                Some("a transport that is disconnecting cannot be paused or resumed (build it lenient to allow this)")
            } else {
                None
            };
            if violation.is_none() {
                state.producer_state = to;
            }
            violation
        };
        if let Some(rule) = violation {
            panic!("StringTransport::{call} misuse: {rule}");
        }
    }
}

impl Transport for StringTransport {
    fn write(&self, data: &[u8]) -> Result<(), TransportError> {
        self.write_sequence(&[data])
    }

    fn write_sequence(&self, data: &[&[u8]]) -> Result<(), TransportError> {
        let mut state = self.lock();
        if state.disconnecting {
            return Err(TransportError::Closed);
        }
        data.iter()
            .for_each(|piece| state.written.extend_from_slice(piece));
        Ok(())
    }

    fn lose_connection(&self) {
        self.lock().disconnecting = true;
    }

    fn abort_connection(&self) {
        let mut state = self.lock();
        state.disconnecting = true;
        state.disconnected = true;
    }

    fn host(&self) -> Address {
        self.lock().host.clone()
    }

    fn peer(&self) -> Address {
        self.lock().peer.clone()
    }

    fn register_producer(
        &self,
        producer: Arc<dyn PushProducer>,
        streaming: bool,
    ) -> Result<(), TransportError> {
        let mut state = self.lock();
        if state.producer.is_some() {
            return Err(TransportError::ProducerAlreadyRegistered);
        }
        state.producer = Some(producer);
        state.streaming = streaming;
        Ok(())
    }

    fn unregister_producer(&self) -> Result<(), TransportError> {
        let mut state = self.lock();
        match state.producer.take() {
            Some(_) => {
                state.streaming = false;
                Ok(())
            }
            None => Err(TransportError::NoProducerRegistered),
        }
    }
}

impl PushProducer for StringTransport {
    fn pause_producing(&self) {
        self.change_producer_state("pause_producing", ProducerState::Paused);
    }

    fn resume_producing(&self) {
        self.change_producer_state("resume_producing", ProducerState::Producing);
    }

    fn stop_producing(&self) {
        self.lock().producer_state = ProducerState::Stopped;
    }
}
