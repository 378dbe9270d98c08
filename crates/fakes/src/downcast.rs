//! Handing a protocol back to the test as its concrete type.

use std::any::{type_name, Any};

/// Views `protocol` as a `P`, panicking with a message naming `P` when it is another type:
/// asking for the wrong type is a mistake in the test, like an unexpected call on a mock.
pub(crate) fn protocol_as<'a, P: Any>(protocol: &'a mut dyn Any, owner: &str) -> &'a mut P {
    protocol.downcast_mut::<P>().unwrap_or_else(|| {
        panic!(
            "{owner}: the protocol is not a {}; ask for the type that was connected",
            type_name::<P>()
        )
    })
}

/// Takes `protocol` as a `Box<P>`, panicking with a message naming `P` when it is another
/// type.
pub(crate) fn protocol_into<P: Any>(protocol: Box<dyn Any>, owner: &str) -> Box<P> {
    protocol.downcast::<P>().unwrap_or_else(|_| {
        panic!(
            "{owner}: the protocol is not a {}; ask for the type that was connected",
            type_name::<P>()
        )
    })
}
