//! A slot's mappings: the one that maps a page, and carving a range out of them.

use super::*;

impl Harness {
    /// The mapping of slot page `page`, if one maps it.
    pub(crate) fn mapping(
        &self,
        proc: usize,
        slot: usize,
        page: u64,
    ) -> Option<(&MappingRef, &ModelMap)> {
        let pieces = &self.procs.get(proc)?.as_ref()?.maps[slot];
        let (map, model) = pieces
            .iter()
            .find(|(_, model)| (model.start..model.start + model.pages).contains(&page))?;
        Some((map, model))
    }

    pub(crate) fn mapping_mut(&mut self, proc: usize, slot: usize, page: u64) -> &mut ModelMap {
        let pieces = &mut self.procs[proc].as_mut().unwrap().maps[slot];
        let (_, model) = pieces
            .iter_mut()
            .find(|(_, model)| (model.start..model.start + model.pages).contains(&page))
            .unwrap();
        model
    }

    /// Carves slot pages `from..to` out of the slot's mappings, as a partial munmap or
    /// mprotect does: the parts outside stay in the slot, the parts inside are returned,
    /// writable as `writable` says (`None`: as they were).
    pub(crate) fn carve(
        &mut self,
        proc: usize,
        slot: usize,
        from: u64,
        to: u64,
        writable: Option<bool>,
    ) -> Vec<(MappingRef, ModelMap)> {
        let Some(process) = self.procs.get_mut(proc).and_then(Option::as_mut) else {
            return Vec::new();
        };
        let mut kept = Vec::new();
        let mut inside = Vec::new();
        for (map, model) in std::mem::take(&mut process.maps[slot]) {
            let (start, end) = (model.start, model.start + model.pages);
            let (lo, hi) = (from.max(start), to.min(end));
            if lo >= hi {
                kept.push((map, model));
                continue;
            }
            let writable = writable.unwrap_or(model.writable);
            let carved = map
                .carve(base(slot) + lo * PAGE, base(slot) + hi * PAGE, writable)
                .unwrap();
            if let Some(head) = carved.head {
                kept.push((head, model.part(start, lo)));
            }
            if let Some(tail) = carved.tail {
                kept.push((tail, model.part(hi, end)));
            }
            let mut middle = model.part(lo, hi);
            middle.writable = writable;
            inside.push((carved.middle, middle));
        }
        process.maps[slot] = kept;
        inside
    }
}
