//! TTL bookkeeping: per-lane FIFO queues of refs, oldest first, with their
//! times kept once per *run* of refs stored close together.
//!
//! All refs share one `max_age`, so the oldest ref of a lane is always at its
//! front and a sweep pops fronts until it meets a ref that is still young:
//! its cost is proportional to the refs it expires (plus one check per
//! lane), not to the refs alive.
//!
//! Invariants:
//!
//! * Every ref in the ref map has exactly one slot in exactly one lane,
//!   pushed by `store` after the ref is in the map. The lane is the storing
//!   thread's (threads are spread over the lanes round-robin), so that two
//!   threads storing at once rarely meet on a lane lock; the entry records
//!   its lane for the release that turns its slot into garbage.
//!   A slot may outlive its ref (released refs leave *garbage*); a sweep
//!   that pops one finds the ref gone and skips it.
//! * Within a lane, slot times never decrease: a push uses
//!   `max(now, time of the last slot)`, which is never earlier than the ref's
//!   own store time, so a ref is never expired early (at worst a few
//!   nanoseconds late when two stores race on one lane).
//! * Consecutive slots whose times lie within [`GRAIN`] of the first of them
//!   form one run and share its latest time, so a lane holds 16 bytes per
//!   ref (the id) plus one [`Run`] per grain of stores rather than a time
//!   per ref. A ref may therefore expire up to [`GRAIN`] later than its own
//!   time says, never earlier; refs stored at the same instant (as on a
//!   manual clock) expire exactly on time.
//! * A lane whose garbage outnumbers its live slots is compacted (garbage
//!   dropped, order kept), so memory stays proportional to live refs even
//!   when refs are released long before they would expire.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::hash::Hash;

use crate::sync::{lock, AtomicU64, AtomicUsize, Mutex, Ordering, ShardMap};
use crate::MediaRef;

/// Front time of an empty lane.
const EMPTY: u64 = u64::MAX;
/// Slots popped per lock hold during a sweep, to bound how long a sweep
/// blocks stores on the same lane.
const POP_BATCH: usize = 512;
/// Compaction is not worth it below this much garbage.
const MIN_GARBAGE: usize = 1024;
/// Longest span of store times one run may cover, in clock nanoseconds: the
/// most a ref's expiry can be delayed by sharing its run's time. Far below
/// the background cleaner's sweep interval, which hides it; a caller that
/// runs `clean_expired` itself on a real clock can see it (documented
/// there).
const GRAIN: u64 = 1_000_000;

/// Consecutive slots of a lane that share one expiry time.
#[derive(Clone, Copy, Debug)]
struct Run {
    /// Time of the run's first slot: later slots join only within [`GRAIN`].
    first: u64,
    /// The run's expiry time: the latest slot time in it.
    last: u64,
    /// Slots in the run (at least one).
    len: u32,
}

/// A lane's slots: ids oldest first, and the runs that give them times
/// (the runs' lengths add up to `ids.len()`).
#[derive(Default)]
struct Slots {
    ids: VecDeque<MediaRef>,
    runs: VecDeque<Run>,
}

impl Slots {
    /// Time of the front slot, or `EMPTY`.
    fn front_time(&self) -> u64 {
        self.runs.front().map_or(EMPTY, |r| r.last)
    }

    /// Time of the last slot, if any.
    fn back_time(&self) -> Option<u64> {
        self.runs.back().map(|r| r.last)
    }

    /// Appends a slot at time `t` (not earlier than the last one).
    fn push_back(&mut self, t: u64, id: MediaRef) {
        self.ids.push_back(id);
        match self.runs.back_mut() {
            Some(run) if t - run.first <= GRAIN && run.len < u32::MAX => {
                run.last = t;
                run.len += 1;
            }
            _ => self.runs.push_back(Run {
                first: t,
                last: t,
                len: 1,
            }),
        }
    }

    /// Pops the front slot if its time passes `expired`.
    fn pop_front_if(&mut self, expired: impl Fn(u64) -> bool) -> Option<MediaRef> {
        let run = self.runs.front_mut()?;
        if !expired(run.last) {
            return None;
        }
        run.len -= 1;
        if run.len == 0 {
            self.runs.pop_front();
        }
        self.ids.pop_front()
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// One lane; aligned to 128 bytes (two cache lines, as the adjacent-line
/// prefetcher pairs them) so that two threads pushing to neighbouring lanes
/// never write to the same line.
#[repr(align(128))]
struct Lane {
    slots: Mutex<Slots>,
    /// Time of the front slot, or `EMPTY`: lets a sweep skip a lane whose
    /// oldest ref is young without taking its lock. Written under the lock.
    front: AtomicU64,
    /// Slots whose ref was released (approximate; a hint for compaction).
    garbage: AtomicUsize,
}

/// See the module doc.
pub(crate) struct ExpiryLanes {
    lanes: Box<[Lane]>,
}

impl ExpiryLanes {
    /// `n` lanes (a power of two).
    pub(crate) fn new(n: usize) -> Self {
        let n = if cfg!(loom) {
            2
        } else {
            n.max(1).next_power_of_two()
        };
        Self {
            lanes: (0..n)
                .map(|_| Lane {
                    slots: Mutex::new(Slots::default()),
                    front: AtomicU64::new(EMPTY),
                    garbage: AtomicUsize::new(0),
                })
                .collect(),
        }
    }

    /// The lane a new ref of this thread goes to.
    pub(crate) fn pick(&self, id: MediaRef) -> u16 {
        // The thread's lane in production; under loom (whose threads all
        // share one OS thread) the id's, which alternates lanes.
        let n = crate::sync::thread_lane_hint().unwrap_or(id.as_u128() as usize);
        (n & (self.lanes.len() - 1)) as u16
    }

    /// Records a ref stored at `now` in lane `lane` (from [`Self::pick`];
    /// call after the ref is in the ref map).
    pub(crate) fn push<K, V, S>(&self, lane: u16, id: MediaRef, now: u64, refs: &ShardMap<K, V, S>)
    where
        K: Borrow<MediaRef> + Eq + Hash + Ord,
        S: std::hash::BuildHasher + Clone + Default,
    {
        let lane = &self.lanes[usize::from(lane) & (self.lanes.len() - 1)];
        let mut slots = lock(&lane.slots);
        let t = slots.back_time().map_or(now, |last| last.max(now));
        slots.push_back(t, id);
        if slots.runs.len() == 1 {
            // The slot opened or joined the front run, whose time is now `t`.
            // Release: pairs with the Acquire in `pop_expired`; written under
            // the lane lock, so it always describes the real front.
            lane.front.store(t, Ordering::Release);
        }
        // Relaxed: a heuristic; a stale read only delays a compaction.
        let garbage = lane.garbage.load(Ordering::Relaxed);
        if garbage >= MIN_GARBAGE && garbage * 2 >= slots.len() {
            Self::compact(lane, &mut slots, refs);
        }
    }

    /// Records a ref stored at an earlier time `at` (re-indexed or fetched):
    /// its slot goes before every later one, so lane order is kept. Linear
    /// in the lane's length; used only off the hot path.
    pub(crate) fn insert_sorted(&self, lane: u16, id: MediaRef, at: u64) {
        let lane = &self.lanes[usize::from(lane) & (self.lanes.len() - 1)];
        let mut slots = lock(&lane.slots);
        let Slots { ids, runs } = &mut *slots;
        // The first run that expires after `at`: the new slot goes just
        // before its ids, at the end of the run before it when that run can
        // take it (its last time is at most `at`, so only this slot's own
        // time moves it, within the grain) or in a run of its own.
        let r = runs.partition_point(|run| run.last <= at);
        let pos: usize = runs.iter().take(r).map(|run| run.len as usize).sum();
        ids.insert(pos, id);
        match r.checked_sub(1).map(|p| &mut runs[p]) {
            Some(run) if at - run.first <= GRAIN && run.len < u32::MAX => {
                run.last = at;
                run.len += 1;
            }
            _ => runs.insert(
                r,
                Run {
                    first: at,
                    last: at,
                    len: 1,
                },
            ),
        }
        if r <= 1 {
            // The slot opened or joined the front run.
            // Release: as in `push` (under the lock).
            lane.front.store(slots.front_time(), Ordering::Release);
        }
    }

    /// Notes that a ref of lane `lane` left the map before expiring (its
    /// slot is garbage).
    pub(crate) fn note_released(&self, lane: u16) {
        // Relaxed: a heuristic counter (see `garbage`).
        self.lanes[usize::from(lane) & (self.lanes.len() - 1)]
            .garbage
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Pops, from every lane, the refs whose slot time is more than
    /// `max_age` before `now`, and hands them to `take` in batches; `take`
    /// reports how many of them it found already gone (garbage).
    /// `max_age` is asked once per lane; callers pass one snapshot.
    pub(crate) fn pop_expired(
        &self,
        now: u64,
        max_age: impl Fn() -> u64,
        mut take: impl FnMut(&[MediaRef]) -> usize,
    ) {
        let mut batch = Vec::new();
        for lane in self.lanes.iter() {
            let max_age = max_age();
            let expired = |t: u64| t != EMPTY && now.saturating_sub(t) > max_age;
            // Acquire: pairs with the Release in `push`/below. A stale value
            // only makes this sweep skip a ref stored concurrently with it.
            if !expired(lane.front.load(Ordering::Acquire)) {
                continue;
            }
            loop {
                batch.clear();
                {
                    let mut slots = lock(&lane.slots);
                    while batch.len() < POP_BATCH {
                        match slots.pop_front_if(expired) {
                            Some(id) => batch.push(id),
                            None => break,
                        }
                    }
                    let front = slots.front_time();
                    // Release, under the lane lock: as in `push`.
                    lane.front.store(front, Ordering::Release);
                }
                if batch.is_empty() {
                    break;
                }
                let gone = take(&batch);
                // Relaxed: heuristic; saturating so races cannot wrap it.
                let _ = lane
                    .garbage
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| {
                        Some(g.saturating_sub(gone))
                    });
                if batch.len() < POP_BATCH {
                    break;
                }
            }
        }
    }

    /// Drops the slots of refs no longer in the map, keeping order.
    fn compact<K, V, S>(lane: &Lane, slots: &mut Slots, refs: &ShardMap<K, V, S>)
    where
        K: Borrow<MediaRef> + Eq + Hash + Ord,
        S: std::hash::BuildHasher + Clone + Default,
    {
        // Lock order: lane lock, then a ref-map shard's read lock; nothing
        // takes a lane lock while holding a ref-map shard lock.
        let Slots { ids, runs } = slots;
        // Keep each run's live ids in place, in order; a run left empty goes.
        let (mut read, mut kept) = (0, 0);
        for run in runs.iter_mut() {
            let mut live = 0;
            for _ in 0..run.len {
                let id = ids[read];
                read += 1;
                if refs.contains_key(&id) {
                    ids[kept] = id;
                    kept += 1;
                    live += 1;
                }
            }
            run.len = live;
        }
        ids.truncate(kept);
        runs.retain(|run| run.len > 0);
        // Keep the buffer unless it is far too large: shrinking and growing
        // it again on every compaction would reallocate it over and over.
        if ids.capacity() > 4096 && ids.capacity() > 8 * ids.len() {
            ids.shrink_to(ids.len() * 2);
        }
        lane.garbage.store(0, Ordering::Relaxed);
        let front = slots.front_time();
        // Release, under the lane lock: as in `push`.
        lane.front.store(front, Ordering::Release);
    }

    /// Forgets every slot (store teardown).
    pub(crate) fn clear(&self) {
        for lane in self.lanes.iter() {
            *lock(&lane.slots) = Slots::default();
            lane.front.store(EMPTY, Ordering::Release);
        }
    }

    /// Total slots, live and garbage (tests).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn slots(&self) -> usize {
        self.lanes.iter().map(|l| lock(&l.slots).len()).sum()
    }

    /// Panics unless every lane's runs describe its ids (tests): lengths add
    /// up, every run is non-empty and spans at most the grain, run times
    /// never decrease, and `front` is the first run's time.
    #[cfg(all(test, not(loom)))]
    fn check(&self) -> usize {
        let mut runs = 0;
        for lane in self.lanes.iter() {
            let slots = lock(&lane.slots);
            let total: usize = slots.runs.iter().map(|r| r.len as usize).sum();
            assert_eq!(total, slots.ids.len());
            assert!(slots
                .runs
                .iter()
                .all(|r| r.len > 0 && r.first <= r.last && r.last - r.first <= GRAIN));
            assert!(slots
                .runs
                .iter()
                .zip(slots.runs.iter().skip(1))
                .all(|(a, b)| a.last <= b.last));
            assert_eq!(lane.front.load(Ordering::Relaxed), slots.front_time());
            runs += slots.runs.len();
        }
        runs
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::store::RefHashBuilder;
    use uuid::Uuid;

    #[test]
    fn released_refs_do_not_pile_up_in_a_lane() {
        let lanes = ExpiryLanes::new(4);
        let refs: ShardMap<MediaRef, (), RefHashBuilder> = ShardMap::new(4);
        let mut next = 0u128;
        // Store and release 100 000 refs, 1 000 live at a time, all in lane 0.
        let mut live = std::collections::VecDeque::new();
        for t in 0..100_000u64 {
            next += 1;
            let id = MediaRef::from_uuid(Uuid::from_u128(next));
            refs.insert(id, ());
            lanes.push(0, id, t, &refs);
            live.push_back(id);
            if live.len() > 1000 {
                let old = live.pop_front().unwrap();
                refs.remove(&old);
                lanes.note_released(0);
            }
        }
        // Compaction keeps garbage at most about the live count (plus its
        // minimum batch), not 99 000 slots.
        assert!(
            lanes.slots() <= 1001 + 2 * MIN_GARBAGE,
            "{} slots",
            lanes.slots()
        );
        // Expiry still finds every live ref, in order.
        let mut popped = Vec::new();
        lanes.pop_expired(
            u64::MAX,
            || 0,
            |ids| {
                popped.extend_from_slice(ids);
                ids.iter().filter(|id| !refs.contains_key(*id)).count()
            },
        );
        let live_popped: Vec<_> = popped
            .into_iter()
            .filter(|id| refs.contains_key(id))
            .collect();
        assert_eq!(live_popped, Vec::from(live));
        lanes.check();
    }

    fn id(n: u128) -> MediaRef {
        MediaRef::from_uuid(Uuid::from_u128(n))
    }

    /// Pops what is due at `now` for `max_age` and returns the ids' numbers.
    fn due(lanes: &ExpiryLanes, now: u64, max_age: u64) -> Vec<u128> {
        let mut out = Vec::new();
        lanes.pop_expired(
            now,
            || max_age,
            |ids| {
                out.extend(ids.iter().map(|id| id.as_u128()));
                0
            },
        );
        lanes.check();
        out
    }

    #[test]
    fn refs_within_a_grain_share_a_run_and_none_expires_early() {
        let lanes = ExpiryLanes::new(1);
        let refs: ShardMap<MediaRef, (), RefHashBuilder> = ShardMap::new(4);
        let max_age = 10 * GRAIN;
        // 1 and 2 at the same instant, 3 at the end of their grain, 4 just past it.
        let times = [(1, 0), (2, 0), (3, GRAIN), (4, GRAIN + 1)];
        for (n, t) in times {
            lanes.push(0, id(n), t, &refs);
        }
        assert_eq!(lanes.check(), 2, "one run for 1-3, one for 4");
        // Nothing is due until the run's latest time is older than max_age,
        // although 1 and 2 alone would be due GRAIN earlier.
        assert_eq!(due(&lanes, max_age + 1, max_age), Vec::<u128>::new());
        assert_eq!(due(&lanes, max_age + GRAIN, max_age), Vec::<u128>::new());
        assert_eq!(due(&lanes, max_age + GRAIN + 1, max_age), vec![1, 2, 3]);
        assert_eq!(
            due(&lanes, max_age + GRAIN + 1, max_age),
            Vec::<u128>::new()
        );
        assert_eq!(due(&lanes, max_age + GRAIN + 2, max_age), vec![4]);
        assert_eq!(lanes.slots(), 0);
        assert_eq!(lanes.check(), 0);
    }

    #[test]
    fn a_ref_is_due_no_earlier_than_its_own_time_and_at_most_a_grain_later() {
        let lanes = ExpiryLanes::new(1);
        let refs: ShardMap<MediaRef, (), RefHashBuilder> = ShardMap::new(4);
        let max_age = 5 * GRAIN;
        // Store times with steps from 0 to 0.8 grain (a fixed pseudo-random walk).
        let mut t = 0u64;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut stored = Vec::new();
        for n in 1..=2_000u128 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += x % (GRAIN * 4 / 5);
            lanes.push(0, id(n), t, &refs);
            stored.push((n, t));
        }
        assert!(lanes.check() < stored.len(), "runs are shared");
        // Sweep in steps of a tenth of a grain; each ref must come out in
        // the sweep whose time is in (own + max_age, own + max_age + GRAIN + step].
        let step = GRAIN / 10;
        let mut now = 0;
        let mut when = std::collections::HashMap::new();
        while when.len() < stored.len() {
            now += step;
            for n in due(&lanes, now, max_age) {
                assert!(when.insert(n, now).is_none(), "{n} popped twice");
            }
        }
        for (n, own) in stored {
            let at = when[&n];
            assert!(at > own + max_age, "{n} stored at {own} was due at {at}");
            assert!(
                at <= own + max_age + GRAIN + step,
                "{n} stored at {own} came late at {at}"
            );
        }
    }

    #[test]
    fn late_inserts_keep_time_order_and_move_the_front() {
        let lanes = ExpiryLanes::new(1);
        let refs: ShardMap<MediaRef, (), RefHashBuilder> = ShardMap::new(4);
        let g = 10 * GRAIN;
        lanes.push(0, id(10), 10 * g, &refs);
        lanes.push(0, id(30), 30 * g, &refs);
        lanes.insert_sorted(0, id(20), 20 * g);
        lanes.insert_sorted(0, id(5), 5 * g);
        lanes.insert_sorted(0, id(31), 30 * g + GRAIN / 2); // joins 30's run
        lanes.insert_sorted(0, id(40), 40 * g); // after every run
        assert_eq!(lanes.check(), 5);
        assert_eq!(lanes.lanes[0].front.load(Ordering::Relaxed), 5 * g);
        assert_eq!(due(&lanes, 5 * g + 1, 0), vec![5]);
        assert_eq!(due(&lanes, 25 * g, 0), vec![10, 20]);
        assert_eq!(due(&lanes, 30 * g + 1, 0), Vec::<u128>::new());
        assert_eq!(due(&lanes, 30 * g + GRAIN / 2 + 1, 0), vec![30, 31]);
        assert_eq!(due(&lanes, u64::MAX, 0), vec![40]);
    }

    #[test]
    fn compaction_keeps_runs_in_step_with_their_ids() {
        let lanes = ExpiryLanes::new(1);
        let refs: ShardMap<MediaRef, (), RefHashBuilder> = ShardMap::new(4);
        // 4 000 refs, a new run every 100; every ref not divisible by 3 is
        // released, so compaction drops two thirds of each run.
        for n in 0..4_000u128 {
            let t = (n as u64 / 100) * 2 * GRAIN;
            refs.insert(id(n + 1), ());
            lanes.push(0, id(n + 1), t, &refs);
        }
        for n in 0..4_000u128 {
            if n % 3 != 0 {
                refs.remove(&id(n + 1));
                lanes.note_released(0);
            }
        }
        refs.insert(id(9_999), ());
        lanes.push(0, id(9_999), 80 * 2 * GRAIN, &refs); // triggers compaction
        assert_eq!(lanes.slots(), 1_334 + 1);
        assert_eq!(lanes.check(), 41);
        // Each run still expires exactly its own survivors.
        assert_eq!(
            due(&lanes, 2 * GRAIN + 1, GRAIN),
            (0..100u128)
                .filter(|n| n % 3 == 0)
                .map(|n| n + 1)
                .collect::<Vec<_>>()
        );
    }
}
