//! A fake child under an [`Explorer`]: what it does is held, and shown to its protocol when
//! the explorer releases it.

use std::sync::Arc;

use process_transport_api::{ProcessEnd, Signal};

use crate::explore::{Child, Explorer, HeldChild, Pending};
use crate::memory_process::Inner;
use crate::MemoryProcessTransport;

impl MemoryProcessTransport {
    /// From now on, `explorer` holds what the child does until it releases it.
    pub(crate) fn explore_with(&self, explorer: &Explorer) {
        explorer.adopt(self.held(), self.inner.log.clone());
        let _ = self.inner.explorer.set(explorer.clone());
        self.lock().explore = Some((explorer.clone(), self.held()));
    }

    /// This child, as an explorer holds it.
    pub(crate) fn held(&self) -> Child {
        Arc::downgrade(&self.inner) as Child
    }

    /// Shows the protocol `event`, which an explorer held.
    pub(crate) fn release(&self, event: Pending) {
        match event {
            Pending::Output(fd, data) => self.act(|state, out| {
                // Output the parent stopped reading is dropped, as a closed pipe drops it.
                if state.model.is_readable(fd) {
                    state.show(fd, &data, out);
                }
            }),
            Pending::Closed(fd) => self.act(|state, out| {
                if let Some(mapping) = state.model.pipe_mapping(fd) {
                    state.closed_end_shown(fd, mapping, out);
                }
            }),
            Pending::Exited(end) => self.act(|state, out| state.model.process_exited(end, out)),
            Pending::Script(event) => {
                self.inner.script_events.push(event);
                self.run_script_events();
            }
        }
    }

    /// Whether `signal`, reaching the child while it runs, ends it at once: its script's
    /// action for it is to terminate.
    pub(crate) fn signal_ends_child(&self, signal: Signal) -> bool {
        self.script_slot()
            .as_ref()
            .is_some_and(|script| script.ends_on(signal))
    }

    /// The child's end, not shown yet, becomes `end`: a signal reached it before it exited.
    pub(crate) fn end_instead(&self, end: ProcessEnd) {
        self.lock().ended = Some(end);
    }
}

impl HeldChild for Inner {
    fn release(self: Arc<Self>, event: Pending) {
        MemoryProcessTransport { inner: self }.release(event);
    }

    fn signal_ends_child(self: Arc<Self>, signal: Signal) -> bool {
        MemoryProcessTransport { inner: self }.signal_ends_child(signal)
    }

    fn end_instead(self: Arc<Self>, end: ProcessEnd) {
        MemoryProcessTransport { inner: self }.end_instead(end);
    }
}
