//! StringTransport and StringTransportWithDisconnection, as spec section 4 describes them.

use std::sync::{Arc, Mutex};

use process_transport_api::{
    Address, CloseReason, ProducerState, Protocol, PushProducer, Transport, TransportError,
};
use process_transport_fakes::{assert_bytes_eq, StringTransport, StringTransportWithDisconnection};

struct Idle;
impl PushProducer for Idle {
    fn pause_producing(&self) {}
    fn resume_producing(&self) {}
    fn stop_producing(&self) {}
}

#[test]
fn value_holds_every_byte_since_clear() {
    let transport = StringTransport::new();
    transport.write(b"abc").unwrap();
    transport.write(b"").unwrap();
    transport.write(b"def").unwrap();
    assert_bytes_eq!(transport.value(), b"abcdef");
    transport.clear();
    assert_bytes_eq!(transport.value(), b"");
    transport.write(b"g").unwrap();
    assert_bytes_eq!(transport.value(), b"g");
}

#[test]
fn write_sequence_joins_the_pieces_in_order() {
    let transport = StringTransport::new();
    transport.write_sequence(&[b"a", b"", b"bc", b"d"]).unwrap();
    transport.write_sequence(&[]).unwrap();
    assert_bytes_eq!(transport.value(), b"abcd");
}

#[test]
fn lose_connection_sets_disconnecting_only() {
    let transport = StringTransport::new();
    assert!(!transport.disconnecting());
    transport.lose_connection();
    assert!(transport.disconnecting());
    assert!(!transport.disconnected());
}

#[test]
fn abort_connection_sets_disconnected_and_disconnecting() {
    let transport = StringTransport::new();
    transport.abort_connection();
    assert!(transport.disconnecting());
    assert!(transport.disconnected());
}

#[test]
fn writes_after_either_close_are_closed_errors_and_not_recorded() {
    for close in [
        StringTransport::lose_connection,
        StringTransport::abort_connection,
    ] {
        let transport = StringTransport::new();
        transport.write(b"kept").unwrap();
        close(&transport);
        assert!(matches!(transport.write(b"x"), Err(TransportError::Closed)));
        assert!(matches!(
            transport.write_sequence(&[b"x"]),
            Err(TransportError::Closed)
        ));
        assert_bytes_eq!(transport.value(), b"kept");
    }
}

#[test]
fn default_addresses_are_twisteds() {
    let transport = StringTransport::new();
    assert_eq!(
        transport.host(),
        Address::Tcp("10.0.0.1:12345".parse().unwrap())
    );
    assert_eq!(
        transport.peer(),
        Address::Tcp("192.168.1.1:54321".parse().unwrap())
    );
}

#[test]
fn given_addresses_are_reported() {
    let host = Address::Unix(Some("/run/app.sock".into()));
    let peer = Address::Tcp("[::1]:8080".parse().unwrap());
    let transport = StringTransport::builder()
        .host(host.clone())
        .peer(peer.clone())
        .build();
    assert_eq!(transport.host(), host);
    assert_eq!(transport.peer(), peer);
}

#[test]
fn producer_registration_errors() {
    let transport = StringTransport::new();
    assert!(transport.producer().is_none());
    assert!(matches!(
        transport.unregister_producer(),
        Err(TransportError::NoProducerRegistered)
    ));
    transport.register_producer(Arc::new(Idle), true).unwrap();
    assert!(transport.producer().is_some());
    assert!(transport.streaming());
    assert!(matches!(
        transport.register_producer(Arc::new(Idle), false),
        Err(TransportError::ProducerAlreadyRegistered)
    ));
    transport.unregister_producer().unwrap();
    assert!(transport.producer().is_none());
    transport.register_producer(Arc::new(Idle), false).unwrap();
    assert!(!transport.streaming());
}

#[test]
fn producer_state_follows_pause_resume_and_stop() {
    let transport = StringTransport::new();
    assert_eq!(transport.producer_state(), ProducerState::Producing);
    transport.pause_producing();
    assert_eq!(transport.producer_state(), ProducerState::Paused);
    transport.resume_producing();
    assert_eq!(transport.producer_state(), ProducerState::Producing);
    transport.stop_producing();
    assert_eq!(transport.producer_state(), ProducerState::Stopped);
    transport.stop_producing();
    assert_eq!(transport.producer_state(), ProducerState::Stopped);
}

#[test]
#[should_panic(
    expected = "StringTransport::pause_producing misuse: a transport that is disconnecting cannot be paused or resumed"
)]
fn pausing_after_lose_connection_panics() {
    let transport = StringTransport::new();
    transport.lose_connection();
    transport.pause_producing();
}

#[test]
#[should_panic(
    expected = "StringTransport::resume_producing misuse: a transport that is disconnecting"
)]
fn resuming_after_lose_connection_panics() {
    let transport = StringTransport::new();
    transport.lose_connection();
    transport.resume_producing();
}

#[test]
#[should_panic(
    expected = "StringTransport::resume_producing misuse: a stopped producer cannot be paused or resumed"
)]
fn resuming_after_stop_panics() {
    let transport = StringTransport::new();
    transport.stop_producing();
    transport.resume_producing();
}

#[test]
#[should_panic(expected = "StringTransport::pause_producing misuse: a stopped producer")]
fn pausing_after_stop_panics_even_when_lenient() {
    let transport = StringTransport::builder().lenient(true).build();
    transport.stop_producing();
    transport.pause_producing();
}

#[test]
fn a_lenient_transport_may_be_paused_and_resumed_after_lose_connection() {
    let transport = StringTransport::builder().lenient(true).build();
    transport.lose_connection();
    transport.pause_producing();
    assert_eq!(transport.producer_state(), ProducerState::Paused);
    transport.resume_producing();
    assert_eq!(transport.producer_state(), ProducerState::Producing);
}

#[test]
fn a_misuse_panic_leaves_the_transport_usable() {
    let transport = StringTransport::new();
    transport.stop_producing();
    let caught =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| transport.pause_producing()));
    assert!(caught.is_err());
    assert_eq!(transport.producer_state(), ProducerState::Stopped);
    transport.write(b"still works").unwrap();
}

#[test]
fn clones_share_state() {
    let transport = StringTransport::new();
    let handed_out: Arc<dyn Transport> = Arc::new(transport.clone());
    handed_out.write(b"shared").unwrap();
    handed_out.lose_connection();
    assert_bytes_eq!(transport.value(), b"shared");
    assert!(transport.disconnecting());
}

/// Records its callbacks; optionally closes the transport from inside them.
#[derive(Default)]
struct Peer {
    transport: Option<Arc<dyn Transport>>,
    log: Arc<Mutex<Vec<String>>>,
    close_on_data: bool,
    close_on_lost: bool,
    depth: usize,
}

impl Peer {
    fn enter(&mut self, what: String) {
        assert_eq!(self.depth, 0, "callback re-entered with {what}");
        self.log.lock().unwrap().push(what);
    }
}

impl Protocol for Peer {
    fn make_connection(&mut self, transport: Arc<dyn Transport>) {
        self.transport = Some(transport);
        self.enter("connected".into());
    }
    fn data_received(&mut self, data: &[u8]) {
        self.enter(format!("data {}", String::from_utf8_lossy(data)));
        if self.close_on_data {
            self.depth += 1;
            let transport = self.transport.clone().unwrap();
            transport.write(b"closing").unwrap();
            transport.lose_connection();
            transport.lose_connection();
            self.log
                .lock()
                .unwrap()
                .push("lose_connection returned".into());
            self.depth -= 1;
        }
    }
    fn connection_lost(&mut self, reason: CloseReason) {
        self.enter(format!("lost {reason:?}"));
        if self.close_on_lost {
            self.depth += 1;
            self.transport.clone().unwrap().lose_connection();
            self.depth -= 1;
        }
    }
}

#[test]
fn connection_lost_is_delivered_once_on_the_first_lose_connection() {
    let transport = StringTransportWithDisconnection::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    transport.connect(Box::new(Peer {
        log: log.clone(),
        close_on_lost: true,
        ..Peer::default()
    }));
    assert!(transport.connected());
    transport.lose_connection();
    transport.lose_connection();
    transport.abort_connection();
    assert!(!transport.connected());
    assert!(transport.disconnecting());
    assert_eq!(*log.lock().unwrap(), ["connected", "lost Done"]);
}

#[test]
fn lose_connection_from_inside_a_callback_is_queued_not_reentered() {
    let transport = StringTransportWithDisconnection::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    transport.connect(Box::new(Peer {
        log: log.clone(),
        close_on_data: true,
        ..Peer::default()
    }));
    transport.data_received(b"quit");
    assert_eq!(
        *log.lock().unwrap(),
        [
            "connected",
            "data quit",
            "lose_connection returned",
            "lost Done"
        ]
    );
    assert_bytes_eq!(transport.value(), b"closing");
    let peer = transport.take_protocol::<Peer>();
    assert!(peer.transport.is_some());
}

#[test]
fn abort_connection_delivers_an_unclean_close() {
    let transport = StringTransportWithDisconnection::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    transport.connect(Box::new(Peer {
        log: log.clone(),
        ..Peer::default()
    }));
    transport.abort_connection();
    transport.lose_connection();
    assert!(transport.disconnected());
    assert_eq!(*log.lock().unwrap(), ["connected", "lost Lost"]);
}

#[test]
fn the_wrapped_transport_keeps_its_addresses_and_leniency() {
    let transport = StringTransportWithDisconnection::wrapping(
        StringTransport::builder()
            .peer(Address::Process)
            .lenient(true)
            .build(),
    );
    transport.lose_connection();
    transport.pause_producing();
    assert_eq!(transport.producer_state(), ProducerState::Paused);
    assert_eq!(transport.peer(), Address::Process);
}
