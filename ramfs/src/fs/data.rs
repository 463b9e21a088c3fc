//! File contents as sparse, page-aligned 4 KiB pages.
//!
//! A page is allocated on first write and keeps its address until the file is truncated
//! below it or destroyed, so a memory-mapping front end can hand the page out. Holes read
//! as zeros and cost nothing.

use std::collections::BTreeMap;

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;

/// One page of file data, aligned to its size so it can be mapped.
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_SIZE]);

impl Page {
    fn zeroed() -> Box<Page> {
        Box::new(Page([0; PAGE_SIZE]))
    }
}

/// The contents of a regular file: its length and the pages that hold data.
#[derive(Default)]
pub struct FileData {
    pages: BTreeMap<u64, Box<Page>>,
    size: u64,
}

/// Page index of a byte offset.
fn page_of(offset: u64) -> u64 {
    offset / PAGE_SIZE as u64
}

impl FileData {
    /// Length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Pages that hold data (the rest are holes).
    pub fn allocated_pages(&self) -> u64 {
        self.pages.len() as u64
    }

    /// The page at `index`, if it has been written.
    pub fn page(&self, index: u64) -> Option<&Page> {
        self.pages.get(&index).map(|p| &**p)
    }

    /// How many new pages a write of `len` bytes at `offset` would allocate.
    pub fn pages_needed(&self, offset: u64, len: usize) -> u64 {
        if len == 0 {
            return 0;
        }
        let first = page_of(offset);
        let last = page_of(offset + len as u64 - 1);
        let present = self.pages.range(first..=last).count() as u64;
        (last - first + 1) - present
    }

    /// Copies up to `count` bytes from `offset`, clipped to the file's length.
    pub fn read(&self, offset: u64, count: usize) -> Vec<u8> {
        if offset >= self.size || count == 0 {
            return Vec::new();
        }
        let len = (self.size - offset).min(count as u64) as usize;
        let mut out = vec![0u8; len];
        let end = offset + len as u64;
        for (&index, page) in self.pages.range(page_of(offset)..=page_of(end - 1)) {
            let page_start = index * PAGE_SIZE as u64;
            let from = offset.max(page_start);
            let to = end.min(page_start + PAGE_SIZE as u64);
            let src = &page.0[(from - page_start) as usize..(to - page_start) as usize];
            out[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
        }
        out
    }

    /// Writes `data` at `offset`, allocating pages as needed and growing the length.
    /// The caller has checked the memory limit with [`FileData::pages_needed`] and that
    /// `offset + data.len()` does not overflow.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let index = page_of(pos);
            let in_page = (pos % PAGE_SIZE as u64) as usize;
            let n = (PAGE_SIZE - in_page).min(data.len() - done);
            let page = self.pages.entry(index).or_insert_with(Page::zeroed);
            page.0[in_page..in_page + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        self.size = self.size.max(offset + data.len() as u64);
    }

    /// Sets the length. Growing leaves a hole; shrinking frees the pages past the end and
    /// zeroes the tail of the last one, so a later grow reads zeros. Returns the number of
    /// pages freed.
    pub fn truncate(&mut self, size: u64) -> u64 {
        let mut freed = 0;
        if size < self.size {
            let keep = size.div_ceil(PAGE_SIZE as u64);
            let dropped = self.pages.split_off(&keep);
            freed = dropped.len() as u64;
            let tail = (size % PAGE_SIZE as u64) as usize;
            if tail != 0 {
                if let Some(page) = self.pages.get_mut(&page_of(size)) {
                    page.0[tail..].fill(0);
                }
            }
        }
        self.size = size;
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_page_aligned() {
        let mut f = FileData::default();
        f.write(5000, b"x");
        let p = f.page(1).expect("written page");
        assert_eq!(p as *const Page as usize % PAGE_SIZE, 0);
        assert!(f.page(0).is_none(), "the hole before it is not allocated");
    }

    #[test]
    fn holes_read_as_zeros_and_cost_nothing() {
        let mut f = FileData::default();
        f.write(3 * PAGE_SIZE as u64 + 10, b"abc");
        assert_eq!(f.allocated_pages(), 1);
        assert_eq!(f.size(), 3 * PAGE_SIZE as u64 + 13);
        let all = f.read(0, usize::MAX);
        assert_eq!(all.len() as u64, f.size());
        assert!(all[..3 * PAGE_SIZE + 10].iter().all(|&b| b == 0));
        assert_eq!(&all[3 * PAGE_SIZE + 10..], b"abc");
    }

    #[test]
    fn write_across_pages_and_read_back() {
        let mut f = FileData::default();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(f.pages_needed(4000, data.len()), 4);
        f.write(4000, &data);
        assert_eq!(f.read(4000, 10_000), data);
        assert_eq!(f.read(4000 + 9_990, 100), data[9_990..]);
        assert_eq!(f.pages_needed(4000, data.len()), 0);
    }

    #[test]
    fn shrink_then_grow_reads_zeros() {
        let mut f = FileData::default();
        f.write(0, &[7u8; 9000]);
        assert_eq!(f.truncate(5), 2);
        assert_eq!(f.read(0, 100), vec![7, 7, 7, 7, 7]);
        f.truncate(9000);
        let back = f.read(0, 9000);
        assert_eq!(&back[..5], &[7; 5]);
        assert!(back[5..].iter().all(|&b| b == 0));
        assert_eq!(f.allocated_pages(), 1);
    }

    #[test]
    fn read_past_end_is_empty() {
        let mut f = FileData::default();
        f.write(0, b"hello");
        assert!(f.read(5, 10).is_empty());
        assert!(f.read(u64::MAX, 10).is_empty());
        assert_eq!(f.read(3, 10), b"lo");
    }

    #[test]
    fn zero_count_read_at_a_page_boundary() {
        let mut f = FileData::default();
        f.write(0, &[1; PAGE_SIZE + 10]);
        assert!(f.read(PAGE_SIZE as u64, 0).is_empty());
    }
}
