//! The file pages a mapping request covers.
//!
//! The kernel asks for a mapping (`mmap_prep`) and returns it (`munmap`, per unmapped
//! part) in bytes: an offset that must be page-aligned and a length that need not be.
//! The tree lends and takes back whole pages ([`crate::fs::Tree::lend_pages`]) and
//! counts loans per page, so that a partial unmap returns exactly its pages.

/// The pages `[first, first + count)` that a mapping of `len` bytes at byte `offset`
/// covers, or `None` when `offset` is not page-aligned, `len` is 0, or the end
/// overflows. The kernel maps whole pages, so a partial last page counts.
pub fn pages_of(offset: u64, len: usize, page_size: u64) -> Option<(u64, u64)> {
    if len == 0 || !offset.is_multiple_of(page_size) {
        return None;
    }
    offset.checked_add(len as u64)?;
    Some((offset / page_size, (len as u64).div_ceil(page_size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_ranges() {
        assert_eq!(pages_of(0, 1, 4096), Some((0, 1)));
        assert_eq!(pages_of(8192, 4096, 4096), Some((2, 1)));
        assert_eq!(pages_of(8192, 4097, 4096), Some((2, 2)));
        assert_eq!(pages_of(100, 4096, 4096), None, "unaligned offset");
        assert_eq!(pages_of(0, 0, 4096), None, "empty mapping");
        assert_eq!(pages_of(u64::MAX - 4095, 8192, 4096), None, "end overflows");
    }
}
