//! A first-in first-out list of entry indices, of a capacity fixed at
//! creation: the queue's free list, its calls in flight and its completed
//! calls. A `VecDeque` would do, at several times the instructions per
//! push and pop, which a queue pays a few times per call.

/// Entry indices, oldest first.
///
/// # Invariants
///
/// `buf.len()` is a power of two, at least the capacity asked for;
/// `len <= buf.len()`; the elements are `buf[(head + k) & mask]` for
/// `k < len`.
pub(crate) struct Fifo {
    buf: Box<[u32]>,
    mask: u32,
    head: u32,
    len: u32,
}

impl Fifo {
    /// An empty list with room for `cap` indices.
    pub(crate) fn with_capacity(cap: u32) -> Fifo {
        let size = cap.max(1).next_power_of_two();
        Fifo {
            buf: vec![0; size as usize].into_boxed_slice(),
            mask: size - 1,
            head: 0,
            len: 0,
        }
    }

    /// A list of `0 .. n`, in order.
    pub(crate) fn sequence(n: u32) -> Fifo {
        let mut f = Fifo::with_capacity(n);
        for i in 0..n {
            f.push_back(i);
        }
        f
    }

    #[inline]
    fn slot(&self, k: u32) -> usize {
        (self.head.wrapping_add(k) & self.mask) as usize
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The element `k` places from the front.
    #[inline]
    pub(crate) fn get(&self, k: usize) -> Option<u32> {
        (k < self.len as usize).then(|| self.buf[self.slot(k as u32)])
    }

    #[inline]
    pub(crate) fn front(&self) -> Option<u32> {
        self.get(0)
    }

    #[inline]
    pub(crate) fn back(&self) -> Option<u32> {
        self.len.checked_sub(1).map(|k| self.buf[self.slot(k)])
    }

    /// Appends `v`. Panics when full (the queue never holds more indices
    /// than it has entries).
    #[inline]
    pub(crate) fn push_back(&mut self, v: u32) {
        assert!((self.len as usize) < self.buf.len(), "fifo full");
        let at = self.slot(self.len);
        self.buf[at] = v;
        self.len += 1;
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<u32> {
        let v = self.front()?;
        self.head = self.head.wrapping_add(1);
        self.len -= 1;
        Some(v)
    }

    /// Removes and returns the element `k` places from the front (the
    /// younger ones move up).
    pub(crate) fn remove(&mut self, k: usize) -> Option<u32> {
        let v = self.get(k)?;
        for j in k as u32..self.len - 1 {
            let (to, from) = (self.slot(j), self.slot(j + 1));
            self.buf[to] = self.buf[from];
        }
        self.len -= 1;
        Some(v)
    }

    /// Inserts `v` `k` places from the front (`k <= len`).
    pub(crate) fn insert(&mut self, k: usize, v: u32) {
        assert!(k <= self.len as usize);
        self.push_back(v);
        for j in (k as u32..self.len - 1).rev() {
            let (to, from) = (self.slot(j + 1), self.slot(j));
            self.buf[to] = self.buf[from];
        }
        let at = self.slot(k as u32);
        self.buf[at] = v;
    }

    /// The elements, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).map(|k| self.buf[self.slot(k)])
    }
}

#[cfg(test)]
mod tests {
    use super::Fifo;
    use std::collections::VecDeque;

    /// Against VecDeque, through wrap-arounds.
    #[test]
    fn behaves_as_a_vecdeque() {
        let mut f = Fifo::sequence(5);
        let mut d: VecDeque<u32> = (0..5).collect();
        for step in 0..200u32 {
            match step % 7 {
                0 | 3 => assert_eq!(f.pop_front(), d.pop_front()),
                1 if d.len() < 8 => {
                    f.push_back(step);
                    d.push_back(step);
                }
                2 if !d.is_empty() => {
                    let k = step as usize % d.len();
                    assert_eq!(f.remove(k), d.remove(k));
                }
                4 if d.len() < 8 => {
                    let k = step as usize % (d.len() + 1);
                    f.insert(k, step);
                    d.insert(k, step);
                }
                _ => {}
            }
            assert_eq!(
                f.iter().collect::<Vec<_>>(),
                d.iter().copied().collect::<Vec<_>>()
            );
            assert_eq!(
                (f.front(), f.back()),
                (d.front().copied(), d.back().copied())
            );
            assert_eq!(f.len(), d.len());
        }
        assert_eq!(f.get(f.len()), None);
    }
}
