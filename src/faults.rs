//! Fault switches for the loom models (built only with `--cfg loom`).
//!
//! Each switch breaks one ordering that a model protects, so that the
//! model's `#[should_panic]` twin shows the model is able to fail. No switch
//! exists in a normal build. The setting is per OS thread: loom runs all the
//! threads of a model as coroutines on the thread that called
//! `loom::model`, and parallel tests run on other OS threads.

use std::cell::Cell;

/// An ordering that can be broken on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// No fault.
    None,
    /// The deleter releases a handed-over ref's path count even while a
    /// lease still holds the ref: the count no longer waits for leases
    /// (picoclaw's "file deleted mid-upload").
    ReleaseIgnoringLeases,
    /// A sweep counts a ref as expired after checking that it is in the map,
    /// then removes it without looking at the result (check-then-act): a
    /// concurrent release may have claimed it in between.
    ExpiryCheckThenAct,
    /// The deleter unlinks without its compare-exchange from "count zero,
    /// armed", so a store that rejoined the path meanwhile is ignored
    /// (picoclaw #1886).
    UnlinkWithoutCommit,
    /// `store` lists the ref under its scope and inserts it into the ref map
    /// in two separate critical sections, so a `release_all` in between
    /// misses it.
    InsertOutsideScopeLock,
    /// `close` sends `Shutdown` before taking the deleter's inbox away, so a
    /// deletion sent in between lands behind `Shutdown` and is lost.
    ShutdownBeforeTakingInbox,
    /// A sweep reads the configuration once per lane instead of once.
    ReloadConfigPerLane,
    /// After a failed unlink the deleter releases the record's unlink lock
    /// before it undoes its commit, so a store waiting on that lock can see
    /// the record still dead, start a second record for the same path, and
    /// have the retry of the first one delete its file.
    UncommitAfterUnlock,
    /// A dormant record pushed out of its queue is removed from the path map
    /// without checking that nobody rejoined it (check-then-act on the
    /// count), so a live record can vanish and a later store of the path
    /// starts a second, independent lifetime.
    RetireWithoutRecheck,
}

thread_local! {
    static ACTIVE: Cell<Fault> = const { Cell::new(Fault::None) };
}

/// Turns a fault on (or off with `Fault::None`) for models run by this
/// thread.
pub fn set(f: Fault) {
    ACTIVE.with(|a| a.set(f));
}

pub(crate) fn active(f: Fault) -> bool {
    ACTIVE.with(|a| a.get() == f)
}
