//! The exhaustive mode: every distinct order of the held events, depth first, one run per
//! order (each run replays the choices that lead to its branch), with sleep sets for
//! partial-order reduction.
//!
//! Two releases are taken to commute only when one of them showed nothing to anyone (no
//! event delivered, no call made on any transport until the runtime was idle again: a
//! script's reaction, or output the parent stopped reading) and the other made no call on
//! the first one's transport and is not its child's script reacting. Releases the
//! protocols see are never assumed to commute: a protocol may care about their order, and
//! finding out whether it does is the point. After a release `z` was explored from a point,
//! its siblings' branches do not try `z` again while it commutes with what they did.

use process_transport_fakes::{Activity, Head, HeldKind};

use crate::run::Chooser;

/// What one release did until the runtime was idle again: per child, the calls made on its
/// transport and the events delivered to its protocol and producer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Effects(Vec<(usize, usize)>);

impl Effects {
    fn between(before: &Activity, after: &Activity) -> Effects {
        Effects(
            after
                .0
                .iter()
                .enumerate()
                .map(|(child, &(calls, events))| {
                    let (calls_before, events_before) =
                        before.0.get(child).copied().unwrap_or((0, 0));
                    (calls - calls_before, events - events_before)
                })
                .collect(),
        )
    }

    /// Nothing delivered, nothing called: no protocol saw it.
    fn unseen(&self) -> bool {
        self.0
            .iter()
            .all(|&(calls, events)| calls == 0 && events == 0)
    }

    fn calls_on(&self, child: usize) -> usize {
        self.0.get(child).map_or(0, |&(calls, _)| calls)
    }
}

/// A release explored from a point, and what it did there.
#[derive(Clone, Debug)]
struct Tried {
    head: Head,
    effects: Effects,
}

impl Tried {
    /// Whether releasing `head`, which did `effects`, leaves this release doing the same
    /// and seeing the same, in either order.
    fn commutes_with(&self, head: &Head, effects: &Effects) -> bool {
        self.head != *head
            && self.effects.unseen()
            && effects.calls_on(self.head.child) == 0
            && !(head.child == self.head.child && head.kind == HeldKind::Script)
    }
}

/// One choice of the current path.
#[derive(Debug)]
enum Node {
    /// Which held event a step releases.
    Lane {
        heads: Vec<Head>,
        chosen: usize,
        /// Releases not to try here: their orders were explored from an earlier point.
        asleep: Vec<Tried>,
        /// Releases whose branches from here were explored.
        done: Vec<Tried>,
        /// What the chosen release did, once the run measured it.
        effects: Option<Effects>,
    },
    /// How much of an output the step releases.
    Split { options: usize, chosen: usize },
}

/// The depth-first search over the choices of all runs, and the chooser of each run.
#[derive(Debug, Default)]
pub(crate) struct Search {
    /// Whether orders equivalent to one explored are skipped.
    reduce: bool,
    path: Vec<Node>,
    /// The node the run's next choice is.
    at: usize,
    /// The step in progress: its lane node and the activity when it began.
    step: Option<(usize, Activity)>,
    /// The run's choices and their options: its schedule.
    pub(crate) choices: Vec<u32>,
    pub(crate) options_of: Vec<usize>,
    /// Set when a run did not follow the path it replayed: the test is not deterministic.
    pub(crate) diverged: Option<String>,
}

impl Search {
    /// A search from the natural order; `reduce`: with partial-order reduction.
    pub(crate) fn new(reduce: bool) -> Search {
        Search {
            reduce,
            ..Search::default()
        }
    }

    /// The search after the run that just ended: the next branch to run, or `None` when
    /// every distinct order was explored.
    pub(crate) fn advance(mut self) -> Option<Search> {
        self.path.truncate(self.at);
        while let Some(node) = self.path.last_mut() {
            match node {
                Node::Split { options, chosen } => {
                    if *chosen + 1 < *options {
                        *chosen += 1;
                        break;
                    }
                }
                Node::Lane {
                    heads,
                    chosen,
                    asleep,
                    done,
                    effects,
                } => {
                    done.push(Tried {
                        head: heads[*chosen],
                        effects: effects.take().unwrap_or_default(),
                    });
                    let next = (0..heads.len()).find(|&index| {
                        let head = &heads[index];
                        !asleep
                            .iter()
                            .chain(done.iter())
                            .any(|tried| tried.head == *head)
                    });
                    if let Some(next) = next {
                        *chosen = next;
                        break;
                    }
                }
            }
            self.path.pop();
        }
        if self.path.is_empty() {
            return None;
        }
        Some(Search {
            reduce: self.reduce,
            path: self.path,
            ..Search::default()
        })
    }

    /// Ends the step in progress: what its release did until now.
    fn measure(&mut self, activity: &Activity) {
        if let Some((node, before)) = self.step.take() {
            if let Some(Node::Lane { effects, .. }) = self.path.get_mut(node) {
                *effects = Some(Effects::between(&before, activity));
            }
        }
    }

    /// The releases not to try at a new point after the path so far: those asleep or done at
    /// the last step that commute with the release it chose.
    fn asleep_after_path(&self) -> Vec<Tried> {
        if !self.reduce {
            return Vec::new();
        }
        let last = self.path[..self.at]
            .iter()
            .rev()
            .find_map(|node| match node {
                Node::Lane {
                    heads,
                    chosen,
                    asleep,
                    done,
                    effects,
                } => Some((heads[*chosen], asleep, done, effects)),
                Node::Split { .. } => None,
            });
        let Some((released, asleep, done, Some(effects))) = last else {
            return Vec::new();
        };
        asleep
            .iter()
            .chain(done.iter())
            .filter(|tried| tried.commutes_with(&released, effects))
            .cloned()
            .collect()
    }

    fn record(&mut self, chosen: usize, options: usize) -> usize {
        self.choices.push(chosen as u32);
        self.options_of.push(options);
        self.at += 1;
        chosen
    }
}

impl Chooser for Search {
    fn step(&mut self, heads: &[Head], activity: &Activity) -> bool {
        self.measure(activity);
        if self.diverged.is_some() {
            return false;
        }
        if let Some(node) = self.path.get(self.at) {
            // Replaying the path: the run must reach the same point.
            let same = matches!(node, Node::Lane { heads: known, .. } if known == heads);
            if !same {
                self.diverged = Some(format!(
                    "at choice {} the run offered {heads:?}, where an earlier run of the same \
                     choices offered {node:?}",
                    self.at
                ));
                return false;
            }
        } else {
            let asleep = self.asleep_after_path();
            let awake = heads
                .iter()
                .position(|head| !asleep.iter().any(|tried| tried.head == *head));
            // Every release here repeats an order explored already.
            let Some(chosen) = awake else {
                return false;
            };
            self.path.push(Node::Lane {
                heads: heads.to_vec(),
                chosen,
                asleep,
                done: Vec::new(),
                effects: None,
            });
        }
        self.step = Some((self.at, activity.clone()));
        true
    }

    fn choose(&mut self, options: usize) -> usize {
        match self.path.get(self.at) {
            Some(Node::Lane { heads, chosen, .. }) if heads.len() == options => {
                let chosen = *chosen;
                self.record(chosen, options)
            }
            Some(Node::Split {
                options: known,
                chosen,
            }) if *known == options => {
                let chosen = *chosen;
                self.record(chosen, options)
            }
            Some(node) => {
                self.diverged = Some(format!(
                    "at choice {} the run had {options} options, where an earlier run of the \
                     same choices had {node:?}",
                    self.at
                ));
                self.record(0, options)
            }
            None => {
                self.path.push(Node::Split { options, chosen: 0 });
                self.record(0, options)
            }
        }
    }

    fn finish(&mut self, activity: &Activity) {
        self.measure(activity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use process_transport_api::ChildFd;

    fn head(child: usize, kind: HeldKind) -> Head {
        Head {
            child,
            kind,
            released_before: (0, 0),
        }
    }

    #[test]
    fn only_an_unseen_release_commutes_and_only_with_what_leaves_its_child_alone() {
        let script = Tried {
            head: head(0, HeldKind::Script),
            effects: Effects(vec![(0, 0), (0, 0)]),
        };
        let quiet_delivery = Effects(vec![(0, 1), (0, 0)]);
        let writes_to_child_0 = Effects(vec![(1, 1), (0, 0)]);
        let output = head(0, HeldKind::Output(ChildFd::STDOUT, 3));
        assert!(script.commutes_with(&output, &quiet_delivery));
        assert!(!script.commutes_with(&output, &writes_to_child_0));
        assert!(!script.commutes_with(
            &head(1, HeldKind::Closed(ChildFd::STDOUT)),
            &writes_to_child_0
        ));
        assert!(script.commutes_with(&head(1, HeldKind::Script), &Effects::default()));

        let seen = Tried {
            head: output,
            effects: quiet_delivery.clone(),
        };
        assert!(!seen.commutes_with(&head(1, HeldKind::Script), &Effects::default()));
    }
}
