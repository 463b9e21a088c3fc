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

/// An entry's place on one list.
#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    listed: bool,
    /// What the entry was stamped with when it was put at the back of the list.
    stamp: u64,
}

const UNLINKED: Link = Link {
    prev: NO_SLOT,
    next: NO_SLOT,
    listed: false,
    stamp: 0,
};

struct Node<T, const LISTS: usize> {
    /// `None` for a free slot.
    value: Option<T>,
    /// Its place on each list (for a free slot, `links[0].next` links the free slots).
    links: [Link; LISTS],
}

/// The two ends of one list, and its length.
#[derive(Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
    len: u32,
}

/// See the module docs. An entry may be on each of `LISTS` lists (each list's order its
/// own).
pub(crate) struct SlabList<T, const LISTS: usize = 1> {
    nodes: Vec<Node<T, LISTS>>,
    /// Free slots, linked through `links[0].next`.
    free: u32,
    lists: [Ends; LISTS],
    occupied: u32,
}

impl<T, const LISTS: usize> SlabList<T, LISTS> {
    pub(crate) const fn new() -> Self {
        Self {
            nodes: Vec::new(),
            free: NO_SLOT,
            lists: [Ends {
                head: NO_SLOT,
                tail: NO_SLOT,
                len: 0,
            }; LISTS],
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

    /// Stores `value` in a free or reserved slot, on no list, and returns the slot. With
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
            links: [UNLINKED; LISTS],
        };
        let slot = if grows {
            // Within the reserved capacity: no allocation.
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        } else {
            let slot = self.free;
            self.free = self.nodes[slot as usize].links[0].next;
            self.nodes[slot as usize] = node;
            slot
        };
        self.occupied += 1;
        Ok(slot)
    }

    /// Takes the entry out of `slot` (and off every list); the slot becomes free.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<T> {
        self.get(slot)?;
        for list in 0..LISTS {
            self.unlist(list, slot);
        }
        let node = &mut self.nodes[slot as usize];
        let value = node.value.take();
        node.links[0].next = self.free;
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

    /// Entries on list `list`.
    pub(crate) fn listed_len(&self, list: usize) -> u32 {
        self.lists[list].len
    }

    pub(crate) fn is_listed(&self, list: usize, slot: u32) -> bool {
        self.nodes
            .get(slot as usize)
            .is_some_and(|node| node.value.is_some() && node.links[list].listed)
    }

    /// Puts the entry of `slot` at the back of list `list`, stamped `stamp` (moving it
    /// there if it was on the list already).
    pub(crate) fn push_back(&mut self, list: usize, slot: u32, stamp: u64) {
        if self.get(slot).is_none() {
            return;
        }
        self.unlist(list, slot);
        let tail = self.lists[list].tail;
        self.nodes[slot as usize].links[list] = Link {
            prev: tail,
            next: NO_SLOT,
            listed: true,
            stamp,
        };
        if tail == NO_SLOT {
            self.lists[list].head = slot;
        } else {
            self.nodes[tail as usize].links[list].next = slot;
        }
        self.lists[list].tail = slot;
        self.lists[list].len += 1;
    }

    /// Takes the entry of `slot` off list `list` (it stays in the slab). Whether it was on
    /// it.
    pub(crate) fn unlist(&mut self, list: usize, slot: u32) -> bool {
        if !self.is_listed(list, slot) {
            return false;
        }
        let Link { prev, next, .. } = self.nodes[slot as usize].links[list];
        self.nodes[slot as usize].links[list] = UNLINKED;
        if prev == NO_SLOT {
            self.lists[list].head = next;
        } else {
            self.nodes[prev as usize].links[list].next = next;
        }
        if next == NO_SLOT {
            self.lists[list].tail = prev;
        } else {
            self.nodes[next as usize].links[list].prev = prev;
        }
        self.lists[list].len -= 1;
        true
    }

    /// The front of list `list`: its slot, entry and stamp.
    pub(crate) fn front(&self, list: usize) -> Option<(u32, &T, u64)> {
        let head = self.lists[list].head;
        let node = self.nodes.get(head as usize)?;
        Some((head, node.value.as_ref()?, node.links[list].stamp))
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

    /// The entries on list `list`, front first, with their stamps; at most its length of
    /// them even if the links were corrupted into a cycle.
    #[cfg(any(test, feature = "check"))]
    pub(crate) fn listed(&self, list: usize) -> impl Iterator<Item = (&T, u64)> {
        let mut cursor = self.lists[list].head;
        (0..self.lists[list].len).map_while(move |_| {
            let node = self.nodes.get(cursor as usize)?;
            cursor = node.links[list].next;
            Some((node.value.as_ref()?, node.links[list].stamp))
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
        list.listed(0).map(|(value, _)| *value).collect()
    }

    #[test]
    fn the_list_keeps_its_order_through_moves_and_removals() {
        let mut list = SlabList::new();
        let slots: Vec<u32> = (0..4).map(|value| insert(&mut list, value)).collect();
        for (stamp, slot) in slots.iter().enumerate() {
            list.push_back(0, *slot, stamp as u64);
        }
        assert_eq!(order(&list), [0, 1, 2, 3]);
        list.push_back(0, slots[1], 9);
        assert_eq!(order(&list), [0, 2, 3, 1]);
        assert!(list.unlist(0, slots[0]));
        assert!(!list.unlist(0, slots[0]));
        assert_eq!(list.front(0).map(|(_, value, _)| *value), Some(2));
        assert_eq!(list.remove(slots[3]), Some(3));
        assert_eq!(order(&list), [2, 1]);
        assert_eq!((list.len(), list.listed_len(0)), (3, 2));
        assert_eq!(list.remove(slots[1]), Some(1));
        assert_eq!(list.remove(slots[2]), Some(2));
        assert_eq!(order(&list), [] as [u32; 0]);
        assert_eq!(list.front(0).map(|(_, value, _)| *value), None);
        // Freed slots are reused before the slab grows.
        let again = insert(&mut list, 7);
        assert!(slots.contains(&again));
        assert_eq!(list.next_from(0).map(|(_, value)| *value), Some(0));
    }

    #[test]
    fn an_entry_keeps_a_place_on_each_list_of_its_own() {
        let mut list: SlabList<u32, 2> = SlabList::new();
        let slots: Vec<u32> = (0..3)
            .map(|value| {
                list.try_reserve().expect("memory");
                list.insert(value).expect("reserved")
            })
            .collect();
        for (stamp, slot) in slots.iter().enumerate() {
            list.push_back(0, *slot, stamp as u64);
        }
        list.push_back(1, slots[2], 5);
        list.push_back(1, slots[0], 6);
        let order = |list: &SlabList<u32, 2>, which| -> Vec<u32> {
            list.listed(which).map(|(value, _)| *value).collect()
        };
        assert_eq!(order(&list, 0), [0, 1, 2]);
        assert_eq!(order(&list, 1), [2, 0]);
        assert!(list.unlist(1, slots[2]));
        assert_eq!((order(&list, 0), order(&list, 1)), (vec![0, 1, 2], vec![0]));
        assert_eq!(list.remove(slots[0]), Some(0));
        assert_eq!((order(&list, 0), order(&list, 1)), (vec![1, 2], vec![]));
    }

    #[test]
    fn insert_without_a_reserved_slot_gives_the_value_back() {
        let mut list: SlabList<u32> = SlabList::new();
        assert_eq!(list.insert(5), Err(5));
        assert_eq!(list.remove(0), None);
        list.push_back(0, 0, 1);
        assert_eq!(list.listed_len(0), 0);
    }
}
