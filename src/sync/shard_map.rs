//! A sharded concurrent map with a closure-based API.
//!
//! Production wraps `dashmap::DashMap`; under loom it is two shards of
//! `loom::sync::RwLock<BTreeMap>`. Both keep dashmap's granularity: every
//! call locks exactly one shard (read lock for lookups, write lock for
//! changes) and releases it before returning; nothing spans shards
//! atomically. No guard ever escapes this module, so a caller can never hold
//! a shard lock across another map call by accident (dashmap's classic
//! deadlock), except inside the closures below, where nesting is deliberate
//! and documented at the call site.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

/// What an [`ShardMap::update`] closure decided.
pub(crate) enum Update<V, R> {
    /// Leave the slot as it is and return `R`.
    Keep(R),
    /// Put `V` into the slot (inserting or replacing) and return `R`.
    Put(V, R),
}

#[cfg(not(loom))]
pub(crate) use prod::ShardMap;

#[cfg(loom)]
pub(crate) use model::ShardMap;

#[cfg(not(loom))]
mod prod {
    use super::*;
    use dashmap::mapref::entry::Entry;
    use dashmap::DashMap;

    /// See the module doc.
    pub(crate) struct ShardMap<K, V, S = crate::sync::TextHash> {
        inner: DashMap<K, V, S>,
    }

    impl<K: Eq + Hash + Ord, V, S: BuildHasher + Clone + Default> ShardMap<K, V, S> {
        /// A map with `shards` shards (a power of two, at least 2).
        pub(crate) fn new(shards: usize) -> Self {
            Self {
                inner: DashMap::with_capacity_and_hasher_and_shard_amount(0, S::default(), shards),
            }
        }

        /// Runs `f` on the stored key under the shard's read lock (for maps
        /// whose key is the record itself, looked up by a part of it).
        #[inline]
        pub(crate) fn get_key_with<Q, R>(&self, key: &Q, f: impl FnOnce(&K) -> R) -> Option<R>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + Ord + ?Sized,
        {
            self.inner.get(key).map(|r| f(r.key()))
        }

        pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
        where
            K: Borrow<Q>,
            Q: Hash + Eq + Ord + ?Sized,
        {
            self.inner.contains_key(key)
        }

        pub(crate) fn insert(&self, key: K, value: V) -> Option<V> {
            self.inner.insert(key, value)
        }

        pub(crate) fn remove<Q>(&self, key: &Q) -> Option<(K, V)>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + Ord + ?Sized,
        {
            self.inner.remove(key)
        }

        /// Removes the entry if `f` says so, under the shard's write lock.
        pub(crate) fn remove_if_mut<Q>(
            &self,
            key: &Q,
            f: impl FnOnce(&K, &mut V) -> bool,
        ) -> Option<(K, V)>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + Ord + ?Sized,
        {
            self.inner.remove_if_mut(key, f)
        }

        /// Looks the key up under the shard's write lock and lets `f` decide
        /// what the slot holds afterwards. `make_key` is called only when the
        /// key is absent. `f` runs exactly once, with the shard locked.
        pub(crate) fn update<Q, R>(
            &self,
            key: &Q,
            make_key: impl FnOnce() -> K,
            f: impl FnOnce(&K, Option<&mut V>) -> Update<V, R>,
        ) -> R
        where
            K: Borrow<Q>,
            Q: Hash + Eq + Ord + ?Sized,
        {
            if let Some(mut slot) = self.inner.get_mut(key) {
                let (k, v) = slot.pair_mut();
                return apply(k, v, f);
            }
            match self.inner.entry(make_key()) {
                Entry::Occupied(o) => {
                    let mut slot = o.into_ref();
                    let (k, v) = slot.pair_mut();
                    apply(k, v, f)
                }
                Entry::Vacant(vacant) => match f(vacant.key(), None) {
                    Update::Keep(r) => r,
                    Update::Put(v, r) => {
                        vacant.insert(v);
                        r
                    }
                },
            }
        }

        /// Number of entries (locks each shard in turn).
        pub(crate) fn len(&self) -> usize {
            self.inner.len()
        }

        /// Removes every entry, shard by shard.
        pub(crate) fn clear(&self) {
            self.inner.clear()
        }

        /// Calls `f` on every entry, shard by shard (each under its read
        /// lock).
        pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
            for r in self.inner.iter() {
                f(r.key(), r.value());
            }
        }
    }

    fn apply<K, V, R>(k: &K, v: &mut V, f: impl FnOnce(&K, Option<&mut V>) -> Update<V, R>) -> R {
        match f(k, Some(v)) {
            Update::Keep(r) => r,
            Update::Put(new, r) => {
                *v = new;
                r
            }
        }
    }
}

#[cfg(loom)]
mod model {
    use super::*;
    use crate::sync::{read, write, RwLock};
    use std::collections::BTreeMap;
    use std::hash::Hasher;
    use std::marker::PhantomData;

    /// See the module doc: two `RwLock<BTreeMap>` shards, chosen by a
    /// deterministic hash so every loom replay locks the same shard.
    pub(crate) struct ShardMap<K, V, S = crate::sync::TextHash> {
        shards: [RwLock<BTreeMap<K, V>>; 2],
        _hasher: PhantomData<S>,
    }

    impl<K: Eq + Hash + Ord, V, S: BuildHasher + Clone + Default> ShardMap<K, V, S> {
        pub(crate) fn new(_shards: usize) -> Self {
            Self {
                shards: [RwLock::new(BTreeMap::new()), RwLock::new(BTreeMap::new())],
                _hasher: PhantomData,
            }
        }

        fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<BTreeMap<K, V>> {
            #[allow(deprecated)]
            let mut h = std::hash::SipHasher::new();
            key.hash(&mut h);
            &self.shards[(h.finish() & 1) as usize]
        }

        pub(crate) fn get_key_with<Q, R>(&self, key: &Q, f: impl FnOnce(&K) -> R) -> Option<R>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + Ord + ?Sized,
        {
            read(self.shard(key)).get_key_value(key).map(|(k, _)| f(k))
        }

        pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
        where
            K: Borrow<Q>,
            Q: Hash + Eq + Ord + ?Sized,
        {
            read(self.shard(key)).contains_key(key)
        }

        pub(crate) fn insert(&self, key: K, value: V) -> Option<V> {
            write(self.shard(&key)).insert(key, value)
        }

        pub(crate) fn remove<Q>(&self, key: &Q) -> Option<(K, V)>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + Ord + ?Sized,
        {
            write(self.shard(key)).remove_entry(key)
        }

        pub(crate) fn remove_if_mut<Q>(
            &self,
            key: &Q,
            f: impl FnOnce(&K, &mut V) -> bool,
        ) -> Option<(K, V)>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + Ord + ?Sized,
        {
            let mut shard = write(self.shard(key));
            let hit = match shard
                .range_mut::<Q, _>((
                    std::ops::Bound::Included(key),
                    std::ops::Bound::Included(key),
                ))
                .next()
            {
                Some((k, v)) => f(k, v),
                None => false,
            };
            if hit {
                shard.remove_entry(key)
            } else {
                None
            }
        }

        pub(crate) fn update<Q, R>(
            &self,
            key: &Q,
            make_key: impl FnOnce() -> K,
            f: impl FnOnce(&K, Option<&mut V>) -> Update<V, R>,
        ) -> R
        where
            K: Borrow<Q>,
            Q: Hash + Eq + Ord + ?Sized,
        {
            let mut shard = write(self.shard(key));
            if let Some((k, v)) = shard
                .range_mut::<Q, _>((
                    std::ops::Bound::Included(key),
                    std::ops::Bound::Included(key),
                ))
                .next()
            {
                return match f(k, Some(v)) {
                    Update::Keep(r) => r,
                    Update::Put(new, r) => {
                        *v = new;
                        r
                    }
                };
            }
            let k = make_key();
            match f(&k, None) {
                Update::Keep(r) => r,
                Update::Put(v, r) => {
                    shard.insert(k, v);
                    r
                }
            }
        }

        pub(crate) fn len(&self) -> usize {
            self.shards.iter().map(|s| read(s).len()).sum()
        }

        pub(crate) fn clear(&self) {
            for s in &self.shards {
                // Drop the values outside the lock: dropping them may take
                // other locks.
                let old = std::mem::take(&mut *write(s));
                drop(old);
            }
        }

        pub(crate) fn for_each(&self, mut f: impl FnMut(&K, &V)) {
            for s in &self.shards {
                for (k, v) in read(s).iter() {
                    f(k, v);
                }
            }
        }
    }
}
