//! A slab whose entries may be on one doubly linked list, linked by slot index: insert,
//! remove, and a move to the back of the list in O(1), with no allocation once a slot is
//! reserved. Each shard of the image table keeps its images in one (the list is the idle
//! list) and its mount-cache files in another (the list is least-recently-used order), as
//! Plan 9 and gVisor thread their caches on intrusive lists instead of searching them.
//!
//! A slot is stable while its entry lives, so a pass over the slab by slot index (reclaim
//! of active images, forgetting a device) can release the lock between entries and carry
//! on where it was.

use alloc::collections::TryReserveError;
use alloc::vec::Vec;

/// "No slot": the end of a list.
pub(crate) const NO_SLOT: u32 = u32::MAX;

struct Node<T> {
    /// `None` for a free slot.
    value: Option<T>,
    /// The neighbours on the list (for a free slot, `next` links the free slots).
    prev: u32,
    next: u32,
    listed: bool,
    /// What the entry was stamped with when it was put at the back of the list.
    stamp: u64,
}

/// See the module docs.
pub(crate) struct SlabList<T> {
    nodes: Vec<Node<T>>,
    /// Free slots, linked through `next`.
    free: u32,
    head: u32,
    tail: u32,
    listed: u32,
    occupied: u32,
}

impl<T> SlabList<T> {
    pub(crate) const fn new() -> Self {
        Self {
            nodes: Vec::new(),
            free: NO_SLOT,
            head: NO_SLOT,
            tail: NO_SLOT,
            listed: 0,
            occupied: 0,
        }
    }

    /// Makes sure the next [`insert`](Self::insert) has a slot without allocating.
    pub(crate) fn try_reserve(&mut self) -> Result<(), TryReserveError> {
        if self.free == NO_SLOT && self.nodes.len() == self.nodes.capacity() {
            self.nodes.try_reserve(1)?;
        }
        Ok(())
    }

    /// Stores `value` in a free or reserved slot, off the list, and returns the slot. With
    /// no slot reserved (no [`try_reserve`](Self::try_reserve) first) `value` comes back:
    /// this never allocates.
    pub(crate) fn insert(&mut self, value: T) -> Result<u32, T> {
        let grows = self.free == NO_SLOT;
        if grows
            && (self.nodes.len() == self.nodes.capacity() || self.nodes.len() >= NO_SLOT as usize)
        {
            return Err(value);
        }
        let node = Node {
            value: Some(value),
            prev: NO_SLOT,
            next: NO_SLOT,
            listed: false,
            stamp: 0,
        };
        let slot = if grows {
            // Within the reserved capacity: no allocation.
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        } else {
            let slot = self.free;
            self.free = self.nodes[slot as usize].next;
            self.nodes[slot as usize] = node;
            slot
        };
        self.occupied += 1;
        Ok(slot)
    }

    /// Takes the entry out of `slot` (and off the list); the slot becomes free.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<T> {
        self.get(slot)?;
        self.unlist(slot);
        let node = &mut self.nodes[slot as usize];
        let value = node.value.take();
        node.next = self.free;
        self.free = slot;
        self.occupied -= 1;
        value
    }

    pub(crate) fn get(&self, slot: u32) -> Option<&T> {
        self.nodes.get(slot as usize)?.value.as_ref()
    }

    /// Entries stored.
    pub(crate) fn len(&self) -> u32 {
        self.occupied
    }

    /// Entries on the list.
    pub(crate) fn listed_len(&self) -> u32 {
        self.listed
    }

    pub(crate) fn is_listed(&self, slot: u32) -> bool {
        self.nodes
            .get(slot as usize)
            .is_some_and(|node| node.value.is_some() && node.listed)
    }

    /// Puts the entry of `slot` at the back of the list, stamped `stamp` (moving it there if
    /// it was on the list already).
    pub(crate) fn push_back(&mut self, slot: u32, stamp: u64) {
        if self.get(slot).is_none() {
            return;
        }
        self.unlist(slot);
        let tail = self.tail;
        let node = &mut self.nodes[slot as usize];
        node.prev = tail;
        node.next = NO_SLOT;
        node.listed = true;
        node.stamp = stamp;
        if tail == NO_SLOT {
            self.head = slot;
        } else {
            self.nodes[tail as usize].next = slot;
        }
        self.tail = slot;
        self.listed += 1;
    }

    /// Takes the entry of `slot` off the list (it stays in the slab). Whether it was on it.
    pub(crate) fn unlist(&mut self, slot: u32) -> bool {
        if !self.is_listed(slot) {
            return false;
        }
        let (prev, next) = {
            let node = &mut self.nodes[slot as usize];
            node.listed = false;
            (node.prev, node.next)
        };
        if prev == NO_SLOT {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NO_SLOT {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        self.listed -= 1;
        true
    }

    /// The front of the list: its slot, entry and stamp.
    pub(crate) fn front(&self) -> Option<(u32, &T, u64)> {
        let node = self.nodes.get(self.head as usize)?;
        Some((self.head, node.value.as_ref()?, node.stamp))
    }

    /// The first stored entry at `slot` or after, with its slot.
    pub(crate) fn next_from(&self, slot: u32) -> Option<(u32, &T)> {
        self.nodes
            .iter()
            .enumerate()
            .skip(slot as usize)
            .find_map(|(at, node)| Some((at as u32, node.value.as_ref()?)))
    }

    /// Every stored entry, by slot.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.nodes.iter().filter_map(|node| node.value.as_ref())
    }

    /// The entries on the list, front first, with their stamps; at most `listed_len` of
    /// them even if the links were corrupted into a cycle.
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn listed(&self) -> impl Iterator<Item = (&T, u64)> {
        let mut cursor = self.head;
        (0..self.listed).map_while(move |_| {
            let node = self.nodes.get(cursor as usize)?;
            cursor = node.next;
            Some((node.value.as_ref()?, node.stamp))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(list: &mut SlabList<u32>, value: u32) -> u32 {
        list.try_reserve().expect("memory");
        list.insert(value).expect("reserved")
    }

    fn order(list: &SlabList<u32>) -> Vec<u32> {
        list.listed().map(|(value, _)| *value).collect()
    }

    #[test]
    fn the_list_keeps_its_order_through_moves_and_removals() {
        let mut list = SlabList::new();
        let slots: Vec<u32> = (0..4).map(|value| insert(&mut list, value)).collect();
        for (stamp, slot) in slots.iter().enumerate() {
            list.push_back(*slot, stamp as u64);
        }
        assert_eq!(order(&list), [0, 1, 2, 3]);
        list.push_back(slots[1], 9);
        assert_eq!(order(&list), [0, 2, 3, 1]);
        assert!(list.unlist(slots[0]));
        assert!(!list.unlist(slots[0]));
        assert_eq!(list.front().map(|(_, value, _)| *value), Some(2));
        assert_eq!(list.remove(slots[3]), Some(3));
        assert_eq!(order(&list), [2, 1]);
        assert_eq!((list.len(), list.listed_len()), (3, 2));
        assert_eq!(list.remove(slots[1]), Some(1));
        assert_eq!(list.remove(slots[2]), Some(2));
        assert_eq!(order(&list), [] as [u32; 0]);
        assert_eq!(list.front().map(|(_, value, _)| *value), None);
        // Freed slots are reused before the slab grows.
        let again = insert(&mut list, 7);
        assert!(slots.contains(&again));
        assert_eq!(list.next_from(0).map(|(_, value)| *value), Some(0));
    }

    #[test]
    fn insert_without_a_reserved_slot_gives_the_value_back() {
        let mut list: SlabList<u32> = SlabList::new();
        assert_eq!(list.insert(5), Err(5));
        assert_eq!(list.remove(0), None);
        list.push_back(0, 1);
        assert_eq!(list.listed_len(), 0);
    }
}
