//! The state of one fake child, under its transport's lock: the model, what the parent wrote
//! and closed, what the child has not read yet, output held while paused or by an explorer.

use std::collections::VecDeque;

use process_transport_api::{
    implement::{CloseAction, Delivery, FdMap, FdSet, ProcessModel},
    ChildFd, ProcessEnd, Signal,
};

use crate::call_log::Shared;
use crate::explore::{Child, Explorer, Pending};
use crate::terminal::Terminal;

pub(crate) struct FakeState {
    pub(crate) model: ProcessModel,
    /// Every write the parent made, per fd (shared with the call log).
    pub(crate) written: FdMap<Vec<Shared>>,
    /// Bytes the parent wrote that the child has not read yet, per fd.
    pub(crate) unread: FdMap<Unread>,
    pub(crate) closed: Vec<ChildFd>,
    pub(crate) signals: Vec<Signal>,
    /// Fds the child closed (its output there is over).
    pub(crate) child_closed: FdSet,
    /// Output held while the transport is paused, delivered in order on resume.
    pub(crate) held: VecDeque<Held>,
    /// Output is delivered in chunks of at most this many bytes.
    pub(crate) chunk_size: Option<usize>,
    /// Fds whose loss after the parent's close waits for the child to close its end
    /// ([`FakeChild::hold_flush`](crate::FakeChild::hold_flush)).
    pub(crate) flush_held: FdSet,
    /// The pseudo-terminal of a child spawned with `use_pty`.
    pub(crate) terminal: Option<Terminal>,
    /// How the child ended, as soon as it did, before an explorer shows it.
    pub(crate) ended: Option<ProcessEnd>,
    /// The explorer that holds this child's events, and this transport for it.
    pub(crate) explore: Option<(Explorer, Child)>,
}

/// The bytes the parent wrote on one fd that the child has not read yet: the writes
/// themselves, shared, and how far into the first one the child has read.
#[derive(Default)]
pub(crate) struct Unread {
    writes: VecDeque<Shared>,
    /// Bytes of the first write already read.
    read: usize,
    len: usize,
}

impl Unread {
    pub(crate) fn push(&mut self, data: Shared) {
        if !data.is_empty() {
            self.len += data.len();
            self.writes.push_back(data);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes every byte, in order: the write itself when exactly one whole write is unread,
    /// so that a script reading each write as it comes copies nothing.
    pub(crate) fn take_all(&mut self) -> Shared {
        if self.is_empty() {
            return Shared::default();
        }
        if self.writes.len() == 1 && self.read == 0 {
            if let Some(write) = self.writes.pop_front() {
                self.len = 0;
                return write;
            }
        }
        Shared::from(self.take(usize::MAX))
    }

    /// Takes at most `max` bytes, in order.
    pub(crate) fn take(&mut self, max: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.len.min(max));
        while data.len() < max {
            let Some(first) = self.writes.front() else {
                break;
            };
            let rest = &first[self.read..];
            let n = rest.len().min(max - data.len());
            data.extend_from_slice(&rest[..n]);
            self.read += n;
            if self.read == first.len() {
                self.writes.pop_front();
                self.read = 0;
            }
        }
        self.len -= data.len();
        data
    }
}

pub(crate) enum Held {
    Data(ChildFd, Vec<u8>),
    Eof(ChildFd),
}

impl FakeState {
    /// Delivers the child's output `data` on `fd`: in chunks when a chunk size is set, held
    /// while the transport is paused, and held by the explorer until it releases it when one
    /// explores this child.
    pub(crate) fn emit(&mut self, fd: ChildFd, data: &[u8], out: &mut Vec<Delivery>) {
        if data.is_empty() {
            return;
        }
        if let Some((explorer, me)) = &self.explore {
            explorer.hold(me, Pending::Output(fd, data.to_vec()));
            return;
        }
        self.show(fd, data, out);
    }

    /// The child's exit: shown now, or held by the explorer.
    pub(crate) fn child_exited(&mut self, end: ProcessEnd, out: &mut Vec<Delivery>) {
        self.ended = Some(end);
        match &self.explore {
            Some((explorer, me)) => explorer.hold(me, Pending::Exited(end)),
            None => self.model.process_exited(end, out),
        }
    }

    /// How the child ended, once it did, shown to the protocol or not.
    pub(crate) fn child_exit(&self) -> Option<ProcessEnd> {
        self.ended.or(self.model.exit())
    }

    /// Shows the protocol the output `data` on `fd`, chunked, or held while paused.
    pub(crate) fn show(&mut self, fd: ChildFd, data: &[u8], out: &mut Vec<Delivery>) {
        let chunk = self.chunk_size.unwrap_or(data.len());
        for piece in data.chunks(chunk) {
            if self.model.reading_paused() {
                self.held.push_back(Held::Data(fd, piece.to_vec()));
            } else {
                out.push(Delivery::ChildData(fd, piece.to_vec()));
            }
        }
    }

    /// `true` once, when the parent has closed both of its fds of a terminal while the child
    /// runs.
    pub(crate) fn parent_hung_up(&mut self) -> bool {
        let closed = [ChildFd::STDIN, ChildFd::STDOUT]
            .iter()
            .all(|fd| self.closed.contains(fd));
        let running = self.child_exit().is_none();
        let Some(terminal) = self.terminal.as_mut() else {
            return false;
        };
        if !closed || !running || terminal.hung_up {
            return false;
        }
        terminal.hung_up = true;
        true
    }

    pub(crate) fn close_child_fd(&mut self, fd: ChildFd, out: &mut Vec<Delivery>) {
        match self.model.close_child_fd(fd, out) {
            CloseAction::Nothing => return,
            // The child closes its end later: the loss waits for it.
            CloseAction::FlushThenClose if self.flush_held.contains(fd) => {}
            // The fake's pipe takes every byte at once: the flush is already done.
            CloseAction::FlushThenClose => self.model.pipe_lost(fd, out),
            CloseAction::StopReading => {}
        }
        self.closed.push(fd);
    }
}
