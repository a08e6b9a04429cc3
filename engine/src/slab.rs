//! A slab: a `Vec` of slots addressed by `u32` index, with a free list, so
//! orders and levels are stored without a heap allocation each and link to
//! one another by index.

/// The index that means "no slot".
pub(crate) const NIL: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<T>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

// By hand, because a derived clone would shrink capacity to the length, and
// the clone's next insert would then move every slot.
impl<T: Clone> Clone for Slab<T> {
    fn clone(&self) -> Self {
        let mut slots = Vec::with_capacity(self.slots.capacity());
        slots.extend_from_slice(&self.slots);
        let mut free = Vec::with_capacity(self.free.capacity());
        free.extend_from_slice(&self.free);
        Slab { slots, free }
    }
}

impl<T> Slab<T> {
    /// An empty slab with room for `n` values before it reallocates.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Slab {
            slots: Vec::with_capacity(n),
            free: Vec::new(),
        }
    }

    /// Stores `value` in a free slot (or a new one) and returns its index.
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = value;
                i
            }
            None => {
                self.slots.push(value);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Frees slot `i`. Its stale value stays until the slot is reused; the
    /// owner must drop every link to `i` first.
    pub(crate) fn remove(&mut self, i: u32) {
        self.free.push(i);
    }

    /// Number of occupied slots.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

impl<T> std::ops::Index<u32> for Slab<T> {
    type Output = T;
    fn index(&self, i: u32) -> &T {
        &self.slots[i as usize]
    }
}

impl<T> std::ops::IndexMut<u32> for Slab<T> {
    fn index_mut(&mut self, i: u32) -> &mut T {
        &mut self.slots[i as usize]
    }
}
