//! Whether the kernel has the image cache (`MAP_IMAGE`, /work/shared/REDOX-PATCH.md).
//!
//! Neither ramfs-9p nor the patched kernel counts the `Read`s a daemon gets, so the tool
//! cannot see directly that a second run read no text. What it can see is the ABI: a
//! kernel with the patch maps a user-scheme file with `MAP_PRIVATE | MAP_IMAGE`; one
//! without refuses the unknown bit with `EINVAL`, and relibc then copies as before (so a
//! second run reads the whole file again). The probe goes through the raw `fmap` system
//! call, not relibc's `mmap`, because relibc reads 0x0020 as its own `MAP_ANON`.

use syscall::flag::MapFlags;

/// `MapFlags::MAP_IMAGE` of the syscall patch; spelled here because crates.io's
/// redox_syscall does not have it.
const MAP_IMAGE: MapFlags = MapFlags::from_bits_retain(0x0020);

/// One page: the probe maps the first page of the file and unmaps it at once.
const PAGE: usize = 4096;

/// What the kernel said to a `MAP_IMAGE` mapping of a scheme file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageCache {
    /// It mapped it: the kernel maps executables through its image cache, and a second
    /// exec of an unchanged file sends its daemon no `Read` for text.
    Present,
    /// It refused with `EINVAL`: an unpatched kernel; every exec copies the whole file.
    Absent,
    /// It refused otherwise (the errno): the probe cannot tell.
    Unknown(i32),
}

impl ImageCache {
    /// Maps the first page of the open file `fd` with `MAP_PRIVATE | MAP_IMAGE`, read only,
    /// and unmaps it again.
    pub fn probe(fd: usize) -> ImageCache {
        let map = syscall::data::Map {
            offset: 0,
            size: PAGE,
            flags: MapFlags::MAP_PRIVATE | MapFlags::PROT_READ | MAP_IMAGE,
            address: 0,
        };
        // SAFETY: the kernel picks a free address (address 0, no MAP_FIXED), so no mapping
        // of ours is replaced; the page is unmapped before anything could use it.
        match unsafe { syscall::call::fmap(fd, &map) } {
            Ok(address) => {
                // SAFETY: exactly the page the kernel just mapped for us, used by nothing.
                if let Err(error) = unsafe { syscall::call::funmap(address, PAGE) } {
                    log::warn!("unmapping the MAP_IMAGE probe at {address:#x}: {error}");
                }
                ImageCache::Present
            }
            Err(error) if error.errno == syscall::error::EINVAL => ImageCache::Absent,
            Err(error) => ImageCache::Unknown(error.errno),
        }
    }

    /// One line for the tool's report.
    pub fn describe(self) -> String {
        match self {
            ImageCache::Present => "the kernel maps executables through its image cache \
                                    (MAP_IMAGE accepted): a warm run sends ramfs-9p no Read \
                                    for text"
                .to_string(),
            ImageCache::Absent => "the kernel is unpatched (MAP_IMAGE refused with EINVAL): \
                                   relibc copies the binary at every exec, so the second run \
                                   reads the text again; not a failure"
                .to_string(),
            ImageCache::Unknown(errno) => format!(
                "the MAP_IMAGE probe failed with errno {errno}: cannot tell whether the kernel \
                 has the image cache"
            ),
        }
    }
}
