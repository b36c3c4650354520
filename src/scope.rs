//! The scope index's two small types: [`ScopeName`], a scope's name shared
//! by the index and every entry stored under it, and [`ScopeIds`], the ids
//! the index lists for one scope.
//!
//! Both exist to keep the per-scope cost down (a chat gateway holds one
//! scope per inbound message, usually with one to three refs):
//!
//! * `ScopeName` is one pointer, with the reference count, the length and
//!   the bytes in one heap block; `Arc<str>` is two pointers wherever it is
//!   held (the index's key and each entry).
//! * `ScopeIds` is a boxed slice whose length is a power of two: the ids in
//!   store order, then nil ids filling the rest. Two words in the index's
//!   slot instead of `Vec`'s three, and no separate length: the list ends at
//!   the first nil.
//!
//! Invariants: a `ScopeName`'s bytes are the UTF-8 of the `&str` it was made
//! from and never change. No ref has the nil id (`store` refuses it, see
//! [`crate::StoreError::NilRef`]), so a nil in a `ScopeIds` is always
//! padding, and the padding is exactly the slice's tail after the last id.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use crate::MediaRef;

/// See the module doc. Hashes, compares and borrows as its bytes, so the
/// index is looked up with `name.as_bytes()`.
pub(crate) struct ScopeName(triomphe::ThinArc<(), u8>);

impl ScopeName {
    pub(crate) fn new(name: &str) -> Self {
        Self(triomphe::ThinArc::from_header_and_slice(
            (),
            name.as_bytes(),
        ))
    }

    #[inline]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0.slice
    }

    /// The name. Checks the UTF-8 again (safe code cannot skip it); scope
    /// names are short and this is read off the hot paths (leases, logs).
    pub(crate) fn as_str(&self) -> &str {
        // The bytes were copied from a `&str` and never change.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// Whether both are the same allocation (one scope's lifetime).
    #[inline]
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        std::ptr::eq(a.0.ptr(), b.0.ptr())
    }

    /// The allocation's address (to group entries by scope).
    #[inline]
    pub(crate) fn addr(this: &Self) -> usize {
        this.0.ptr() as usize
    }
}

impl Clone for ScopeName {
    #[inline]
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Borrow<[u8]> for ScopeName {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for ScopeName {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, so that lookups by bytes find the key.
        self.as_bytes().hash(state)
    }
}

impl PartialEq for ScopeName {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ScopeName {}

impl PartialOrd for ScopeName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScopeName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::fmt::Debug for ScopeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// See the module doc.
pub(crate) struct ScopeIds(Box<[MediaRef]>);

/// The padding of a [`ScopeIds`]: the nil id, which `store` refuses.
pub(crate) const PAD: MediaRef = MediaRef::from_uuid(uuid::Uuid::nil());

impl ScopeIds {
    /// A list holding `id`, with room for a second one (most scopes hold
    /// one to three refs).
    pub(crate) fn one(id: MediaRef) -> Self {
        debug_assert!(id != PAD, "the nil id is never a ref");
        Self(Box::new([id, PAD]))
    }

    /// How many ids. Binary search for the first nil: the padding is a
    /// suffix.
    pub(crate) fn len(&self) -> usize {
        self.0.partition_point(|id| *id != PAD)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.first().map_or(true, |id| *id == PAD)
    }

    /// Appends `id`; doubles the slice when it is full (amortised O(1)).
    pub(crate) fn push(&mut self, id: MediaRef) {
        debug_assert!(id != PAD, "the nil id is never a ref");
        let n = self.len();
        if n == self.0.len() {
            // A fresh block and a copy rather than growing in place: glibc's
            // `realloc` takes the arena lock, `malloc` and `free` of small
            // blocks go through the thread's cache without it (the churn
            // loop's 8-ref scopes grow twice each: `push` went from 188 to
            // 117 instructions per store, callgrind). Exact size, so the
            // boxed slice keeps it.
            let size = (n * 2).max(2);
            let mut v = Vec::with_capacity(size);
            v.extend_from_slice(&self.0);
            v.resize(size, PAD);
            self.0 = v.into_boxed_slice();
        }
        self.0[n] = id;
    }

    /// Keeps the ids for which `keep` is true, in order; the freed tail
    /// becomes padding. A slice left at most a quarter full shrinks to twice
    /// the next power of two of what is left (at least 2), so a big scope
    /// that expiry has mostly emptied gives its memory back, and pushes
    /// after a shrink have half the slice free before it doubles again.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&MediaRef) -> bool) {
        let n = self.len();
        let mut w = 0;
        for r in 0..n {
            if keep(&self.0[r]) {
                self.0[w] = self.0[r];
                w += 1;
            }
        }
        self.0[w..n].fill(PAD);
        let size = self.0.len();
        if size > 2 && w <= size / 4 {
            let mut v = std::mem::take(&mut self.0).into_vec();
            v.truncate((w.next_power_of_two() * 2).max(2));
            self.0 = v.into_boxed_slice();
        }
    }
}

/// The ids, in store order.
impl<'a> IntoIterator for &'a ScopeIds {
    type Item = &'a MediaRef;
    type IntoIter = std::slice::Iter<'a, MediaRef>;
    fn into_iter(self) -> Self::IntoIter {
        self.0[..self.len()].iter()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn id(n: u128) -> MediaRef {
        MediaRef::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn ids_grow_keep_order_and_retain() {
        let mut ids = ScopeIds::one(id(1));
        assert_eq!(ids.len(), 1);
        for n in 2..=9 {
            ids.push(id(n));
            assert_eq!(ids.len(), n as usize);
        }
        assert_eq!(ids.0.len(), 16, "doubled 2 -> 4 -> 8 -> 16");
        let got: Vec<u128> = (&ids).into_iter().map(|r| r.as_u128()).collect();
        assert_eq!(got, (1..=9).collect::<Vec<_>>());

        ids.retain(|r| r.as_u128() % 3 != 0);
        let got: Vec<u128> = (&ids).into_iter().map(|r| r.as_u128()).collect();
        assert_eq!(got, vec![1, 2, 4, 5, 7, 8]);
        assert_eq!(ids.len(), 6);
        assert_eq!(ids.0.len(), 16, "more than a quarter full: kept");
        ids.push(id(10));
        assert_eq!(ids.len(), 7);
        assert!(!ids.is_empty());
        ids.retain(|_| false);
        assert!(ids.is_empty());
        assert_eq!(ids.len(), 0);
        assert_eq!(ids.0.len(), 2, "an emptied list shrinks to the minimum");
    }

    #[test]
    fn a_mostly_emptied_list_shrinks_and_keeps_its_ids() {
        let mut ids = ScopeIds::one(id(1));
        for n in 2..=1000 {
            ids.push(id(n));
        }
        assert_eq!(ids.0.len(), 1024);
        // 1 000 -> 250 ids (a quarter of 1 024 is 256): 512 slots.
        ids.retain(|r| r.as_u128() % 4 == 0);
        assert_eq!(ids.len(), 250);
        assert_eq!(ids.0.len(), 512);
        // 250 -> 50 (multiples of 20): 50 <= 128, so 128 slots.
        ids.retain(|r| r.as_u128() % 20 == 0);
        assert_eq!(ids.0.len(), 128);
        let got: Vec<u128> = (&ids).into_iter().map(|r| r.as_u128()).collect();
        assert_eq!(got, (1..=50).map(|k| k * 20).collect::<Vec<_>>());
        // 50 -> 3: 8 slots; the padding is still a suffix, so pushes work.
        ids.retain(|r| r.as_u128() <= 60);
        assert_eq!((ids.len(), ids.0.len()), (3, 8));
        for n in 2000..2006 {
            ids.push(id(n));
        }
        assert_eq!((ids.len(), ids.0.len()), (9, 16));
        let got: Vec<u128> = (&ids).into_iter().map(|r| r.as_u128()).collect();
        assert_eq!(got, vec![20, 40, 60, 2000, 2001, 2002, 2003, 2004, 2005]);
    }

    #[test]
    fn name_hashes_and_compares_as_its_bytes() {
        let s = crate::sync::TextHash::default();
        let a = ScopeName::new("telegram:42:7");
        assert_eq!(s.hash_one(&a), s.hash_one("telegram:42:7".as_bytes()));
        assert_eq!(a.as_str(), "telegram:42:7");
        let b = ScopeName::new("telegram:42:7");
        assert!(a == b && !ScopeName::ptr_eq(&a, &b));
        assert!(ScopeName::ptr_eq(&a, &a.clone()));
        assert!(ScopeName::new("a") < ScopeName::new("b"));
        assert_eq!(ScopeName::new("").as_str(), "");
        assert_eq!(std::mem::size_of::<ScopeName>(), 8);
        assert_eq!(std::mem::size_of::<ScopeIds>(), 16);
    }
}
