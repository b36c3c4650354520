//! TTL bookkeeping: per-lane FIFO queues of `(time, ref)`, oldest first.
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

/// One lane; aligned to 128 bytes (two cache lines, as the adjacent-line
/// prefetcher pairs them) so that two threads pushing to neighbouring lanes
/// never write to the same line.
#[repr(align(128))]
struct Lane {
    slots: Mutex<VecDeque<(u64, MediaRef)>>,
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
                    slots: Mutex::new(VecDeque::new()),
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
        let t = slots.back().map_or(now, |&(last, _)| last.max(now));
        slots.push_back((t, id));
        if slots.len() == 1 {
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
        let pos = slots.partition_point(|&(t, _)| t <= at);
        slots.insert(pos, (at, id));
        if pos == 0 {
            // Release: as in `push` (the front changed, under the lock).
            lane.front.store(at, Ordering::Release);
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
                        match slots.front() {
                            Some(&(t, id)) if expired(t) => {
                                slots.pop_front();
                                batch.push(id);
                            }
                            _ => break,
                        }
                    }
                    let front = slots.front().map_or(EMPTY, |&(t, _)| t);
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
    fn compact<K, V, S>(
        lane: &Lane,
        slots: &mut VecDeque<(u64, MediaRef)>,
        refs: &ShardMap<K, V, S>,
    ) where
        K: Borrow<MediaRef> + Eq + Hash + Ord,
        S: std::hash::BuildHasher + Clone + Default,
    {
        // Lock order: lane lock, then a ref-map shard's read lock; nothing
        // takes a lane lock while holding a ref-map shard lock.
        slots.retain(|(_, id)| refs.contains_key(id));
        // Keep the buffer unless it is far too large: shrinking and growing
        // it again on every compaction would reallocate it over and over.
        if slots.capacity() > 4096 && slots.capacity() > 8 * slots.len() {
            slots.shrink_to(slots.len() * 2);
        }
        lane.garbage.store(0, Ordering::Relaxed);
        let front = slots.front().map_or(EMPTY, |&(t, _)| t);
        // Release, under the lane lock: as in `push`.
        lane.front.store(front, Ordering::Release);
    }

    /// Forgets every slot (store teardown).
    pub(crate) fn clear(&self) {
        for lane in self.lanes.iter() {
            lock(&lane.slots).clear();
            lane.front.store(EMPTY, Ordering::Release);
        }
    }

    /// Total slots, live and garbage (tests).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn slots(&self) -> usize {
        self.lanes.iter().map(|l| lock(&l.slots).len()).sum()
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
    }
}
