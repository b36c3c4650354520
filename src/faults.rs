//! Fault switches for the loom models (built only with `--cfg loom`).
//!
//! Each switch breaks one ordering that a model protects, so that the
//! model's `#[should_panic]` twin can show the model is able to fail. The
//! switch is per OS thread: loom runs a whole model on the thread that
//! called `loom::model`, and parallel tests run on other threads.

use std::cell::Cell;

/// An ordering that can be broken on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// No fault.
    None,
    /// The deleter unlinks without committing (no compare-exchange from
    /// "count zero, armed"), so a store that rejoined the path is ignored.
    UnlinkWithoutCommit,
}

thread_local! {
    static ACTIVE: Cell<Fault> = const { Cell::new(Fault::None) };
}

/// Turns a fault on (or off with `Fault::None`) for this thread's models.
pub fn set(f: Fault) {
    ACTIVE.with(|a| a.set(f));
}

pub(crate) fn active(f: Fault) -> bool {
    ACTIVE.with(|a| a.get() == f)
}
