//! Pools of reusable frame buffers, so that no frame costs a heap allocation
//! on the packet path.
//!
//! A [`Pool`] is made once, with every buffer it will ever hand out
//! allocated up front, in two size classes ([`PoolConfig`]): *small*
//! buffers for frames of a standard MTU and *large* ones for GSO
//! super-frames. [`Pool::take`] hands out a [`Buf`] of the smallest class
//! that holds the length asked for, or nothing when that class has no free
//! buffer (a full pool never allocates more: the owner waits). A `Buf`
//! remembers its pool and goes back to it when dropped, wherever it went in
//! the meantime (a switch queue, a backend's receive queue, the peer), so
//! whoever a pool belongs to is charged for every buffer of it in flight and
//! for nothing else.
//!
//! A `Buf` made with [`Buf::from_vec`] belongs to no pool: it is an
//! ordinary heap vector, for callers (and tests) that do not care.
//!
//! The bytes of a buffer past the frame it holds are whatever an earlier
//! frame of the same pool left there; they are never exposed, since
//! [`Pool::take`] hands out a buffer whose whole length the taker is to
//! write.
//!
//! Pools are for one thread (`Rc`): everything here runs on the one
//! physical CPU, with no concurrency.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::ops::{Deref, DerefMut};

/// The sizes of a [`Pool`]: how many buffers of which length in each of
/// its two classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Small buffers.
    pub small: usize,
    /// Length of a small buffer (bytes).
    pub small_len: usize,
    /// Large buffers.
    pub large: usize,
    /// Length of a large buffer (bytes).
    pub large_len: usize,
}

impl PoolConfig {
    /// The memory the pool's buffers take (bytes).
    pub const fn bytes(&self) -> usize {
        self.small * self.small_len + self.large * self.large_len
    }
}

/// Counters of a [`Pool`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Small buffers free now.
    pub small_free: usize,
    /// Large buffers free now.
    pub large_free: usize,
    /// [`Pool::take`] calls that found no free buffer (or asked for more
    /// than a large buffer holds).
    pub misses: u64,
}

struct Class {
    len: usize,
    count: usize,
    /// Free buffers, each `len` bytes long; the vector's capacity is
    /// `count`, so a returning buffer never makes it grow.
    free: RefCell<Vec<Vec<u8>>>,
}

struct Inner {
    classes: [Class; 2],
    misses: Cell<u64>,
}

impl Inner {
    /// The class for a frame of `len` bytes: the shortest with buffers that
    /// holds it.
    fn class_for(&self, len: usize) -> Option<usize> {
        (0..self.classes.len())
            .filter(|&c| len <= self.classes[c].len && self.classes[c].count > 0)
            .min_by_key(|&c| self.classes[c].len)
    }
}

/// A pool of frame buffers. Cloning it gives another handle on the same
/// buffers.
#[derive(Clone)]
pub struct Pool(Rc<Inner>);

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.config())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pool {
    /// A pool with every buffer of `config` allocated now. A frame goes to
    /// the shorter class that holds it (whichever of the two that is).
    pub fn new(config: PoolConfig) -> Pool {
        let class = |(count, len): (usize, usize)| {
            let mut free = Vec::with_capacity(count);
            free.extend((0..count).map(|_| vec![0u8; len]));
            Class {
                len,
                count,
                free: RefCell::new(free),
            }
        };
        Pool(Rc::new(Inner {
            classes: [
                class((config.small, config.small_len)),
                class((config.large, config.large_len)),
            ],
            misses: Cell::new(0),
        }))
    }

    /// The pool's sizes.
    pub fn config(&self) -> PoolConfig {
        let [s, l] = &self.0.classes;
        PoolConfig {
            small: s.count,
            small_len: s.len,
            large: l.count,
            large_len: l.len,
        }
    }

    /// Its counters.
    pub fn stats(&self) -> PoolStats {
        let [s, l] = &self.0.classes;
        PoolStats {
            small_free: s.free.borrow().len(),
            large_free: l.free.borrow().len(),
            misses: self.0.misses.get(),
        }
    }

    /// Whether some class of the pool can ever hold a frame of `len` bytes.
    pub fn fits(&self, len: usize) -> bool {
        self.0.class_for(len).is_some()
    }

    /// Free buffers that could hold a frame of `len` bytes now (those of its
    /// class; 0 if none can).
    pub fn available(&self, len: usize) -> usize {
        self.0
            .class_for(len)
            .map_or(0, |c| self.0.classes[c].free.borrow().len())
    }

    /// Whether [`Pool::take`]`(len)` would succeed now.
    pub fn can_take(&self, len: usize) -> bool {
        self.available(len) > 0
    }

    /// A buffer holding a frame of `len` bytes, from the smallest class that
    /// holds it, or `None` (counted as a miss) when that class has no free
    /// buffer or no class is long enough. Its bytes are left from the
    /// buffer's last use: the taker writes all `len` of them.
    pub fn take(&self, len: usize) -> Option<Buf> {
        let got = self.0.class_for(len).and_then(|c| {
            let data = self.0.classes[c].free.borrow_mut().pop()?;
            Some((c, data))
        });
        match got {
            Some((c, data)) => Some(Buf {
                data,
                len,
                home: Some((self.0.clone(), c as u8)),
            }),
            None => {
                self.0.misses.set(self.0.misses.get() + 1);
                None
            }
        }
    }

    /// A buffer holding a copy of `bytes` ([`Pool::take`] and a copy).
    pub fn take_copy(&self, bytes: &[u8]) -> Option<Buf> {
        let mut b = self.take(bytes.len())?;
        b.copy_from_slice(bytes);
        Some(b)
    }
}

/// A frame's bytes: a buffer of a [`Pool`] (back to it when dropped) or a
/// plain heap vector ([`Buf::from_vec`]). Dereferences to the frame's bytes.
pub struct Buf {
    /// For a pooled buffer, the whole buffer (its class's length).
    data: Vec<u8>,
    /// Bytes of `data` that are the frame.
    len: usize,
    home: Option<(Rc<Inner>, u8)>,
}

impl Buf {
    /// A buffer of no pool holding `v` (no copy).
    pub fn from_vec(v: Vec<u8>) -> Buf {
        Buf {
            len: v.len(),
            data: v,
            home: None,
        }
    }

    /// Whether it belongs to a pool.
    pub fn is_pooled(&self) -> bool {
        self.home.is_some()
    }

    /// The pool it belongs to.
    pub fn pool(&self) -> Option<Pool> {
        self.home.as_ref().map(|(p, _)| Pool(p.clone()))
    }

    /// The most bytes it can hold.
    pub fn capacity(&self) -> usize {
        match self.home {
            Some(_) => self.data.len(),
            None => self.data.capacity(),
        }
    }

    /// Shortens the frame to `len` bytes (no effect if it is not longer).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            if self.home.is_none() {
                self.data.truncate(len);
            }
        }
    }

    /// A copy: from the same pool for a pooled buffer (`None` when the pool
    /// has no free buffer of its class), a heap copy otherwise. What the
    /// switch uses to flood a frame.
    pub fn try_clone(&self) -> Option<Buf> {
        match self.pool() {
            Some(p) => p.take_copy(self),
            None => Some(Buf::from_vec(self.to_vec())),
        }
    }

    /// The frame as a vector: no copy for a buffer of no pool; a copy for a
    /// pooled one, which goes back to its pool.
    pub fn into_vec(mut self) -> Vec<u8> {
        match self.home {
            Some(_) => self.to_vec(),
            None => core::mem::take(&mut self.data),
        }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if let Some((inner, c)) = self.home.take() {
            let data = core::mem::take(&mut self.data);
            // Never grows: the free list has room for every buffer.
            inner.classes[c as usize].free.borrow_mut().push(data);
        }
    }
}

impl Deref for Buf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.data[..self.len]
    }
}

impl AsRef<[u8]> for Buf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for Buf {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl From<Vec<u8>> for Buf {
    fn from(v: Vec<u8>) -> Buf {
        Buf::from_vec(v)
    }
}

impl Clone for Buf {
    /// A heap copy belonging to no pool (for tests and diagnostics: it
    /// allocates, and leaves the pool alone; the packet path uses
    /// [`Buf::try_clone`]).
    fn clone(&self) -> Buf {
        Buf::from_vec(self.to_vec())
    }
}

impl fmt::Debug for Buf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buf")
            .field("len", &self.len)
            .field("pooled", &self.is_pooled())
            .field("bytes", &&self[..self.len.min(64)])
            .finish()
    }
}

impl PartialEq for Buf {
    fn eq(&self, other: &Buf) -> bool {
        self[..] == other[..]
    }
}

impl Eq for Buf {}

impl PartialEq<[u8]> for Buf {
    fn eq(&self, other: &[u8]) -> bool {
        self[..] == *other
    }
}

impl PartialEq<&[u8]> for Buf {
    fn eq(&self, other: &&[u8]) -> bool {
        self[..] == **other
    }
}

impl PartialEq<Vec<u8>> for Buf {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self[..] == other[..]
    }
}

impl PartialEq<Buf> for Vec<u8> {
    fn eq(&self, other: &Buf) -> bool {
        self[..] == other[..]
    }
}

/// A frame on its way through the switch: its bytes and an opaque tag that
/// the switch carries along (and copies when it floods) without looking at
/// it. netback keeps a frame's offload state there (GSO, checksum).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The frame (destination MAC first, no FCS).
    pub data: Buf,
    /// The sender's metadata; 0 for a plain frame.
    pub tag: u32,
}

impl Packet {
    /// A frame with a tag.
    pub fn new(data: Buf, tag: u32) -> Packet {
        Packet { data, tag }
    }

    /// A plain frame (tag 0) of no pool.
    pub fn from_vec(v: Vec<u8>) -> Packet {
        Packet::new(Buf::from_vec(v), 0)
    }

    /// A copy with the same tag ([`Buf::try_clone`]).
    pub fn try_clone(&self) -> Option<Packet> {
        Some(Packet::new(self.data.try_clone()?, self.tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(small: usize, large: usize) -> PoolConfig {
        PoolConfig {
            small,
            small_len: 100,
            large,
            large_len: 1000,
        }
    }

    #[test]
    fn buffers_come_back_wherever_they_went() {
        let pool = Pool::new(cfg(2, 1));
        assert_eq!(pool.config().bytes(), 1200);
        let a = pool.take(10).unwrap();
        let b = pool.take_copy(&[7; 100]).unwrap();
        assert_eq!(b, vec![7u8; 100]);
        assert!(pool.take(1).is_none(), "small class empty");
        assert!(!pool.can_take(50) && pool.can_take(101));
        let big = pool.take(1000).unwrap();
        assert_eq!(big.len(), 1000);
        assert!(pool.take(1000).is_none());
        assert!(pool.take(1001).is_none() && !pool.fits(1001));
        assert_eq!(pool.stats().misses, 3);
        // A buffer parked elsewhere still belongs to the pool.
        let mut queue = alloc::collections::VecDeque::new();
        queue.push_back(Packet::new(a, 3));
        drop(b);
        assert_eq!(pool.stats().small_free, 1);
        drop(queue);
        drop(big);
        let s = pool.stats();
        assert_eq!((s.small_free, s.large_free), (2, 1));
        // The pool outlives its handles while buffers are out.
        let c = pool.take(5).unwrap();
        drop(pool);
        let p2 = c.pool().unwrap();
        assert_eq!(p2.stats().small_free, 1);
        drop(c);
        assert_eq!(p2.stats().small_free, 2);
    }

    #[test]
    fn copies_and_unpooled_buffers() {
        let pool = Pool::new(cfg(2, 0));
        let mut a = pool.take_copy(b"hello").unwrap();
        a[0] = b'j';
        assert_eq!(&a[..], b"jello");
        let b = a.try_clone().unwrap();
        assert!(b.is_pooled() && b == a);
        assert!(a.try_clone().is_none(), "pool exhausted");
        let c = a.clone();
        assert!(!c.is_pooled());
        assert_eq!(a.clone().into_vec(), b"jello".to_vec());
        assert!(!pool.fits(101), "no large class");
        a.truncate(2);
        assert_eq!(&a[..], b"je");
        assert_eq!(a.capacity(), 100);
        let v = Buf::from_vec(vec![1, 2, 3]);
        assert!(v.pool().is_none());
        assert_eq!(v.try_clone().unwrap(), v);
        assert_eq!(v.into_vec(), vec![1, 2, 3]);
        let p = Packet::new(b, 9).try_clone();
        assert!(p.is_none(), "no buffer for the copy");
        drop(a);
        let p = Packet::new(pool.take(3).unwrap(), 9);
        assert_eq!(p.try_clone().unwrap().tag, 9);
    }
}
