//! A fake child played by a [`Script`]: what the script must react to is queued, and handled
//! one event at a time, never re-entrantly.

use std::sync::{Arc, MutexGuard, PoisonError};

use crate::explore::{Pending, ScriptEvent};
use crate::{MemoryProcessTransport, Script};

impl MemoryProcessTransport {
    /// Lets `script` play the child from now on, starting with its start steps.
    pub fn run_script(&self, script: Script) {
        if let Some(chunk) = script.chunk() {
            self.set_chunk_size(Some(chunk));
        }
        *self.script_slot() = Some(Arc::new(script));
        self.queue_script_event(ScriptEvent::Start);
        self.run_script_events();
    }

    /// Sets the script without starting it; the caller queues `Start` when it is due.
    pub(crate) fn install_script(&self, script: Arc<Script>) {
        if let Some(chunk) = script.chunk() {
            self.set_chunk_size(Some(chunk));
        }
        *self.script_slot() = Some(script);
        self.push_script_event(ScriptEvent::Start);
    }

    /// Queues `event` for the script, or hands it to the explorer to hold.
    pub(crate) fn push_script_event(&self, event: ScriptEvent) {
        match self.inner.explorer.get() {
            Some(explorer) => explorer.hold(&self.held(), Pending::Script(event)),
            None => self.inner.script_events.push(event),
        }
    }

    pub(crate) fn script_slot(&self) -> MutexGuard<'_, Option<Arc<Script>>> {
        self.inner
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event` for the script, if there is one. Drivers queue it in the same step
    /// (under the same lock) as the change it reports, so that the script sees changes in the
    /// order they happened even when the protocol's reaction to one causes the next.
    pub(crate) fn queue_script_event(&self, event: ScriptEvent) {
        if self.script_slot().is_some() {
            self.push_script_event(event);
        }
    }

    pub(crate) fn run_script_events(&self) {
        self.inner.script_events.drain(|event| {
            let Some(script) = self.script_slot().clone() else {
                return;
            };
            let child = self.child();
            match event {
                ScriptEvent::Start => script.start(&child),
                ScriptEvent::Written(fd) => script.written(&child, fd),
                ScriptEvent::Closed(fd) => script.closed(&child, fd),
                ScriptEvent::Signalled(signal) => script.signalled(&child, signal),
            }
        });
    }
}
