//! Addresses of the two ends of a transport.

use std::net::SocketAddr;
use std::path::PathBuf;

/// One end of a transport, as [`Transport::host`](crate::Transport::host) and
/// [`Transport::peer`](crate::Transport::peer) report it.
///
/// ```
/// use process_transport_api::Address;
///
/// let tcp = Address::Tcp("10.0.0.1:12345".parse().unwrap());
/// assert_ne!(tcp, Address::Process);
/// assert_eq!(Address::Unix(None), Address::Unix(None));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// A TCP endpoint.
    Tcp(SocketAddr),
    /// A Unix socket, bound to a path or unnamed.
    Unix(Option<PathBuf>),
    /// A child process, which has no network address.
    Process,
}
