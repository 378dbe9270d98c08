//! Small state enums shared by transports and producers.

/// Why a [`Protocol`](crate::Protocol)'s connection ended.
///
/// ```
/// use process_transport_api::CloseReason;
///
/// assert_ne!(CloseReason::Done, CloseReason::Lost);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Closed cleanly (Twisted's `ConnectionDone`).
    Done,
    /// Closed uncleanly (Twisted's `ConnectionLost`).
    Lost,
}

/// The state of a push producer, as a consumer drives it.
///
/// ```
/// use process_transport_api::ProducerState;
///
/// assert_eq!(ProducerState::default(), ProducerState::Producing);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProducerState {
    /// Producing; the initial state.
    #[default]
    Producing,
    /// Paused by `pause_producing` until `resume_producing`.
    Paused,
    /// Stopped by `stop_producing`; final.
    Stopped,
}
